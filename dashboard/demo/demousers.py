"""The demo's users: one per role (and a district leader to show 属地), with known credentials.

Passwords are random per demo data dir and kept, with the wall screen's display token, in
``DATA_DIR/demo-users.json`` (mode 0600) so that every ``gridhall demo`` start can print
them. Only the demo does this: real deployments add users with ``gridhall users add`` and no
password is ever written to disk.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.rules.vocab import RegionLevel
from dashboard.store import users
from dashboard.store.models import Region

FILE_NAME = "demo-users.json"


@dataclass(frozen=True)
class DemoUser:
    role: str
    username: str
    display_name: str
    scope: str  # shown: 全市 or the district's name
    password: str | None  # None for the wall screen
    token: str | None  # the wall screen's display token


def _spec(session: Session) -> list[tuple[str, str, str, str | None]]:
    district = session.scalars(select(Region).where(Region.level == RegionLevel.DISTRICT.value)
                               .order_by(Region.code)).first()
    spec: list[tuple[str, str, str, str | None]] = [
        # People's names, not role names: pages show the name beside the role label.
        ("display", "wall", "指挥大厅主屏", None),
        ("leader", "leader", "张建国", None),
        ("shift_lead", "shiftlead", "王海燕", None),
        ("admin", "admin", "刘志强", None),
    ]
    if district is not None:
        spec.append(("leader", "district.leader", "陈静", district.code))
    return spec


def ensure(session: Session, data_dir: Path) -> list[DemoUser]:
    """The demo users, created (or given new credentials) when the file is missing; caller commits."""
    path = data_dir / FILE_NAME
    if path.exists():
        return [DemoUser(**row) for row in json.loads(path.read_text(encoding="utf-8"))]
    made: list[DemoUser] = []
    for role, username, name, scope in _spec(session):
        user = users.get_user(session, username)
        password = None if role == "display" else secrets.token_urlsafe(9)
        if user is None:
            user = users.create_user(session, username, role, display_name=name, scope=scope,
                                     password=password)
        elif password is not None:
            users.set_password(session, user, password)
        token = None
        if role == "display":
            users.revoke_tokens(session, user)
            token = users.screen_token(session, username, token_name="demo wall")
        region = user.scope_region
        made.append(DemoUser(role, username, name, region.name if region else "全市", password, token))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump([asdict(u) for u in made], fh, ensure_ascii=False, indent=1)
    return made
