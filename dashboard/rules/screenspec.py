"""What a hall screen (大屏) can show, and the broadcast banners (横幅通知) on it: pure rules.

A command hall's video wall is several screens; each is a named object the shift lead controls
(``dashboard/store/hallscreens.py`` keeps them, docs/halls.md describes them):

- a **layout** (:class:`ScreenLayout`): the full wall, one panel full-screen, or one tile of a
  **mosaic** that spans several screens (:class:`Tile`: column and row of ``cols × rows``);
- a **region** (a district or street code; None is the whole city) and a **metric** of the map
  (:class:`~dashboard.rules.vocab.GridMetric`);
- a **playlist** (轮播): entries of (layout, region, metric, dwell seconds) the screen cycles
  through instead of its fixed layout, written ``LAYOUT[@REGION][/METRIC]:SECONDS`` joined by
  commas (:func:`parse_playlist`) or as a JSON list of objects (:func:`playlist_from_json`).

Everything here checks text from people (the command line, the admin page) and says what is
wrong in one line, Chinese first, then English: :class:`SpecError`. No SQL: whether a region
exists and who may choose it is the store's business.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dashboard.rules.vocab import GridMetric, LabelledEnum

# -- bounds -------------------------------------------------------------------------------
DWELL_MIN_S = 5  # shorter and the hall cannot read a panel before it is gone
DWELL_MAX_S = 3600  # longer is a fixed layout, not a playlist
PLAYLIST_MAX = 50  # entries; a playlist is for a hall's rotation, not an archive
TILE_MAX = 8  # columns or rows of a mosaic: 8 × 8 screens is a very large hall
NAME_MAX = 64
TITLE_MAX = 100
BANNER_TEXT_MAX = 200  # characters: one or two lines across a wall, read from across the hall
BANNER_TTL_MIN = timedelta(minutes=1)
BANNER_TTL_MAX = timedelta(days=7)  # a banner is an alert of the moment, not a sign
BANNER_TTL_DEFAULT = timedelta(hours=2)
DEFAULT_METRIC = GridMetric.OPEN  # the wall's default map (layouts/wall.py DEFAULT_METRIC)
CHANGES_SHOWN = 50  # the newest changes `gridhall screens log` lists unless told otherwise
CITY = "city"  # how people write "the whole city" where a region code could go


class SpecError(ValueError):
    """A screen setting, playlist or banner that cannot be; the message is one line, zh-CN / English."""


def _error(zh: str, en: str) -> SpecError:
    return SpecError(f"{zh} / {en}")


class ScreenLayout(LabelledEnum):
    """What a screen shows: the whole wall, one of its panels full-screen, or a mosaic tile."""

    WALL = "wall", "全景大屏"
    MAP = "map", "网格热力图"
    QUEUE = "queue", "超期案件队列"
    BOARD = "board", "处置单位看板"
    EVALUATION = "evaluation", "综合考评"
    DISTRICTS = "districts", "各区对比"
    KPIS = "kpis", "指标条"
    MOSAIC = "mosaic", "拼接墙分块"


# A playlist entry shows a whole picture: a mosaic tile alone is a fragment of a picture that
# spans screens, and screens of one mosaic cycling on their own would tear it apart.
PLAYLIST_LAYOUTS = frozenset(ScreenLayout) - {ScreenLayout.MOSAIC}


class BannerLevel(LabelledEnum):
    """How a broadcast banner (横幅通知) looks on the screens."""

    NOTICE = "notice", "通知"
    WARNING = "warning", "预警"


@dataclass(frozen=True)
class Tile:
    """One screen's place in a mosaic of ``cols × rows`` screens; ``col`` and ``row`` count from 1
    (left to right, top to bottom). Written ``COLSxROWS:COL,ROW``, e.g. ``3x2:2,1`` (the middle
    screen of the top row of three by two)."""

    cols: int
    rows: int
    col: int
    row: int

    def __post_init__(self) -> None:
        for n in (self.cols, self.rows):
            if not 1 <= n <= TILE_MAX:
                raise _error(f"拼接墙的行列数须为1–{TILE_MAX}", f"a mosaic has 1–{TILE_MAX} columns and rows")
        if self.cols * self.rows < 2:
            raise _error("拼接墙至少由2块屏组成", "a mosaic spans at least 2 screens")
        if not (1 <= self.col <= self.cols and 1 <= self.row <= self.rows):
            raise _error(f"分块 {self.col},{self.row} 不在 {self.cols}×{self.rows} 之内",
                         f"tile {self.col},{self.row} lies outside {self.cols}x{self.rows}")

    def text(self) -> str:
        return f"{self.cols}x{self.rows}:{self.col},{self.row}"


_TILE_RE = re.compile(r"\s*(\d{1,2})\s*[x×]\s*(\d{1,2})\s*:\s*(\d{1,2})\s*,\s*(\d{1,2})\s*")


def parse_tile(text: str) -> Tile:
    """``COLSxROWS:COL,ROW`` (``3x2:2,1``) as a :class:`Tile`."""
    match = _TILE_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise _error(f"分块 {text!r} 应写作 列数x行数:列,行（如 3x2:2,1）",
                     f"tile {text!r}: write COLSxROWS:COL,ROW, e.g. 3x2:2,1")
    cols, rows, col, row = (int(g) for g in match.groups())
    return Tile(cols=cols, rows=rows, col=col, row=row)


def parse_layout(text: str) -> ScreenLayout:
    try:
        return ScreenLayout(text.strip().lower())
    except (ValueError, AttributeError):
        names = ", ".join(f"{m.value} ({m.label})" for m in ScreenLayout)
        raise _error(f"未知的版式 {text!r}", f"unknown layout {text!r}; one of {names}") from None


def parse_metric(text: str) -> GridMetric:
    try:
        return GridMetric(text.strip().lower())
    except (ValueError, AttributeError):
        names = ", ".join(f"{m.value} ({m.label})" for m in GridMetric)
        raise _error(f"未知的指标 {text!r}", f"unknown metric {text!r}; one of {names}") from None


def parse_level(text: str) -> BannerLevel:
    try:
        return BannerLevel(text.strip().lower())
    except (ValueError, AttributeError):
        names = ", ".join(f"{m.value} ({m.label})" for m in BannerLevel)
        raise _error(f"未知的通知级别 {text!r}", f"unknown banner level {text!r}; one of {names}") from None


_REGION_RE = re.compile(r"[0-9]{6}(?:[0-9]{3})?")


def parse_region(text: str | None) -> str | None:
    """A district (6 digits) or street (9) code; None, ``""`` or ``city`` is the whole city.

    Whether it exists is for the store to say.
    """
    if text is None:
        return None
    code = text.strip()
    if code.lower() in ("", CITY, "全市"):
        return None
    if not _REGION_RE.fullmatch(code):
        raise _error(f"区域 {text!r} 应为区（6位）或街道（9位）代码，或 city（全市）",
                     f"region {text!r}: a district (6 digits) or street (9) code, or 'city'")
    return code


def check_dwell(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not DWELL_MIN_S <= seconds <= DWELL_MAX_S:
        raise _error(f"停留时间须为 {DWELL_MIN_S}–{DWELL_MAX_S} 秒，得到 {seconds!r}",
                     f"dwell must be {DWELL_MIN_S}–{DWELL_MAX_S} seconds, got {seconds!r}")
    return seconds


@dataclass(frozen=True)
class PlaylistEntry:
    """One step of a screen's playlist (轮播): show ``layout`` of ``region`` (None: the whole city)
    coloured by ``metric`` for ``dwell_s`` seconds, then the next entry."""

    layout: ScreenLayout
    region: str | None
    metric: GridMetric
    dwell_s: int

    def __post_init__(self) -> None:
        if self.layout not in PLAYLIST_LAYOUTS:
            raise _error("轮播条目不能是拼接墙分块", "a playlist entry cannot be a mosaic tile")
        check_dwell(self.dwell_s)

    def text(self) -> str:
        """The entry as :func:`parse_playlist` reads it (the metric only when not the default)."""
        where = f"@{self.region}" if self.region else ""
        metric = f"/{self.metric.value}" if self.metric is not DEFAULT_METRIC else ""
        return f"{self.layout.value}{where}{metric}:{self.dwell_s}"

    def to_json(self) -> dict[str, Any]:
        return {"layout": self.layout.value, "region": self.region, "metric": self.metric.value,
                "dwell_s": self.dwell_s}


_ENTRY_RE = re.compile(r"(?P<layout>[a-z]+)(?:@(?P<region>[^/:]*))?(?:/(?P<metric>[a-z_]+))?:(?P<dwell>\d{1,5})")


def parse_entry(text: str) -> PlaylistEntry:
    """``LAYOUT[@REGION][/METRIC]:SECONDS``, e.g. ``map@320102/overdue:30`` or ``wall:60``."""
    raw = text.strip()
    match = _ENTRY_RE.fullmatch(raw.lower())
    if match is None:
        raise _error(f"轮播条目 {text!r} 应写作 版式[@区域][/指标]:秒（如 map@320102:30）",
                     f"playlist entry {text!r}: write LAYOUT[@REGION][/METRIC]:SECONDS, e.g. map@320102:30")
    return PlaylistEntry(layout=parse_layout(match["layout"]), region=parse_region(match["region"]),
                         metric=parse_metric(match["metric"]) if match["metric"] else DEFAULT_METRIC,
                         dwell_s=check_dwell(int(match["dwell"])))


def _checked(entries: Sequence[PlaylistEntry]) -> tuple[PlaylistEntry, ...]:
    if len(entries) > PLAYLIST_MAX:
        raise _error(f"轮播最多 {PLAYLIST_MAX} 条，得到 {len(entries)} 条",
                     f"a playlist holds at most {PLAYLIST_MAX} entries, got {len(entries)}")
    if len(entries) == 1:
        # One entry is a fixed layout: say so rather than keep a "playlist" that never turns.
        raise _error("轮播至少要有2条；只显示一种画面请设置版式", "a playlist needs 2 entries or more; "
                     "for one picture set the layout instead")
    return tuple(entries)


def parse_playlist(text: str) -> tuple[PlaylistEntry, ...]:
    """Comma-separated entries (:func:`parse_entry`); an empty text is no playlist."""
    parts = [p for p in (text or "").split(",") if p.strip()]
    return _checked([parse_entry(p) for p in parts])


def playlist_from_json(data: Any) -> tuple[PlaylistEntry, ...]:
    """A playlist from JSON: a list of ``{"layout", "region", "metric", "dwell_s"}`` objects
    (``region`` and ``metric`` optional), as stored and as ``--playlist-file`` reads it."""
    if not isinstance(data, list):
        raise _error("轮播应为 JSON 数组", "a playlist is a JSON list of entries")
    entries = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict) or not {"layout", "dwell_s"} <= set(item) \
                or not set(item) <= {"layout", "region", "metric", "dwell_s"}:
            raise _error(f"第 {i} 条轮播应为含 layout、dwell_s（可选 region、metric）的对象",
                         f"playlist entry {i}: an object with layout and dwell_s (region, metric optional)")
        region = item.get("region")
        if region is not None and not isinstance(region, str):
            raise _error(f"第 {i} 条的区域应为代码字符串", f"entry {i}: region must be a code string")
        metric = item.get("metric")
        entries.append(PlaylistEntry(
            layout=parse_layout(str(item["layout"])), region=parse_region(region),
            metric=parse_metric(str(metric)) if metric is not None else DEFAULT_METRIC,
            dwell_s=check_dwell(item["dwell_s"])))
    return _checked(entries)


def playlist_to_json(entries: Sequence[PlaylistEntry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in entries]


def playlist_text(entries: Sequence[PlaylistEntry]) -> str:
    """The playlist as one line :func:`parse_playlist` reads back."""
    return ",".join(e.text() for e in entries)


def check_layout_tile(layout: ScreenLayout, tile: Tile | None) -> None:
    """A mosaic screen knows its tile; no other layout has one."""
    if layout is ScreenLayout.MOSAIC and tile is None:
        raise _error("拼接墙分块须指定分块位置（如 3x2:2,1）", "a mosaic screen needs its tile, e.g. 3x2:2,1")
    if layout is not ScreenLayout.MOSAIC and tile is not None:
        raise _error(f"只有拼接墙分块才有分块位置，此屏版式为 {layout.label}",
                     f"only a mosaic screen has a tile; this one's layout is {layout.value}")


def _printable(text: str) -> bool:
    return not any(unicodedata.category(ch)[0] == "C" for ch in text)


_NAME_RE = re.compile(r"[^\s,@/:]+")


def check_name(name: str) -> str:
    """A screen's name: 1–64 characters, no spaces, no control characters, none of ``, @ / :``
    (it appears in playlists and command lines), e.g. ``鼓楼-1``."""
    name = (name or "").strip()
    if not 0 < len(name) <= NAME_MAX or not _NAME_RE.fullmatch(name) or not _printable(name):
        raise _error(f"屏幕名称 {name!r} 须为1–{NAME_MAX}个字符，不含空格、控制字符及 , @ / :",
                     f"screen name {name!r}: 1–{NAME_MAX} characters, no spaces, control characters or , @ / :")
    return name


def check_title(title: str) -> str:
    """A screen's title as the hall reads it (e.g. 鼓楼区指挥大厅 1号屏): 1–100 printable characters."""
    title = " ".join((title or "").split())
    if not 0 < len(title) <= TITLE_MAX or not _printable(title):
        raise _error(f"屏幕标题须为1–{TITLE_MAX}个可见字符", f"screen title: 1–{TITLE_MAX} printable characters")
    return title


def check_banner_text(text: str) -> str:
    """A banner's message: 1–200 printable characters on one line (runs of white space become one)."""
    text = " ".join((text or "").split())
    if not text or not _printable(text):
        raise _error("横幅通知内容不能为空，且不能含控制字符", "a banner needs text, without control characters")
    if len(text) > BANNER_TEXT_MAX:
        raise _error(f"横幅通知最多 {BANNER_TEXT_MAX} 字，现为 {len(text)} 字",
                     f"a banner holds at most {BANNER_TEXT_MAX} characters, this one {len(text)}")
    return text


_DURATION_RE = re.compile(r"\s*(\d{1,6})\s*([smhd])\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_ttl(text: str) -> timedelta:
    """How long a banner stays: ``90m``, ``2h``, ``1d`` (s, m, h, d), from 1 minute to 7 days."""
    match = _DURATION_RE.fullmatch(text.lower()) if isinstance(text, str) else None
    if match is None:
        raise _error(f"有效期 {text!r} 应写作 数字加单位 s/m/h/d（如 2h）",
                     f"expiry {text!r}: a number with s, m, h or d, e.g. 2h")
    return check_ttl(timedelta(**{_UNITS[match[2]]: int(match[1])}))


def check_ttl(ttl: timedelta) -> timedelta:
    if not BANNER_TTL_MIN <= ttl <= BANNER_TTL_MAX:
        raise _error("横幅通知有效期须为1分钟至7天", "a banner lasts from 1 minute to 7 days")
    return ttl


@dataclass(frozen=True)
class ScreenSetting:
    """What a screen is set to show when no playlist runs, checked as a whole."""

    layout: ScreenLayout = ScreenLayout.WALL
    region: str | None = None
    metric: GridMetric = DEFAULT_METRIC
    tile: Tile | None = None
    playlist: tuple[PlaylistEntry, ...] = ()

    def __post_init__(self) -> None:
        check_layout_tile(self.layout, self.tile)
        if self.playlist and self.layout is ScreenLayout.MOSAIC:
            raise _error("拼接墙分块不能轮播", "a mosaic tile cannot run a playlist")

    def regions(self) -> set[str | None]:
        """Every region the screen may show: its own and its playlist's (None: the whole city)."""
        return {self.region} | {e.region for e in self.playlist}
