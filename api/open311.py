"""``/open311/v2``: Open311 GeoReport v2 — services, service requests and tokens, JSON and XML.

Endpoints (docs/open311.md has curl examples):

- ``GET services.{json,xml}`` and ``GET services/{service_code}.{json,xml}`` (the definition);
- ``POST requests.{json,xml}`` (form-encoded, ``api_key`` required): becomes one ``reported``
  event (source ``public``) on the case stream (``feeds/open311.py``); answers the
  ``service_request_id`` when the ingest applied it within ``wait_s``, else a ``token``;
- ``GET tokens/{token}.{json,xml}``: the ``service_request_id`` once the case exists;
- ``GET requests.{json,xml}`` (``service_request_id``, ``service_code``, ``start_date``/``end_date``
  at most 90 days apart, ``status``, ``page``/``page_size``) and ``GET requests/{id}.{json,xml}``.

Every GET needs an ``api_key`` (query parameter) unless ``GRIDHALL_OPEN311_ANONYMOUS_READ`` is on;
then a call without one reads the city's requests without ``description`` and ``media_url``. A key
is scoped like a user (its region): requests outside it are not found. Each key (or, anonymous,
each client address) may make ``GRIDHALL_API_RATE_PER_SECOND`` calls a second (429 beyond).

Errors are the spec's: JSON ``[{"code": 400, "description": "…"}]``, XML
``<errors><error><code>400</code><description>…</description></error></errors>``, with the
same HTTP status; never a traceback. The blueprint answers for itself (auth/policy.py
``SELF_GUARDED_PREFIXES``) and is CSRF-exempt like every ``api_`` blueprint: a POST carries its
api_key, no cookie.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import flask
import redis
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from api.v1 import json_text
from auth.proxies import client_address
from auth.throttle import ApiThrottle
from dashboard.rules.classification import Classification
from dashboard.rules.clock import utcnow
from dashboard.settings import Settings
from dashboard.store import open311 as store
from dashboard.store.models import Open311Key
from dashboard.store.scope import ScopeError
from feeds.open311 import Geocode, RequestDesk, Submission, locate

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
MAX_BODY = 64 * 1024
MAX_RANGE = timedelta(days=90)
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_IDS = 100
MAX_ATTRIBUTES = 20
LIMITS = {"address_string": 256, "description": 3000, "media_url": 1024, "attribute": 200,
          "client_request_id": 128, "first_name": 100, "last_name": 100, "email": 254, "phone": 40,
          "device_id": 128, "account_id": 128, "jurisdiction_id": 64, "service_code": 32,
          "address_id": 64, "api_key": 256}
FORMATS = ("json", "xml")
_W3C_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9:.]{5,15}([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?")
_ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_.-]{1,64})\](\[\])?$")
# XML 1.0 cannot carry these characters at all (even escaped): dropped from answers.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

TEXT = {
    400: "bad request",
    403: "api_key missing or invalid",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    429: "too many requests",
    500: "internal server error",
    503: "service unavailable",
}


class Open311Error(Exception):
    def __init__(self, status: int, description: str | None = None) -> None:
        super().__init__(description or TEXT[status])
        self.status = status
        self.description = description or TEXT[status]


# -- output ---------------------------------------------------------------------------------------
def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _xml_element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        for k, v in value.items():
            element.append(_xml_element(k, v))
    elif isinstance(value, list):
        child = {"attributes": "attribute", "values": "value"}.get(tag, "item")
        for v in value:
            element.append(_xml_element(child, v))
    elif value is not None:
        element.text = _xml_text(value)
    return element


def xml_document(root: str, child: str | None, body: Any) -> str:
    """``<root><child>…</child>…</root>`` (child None: ``body`` is the root's fields)."""
    element = ET.Element(root)
    if child is None:
        for k, v in body.items():
            element.append(_xml_element(k, v))
    else:
        for item in body:
            element.append(_xml_element(child, item))
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(element, encoding="unicode")


def answer(fmt: str, body: Any, root: str, child: str | None, status: int = 200) -> flask.Response:
    if fmt == "xml":
        return flask.Response(xml_document(root, child, body), status=status, mimetype="text/xml")
    return flask.Response(json_text(body), status=status, mimetype="application/json")


def _format_of_request() -> str:
    path = flask.request.path
    return "xml" if path.endswith(".xml") else "json"


def error_response(status: int, description: str, fmt: str | None = None) -> flask.Response:
    fmt = fmt or _format_of_request()
    return answer(fmt, [{"code": status, "description": description}], "errors", "error", status)


# -- input ----------------------------------------------------------------------------------------
def _text(form: Any, name: str, *, required: bool = False) -> str | None:
    values: list[str] = form.getlist(name)
    if len(values) > 1:
        raise Open311Error(400, f"{name}: given more than once")
    value = values[0] if values else None
    if value is not None:
        if "\x00" in value or _NOT_XML.search(value):
            raise Open311Error(400, f"{name}: control characters are not allowed")
        value = value.strip()
        if len(value) > LIMITS.get(name, 256):
            raise Open311Error(400, f"{name}: at most {LIMITS.get(name, 256)} characters")
    if not value:
        if required:
            raise Open311Error(400, f"{name}: required")
        return None
    return value


def _coordinate(form: Any, name: str, bound: float) -> float | None:
    raw = _text(form, name)
    if raw is None:
        return None
    if not re.fullmatch(r"[+-]?[0-9]{1,3}(\.[0-9]{1,15})?", raw):
        raise Open311Error(400, f"{name}: a decimal number (WGS84 degrees)")
    value = float(raw)
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise Open311Error(400, f"{name}: between -{bound:g} and {bound:g}")
    return value


def parse_time(raw: str, name: str, tz: Any) -> datetime:
    """A w3c / ISO 8601 time (``2026-12-01T00:00:00Z``, ``…+08:00``, or a date); no offset: the city's."""
    text = raw.strip()
    if len(text) > 40 or not _W3C_TIME.fullmatch(text):
        raise Open311Error(400, f"{name}: an ISO 8601 date-time, e.g. 2026-12-01T00:00:00+08:00")
    try:
        value = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name}: not a valid date-time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def _page_arg(name: str, default: int, hi: int) -> int:
    raw = flask.request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise Open311Error(400, f"{name}: a positive integer")
    value = int(raw)
    if not 1 <= value <= hi:
        raise Open311Error(400, f"{name}: 1–{hi}")
    return value


def _list_arg(name: str, limit: int) -> list[str]:
    raw = flask.request.args.get(name) or ""
    items = [p.strip() for p in raw.split(",") if p.strip()]
    if len(items) > limit:
        raise Open311Error(400, f"{name}: at most {limit} values")
    if any(len(p) > 64 or "\x00" in p for p in items):
        raise Open311Error(400, f"{name}: a value is too long")
    return items


def create_blueprint(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    redis_client: redis.Redis,
    scheme: Classification | Callable[[], Classification] | None = None,
    clock: Callable[[], datetime] | None = None,
    geocoder: Callable[[Session], Geocode | None] | None = None,
    wait_s: float = 1.0,
) -> flask.Blueprint:
    """The ``/open311/v2`` blueprint.

    ``scheme``: the active classification (default ``Classification.from_settings``), read at the
    first request. ``geocoder``: the seam for address-only requests — given a session, a function
    text → point or None (``dashboard/geocode``, wired at merge); without it such a case has no
    point (未定位). ``wait_s``: how long a POST waits for the ingest before answering a token.
    """
    bp = flask.Blueprint("api_open311", __name__, url_prefix=PREFIX)
    now_of = clock or utcnow
    desk = RequestDesk(redis_client, settings)
    throttle = ApiThrottle(settings, redis_client) if settings.api_rate_per_second > 0 else None
    loaded: list[store.Services] = []

    def services() -> store.Services:
        if not loaded:
            active = scheme() if callable(scheme) else scheme or Classification.from_settings(settings)
            loaded.append(store.load_services(active, settings.open311_services))
        return loaded[0]

    def limited(caller: str) -> None:
        if throttle is None:
            return
        wait = throttle.retry_after(caller)
        if wait is not None:
            raise Open311Error(429, f"at most {throttle.per_second} requests per second per api_key; retry in {wait} s")

    def caller_key(session: Session, *, required: bool) -> Open311Key | None:
        """The request's api_key (counted against its rate first), or None when anonymous reads are on."""
        values = flask.request.args.getlist("api_key")
        if flask.request.method == "POST":
            values = flask.request.form.getlist("api_key") or values
        plaintext = values[0] if len(values) == 1 else None
        if plaintext is None and len(values) > 1:
            raise Open311Error(400, "api_key: given more than once")
        if plaintext is None or not plaintext.strip():
            if required or not settings.open311_anonymous_read:
                raise Open311Error(403, "api_key: required")
            limited("open311-anon:" + client_address())
            return None
        limited(ApiThrottle.token_caller("open311:" + plaintext))
        key = store.verify_key(session, plaintext.strip(), now_of())
        if key is None:
            raise Open311Error(403, "api_key: invalid or revoked")
        return key

    def check_format(fmt: str) -> str:
        if fmt not in FORMATS:
            raise Open311Error(404, "format: json or xml")
        return fmt

    def read_scope(session: Session) -> tuple[Any, bool]:
        key = caller_key(session, required=False)
        try:
            scope = store.key_scope(session, key)
        except ScopeError:
            raise Open311Error(403, "api_key: its region no longer exists") from None
        session.commit()  # last_used_at
        return scope, key is None

    def public(rows: list[dict[str, Any]], anonymous: bool) -> list[dict[str, Any]]:
        if not anonymous:
            return rows
        return [{k: v for k, v in row.items() if k in store.PUBLIC_FIELDS} for row in rows]

    @bp.route("/services.<fmt>", methods=["GET"])
    def service_list(fmt: str) -> flask.Response:
        check_format(fmt)
        with sessions() as session:
            read_scope(session)
        body = [{"service_code": s.service_code, "service_name": s.service_name, "description": s.description,
                 "metadata": s.metadata, "type": s.type, "keywords": s.keywords, "group": s.group}
                for s in services()]
        return answer(fmt, body, "services", "service")

    @bp.route("/services/<service_code>.<fmt>", methods=["GET"])
    def service_definition(service_code: str, fmt: str) -> flask.Response:
        check_format(fmt)
        with sessions() as session:
            read_scope(session)
        service = services().by_code.get(service_code)
        if service is None:
            raise Open311Error(404, "service_code: no such service")
        return answer(fmt, {"service_code": service.service_code, "attributes": []}, "service_definition", None)

    @bp.route("/requests.<fmt>", methods=["POST"])
    def post_request(fmt: str) -> flask.Response:
        check_format(fmt)
        if (flask.request.content_length or 0) > MAX_BODY:
            raise Open311Error(413, f"at most {MAX_BODY // 1024} KB")
        form = flask.request.form
        with sessions() as session:
            key = caller_key(session, required=True)
            assert key is not None
            key_id = key.id
            session.commit()
            code = _text(form, "service_code", required=True)
            assert code is not None
            service = services().by_code.get(code)
            if service is None:
                raise Open311Error(400, "service_code: no such service (see services.json)")
            lat = _coordinate(form, "lat", 90)
            lon = _coordinate(form, "long", 180)
            if (lat is None) != (lon is None):
                raise Open311Error(400, "lat and long: give both or neither")
            address = _text(form, "address_string")
            address_id = _text(form, "address_id")
            if lat is None and address is None and address_id is None:
                raise Open311Error(400, "location: lat and long, address_string or address_id required")
            if address is None and address_id is not None:
                address = f"address_id {address_id}"
            description = _text(form, "description")
            media_url = _text(form, "media_url")
            if media_url is not None and not re.fullmatch(r"https?://[^\s<>\"']+", media_url):
                raise Open311Error(400, "media_url: an http(s) URL")
            for name in ("jurisdiction_id", "first_name", "last_name", "email", "phone", "device_id",
                         "account_id"):
                _text(form, name)  # checked for size and control characters; not kept (no personal data)
            attributes: dict[str, str] = {}
            for name in form:
                match = _ATTRIBUTE.match(name)
                if match is None:
                    continue
                if len(attributes) >= MAX_ATTRIBUTES:
                    raise Open311Error(400, f"attribute: at most {MAX_ATTRIBUTES}")
                values = form.getlist(name)
                if any(len(v) > LIMITS["attribute"] or _NOT_XML.search(v) for v in values):
                    raise Open311Error(400, f"{name}: at most {LIMITS['attribute']} characters, no control characters")
                attributes[match.group(1)] = ", ".join(v.strip() for v in values)
            identifier = (flask.request.headers.get("Idempotency-Key") or "").strip() or \
                _text(form, "client_request_id")
            if identifier is not None and (len(identifier) > 128 or _NOT_XML.search(identifier)):
                raise Open311Error(400, "Idempotency-Key: at most 128 characters")
            if lat is None and address is not None:
                lon, lat = locate(address, geocoder(session) if geocoder is not None else None)
        sub = Submission(key_id, service, lon, lat, address, description, media_url, attributes, identifier)
        if len(sub.full_description() or "") > 4000:
            raise Open311Error(400, "description: with attributes and media_url at most 4000 characters")
        accepted = desk.submit(sub, now_of())
        deadline = time.monotonic() + wait_s
        while True:
            with sessions() as session:
                if store.case_exists(session, accepted.case_id):
                    body = [{"service_request_id": accepted.case_id, "service_notice": None, "account_id": None}]
                    return answer(fmt, body, "service_requests", "request", 201)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        return answer(fmt, [{"token": accepted.token}], "service_requests", "request", 201)

    @bp.route("/tokens/<token>.<fmt>", methods=["GET"])
    def token_status(token: str, fmt: str) -> flask.Response:
        check_format(fmt)
        with sessions() as session:
            read_scope(session)
            case_id = desk.case_of_token(token)
            if case_id is None:
                raise Open311Error(404, "token: unknown or expired")
            found = store.case_exists(session, case_id)
        body = [{"service_request_id": case_id if found else None, "token": token}]
        return answer(fmt, body, "service_requests", "request")

    @bp.route("/requests.<fmt>", methods=["GET"])
    def request_list(fmt: str) -> flask.Response:
        check_format(fmt)
        tz = settings.tz
        ids = _list_arg("service_request_id", MAX_IDS)
        codes = _list_arg("service_code", 200)
        statuses = _list_arg("status", 2)
        if any(s not in ("open", "closed") for s in statuses):
            raise Open311Error(400, "status: open, closed")
        raw_start, raw_end = flask.request.args.get("start_date"), flask.request.args.get("end_date")
        start = parse_time(raw_start, "start_date", tz) if raw_start else None
        end = parse_time(raw_end, "end_date", tz) if raw_end else None
        if start is None and end is None:
            end = now_of()
            start = end - MAX_RANGE
        elif start is None:
            assert end is not None
            start = end - MAX_RANGE
        elif end is None:
            end = start + MAX_RANGE
        if end < start:
            raise Open311Error(400, "end_date: before start_date")
        if end - start > MAX_RANGE:
            raise Open311Error(400, "start_date to end_date: at most 90 days")
        page = _page_arg("page", 1, 10**6)
        size = _page_arg("page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        query = store.RequestQuery(ids, codes, start, end, statuses, size, (page - 1) * size)
        with sessions() as session:
            scope, anonymous = read_scope(session)
            rows = store.find_requests(session, scope, services(), query, tz)
        return answer(fmt, public(rows, anonymous), "service_requests", "request")

    @bp.route("/requests/<request_id>.<fmt>", methods=["GET"])
    def request_one(request_id: str, fmt: str) -> flask.Response:
        check_format(fmt)
        if len(request_id) > 64:
            raise Open311Error(404, "service_request_id: no such request")
        with sessions() as session:
            scope, anonymous = read_scope(session)
            rows = store.find_requests(session, scope, services(), store.RequestQuery(ids=[request_id]),
                                       settings.tz)
        if not rows:
            raise Open311Error(404, "service_request_id: no such request")
        return answer(fmt, public(rows, anonymous), "service_requests", "request")

    @bp.route("/<path:rest>", methods=["GET", "POST"])
    def unknown(rest: str) -> flask.Response:
        """Any other path under the prefix: the spec's 404, not the app's page."""
        raise Open311Error(404, "no such endpoint")

    @bp.errorhandler(Open311Error)
    def spec_error(exc: Open311Error) -> flask.Response:
        return error_response(exc.status, exc.description)

    @bp.errorhandler(redis.RedisError)
    def feed_away(exc: redis.RedisError) -> flask.Response:
        # The stream (POST) and the tokens live in Redis: without it, "try again", not a 500.
        log.warning("open311: %s %s: Redis unavailable (%s)", flask.request.method, flask.request.path,
                    type(exc).__name__)
        response = error_response(503, "the case feed is unavailable; retry later")
        response.headers["Retry-After"] = "5"
        return response

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception) -> flask.Response:
        if isinstance(exc, HTTPException):
            status = exc.code if exc.code in TEXT else 400
            return error_response(status, TEXT[status])
        log.error("open311: %s %s failed: %s", flask.request.method, flask.request.path, exc, exc_info=True)
        return error_response(500, TEXT[500])

    @bp.after_request
    def no_store(response: flask.Response) -> flask.Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return bp
