"""The demo's 12345 hotline: a small source that drops 工单 files into the hotline bridge's folder.

``gridhall demo`` runs it (``gridhall bridge hotline-sim``) beside the hotline bridge, so the
demo wall shows 12345 cases coming in through the bridge. Every ``every`` seconds it writes one
JSON Lines file (as ``.tmp``, then renamed) of one to three new 工单 at points of the demo city,
with categories of the mapping table — and now and then one the table does not have (an
``unmapped_class`` dead letter). The demo's case simulator then handles the new cases.
"""

from __future__ import annotations

import os
import random
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from dashboard.rules.clock import utcnow

from ..defaults import HOTLINE_SIM_EVERY_S
from ..scenario import CityModel
from .hotline import HotlineRules

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
UNMAPPED = "城市管理/其他/宠物扰民"


class HotlineSource:
    """Writes 工单 files like a 12345 system's export."""

    def __init__(self, city: CityModel, folder: Path, rules: HotlineRules, *, seed: int | None = None) -> None:
        self.city = city
        self.folder = Path(folder)
        self.categories = sorted(rules.table)
        self.rng = random.Random(seed)
        self.written = 0

    def records(self, now: datetime) -> list[dict[str, Any]]:
        local = now.astimezone(self.city.tz)
        out: list[dict[str, Any]] = []
        for i in range(self.rng.randint(1, 3)):
            order_no = f"GD{local:%Y%m%d%H%M%S}{i:02d}"
            grid = self.rng.choices(self.city.grids, weights=self.city.grid_weights)[0]
            category = UNMAPPED if self.rng.random() < 0.07 else self.rng.choice(self.categories)
            leaf = category.rsplit("/", 1)[-1]
            street = self.city.region_names.get(grid.street, "")
            out.append({
                "工单编号": order_no, "受理时间": local.strftime("%Y-%m-%d %H:%M:%S"),
                "诉求人": self.rng.choice(SURNAMES) + self.rng.choice(("先生", "女士")),
                "联系电话": f"1{self.rng.choice('3589')}{self.rng.randrange(10**9):09d}",
                "诉求内容": f"市民来电反映：{street}附近{leaf}问题，请尽快处理",
                "诉求地址": f"{street}{grid.code[-3:]}号附近",
                "经度": f"{grid.lon:.6f}", "纬度": f"{grid.lat:.6f}",
                "诉求分类": category, "办理时限": self.rng.choice(("24小时", "3个工作日", "5个工作日")),
                "紧急程度": "紧急" if self.rng.random() < 0.1 else "一般",
            })
        return out

    def step(self, now: datetime) -> int:
        """Write one file of new 工单; returns how many records it holds."""
        records = self.records(now)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"12345-{now.astimezone(self.city.tz):%Y%m%d-%H%M%S}.jsonl"
        tmp = self.folder / (name + ".tmp")
        tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        os.replace(tmp, self.folder / name)
        self.written += len(records)
        return len(records)

    def run(self, stop: threading.Event, every: float = HOTLINE_SIM_EVERY_S) -> None:
        while not stop.wait(every):
            self.step(utcnow())
