"""Benchmark: auditor's image sizes against the test images of the image-size project (issue 8, part 5).

Serves every file of `../shared/peer_images/fixtures` (relative to the repo
root; or the directory given as the argument) from the loopback test server,
probes it through the real crawler twice — once from a server that honours
Range, once from one that ignores it — and prints per format: files, right,
wrong, rejected correctly (the peer's `null`: must not be an image),
debatable, bytes off the wire (median/max) and requests.

"Debatable" files are those where the right answer is a policy choice (EXIF
orientation, SVG without an intrinsic size, Apple's CgBI PNG); they are
listed with what auditor does, and counted neither right nor wrong. The
files are read where they are and never copied into the project.

    .venv/bin/python bench/peer_images.py [PATH/TO/peer_images]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from loopback import LoopbackServer

from auditor.config import CrawlConfig
from auditor.crawl import Crawler
from auditor.model import Check

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "peer_images"
CONFIG = CrawlConfig(allow_private=True, rate=1000.0, timeout=5.0)
MODES = {"image": "Range honoured", "noimagerange": "Range ignored"}

# Where the expected answer is a choice, not a fact (see README, "Debatable image sizes").
DEBATABLE = {
    "jpg/1x2-flipped-big-endian.jpg": "EXIF orientation: auditor reports the stored pixel grid",
    "jpg/1x2-flipped-little-endian.jpg": "EXIF orientation: auditor reports the stored pixel grid",
    "svg/viewbox-units.svg": "SVG width in em, no viewBox: no intrinsic width",
    "invalid/width.svg": "SVG with width only, no viewBox: no intrinsic height",
    "png/sample_fried.png": "Apple CgBI PNG: auditor rejects it (Chrome and Firefox cannot show it)",
}


@dataclass(frozen=True)
class Outcome:
    file: str
    mode: str
    expected: tuple[int, int] | None
    check: Check
    requests: int

    @property
    def rejected(self) -> bool:
        return self.check.image_format is None or self.check.image_error is not None

    @property
    def verdict(self) -> str:
        if self.file in DEBATABLE:
            return "debatable"
        if self.expected is None:
            return "rejected" if self.rejected else "wrong"
        return "right" if (self.check.width, self.check.height) == self.expected else "wrong"

    def describe(self) -> str:
        if self.rejected:
            return f"not an image: {self.check.image_error or self.check.reason or self.check.status}"
        size = f"{self.check.width or 'any'}x{self.check.height or 'any'}"
        return f"{self.check.image_format} {size}"


def fixtures(data_dir: Path) -> dict[str, tuple[int, int] | None]:
    sizes = json.loads((data_dir / "expected.json").read_text())["sizes"]
    return {name: tuple(size) if size else None for name, size in sizes.items()}


async def probe_all(
    server: LoopbackServer, data_dir: Path, expected: dict[str, tuple[int, int] | None]
) -> list[Outcome]:
    outcomes = []
    async with Crawler(CONFIG) as crawler:
        for file, size in sorted(expected.items()):
            name = file.replace("/", "--")
            server.add_file(name, (data_dir / "fixtures" / file).read_bytes())
            for prefix in MODES:
                path = f"/{prefix}/{name}"
                check = await crawler.check(server.url_for(path), "image")
                outcomes.append(Outcome(file, prefix, size, check, len(server.requests.for_path(path))))
    return outcomes


def print_table(outcomes: list[Outcome], mode: str) -> None:
    rows: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.mode == mode:
            rows[outcome.file.split("/")[0]].append(outcome)
    print(f"\n{MODES[mode]}")
    header = f"{'format':8s} {'files':>5s} {'right':>5s} {'wrong':>5s} {'rejected':>8s} {'debatable':>9s}"
    print(f"{header} {'bytes median':>12s} {'bytes max':>9s} {'requests':>8s} {'max':>3s}")
    every = [outcome for group in rows.values() for outcome in group]
    for label, group in [*sorted(rows.items()), ("all", every)]:
        verdicts = [outcome.verdict for outcome in group]
        reads = [outcome.check.bytes_read for outcome in group]
        requests = [outcome.requests for outcome in group]
        print(
            f"{label:8s} {len(group):5d} {verdicts.count('right'):5d} {verdicts.count('wrong'):5d} "
            f"{verdicts.count('rejected'):8d} {verdicts.count('debatable'):9d} "
            f"{statistics.median(reads):12,.0f} {max(reads):9,d} {sum(requests):8d} {max(requests):3d}"
        )


def main() -> int:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    if not (data_dir / "expected.json").is_file():
        print(f"no peer images at {data_dir} (expected.json missing); nothing to measure")
        return 0
    expected = fixtures(data_dir)
    with LoopbackServer() as server:
        outcomes = asyncio.run(probe_all(server, data_dir, expected))
    for outcome in outcomes:
        if outcome.verdict == "wrong":
            want = "reject" if outcome.expected is None else "x".join(map(str, outcome.expected))
            print(f"WRONG {outcome.file} ({MODES[outcome.mode]}): peer {want}, auditor {outcome.describe()}")
    for mode in MODES:
        print_table(outcomes, mode)
    print("\ndebatable (auditor's answer; peer's expectation):")
    for file, why in DEBATABLE.items():
        answers = {outcome.describe() for outcome in outcomes if outcome.file == file}
        peer_size = expected.get(file)
        peer = "reject" if peer_size is None else "x".join(map(str, peer_size))
        print(f"  {file}: {' / '.join(sorted(answers))}; peer {peer} — {why}")
    wrong = sum(outcome.verdict == "wrong" for outcome in outcomes)
    print(
        f"\nnon-debatable judgements right: {len(outcomes) - wrong - len(DEBATABLE) * len(MODES)}"
        f" of {len(outcomes) - len(DEBATABLE) * len(MODES)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
