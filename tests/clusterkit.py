"""A real local Redis Cluster from Debian's redis-server: 3 masters + 3 replicas on loopback.

Used by the failover test (tests/test_redis_cluster.py) when no cluster is configured, and
runnable by hand::

    python3 tests/clusterkit.py start 7101 /tmp/mycluster    # prints the redis+cluster:// URL
    python3 tests/clusterkit.py stop /tmp/mycluster

Every node runs with ``cluster-enabled yes``, no persistence (``save ""``, ``appendonly no``)
and a short ``cluster-node-timeout`` (a killed master's replica takes over within about two
node timeouts). CI's third pass (.ci/run) starts the same layout with the same commands in bash.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
NODES = 6  # 3 masters, each with one replica


def available() -> str | None:
    """Why a cluster cannot be started here (None: it can)."""
    for binary in (REDIS_SERVER, REDIS_CLI):
        if not os.access(binary, os.X_OK):
            return f"{binary} is not installed (Debian's redis-server package)"
    return None


def free_base_port(count: int = NODES, start: int = 17000, stop: int = 30000) -> int:
    """A base port such that base..base+count-1 and their cluster bus ports (+10000) are free."""
    for base in range(start + (os.getpid() % 500) * 8, stop, count + 2):
        ports = [p for i in range(count) for p in (base + i, base + i + 10000)]
        if all(_port_free(p) for p in ports if p < 65536) and base + count + 10000 < 65536:
            return base
    raise RuntimeError("no free ports for a local Redis Cluster")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalCluster:
    """A running local cluster: its ports, folder and processes."""

    base_port: int
    folder: Path
    node_timeout_ms: int = 1500
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return [self.base_port + i for i in range(NODES)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/"

    def start(self, timeout: float = 60.0) -> LocalCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        for port in self.ports:
            node_dir = self.folder / str(port)
            shutil.rmtree(node_dir, ignore_errors=True)
            node_dir.mkdir()
            self._spawn(port)
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while self._cli(port, "ping") != "PONG":
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server on port {port} did not start")
                time.sleep(0.05)
        create = subprocess.run(
            [REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if create.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout}{create.stderr}")
        self.wait_ok(deadline - time.monotonic())
        return self

    def _spawn(self, port: int) -> None:
        node_dir = self.folder / str(port)
        self.procs[port] = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(self.node_timeout_ms),
             "--appendonly", "no", "--save", "", "--dir", str(node_dir), "--daemonize", "no",
             "--logfile", str(node_dir / "redis.log"), "--protected-mode", "yes"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restart(self, port: int) -> None:
        """Start a killed node again, as a supervisor would: its nodes.conf makes it rejoin, as a
        replica of the master that took its slots over (it syncs from it: no persistence)."""
        self._spawn(port)

    def wait_ok(self, timeout: float = 60.0) -> None:
        """Until every live node says ``cluster_state:ok`` and every slot is served."""
        deadline = time.monotonic() + timeout
        while True:
            states = [self._cli(p, "cluster", "info") for p in self.alive_ports()]
            if states and all("cluster_state:ok" in s and "cluster_slots_ok:16384" in s for s in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not become ok within {timeout:.0f} s")
            time.sleep(0.1)

    def alive_ports(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def replicas_of(self, master_port: int) -> int:
        """How many replicas of the master on ``master_port`` are connected to it."""
        info = self._cli(master_port, "info", "replication")
        for line in info.splitlines():
            if line.startswith("connected_slaves:"):
                return int(line.split(":")[1])
        return 0

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key``'s slot now."""
        slot = int(self._cli(self.alive_ports()[0], "cluster", "keyslot", key))
        for line in self._cli(self.alive_ports()[0], "cluster", "nodes").splitlines():
            parts = line.split()
            if "master" not in parts[2] or "fail" in parts[2]:
                continue
            for span in parts[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(parts[1].split(":")[1].split("@")[0])
        raise RuntimeError(f"no master serves slot {slot}")

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash: no shutdown, no last words to the cluster)."""
        proc = self.procs[port]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def _cli(self, port: int, *args: str) -> str:
        try:
            out = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
                                 capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return ""
        return out.stdout.strip()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "start":
        cluster = LocalCluster(int(argv[1]), Path(argv[2]))
        cluster.start()
        for port, proc in cluster.procs.items():  # leave them running: "stop" ends them
            (cluster.folder / str(port) / "pid").write_text(str(proc.pid))
        print(cluster.url)
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        for pid_file in Path(argv[1]).glob("*/pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
