"""The throwaway PostgreSQL server of the tests (tests/pgserver.py, fixtures in conftest.py):
it answers, each test's database is its own and empty, and only 127.0.0.1 reaches it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from pgserver import PostgresServer

USER_RELATIONS = """
    SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_%'
"""


def test_connects_and_answers(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://reconciler@127.0.0.1:")
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        row = connection.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("reconciler", postgres_url.rsplit("/", 1)[1])


def test_each_database_is_new_and_empty(postgres_url: str,
                                        postgres_databases: Callable[[], str]) -> None:
    other = postgres_databases()
    assert other != postgres_url
    for url in (postgres_url, other):
        with psycopg.connect(url) as connection:
            assert connection.execute(USER_RELATIONS).fetchone() == (0,)
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE TABLE written (n integer)")
        connection.execute("INSERT INTO written VALUES (1)")
    with psycopg.connect(other) as connection:
        assert connection.execute(USER_RELATIONS).fetchone() == (0,)
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT n FROM written").fetchall() == [(1,)]


def test_listens_on_127_0_0_1_only(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url) as connection:
        listen = connection.execute("SHOW listen_addresses").fetchone()
        fsync = connection.execute("SHOW fsync").fetchone()
    assert listen == ("127.0.0.1",)
    assert fsync == ("off",)
    # 127.0.0.2 is loopback too, but not the address the server is bound to.
    with pytest.raises(ConnectionRefusedError), \
            socket.create_connection(("127.0.0.2", postgres_server.port), timeout=5):
        pass
    with socket.create_connection(("127.0.0.1", postgres_server.port), timeout=5):
        pass


def test_closed_server_leaves_nothing(postgres_server: PostgresServer) -> None:
    """A second server, closed: its directory and its processes are gone."""
    server = PostgresServer(postgres_server.binaries)
    assert server.port != postgres_server.port
    pid = int((server.data / "postmaster.pid").read_text().split("\n", 1)[0])
    server.close()
    server.close()  # twice is harmless
    assert not server.directory.exists()
    assert _gone(pid)


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts), within 5 s."""
    for _ in range(100):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False
