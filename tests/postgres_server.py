"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temp dir.

Tests of ``--storage postgresql://…`` need a real server (SQLite or a mock would not show
that several processes can share one study over TCP with password authentication), but no
test may depend on a server that happens to be running on the machine. So each session
creates its own cluster in a temp dir, listens on a free port of 127.0.0.1 only, requires
a password (scram-sha-256) for every connection, and removes it all afterwards.

``initdb`` and ``postgres`` refuse to run as root, and CI runs as root: then the server runs
as an unprivileged system user (``postgres`` when the Debian package created it, else
``nobody``), via ``subprocess``'s ``user=``/``group=`` so that no ``sudo``/``runuser`` is
needed, and the temp dir is made theirs.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USER = "search"
PASSWORD = "s3cr3t-pw-7f1c"  # distinctive, so tests can grep output for it
DATABASE = "searchdb"
HOST = "127.0.0.1"

INSTALL_SERVER = ("install PostgreSQL's server binaries: `apt-get install postgresql` "
                  "(Debian/Ubuntu; initdb and pg_ctl land in /usr/lib/postgresql/*/bin)")
INSTALL_DRIVER = ("install the PostgreSQL driver: "
                  "`pip install 'search-ensembles[postgres]'` (psycopg2-binary)")


class Unavailable(RuntimeError):
    """PostgreSQL cannot be run here because something is not installed (tests skip)."""


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, else Debian's
    versioned ``/usr/lib/postgresql/N/bin`` (the package does not put them on PATH)."""
    initdb = shutil.which("initdb")
    if initdb:
        d = Path(initdb).resolve().parent
        if (d / "pg_ctl").exists():
            return d
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if (Path(p).parent / "pg_ctl").exists()]

    def version(d: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in d.parent.name.split(".") if x.isdigit())

    return max(found, key=version) if found else None


def check_available() -> Path:
    """The bin dir, or :class:`Unavailable` saying exactly what to install."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise Unavailable(f"initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin: "
                          f"{INSTALL_SERVER}")
    try:
        import psycopg2  # noqa: F401
    except ImportError as exc:
        raise Unavailable(f"psycopg2 cannot be imported ({exc}): {INSTALL_DRIVER}") from None
    return bin_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or None when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise Unavailable("running as root and neither a `postgres` nor a `nobody` user exists "
                      "to run initdb as: create one (`useradd --system postgres`)")


@dataclass
class PostgresServer:
    """A running cluster; :meth:`stop` always ends it and removes its files."""

    bin_dir: Path
    root: Path
    port: int
    account: pwd.struct_passwd | None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = DATABASE, password: str = PASSWORD,
            driver: str = "psycopg2") -> str:
        """The SQLAlchemy URL of ``database`` (what ``--storage`` takes)."""
        return f"postgresql+{driver}://{USER}:{password}@{HOST}:{self.port}/{database}"

    def _run(self, *args: str | Path, check: bool = True,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        if self.account is not None:
            kwargs = {"user": self.account.pw_uid, "group": self.account.pw_gid,
                      "extra_groups": []}
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        env.pop("PGPASSWORD", None)
        proc = subprocess.run([str(a) for a in args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=timeout, **kwargs)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{Path(str(args[0])).name} failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}{self.log_tail()}")
        return proc

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return "\n--- server.log ---\n" + "\n".join(lines)

    def init(self) -> None:
        """``initdb`` with superuser :data:`USER` and password auth for every connection."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        self._chown(pwfile)
        try:
            self._run(self.bin_dir / "initdb", "-D", self.data_dir, "-U", USER,
                      f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                      "--locale=C", "--no-sync")
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self) -> None:
        """Start on :attr:`port`, TCP on 127.0.0.1 only, socket in the temp dir; wait."""
        opts = (f"-p {self.port} -c listen_addresses={HOST} -k {self.root} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=50 -c shared_buffers=16MB")
        self._run(self.bin_dir / "pg_ctl", "-D", self.data_dir, "-l", self.log_file,
                  "-o", opts, "-w", "-t", "30", "start")
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20) -> None:
        """Connect with the password until it works (``pg_ctl -w`` only pings)."""
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(host=HOST, port=self.port, user=USER, password=PASSWORD,
                                 dbname="postgres", connect_timeout=3).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self, name: str = DATABASE) -> None:
        import psycopg2

        conn = psycopg2.connect(host=HOST, port=self.port, user=USER, password=PASSWORD,
                                dbname="postgres", connect_timeout=5)
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the server (fast, then by signal to its own postmaster) and delete files."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                proc = self._run(self.bin_dir / "pg_ctl", "-D", self.data_dir, "-m",
                                 "immediate", "-w", "-t", "15", "stop",
                                 check=False, timeout=30)
                if proc.returncode != 0:
                    self._kill_postmaster()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """Last resort: SIGKILL the postmaster this helper started (pid from its own file)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)

    def _chown(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)


@contextlib.contextmanager
def postgres_server(attempts: int = 3) -> Iterator[PostgresServer]:
    """A started server with database :data:`DATABASE`; stopped and removed on exit.

    Raises :class:`Unavailable` if PostgreSQL or psycopg2 is not installed. A free port
    can be taken by someone else between choosing it and binding it, so start is retried
    on a new port.
    """
    bin_dir = check_available()
    account = _server_account()
    last: Exception | None = None
    for _ in range(attempts):
        # Not under pytest's basetemp: that is mode 0700 and owned by root, so the server's
        # user could not reach it. /tmp is world-traversable; the dir itself becomes theirs.
        root = Path(tempfile.mkdtemp(prefix="search-pg-"))
        server = PostgresServer(bin_dir, root, _free_port(), account)
        try:
            server._chown(root)
            server.init()
            try:
                server.start()
            except RuntimeError as exc:
                last = exc
                server.stop()
                continue
            server.create_database()
        except BaseException:
            server.stop()
            raise
        try:
            yield server
        finally:
            server.stop()
        return
    raise RuntimeError(f"PostgreSQL did not start in {attempts} attempts: {last}")
