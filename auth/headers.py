"""Security headers on every response, with a Content-Security-Policy that Dash works under.

Scripts only from this origin, plus the hashes of the few inline scripts Dash writes into its
index page (``dash.Dash.csp_hashes()``: the renderer's start-up line) — no ``unsafe-inline``
and no ``unsafe-eval`` for scripts. Styles allow ``unsafe-inline`` because AG Grid, Leaflet
and plotly set inline styles and inject style elements; a style cannot run code. Images from
this origin, data: and blob: URIs, and the city's own basemap host when ``GRIDHALL_TILE_URL``
names one. Nothing may frame the app (``frame-ancestors 'none'``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dash
import flask

from dashboard.settings import Settings


def content_security_policy(app: dash.Dash, settings: Settings) -> str:
    scripts = " ".join(app.csp_hashes())  # already quoted: 'sha256-…'
    images = ["'self'", "data:", "blob:"]
    if settings.tile_url:
        parts = urlsplit(settings.tile_url)
        if parts.scheme and parts.netloc:
            images.append(f"{parts.scheme}://{parts.netloc}")
    directives = {
        "default-src": "'self'",
        "script-src": f"'self' {scripts}".strip(),
        "style-src": "'self' 'unsafe-inline'",
        "img-src": " ".join(images),
        "font-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{k} {v}" for k, v in directives.items())


def install(app: dash.Dash, settings: Settings) -> None:
    policy: list[str] = []  # computed at the first response: Dash knows its inline scripts then

    @app.server.after_request
    def _headers(response: flask.Response) -> flask.Response:
        if not policy:
            policy.append(content_security_policy(app, settings))
        h = response.headers
        h.setdefault("Content-Security-Policy", policy[0])
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        # same-origin: Dash finds the page of a layout request by its Referer (layouts/__init__.py).
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "geolocation=(), camera=(), microphone=(), payment=()")
        if settings.cookie_secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response
