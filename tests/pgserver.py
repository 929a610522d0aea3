"""A throwaway PostgreSQL server for the tests: the installed binaries, a temporary directory,
a free port on 127.0.0.1, gone again on close.

    binaries = find_binaries()          # None: PostgreSQL is not installed (INSTALL_HINT says how)
    with PostgresServer(binaries) as server:
        url = server.create_database("test_abc")   # postgresql://reconciler@127.0.0.1:PORT/test_abc

The binaries are looked for on PATH first, then where Debian puts them
(/usr/lib/postgresql/<highest version>/bin). `initdb` makes a cluster whose superuser is
`reconciler`, trusted from the unix socket (in the temporary directory) and 127.0.0.1 only;
`pg_ctl -w` starts it listening on 127.0.0.1 alone, with fsync off. PostgreSQL refuses to run
as root, so as root every command runs as the `postgres` system user (`runuser -u postgres`)
and the directory belongs to it.

A server is stopped (`pg_ctl -m immediate stop`) and its directory removed by `close()`, by an
atexit hook, and, should the test process be killed outright, by a small watchdog process that
waits for the test process's end (EOF on a pipe only the test process holds).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

INSTALL_HINT = ("PostgreSQL is not installed: `apt-get install postgresql` (or put initdb and "
                "pg_ctl on PATH) to run the PostgreSQL backend tests")
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "reconciler"
SYSTEM_USER = "postgres"  # who runs the server when the tests run as root
START_TIMEOUT = 30  # seconds
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PORT_TAKEN = ("could not bind", "Address already in use", "could not create any TCP/IP")


class PostgresError(RuntimeError):
    """The throwaway server could not be set up, started or used."""


@dataclass(frozen=True)
class Binaries:
    initdb: Path
    pg_ctl: Path
    postgres: Path


def find_binaries() -> Binaries | None:
    """initdb, pg_ctl and postgres of one installation: PATH first, then
    /usr/lib/postgresql/<highest version>/bin; None when PostgreSQL is not installed."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        # One installation: the directory initdb really lives in (Debian's /usr/local/bin or a
        # distribution's /usr/bin may hold symlinks), else its neighbours on PATH.
        found = _in_directory(Path(initdb).resolve().parent)
        if found is not None:
            return found
        pg_ctl, postgres = shutil.which("pg_ctl"), shutil.which("postgres")
        if pg_ctl is not None and postgres is not None:
            return Binaries(Path(initdb), Path(pg_ctl), Path(postgres))
    if DEBIAN_ROOT.is_dir():
        versions = sorted((p for p in DEBIAN_ROOT.iterdir() if _version_key(p.name)),
                          key=lambda p: _version_key(p.name), reverse=True)
        for version in versions:
            found = _in_directory(version / "bin")
            if found is not None:
                return found
    return None


def _in_directory(directory: Path) -> Binaries | None:
    paths = [directory / name for name in ("initdb", "pg_ctl", "postgres")]
    if all(path.is_file() and os.access(path, os.X_OK) for path in paths):
        return Binaries(*paths)
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".")) if re.fullmatch(r"\d+(\.\d+)*", name) \
        else ()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL server in a temporary directory, started at construction; `close()`
    stops it and removes the directory (also on exit of the process, however it ends)."""

    def __init__(self, binaries: Binaries, *, superuser: str = SUPERUSER,
                 timeout: float = START_TIMEOUT, durable: bool = False) -> None:
        self.binaries = binaries
        self.durable = durable  # fsync as a production server does (benchmarks); off for tests
        self.superuser = superuser
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port = 0
        self._closed = False
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._watchdog_pipe: int | None = None
        self._runas = self._system_user() if os.geteuid() == 0 else None
        self.directory = Path(tempfile.mkdtemp(prefix="reconciler-pg-", dir=self._base()))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        atexit.register(self.close)
        try:
            if self._runas is not None:
                os.chown(self.directory, self._runas.pw_uid, self._runas.pw_gid)
            self._start_watchdog()
            started = time.monotonic()
            self._initdb()
            self._start()
            self.start_seconds = time.monotonic() - started
        except BaseException:
            self.close()
            raise

    # -- what tests use ------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The `postgres` maintenance database (use create_database for a test's own)."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self._execute("CREATE DATABASE {}", name)
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drops the database, closing whatever connections are still open to it."""
        self._execute("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)

    def close(self) -> None:
        """Stop the server at once and remove its directory; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self._stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self._end_watchdog()

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresServer({self.host}:{self.port}, {self.directory})"

    # -- setting up ----------------------------------------------------------------------

    @staticmethod
    def _system_user() -> pwd.struct_passwd:
        if shutil.which("runuser") is None:
            raise PostgresError("running as root, but `runuser` (util-linux) is not installed "
                                "to run PostgreSQL as another user (it refuses to run as root)")
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise PostgresError(
                f"running as root, but there is no `{SYSTEM_USER}` user to run PostgreSQL "
                f"as (it refuses to run as root): create one (`useradd --system "
                f"{SYSTEM_USER}`; Debian's postgresql package does) or run the tests as a "
                f"non-root user") from None

    def _base(self) -> str:
        """A temporary directory whose every parent the server's user can traverse, with
        room for the unix socket's path (at most 107 bytes)."""
        candidates = [tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"]
        for candidate in candidates:
            if len(candidate) > 60 or not os.path.isdir(candidate):
                continue
            if self._runas is None or _traversable_by_others(Path(candidate)):
                return candidate
        raise PostgresError(f"no temporary directory that the `{SYSTEM_USER}` user can reach "
                            f"(tried {', '.join(candidates)})")

    def _command(self, *args: str | Path) -> list[str]:
        command = [str(arg) for arg in args]
        if self._runas is not None:
            return ["runuser", "-u", self._runas.pw_name, "--", *command]
        return command

    def _run(self, *args: str | Path, timeout: float) -> subprocess.CompletedProcess[str]:
        """Run a command (as the server's user), killing it and its children on timeout."""
        with subprocess.Popen(self._command(*args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, cwd=self.directory,
                              env=_clean_env(), stdin=subprocess.DEVNULL,
                              start_new_session=True) as process:
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise
            return subprocess.CompletedProcess(process.args, process.returncode, output, "")

    def _initdb(self) -> None:
        result = self._run(self.binaries.initdb, "-D", self.data, "-U", self.superuser,
                           "--auth=trust", "--no-locale", "--encoding=UTF8", "--no-sync",
                           "--no-instructions", timeout=120)
        if result.returncode != 0:
            raise PostgresError(f"initdb failed ({result.returncode}):\n"
                                f"{_tail(result.stdout)}")
        # Trust from the socket and 127.0.0.1 only; nothing else may connect.
        (self.data / "pg_hba.conf").write_text(
            "# reconciler's throwaway test server\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# reconciler's throwaway test server\n"
                       "listen_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.directory}'\n"
                       "max_connections = 200\n")
            if not self.durable:
                conf.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")

    def _start(self) -> None:
        for _attempt in range(5):  # another process may take the free port before we bind it
            self.port = free_port()
            started = time.monotonic()
            try:
                wait = str(max(1, round(self.timeout)))
                result = self._run(self.binaries.pg_ctl, "start", "-w", "-t", wait,
                                   "-D", self.data, "-l", self.log, "-o", f"-p {self.port}",
                                   timeout=self.timeout + 15)
                failure = None if result.returncode == 0 else result.stdout
            except subprocess.TimeoutExpired:
                failure = "pg_ctl did not return"
            if failure is None:
                return
            log = self._log_tail()
            self._stop()
            if any(sign in log for sign in _PORT_TAKEN):
                self.log.unlink(missing_ok=True)
                continue
            seconds = time.monotonic() - started
            raise PostgresError(
                f"PostgreSQL did not start on {self.host}:{self.port} (gave up after "
                f"{seconds:.1f} s; the limit is {self.timeout:.0f} s): {failure.strip()}\n"
                f"--- {self.log} (last lines) ---\n{log}")
        raise PostgresError(f"PostgreSQL found no free port in 5 tries:\n{self._log_tail()}")

    def _stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._run(self.binaries.pg_ctl, "stop", "-m", "immediate", "-w", "-D", self.data,
                      timeout=30)
        _kill_postmaster(self.data)

    def _log_tail(self) -> str:
        try:
            return _tail(self.log.read_text(errors="replace"))
        except OSError:
            return "(no server log)"

    def _execute(self, statement: str, name: str) -> None:
        import psycopg
        from psycopg import sql

        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as connection:
            connection.execute(sql.SQL(statement).format(sql.Identifier(name)))

    # -- the watchdog: cleans up when this process dies without running close() ----------

    def _start_watchdog(self) -> None:
        reader, writer = os.pipe()  # both ends non-inheritable; the reader becomes its stdin
        stop = self._command(self.binaries.pg_ctl, "stop", "-m", "immediate", "-w", "-D",
                             self.data)
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--watchdog",
                 json.dumps({"directory": str(self.directory), "stop": stop})],
                stdin=reader, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=_clean_env(), start_new_session=True)  # Ctrl-C does not reach it
        finally:
            os.close(reader)
        self._watchdog_pipe = writer

    def _end_watchdog(self) -> None:
        if self._watchdog_pipe is not None:
            os.close(self._watchdog_pipe)
            self._watchdog_pipe = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None


def _traversable_by_others(path: Path) -> bool:
    return all(os.stat(directory).st_mode & stat.S_IXOTH for directory in [path, *path.parents])


def _clean_env() -> dict[str, str]:
    """The environment without libpq's PG* variables (PGDATA, PGPORT, ...), in the C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "LC_ALL"}
    env["LC_ALL"] = "C"
    return env


def _kill_postmaster(data: Path) -> None:
    """SIGKILL the postmaster if pg_ctl left it running (its children exit with it)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return  # gone, and its number taken by another process
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty)"


def _watchdog(arguments: str) -> None:
    """Wait for EOF on stdin (the test process closed the pipe, or died), then stop the
    server and remove its directory if they are still there."""
    job = json.loads(arguments)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    directory = Path(job["directory"])
    if not directory.exists():
        return
    if (directory / "data" / "postmaster.pid").exists():
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(job["stop"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd="/", timeout=30, check=False)
        _kill_postmaster(directory / "data")
    shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    _watchdog(sys.argv[2])
