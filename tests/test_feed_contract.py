"""The published feed contract (docs/feed.md, feeds/schema/case-event.v1.json) against the code.

- the committed JSON Schema is exactly what ``feeds.schema`` generates from the pydantic model;
- every ```json example of docs/feed.md is valid under that schema, every event type has one,
  and all of them go through the real path (Producer → Redis → Ingest → SQL) without a dead
  letter, leaving each example case in the stage the doc names, in any arrival order;
- the doc's lifecycle and stage tables are ``dashboard.rules.lifecycle``'s;
- the redis-cli example is valid shell that really publishes a valid event;
- events that break the schema are refused both by jsonschema and by the real ingest.
"""

from __future__ import annotations

import copy
import json
import random
import re
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from citykit import COMMUNITY, build_community, two_by_two
from dashboard.rules import classification
from dashboard.rules.lifecycle import TERMINAL, TRANSITIONS, EventType, Stage
from dashboard.rules.vocab import Source
from dashboard.store.models import Case, CaseEvent, Grid, Unit
from dashboard.store.reference import Reference
from feedkit import validator
from feeds import schema as feed_schema
from feeds.contract import CaseEventMessage
from feeds.ingest import Ingest
from feeds.keys import CASE_STREAM, CONSUMER_GROUP, DEAD_LETTER_STREAM, HEALTH_KEY
from feeds.producer import Producer

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "feed.md"
SCHEMA_FILE = REPO / "feeds" / "schema" / "case-event.v1.json"

UNITS = {
    "DW99010101": ("青山区环境卫生管理所", "disposal"),
    "DW99010102": ("青山区市政设施管理所", "department"),
    "DW99010103": ("江东街道城管执法中队", "street_office"),
}


# --------------------------------------------------------------------------- the doc, parsed


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def json_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"^```json[ \t]*\n(.*?)^```[ \t]*$", doc_text(), flags=re.MULTILINE | re.DOTALL)
    examples = []
    for i, block in enumerate(blocks, 1):
        try:
            examples.append(json.loads(block))
        except json.JSONDecodeError as exc:  # pragma: no cover - shown when the doc is broken
            pytest.fail(f"```json block {i} of docs/feed.md is not JSON: {exc}\n{block}")
    return examples


def table_after(header_pattern: str) -> list[list[str]]:
    """Rows (cells stripped) of the markdown table whose header line matches the pattern."""
    lines = doc_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and re.search(header_pattern, line):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([cell.strip() for cell in row.strip().strip("|").split("|")])
            return rows
    pytest.fail(f"docs/feed.md has no table with a header matching {header_pattern!r}")


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


EVENT_TYPES = {e.value: e for e in EventType}
STAGES = {s.value: s for s in Stage}


def example_cases() -> dict[str, str]:
    """case_id -> the stage docs/feed.md says the example case ends in."""
    return {ticked(row[1])[0]: ticked(row[-1])[0] for row in table_after(r"\|\s*ends in\s*\|")}


def lifecycle_rows() -> list[str]:
    """The lifecycle table as it should read (what a failing test prints)."""

    def stages(allowed: frozenset[Stage | None]) -> str:
        if allowed == frozenset({None}):
            return "*(none: the case's first event)*"
        return ", ".join(f"`{s.value}` {s.label}" for s in Stage if s in allowed)

    rows = []
    for et in EventType:
        allowed, target = TRANSITIONS[et]
        to = "*(unchanged)*" if target is None else f"`{target.value}` {target.label}"
        rows.append(f"| `{et.value}` | {et.label} | {stages(allowed)} | {to} | … |")
    return rows


# ------------------------------------------------------------------------------ validation


def schema_errors(event: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator().iter_errors(event)]


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture
def feed_doc_city(sessions):  # type: ignore[no-untyped-def]
    """青山区 / 江东街道 / 江东社区 with grids 990101001001001…004 and the doc's three units."""
    build_community(sessions, two_by_two(), UNITS)
    return Reference.load(sessions, classification.load("gbt47678-2026"))


def make_ingest(settings, sessions, redis_client, city, **kw) -> Ingest:  # type: ignore[no-untyped-def]
    ingest = Ingest(settings, sessions, redis_client, city, consumer="contract", block_ms=10, **kw)
    ingest.ensure_group()
    return ingest


def drain(ingest: Ingest) -> None:
    while ingest.step():
        pass


def dead_letters(redis_client, settings) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return [fields for _, fields in redis_client.xrange(settings.key(DEAD_LETTER_STREAM))]


# ----------------------------------------------------------------------------------- tests


def test_committed_schema_is_the_generated_one() -> None:
    generated = feed_schema.json_schema()
    committed = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert committed == generated, "regenerate: python -m feeds.schema > feeds/schema/case-event.v1.json"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == feed_schema.render()
    assert feed_schema.published() == generated  # what the package ships
    Draft202012Validator.check_schema(generated)
    assert generated["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert generated["$id"] == "https://gridhall.example/schema/case-event.v1.json"
    occurred = generated["properties"]["occurred_at"]
    assert occurred["format"] == "date-time" and "offset" in occurred["description"]
    assert set(generated["required"]) == {"event_id", "case_id", "type", "occurred_at"}
    assert set(generated["properties"]) == set(CaseEventMessage.model_fields)
    assert generated["additionalProperties"] is False


def test_every_json_example_is_valid_and_every_type_has_one() -> None:
    examples = json_examples()
    for example in examples:
        assert schema_errors(example) == [], json.dumps(example, ensure_ascii=False)
        CaseEventMessage.model_validate(example)  # and the ingest's own contract check agrees
    ids = [e["event_id"] for e in examples]
    assert len(ids) == len(set(ids)), "example event ids must be unique"
    missing = set(EventType) - {EVENT_TYPES[e["type"]] for e in examples}
    assert not missing, f"no example for {sorted(missing)}"
    assert {e["case_id"] for e in examples} == set(example_cases())


def test_examples_go_through_the_real_feed(settings, sessions, redis_client, feed_doc_city):  # type: ignore[no-untyped-def]
    examples = json_examples()
    producer = Producer(redis_client, settings)
    for example in examples:
        producer.publish(CaseEventMessage.model_validate(example))
    ingest = make_ingest(settings, sessions, redis_client, feed_doc_city)
    drain(ingest)

    assert dead_letters(redis_client, settings) == []
    assert redis_client.xpending(settings.key(CASE_STREAM), CONSUMER_GROUP)["pending"] == 0
    assert ingest.stats.applied == len(examples)
    assert redis_client.hget(settings.key(HEALTH_KEY), "applied_total") == str(len(examples))
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == len(examples)
        problems = s.execute(select(CaseEvent.event_id, CaseEvent.problem)
                             .where(CaseEvent.problem.is_not(None))).all()
        assert problems == []
        stages = dict(s.execute(select(Case.case_id, Case.stage)).all())
        assert stages == example_cases()

        # A few things the doc's stories promise.
        def case(case_id: str) -> Case:
            return s.scalars(select(Case).where(Case.case_id == case_id)).one()

        def grid(c: Case) -> str | None:
            return s.scalar(select(Grid.code).where(Grid.id == c.grid_id))

        def unit(c: Case) -> str | None:
            return s.scalar(select(Unit.code).where(Unit.id == c.unit_id))

        b = case("hl12345-2026112400386")
        assert (b.kind, b.class_code, b.urgency, b.number) == ("component", "01002", "urgent", "2026112400009")
        assert grid(b) == f"{COMMUNITY}003" and unit(b) == "DW99010102"
        assert (b.return_count, b.rework_count, b.extension_count) == (1, 1, 1)
        a = case("egov-20261124-000017")
        assert grid(a) == f"{COMMUNITY}001" and unit(a) == "DW99010103" and a.extension_count == 0
        assert grid(case("iot-20261124-000211")) == f"{COMMUNITY}002"  # located from lon/lat
        f = case("egov-20261124-000031")
        assert (f.class_code, f.urgency) == ("06011", "urgent") and f.address.endswith("绿化带")


def test_examples_converge_in_any_arrival_order(settings, sessions, redis_client, feed_doc_city):  # type: ignore[no-untyped-def]
    examples = [CaseEventMessage.model_validate(e) for e in json_examples()]
    shuffled = examples[:]
    random.Random(47678).shuffle(shuffled)
    producer = Producer(redis_client, settings)
    ingest = make_ingest(settings, sessions, redis_client, feed_doc_city, batch_size=1)
    for message in shuffled:  # one per batch: intermediate states really are out of order
        producer.publish(message)
        drain(ingest)
    producer.publish_many(examples)  # and everything once more: duplicates change nothing
    drain(ingest)

    assert dead_letters(redis_client, settings) == []
    assert ingest.stats.applied == len(examples) and ingest.stats.duplicates == len(examples)
    with sessions() as s:
        assert dict(s.execute(select(Case.case_id, Case.stage)).all()) == example_cases()
        assert s.scalars(select(CaseEvent.problem).where(CaseEvent.problem.is_not(None))).all() == []


def test_lifecycle_table_is_the_transitions() -> None:
    rows = table_after(r"may follow")
    expected = "\n".join(lifecycle_rows())
    assert [ticked(r[0])[0] for r in rows] == [e.value for e in EventType], \
        f"rows must list every event type in lifecycle order:\n{expected}"
    for row in rows:
        et = EVENT_TYPES[ticked(row[0])[0]]
        allowed, target = TRANSITIONS[et]
        follows: set[Stage | None] = {STAGES[v] for v in ticked(row[2])} or {None}
        leads = [STAGES[v] for v in ticked(row[3])]
        assert row[1] == et.label, f"{et.value}: zh label"
        assert follows == set(allowed), f"{et.value}: 'may follow' differs from TRANSITIONS:\n{expected}"
        assert leads == ([] if target is None else [target]), f"{et.value}: 'leads to' differs:\n{expected}"
        assert (target is None) == ("unchanged" in row[3])


def test_stage_table_is_the_stages() -> None:
    rows = table_after(r"^\|\s*stage\s*\|\s*中文")
    assert [ticked(r[0])[0] for r in rows] == [s.value for s in Stage]
    for row in rows:
        stage = STAGES[ticked(row[0])[0]]
        assert row[1] == stage.label
        assert (row[2] == "yes") == (stage in TERMINAL)


def test_redis_cli_example_publishes_a_valid_event(settings, sessions, redis_client, feed_doc_city):  # type: ignore[no-untyped-def]
    commands = [line for line in re.findall(r"^```sh\n(.*?)^```", doc_text(), flags=re.MULTILINE | re.DOTALL)
                if "redis-cli" in line and "XADD" in line]
    assert commands, "docs/feed.md has no redis-cli XADD example"
    argv = shlex.split(commands[0])  # what the shell hands redis-cli
    args = argv[argv.index("XADD"):]
    assert args[1] == "gridhall:cases" and args[2] == "*" and args[3] == "event" and len(args) == 5
    event = json.loads(args[4])
    assert schema_errors(event) == []
    redis_client.execute_command("XADD", settings.key(CASE_STREAM), *args[2:])
    drain(make_ingest(settings, sessions, redis_client, feed_doc_city))
    assert dead_letters(redis_client, settings) == []
    with sessions() as s:
        assert s.scalar(select(Case.stage).where(Case.case_id == event["case_id"])) == "reported"


def _broken(change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The doc's first example (case A's report), broken in one way."""
    event = copy.deepcopy(json_examples()[0])
    event.update(event_id="broken-01", case_id="broken")
    for name in drop:
        del event[name]
    event.update(change)
    return event


INVALID = {
    "no offset": (lambda: _broken({"occurred_at": "2026-11-24T08:12:00"}), "occurred_at"),
    "unknown type": (lambda: _broken({"type": "closed_ok"}), "type"),
    "unknown field": (lambda: _broken({"photo_url": "https://example.org/p.jpg"}), "photo_url"),
    "version 2": (lambda: _broken({"v": 2}), "v"),
    "no event_id": (lambda: _broken({}, drop=("event_id",)), "event_id"),
    "blank case_id": (lambda: _broken({"case_id": "   "}), "case_id"),
    "class without kind": (lambda: _broken({}, drop=("kind",)), "kind"),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_events_are_refused_by_schema_and_ingest(name, settings, sessions, redis_client, feed_doc_city):  # type: ignore[no-untyped-def]
    make, where = INVALID[name]
    event = make()
    assert schema_errors(event), f"the JSON Schema accepts {name!r}"
    entry = {"event": json.dumps(event, ensure_ascii=False)}
    redis_client.xadd(settings.key(CASE_STREAM), entry)
    drain(make_ingest(settings, sessions, redis_client, feed_doc_city))

    dead = dead_letters(redis_client, settings)
    assert len(dead) == 1, dead
    letter = dead[0]
    assert json.loads(letter["fields"]) == entry  # kept whole, for a retry
    assert letter["stream"] == settings.key(CASE_STREAM) and letter["entry_id"]
    if "reason_code" in letter:
        assert letter["reason_code"] == "schema", letter
    else:  # an ingest from before reason codes: the readable reason still names the field
        assert where in letter["reason"], letter
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(CaseEvent)) == 0


# ------------------------------------------------- mapping a simple (open/closed) case system


def simple_mapping() -> tuple[list[list[list[str]]], dict[str, list[str]]]:
    """The XADD commands of each ```sh block of "Mapping a simple case system", and its table."""
    section = doc_text().split("\n### Mapping a simple case system\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    commands = [[shlex.split(line) for line in block.splitlines() if line.strip()] for block in blocks]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in ("opening", "closing"):
            rows[cells[0]] = cells
    return commands, rows


def test_simple_case_system_example_gives_what_the_doc_says(settings, sessions, redis_client, feed_doc_city):  # type: ignore[no-untyped-def]
    commands, rows = simple_mapping()
    assert len(commands) == 2 and set(rows) == {"opening", "closing"}, (commands, rows)
    ingest = make_ingest(settings, sessions, redis_client, feed_doc_city)
    cst = datetime.fromisoformat("2026-11-24T00:00:00+08:00").tzinfo

    def as_cst(value: datetime | None) -> str | None:
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(cst).isoformat()

    for when, block in zip(("opening", "closing"), commands, strict=False):
        for argv in reversed(block):  # any arrival order: same-time events apply in loop order
            assert argv[:2] == ["redis-cli", "XADD"] and argv[2] == "gridhall:cases" and argv[3:5] == ["*", "event"]
            assert schema_errors(json.loads(argv[5])) == [], argv[5]
            redis_client.execute_command("XADD", settings.key(CASE_STREAM), "*", "event", argv[5])
        drain(ingest)
        assert dead_letters(redis_client, settings) == []
        _, stage, clock, deadline, on_time = rows[when]
        with sessions() as s:
            case = s.scalars(select(Case).where(Case.case_id == "wz-88231")).one()
            assert case.source == "other" and Source(case.source).label == "其他"
            assert case.stage == ticked(stage)[0], when
            assert case.clock_stage == (ticked(clock)[0] if ticked(clock) else None), when
            assert as_cst(case.deadline_at) == (ticked(deadline)[0] if ticked(deadline) else None), when
            # The skipped desk steps: 核实 and 派遣 on time, 立案 not judged (no `verified`).
            assert (case.on_time_verify, case.on_time_file, case.on_time_dispatch) == (True, None, True), when
            assert case.on_time_handle is {"—": None, "`yes`": True, "`no`": False}[on_time], when
            closed = when == "closing"
            assert (case.on_time_check, case.on_time_close) == ((True, True) if closed else (None, None)), when

    # "closed at 16:40, its 处置 would count as late": the same case, closed after its deadline.
    late_close = [argv[5].replace("wz-88231", "wz-88231-late").replace("T15:30:00", "T16:40:00")
                  for block in commands for argv in block]
    assert re.search(r"closed at 16:40,\s+its\s+处置 would count as late", doc_text()), "the doc's sentence moved"
    for payload in late_close:
        redis_client.execute_command("XADD", settings.key(CASE_STREAM), "*", "event", payload)
    drain(ingest)
    assert dead_letters(redis_client, settings) == []
    with sessions() as s:
        late = s.scalars(select(Case).where(Case.case_id == "wz-88231-late")).one()
        assert (late.stage, late.on_time_handle) == ("closed", False)
