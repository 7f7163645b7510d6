"""Benchmark (not a test): where one audit's time goes, phase by phase, on bench/vs_lychee.py's setup.

Makes vs_lychee.py's corpus and loopback HTTPS server (names mapped in /etc/hosts, restored
afterwards: run as root), then runs `auditor audit` in this process with its phases wrapped,
and prints for each the wall and CPU seconds of this process and its peak RSS; at the end the
whole run, this process's CPU and its children's (the crawl's processes, the parsing workers,
the forked judging and report writers).

    .venv/bin/python bench/phases.py [--docs 4000] [--publishers 25] [--latency 0.05] [-- AUDIT OPTIONS]

Options after `--` go to `auditor audit` (e.g. `-- --processes 2`, `-- --max-age 1d` for a
second run over the first one's database, which is kept in --work).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme

import auditor.pipeline
from auditor.cli import main as auditor_main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_lychee

PHASES = ((auditor.pipeline, "_ingest"), (auditor.pipeline, "_crawl"), (auditor.pipeline, "_judge"),
          (auditor.pipeline, "build_report"), (auditor.pipeline, "write_reports"))  # fmt: skip


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(name: str, phase: Callable[..., Any], started: float) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        try:
            return phase(*args, **kwargs)
        finally:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
            at = time.perf_counter() - started
            # The processes the phase started and ended (parsing workers, crawl processes, forked judging
            # and report writers): a phase's CPU over its wall time says how many cores it kept busy.
            theirs = _children_cpu() - children
            print(f"  {name:<14} {seconds:6.2f} s wall {cpu_seconds:6.2f} s CPU here {theirs:6.2f} s in its processes "
                  f"({(cpu_seconds + theirs) / seconds:4.2f} cores)  peak RSS {peak:4.0f} MiB  (ends at {at:5.1f} s)",
                  flush=True)  # fmt: skip

    return run


def run_timed(started: float) -> None:
    """Run `auditor` with sys.argv as it is, and say how it ended: its exit code, the wall seconds since
    `started`, and the CPU of this process and of the children it waited for."""
    try:
        auditor_main()
    except SystemExit as end:
        children = _children_cpu()
        print(f"  exit {end.code}: {time.perf_counter() - started:.2f} s wall; CPU {time.process_time():.2f} s "
              f"here, {children:.2f} s in child processes")  # fmt: skip


def main() -> None:
    given = sys.argv[1:]
    split = given.index("--") if "--" in given else len(given)
    own, audit_options = given[:split], given[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--publishers", type=int, default=25)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/auditor-bench-phases"))
    args = parser.parse_args(own)
    if os.geteuid() != 0 or not os.access("/etc/hosts", os.W_OK):
        print("this bench maps its host names in /etc/hosts (restored afterwards) and must run as root.")
        return
    lock = open("/tmp/auditor-vs-lychee.lock", "w")  # noqa: SIM115 (held until the process ends)
    fcntl.flock(lock, fcntl.LOCK_EX)  # one bench at a time: the same names and port
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    hosts = vs_lychee.all_hosts(args.publishers)
    addresses = [vs_lychee.address(index) for index in range(len(hosts))]
    if not (work / "corpus").exists():
        vs_lychee.write_corpus(work / "corpus", args.docs, args.publishers)
    ca = trustme.CA()
    ca.issue_cert(*hosts).private_key_and_cert_chain_pem.write_to_path(str(work / "server.pem"))
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    config = {"cert": str(work / "server.pem"), "publishers": args.publishers, "latency": args.latency,
              "page_kb": 16, "addresses": addresses, "port": 443}  # fmt: skip
    (work / "server.json").write_text(json.dumps(config))
    original = Path("/etc/hosts").read_text()
    server = None
    try:
        block = "".join(f"{addr} {host}\n" for addr, host in zip(addresses, hosts, strict=True))
        mark = vs_lychee.HOSTS_MARK
        Path("/etc/hosts").write_text(original.rstrip("\n") + f"\n{mark}\n{block}{mark} end\n")
        server = subprocess.Popen([sys.executable, vs_lychee.__file__, "--serve", str(work / "server.json")],
                                  stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert server.stdout is not None
        if not server.stdout.readline().startswith("ready"):
            raise SystemExit("the server did not start")
        os.environ["SSL_CERT_FILE"] = str(work / "ca.pem")
        started = time.perf_counter()
        for module, name in PHASES:
            setattr(module, name, timed(name, getattr(module, name), started))
        extra = audit_options
        if "--max-age" not in extra:
            (work / "audit.sqlite").unlink(missing_ok=True)
        sys.argv = ["auditor", "audit", str(work / "corpus"), "--db", str(work / "audit.sqlite"), "--out",
                    str(work / "reports"), "--allow-private", "--concurrency", "64", "--per-host", "64",
                    "--rate", "1000", "--fail-on", "never", "--quiet", *extra]  # fmt: skip
        latency = f"{args.latency * 1000:.0f} ms per response"
        print(f"auditor audit {' '.join(sys.argv[3:])} ({args.docs} documents, {latency})")
        run_timed(started)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        Path("/etc/hosts").write_text(original)


if __name__ == "__main__":  # the crawl's processes, when spawned, import this file
    main()
