"""Benchmark: `auditor lint` over a generated 10,000-document corpus.

Issue 4 asks for "a 10,000-document corpus in seconds". Each document is the
seed file with unique URLs (so nothing is deduplicated away) and one planted
provider mismatch in every tenth. Prints wall time and documents per second.

    .venv/bin/python bench/lint_10k.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from auditor import pipeline
from auditor.config import Config

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_6e5f9b61bd50d890.txt"


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seed = SEED.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp, "corpus")
        for index in range(count):
            shard = corpus / f"{index // 1000:03d}"
            shard.mkdir(parents=True, exist_ok=True)
            text = seed.replace("LAPD", f"LAPD{index}")
            if index % 10 == 0:
                text = text.replace("domain: govtech.com", "domain: govtech.org")
            (shard / f"{index:06d}.txt").write_text(text)
        config = Config(paths=(corpus,), db=Path(tmp, "audit.sqlite"), out=Path(tmp, "reports"))
        started = time.perf_counter()
        outcome = pipeline.lint(config)
        elapsed = time.perf_counter() - started
    summary = outcome.report.summary
    print(f"documents={summary.documents} references={summary.references} findings={summary.findings}")
    print(f"lint wall time {elapsed:.2f}s ({summary.documents / elapsed:,.0f} documents/s), formats={config.formats}")


if __name__ == "__main__":
    main()
