"""``/api/v1``: the JSON read API, token-authenticated and filtered by the caller's region scope.

Every endpoint (the OpenAPI document included) needs ``Authorization: Bearer <token>``, a
token of a ``leader``, ``shift_lead`` or ``admin`` user (``dashboard.store.users.verify_token``), or
the browser session of such a user signed in at ``/login`` (GET only, so no CSRF exposure):

- no token, a malformed or unusable one → **401** with ``WWW-Authenticate: Bearer``;
- a display token (a wall screen's) → **403**: it may show ``/wall`` and nothing else;
- a case outside the caller's scope → **404**, the same answer as an unknown case; a
  ``region`` filter outside the scope → **404** likewise (``dashboard.store.scope``: a refusal tells
  nothing about other districts).

Answers are JSON (``<``, ``>`` and ``&`` escaped as ``\\u003c`` …, so no text of a case can
be read as HTML), with ``Cache-Control: no-store``. An unexpected error gives a generic 500
JSON and one log line with the traceback — never a traceback to the client.

The figures (summary, grids, overdue, units, evaluation) and their JSON text are computed once
per scope, parameters and ``GRIDHALL_READ_CACHE_S`` and shared by every caller of that scope
(``dashboard.figures.readcache``; /view shares them too): an answer is at most that old. Each
token (or signed-in user) may make ``GRIDHALL_API_RATE_PER_SECOND`` requests a second
(``auth.throttle.ApiThrottle``); beyond it **429** with ``Retry-After``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import flask
import redis
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import HTTPException

from auth import identity
from auth.bearer import BearerChecks
from auth.sessions import session_unconfirmed
from auth.throttle import ApiThrottle
from dashboard.figures import readapi
from dashboard.figures.casedetail import case_detail
from dashboard.figures.evaluation import ObjectKind, Period
from dashboard.figures.readcache import CachedReads, ReadCache
from dashboard.figures.scoped import OutOfScope
from dashboard.rules.clock import utcnow
from dashboard.rules.deadlines import Timing
from dashboard.rules.evalspec import INDICATORS, weights_from_settings
from dashboard.settings import Settings
from dashboard.store.archive import PeriodArchived
from dashboard.store.models import User
from dashboard.store.scope import Scope, ScopeError, get_scope
from dashboard.store.users import UserRole

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.json"
OPENAPI: dict[str, Any] = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
ALLOWED_ROLES = frozenset({UserRole.LEADER.value, UserRole.SHIFT_LEAD.value, UserRole.ADMIN.value})
DEFAULT_OVERDUE_LIMIT = 50

ERRORS = {
    401: "未认证：需要有效的访问令牌 / unauthorized: a valid bearer token is required",
    403: "无权访问：该令牌不能调用接口 / forbidden: this token may not call the API",
    404: "未找到 / not found",
    429: "请求过于频繁，请稍后再试 / too many requests: slow down",
    400: "请求参数无效 / bad request",
    500: "服务器内部错误 / internal server error",
    503: "暂时无法确认登录状态，请稍后再试 / unavailable: the session cannot be confirmed now",
}


class ApiError(Exception):
    def __init__(self, status: int, detail: str | None = None) -> None:
        super().__init__(detail or ERRORS[status])
        self.status = status
        self.detail = detail


def _plain(value: Any) -> Any:
    """Dataclasses, datetimes, enums and mappings → JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset, set)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


def json_text(body: Any) -> str:
    text = json.dumps(_plain(body), ensure_ascii=False, allow_nan=False)
    # These three only occur inside JSON strings: escaped, no case text can ever become markup.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def json_response(body: Any, status: int = 200) -> flask.Response:
    return flask.Response(json_text(body), status=status, mimetype="application/json")


def _now() -> datetime:
    return utcnow()  # looked up at each call, so a test can pin the module's clock


def _error(status: int, detail: str | None = None) -> flask.Response:
    body: dict[str, Any] = {"error": ERRORS[status]}
    if detail:
        body["detail"] = detail
    response = json_response(body, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="gridhall"'
    return response


def _too_many(retry_after: int, per_second: int) -> flask.Response:
    response = _error(429, f"每个令牌每秒最多 {per_second} 次请求 / at most {per_second} requests per second per token")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = flask.request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: 需要整数 / must be an integer") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"{name}: {lo}–{hi}")
    return value


def _bool_arg(name: str) -> bool:
    raw = (flask.request.args.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ApiError(400, f"{name}: true/false")


def _this_month(now: datetime, settings: Settings) -> str:
    return f"{now.astimezone(settings.tz):%Y-%m}"


def create_blueprint(
    sessions: sessionmaker[Session],
    settings: Settings,
    timing: Timing | Callable[[Session], Timing],
    *,
    clock: Callable[[], datetime] | None = None,
    reads: CachedReads | None = None,
    redis_client: redis.Redis | None = None,
) -> flask.Blueprint:
    """The ``/api/v1`` blueprint.

    ``timing`` (limits, working calendar, classes: ``dashboard.store.reference.timing_for``) may be
    given as a callable taking a session; it is then built at the first request (and again
    after a failure), so the app starts even while the database is away. ``reads``: the
    process's shared figures (``app.py`` passes /view's, so both share one cache); default a
    cache of this blueprint's own. ``redis_client``: where the per-token rate limit counts;
    without one there is no limit.
    """
    bp = flask.Blueprint("api_v1", __name__, url_prefix=PREFIX)
    resolved: list[Timing] = []
    now_of = clock or _now
    shared = reads or CachedReads(ReadCache(settings.read_cache_s))
    throttle = ApiThrottle(settings, redis_client) \
        if redis_client is not None and settings.api_rate_per_second > 0 else None

    def limited(caller: str) -> flask.Response | None:
        """429 when ``caller`` is over its rate; None to go on."""
        if throttle is None:
            return None
        wait = throttle.retry_after(caller)
        return None if wait is None else _too_many(wait, throttle.per_second)

    def cached(figure: str, scope: Scope, params: tuple[Any, ...], now: datetime,
               body: Callable[[], Any]) -> flask.Response:
        """The JSON of ``body()``, made once per scope, parameters and instant (readcache)."""
        text = shared.cache.get("json:" + figure, scope, params, now, lambda: json_text(body()))
        return flask.Response(text, mimetype="application/json")

    def get_timing(session: Session) -> Timing:
        if not resolved:
            resolved.append(timing(session) if callable(timing) else timing)
        return resolved[0]

    bearers = BearerChecks()  # token checks kept RECHECK_S per worker (auth/bearer.py)

    def guarded(view: Callable[..., Any]) -> Callable[..., flask.Response]:
        """Authenticate, resolve the scope, run ``view(session, scope, timing, now, **kw)``."""

        def wrapper(**kwargs: Any) -> flask.Response:
            token_text = identity.bearer_token()
            # Counted before the token is looked up: a flood costs Redis, not the database.
            refused = limited(ApiThrottle.token_caller(token_text)) if token_text is not None else None
            if refused is not None:
                return refused
            with sessions() as session:
                if token_text is None:
                    # No bearer token: the browser session of a signed-in user, if any.
                    who = identity.current()
                    if who is None and session_unconfirmed():
                        return _error(503)  # Redis away: not "signed out" (docs/security.md)
                    refused = limited(ApiThrottle.user_caller(who.user_id)) if who is not None else None
                    if refused is not None:
                        return refused
                    user = session.get(User, who.user_id) if who is not None else None
                    if user is None or user.disabled:
                        return _error(401)
                    role, region_id = user.role, user.scope_region_id
                else:
                    bearer = bearers.check(session, token_text)
                    if bearer is None:
                        return _error(401)
                    role, region_id = bearer.role, bearer.scope_region_id
                if role not in ALLOWED_ROLES:
                    session.commit()  # the use is recorded even when refused
                    return _error(403)
                try:
                    scope = get_scope(session, region_id)
                except ScopeError:  # the user's region vanished with a city re-import
                    session.commit()
                    return _error(403, "范围无效 / the user's region scope no longer exists")
                session.commit()  # last_used_at; the reads below change nothing
                result = view(session, scope, get_timing(session), now_of(), **kwargs)
                return result if isinstance(result, flask.Response) else json_response(result)

        wrapper.__name__ = view.__name__
        wrapper.__doc__ = view.__doc__
        return wrapper

    @bp.route("/summary")
    @guarded
    def summary(session: Session, scope: Any, t: Timing, now: datetime) -> Any:
        return cached("summary", scope, (), now, lambda: shared.summary(session, scope, t, now))

    @bp.route("/grids")
    @guarded
    def grids(session: Session, scope: Any, t: Timing, now: datetime) -> Any:
        region = flask.request.args.get("region") or None
        idle = _bool_arg("include_idle")
        limit = _int_arg("limit", readapi.MAX_LIMIT, 1, readapi.MAX_LIMIT)
        offset = _int_arg("offset", 0, 0, 10**9)
        try:
            return cached("grids", scope, (region, idle, limit, offset), now, lambda: shared.grids(
                session, scope, t, now, region=region, include_idle=idle, limit=limit, offset=offset))
        except OutOfScope:
            return _error(404)

    @bp.route("/overdue")
    @guarded
    def overdue(session: Session, scope: Any, t: Timing, now: datetime) -> Any:
        limit = _int_arg("limit", DEFAULT_OVERDUE_LIMIT, 1, readapi.MAX_LIMIT)
        offset = _int_arg("offset", 0, 0, 10**9)
        return cached("overdue", scope, (limit, offset), now, lambda: shared.overdue(
            session, scope, t, now, limit=limit, offset=offset))

    @bp.route("/units")
    @guarded
    def units(session: Session, scope: Any, t: Timing, now: datetime) -> Any:
        return cached("units", scope, (), now, lambda: shared.units(session, scope, t, now))

    @bp.route("/cases/<case_id>")
    @guarded
    def case(session: Session, scope: Any, t: Timing, now: datetime, case_id: str) -> Any:
        detail = case_detail(session, scope, t, now, case_id)
        return _error(404) if detail is None else detail

    @bp.route("/evaluation")
    @guarded
    def evaluation(session: Session, scope: Any, t: Timing, now: datetime) -> Any:
        """综合考评: one object kind ranked in the caller's scope (optionally a region inside it)."""
        kind = flask.request.args.get("kind") or ObjectKind.DISTRICT.value
        if kind not in {k.value for k in ObjectKind}:
            raise ApiError(400, "kind: " + ", ".join(k.value for k in ObjectKind))
        try:
            period = Period.parse(flask.request.args.get("period") or _this_month(now, settings), settings.tz)
        except ValueError as exc:
            raise ApiError(400, f"period: {exc}") from None
        region = (flask.request.args.get("region") or "").strip()
        if region:
            if not region.isdigit() or len(region) not in (6, 9, 12) or not scope.allows(region):
                return _error(404)
            try:
                scope = get_scope(session, region)
            except ScopeError:
                return _error(404)
        weights = weights_from_settings(settings)

        def body() -> Any:
            try:
                result = shared.evaluation(session, scope, kind, period, weights, now)
            except PeriodArchived as exc:  # the period's closed cases are in the archive (docs/history.md)
                raise ApiError(400, f"period: {exc}") from None
            out = _plain(result)
            # The labels and measures, so a client can show the figures without our docs at hand.
            out["indicator_labels"] = [{"key": i.key, "label": i.label, "measure": i.measure}
                                       for i in INDICATORS[result.kind.group]]
            return out

        return cached("evaluation", scope, (kind, period.start, period.end), now, body)

    @bp.route("/openapi.json")
    @guarded
    def openapi(session: Session, scope: Any, t: Timing, now: datetime) -> Any:
        return OPENAPI

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError) -> flask.Response:
        return _error(exc.status, exc.detail)

    @bp.errorhandler(Exception)
    def unexpected(exc: Exception) -> flask.Response:
        if isinstance(exc, HTTPException):
            return _error(exc.code if exc.code in ERRORS else 400)
        log.error("api: %s %s failed: %s", flask.request.method, flask.request.path, exc, exc_info=True)
        return _error(500)

    @bp.after_request
    def no_store(response: flask.Response) -> flask.Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return bp
