"""`gridhall serve` under gunicorn with several workers serves a complete page from any worker."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from authkit import make_user, signin_opener

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - our own server
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def served(engine, settings, tmp_path):  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
    env.update(
        GRIDHALL_DATA_DIR=str(settings.data_dir),
        GRIDHALL_DATABASE_URL=settings.effective_database_url,
        GRIDHALL_REDIS_PREFIX=settings.redis_prefix,
        GRIDHALL_PORT=str(port),
    )
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--workers", "3", "--no-access-log"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode() if proc.stdout else "serve died")
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("serve did not answer within 60 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_every_worker_serves_every_script(served: str, settings, sessions) -> None:  # type: ignore[no-untyped-def]
    from app import create_app

    # The script URLs as this code renders them (fingerprints are version + file mtime, the
    # same in every process) -- asked for BEFORE any worker has served the index page: a
    # worker that only learns its scripts while rendering the index would answer 500 here.
    app = create_app(settings)
    with app.server.test_request_context("/wall"):  # the page itself, without signing in
        index = app.index()
    # index() called directly has not walked /assets (a request hook does): component scripts only.
    app.server.extensions["gridhall"].close()
    scripts = re.findall(r'<script src="([^"]+)"', index)
    assert any("dash-renderer" in s or "dash_renderer" in s for s in scripts), scripts
    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = list(pool.map(lambda src: (src, _get(served + src)[0]), scripts * 6))
    assert [c for c in codes if c[1] != 200] == []

    opener = signin_opener(served, make_user(sessions, "shift_lead"))
    with opener.open(served + "/wall", timeout=10) as r:
        assert r.status == 200
        served_scripts = re.findall(r'<script src="([^"]+)"', r.read().decode())
    # The served page adds our /assets scripts (walked at the first request, not by index()).
    assert [s for s in served_scripts if not s.startswith("/assets/")] == scripts
    for _ in range(6):
        request = urllib.request.Request(served + "/_dash-layout", headers={"Referer": served + "/wall"})
        with opener.open(request, timeout=10) as r:
            layout = r.read()
        assert r.status == 200 and b"Traceback" not in layout and b"wall-root" in layout
