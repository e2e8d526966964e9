"""Who may read ``/metrics`` (``policy.Scrape``): Prometheus on this host, or one that shows the scrape token.

The figures (ingest lag, dead letters by reason, screens per district, response times) say
nothing about cases but much about the hall, so they are not public: by default only a client
on this host's **loopback** may read them — Prometheus (or its node agent) next to gridhall.
A Prometheus elsewhere sends ``Authorization: Bearer <GRIDHALL_METRICS_TOKEN>``. A session
grants nothing: no person's role reads /metrics through the browser.

"Loopback" means the real client as ``auth/proxies.py`` decides it: behind a trusted proxy the
address in ``X-Forwarded-For``, not the proxy's. A request that carries ``X-Forwarded-For``
from a peer that is *not* a trusted proxy is never taken for a local one — that is a proxy on
this host forwarding someone else's request (docs/security.md, "Metrics").
"""

from __future__ import annotations

import hmac
import ipaddress

import flask

from .identity import bearer_token
from .proxies import PEER_KEY, Network, trusted_peer

REFUSED_TEXT = "gridhall /metrics: only loopback clients or the scrape token (GRIDHALL_METRICS_TOKEN)\n"


def is_loopback_client(environ: dict[str, object], remote_addr: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether the request's real client is on this host's loopback."""
    try:
        client = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    if not client.is_loopback:
        return False
    if environ.get("HTTP_X_FORWARDED_FOR"):
        # Forwarded: only a trusted proxy's word counts (it already put the client in REMOTE_ADDR).
        return trusted_peer(str(environ.get(PEER_KEY) or ""), networks)
    return True


class ScrapeAccess:
    """The scrape rule of one deployment: its token (if any) and its trusted proxies."""

    def __init__(self, token: str | None, networks: tuple[Network, ...]) -> None:
        self.token = token
        self.networks = networks

    def refusal(self) -> flask.Response | None:
        """None when this request may read /metrics, else the answer: 401 (a token would do) or 403."""
        request = flask.request
        given = bearer_token()
        if self.token and given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        if is_loopback_client(request.environ, request.remote_addr, self.networks):
            return None
        status = 401 if self.token else 403
        response = flask.Response(REFUSED_TEXT, status=status, mimetype="text/plain")
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gridhall metrics"'
        response.headers["Cache-Control"] = "no-store"
        return response
