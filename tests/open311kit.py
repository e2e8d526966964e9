"""Open311 tests' shared parts: the blueprint on a Flask app with a key and the in-process ingest
(:class:`Hall`), the default service, and closing a case through the feed (imported by
tests/test_open311*.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import redis
from sqlalchemy.orm import Session, sessionmaker

from api import open311
from dashboard.rules.lifecycle import EventType
from dashboard.settings import Settings
from dashboard.store.db import transaction
from dashboard.store.open311 import add_key
from feedkit import GRID_POINTS, ingest_pusher
from feeds.contract import CaseEventMessage

SERVICE = "E06010"  # event class 06010 of the default scheme: one service per 小类
LON, LAT = next(iter(GRID_POINTS.values()))  # a point inside the feed city's first grid

class Hall:
    """The blueprint on a Flask app, a key, and the in-process ingest."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Any,
                 **options: Any) -> None:
        self.settings, self.sessions, self.redis = settings, sessions, client
        app = flask.Flask("open311-test")
        app.register_blueprint(open311.create_blueprint(sessions, settings, redis_client=client,
                                                        wait_s=options.pop("wait_s", 0.0), **options))
        self.app = app
        self.http = app.test_client()
        with transaction(sessions) as s:
            _, self.key = add_key(s, f"test-app-{uuid.uuid4().hex[:8]}", None, datetime.now(UTC))
        self.push = ingest_pusher(settings, sessions, client, ref, consumer="t-open311")

    def ingest(self, *messages: CaseEventMessage) -> None:
        self.push(list(messages))

    def post(self, fmt: str = "json", key: str | None = "", headers: dict[str, str] | None = None,
             **form: Any) -> Any:
        data = {"api_key": self.key if key == "" else key, "service_code": SERVICE, "lat": str(LAT),
                "long": str(LON), "description": "井盖缺失 <b>&amp;</b>", **form}
        data = {k: v for k, v in data.items() if v is not None}
        return self.http.post(f"/open311/v2/requests.{fmt}", data=data, headers=headers or {})

    def get(self, path: str, key: str | None = "", **args: Any) -> Any:
        if key is not None:
            args["api_key"] = self.key if key == "" else key
        return self.http.get(f"/open311/v2/{path}", query_string=args)


def _event(case_id: str, type_: EventType, at: datetime, n: int, **fields: Any) -> CaseEventMessage:
    return CaseEventMessage(event_id=f"{case_id}:{n}:{type_.value}", case_id=case_id, type=type_,
                            occurred_at=at, **fields)


def close_case(hall: Hall, case_id: str) -> None:
    """The centre's side: verify, file, dispatch, handle, check, close (each a feed event)."""
    at = datetime.now(UTC) + timedelta(seconds=1)  # after the report (the ingest allows 10 min ahead)
    steps = [(EventType.VERIFIED, {}), (EventType.FILED, {}),
             (EventType.DISPATCHED, {"unit_code": "U-HW"}),
             (EventType.HANDLED, {"description": "已补装井盖"}), (EventType.CHECKED_OK, {}),
             (EventType.CLOSED, {})]
    hall.ingest(*(_event(case_id, t, at + timedelta(seconds=10 * i), i, **f) for i, (t, f) in enumerate(steps)))


