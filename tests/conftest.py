"""Shared test configuration: the hypothesis profiles, the `sandboxes` fixture, and the
PostgreSQL fixtures.

    default   hypothesis's usual 100 examples per property, no deadline (a shared CI
              runner's timings vary too much for one); tests that set max_examples keep it
    fuzz      5,000 examples per property, for a long run on demand:
                  HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_fuzz_*.py

The fuzz tests (tests/test_fuzz_*.py) take their number of examples from the profile; the
environment variable HYPOTHESIS_PROFILE selects it.

PostgreSQL: `postgres_server` is a throwaway server (tests/pgserver.py) started from the
installed binaries, one per test process (each xdist worker has its own); without PostgreSQL
the tests that use it are skipped, with one line saying how to install it. `postgres_url` is a
new, empty database on it for one test, `postgres_databases` makes more (each call, another).

`store`: the backend the test's CLI processes keep state, lock and ledger in (tests/stores.py).
A test that uses it (the end-to-end modules say `pytestmark = pytest.mark.usefixtures("store")`)
runs twice, `[file]` and `[postgresql]`, one body for both; one marked
`@pytest.mark.file_only("why")` (a test about the files as such) runs on files alone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest
import stores
from hypothesis import settings
from pgserver import INSTALL_HINT, PostgresServer, find_binaries
from sandboxproc import SandboxProcess

settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile("fuzz", max_examples=5_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

STORES = ("file", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "file_only(reason): a test of the file backend's files as such: the `store` "
                   "fixture runs it on files alone")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses `store` runs on each backend, but a `file_only` one on files."""
    if "store" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("file_only")
    if marker is not None and not (marker.args and isinstance(marker.args[0], str)):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: file_only needs its reason")
    metafunc.parametrize("store", ["file"] if marker else STORES, indirect=True)


@pytest.fixture
def store(request: pytest.FixtureRequest,
          monkeypatch: pytest.MonkeyPatch) -> stores.Store:
    """The backend of this run of the test (`stores.ACTIVE` meanwhile): files, or, for
    `postgresql`, a new database on the throwaway server per working directory."""
    chosen: stores.Store = stores.FileStore()
    if request.param == "postgresql":
        chosen = stores.PostgresStore(request.getfixturevalue("postgres_databases"))
    monkeypatch.setattr(stores, "ACTIVE", chosen)
    return chosen


@pytest.fixture
def sandboxes() -> Iterator[list[SandboxProcess]]:
    """Sandbox processes a test starts (append each); all stopped when the test ends."""
    started: list[SandboxProcess] = []
    yield started
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for this test process; stopped and removed at its end
    (close() here, else an atexit hook, else the server's watchdog if the process is killed)."""
    binaries = find_binaries()
    if binaries is None:
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(binaries)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_databases(postgres_server: PostgresServer) -> Iterator[Callable[[], str]]:
    """Call it for the URL of a new, empty database; all are dropped when the test ends."""
    names: list[str] = []

    def new_database() -> str:
        name = f"test_{secrets.token_hex(6)}"
        url = postgres_server.create_database(name)
        names.append(name)
        return url

    yield new_database
    for name in names:
        postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_databases: Callable[[], str]) -> str:
    """`postgresql://reconciler@127.0.0.1:PORT/test_<random>`: a new, empty database."""
    return postgres_databases()
