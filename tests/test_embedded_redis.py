"""The embedded Redis is stopped by whoever started it (issue 12, point 16)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

import cli
import embeddedredis
from dashboard.settings import Settings, load_settings


@pytest.fixture
def embedded(tmp_path: Path) -> Settings:
    """Settings for an embedded server of this test's own (never the run's shared one)."""
    return load_settings(data_dir=tmp_path / "data", redis_url=None)


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower():
            return True
        time.sleep(0.1)
    return False


def test_demo_stop_stops_the_embedded_redis_without_a_false_warning(embedded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The demo checks Redis (check_redis), then holds a client, then stops the server: its
    own connections are not "someone else"."""
    said = io.StringIO()
    monkeypatch.setattr(cli.supervisor, "err", Console(file=said, width=200))
    cli.common.require_backends(embedded)  # what `gridhall demo` does first
    holder = cli.supervisor.hold_embedded_redis(embedded)
    assert holder is not None
    pid = int(holder.client.info("server")["process_id"])
    assert holder.shutdown_embedded() is True, said.getvalue()
    assert "left running" not in said.getvalue()
    assert _gone(pid), "the embedded redis-server is still running"


def test_demo_stop_leaves_a_server_someone_else_uses(embedded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import redis

    said = io.StringIO()
    monkeypatch.setattr(cli.supervisor, "err", Console(file=said, width=200))
    holder = cli.supervisor.hold_embedded_redis(embedded)
    assert holder is not None
    socket = holder.client.connection_pool.connection_kwargs["path"]
    other = redis.Redis(unix_socket_path=socket)
    other.client_setname("someone-else")
    pid = int(holder.client.info("server")["process_id"])
    monkeypatch.setattr(cli.supervisor.time, "monotonic", _fast_clock())  # skip the 5 s grace period
    try:
        assert holder.shutdown_embedded() is False
        assert "still in use by someone-else" in said.getvalue()
        assert other.ping()
    finally:
        other.close()
        embeddedredis.stop(embeddedredis.servers_under(embedded.data_dir))
    assert _gone(pid)


def _fast_clock():  # type: ignore[no-untyped-def]
    real = time.monotonic
    offset = [0.0]

    def clock() -> float:
        offset[0] += 1.0
        return real() + offset[0]

    return clock


def test_servers_under_finds_exactly_the_runs_servers(embedded, tmp_path: Path) -> None:
    """The check the run ends with (conftest.pytest_sessionfinish) sees a server left behind."""
    from feeds.connection import connect

    assert embeddedredis.servers_under(tmp_path) == []
    client = connect(embedded)
    pid = int(client.info("server")["process_id"])
    found = embeddedredis.servers_under(tmp_path)
    assert [p.pid for p in found] == [pid]
    assert embeddedredis.servers_under(tmp_path / "elsewhere") == []
    client.connection_pool.disconnect()
    embeddedredis.stop(found)
    assert _gone(pid) and embeddedredis.servers_under(tmp_path) == []
