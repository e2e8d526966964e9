"""The wall clock: the one ``utcnow`` every module asks for the current instant.

Services take a ``clock`` callable defaulting to :func:`utcnow`, so tests pass their own.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind the code stores or compares)."""
    return datetime.now(UTC)


__all__ = ["utcnow"]
