"""examples/: the Kubernetes manifests pass the Kubernetes schema (strict), the workflow is well formed,
and both run the shards and the merge the way the README says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from auditor.shards import parse_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KUBERNETES = "1.33.0"  # backoffLimitPerIndex is GA from 1.33


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("name", ["audit-shards.yaml", "merge-job.yaml"])
def test_kubernetes_manifests_pass_the_schema(name: str) -> None:
    for resource in _documents(EXAMPLES / "kubernetes" / name):
        kubernetes_validate.validate(resource, KUBERNETES, strict=True)


def test_the_schema_check_would_catch_a_mistake() -> None:
    job = _documents(EXAMPLES / "kubernetes" / "audit-shards.yaml")[1]
    job["spec"]["completion"] = job["spec"].pop("completions")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, KUBERNETES, strict=True)


def _script(job: dict[str, Any]) -> str:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return " ".join([*container["command"], *container["args"]])


def test_the_indexed_job_runs_one_shard_per_completion_and_the_merge_joins_them() -> None:
    claim, shards = _documents(EXAMPLES / "kubernetes" / "audit-shards.yaml")
    (merge,) = _documents(EXAMPLES / "kubernetes" / "merge-job.yaml")
    spec = shards["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"]
    script = _script(shards)
    count = re.search(r"--shard auto --shard-count (\d+)", script)
    assert count is not None and int(count.group(1)) == spec["completions"]
    assert '--db "$db"' in script and "db=/data/shards/shard-$JOB_COMPLETION_INDEX.sqlite" in script
    assert "auditor merge /data/shards/shard-*.sqlite --db /data/history/audit.sqlite" in _script(merge)
    for job in (shards, merge):  # one shared volume for the shard databases and the history
        volumes = job["spec"]["template"]["spec"]["volumes"]
        assert {"name": "data", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}} in volumes
    assert "ReadWriteMany" in claim["spec"]["accessModes"]


def test_the_workflow_runs_a_matrix_of_shards_then_the_merge() -> None:
    (workflow,) = _documents(EXAMPLES / "github" / "audit-shards.yml")
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    matrix = shard["strategy"]["matrix"]["shard"]
    assert matrix == list(range(1, len(matrix) + 1)) and shard["strategy"]["fail-fast"] is False
    audit = next(step for step in shard["steps"] if "auditor audit" in step.get("run", ""))
    assert audit["env"]["SHARD"] == "${{ matrix.shard }}/${{ strategy.job-total }}"
    assert '--shard "$SHARD"' in audit["run"] and '--db "$DB"' in audit["run"]
    assert parse_spec(f"{matrix[-1]}/{len(matrix)}") is not None  # what the runner makes of it is valid
    upload = next(step for step in shard["steps"] if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == audit["env"]["DB"]  # the database the shard wrote is what the merge gets
    assert merge["needs"] == "shard"
    download = next(step for step in merge["steps"] if step.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"] == {"pattern": "shard-*", "path": "shards", "merge-multiple": True}
    run = next(step for step in merge["steps"] if "auditor merge" in step.get("run", ""))
    assert "auditor merge shards/shard-*.sqlite --db history/audit.sqlite" in run["run"]
