"""The wall at a past minute (回放, dashboard/figures/timetravel.py) is exactly what the live wall showed.

A scripted city goes through the real feed (Producer → Redis → Ingest → SQL) in time order; a live
view follows it (tick to the instant, apply the change notices' cases) and its figures are recorded
at several instants — across a local midnight and a month's end. Afterwards, with every event stored,
the wall is replayed at each instant from the events alone: every figure equals the recorded one,
and its overdue queue equals ``gridhall overdue --at`` (:func:`overdue_as_of`). Replays from
snapshots (written on the way, by the housekeeping task's code) equal full folds, also after a late
event that lands before a snapshot.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import feedkit
from dashboard.figures.liveview import LiveView
from dashboard.figures.overdue import overdue_as_of
from dashboard.figures.timetravel import ReplayArchived, SnapshotFolder, figures, wall_at, write_snapshots
from dashboard.rules.lifecycle import EventType as E
from dashboard.store.models import Meta
from dashboard.store.reference import rules_version_at, timing_at
from liveviewkit import L, msgs


@pytest.fixture
def replay_feed(settings, sessions, redis_client, feed_city):  # type: ignore[no-untyped-def]
    return feedkit.notice_pusher(settings, sessions, redis_client, feed_city, consumer="tt", batch_size=40)


def _script(seed: int) -> list[Any]:
    rng = random.Random(seed)
    start = L("2026-11-29 07:00")  # Sunday; over Monday 30 November and into December
    return [m for i in range(140) for m in feedkit.random_history(
        rng, f"tt{seed}-{i:03d}", start + timedelta(minutes=rng.uniform(0, 60 * 60)), max_len=10)]


INSTANTS = ["2026-11-29 18:00", "2026-11-30 00:30", "2026-11-30 09:00", "2026-11-30 15:45",
            "2026-12-01 00:20", "2026-12-01 10:00", "2026-12-02 08:59"]


def _same_queue(replayed: dict[str, Any], rows: list[Any]) -> None:
    assert [c for c, _s, _d in replayed["overdue"]] == [r.case_id for r in rows if r.overdue]
    assert [c for c, _s, _d in replayed["due_soon"]] == [r.case_id for r in rows if not r.overdue]
    assert [(s, d) for _c, s, d in replayed["overdue"] + replayed["due_soon"]] == \
        [(r.clock_stage, r.deadline_at.isoformat()) for r in rows]


def test_replay_equals_the_live_wall_and_overdue_at(settings, sessions, engine, feed_city, replay_feed,
                                                     tmp_path: Path) -> None:
    script = sorted(_script(5), key=lambda m: m.occurred_at)
    folder = SnapshotFolder(settings, tmp_path / "snaps")
    live: LiveView | None = None
    recorded: dict[str, dict[str, Any]] = {}
    sent = 0
    for text in INSTANTS:
        at = L(text)
        upto = [m for m in script[sent:] if m.occurred_at <= at]
        sent += len(upto)
        ids = replay_feed(upto) if upto else []
        with sessions() as s:
            if live is None:
                live = LiveView.load(s, feed_city.timing, at)
            else:
                live.tick(at)
                live.apply(s, ids, at)
        recorded[text] = figures(live)
        # the housekeeping owner's snapshots, written as the city goes (hourly, the last 3 due)
        write_snapshots(settings, engine, at, most=3, folder=folder)
    replay_feed(script[sent:])  # the rest of the history: after every instant
    assert len(folder.list()) >= 10
    overdue_seen = 0
    for text in INSTANTS:
        at = L(text)
        with sessions() as s:
            full = wall_at(s, settings, at, folder=folder, use_snapshots=False)
            fast = wall_at(s, settings, at, folder=folder)
            rows = overdue_as_of(s, timing_at(settings, at, s), at)
        assert full.snapshot_at is None and fast.snapshot_at is not None and fast.snapshot_at <= at
        assert fast.folded_cases < full.folded_cases
        expected = recorded[text]
        assert figures(full) == expected, text
        assert figures(fast) == expected, text
        _same_queue(expected, rows)
        overdue_seen += len(expected["overdue"])
        assert full.view.as_of == at
    assert overdue_seen and recorded["2026-12-01 10:00"]["kpis"]["day"] != recorded["2026-11-30 15:45"]["kpis"]["day"]

    # A late event: a case reported before some snapshots, stored after them. The snapshots' replay
    # still equals the full fold (it refolds the cases stored after the snapshot was written).
    replay_feed(msgs("late-1", (E.REPORTED, "2026-11-30 08:10"), (E.FILED, "2026-11-30 08:20")))
    for text in INSTANTS[2:]:
        at = L(text)
        with sessions() as s:
            full = wall_at(s, settings, at, folder=folder, use_snapshots=False)
            fast = wall_at(s, settings, at, folder=folder)
        assert figures(fast) == figures(full), text
        assert figures(full)["kpis"]["open"] == recorded[text]["kpis"]["open"] + 1 or text >= "2026-12"


def test_archived_instant_says_it_needs_the_archive(settings, sessions, feed_city) -> None:  # type: ignore[no-untyped-def]
    with sessions() as s:
        s.merge(Meta(key="archived_before", value="2026-11"))
        s.commit()
        with pytest.raises(ReplayArchived, match="归档"):
            wall_at(s, settings, L("2026-10-20 09:00"))
        with pytest.raises(ReplayArchived):
            wall_at(s, settings, L("2026-11-01 00:30"))  # its last hour reaches into October
        assert wall_at(s, settings, L("2026-11-01 01:30")).view.as_of == L("2026-11-01 01:30")


def test_the_rules_version_valid_at_the_instant(settings, sessions, feed_city, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shipped = Path(__file__).resolve().parent.parent / "dashboard/rules/data/limits/default-gbt47678-2026.csv"
    (tmp_path / "old-limits.csv").write_bytes(shipped.read_bytes())
    versions = tmp_path / "rules.toml"
    versions.write_text('[[version]]\nvalid_from = "2026-01-01"\nlimits_file = "old-limits.csv"\n'
                        'due_soon_ratio = 0.3\n\n[[version]]\nvalid_from = "2026-12-01T00:00:00+08:00"\n',
                        encoding="utf-8")
    s2 = settings.model_copy(update={"rules_versions": versions})
    assert rules_version_at(s2, L("2025-12-31 23:00")).label == "current"
    assert rules_version_at(s2, L("2026-11-30 23:59")).label == "2026-01-01"
    assert rules_version_at(s2, L("2026-12-01 00:00")).label == "2026-12-01T00:00:00+08:00"
    assert timing_at(s2, L("2026-11-30 12:00")).due_soon_ratio == 0.3
    assert timing_at(s2, L("2026-12-02 12:00")).due_soon_ratio == settings.due_soon_ratio
    with sessions() as s:  # a replay in November uses November's rules
        assert wall_at(s, s2, L("2026-11-30 12:00")).rules_version == "2026-01-01"
