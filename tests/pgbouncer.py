"""PgBouncer for tests: Debian's `pgbouncer` package, which `make pgbouncer` unpacks into
`.cache/pgbouncer`, run on 127.0.0.1 in transaction pooling mode in front of the test
session's PostgreSQL."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from sqlalchemy.engine import URL

from crier.kit.db import DatabaseUrls
from crier.kit.db.engine import APP_ROLE, SCHEDULER_ROLE
from tests.servers import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = ROOT / ".cache" / "pgbouncer" / "root"
START_SECONDS = 15.0


def _binary() -> Path:
    binary = INSTALLED / "usr" / "sbin" / "pgbouncer"
    if not binary.is_file():
        raise RuntimeError(f"PgBouncer is not unpacked in {INSTALLED}: run `make pgbouncer`")
    return binary


def _libraries() -> str:
    """The unpacked packages' shared libraries (libevent, c-ares), ahead of the system's."""
    found = [str(path) for path in (INSTALLED / "usr" / "lib").glob("*-linux-gnu")]
    return os.pathsep.join([*found, os.environ.get("LD_LIBRARY_PATH", "")])


@contextmanager
def pgbouncer(server: URL, users: list[str], data_dir: Path, pool_size: int = 20) -> Iterator[URL]:
    """PgBouncer in transaction pooling mode in front of the server `server` reaches (its
    host or Unix socket directory and port), letting `users` in without a password as the
    test server does. Yields the URL of the same login and database through PgBouncer."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    host = server.query.get("host") or server.host or "127.0.0.1"
    socket_dir = host if isinstance(host, str) else host[0]
    backend = f"host={socket_dir} port={server.port or 5432}"
    users_file = data_dir / "users.txt"
    users_file.write_text("".join(f'"{user}" ""\n' for user in users))
    config = data_dir / "pgbouncer.ini"
    config.write_text(
        "\n".join(
            [
                "[databases]",
                f"* = {backend}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {users_file}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "max_client_conn = 2000",
                "server_reset_query =",
                f"logfile = {data_dir / 'pgbouncer.log'}",
                f"pidfile = {data_dir / 'pgbouncer.pid'}",
                "",
            ]
        )
    )
    process = subprocess.Popen(  # noqa: S603 - Debian's PgBouncer, with a config of ours
        [str(_binary()), "-q", *_not_as_root(Path(socket_dir), data_dir), str(config)],
        env={**os.environ, "LD_LIBRARY_PATH": _libraries()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_listening(process, port, data_dir / "pgbouncer.log")
        yield server.set(host="127.0.0.1", port=port, query={})
    finally:
        stop_process(process)


def _not_as_root(socket_dir: Path, data_dir: Path) -> list[str]:
    """PgBouncer refuses to run as root: as root, run it as the user whose server it fronts
    (who may reach its socket), owning its own folder."""
    if os.geteuid() != 0:
        return []
    owner = socket_dir.stat().st_uid if socket_dir.is_dir() else 0
    user = pwd.getpwuid(owner).pw_name if owner != 0 else "nobody"
    for path in [data_dir, *data_dir.iterdir()]:
        shutil.chown(path, user)
    return ["-u", user]


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"PgBouncer exited: {log.read_text()[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # waiting for a process to listen, not timing a test
    raise RuntimeError(f"PgBouncer did not listen in {START_SECONDS:.0f}s: {log}")


@contextmanager
def through_pgbouncer(
    urls: DatabaseUrls, data_dir: Path, pool_size: int = 20
) -> Iterator[DatabaseUrls]:
    """`urls` with the application's and the scheduler's logins through PgBouncer."""
    # Through a transaction pooler each login is the role it acts as (the embedded server's
    # are).
    assert urls.app.username == APP_ROLE
    assert urls.login_for(SCHEDULER_ROLE).username == SCHEDULER_ROLE
    with pgbouncer(urls.app, [APP_ROLE, SCHEDULER_ROLE], data_dir, pool_size) as pooled:
        yield replace(
            urls,
            app=pooled,
            scheduler=pooled.set(username=SCHEDULER_ROLE),
            direct=urls.app,
            pooled=True,
        )
