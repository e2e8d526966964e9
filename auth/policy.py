"""Who may reach what: the route table of the web app (docs/security.md has it as a table).

Every Flask URL rule of the app, every page path and every server-side Dash callback must have
a rule here; the guard (``auth/guard.py``) refuses what has none, and
``tests/test_access_matrix.py`` builds its role × route matrix from this table and the app's
own route list, so a new route without a rule fails the test.

Roles are ``dashboard.store.users.UserRole`` values. A rule is either public, or a set of roles
(optionally for city-scoped users only), or ``PageOf`` — "the rule of the page this request
belongs to" (a page's path, its layout request, its callbacks).

It is also the one page registry (``PAGE_LIST``): each page's name, path, rule and the roles
that land on it. Plain data, importing nothing of the web: ``layouts`` (a layout per page),
``callbacks`` (callbacks per page), ``app.py`` and ``cli`` read it, and
``tests/test_layers.py`` checks that every page here has a layout and callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.store.users import UserRole

DISPLAY = UserRole.DISPLAY.value
LEADER = UserRole.LEADER.value
SHIFT_LEAD = UserRole.SHIFT_LEAD.value
ADMIN = UserRole.ADMIN.value
ROLES: tuple[str, ...] = (DISPLAY, LEADER, SHIFT_LEAD, ADMIN)
PEOPLE = frozenset({LEADER, SHIFT_LEAD, ADMIN})  # roles that sign in with a password


@dataclass(frozen=True)
class Rule:
    """Who may use a route: anyone (``public``) or the signed-in ``roles``."""

    roles: frozenset[str] = frozenset()
    public: bool = False
    # The page shows the live view of the whole city (the wall): a user with a district or
    # street scope is refused rather than shown other districts' figures.
    city_only: bool = False
    # The page's callbacks change something (hot-spot notes on /explore, the hall's screens and
    # banners on /screens); the role must also be one of the page's ``WRITERS``.
    writes: bool = False

    def allows(self, role: str | None, city_scope: bool) -> bool:
        if self.public:
            return True
        if role is None or role not in self.roles:
            return False
        return city_scope or not self.city_only


@dataclass(frozen=True)
class PageOf:
    """The rule of the page the request belongs to, found by ``how``."""

    how: str  # "path" (the URL itself), "referrer" (Dash's layout request), "callback"


@dataclass(frozen=True)
class Scrape:
    """Prometheus' scrape of ``/metrics``: a client on this host's loopback, or one that shows
    the scrape token (``GRIDHALL_METRICS_TOKEN``) as a bearer token. No session and no role
    grants it: the figures are for the city's operations team, not the hall (``auth/scrape.py``)."""


@dataclass(frozen=True)
class ApiKey:
    """Open311 GeoReport v2 (``/open311/v2``): a client app's ``api_key`` decides, never a session or
    a role; the route answers for itself in the spec's error format (api/open311.py)."""


PUBLIC = Rule(public=True)
SIGNED_IN = Rule(frozenset(ROLES))

# -- pages --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    """One page of the app: its name (the first path segment), who may open it, whose home it is."""

    name: str
    rule: Rule
    # The roles that land here after signing in (and when they open "/"); each role has one home.
    home_of: frozenset[str] = frozenset()
    # The page's own Flask URL rules under its path (registered by the page: callbacks.PAGE_ROUTES);
    # each gets the page's rule.
    routes: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"/{self.name}"


# The page registry: every page of the app, in the order the app renders their indexes.
PAGE_LIST: tuple[Page, ...] = (
    # The command-hall wall: wall screens (display tokens) and people of the centre.
    # A district's or street's viewer gets that region's wall (两级指挥: the district halls);
    # the city's may show any region with ?region= (callbacks/wall.py viewer_scope).
    Page("wall", Rule(frozenset(ROLES)), home_of=frozenset({DISPLAY}),
         routes=("/wall/geo/<name>.json",  # its grid and boundary geometry (the viewer's region)
                 "/wall/events")),  # its push stream (server-sent events)
    # Drill-down: shift leads work in it (and may note hot spots), leaders and admins read it.
    Page("explore", Rule(PEOPLE, writes=True), home_of=frozenset({SHIFT_LEAD, ADMIN}),
         routes=("/explore/export.<fmt>",  # the current case table as CSV/XLSX
                 "/explore/handover/<shift>.<fmt>")),  # a shift's handover (city scope; 404 otherwise)
    # The leaders' read-only summary (desktop and phone).
    Page("view", Rule(PEOPLE), home_of=frozenset({LEADER})),
    # The hall's screens (大屏管理): shift leads change the screens of their scope and post
    # banners in it, admins all (dashboard/store/hallcontrol.py applies the scope per screen).
    Page("screens", Rule(frozenset({SHIFT_LEAD, ADMIN}), writes=True)),
    # The interim live-counts page of the first release (city figures only).
    Page("live", Rule(frozenset({SHIFT_LEAD, ADMIN}), city_only=True)),
)

# Read from the registry: a page's rule by name …
PAGES: dict[str, Rule] = {page.name: page.rule for page in PAGE_LIST}
# 回放 on /explore (the control that opens /wall?at=…): the shift leads and admins, who run the hall's
# screens; only roles the wall itself allows (checked below), and the wall checks the region again.
REPLAY: frozenset[str] = frozenset({SHIFT_LEAD, ADMIN})
assert REPLAY <= PAGES["wall"].roles, "回放 opens the wall: only roles the wall allows"

# … and where each role lands after signing in (and when it opens "/").
HOME: dict[str, str] = {role: page.path for page in PAGE_LIST for role in page.home_of}

# Who may use the write callbacks of a page whose rule ``writes`` (checked in the callback on
# the server, besides the page's rule): hot-spot notes are the shift leads'; the screens and
# banners the shift leads' and the admins' (each change then within the actor's scope).
WRITERS: dict[str, frozenset[str]] = {
    "explore": frozenset({SHIFT_LEAD}),
    "screens": frozenset({SHIFT_LEAD, ADMIN}),
}

# -- every Flask URL rule of the app ------------------------------------------------------------
PREFIX_OPEN311 = "/open311/v2"
ROUTES: dict[str, Rule | PageOf | Scrape | ApiKey] = {
    "/login": PUBLIC,  # the sign-in form (GET) and its POST, CSRF-protected and throttled
    "/logout": SIGNED_IN,  # POST with the CSRF token
    "/healthz": PUBLIC,  # backends reachable? (load balancers; says nothing else)
    "/metrics": Scrape(),  # Prometheus text format (api/metrics.py): loopback or the scrape token
    # Dash's JavaScript and CSS bundles and our assets: code, no data.
    "/assets/<path:filename>": PUBLIC,
    "/_dash-component-suites/<string:package_name>/<path:fingerprinted_path>": PUBLIC,
    "/_favicon.ico": PUBLIC,
    "/static/<path:filename>": PUBLIC,  # Flask's own static folder (empty; Dash uses /assets)
    "/_reload-hash": SIGNED_IN,  # Dash dev-tools hot reload (off in production)
    "/_dash-dependencies": SIGNED_IN,  # the callback graph: component ids, no data
    "/_dash-layout": PageOf("referrer"),  # the page's layout, asked for by the page
    "/_dash-update-component": PageOf("callback"),  # each callback belongs to one page
    "/": SIGNED_IN,  # redirects to the role's home page
    "/<path:path>": PageOf("path"),  # Dash's page catch-all: /wall, /explore, /view, /screens, /live
    # Each page's own routes (PAGE_LIST above): the wall's geometry, explore's export.
    **{route: PageOf("path") for page in PAGE_LIST for route in page.routes},
    # The JSON read API authenticates itself (bearer token, or this session): api/v1.py.
    "/api/v1/summary": Rule(PEOPLE),
    "/api/v1/grids": Rule(PEOPLE),
    "/api/v1/overdue": Rule(PEOPLE),
    "/api/v1/units": Rule(PEOPLE),
    "/api/v1/cases/<case_id>": Rule(PEOPLE),
    "/api/v1/evaluation": Rule(PEOPLE),
    "/api/v1/openapi.json": Rule(PEOPLE),
    # Open311 GeoReport v2: client apps with an api_key (api/open311.py, docs/open311.md).
    **{PREFIX_OPEN311 + route: ApiKey() for route in (
        "/services.<fmt>", "/services/<service_code>.<fmt>", "/requests.<fmt>", "/requests/<request_id>.<fmt>",
        "/tokens/<token>.<fmt>", "/<path:rest>")},
}

# Routes that answer for themselves (their own 401/403 in their own format): the guard
# leaves them to it.
SELF_GUARDED_PREFIXES: tuple[str, ...] = ("/api/v1/", PREFIX_OPEN311 + "/")


def page_of(path: str) -> str | None:
    """The page a URL path belongs to (``/wall``, ``/explore/export.csv`` …): its first
    segment when that names a page, else None."""
    first = path.strip("/").split("/", 1)[0]
    return first if first in PAGES else None
