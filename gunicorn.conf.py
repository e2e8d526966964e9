"""gunicorn settings for ``gunicorn -c gunicorn.conf.py app:server``.

Bind address and worker count come from the same settings as the rest of gridhall
(GRIDHALL_HOST, GRIDHALL_PORT, GRIDHALL_WEB_WORKERS, then .env and gridhall.toml), so the
dev server and gunicorn can never disagree about where the app lives.
"""

from __future__ import annotations

import logging

from api.metricsdir import prepare
from dashboard.settings import ConfigError, load_settings

try:
    _settings = load_settings()
except ConfigError as exc:  # one readable line instead of a traceback from the master
    raise SystemExit(f"gridhall: {exc}") from None

# Before app (and with it prometheus_client) is imported: it reads the folder once, at import.
prepare(_settings)

from app import gunicorn_options  # noqa: E402  # after prepare(), see above

# One definition for this file and `gridhall serve` (see app.gunicorn_options).
globals().update(gunicorn_options(_settings))

# The app's own loggers (callbacks, /healthz) at the configured level; workers inherit it.
logging.basicConfig(
    level=_settings.log_level, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
)
