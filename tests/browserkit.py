"""Shared kit for the browser tests: Debian's Chromium, the app on a live server, a page watch.

A pytest plugin (registered in tests/conftest.py), so its fixtures need no import:
- ``browser``: headless Chromium through Playwright, one per test module;
- ``live_server``: ``create_app(settings)`` on a werkzeug server in a background thread.
Import the helpers: :class:`LiveServer`, :class:`PageWatch`, :func:`serve` (any app of a test's
own on a live server), :func:`shots_dir`.
Set GRIDHALL_SHOTS_DIR to keep the screenshots.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from werkzeug.serving import make_server

from dashboard.output.pdf import CHROMIUM_ARGS, CHROMIUM_PATHS
from dashboard.settings import Settings


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM_PATHS[0],
            args=CHROMIUM_ARGS,
        )
        yield b
        b.close()


@dataclass
class LiveServer:
    url: str
    runtime: Any  # app.Runtime


@contextmanager
def serve(wsgi_app: Any) -> Iterator[str]:
    """``wsgi_app`` on a werkzeug server in a background thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture
def live_server(settings: Settings, engine: Any) -> Iterator[LiveServer]:
    """create_app(settings) on a werkzeug server in a background thread."""
    import app as appmod

    application = appmod.create_app(settings)
    runtime = application.server.extensions[appmod.EXTENSION_KEY]
    with serve(application.server) as url:
        yield LiveServer(url, runtime)
    runtime.close()


class PageWatch:
    """Everything the page asked for, said and popped up."""

    def __init__(self, page: Any) -> None:
        self.requests: list[str] = []
        self.failures: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failures.append(r.url))
        page.on("response", lambda r: r.status >= 400 and self.failures.append(f"{r.status} {r.url}"))
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_local_only(self) -> None:
        assert self.requests
        for url in self.requests:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob"):
                continue
            assert parsed.hostname == "127.0.0.1", f"non-local request: {url}"


def shots_dir(tmp_path: Path) -> Path:
    """Where a test writes its screenshots: GRIDHALL_SHOTS_DIR if set, else its temp folder."""
    shots = Path(os.environ.get("GRIDHALL_SHOTS_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


# The wall's pushed updates (callbacks/wall_push.py) as the page receives them: an init script
# wraps EventSource so each "update" event's text is kept in window.__updates, and while
# window.__dropUpdates is true the page never sees them (a stream that loses messages).
UPDATES_JS = """(() => {
  const Real = window.EventSource;
  if (!Real || Real.__watched) { return; }
  window.__updates = [];
  window.__dropUpdates = false;
  class Watched extends Real {
    addEventListener(type, listener, options) {
      if (type === "update") {
        const inner = listener;
        listener = function (e) {
          if (window.__dropUpdates) { return; }
          window.__updates.push(e.data);
          return inner.call(this, e);
        };
      }
      return super.addEventListener(type, listener, options);
    }
  }
  Watched.__watched = true;
  window.EventSource = Watched;
})();"""


def watch_updates(page: Any) -> Any:
    """Record the wall's pushed updates in ``page`` (call before it loads the wall)."""
    page.add_init_script(UPDATES_JS)
    return page


def take_updates(page: Any) -> list[tuple[int, dict[str, Any]]]:
    """The pushed updates the page applied since the last call: (bytes on the wire, answer).

    The bytes are those the server sends a browser that accepts gzip: the event's compressed
    piece (deterministic; tests/test_wall_push.py reads them off a raw stream)."""
    from callbacks.wall_push import piece

    texts = page.evaluate("(() => { const u = window.__updates || []; window.__updates = []; return u; })()")
    return [(len(piece(f"event: update\ndata: {t}\n\n")), json.loads(t)["response"]) for t in texts]
