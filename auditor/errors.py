"""Exceptions are for misuse, never for a failed link (that is data).

AuditorError            misuse the user can fix; the CLI prints one line, exit 2
├── ConfigError         bad flag value or config file key
├── InputPathError      a corpus path that does not exist or cannot be read
├── DatabaseError       the --db file cannot be opened or is not an auditor database
│   └── DatabaseInUse   another run writes the database now (see runlock.py)
└── ReportError         the --out directory cannot be written
"""

from __future__ import annotations


class AuditorError(Exception):
    """Base class: the message is a complete sentence for the user."""


class ConfigError(AuditorError):
    pass


class InputPathError(AuditorError):
    pass


class DatabaseError(AuditorError):
    pass


class DatabaseInUse(DatabaseError):
    """Another run holds the database's run lock; the message names it."""


class ReportError(AuditorError):
    pass
