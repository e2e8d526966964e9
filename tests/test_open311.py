"""Open311 GeoReport v2 (/open311/v2, api/open311.py): a POST goes through the stream and the ingest
like any producer's event, and reads back with the case's status; JSON and XML in the spec's
element structure; hostile input in the spec's error format.

The city is feedkit's (one district, a 2×3 block of grids, three units); the ingest runs in this
process (feedkit.ingest_pusher). The spec's own examples (GeoReport v2, wiki.open311.org) are
written below as facts — their fields and the JSON type of each — and our answers are compared
with them field by field, in JSON and in XML.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import defusedxml.ElementTree as DET
import flask
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import open311
from dashboard.figures import explore
from dashboard.figures.selection import Selection
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store import scope as scopes
from dashboard.store.db import transaction
from dashboard.store.models import Case, Region
from dashboard.store.open311 import add_key, revoke_key
from feedkit import DISTRICT
from feeds.keys import CASE_STREAM
from open311kit import LAT, LON, SERVICE, Hall, close_case

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

# A point inside the first grid of feedkit's city.

# -- the spec's examples, as facts: element → JSON type ("str", "num", "bool", "list", None allowed) --------
SPEC_SERVICE = {"service_code": "str", "service_name": "str", "description": "str", "metadata": "bool",
                "type": "str", "keywords": "str", "group": "str"}
SPEC_DEFINITION = {"service_code": "str", "attributes": "list"}
SPEC_REQUEST = {"service_request_id": "str", "status": "str", "status_notes": "str?", "service_name": "str?",
                "service_code": "str?", "description": "str?", "agency_responsible": "str?",
                "service_notice": "str?", "requested_datetime": "str", "updated_datetime": "str?",
                "expected_datetime": "str?", "address": "str?", "address_id": "str?", "zipcode": "str?",
                "lat": "num?", "long": "num?", "media_url": "str?"}
SPEC_POSTED = {"service_request_id": "str", "service_notice": "str?", "account_id": "str?"}
SPEC_TOKEN_POSTED = {"token": "str"}
SPEC_TOKEN = {"service_request_id": "str?", "token": "str"}
SPEC_ERROR = {"code": "num", "description": "str"}
# The XML documents' roots and repeated children, as in the spec's examples.
XML_SHAPES = {"services": "service", "service_requests": "request", "errors": "error"}


def _json_type_ok(value: Any, kind: str) -> bool:
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if value is None:
        return optional
    return {"str": isinstance(value, str), "bool": isinstance(value, bool),
            "num": isinstance(value, (int, float)) and not isinstance(value, bool),
            "list": isinstance(value, list)}[base]


def check_json(item: dict[str, Any], spec: dict[str, str]) -> None:
    assert set(item) == set(spec), f"fields {sorted(set(item) ^ set(spec))}"
    for name, kind in spec.items():
        assert _json_type_ok(item[name], kind), f"{name}={item[name]!r} is not {kind}"


def check_xml(text: str | bytes, root: str, spec: dict[str, str] | None) -> list[dict[str, str | None]]:
    """Parse (defusedxml) and check root, children and each child's elements; returns the children."""
    tree = DET.fromstring(text)
    assert tree.tag == root
    out = []
    for child in tree:
        assert child.tag == XML_SHAPES[root]
        fields = {e.tag: e.text for e in child}
        if spec is not None:
            assert set(fields) <= set(spec), f"unexpected {set(fields) - set(spec)}"
            for name, kind in spec.items():
                if name in fields and fields[name] is not None:
                    if kind.rstrip("?") == "num":
                        float(fields[name])  # type: ignore[arg-type]
                    if kind.rstrip("?") == "bool":
                        assert fields[name] in ("true", "false")
                if not kind.endswith("?"):
                    assert name in fields, f"{name} missing in XML"
        out.append(fields)
    return out


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture
def open311_hall(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
         feed_city: Any) -> Iterator[Hall]:
    yield Hall(settings, sessions, redis_client, feed_city)


# -- tests -------------------------------------------------------------------------------------------
def test_services_and_definition_follow_the_spec_in_json_and_xml(open311_hall: Hall) -> None:
    r = open311_hall.get("services.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    services = r.get_json()
    assert len(services) > 100  # one per 小类 of the scheme
    for s in services:
        check_json(s, SPEC_SERVICE)
    mine = next(s for s in services if s["service_code"] == SERVICE)
    assert mine["metadata"] is False and mine["type"] == "realtime"
    r = open311_hall.get("services.xml")
    assert r.status_code == 200 and r.mimetype == "text/xml"
    rows = check_xml(r.data, "services", SPEC_SERVICE)
    assert [x["service_code"] for x in rows] == [s["service_code"] for s in services]
    d = open311_hall.get(f"services/{SERVICE}.json").get_json()
    check_json(d, SPEC_DEFINITION)
    root = DET.fromstring(open311_hall.get(f"services/{SERVICE}.xml").data)
    assert root.tag == "service_definition" and root.findtext("service_code") == SERVICE
    assert root.find("attributes") is not None
    r = open311_hall.get("services/NOPE.json")
    assert r.status_code == 404
    check_json(r.get_json()[0], SPEC_ERROR)


def test_post_goes_through_stream_and_ingest_and_reads_back_closed(open311_hall: Hall, sessions: sessionmaker[Session],
                                                                     settings: Settings) -> None:
    r = open311_hall.post(address_string="中山路 1 号", **{"attribute[depth]": "30cm"},
                  media_url="https://example.org/p/1.jpg")
    assert r.status_code == 201, r.data
    answer = r.get_json()
    check_json(answer[0], SPEC_TOKEN_POSTED)  # the ingest has not run: a token
    token = answer[0]["token"]
    # On the stream: one reported event, source public, the service's class, the point.
    entries = open311_hall.redis.xrange(settings.key(CASE_STREAM))
    assert len(entries) == 1
    event = json.loads(entries[0][1]["event"])
    assert (event["type"], event["source"], event["kind"], event["class_code"]) == ("reported", "public",
                                                                                     "event", "06010")
    assert (event["lon"], event["lat"], event["address"]) == (LON, LAT, "中山路 1 号")
    case_id = event["case_id"]
    pending = open311_hall.get(f"tokens/{token}.json").get_json()
    assert pending == [{"service_request_id": None, "token": token}]
    assert open311_hall.get(f"requests/{case_id}.json").status_code == 404  # not a case before the ingest
    open311_hall.ingest()
    with sessions() as s:
        case = s.scalar(select(Case).where(Case.case_id == case_id))
        assert case is not None and case.source == "public" and case.grid_id is not None
    got = open311_hall.get(f"tokens/{token}.json").get_json()
    check_json(got[0], SPEC_TOKEN)
    assert got[0]["service_request_id"] == case_id
    req = open311_hall.get(f"requests/{case_id}.json").get_json()[0]
    check_json(req, SPEC_REQUEST)
    assert req["status"] == "open" and req["service_code"] == SERVICE
    assert req["description"] == "井盖缺失 <b>&amp;</b>\ndepth: 30cm"
    assert req["media_url"] == "https://example.org/p/1.jpg"
    assert req["requested_datetime"].endswith("+08:00")
    # Visible on /explore: the case table of the city.
    timing = reference.timing_for(settings, sessions())
    with sessions() as s:
        table = explore.case_table(s, scopes.CITY, timing, datetime.now(UTC), Selection.parse(""))
    assert case_id in [row["case_id"] for row in table.rows]
    close_case(open311_hall, case_id)
    req = open311_hall.get(f"requests/{case_id}.json").get_json()[0]
    check_json(req, SPEC_REQUEST)
    assert req["status"] == "closed"
    assert req["agency_responsible"] == "单位U-HW"
    assert req["status_notes"] == "结案：已补装井盖"
    assert req["updated_datetime"] > req["requested_datetime"]
    with sessions() as s:
        deadline = s.scalar(select(Case.deadline_at).where(Case.case_id == case_id))
    if deadline is not None:
        assert req["expected_datetime"] == deadline.astimezone(settings.tz).isoformat(timespec="seconds")
    xml = check_xml(open311_hall.get(f"requests/{case_id}.xml").data, "service_requests", SPEC_REQUEST)
    assert xml[0]["status"] == "closed" and xml[0]["agency_responsible"] == "单位U-HW"
    assert xml[0]["description"] == "井盖缺失 <b>&amp;</b>\ndepth: 30cm"  # text, escaped on the wire
    assert b"<b>" not in open311_hall.get(f"requests/{case_id}.xml").data
    listed = open311_hall.get("requests.json", status="closed", service_code=SERVICE).get_json()
    assert [x["service_request_id"] for x in listed] == [case_id]
    assert open311_hall.get("requests.json", status="open").get_json() == []
    check_xml(open311_hall.get("requests.xml").data, "service_requests", SPEC_REQUEST)


def test_post_answers_the_id_when_the_ingest_is_quick(settings: Settings, sessions: sessionmaker[Session],
                                                      redis_client: redis.Redis, feed_city: Any) -> None:
    import threading

    open311_hall = Hall(settings, sessions, redis_client, feed_city, wait_s=5.0)
    stop = threading.Event()

    def ingest_loop() -> None:
        while not stop.is_set():
            open311_hall.ingest()
            stop.wait(0.05)

    worker = threading.Thread(target=ingest_loop)
    worker.start()
    try:
        r = open311_hall.post("xml")
    finally:
        stop.set()
        worker.join()
    assert r.status_code == 201
    rows = check_xml(r.data, "service_requests", SPEC_POSTED)
    assert rows[0]["service_request_id"].startswith("o311-")  # type: ignore[union-attr]


def test_the_same_request_makes_one_case(open311_hall: Hall, sessions: sessionmaker[Session],
                                         settings: Settings) -> None:
    first = open311_hall.post().get_json()[0]["token"]
    assert open311_hall.post().get_json()[0]["token"] == first  # same key, same content, within the window
    one = open311_hall.post(headers={"Idempotency-Key": "app-42"}, description="另一件").get_json()[0]["token"]
    assert open311_hall.post(headers={"Idempotency-Key": "app-42"}, description="另一件").get_json()[0]["token"] == one
    assert open311_hall.post(client_request_id="app-43", description="又一件").get_json()[0]["token"] != one
    assert open311_hall.redis.xlen(settings.key(CASE_STREAM)) == 3
    open311_hall.ingest()
    with sessions() as s:
        assert len(list(s.scalars(select(Case.case_id)))) == 3


HOSTILE: list[tuple[dict[str, Any], int, str]] = [
    ({"service_code": "NOPE"}, 400, "service_code"),
    ({"service_code": None}, 400, "service_code"),
    ({"lat": None, "long": None}, 400, "location"),
    ({"lat": "abc"}, 400, "lat"),
    ({"long": "1e400"}, 400, "long"),
    ({"lat": "95.0"}, 400, "lat"),
    ({"lat": "nan"}, 400, "lat"),
    ({"long": None}, 400, "lat and long"),
    ({"description": "x" * 3001}, 400, "description"),
    ({"address_string": "路" * 257}, 400, "address_string"),
    ({"description": "a\x00b"}, 400, "description"),
    ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ({"description": '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'},
     201, ""),
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_hostile_posts_get_the_spec_error_format(open311_hall: Hall, fmt: str, settings: Settings) -> None:
    for change, status, word in HOSTILE:
        r = open311_hall.post(fmt, **change)
        assert r.status_code == status, (change, r.data)
        assert b"Traceback" not in r.data
        if status >= 400:
            if fmt == "json":
                body = r.get_json()
                check_json(body[0], SPEC_ERROR)
                assert body[0]["code"] == status and word in body[0]["description"]
            else:
                errors = check_xml(r.data, "errors", SPEC_ERROR)
                assert errors[0]["code"] == str(status) and word in (errors[0]["description"] or "")
    for key, status in ((None, 403), ("wrong", 403), ("x" * 300, 403)):
        r = open311_hall.post(fmt, key=key)
        assert r.status_code == status
    too_big = open311_hall.http.post(f"/open311/v2/requests.{fmt}",
                                     data={"api_key": open311_hall.key, "description": "x" * 70_000})
    assert too_big.status_code == 413
    assert open311_hall.http.post("/open311/v2/requests.html", data={"api_key": open311_hall.key}).status_code == 404
    # The XML-looking description went in as text, never parsed: it comes back escaped.
    open311_hall.ingest()
    xml = open311_hall.get("requests.xml").data
    assert b"<!ENTITY" not in xml and b"&lt;!ENTITY" in xml
    assert DET.fromstring(xml).tag == "service_requests"


def test_hostile_queries_get_the_spec_error_format(open311_hall: Hall) -> None:
    bad = [
        ({"start_date": "yesterday"}, 400, "start_date"),
        ({"end_date": "2026-13-01T00:00:00Z"}, 400, "end_date"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"}, 400, "90 days"),
        ({"start_date": "2026-05-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"}, 400, "before"),
        ({"status": "pending"}, 400, "status"),
        ({"page": "0"}, 400, "page"),
        ({"page_size": "5000"}, 400, "page_size"),
        ({"page": "-1"}, 400, "page"),
        ({"service_request_id": ",".join(str(i) for i in range(200))}, 400, "service_request_id"),
    ]
    for fmt in ("json", "xml"):
        for args, status, word in bad:
            r = open311_hall.get(f"requests.{fmt}", **args)
            assert r.status_code == status, (args, r.data)
            if fmt == "json":
                assert r.get_json()[0]["code"] == status and word in r.get_json()[0]["description"]
            else:
                errors = check_xml(r.data, "errors", SPEC_ERROR)
                assert word in (errors[0]["description"] or "")
        assert open311_hall.get(f"requests.{fmt}", key="wrong").status_code == 403
        assert open311_hall.get(f"requests.{fmt}", key=None).status_code == 403  # anonymous reads off
        assert open311_hall.get(f"requests/nothing.{fmt}").status_code == 404
        assert open311_hall.get(f"tokens/nothing.{fmt}").status_code == 404
        r = open311_hall.get(f"nowhere.{fmt}")
        assert r.status_code == 404 and b"Traceback" not in r.data
    ok = open311_hall.get("requests.json", start_date="2026-01-01", end_date="2026-03-31T23:59:59+08:00")
    assert ok.status_code == 200 and ok.get_json() == []


def test_keys_scope_revocation_and_anonymous_reads(open311_hall: Hall, sessions: sessionmaker[Session],
                                                   settings: Settings, redis_client: redis.Redis,
                                                   feed_city: Any) -> None:
    open311_hall.post()
    open311_hall.ingest()
    with transaction(sessions) as s:
        s.add(Region(code="990299", name="别区", level="district"))
    with transaction(sessions) as s:
        _, inside = add_key(s, "district-app", DISTRICT, datetime.now(UTC))
        _, outside = add_key(s, "other-app", "990299", datetime.now(UTC))
    assert len(open311_hall.get("requests.json", key=inside).get_json()) == 1
    assert open311_hall.get("requests.json", key=outside).get_json() == []
    with transaction(sessions) as s:
        revoke_key(s, "district-app")
    assert open311_hall.get("requests.json", key=inside).status_code == 403
    # Anonymous reads switched on: public fields only.
    anonymous = Hall(settings.model_copy(update={"open311_anonymous_read": True}), sessions, redis_client,
                     feed_city)
    rows = anonymous.get("requests.json", key=None).get_json()
    assert len(rows) == 1 and "description" not in rows[0] and rows[0]["status"] == "open"
    assert anonymous.post(key=None).status_code == 403  # a POST always needs a key


def test_rate_limit_per_key(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis,
                            feed_city: Any) -> None:
    open311_hall = Hall(settings.model_copy(update={"api_rate_per_second": 2}), sessions, redis_client, feed_city)
    codes = [open311_hall.get("services.json").status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and 429 in codes[2:]
    r = open311_hall.get("services.xml")
    assert r.status_code == 429
    check_xml(r.data, "errors", SPEC_ERROR)


def test_address_only_uses_the_geocoder_seam(settings: Settings, sessions: sessionmaker[Session],
                                             redis_client: redis.Redis, feed_city: Any) -> None:
    """Without a geocoder an address-only request goes in 未定位; with one, at the point it finds."""
    plain = Hall(settings, sessions, redis_client, feed_city)
    assert plain.post(lat=None, long=None, address_string="中山路 8 号").status_code == 201

    class Found:
        lon, lat = LON, LAT

    asked: list[str] = []

    def geocoder(session: Session) -> Any:
        def geocode(text: str) -> Found | None:
            asked.append(text)
            return Found() if "中山路" in text else None
        return geocode

    located = Hall(settings, sessions, redis_client, feed_city, geocoder=geocoder)
    assert located.post(lat=None, long=None, address_string="中山路 9 号").status_code == 201
    assert located.post(lat=None, long=None, address_string="无名路").status_code == 201
    assert asked == ["中山路 9 号", "无名路"]
    plain.ingest()
    with sessions() as s:
        rows = {c.address: (c.grid_id is not None, c.lon) for c in s.scalars(select(Case))}
    assert rows == {"中山路 8 号": (False, None), "中山路 9 号": (True, LON), "无名路": (False, None)}


def test_a_mapping_file_defines_the_services(settings: Settings, sessions: sessionmaker[Session],
                                             redis_client: redis.Redis, feed_city: Any, tmp_path: Any) -> None:
    mapping = tmp_path / "services.toml"
    mapping.write_text('[[service]]\nservice_code = "litter"\nkind = "event"\nclass_code = "06010"\n'
                       'service_name = "乱扔垃圾"\ngroup = "市容"\n\n'
                       '[[service]]\nservice_code = "cover"\nkind = "component"\nclass_code = "01001"\n',
                       encoding="utf-8")
    open311_hall = Hall(settings.model_copy(update={"open311_services": mapping}), sessions, redis_client, feed_city)
    services = open311_hall.get("services.json").get_json()
    assert [(s["service_code"], s["service_name"], s["group"]) for s in services][0] == ("litter", "乱扔垃圾", "市容")
    assert [s["service_code"] for s in services] == ["litter", "cover"]
    assert open311_hall.post(service_code=SERVICE).status_code == 400  # the default codes are gone
    assert open311_hall.post(service_code="litter").status_code == 201
    open311_hall.ingest()
    assert open311_hall.get("requests.json").get_json()[0]["service_code"] == "litter"
    bad = tmp_path / "bad.toml"
    bad.write_text('[[service]]\nservice_code = "x"\nkind = "event"\nclass_code = "99999"\n', encoding="utf-8")
    broken = Hall(settings.model_copy(update={"open311_services": bad}), sessions, redis_client, feed_city)
    r = broken.get("services.json")
    assert r.status_code == 500 and b"Traceback" not in r.data


def test_redis_away_answers_503_in_the_spec_format(settings: Settings, sessions: sessionmaker[Session],
                                                   redis_client: redis.Redis, feed_city: Any) -> None:
    open311_hall = Hall(settings, sessions, redis_client, feed_city)
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, decode_responses=True)
    app = flask.Flask("open311-away")
    app.register_blueprint(open311.create_blueprint(sessions, settings.model_copy(update={"api_rate_per_second": 0}),
                                                    redis_client=away, wait_s=0.0))
    for fmt in ("json", "xml"):
        r = app.test_client().post(f"/open311/v2/requests.{fmt}", data={
            "api_key": open311_hall.key, "service_code": SERVICE, "lat": str(LAT), "long": str(LON)})
        assert r.status_code == 503 and r.headers["Retry-After"] == "5" and b"Traceback" not in r.data
        if fmt == "json":
            check_json(r.get_json()[0], SPEC_ERROR)
        else:
            check_xml(r.data, "errors", SPEC_ERROR)
