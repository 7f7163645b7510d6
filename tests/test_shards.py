"""Host partitions: a stable hash of the politeness bucket, and --shard K/N or auto from the scheduler."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from auditor.config import Shard
from auditor.errors import ConfigError
from auditor.shards import owns, parse_spec, resolve, shard_of


def test_a_host_is_in_one_shard_whatever_the_path_scheme_or_port() -> None:
    shard = shard_of("https://news.example/a", 8)
    assert all(
        shard_of(url, 8) == shard
        for url in ("http://news.example/b?x=1", "https://NEWS.example:8443/", "https://news.example/c/d#e")
    )


def test_all_amp_cache_hosts_are_one_bucket() -> None:
    hosts = ("news-example-com", "other-org", "a-b-c")
    shards = {shard_of(f"https://{host}.cdn.ampproject.org/c/s/x", 16) for host in hosts}
    assert len(shards) == 1


def test_the_hash_is_stable_across_processes() -> None:
    """Python's own str hash is salted per process; the partition must not be."""
    here = [shard_of(f"https://host{n}.example/", 7) for n in range(50)]
    code = "from auditor.shards import shard_of; print([shard_of(f'https://host{n}.example/', 7) for n in range(50)])"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        )
        assert out.stdout.strip() == str(here)
    # Pinned: a release that changed the partition would split one night's shards differently from the next.
    assert here[:6] == [1, 3, 1, 4, 2, 2]
    assert shard_of("https://www.example.com/", 4) == 2


def test_hosts_spread_over_the_shards() -> None:
    counts = Counter(shard_of(f"https://site{n}.example/", 4) for n in range(4000))
    assert set(counts) == {1, 2, 3, 4}
    assert all(800 < n < 1200 for n in counts.values()), counts


def test_every_url_has_exactly_one_owner() -> None:
    urls = [f"https://site{n}.example/page" for n in range(200)]
    for url in urls:
        assert sum(owns(Shard(k, 5), url) for k in range(1, 6)) == 1
    assert all(owns(None, url) for url in urls)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1/3", Shard(1, 3)), (" 3 / 3 ", Shard(3, 3)), ("1/1", Shard(1, 1)), ("auto", None), ("AUTO", None)],
)
def test_parse_spec(text: str, expected: Shard | None) -> None:
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/3", "counts from 1 to 3"),
        ("4/3", "counts from 1 to 3"),
        ("1/0", "must be 1 to"),
        ("two/3", "is not K/N"),
        ("1-3", "is not K/N"),
    ],
)
def test_parse_spec_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_spec(text)


@pytest.mark.parametrize(
    ("environ", "count", "expected"),
    [
        ({"JOB_COMPLETION_INDEX": "0"}, 4, Shard(1, 4)),  # Kubernetes counts from 0 and says no total
        ({"JOB_COMPLETION_INDEX": "3"}, 4, Shard(4, 4)),
        ({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "5"}, None, Shard(2, 5)),  # GitLab counts from 1
        ({"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_COUNT": "3"}, None, Shard(2, 3)),
        ({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "2"}, None, Shard(1, 2)),
        ({"BUILDKITE_PARALLEL_JOB": "1", "BUILDKITE_PARALLEL_JOB_COUNT": "2"}, 2, Shard(2, 2)),
    ],
)
def test_auto_reads_the_schedulers_index(environ: dict[str, str], count: int | None, expected: Shard) -> None:
    assert resolve("auto", count, environ) == expected


@pytest.mark.parametrize(
    ("spec", "count", "environ", "message"),
    [
        ("auto", None, {"JOB_COMPLETION_INDEX": "1"}, "add --shard-count N"),
        ("auto", 2, {"JOB_COMPLETION_INDEX": "2"}, "JOB_COMPLETION_INDEX=2 is not a task of 2"),
        ("auto", 3, {"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"}, "--shard-count 3 disagrees with CI_NODE_TOTAL=2"),
        ("auto", 3, {"JOB_COMPLETION_INDEX": "x"}, "JOB_COMPLETION_INDEX='x' is not a whole number"),
        ("auto", 3, {}, "none of JOB_COMPLETION_INDEX, CI_NODE_INDEX"),
        ("2/3", 4, {}, "--shard 2/3 and --shard-count 4 disagree"),
        (None, 4, {}, "goes with --shard auto"),
    ],
)
def test_auto_errors(spec: str | None, count: int | None, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(spec, count, environ)


def test_not_sharded_by_default() -> None:
    assert resolve(None, None, {"JOB_COMPLETION_INDEX": "1"}) is None
