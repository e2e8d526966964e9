"""Keep display tokens out of the access logs (gunicorn's and werkzeug's development server's).

A wall screen signs in once with ``/wall?token=gh_…``; an access log line with that URL would
hand the token to whoever reads the log. :class:`RedactTokens` rewrites every record of the
access loggers: a ``token=`` query value (also percent-encoded, as inside ``next=``) and any
bare ``gh_…`` token become ``[redacted]``. It sits on the loggers themselves, so it holds
whatever format or handlers the operator configures.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGERS = ("gunicorn.access", "werkzeug")
REDACTED = "[redacted]"
_QUERY_VALUE = re.compile(r"(token(?:=|%3[dD]))(?:(?!%26)[^&\s\"'])*", re.IGNORECASE)
_BARE_TOKEN = re.compile(r"gh_[A-Za-z0-9_\-]{8,}")


def redact(text: str) -> str:
    """``text`` with token values replaced by ``[redacted]``."""
    if "token" not in text.lower() and "gh_" not in text:
        return text
    return _BARE_TOKEN.sub("gh_" + REDACTED, _QUERY_VALUE.sub(r"\1" + REDACTED, text))


class RedactTokens(logging.Filter):
    """Format the record's message once, redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format is left for the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def install() -> None:
    """Put the filter on the access loggers of this process (idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
