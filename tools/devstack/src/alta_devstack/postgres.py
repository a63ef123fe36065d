"""A throwaway PostgreSQL server from the binaries of the `pgserver` wheel, over TCP."""

import os
import signal
import stat
import subprocess
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from alta_devstack.servers import shutdown_requested

with warnings.catch_warnings():
    # pgserver's package __init__ resolves a runtime directory at import time, which warns
    # when XDG_RUNTIME_DIR is unset (CI, containers); we use only its binaries and helpers.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

# postgres refuses to run as root; pgserver's own server creates and uses this system user.
SYSTEM_USER = "pgserver"
SERVER_SETTINGS = {
    # Durability is worthless for dev and test data, and costs most of the write time.
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
}
START_TIMEOUT_S = 30.0


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.host = host
        self.log_path = self.data_dir / "server.log"
        self._user = SYSTEM_USER if os.geteuid() == 0 else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            self._grant_access(self._user)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run_initdb()
        command = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data_dir)]
        # `-k ''`: TCP only, so no socket file lands in a shared directory such as /tmp.
        command += ["-h", self.host, "-p", str(self.port), "-k", ""]
        command += [f"--{name}={value}" for name, value in SERVER_SETTINGS.items()]
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 (arguments built here, not user input)
            command, stdout=self._log, stderr=subprocess.STDOUT, user=self._user
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._process is not None:
            # SIGINT is the "fast" shutdown: roll back open transactions, disconnect clients.
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _grant_access(self, user: str) -> None:
        entry = ensure_user_exists(user)
        assert entry is not None
        # The unprivileged user must traverse to the binaries and own the data directory.
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _run_initdb(self) -> None:
        command = [str(POSTGRES_BIN_PATH / "initdb"), "-D", str(self.data_dir), "--auth=trust"]
        # --no-locale: the C collation whatever the host's LANG, so sorting is the same everywhere.
        command += ["-U", "postgres", "--encoding=utf8", "--no-locale"]
        result = subprocess.run(  # noqa: S603 (arguments built here, not user input)
            command, capture_output=True, text=True, user=self._user, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed in {self.data_dir}:\n{result.stdout}{result.stderr}")

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._process.poll() is None and time.monotonic() < deadline:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.1)
        state = "exited" if self._process.poll() is not None else "did not accept connections"
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"postgres on {self.host}:{self.port} {state}; log tail:\n{tail}")


def database_url(server_url: str, dbname: str) -> str:
    return urlsplit(server_url)._replace(path=f"/{dbname}").geturl()


def create_database(server_url: str, dbname: str, *, exist_ok: bool = False) -> str:
    """Create `dbname` on the server of `server_url` (any database there) and return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
        if not (exist_ok and exists):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return database_url(server_url, dbname)


def drop_databases(server_url: str, dbnames: list[str]) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        for dbname in dbnames:
            # FORCE: connections a test left open (a pool, a crashed client) must not block it.
            statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(statement.format(sql.Identifier(dbname)))


def main() -> None:
    shutdown = shutdown_requested()
    port = int(os.environ.get("DEVSTACK_PG_PORT", "54320"))
    with EmbeddedPostgres(Path(".data/postgres"), port) as server:
        url = create_database(server.url(), "alta", exist_ok=True)
        print(f"postgres ready: {url}", flush=True)
        shutdown.wait()


if __name__ == "__main__":
    main()
