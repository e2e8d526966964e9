"""``gridhall serve``: the web screens under gunicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cli.common import cli_settings, require_backends
from dashboard.settings import Settings

if TYPE_CHECKING:
    import flask


def serve(
    host: str | None = typer.Option(None, help="Bind address (default GRIDHALL_HOST)."),
    port: int | None = typer.Option(None, help="Port (default GRIDHALL_PORT)."),
    workers: int | None = typer.Option(None, help="gunicorn workers (default GRIDHALL_WEB_WORKERS)."),
    access_log: bool = typer.Option(True, help="Log every request to stdout."),
) -> None:
    """Serve the web screens with gunicorn."""
    settings = cli_settings(host=host, port=port, web_workers=workers)
    require_backends(settings)
    _run_gunicorn(settings, access_log=access_log)


def _run_gunicorn(settings: Settings, *, access_log: bool = True) -> None:
    from gunicorn.app.base import BaseApplication

    from api.metricsdir import prepare

    # Before app (and with it prometheus_client) is imported: the workers' metrics meet in one folder.
    prepare(settings)
    from app import gunicorn_options

    class GridhallServer(BaseApplication):
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)
            if not access_log:
                self.cfg.set("accesslog", None)

        def load(self) -> flask.Flask:
            from app import create_app

            server: flask.Flask = create_app(settings).server
            return server

    GridhallServer().run()
