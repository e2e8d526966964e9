"""Who the client is behind a reverse proxy (``GRIDHALL_TRUSTED_PROXIES``), and the address the limits count.

A request's ``X-Forwarded-For`` is believed only when it comes **from a trusted proxy** (an
address or network in ``GRIDHALL_TRUSTED_PROXIES``; by default none). The list is then read from
the right, skipping trusted proxies: the first address that is not one is the client (nginx's
``real_ip_recursive on``). ``X-Forwarded-Proto`` from a trusted proxy sets the scheme. Anything
else — the header from an untrusted peer, or an entry that is not an address — is ignored, so a
client cannot pick its own address to dodge the sign-in limits. docs/security.md has the nginx
example.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import Any

import flask

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PEER_KEY = "gridhall.peer_addr"  # environ: the address the connection really came from


def networks_of(entries: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:51234"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in n for n in networks)


def trusted_peer(peer: str, networks: tuple[Network, ...]) -> bool:
    """Whether ``peer`` (the address a connection came from) is one of the trusted proxies."""
    return _trusted(_address(peer), networks)


def client_of(peer: str, forwarded_for: str | None, networks: tuple[Network, ...]) -> str:
    """The client address of a request from ``peer`` carrying ``X-Forwarded-For: forwarded_for``."""
    if not networks or not forwarded_for or not _trusted(_address(peer), networks):
        return peer
    hops = [h for h in (part.strip() for part in forwarded_for.split(",")) if h]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return client  # not an address: stop at the last hop a trusted proxy vouched for
        client = str(address)
        if not _trusted(address, networks):
            return client
    return client  # every hop is a proxy of ours: the leftmost is as close as it gets


class TrustedProxies:
    """WSGI middleware: ``REMOTE_ADDR`` and the scheme as the trusted proxies report them."""

    def __init__(self, app: Callable[..., Any], networks: tuple[Network, ...]) -> None:
        self.app = app
        self.networks = networks

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR") or ""
        environ[PEER_KEY] = peer
        if self.networks and _trusted(_address(peer), self.networks):
            environ["REMOTE_ADDR"] = client_of(peer, environ.get("HTTP_X_FORWARDED_FOR"), self.networks)
            proto = (environ.get("HTTP_X_FORWARDED_PROTO") or "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)


def client_address() -> str:
    """The address the sign-in limits and locks count for this request.

    An IPv6 client counts by its /64 (one home or office network gets a /64: a client must not
    get a fresh limit by changing its last 64 bits).
    """
    raw = flask.request.remote_addr or "unknown"
    address = _address(raw)
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address) if address is not None else raw
