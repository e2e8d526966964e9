"""Helpers of the alarm tests (test_alarms*.py; docs/sources.md, "Alarms"): the docs' worked
example, dropping inbox files, and a :class:`Rig` of the registry, the bridge and an in-process ingest.
A kit of plain helpers (no fixtures): imported."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dashboard.settings import Settings
from dashboard.store.models import Case
from dashboard.store.reference import Reference
from feedkit import CST
from feeds.bridges.alarms import ALARMS, AlarmBridge, AlarmMapper
from feeds.bridges.inbox import FolderInbox
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "sources.md"
DOC_DATE = "2026-12-07"


def doc_example(name: str) -> str:
    """The fenced block after ``<!-- example: NAME -->`` in docs/sources.md."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- example: {re.escape(name)} -->\s*```\w*\n(.*?)```", text, re.S)
    assert match, f"docs/sources.md has no example {name}"
    return match.group(1)


def example_day() -> str:
    """A past day the ingest accepts for the example's times (09:00–11:00 in the city): yesterday."""
    return (datetime.now(CST) - timedelta(days=1)).strftime("%Y-%m-%d")


def write_registry(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "devices.csv").write_text(doc_example("devices.csv"), encoding="utf-8")
    (folder / "alarm-types.csv").write_text(doc_example("alarm-types.csv"), encoding="utf-8")
    return folder / "devices.csv"


def drop(folder: Path, name: str, text: str) -> Path:
    """Drop a complete inbox file (written as .tmp, renamed, and old enough to be read)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{name}.tmp"
    tmp.write_text(text, encoding="utf-8")
    return tmp.rename(folder / name)


class Rig:
    """The registry imported, a bridge on a folder inbox, an in-process ingest."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Reference,
                 folder: Path) -> None:
        self.settings, self.sessions, self.client, self.ref = settings, sessions, client, ref
        self.folder = folder
        self.mapper = AlarmMapper(client, settings, sessions, ref)
        self.bridge = AlarmBridge(ALARMS, self.mapper, client, settings)
        self.inbox = FolderInbox(client, settings, ALARMS, folder / "inbox", settle_s=0)
        self.ingest = Ingest(settings, sessions, client, ref, consumer="t", block_ms=10)
        self.ingest.ensure_group()

    def run(self) -> int:
        return self.bridge.run_once(self.inbox)

    def apply(self) -> None:
        while self.ingest.step():
            pass

    def case(self, case_id: str) -> Case | None:
        with self.sessions() as s:
            return s.scalars(select(Case).where(Case.case_id == case_id)).one_or_none()

    def stream_events(self) -> list[dict[str, Any]]:
        entries = cast(list[tuple[str, dict[str, str]]], self.client.xrange(self.settings.key(CASE_STREAM)))
        return [json.loads(f["event"]) for _, f in entries]


def alarm(alarm_id: str, at: datetime, device: str = "CAM-001", type_: str = "stall", **extra: Any) -> str:
    return json.dumps({"alarm_id": alarm_id, "device_id": device, "alarm_type": type_,
                       "time": at.isoformat(timespec="seconds"), **extra}, ensure_ascii=False)
