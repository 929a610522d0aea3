"""Connections to the PostgreSQL backend: one per thread, the URL never shown with a secret.

psycopg (3, binary package) is used only by the backend's modules. A connection is opened
per thread (apply's workers each finish calls in transactions of their own) and kept for the
life of the process. The password comes from libpq's environment (PGPASSWORD) or ~/.pgpass:
a URL carrying one is refused, since a URL ends up on command lines, in CI logs and in
messages.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors

from reconciler.errors import StateError, UsageError

CONNECT_TIMEOUT_SECONDS = 10
APPLICATION_NAME = "reconciler"


def shown_url(url: str) -> str:
    """`url` without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_url(url: str) -> None:
    """Refuse a backend URL that is not PostgreSQL's or that carries a password."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise UsageError(f"the backend must be a postgresql:// URL, not {shown_url(url)!r}")
    if parts.password is not None:
        raise UsageError(f"the backend URL {shown_url(url)} carries a password: put it in "
                         "PGPASSWORD or ~/.pgpass instead, never in a URL or a command line")


F = TypeVar("F", bound=Callable[..., Any])


def database_errors(function: F) -> F:
    """Turn what the database refuses into a `StateError` naming the backend and the reason
    (a missing privilege says which grant is missing), never an internal error."""
    @functools.wraps(function)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(self, *args, **kwargs)
        except psycopg.Error as error:
            raise backend_error(self.connections.url, error) from None
    return cast(F, wrapper)


def backend_error(url: str, error: psycopg.Error) -> StateError:
    return StateError(f"the backend {shown_url(url)} refused: {refusal(error)}")


def refusal(error: psycopg.Error) -> str:
    """What the database said, in one line; a missing privilege says which are needed."""
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if isinstance(error, psycopg.errors.InsufficientPrivilege):
        reason += ("; the role needs SELECT, INSERT, UPDATE and DELETE on the reconciler_* "
                   "tables (and CREATE, once, for `reconciler backend migrate`)")
    return reason


class Connections:
    """The backend's connections: `get()` this thread's, `new()` one of its own (a lock)."""

    def __init__(self, url: str) -> None:
        check_url(url)
        self.url = url
        self._local = threading.local()

    def get(self) -> psycopg.Connection[Any]:
        connection: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = self.new(autocommit=True)
            self._local.connection = connection
        return connection

    def new(self, *, autocommit: bool) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=autocommit,
                                   connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                   application_name=APPLICATION_NAME)
        except psycopg.Error as error:
            # libpq's message names the host and the reason; never the password.
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise StateError(f"cannot connect to the backend {shown_url(self.url)}: "
                             f"{reason}") from None
