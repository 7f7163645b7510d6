"""The one shape every stage reports a problem in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Finding:
    code: str
    document: str
    field: str
    line: int | None
    message: str
    url: str | None = None
    expected: str | None = None
    actual: str | None = None
    # Anything else worth keeping (reason, redirect chain, final URL...).
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
