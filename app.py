"""The web application: ``create_app()`` builds the Dash app; ``gunicorn app:server`` serves it.

``server`` is built on first access (PEP 562 module ``__getattr__``), so importing this
module costs nothing and tests can call ``create_app(settings)`` with their own settings,
while gunicorn's ``app:server`` still finds a Flask app configured from the environment.
With ``preload_app`` off each worker imports this module itself, so every process opens
its own database engine and Redis client.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import logging
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dash
import flask
import redis
from sqlalchemy import Engine, event, text

import api
import auth
import callbacks
import layouts
from api import metrics, metricsdir, open311
from auth import policy
from callbacks import Services
from dashboard.geocode.current import CurrentGeocoder
from dashboard.settings import ConfigError, Settings, load_settings
from dashboard.store import db, reference
from dashboard.store.cityname import CityNameSource
from feeds.connection import connect, with_timeouts
from layouts.kit.header import page_title

log = logging.getLogger(__name__)

# Inside the layouts package, so a wheel install ships them too.
ASSETS_DIR = Path(__file__).resolve().parent / "layouts" / "assets"
EXTENSION_KEY = "gridhall"

# A Redis call from a page refresh must fail well inside the 2 s refresh interval instead
# of hanging a worker thread (connect() allows 5 s to connect and no read timeout at all).
WEB_REDIS_TIMEOUT_S = 1.0
# The same for PostgreSQL: give up connecting after a few seconds (libpq waits for the OS
# TCP timeout otherwise) and cancel any web query that runs absurdly long.
WEB_PG_CONNECT_TIMEOUT_S = 3
WEB_PG_STATEMENT_TIMEOUT_MS = 10_000

# zh-CN document, no IE shim (its alert is English), no externally hosted anything.
INDEX_STRING = """<!DOCTYPE html>
<html lang="zh-CN">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""


@dataclass
class Runtime:
    """The per-process resources of one app, kept on ``server.extensions``."""

    settings: Settings
    engine: Engine
    redis: redis.Redis
    services: Services

    def close(self) -> None:
        """Release connections (tests and embedding code; gunicorn just exits)."""
        self.services.wall.stop()
        self.engine.dispose()
        try:
            self.redis.close()
        except Exception:  # closing a client whose server is gone is not worth an error
            log.debug("closing Redis client failed", exc_info=True)


def create_app(settings: Settings | None = None) -> dash.Dash:
    """Build the Dash app; ``settings`` default to the environment (``load_settings()``)."""
    settings = settings or load_settings()
    engine = db.make_engine(settings)
    _bound_database_waits(engine)
    redis_client = with_timeouts(connect(settings), WEB_REDIS_TIMEOUT_S)

    sessions = db.session_factory(engine)
    city_name = CityNameSource(settings, sessions)
    app = dash.Dash(
        __name__,
        title=page_title(""),  # per request: _title_per_request
        # No "Updating..." flicker in the tab title (and no English on the wall).
        update_title=None,  # type: ignore[arg-type]  # documented by Dash ("None: no change"), annotated str
        serve_locally=True,
        assets_folder=str(ASSETS_DIR),
        index_string=INDEX_STRING,
        meta_tags=[
            {"name": "viewport", "content": "width=device-width, initial-scale=1"},
            {"name": "color-scheme", "content": "dark"},
        ],
    )
    _title_per_request(app, city_name)
    _gzip_callback_answers(app.server)
    app.layout = layouts.root_layout(settings, city_name,
                                     lambda region: callbacks.wall.viewer_scope(sessions, region),
                                     # late-bound: the services exist by the first request
                                     lambda user_id: services.wall.screen_of(user_id))
    app.validation_layout = layouts.validation_layout(settings)  # type: ignore[assignment]  # Dash: set None in __init__
    services = callbacks.register(app, settings, sessions, redis_client)

    runtime = Runtime(settings, engine, redis_client, services)
    app.server.extensions[EXTENSION_KEY] = runtime
    _add_healthz(app.server, runtime)
    _add_error_pages(app.server)
    app.server.register_blueprint(api.create_blueprint(
        sessions, settings, lambda session: reference.timing_for(settings, session),
        reads=services.view.reads, redis_client=redis_client))  # /view's figure cache: one per process
    gazetteer = CurrentGeocoder()  # address-only requests are placed by the city's gazetteer
    app.server.register_blueprint(open311.create_blueprint(  # Open311 GeoReport v2 (docs/open311.md)
        sessions, settings, redis_client=redis_client, geocoder=lambda session: gazetteer.get(session).geocode))
    metrics.install(app.server, settings, sessions, redis_client, lambda: services.callback_pages,
                    lambda: services.wall.follower.status() if services.wall.follower is not None else None)
    # After every route exists: the guard refuses routes without a rule (auth/policy.py).
    auth.install(app, settings, sessions, redis_client, lambda: services.callback_pages)
    _register_component_scripts(app)
    services.wall.start()  # load the live view now, not at the first wall's first poll
    threading.Thread(target=services.wall.warm_map, name="gridhall-map-warm", daemon=True).start()
    return app


GZIP_MIN_BYTES = 256  # callback answers smaller than this go as they are (gzip's frame would not pay)
GZIP_LEVEL = 6
GZIP_MEMO = 64  # compressed answers kept per process: screens in the same state share one


def _gzip_callback_answers(server: flask.Flask) -> None:
    """Callback answers (``/_dash-update-component``) gzip-compressed when the browser accepts it.

    A wall's refresh is JSON of digests, cell codes and row texts: gzip shrinks it several
    times. Done here with the standard library, not flask-compress (not installed, and it
    would also have to be kept off the push stream): only these answers are compressed, and
    identical answers (screens in the same state) are compressed once (``GZIP_MEMO``).
    """
    memo: OrderedDict[bytes, bytes] = OrderedDict()
    lock = threading.Lock()

    @server.after_request
    def gzip_answer(response: flask.Response) -> flask.Response:
        if (not flask.request.path.endswith("/_dash-update-component") or response.status_code != 200
                or response.direct_passthrough or "Content-Encoding" in response.headers
                or "gzip" not in (flask.request.headers.get("Accept-Encoding") or "")):
            return response
        body = response.get_data()
        if len(body) < GZIP_MIN_BYTES:
            return response
        key = hashlib.blake2b(body, digest_size=16).digest()
        with lock:
            packed = memo.get(key)
            if packed is not None:
                memo.move_to_end(key)
        if packed is None:
            packed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            with lock:
                memo[key] = packed
                while len(memo) > GZIP_MEMO:
                    memo.popitem(last=False)
        response.set_data(packed)
        response.headers["Content-Encoding"] = "gzip"
        response.headers["Content-Length"] = str(len(packed))
        response.vary.add("Accept-Encoding")
        return response


def _title_per_request(app: dash.Dash, city_name: CityNameSource) -> None:
    """Every page's <title> names the city as it is now (a re-import needs no restart)."""
    interpolate: Callable[..., str] = app.interpolate_index

    def with_city(**parts: str) -> str:
        parts["title"] = html.escape(page_title(city_name()))  # a name from city.toml is text, not markup
        return interpolate(**parts)

    # Dash calls interpolate_index with keywords only; its signature lists them positionally.
    app.interpolate_index = with_city  # type: ignore[method-assign, assignment]  # Dash's documented hook


def _register_component_scripts(app: dash.Dash) -> None:
    """Render the index once so this process knows which component scripts it serves.

    Dash records the script paths it may serve while rendering the index page. Under
    gunicorn the index and the scripts are often answered by different workers, and a
    worker that never rendered the index refuses the scripts ("not a registered library"):
    the wall stays on "正在加载". Rendering it at start makes every worker ready.
    """
    for path in ("/", *(page.path for page in policy.PAGE_LIST)):
        # Straight to Dash's index view: the sign-in guard would turn a test request away.
        with app.server.test_request_context(path):
            app.index()


# Longer than a pushed wall's 5 s safety poll, so each screen keeps reusing its connection (an
# idle keep-alive connection costs the worker a socket, not a thread).
KEEPALIVE_S = 10


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn settings for both ``gunicorn -c gunicorn.conf.py app:server`` and ``gridhall serve``."""
    host = settings.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal needs brackets in a bind string
    options: dict[str, Any] = {
        "bind": [f"{host}:{settings.port}"],
        "workers": settings.web_workers,
        # Callbacks are short I/O waits on the database and Redis; a wall screen's push stream
        # holds one thread while connected (callbacks/wall.py): GRIDHALL_WEB_THREADS per worker.
        "worker_class": "gthread",
        "threads": settings.web_threads,
        # Each worker builds its own engine and Redis client: connections must not cross a fork.
        "preload_app": False,
        # Refreshes answer in milliseconds; 30 s only catches a worker that is truly stuck.
        "timeout": 30,
        "graceful_timeout": 20,
        "keepalive": KEEPALIVE_S,
        # gunicorn's own scheme headers (X-Forwarded-Proto) from the same proxies the app trusts
        # (auth/proxies.py); its default would trust 127.0.0.1 even when the setting says nobody.
        "forwarded_allow_ips": ",".join(settings.trusted_proxies),
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        "capture_output": True,
        # /metrics sums every worker's files (api/metricsdir.py): emptied at start, a dead worker's gauges dropped.
        **metricsdir.gunicorn_hooks(),
        "post_worker_init": _streams_end_on_stop,
    }
    # gunicorn's control socket defaults to one path per user (~/.gunicorn), which a second
    # deployment or a test run on the same host would fight over: keep it with this
    # deployment's data, or go without when that path is too long for a unix socket.
    control = settings.data_dir / "gunicorn.ctl"
    if len(str(control)) < 100:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        options["control_socket"] = str(control)
    else:
        options["control_socket_disable"] = True
    # Heartbeat files on tmpfs: a slow disk must not make the arbiter kill healthy workers.
    if Path("/dev/shm").is_dir():
        options["worker_tmp_dir"] = "/dev/shm"
    return options


def _streams_end_on_stop(worker: Any) -> None:
    """gunicorn worker, once its app is loaded: a SIGTERM (stop, HUP reload, fewer workers) ends
    the open push streams too (``WallService.stopping``). A stream never ends by itself, so
    without this every worker holding a wall's stream would wait out ``graceful_timeout``
    before it exits; with it the worker exits as soon as its other requests are answered, and
    the walls reconnect to the workers that are up (docs/wall.md, "Push")."""
    server = getattr(worker, "wsgi", None)
    runtime = getattr(server, "extensions", {}).get(EXTENSION_KEY)
    if runtime is None:
        return
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        runtime.services.wall.stopping.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def _bound_database_waits(engine: Engine) -> None:
    """Time limits for this (web) engine only; the ingest keeps the defaults."""
    if engine.dialect.name != "postgresql":
        return  # SQLite in WAL mode: readers never wait for the writer

    @event.listens_for(engine, "do_connect")
    def _limits(_dialect: object, _record: object, _cargs: list[Any], cparams: dict[str, Any]) -> None:
        cparams.setdefault("connect_timeout", WEB_PG_CONNECT_TIMEOUT_S)
        # A startup option, not a SET: a SET inside the first transaction would be rolled
        # back with it when the pool resets the connection.
        option = f"-c statement_timeout={WEB_PG_STATEMENT_TIMEOUT_MS}"
        cparams["options"] = f"{cparams['options']} {option}" if cparams.get("options") else option


def _add_healthz(server: flask.Flask, runtime: Runtime) -> None:
    @server.route("/healthz")
    def healthz() -> flask.Response:
        """Reachability of the two backends, for load balancers and monitoring."""
        status = {"database": "ok", "redis": "ok"}
        try:
            with runtime.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not usable"; the reason goes to the log
            log.warning("healthz: database unreachable: %s", _first_line(exc))
            status["database"] = "error"
        try:
            runtime.redis.ping()
        except Exception as exc:
            log.warning("healthz: Redis unreachable: %s", _first_line(exc))
            status["redis"] = "error"
        code = 200 if all(v == "ok" for v in status.values()) else 503
        response = flask.jsonify(status)
        response.status_code = code
        response.headers["Cache-Control"] = "no-store"
        return response


def _add_error_pages(server: flask.Flask) -> None:
    """An unexpected error answers a short Chinese message; the traceback goes to the log only.

    Dash's own handlers (PreventUpdate and friends) are more specific and still win. A callback
    request that does not match any callback (a malformed or tampered body) is the client's
    error: 400, not 500.
    """

    @server.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        from werkzeug.exceptions import HTTPException

        if isinstance(exc, HTTPException):
            return exc
        path = flask.request.path
        if path.endswith("/_dash-update-component") and isinstance(exc, (KeyError, IndexError, TypeError)):
            log.info("malformed callback request refused: %s", _first_line(exc))
            return flask.Response('{"error": "请求无效"}', status=400, mimetype="application/json")
        log.error("%s %s failed", flask.request.method, path, exc_info=exc)
        if path.startswith("/_dash"):
            return flask.Response('{"error": "服务器内部错误"}', status=500, mimetype="application/json")
        return flask.Response("<!DOCTYPE html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>500</title>"
                              "<p>服务器内部错误，请稍后再试。</p></html>", status=500, mimetype="text/html")


def _first_line(exc: BaseException) -> str:
    # One line per failed probe: monitors poll often, tracebacks would flood the log.
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


_server: flask.Flask | None = None
_server_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """Build ``server`` on first access, from the environment's settings."""
    global _server
    if name != "server":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _server_lock:
        if _server is None:
            _server = create_app().server
    return _server


def main() -> None:
    """Development server on GRIDHALL_HOST:GRIDHALL_PORT (use gunicorn in production)."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"gridhall: {exc}") from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings)
    app.run(host=settings.host, port=settings.port, debug=False)


if __name__ == "__main__":
    main()
