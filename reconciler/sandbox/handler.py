"""The HTTP side of the sandbox: read a request, hand it to `SandboxApp`, write or drop the answer.

Every answer has a Content-Length and is written in one piece (a buffered writer flushed once
per request) with Nagle's algorithm off, so that keep-alive clients never wait on a delayed ACK
between the headers and the body; only a `trickle` answer is written byte by byte on purpose.
A connection can also be dropped after the write (a lost answer: FIN) or reset before the
request is read (RST).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from .app import SandboxApp
from .replies import Reply, Request, envelope

MAX_BODY = 16 * 1024 * 1024
IDLE_TIMEOUT = 120.0
"""Seconds a keep-alive connection may sit idle before its thread gives it up."""


class _BadFraming(Exception):
    """A body whose length cannot be read: the connection cannot be reused after it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SandboxHTTPServer(ThreadingHTTPServer):
    """A thread per connection, all daemons; remembers open connections so stop can end them."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # the default of 5 drops SYNs when dozens of clients connect at once
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.resetting: set[socket.socket] = set()
        """Connections to close with an RST rather than the usual FIN."""
        super().__init__(address, SandboxHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a DNS lookup that can stall start-up
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a peer that resets or drops its connection is routine here (timeouts, lost answers,
        # stop()); anything else is a sandbox bug and keeps the standard traceback
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            resetting = request in self.resetting
            self.resetting.discard(request)
        if resetting:
            # no shutdown(SHUT_WR) first: with SO_LINGER 0, close alone sends the RST
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection, so that idle keep-alive threads end at once."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SandboxHandler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 keep-alive, JSON in and out."""

    protocol_version = "HTTP/1.1"
    server_version = "FynoSandbox/0.1"
    sys_version = ""
    disable_nagle_algorithm = True
    wbufsize = -1
    timeout = IDLE_TIMEOUT

    @property
    def _server(self) -> SandboxHTTPServer:
        return cast(SandboxHTTPServer, self.server)

    def setup(self) -> None:
        super().setup()
        with self._server.connections_lock:
            self._server.connections.add(self.connection)

    def finish(self) -> None:
        with self._server.connections_lock:
            self._server.connections.discard(self.connection)
        # the peer may have gone away, or the answer was dropped on purpose
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # silent: the sandbox's own log is GET /_sandbox/log, and stderr noise hides test output
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if self._server.app.reset_before_reading(self.command, self.path):
            self._reset()
            return
        try:
            body = self._read_body()
        except _BadFraming as problem:
            self.close_connection = True
            self._send(envelope(problem.status, str(problem)))
            return
        request = Request(
            method=self.command,
            raw_path=self.path,
            authorization=self.headers.get("Authorization"),
            content_type=self.headers.get("Content-Type"),
            body=body,
        )
        try:
            reply = self._server.app.handle(request)
        except Exception as problem:  # a sandbox bug must still answer
            reply = envelope(500, f"sandbox error: {type(problem).__name__}")
        if reply.lost:
            self._drop()
        else:
            self._send(reply)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            raise _BadFraming(400, "invalid Content-Length") from None
        if length < 0:
            raise _BadFraming(400, "invalid Content-Length")
        if length > MAX_BODY:
            raise _BadFraming(413, "request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadFraming(400, "invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise _BadFraming(413, "request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, reply: Reply) -> None:
        data = reply.payload
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.trickle is None:
            self.wfile.write(data)
            self.wfile.flush()
            return
        self.wfile.flush()  # the headers at once, whole and right; then the body, slowly
        for index in range(len(data)):
            time.sleep(reply.trickle)
            self.wfile.write(data[index:index + 1])
            self.wfile.flush()

    def _reset(self) -> None:
        """Close the connection with an RST, its request unread, as a reset looks to a client."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with self._server.connections_lock:
                self._server.resetting.add(self.connection)

    def _drop(self) -> None:
        """Close the connection without a byte of answer, as a lost response looks to a client."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
