"""`gridhall serve` under gunicorn with several workers serves a complete page from any worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from authkit import make_user, signin_opener
from clikit import free_port, gunicorn_served

REPO = Path(__file__).resolve().parent.parent


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - our own server
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait_healthy(proc: subprocess.Popen[bytes], base: str, what: str, output: Callable[[], str]) -> None:
    """Until ``base``/healthz answers 200 (60 s at most); the process's output if it dies first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(output())
        try:
            if _get(base + "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{what} did not answer within 60 s")


@pytest.fixture
def served(engine, settings, tmp_path):  # type: ignore[no-untyped-def]
    port = free_port()
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
    try:
        _wait_healthy(proc, base, "serve",
                      lambda: proc.stdout.read().decode() if proc.stdout else "serve died")
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


@pytest.fixture
def gunicorn_logged(engine, settings):  # type: ignore[no-untyped-def]
    """The production command (gunicorn -c gunicorn.conf.py app:server), 2 workers; its log lines.

    The access log format adds the worker's pid (``%(p)s``) so the test can tell which worker
    answered each request, and the request line (``%(r)s``) and referrer to check redaction.
    """
    with gunicorn_served(settings, 'ACCESS %(p)s %(s)s "%(r)s" "%(f)s" %(q)s', GRIDHALL_LOG_LEVEL="INFO") as served:
        yield served


def _with_cookie(url: str, cookie: str) -> int:
    request = urllib.request.Request(url, headers={"Cookie": f"gridhall_session={cookie}"})
    return _get_request(request)


def _get_request(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - our own server
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _workers_of(lines: list[str], marker: str) -> dict[str, set[str]]:
    """status → pids of the access-log lines whose query holds ``marker``."""
    found: dict[str, set[str]] = {}
    for line in list(lines):
        parts = line.split()
        if "ACCESS" in parts and marker in line:
            at = parts.index("ACCESS")
            found.setdefault(parts[at + 2], set()).add(parts[at + 1])
    return found


def _until_both_workers(base: str, lines: list[str], cookie: str, marker: str, expected: int) -> set[str]:
    """Ask with ``cookie`` on fresh connections until both workers have answered; all must be ``expected``."""
    for n in range(300):
        assert _with_cookie(f"{base}/_dash-dependencies?{marker}={n}", cookie) == expected
        if n % 10 == 9:
            time.sleep(0.2)  # let the access log lines arrive
            pids = _workers_of(lines, marker).get(str(expected), set())
            if len(pids) >= 2:
                return pids
    raise AssertionError(f"only one worker answered: {_workers_of(lines, marker)}")


def test_sign_out_refuses_a_copied_cookie_on_every_worker_within_a_second(gunicorn_logged, sessions) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 points 10 and 13: a real 2-worker gunicorn; sign-out revokes a copied cookie on both
    workers within 1 s; the display token never reaches gunicorn's access log."""
    import http.cookiejar

    from authkit import display_token

    base, lines = gunicorn_logged
    opener = signin_opener(base, make_user(sessions, "shift_lead"))
    jar = next(h for h in opener.handlers if hasattr(h, "cookiejar")).cookiejar  # type: ignore[attr-defined]
    assert isinstance(jar, http.cookiejar.CookieJar)
    copied = next(c.value for c in jar if c.name == "gridhall_session")
    assert copied
    # The copy works on both workers (each has checked and cached it).
    _until_both_workers(base, lines, copied, "before", 200)

    # Sign out in the browser, with the page's CSRF token, as the header's button does.
    with opener.open(f"{base}/login?next=/explore", timeout=10) as r:
        assert r.geturl().endswith("/explore")
    csrf = next(c.value for c in jar if c.name == "_csrf_token")
    with opener.open(urllib.request.Request(f"{base}/logout", data=f"csrf_token={csrf}".encode(), method="POST"),
                     timeout=10) as r:
        assert "/login" in r.geturl()
    signed_out = time.monotonic()
    assert _with_cookie(f"{base}/_dash-dependencies?after=first", copied) == 401
    assert time.monotonic() - signed_out < 1.0
    assert len(_until_both_workers(base, lines, copied, "after", 401)) == 2

    # A wall's sign-in link: the token appears in no access-log line (request line nor referrer).
    token = display_token(sessions)
    request = urllib.request.Request(f"{base}/wall?token={token}&metric=overdue",
                                     headers={"Referer": f"{base}/wall?token={token}"})
    assert _get_request(request) == 200  # the 303 and the pages it leads to (no cookie jar here)
    time.sleep(0.5)
    log = "".join(lines)
    assert "token=[redacted]&metric=overdue" in log
    assert token not in log and token[3:] not in log
