"""Alembic migrations: upgrade/downgrade round-trip, and the models agree with the migrations.

Runs on the active backend (see conftest.backend_name) but in a database of its own, so the
session's migrated database is left alone: a new SQLite file, or a fresh PostgreSQL schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from dashboard.settings import Settings, load_settings
from dashboard.store import db, history
from dashboard.store.history import is_partition_name
from dashboard.store.models import Base, Case


def backend_name() -> str:
    # Same rule as conftest.backend_name: the suite's backend follows GRIDHALL_DATABASE_URL.
    url = os.environ.get("GRIDHALL_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgresql") else "sqlite"


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings pointing at an empty database that nothing else uses."""
    if backend_name() == "sqlite":
        yield load_settings(
            data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'migrations.db'}"
        )
        return
    base_url = make_url(os.environ["GRIDHALL_DATABASE_URL"])
    if base_url.drivername == "postgresql":
        base_url = base_url.set(drivername="postgresql+psycopg")
    schema = f"gh_mig_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(os.environ["GRIDHALL_DATABASE_URL"]).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    try:
        yield load_settings(
            data_dir=tmp_path, database_url=url.render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def fresh_engine(fresh_settings: Settings) -> Iterator[Engine]:
    engine = db.make_engine(fresh_settings)
    yield engine
    engine.dispose()


def _head(settings: Settings) -> str:
    head = ScriptDirectory.from_config(db.alembic_config(settings)).get_current_head()
    assert head is not None
    return head


def _tables(engine: Engine) -> set[str]:
    """The tables, without case_events' partitions (PostgreSQL, 0011): those are not in the model."""
    return {t for t in inspect(engine).get_table_names() if not is_partition_name(t)} - {"alembic_version"}


def _skip_partitions(name: str | None, type_: str, parent_names: object) -> bool:
    return not (type_ == "table" and is_partition_name(name))  # as migrations/env.py compares


def _diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _skip_partitions})
        return compare_metadata(context, Base.metadata)


def test_fresh_database_is_really_separate(fresh_engine: Engine) -> None:
    if backend_name() == "postgresql":
        with fresh_engine.connect() as conn:
            assert conn.execute(text("SELECT current_schema()")).scalar().startswith("gh_mig_")
    assert _tables(fresh_engine) == set()
    assert db.current_revision(fresh_engine) is None


def test_upgrade_downgrade_upgrade_round_trip(fresh_settings: Settings, fresh_engine: Engine) -> None:
    model_tables = set(Base.metadata.tables)
    head = _head(fresh_settings)

    db.upgrade(fresh_settings)
    assert db.current_revision(fresh_engine) == head
    assert _tables(fresh_engine) == model_tables

    db.downgrade(fresh_settings)
    assert db.current_revision(fresh_engine) is None
    assert _tables(fresh_engine) == set(), "downgrade to base should drop every table"

    db.upgrade(fresh_settings)
    assert db.current_revision(fresh_engine) == head
    assert _tables(fresh_engine) == model_tables
    assert _diff(fresh_engine) == []


def test_models_and_migrations_agree(fresh_settings: Settings, fresh_engine: Engine) -> None:
    db.upgrade(fresh_settings)
    diff = _diff(fresh_engine)
    assert diff == [], f"models and migrations differ; write a migration for: {diff}"


def test_comparison_would_notice_a_missing_table(fresh_settings: Settings, fresh_engine: Engine) -> None:
    """Guard for the test above: compare_metadata really looks at this database."""
    db.upgrade(fresh_settings)
    with fresh_engine.begin() as conn:
        conn.execute(text("DROP TABLE person_grids"))
    diff = _diff(fresh_engine)
    assert any(d[0] == "add_table" and d[1].name == "person_grids" for d in diff), diff


def test_migrated_schema_stores_utc(fresh_settings: Settings, fresh_engine: Engine) -> None:
    """The migrated schema works with the ORM: aware datetimes go in and come out as UTC."""
    db.upgrade(fresh_settings)
    shanghai = timezone(timedelta(hours=8))
    reported = datetime(2026, 11, 25, 9, 30, tzinfo=shanghai)
    factory = db.session_factory(fresh_engine)
    with db.transaction(factory) as session:
        session.add(Case(case_id="C-1", stage="reported", urgency="normal", reported_at=reported))
    with factory() as session:
        stored = session.scalars(select(Case.reported_at)).one()
    assert stored == reported
    assert stored.tzinfo == UTC
    assert stored.hour == 1


def test_0006_hall_screens_down_and_up(fresh_settings: Settings, fresh_engine: Engine) -> None:
    """0006 adds the hall's tables and nothing else; its downgrade removes exactly those."""
    hall = {"screens", "banners", "banner_screens", "hall_changes"}
    db.upgrade(fresh_settings, "0005")
    before = _tables(fresh_engine)
    assert not hall & before
    db.upgrade(fresh_settings, "0006")
    assert _tables(fresh_engine) == before | hall
    columns = {c["name"] for c in inspect(fresh_engine).get_columns("screens")}
    assert {"name", "display_user_id", "region_id", "layout", "tile", "metric", "playlist", "sound",
            "created_by", "updated_by"} <= columns
    db.downgrade(fresh_settings, "0005")
    assert db.current_revision(fresh_engine) == "0005"
    assert _tables(fresh_engine) == before
    db.upgrade(fresh_settings)
    assert _diff(fresh_engine) == []


def test_0007_alerts_down_and_up(fresh_settings: Settings, fresh_engine: Engine) -> None:
    """0007 adds the alerts table (one row per case and reason) and nothing else; its downgrade removes it."""
    db.upgrade(fresh_settings, "0006")
    before = _tables(fresh_engine)
    assert "alerts" not in before
    db.upgrade(fresh_settings, "0007")
    assert _tables(fresh_engine) == before | {"alerts"}
    inspector = inspect(fresh_engine)
    columns = {c["name"] for c in inspector.get_columns("alerts")}
    assert {"case_id", "reason", "level", "district_id", "grid_id", "raised_at", "escalated_at", "acknowledged_at",
            "acknowledged_by", "acknowledged_scope", "cleared_at"} <= columns
    assert any(u["column_names"] == ["case_id", "reason"] for u in inspector.get_unique_constraints("alerts"))
    assert "ix_alerts_waiting" in {i["name"] for i in inspector.get_indexes("alerts")}
    factory = db.session_factory(fresh_engine)
    at = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    with db.transaction(factory) as session:  # the unique key holds on the migrated table
        # Plain SQL, not the model: later revisions add columns to cases the 0007 table has not.
        session.execute(text("INSERT INTO cases (case_id, stage, urgency, reported_at, rework_count, return_count, "
                             "extension_count) VALUES ('C-1', 'reported', 'urgent', :at, 0, 0, 0)"),
                        {"at": at.replace(tzinfo=None)})
        session.execute(text("INSERT INTO alerts (case_id, reason, level, raised_at) "
                             "VALUES ('C-1', 'urgent', 'district', :at)"), {"at": at.replace(tzinfo=None)})
    with pytest.raises(Exception, match="(?i)unique"), db.transaction(factory) as session:
        session.execute(text("INSERT INTO alerts (case_id, reason, level, raised_at) "
                             "VALUES ('C-1', 'urgent', 'city', :at)"), {"at": at.replace(tzinfo=None)})
    db.downgrade(fresh_settings, "0006")
    assert db.current_revision(fresh_engine) == "0006"
    assert _tables(fresh_engine) == before
    db.upgrade(fresh_settings)
    assert _diff(fresh_engine) == []


def test_0008_gazetteer_down_and_up(fresh_settings: Settings, fresh_engine: Engine) -> None:
    """0008 adds the gazetteer table and nothing else; its downgrade removes it."""
    db.upgrade(fresh_settings, "0008_gazetteer")
    assert "gazetteer" in inspect(fresh_engine).get_table_names()
    db.downgrade(fresh_settings, "0007")
    assert "gazetteer" not in inspect(fresh_engine).get_table_names()
    assert "alerts" in inspect(fresh_engine).get_table_names()
    assert db.current_revision(fresh_engine) == "0007"
def test_0009_devices_down_and_up(fresh_settings: Settings, fresh_engine: Engine) -> None:
    """0009 adds the device registry (devices, alarm_types) and the alarm columns of cases, keeping
    the cases there; its downgrade removes exactly that (issue 16, docs/sources.md)."""
    db.upgrade(fresh_settings, "0008_gazetteer")
    before = _tables(fresh_engine)
    at = datetime(2026, 12, 7, 4, 0, tzinfo=UTC).replace(tzinfo=None)
    with fresh_engine.begin() as conn:
        conn.execute(text("INSERT INTO cases (case_id, stage, urgency, reported_at, rework_count, return_count, "
                          "extension_count) VALUES ('C-1', 'reported', 'normal', :at, 0, 0, 0)"), {"at": at})
    db.upgrade(fresh_settings, "0009_devices")
    assert _tables(fresh_engine) == before | {"devices", "alarm_types"}
    inspector = inspect(fresh_engine)
    columns = {c["name"] for c in inspector.get_columns("cases")}
    assert {"device_id", "device_kind", "alarm_type", "alarm_count", "alarm_cleared_at"} <= columns
    assert "ix_cases_device_id" in {i["name"] for i in inspector.get_indexes("cases")}
    with fresh_engine.connect() as conn:  # the case is kept, its alarm columns empty
        assert conn.execute(text("SELECT case_id, device_id, alarm_count FROM cases")).all() == [("C-1", None, None)]
    db.downgrade(fresh_settings, "0008_gazetteer")
    assert _tables(fresh_engine) == before
    assert not {"device_id", "alarm_count"} & {c["name"] for c in inspect(fresh_engine).get_columns("cases")}
    db.upgrade(fresh_settings)
    assert _diff(fresh_engine) == []


def _rows(conn: object, sql: str) -> list[tuple[object, ...]]:
    """Rows with their times as text: SQLite's raw SQL gives text, PostgreSQL's datetimes."""
    return [tuple(v.isoformat(sep=" ") if isinstance(v, datetime) else v for v in r)
            for r in conn.execute(text(sql))]  # type: ignore[attr-defined]


def _events_at_0010(engine: Engine) -> list[tuple[object, ...]]:
    """Events over three months (plus one very old and one far ahead) written at 0010, as the ingest did."""
    at0 = datetime(2026, 9, 30, 17, 0)  # naive UTC: 2026-10-01 01:00 in Shanghai (an October event)
    times = [at0 + timedelta(days=d, hours=h) for d in (0, 20, 40, 55) for h in (0, 5)]
    times += [datetime(1999, 1, 1, 0, 0), datetime(2099, 6, 1, 0, 0)]
    with engine.begin() as conn:
        for n, at in enumerate(times):
            conn.execute(text("INSERT INTO case_events (event_id, case_id, type, occurred_at, received_at, payload, "
                              "problem) VALUES (:e, :c, 'reported', :at, :at, '{}', :p)"),
                         {"e": f"E-{n}", "c": f"C-{n % 3}", "at": at, "p": "late" if n == 3 else None})
        rows = _rows(conn, "SELECT id, event_id, occurred_at FROM case_events ORDER BY id")
    return rows


def test_0011_converts_a_populated_case_events_and_back(fresh_settings: Settings, fresh_engine: Engine) -> None:
    """0011 keeps every event with its id, fills case_event_ids, partitions by month on PostgreSQL (SQLite: one
    table), ids continue from the same sequence; the downgrade gives the unique event_id back with the rows."""
    db.upgrade(fresh_settings, "0010_open311")
    before = _events_at_0010(fresh_engine)
    db.upgrade(fresh_settings, "0011_partitioned_events")
    with fresh_engine.connect() as conn:
        after = _rows(conn, "SELECT id, event_id, occurred_at FROM case_events ORDER BY id")
        ids = dict(_rows(conn, "SELECT event_id, occurred_at FROM case_event_ids"))
        problem = conn.execute(text("SELECT problem FROM case_events WHERE event_id = 'E-3'")).scalar()
        parts = history.partitions(conn, with_rows=False)
    assert after == before and problem == "late"
    assert ids == {e: at for _, e, at in before}
    index_names = {i["name"] for i in inspect(fresh_engine).get_indexes("case_events")}
    assert {"ix_case_events_case_time", "ix_case_events_event_id", "ix_case_events_problem"} <= index_names
    assert not inspect(fresh_engine).get_unique_constraints("case_events")
    if backend_name() == "postgresql":
        names = [p.name for p in parts]
        # Oct 2026 (city time) up to this month + GRIDHALL_PARTITIONS_AHEAD, and the default
        assert names[0] == "case_events_2026_10" and names[-1] == "case_events_default"
        assert {"case_events_2026_11", "case_events_2026_12"} <= set(names)
        assert parts[0].lower == datetime(2026, 9, 30, 16, 0)  # local midnight of the 1st, stored as UTC
        with fresh_engine.connect() as conn:
            where = dict(conn.execute(text("SELECT event_id, tableoid::regclass::text FROM case_events")).all())
        assert where["E-0"] == "case_events_2026_10" and where["E-8"] == "case_events_default"
        assert where["E-9"] == "case_events_default"  # 2099: beyond the partitions made
    else:
        assert parts == []
    with fresh_engine.begin() as conn:  # the ids continue where they were
        conn.execute(text("INSERT INTO case_events (event_id, case_id, type, occurred_at, received_at, payload) "
                          "VALUES ('E-new', 'C-9', 'reported', :at, :at, '{}')"), {"at": datetime(2026, 11, 2)})
        new_id = conn.execute(text("SELECT id FROM case_events WHERE event_id = 'E-new'")).scalar()
    assert new_id == max(i for i, _, _ in before) + 1
    db.upgrade(fresh_settings)  # later revisions add tables of their own: at the head the schema is the models'
    assert _diff(fresh_engine) == []

    db.downgrade(fresh_settings, "0010_open311")
    assert "case_event_ids" not in _tables(fresh_engine)
    with fresh_engine.connect() as conn:
        back = _rows(conn, "SELECT id, event_id, occurred_at FROM case_events ORDER BY id")
        assert history.partitions(conn) == []
        assert not history.is_partitioned(conn)
    assert back == [*before, (new_id, "E-new", "2026-11-02 00:00:00")]
    uniques = inspect(fresh_engine).get_unique_constraints("case_events")
    assert [u["column_names"] for u in uniques] == [["event_id"]]
    with pytest.raises(Exception, match="(?i)unique"), fresh_engine.begin() as conn:
        conn.execute(text("INSERT INTO case_events (event_id, case_id, type, occurred_at, received_at, payload) "
                          "VALUES ('E-0', 'C-9', 'reported', :at, :at, '{}')"), {"at": datetime(2026, 11, 3)})
    with fresh_engine.begin() as conn:  # and the sequence still goes on
        conn.execute(text("INSERT INTO case_events (event_id, case_id, type, occurred_at, received_at, payload) "
                          "VALUES ('E-after', 'C-9', 'reported', :at, :at, '{}')"), {"at": datetime(2026, 11, 3)})
        # (past the id the refused duplicate took from the sequence)
        assert conn.execute(text("SELECT id FROM case_events WHERE event_id = 'E-after'")).scalar() > new_id
    db.upgrade(fresh_settings)
    assert _diff(fresh_engine) == []
