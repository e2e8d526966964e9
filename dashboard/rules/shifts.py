"""The hall's shifts (班次): boundaries in the city's local time, and the shift an instant falls in.

``GRIDHALL_SHIFTS`` lists the boundaries as ``HH:MM`` in local time, e.g. ``08:00,16:00,24:00``
(``24:00`` is midnight, the same as ``00:00``). The halls work every day, so shifts ignore the
working calendar (节假日 included). A shift is named by its local start, ``2026-11-20T08:00``;
across a daylight-saving change (not in China) a shift simply spans what the wall clock says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

__all__ = ["LISTED", "MAX_NOTES", "Shift", "ShiftPlan", "parse_boundaries", "parse_shift_start"]

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
SHIFT_FORMAT = "%Y-%m-%dT%H:%M"
MAX_NOTES = 2000  # characters of a shift lead's handover notes
LISTED = 50  # past handovers listed when no number is asked for (gridhall handover --limit)


def parse_boundaries(text: str) -> tuple[int, ...]:
    """``"08:00,16:00,24:00"`` → minutes after local midnight, sorted, unique; ValueError if bad."""
    minutes: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _HHMM.match(part)
        if m is None or int(m.group(2)) > 59 or int(m.group(1)) > 24 or (int(m.group(1)) == 24 and m.group(2) != "00"):
            raise ValueError(f"{part!r} is not a time of day HH:MM (00:00–24:00)")
        minutes.add((int(m.group(1)) * 60 + int(m.group(2))) % 1440)
    if not minutes:
        raise ValueError("no shift boundary given (e.g. 08:00,16:00,24:00)")
    return tuple(sorted(minutes))


@dataclass(frozen=True)
class Shift:
    """One shift: [start, end) as aware UTC instants, and its local name."""

    start: datetime
    end: datetime
    tz: tzinfo

    @property
    def key(self) -> str:
        """``2026-11-20T08:00``: the local start, the shift's name everywhere (CLI, URLs, files)."""
        return self.start.astimezone(self.tz).strftime(SHIFT_FORMAT)

    @property
    def label(self) -> str:
        """``2026-11-20 08:00—16:00`` (the end's date too when it is another day, except midnight)."""
        s, e = self.start.astimezone(self.tz), self.end.astimezone(self.tz)
        same_day = e.date() == s.date() or (e.time() == time(0) and e.date() == s.date() + timedelta(days=1))
        end_text = ("24:00" if e.time() == time(0) else f"{e:%H:%M}") if same_day else f"{e:%Y-%m-%d %H:%M}"
        return f"{s:%Y-%m-%d %H:%M}—{end_text}"


@dataclass(frozen=True)
class ShiftPlan:
    """The boundaries of every day, in one time zone."""

    boundaries: tuple[int, ...]  # minutes after local midnight
    tz: tzinfo

    @classmethod
    def parse(cls, text: str, tz: tzinfo) -> ShiftPlan:
        return cls(parse_boundaries(text), tz)

    def _local(self, day: date, minute: int) -> datetime:
        naive = datetime.combine(day, time(minute // 60, minute % 60))
        return naive.replace(tzinfo=self.tz).astimezone(UTC)

    def _starts_around(self, at: datetime) -> list[datetime]:
        day = at.astimezone(self.tz).date()
        return [self._local(day + timedelta(days=d), m) for d in (-1, 0, 1, 2) for m in self.boundaries]

    def shift_at(self, at: datetime) -> Shift:
        """The shift that ``at`` (aware) falls in."""
        starts = self._starts_around(at)
        i = max(k for k, s in enumerate(starts) if s <= at)
        return Shift(starts[i], starts[i + 1], self.tz)

    def previous(self, shift: Shift) -> Shift:
        return self.shift_at(shift.start - timedelta(seconds=1))

    def last_ended(self, now: datetime) -> Shift:
        """The latest shift that has ended by ``now``."""
        return self.previous(self.shift_at(now))

    def named(self, key: str) -> Shift:
        """The shift whose local start is ``key`` (``YYYY-MM-DDTHH:MM``); ValueError if none starts then."""
        start = parse_shift_start(key, self.tz)
        shift = self.shift_at(start)
        if shift.start != start:
            bounds = ", ".join(f"{m // 60:02d}:{m % 60:02d}" for m in self.boundaries)
            raise ValueError(f"no shift starts at {key} (shifts start at {bounds})")
        return shift


def parse_shift_start(key: str, tz: tzinfo) -> datetime:
    """``2026-11-20T08:00`` (local) → aware UTC; ValueError with the expected form."""
    try:
        naive = datetime.strptime(key.strip(), SHIFT_FORMAT)
    except ValueError:
        raise ValueError(f"expected YYYY-MM-DDTHH:MM, e.g. 2026-11-20T08:00, not {key!r}") from None
    return naive.replace(tzinfo=tz).astimezone(UTC)
