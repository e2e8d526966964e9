"""Open311 with an independent client: the ``georeport`` package (PyPI) against a real HTTP server.

georeport 0.3.1 reads (services, a service definition, requests, one request) in JSON or XML
and parses XML with xmltodict; it has no call to post a request and sends no ``api_key`` on its
reads. So the POST is made with ``requests`` as a form (as the spec describes it), and the reads
run with ``GRIDHALL_OPEN311_ANONYMOUS_READ`` on (the public fields). The case goes through the
stream and the in-process ingest; after the centre closes it, the client reads it back closed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import flask
import pytest
import redis
import requests
from georeport import GeoReport
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from api import open311
from dashboard.settings import Settings
from dashboard.store.db import transaction
from dashboard.store.open311 import add_key
from feedkit import GRID_POINTS, ingest_pusher
from open311kit import SERVICE, close_case

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")


class Served:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], client: redis.Redis, ref: Any) -> None:
        app = flask.Flask("open311-client-test")
        app.register_blueprint(open311.create_blueprint(sessions, settings, redis_client=client, wait_s=0.0))
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.root = f"http://127.0.0.1:{self.server.server_port}/open311/v2"
        with transaction(sessions) as s:
            _, self.key = add_key(s, "georeport-test", None, datetime.now(UTC))
        self.push = ingest_pusher(settings, sessions, client, ref, consumer="t-open311-client")
        self.redis = client

    def ingest(self, *messages: Any) -> None:
        self.push(list(messages))

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def open311_served(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
           feed_city: Any) -> Iterator[Served]:
    s = Served(settings.model_copy(update={"open311_anonymous_read": True}), sessions, redis_client, feed_city)
    yield s
    s.close()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_client_lists_posts_and_reads_back_closed(open311_served: Served, fmt: str) -> None:
    client = GeoReport(open311_served.root, output_format=fmt)
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    assert SERVICE in codes and len(codes) == len(set(codes))
    definition = client.get_service_definition(SERVICE)
    assert definition["service_code"] == SERVICE
    lon, lat = next(iter(GRID_POINTS.values()))
    posted = requests.post(f"{open311_served.root}/requests.{fmt}", timeout=10, data={
        "api_key": open311_served.key, "service_code": SERVICE, "lat": lat, "long": lon,
        "address_string": "中山路 1 号", "description": "占道经营"})
    assert posted.status_code == 201
    token = posted.json()[0]["token"] if fmt == "json" else \
        posted.text.split("<token>")[1].split("</token>")[0]
    open311_served.ingest()
    tokens = requests.get(f"{open311_served.root}/tokens/{token}.json", timeout=10).json()
    case_id = tokens[0]["service_request_id"]
    assert case_id
    one = client.get_service_request(case_id)
    assert one["service_request_id"] == case_id and one["status"] == "open"
    assert one["service_code"] == SERVICE
    close_case(open311_served, case_id)  # type: ignore[arg-type]  # duck-typed: ingest()
    one = client.get_service_request(case_id)
    assert one["status"] == "closed" and one["agency_responsible"] == "单位U-HW"
    listed = client.get_service_requests(status="closed")
    listed = listed if isinstance(listed, list) else [listed]  # xmltodict: one element is a dict
    assert [r["service_request_id"] for r in listed] == [case_id]
    by_id = client.get_service_requests(service_request_id=case_id)
    by_id = by_id if isinstance(by_id, list) else [by_id]
    assert by_id[0]["status"] == "closed"
