"""Small helpers shared by the benchmark scripts (run as scripts: this folder is on sys.path).

Every bench runs on a fresh machine as the README gives it: it creates the PostgreSQL
database it needs (:func:`pg_schema`), and when a service or program is missing it prints
one line saying what to start or install and exits with :data:`NEEDS_EXIT` — never a
traceback. Each has a ``--smoke`` size (:func:`add_smoke`) and ends with a ``RESULT`` line
(:func:`result`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NoReturn

from dashboard.output.pdf import CHROMIUM_PATHS

#: The database every PostgreSQL bench uses unless given ``--pg-url``: its own, created when
#: missing, never CI's ``test`` (a bench's schemas and load stay out of the test database).
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test_bench"
#: The Redis server of the benches that start web workers (they share it; an embedded server
#: per process would not be shared). Keys go under a unique prefix that is deleted afterwards.
DEFAULT_REDIS_URL = os.environ.get("GRIDHALL_REDIS_URL") or "redis://127.0.0.1:6379/0"
#: Debian's Chromium, driven through the playwright package (no browser download).
# Debian's Chromium and the launch flags the report printer uses (defined once, in dashboard.output.pdf).
CHROMIUM = CHROMIUM_PATHS[0]
#: Exit status when something the bench needs is missing (after one line saying what).
NEEDS_EXIT = 3


def needs(what: str) -> NoReturn:
    """Say in one line what to start, install or create, and exit with NEEDS_EXIT."""
    print(f"bench needs: {what}", file=sys.stderr, flush=True)
    sys.exit(NEEDS_EXIT)


def add_smoke(parser: argparse.ArgumentParser, **sizes: Any) -> None:
    """Add ``--smoke``: run at a tiny size (seconds), for the CI test that runs every bench.

    ``sizes`` are the argparse destinations and their smoke values; :func:`parse` applies them
    over the defaults (an option given explicitly on the command line still wins).
    """
    parser.add_argument("--smoke", action="store_true",
                        help="tiny size, seconds: checks the bench runs (" +
                             ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in sizes.items()) +
                             "); speed targets are not judged")
    parser.set_defaults(_smoke_sizes=sizes)


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """parse_args, then the smoke sizes of :func:`add_smoke` for options left at their default.

    Also makes SIGTERM (``timeout``, ``kill``) end the bench as Ctrl-C does, through its
    ``finally`` blocks: the servers, ingests and schemas it started are stopped and dropped
    instead of being left behind.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)
    args = parser.parse_args(argv)
    if getattr(args, "smoke", False):
        for dest, value in args._smoke_sizes.items():
            if getattr(args, dest) == parser.get_default(dest):
                setattr(args, dest, value)
    return args


def _terminated(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def result(**values: float | int) -> None:
    """Print the bench's last line: ``RESULT name=value ...`` (numbers only, finite)."""
    parts = []
    for name, v in values.items():
        x = float(v)
        if not math.isfinite(x):
            raise ValueError(f"RESULT {name}={v}: not a finite number")
        parts.append(f"{name}={v}" if isinstance(v, int) else f"{name}={x:.6g}")
    print("RESULT " + " ".join(parts), flush=True)


# -- services --------------------------------------------------------------------------------------
def _admin_engine(url: Any) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT",
                            connect_args={"connect_timeout": 5})


def ensure_database(pg_url: str) -> None:
    """Create ``pg_url``'s database when it does not exist (through the maintenance database).

    A server that does not answer, or a database that cannot be created, ends the bench with
    one line saying what to start or create.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    name = url.database
    if not name:
        needs(f"a database name in --pg-url {pg_url}")
    where = f"-h {url.host or '127.0.0.1'} -p {url.port or 5432} -U {url.username or 'postgres'}"
    last: Exception | None = None
    for maintenance in ("postgres", "template1"):
        engine = _admin_engine(url.set(database=maintenance))
        try:
            with engine.connect() as conn:
                exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                if exists:
                    return
                try:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                except sa.exc.ProgrammingError as exc:  # created meanwhile by a parallel bench
                    if "already exists" not in str(exc):
                        needs(f"the PostgreSQL database {name!r} (could not create it: "
                              f"{str(exc.orig).strip().splitlines()[0]}); run: createdb {where} {name}")
                print(f"created the PostgreSQL database {name!r}", flush=True)
                return
        except sa.exc.OperationalError as exc:
            last = exc
        finally:
            engine.dispose()
    first = str(getattr(last, "orig", last)).strip().splitlines()[0] if last else "?"
    needs(f"a PostgreSQL server for --pg-url {url.render_as_string(hide_password=True)} ({first}); "
          f"start one, or pass --pg-url")


def pg_schema(pg_url: str, prefix: str, *, reuse: str | None = None) -> tuple[Any, str, str]:
    """A fresh schema in ``pg_url``'s database (created if missing): (admin engine, schema, its URL).

    The URL sets the schema as search_path and as application_name (so the schema's backends
    can be found). Drop the schema with :func:`drop_schema`. ``reuse``: an existing schema of
    an earlier run (kept by a bench's ``--keep-schema``) instead of a fresh one.
    """
    import sqlalchemy as sa

    ensure_database(pg_url)
    admin = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    if reuse is not None:
        if not re.fullmatch(rf"{prefix}_[0-9a-f]{{8}}", reuse):
            needs(f"--schema {reuse!r}: not a schema this bench keeps ({prefix}_xxxxxxxx)")
        with admin.connect() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"),
                                {"s": reuse}).first():
                needs(f"--schema {reuse}: no such schema in {pg_url}")
        schema = reuse
    else:
        schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_url else "?"
    return admin, schema, f"{pg_url}{sep}options=-csearch_path%3D{schema}&application_name={schema}"


def drop_schema(admin: Any, schema: str) -> None:
    """Drop a schema of :func:`pg_schema` and dispose of its admin engine."""
    import sqlalchemy as sa

    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        admin.dispose()


def release_schema(admin: Any, schema: str | None, keep: bool) -> None:
    """The end of a bench that made a schema: dropped (:func:`drop_schema`) unless ``keep``;
    the admin engine, when there is one, disposed of either way."""
    if schema and not keep:
        drop_schema(admin, schema)
    elif admin is not None:
        admin.dispose()


def add_megacity(parser: argparse.ArgumentParser, seed: int) -> None:
    """The options of the benches on a generated megacity: its size, seed and PostgreSQL."""
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL,
                        help="PostgreSQL database (created when missing) for the bench's schema")


def require_redis(redis_url: str) -> None:
    """End the bench with one line when the Redis server of ``redis_url`` does not answer."""
    import redis

    from feeds.connection import cluster_url_parts, is_cluster_url

    try:
        if is_cluster_url(redis_url):  # a cluster URL (feeds/connection.py): ping its first node
            (host, port), *_ = cluster_url_parts(redis_url)[0]
            client = redis.Redis(host=host, port=port, socket_connect_timeout=3)
        else:
            client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        needs(f"a Redis server at {redis_url} ({exc}); start one (redis-server), or pass --redis-url")


def require_chromium() -> None:
    """End the bench with one line when Debian's Chromium or the playwright package is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        needs(f"Chromium at {CHROMIUM}; install it: apt-get install chromium fonts-noto-cjk")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        needs("the playwright package; install the test extras: pip install -e '.[test]'")


def check_children(procs: dict[str, Any], logs: dict[str, Any]) -> None:
    """Raise when one of the bench's child processes (``Popen`` by name) has exited, with the
    end of its log (``Path`` by name)."""
    for name, p in procs.items():
        if p.poll() is not None:
            raise RuntimeError(f"{name} exited ({p.returncode}); see {logs[name]}:\n"
                               + logs[name].read_text(errors="replace")[-3000:])


def wait_http(url: str, timeout: float, check: Callable[[], None]) -> None:
    """Until ``url`` answers below 500; ``check()`` between tries raises when a server died."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check()
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our server
                if resp.status < 500:
                    return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


# -- small numbers ---------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a server the bench starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile with linear interpolation between ranks; NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


#: The header of :func:`dist`'s columns (answers, p50, p95, p99, max).
DIST_HEAD = f"{'n':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"


def dist(values: list[float]) -> str:
    """A distribution in one row under :data:`DIST_HEAD`: count, p50, p95, p99, max (ms)."""
    top = max(values) if values else float("nan")
    return (f"{len(values):>8} {percentile(values, 50):7.1f} {percentile(values, 95):7.1f}"
            f" {percentile(values, 99):7.1f} {top:7.0f}")
