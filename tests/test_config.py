from __future__ import annotations

import pytest

from auditor.config import Config, parse_duration
from auditor.errors import ConfigError


def test_fail_on_levels() -> None:
    assert Config().fails("error") and not Config().fails("warning")
    assert Config(fail_on="warning").fails("warning")
    assert not Config(fail_on="never").fails("error")
    assert not Config(fail_on="warning").fails("off")


def test_parse_duration_names_the_option_or_leaves_that_to_the_caller() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration(" 2d ") == 172800
    with pytest.raises(ConfigError, match=r"^--max-age: 'soon' is not a duration like 30m, 6h or 2d$"):
        parse_duration("soon", what="--max-age")
    with pytest.raises(ConfigError, match=r"^'1.5h' is not a duration"):
        parse_duration("1.5h", what="")
