"""docs/open311.md's worked example, end to end, and the `gridhall open311` commands.

The example's fields are read from the page (the ``curl`` block after ``<!-- worked-example -->``),
so the page and the behaviour cannot drift apart: request → stream → ingest → SQL → /explore →
GET requests/{id}. The commands run as ``python -m cli`` against the test's database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clikit import run
from dashboard.figures import explore
from dashboard.figures.selection import Selection
from dashboard.settings import Settings
from dashboard.store import reference
from dashboard.store import scope as scopes
from dashboard.store.models import Case, Open311Key
from dashboard.store.open311 import BULK_FIELDS
from feeds.keys import CASE_STREAM
from open311kit import Hall, close_case

pytestmark = pytest.mark.usefixtures("fresh_scope_cache")

DOC = Path(__file__).resolve().parent.parent / "docs" / "open311.md"


def worked_example() -> tuple[str, dict[str, str], dict[str, str]]:
    """(path, form fields, headers) of the documented POST."""
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- worked-example -->", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    words = shlex.split(block.replace("\\\n", " "))
    assert words[:3] == ["curl", "-X", "POST"]
    path = re.sub(r"^\$BASE/", "", words[3])
    form: dict[str, str] = {}
    headers: dict[str, str] = {}
    for flag, value in zip(words[4::2], words[5::2], strict=True):
        if flag == "--data-urlencode":
            name, _, val = value.partition("=")
            form[name] = val
        elif flag == "-H":
            name, _, val = value.partition(":")
            headers[name.strip()] = val.strip()
        else:
            raise AssertionError(f"unexpected curl flag {flag}")
    return path, form, headers


def test_the_worked_example_runs_end_to_end(settings: Settings, sessions: sessionmaker[Session],
                                            redis_client: redis.Redis, feed_city: Any) -> None:
    hall = Hall(settings, sessions, redis_client, feed_city)
    path, form, headers = worked_example()
    assert path == "requests.json" and form["api_key"] == "$KEY"
    form["api_key"] = hall.key
    r = hall.http.post(f"/open311/v2/{path}", data=form, headers=headers)
    assert r.status_code == 201
    token = r.get_json()[0]["token"]
    # the stream
    event = json.loads(redis_client.xrange(settings.key(CASE_STREAM))[-1][1]["event"])
    assert (event["type"], event["source"], event["class_code"]) == ("reported", "public", "06010")
    # the ingest → SQL
    hall.ingest()
    case_id = hall.get(f"tokens/{token}.json").get_json()[0]["service_request_id"]
    assert case_id == event["case_id"]
    with sessions() as s:
        case = s.scalar(select(Case).where(Case.case_id == case_id))
        assert case is not None and case.grid_id is not None and case.source == "public"
    # /explore
    timing = reference.timing_for(settings, sessions())
    with sessions() as s:
        table = explore.case_table(s, scopes.CITY, timing, datetime.now(UTC), Selection.parse(""))
    assert case_id in [row["case_id"] for row in table.rows]
    # read back as documented
    req = hall.get(f"requests/{case_id}.json").get_json()[0]
    assert req["status"] == "open" and req["status_notes"] == "上报"
    assert req["service_name"] == "暴露垃圾" and req["service_code"] == form["service_code"]
    assert req["description"] == f"{form['description']}\nbags: 3"
    assert (req["lat"], req["long"]) == (float(form["lat"]), float(form["long"]))
    assert req["media_url"] == form["media_url"] and req["address"] == form["address_string"]
    # the same Idempotency-Key again: the same case (now applied: its id), nothing new on the stream
    again = hall.http.post(f"/open311/v2/{path}", data=form, headers=headers)
    assert again.get_json()[0]["service_request_id"] == case_id
    assert redis_client.xlen(settings.key(CASE_STREAM)) == 1


def _env(settings: Settings) -> dict[str, str]:
    return {"GRIDHALL_DATA_DIR": str(settings.data_dir), "GRIDHALL_DATABASE_URL": settings.effective_database_url,
            "GRIDHALL_REDIS_PREFIX": settings.redis_prefix}


def test_keys_commands_and_bulk_export(settings: Settings, sessions: sessionmaker[Session],
                                       redis_client: redis.Redis, feed_city: Any, tmp_path: Path) -> None:
    env = _env(settings)
    added = run("open311", "keys", "add", "随手拍", "--region", "990201", **env)
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip().splitlines()[-1]
    assert key.startswith("o311_")
    with sessions() as s:
        row = s.scalar(select(Open311Key).where(Open311Key.name == "随手拍"))
        assert row is not None and key not in (row.key_hash,) and len(row.key_hash) == 64
    assert run("open311", "keys", "add", "随手拍", **env).returncode == 1  # unique names
    assert run("open311", "keys", "add", "x", "--region", "999999", **env).returncode == 1
    listed = json.loads(run("open311", "keys", "list", "--format", "json", **env).stdout)
    assert [(k["name"], k["scope"], k["revoked"]) for k in listed] == [("随手拍", "990201", False)]
    # the key works on the API, then is revoked
    hall = Hall(settings, sessions, redis_client, feed_city)
    hall.post(description="=HYPERLINK(\"http://x\")")
    hall.ingest()
    assert hall.get("services.json", key=key).status_code == 200
    assert run("open311", "keys", "revoke", "随手拍", **env).returncode == 0
    assert hall.get("services.json", key=key).status_code == 403
    assert run("open311", "keys", "revoke", "nobody", **env).returncode == 1
    # Bulk
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    out = tmp_path / "bulk.csv"
    done = run("open311", "bulk", "--format", "csv", "--since", since, "-o", str(out), **env)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 1 and tuple(rows[0]) == BULK_FIELDS
    assert rows[0]["status"] == "open" and rows[0]["service_code"] == "E06010"
    assert rows[0]["description"].startswith("'=HYPERLINK")  # no formula in a spreadsheet
    as_json = json.loads(run("open311", "bulk", "--format", "json", "--since", since, **env).stdout)
    assert [r["service_request_id"] for r in as_json] == [rows[0]["service_request_id"]]
    assert as_json[0]["requested_datetime"].endswith("+08:00")
    assert isinstance(as_json[0]["lat"], float)
    assert run("open311", "bulk", "--format", "xlsx", **env).returncode == 2
    close_case(hall, rows[0]["service_request_id"])
    closed = json.loads(run("open311", "bulk", "--format", "json", "--since", since, **env).stdout)
    assert closed[0]["status"] == "closed" and closed[0]["agency_responsible"] == "单位U-HW"
