from __future__ import annotations

import json

import pytest

from auditor.model import Code, FailOn, Reason, Severity, Stage


def test_every_code_has_a_severity_and_a_stage() -> None:
    for code in Code:
        assert isinstance(code.default_severity, Severity) and code.default_severity is not Severity.OFF
        assert isinstance(code.stage, Stage)
    assert [c for c in Code if c.stage is Stage.OFFLINE] == [
        Code.AMP_CACHE_MISMATCH,
        Code.PROVIDER_DOMAIN_MISMATCH,
        Code.INVALID_METADATA,
    ]


def test_only_transient_reasons_are_retried() -> None:
    assert {r for r in Reason if r.retryable} == {Reason.REFUSED, Reason.RESET, Reason.TIMEOUT, Reason.OTHER}
    assert all(reason.label for reason in Reason)


def test_stored_and_json_values_are_the_plain_strings() -> None:
    assert json.dumps({"code": Code.DEAD_LINK, "reason": Reason.DNS}) == '{"code": "dead-link", "reason": "dns"}'
    assert Code("invalid-metadata") is Code.INVALID_METADATA


@pytest.mark.parametrize(
    ("fail_on", "failing"),
    [(FailOn.ERROR, {Severity.ERROR}), (FailOn.WARNING, {Severity.ERROR, Severity.WARNING}), (FailOn.NEVER, set())],
)
def test_fail_on(fail_on: FailOn, failing: set[Severity]) -> None:
    assert {severity for severity in Severity if fail_on.fails(severity)} == failing
