"""Every Redis key and stream name gridhall reads or writes, in one place.

The prefix rule: every name here is written without the deployment's prefix;
``Settings.key(name)`` (``dashboard/settings.py``) puts ``GRIDHALL_REDIS_PREFIX`` in front, and
nothing else builds a key. Two deployments (or two test runs) sharing one Redis database
therefore never see each other's keys. docs/feed.md describes the feed's keys for operators.

Redis Cluster (docs/feed.md, "Redis Cluster"): a script, a MULTI or a multi-key command may only
touch keys of one hash slot. The keys that one script writes together carry the same hash tag
(the part in ``{…}``, which alone decides the slot): the dead letters, their per-reason counts,
their trim counter and the entries already dead-lettered are ``{deadletters}``. Every other
write of the ingest touches one key per command, so the case streams keep their names (the
producer contract): each lives in the slot of its own name, and the shards spread over the
masters. A name here never contains another ``{``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashboard.settings import Settings

# The feed.
CASE_STREAM = "cases"  # producers XADD case events here
CONSUMER_GROUP = "ingest"  # the ingest's consumer group on every case stream
# The dead letters and what is written with them in one script share the hash tag {deadletters}.
DEAD_LETTER_STREAM = "{deadletters}"  # entries the ingest could not apply, with the reason
DEAD_COUNTS_KEY = "{deadletters}:counts"  # hash: dead letters per reason code, for the wall
DEAD_TRIMMED_KEY = "{deadletters}:trimmed"  # counter: dead letters removed by the stream's cap
# sorted set: "<stream> <entry id>" of the entries the ingest dead-lettered (score: when, ms),
# kept DEAD_SEEN_KEEP_S, so an entry delivered again (a crash before its XACK) is not dead-lettered twice
DEAD_SEEN_KEY = "{deadletters}:entries"
DEAD_SEEN_KEEP_S = 7 * 24 * 3600
# Names of the dead-letter keys before the hash tag (gridhall ≤ issue 16); a plain server's
# ingest renames them at its start (RENAMENX): see rename_legacy_keys in feeds/ingest.py.
LEGACY_KEYS = {"deadletters": DEAD_LETTER_STREAM, "deadletters:counts": DEAD_COUNTS_KEY,
               "deadletters:trimmed": DEAD_TRIMMED_KEY}
HEALTH_KEY = "ingest:health"  # hash: heartbeat and counters of the ingest
APPLIED_MINUTE_KEY = "ingest:applied:{minute}"  # counter per UTC minute (epoch minutes), kept 3 min

# Bridges (feeds/bridges/, docs/sources.md): other systems' records turned into case events.
BRIDGE_FILES_KEY = "bridge:{name}:files"  # hash: inbox file name → records done (the checkpoint)
BRIDGE_DEAD_KEY = "bridge:{name}:dead"  # set: digests of the records dead-lettered (a re-run adds none again)
BRIDGE_GROUP = "bridge:{name}"  # a bridge's consumer group on the source system's stream
HOTLINE_INBOX_STREAM = "hotline:orders"  # the 12345 system XADDs 工单 records here (field ``record``: JSON)
HOTLINE_REPLY_STREAM = "hotline:replies"  # 工单回复 for the 12345 system, one entry per closed 工单
HOTLINE_REPLIED_KEY = "hotline:replied"  # set: 工单编号 already replied (exactly one reply each)
HOTLINE_REPLY_MARK_KEY = "hotline:replies:mark"  # string: the closure watermark (ISO UTC) of the reply scan
ALARM_INBOX_STREAM = "alarms:inbox"  # the video/IoT platform XADDs alarm records here (field ``record``: JSON)
ALARM_SEEN_KEY = "alarms:seen:{alarm_id}"  # string: the decision taken for one alarm id (kept 30 days)
ALARM_OPEN_KEY = "alarms:open"  # hash: "dev|<device>|<type>" / "grid|<grid>|<kind>|<class>" → alarm case id
# string: an alarm case's {"last": its latest alarm's time, "count": alarms}, kept a day past the window
ALARM_CASE_KEY = "alarms:case:{case_id}"

# Monitoring (/metrics): which screens asked for their page lately, written by every web worker.
SCREENS_KEY = "screens"  # sorted set: "page|scope|screen" → when it last asked (epoch seconds)

# Change notices: written by the ingest, read by every web worker's follower. The cap is here,
# beside the name, because both sides need it: the follower tells a gap from a quiet stream by it.
CHANGES_STREAM = "changes"  # one notice per committed batch
CHANGES_MAXLEN = 10_000  # change notices are for live views, not an archive

# Control notices: a hall screen or banner changed, or an alert's step (feeds/control.py); written by
# whoever committed the change (the CLI, the web layer, the ingest for alerts), read by every web
# worker. Few and small: a short cap.
CONTROL_STREAM = "control"  # one notice per changed screen, banner or alert step: {kind, ref}
CONTROL_MAXLEN = 1_000

# Sign-in and sessions.
SESSION_KEY = "session:{sid}"  # string: the user id of a live browser session
USER_SESSIONS_KEY = "user-sessions:{user_id}"  # set: a user's session ids, for revoking them all
SIGNIN_LOCKS_KEY = "signin-locks:{user_id}"  # hash: failures and locks per client address
THROTTLE_PREFIX = "throttle"  # the `limits` library's keys: sign-in attempts per client IP, API requests per token

# Scheduled work (feeds/housekeeping.py): one owner however many hosts run `gridhall housekeeping`.
# Hash-tagged ({housekeeping}): its keys share one slot on a Redis Cluster.
HOUSEKEEPING_LOCK_KEY = "{housekeeping}:lock"  # string: the token of the host doing the work (SET NX PX, renewed)
HOUSEKEEPING_LAST_KEY = "{housekeeping}:last"  # hash: task → its last pass "<ISO UTC time> <token> <summary>"

# Open311 GeoReport v2 (feeds/open311.py): a POST's idempotency record and its token, kept a while.
OPEN311_REQUEST_KEY = "open311:request:{digest}"  # string: the case id a (key, request) got
OPEN311_TOKEN_KEY = "open311:token:{token}"  # string: the case id a token stands for


def stream_id(entry_id: str | bytes | None) -> tuple[int, int]:
    """A stream entry id ``<ms>-<seq>`` as a pair that orders as Redis orders ids.

    None, or text that is not an id (a browser's stale or forged value), reads as ``(0, 0)``:
    before every entry. The one parser of stream ids; ``entry_id[0]`` is the entry's time in ms.
    """
    if not entry_id:
        return (0, 0)
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    ms, _, seq = text.partition("-")
    try:
        return (int(ms), int(seq or 0))
    except ValueError:
        return (0, 0)


def applied_minute_key(minute: int) -> str:
    """The per-minute applied counter's key (without prefix) for epoch minute ``minute``."""
    return APPLIED_MINUTE_KEY.format(minute=minute)


def session_key(sid: str) -> str:
    return SESSION_KEY.format(sid=sid)


def user_sessions_key(user_id: int) -> str:
    return USER_SESSIONS_KEY.format(user_id=user_id)


def signin_locks_key(user_id: int) -> str:
    return SIGNIN_LOCKS_KEY.format(user_id=user_id)


def bridge_files_key(name: str) -> str:
    return BRIDGE_FILES_KEY.format(name=name)


def bridge_dead_key(name: str) -> str:
    return BRIDGE_DEAD_KEY.format(name=name)


def bridge_group(name: str) -> str:
    return BRIDGE_GROUP.format(name=name)


def alarm_seen_key(alarm_id: str) -> str:
    return ALARM_SEEN_KEY.format(alarm_id=alarm_id)


def alarm_case_key(case_id: str) -> str:
    return ALARM_CASE_KEY.format(case_id=case_id)


def case_streams(settings: Settings) -> list[str]:
    """Every stream the ingest reads: the main one, plus one per configured shard."""
    base = settings.key(CASE_STREAM)
    return [base] + [f"{base}:{shard}" for shard in settings.feed_shards]


def stream_for(settings: Settings, grid_code: str | None) -> str:
    """Where a producer that shards by district should XADD an event of this grid."""
    base = settings.key(CASE_STREAM)
    if grid_code and settings.feed_shards and grid_code[:6] in settings.feed_shards:
        return f"{base}:{grid_code[:6]}"
    return base
