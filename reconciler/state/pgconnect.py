"""Connections to the PostgreSQL backend: one per thread, the URL never shown with a secret.

psycopg (3, binary package) is used only by the backend's modules. A connection is opened
per thread (apply's workers each finish calls in transactions of their own) and kept for the
life of the process. The password comes from libpq's environment (PGPASSWORD) or ~/.pgpass:
a URL carrying one is refused, since a URL ends up on command lines, in CI logs and in
messages.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

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
