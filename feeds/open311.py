"""An Open311 POST as a producer: one ``reported`` event (source ``public``) on the case stream.

The case exists only once the ingest applied the event; until then the client holds a *token*
(``GET tokens/{token}``), kept in Redis for :data:`TOKEN_TTL_S`.

Idempotency (docs/open311.md): the same API key and the same request do not make two cases.
"The same request" is either

- the client's own identifier, the ``Idempotency-Key`` header or the ``client_request_id``
  field: the case id is derived from (key, identifier) alone, so a retry at any later time is the
  same case (and the same ``event_id``, which the ingest applies once);
- else the request's content (service, location, description, attributes, media URL): within
  :data:`WINDOW_S` a repeat answers the first one's case; after that the same words make a new
  case (a second report of a problem that came back).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import redis

from dashboard.rules.lifecycle import EventType
from dashboard.rules.vocab import Kind, Source
from dashboard.settings import Settings
from dashboard.store.open311 import MEDIA_MARK, Service

from .contract import CaseEventMessage
from .keys import OPEN311_REQUEST_KEY, OPEN311_TOKEN_KEY
from .producer import Producer

WINDOW_S = 600  # identical requests without an identifier within this are one case
IDENTIFIED_TTL_S = 7 * 24 * 3600  # how long a client identifier's record (and its answer) is kept
TOKEN_TTL_S = 7 * 24 * 3600
CASE_PREFIX = "o311-"


class Located(Protocol):
    @property
    def lon(self) -> float: ...
    @property
    def lat(self) -> float: ...


# The geocoder seam: ``dashboard/geocode``'s ``Geocoder.geocode`` (app.py passes the process's
# current one, dashboard/geocode/current.py);
# anything returning an object with ``lon`` and ``lat`` (or None) fits.
Geocode = Callable[[str], Located | None]


@dataclass(frozen=True)
class Submission:
    """A checked POST (api/open311.py checks the form)."""

    key_id: int
    service: Service
    lon: float | None
    lat: float | None
    address: str | None
    description: str | None
    media_url: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    identifier: str | None = None  # Idempotency-Key / client_request_id

    def content_digest(self) -> str:
        parts = [str(self.key_id), self.service.service_code, repr(self.lon), repr(self.lat),
                 self.address or "", self.description or "", self.media_url or "",
                 *(f"{k}={v}" for k, v in sorted(self.attributes.items()))]
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()

    def full_description(self) -> str | None:
        """The description, the attributes as ``code: value`` lines, the media URL last."""
        lines = [self.description] if self.description else []
        lines += [f"{k}: {v}" for k, v in sorted(self.attributes.items())]
        if self.media_url:
            lines.append(MEDIA_MARK + self.media_url)
        return "\n".join(lines) or None


def locate(address: str | None, geocode: Geocode | None) -> tuple[float | None, float | None]:
    """A point for an address-only request: the geocoder's, or none (the case goes in 未定位)."""
    if not address or geocode is None:
        return None, None
    found = geocode(address)
    return (None, None) if found is None else (found.lon, found.lat)


@dataclass(frozen=True)
class Accepted:
    case_id: str
    token: str
    new: bool  # False: a repeat of an earlier request (nothing published)


class RequestDesk:
    """Publishes Open311 requests and keeps their idempotency records and tokens in Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.producer = Producer(client, settings)

    def _record_key(self, digest: str) -> str:
        return self.settings.key(OPEN311_REQUEST_KEY.format(digest=digest))

    def _token_key(self, token: str) -> str:
        return self.settings.key(OPEN311_TOKEN_KEY.format(token=token))

    def submit(self, sub: Submission, now: datetime) -> Accepted:
        if sub.identifier is not None:
            digest = hashlib.sha256(f"{sub.key_id}\x1fid\x1f{sub.identifier}".encode()).hexdigest()
            case_id = CASE_PREFIX + digest[:24]
            ttl = IDENTIFIED_TTL_S
        else:
            digest = sub.content_digest()
            case_id = CASE_PREFIX + secrets.token_hex(12)
            ttl = WINDOW_S
        token = secrets.token_hex(12)
        record = f"{case_id} {token}"
        if not self.client.set(self._record_key(digest), record, nx=True, ex=ttl):
            earlier = self.client.get(self._record_key(digest))
            if earlier:
                earlier_case, _, earlier_token = str(earlier).partition(" ")
                return Accepted(earlier_case, earlier_token, new=False)
            self.client.set(self._record_key(digest), record, ex=ttl)  # expired in between
        self.client.set(self._token_key(token), case_id, ex=TOKEN_TTL_S)
        message = CaseEventMessage(
            event_id=f"{case_id}:reported", case_id=case_id, type=EventType.REPORTED,
            occurred_at=now, source=Source.PUBLIC, actor=f"open311:{sub.key_id}",
            kind=Kind(sub.service.kind), class_code=sub.service.class_code,
            lon=sub.lon, lat=sub.lat, address=sub.address, description=sub.full_description(),
        )
        self.producer.publish(message)
        return Accepted(case_id, token, new=True)

    def case_of_token(self, token: str) -> str | None:
        if not token or len(token) > 64 or not token.isalnum():
            return None
        value = self.client.get(self._token_key(token))
        return str(value) if value else None
