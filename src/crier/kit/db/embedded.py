"""The embedded PostgreSQL server (the `pgserver` package): Crier's default database.

The server keeps its data in `<data_dir>/pgdata`, listens only on a Unix socket inside that
folder, and is shared by every Crier process started on the same folder: the last one to
exit stops it. On first start it gets two roles and a database:

- `crier`, which owns the database and the schema and runs the migrations;
- `crier_app`, the application's login: no ownership, no BYPASSRLS;
- `crier_scheduler`, the scheduler's login: sees only which posts are due, across workspaces.

"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

from crier.kit.db.engine import APP_ROLE, SCHEDULER_ROLE, DatabaseUrls

OWNER_ROLE = "crier"
DATABASE_NAME = "crier"

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server living in a folder of ours."""

    def __init__(self, data_dir: Path, *, delete_on_exit: bool = False) -> None:
        self.pgdata = data_dir / "pgdata"
        self._cleanup_mode = "delete" if delete_on_exit else "stop"
        self._server: Any = None

    def start(self) -> DatabaseUrls:
        """Start the server (or join the one already running) and return its URLs."""
        with warnings.catch_warnings():
            # platformdirs warns about a missing XDG_RUNTIME_DIR on servers; harmless here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.pgdata, cleanup_mode=self._cleanup_mode)
        superuser = make_url(self._server.get_uri())
        self._bootstrap(superuser)
        socket_dir = superuser.query["host"]
        return DatabaseUrls(
            owner=_socket_url(OWNER_ROLE, socket_dir),
            app=_socket_url(APP_ROLE, socket_dir),
            scheduler=_socket_url(SCHEDULER_ROLE, socket_dir),
        )

    def superuser_url(self) -> URL:
        """The server's superuser URL: for creating test databases, never for the app."""
        if self._server is None:
            raise RuntimeError("the embedded server is not started")
        return _socket_url(
            "postgres", make_url(self._server.get_uri()).query["host"], database="postgres"
        )

    @staticmethod
    def binary(name: str) -> Path:
        """A program of the bundled PostgreSQL (`psql`, `pg_dump` ...)."""
        from pgserver._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH) / name

    def stop(self) -> None:
        """Release this process's hold; the server stops when no Crier process holds it.

        A process killed outright (SIGKILL, a crash) never released its hold: its pid stays
        in the server's list of holders, which would keep the server running for good. Holders
        that are no longer alive are dropped first, so the last live process stops it."""
        if self._server is not None:
            self._forget_dead_holders()
            self._server._cleanup()
            self._server = None

    def _forget_dead_holders(self) -> None:
        holders = self._server.global_process_id_list
        with self._server._lock:
            alive = [pid for pid in holders.get() if pid == os.getpid() or _is_alive(pid)]
            if alive != holders.get():
                log.info("the embedded database's holders no longer running are dropped")
                holders.put(alive)

    def _bootstrap(self, superuser: URL) -> None:
        conninfo = superuser.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            roles = {
                r
                for (r,) in conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                    [[OWNER_ROLE, APP_ROLE, SCHEDULER_ROLE]],
                )
            }
            if OWNER_ROLE not in roles:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(OWNER_ROLE))
                )
            # Each process logs in as the role it acts as: the API as crier_app, the
            # scheduler as crier_scheduler. Neither may take the other's role.
            for role in (APP_ROLE, SCHEDULER_ROLE):
                if role not in roles:
                    conn.execute(
                        sql.SQL(
                            "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                        ).format(sql.Identifier(role))
                    )

            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if exists is None:
                log.info("creating the embedded database")
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(DATABASE_NAME), sql.Identifier(OWNER_ROLE)
                    )
                )


def _is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _socket_url(user: str, socket_dir: str | tuple[str, ...], database: str = DATABASE_NAME) -> URL:
    host = socket_dir if isinstance(socket_dir, str) else socket_dir[0]
    return URL.create("postgresql+psycopg", username=user, database=database, query={"host": host})
