"""Shared kit: the /screens page's callbacks called as Dash's renderer calls them, on apicitykit's city.

:func:`hall_screens` adds a screen in each of the city's two districts (as the command line's
operator would, committed and announced); :func:`dash_call` posts one of the page's callbacks
with the values a person's page would send (pattern-matching states as lists), through the
guard and CSRF, and returns the answer's outputs by component id.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from sqlalchemy.orm import Session, sessionmaker

from dashboard.rules.screenspec import ScreenSetting
from dashboard.settings import Settings
from dashboard.store import hallscreens
from dashboard.store.hallcontrol import CLI_ACTOR
from feeds.control import ControlPublisher

HOME = "990101"  # 青山区 of apicitykit's city, and its street
HOME_STREET = "990101001"
OTHER = "990102"  # 白石区
HOME_SCREEN = "qingshan-1"
OTHER_SCREEN = "baishi-1"


def hall_screens(sessions: sessionmaker[Session], client: redis.Redis, settings: Settings) -> None:
    """A screen of 青山区 and one of 白石区, each with its own title."""
    control = ControlPublisher(client, settings)
    for name, title, region in ((HOME_SCREEN, "青山区指挥大厅1号屏", HOME),
                                (OTHER_SCREEN, "白石区指挥大厅1号屏", OTHER)):
        control.commit(sessions, lambda s, n=name, t=title, r=region: hallscreens.add_screen(
            s, CLI_ACTOR, n, title=t, setting=ScreenSetting(region=r)))


def callback_key(app: Any, output: str) -> str:
    """The callback whose outputs include ``output`` (``id.property``)."""
    found = [k for k in app.callback_map if output in [o.split("@")[0] for o in k.strip(".").split("...")]]
    assert len(found) == 1, (output, found)
    return found[0]


def dash_call(client: Any, app: Any, output: str, values: dict[str, Any], changed: list[str],
              csrf: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Post the callback of ``output`` with ``values`` by ``id.property`` (a pattern's: a list of
    ``(id dict, value)``); returns the status and the outputs by ``id.property``."""
    key = callback_key(app, output)
    spec = app.callback_map[key]

    def item(i: dict[str, str]) -> Any:
        name = i["id"]
        if name.startswith("{"):  # a pattern: every matching component's value
            return [{"id": pid, "property": i["property"], "value": v}
                    for pid, v in values.get(f"{json.loads(name)['type']}.{i['property']}", [])]
        return {"id": name, "property": i["property"], "value": values.get(f"{name}.{i['property']}")}

    outputs = [{"id": o.split(".")[0], "property": o.split(".")[1]} for o in key.strip(".").split("...")]
    body = {"output": key, "outputs": outputs if key.startswith("..") else outputs[0],
            "inputs": [item(i) for i in spec["inputs"]], "state": [item(i) for i in spec["state"]],
            "changedPropIds": changed}
    r = client.post("/_dash-update-component", json=body, headers=csrf)
    if r.status_code != 200:
        return r.status_code, {}
    answer = r.get_json()["response"]
    return 200, {f"{cid}.{prop.split('@')[0]}": value for cid, props in answer.items() for prop, value in props.items()}


def texts(node: Any) -> str:
    """Every text in a Dash component tree as the answer carries it (JSON), joined by spaces."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return " ".join(texts(n) for n in node)
    if isinstance(node, dict):
        return texts(node.get("props", {}).get("children")) if "props" in node else ""
    return "" if node is None else str(node)
