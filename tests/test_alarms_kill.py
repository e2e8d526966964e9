"""The alarm bridge killed mid-file (a real ``python -m cli bridge alarms`` subprocess, SIGKILL)
and restarted loses and duplicates nothing: the case stream and the dead letters end up exactly
as one uninterrupted run of the same file makes them (same decisions, same event ids, once each).
docs/sources.md, "Alarms".
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import redis
from sqlalchemy.orm import Session, sessionmaker

from alarmkit import drop, write_registry
from dashboard.settings import Settings
from dashboard.store.devices import import_devices
from dashboard.store.reference import Reference
from feedkit import CST, REPO, ingest_env
from feeds.bridges.alarms import ALARMS, AlarmBridge, AlarmMapper
from feeds.bridges.inbox import FolderInbox
from feeds.keys import BRIDGE_FILES_KEY, CASE_STREAM, DEAD_LETTER_STREAM

N = 3000


def alarm_file(seed: int = 16) -> str:
    rng = random.Random(seed)
    at = datetime.now(CST).replace(microsecond=0) - timedelta(days=3)
    lines = []
    for i in range(N):
        at += timedelta(seconds=rng.randint(10, 1500))
        device, type_ = rng.choice([("CAM-001", "stall"), ("CAM-001", "garbage"), ("SEN-001", "manhole")])
        record: dict[str, Any] = {"alarm_id": f"K-{i}", "device_id": device, "alarm_type": type_,
                                  "time": at.isoformat()}
        roll = rng.random()
        if roll < 0.08:
            record["cleared"] = True
        elif roll < 0.11:
            record["device_id"] = "CAM-404"  # unknown_device
        elif roll < 0.13:
            record["time"] = "soon"  # bad_time
        lines.append(json.dumps(record))
    return "\n".join(lines) + "\n"


def stream(client: redis.Redis, key: str) -> list[dict[str, str]]:
    return [f for _, f in cast(list[tuple[str, dict[str, str]]], client.xrange(key))]


def reference_run(settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Reference,
                  folder: Path, text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The uninterrupted run, in-process, under its own key prefix: (events, dead letters)."""
    mine = settings.model_copy(update={"redis_prefix": settings.redis_prefix + "ref:"})
    drop(folder, "alarms.jsonl", text)
    bridge = AlarmBridge(ALARMS, AlarmMapper(client, mine, sessions, ref), client, mine)
    bridge.run_once(FolderInbox(client, mine, ALARMS, folder, settle_s=0))
    events = [f["event"] for f in stream(client, mine.key(CASE_STREAM))]
    dead = [(f["entry_id"], f["reason_code"]) for f in stream(client, mine.key(DEAD_LETTER_STREAM))]
    return events, dead


def start_bridge(settings: Settings, folder: Path, log: Path, *, once: bool = False) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "cli", "bridge", "alarms", "--dir", str(folder), "--settle", "0"]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd + (["--once"] if once else []), cwd=REPO, env=ingest_env(settings),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_progress(client: redis.Redis, key: str, at_least: int, proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = int(cast(str | None, client.hget(key, "alarms.jsonl")) or 0)
        if done >= at_least:
            return done
        assert proc.poll() is None, f"the bridge exited early:\n{log.read_text(errors='replace')[-3000:]}"
        time.sleep(0.02)
    raise AssertionError(f"the bridge made no progress to {at_least}:\n{log.read_text(errors='replace')[-3000:]}")


def test_killed_mid_file_and_restarted_loses_and_duplicates_nothing(
        settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis, feed_city: Reference,
        tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "registry")
    import_devices(sessions, feed_city, registry, registry.parent / "alarm-types.csv")
    text = alarm_file()
    want_events, want_dead = reference_run(settings, sessions, redis_client, feed_city, tmp_path / "ref", text)
    assert len(want_events) > N // 2 and len(want_dead) > N // 40
    merged = sum('"alarm_count"' in e and '"type":"updated"' in e for e in want_events)
    assert merged > N // 10  # the file exercises merging, not only new cases

    inbox = tmp_path / "inbox"
    drop(inbox, "alarms.jsonl", text)
    log = tmp_path / "bridge.log"
    files_key = settings.key(BRIDGE_FILES_KEY.format(name=ALARMS))
    killed_at = []
    for at_least in (300, 1400):  # two kills, each well inside the file
        proc = start_bridge(settings, inbox, log)
        done = wait_for_progress(redis_client, files_key, at_least, proc, log)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at.append(done)
    assert killed_at[-1] < N, "the kills came too late to be mid-file"
    final = start_bridge(settings, inbox, log, once=True)
    assert final.wait(timeout=180) == 0, log.read_text(errors="replace")[-3000:]

    got_events = [f["event"] for f in stream(redis_client, settings.key(CASE_STREAM))]
    got_dead = [(f["entry_id"], f["reason_code"]) for f in stream(redis_client, settings.key(DEAD_LETTER_STREAM))]
    ids = [json.loads(e)["event_id"] for e in got_events]
    assert len(ids) == len(set(ids)), "an event was published twice"
    assert got_events == want_events  # nothing lost, same decisions, same order
    assert got_dead == want_dead
    assert (inbox / "done" / "alarms.jsonl").exists() and not (inbox / "alarms.jsonl").exists()
    assert redis_client.hget(files_key, "alarms.jsonl") is None
