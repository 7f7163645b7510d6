"""Host partitions: which of N shards checks a URL, and which shard this process is.

Every shard reads the whole corpus and checks only the URLs whose politeness
bucket (the host; all AMP cache hosts are one bucket) hashes to it, so a host
is asked from one place only and no URL is fetched twice. The hash is
blake2b of the bucket, the same in every process, machine and release of
Python (the built-in `hash` of a str is salted per process).

`--shard auto` takes the index from the scheduler that started the process;
SOURCES lists the variables read, in order, and the README shows them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from auditor.config import MAX_SHARDS, Shard
from auditor.crawl.politeness import host_bucket
from auditor.errors import ConfigError

AUTO = "auto"
_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class IndexSource:
    """Where a scheduler puts a task's index (and maybe the count)."""

    scheduler: str
    index: str  # the variable with the task's index
    first: int  # the index of the first task: 0 or 1
    count: str | None = None  # the variable with the number of tasks, if the scheduler sets one
    offset: str | None = None  # a variable with the first index, if the scheduler sets one (Slurm)


SOURCES = (
    IndexSource("Kubernetes Indexed Job", "JOB_COMPLETION_INDEX", 0),
    IndexSource("GitLab CI parallel", "CI_NODE_INDEX", 1, count="CI_NODE_TOTAL"),
    IndexSource(
        "Slurm job array", "SLURM_ARRAY_TASK_ID", 0, count="SLURM_ARRAY_TASK_COUNT", offset="SLURM_ARRAY_TASK_MIN"
    ),
    IndexSource("CircleCI parallelism", "CIRCLE_NODE_INDEX", 0, count="CIRCLE_NODE_TOTAL"),
    IndexSource("Buildkite parallelism", "BUILDKITE_PARALLEL_JOB", 0, count="BUILDKITE_PARALLEL_JOB_COUNT"),
)


def parse_spec(text: str, *, what: str = "--shard") -> Shard | None:
    """`K/N` as a Shard, `auto` as None (resolved later, from the environment); anything else a ConfigError.

    `what` (the option) starts the message; empty, the caller says where the text came from.
    """
    if text.strip().lower() == AUTO:
        return None
    prefix = f"{what}: " if what else ""
    match = _SPEC.fullmatch(text)
    if match is None:
        raise ConfigError(f"{prefix}{text!r} is not K/N (like 2/8) or 'auto'")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ConfigError(f"{prefix}{text!r}: the shard count must be 1 to {MAX_SHARDS}")
    if not 1 <= index <= count:
        raise ConfigError(f"{prefix}{text!r}: the shard index counts from 1 to {count}")
    return Shard(index, count)


def resolve(spec: str | None, count: int | None, environ: Mapping[str, str]) -> Shard | None:
    """The shard this process is, from --shard and --shard-count (None: not sharded)."""
    if spec is None:
        if count is not None:
            raise ConfigError("--shard-count: goes with --shard auto (or K/N), not alone")
        return None
    shard = parse_spec(spec)
    if shard is None:
        return _from_environment(count, environ)
    if count is not None and count != shard.count:
        raise ConfigError(f"--shard {shard} and --shard-count {count} disagree")
    return shard


def _from_environment(count: int | None, environ: Mapping[str, str]) -> Shard:
    for source in SOURCES:
        text = environ.get(source.index, "").strip()
        if not text:
            continue
        where = f"--shard auto ({source.scheduler})"
        first = _integer(environ, source.offset, where) if source.offset and environ.get(source.offset) else None
        index = _integer(environ, source.index, where) - (source.first if first is None else first) + 1
        given = _integer(environ, source.count, where) if source.count and environ.get(source.count) else None
        if count is None and given is None:
            raise ConfigError(f"{where}: {source.index} is set, but not the shard count: add --shard-count N")
        if count is not None and given is not None and count != given:
            raise ConfigError(f"{where}: --shard-count {count} disagrees with {source.count}={given}")
        total = count if count is not None else given
        assert total is not None
        if not 1 <= total <= MAX_SHARDS or not 1 <= index <= total:
            raise ConfigError(f"{where}: {source.index}={text} is not a task of {total}")
        return Shard(index, total)
    names = ", ".join(source.index for source in SOURCES)
    raise ConfigError(f"--shard auto: none of {names} is set; give --shard K/N")


def _integer(environ: Mapping[str, str], name: str | None, where: str) -> int:
    text = environ.get(name or "", "").strip()
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{where}: {name}={text!r} is not a whole number") from None


def shard_of(url: str, count: int) -> int:
    """The shard (1 to count) that checks this URL: the one its politeness bucket hashes to."""
    bucket = host_bucket(urlsplit(url).hostname or "")
    digest = hashlib.blake2b(bucket.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count + 1


def owns(shard: Shard | None, url: str) -> bool:
    """Whether this process checks the URL (every URL, when not sharded)."""
    return shard is None or shard_of(url, shard.count) == shard.index
