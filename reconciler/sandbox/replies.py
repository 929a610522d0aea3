"""A request as the sandbox sees it, and an answer as it will be sent, with the stock bodies.

An answer is Fyno's JSON (a `_message`/`status` envelope or a profile), or, when something else
answers on purpose (a gateway, a wrong base URL, a hostile server), exact bytes with their own
Content-Type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from typing import Any

JSON_TYPE = "application/json"
JSON_CONTENT = "application/json; charset=utf-8"
HTML_CONTENT = "text/html; charset=utf-8"
TEXT_CONTENT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """The parts of an HTTP request the sandbox looks at."""

    method: str
    raw_path: str
    authorization: str | None
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Reply:
    """An answer to send, or to drop by closing the connection when `lost`."""

    status: int
    body: Any
    """A JSON value, or the exact bytes to send."""
    headers: tuple[tuple[str, str], ...] = ()
    lost: bool = False
    content_type: str = JSON_CONTENT
    trickle: float | None = None
    """Seconds to wait before each byte of the body, to send it slowly on purpose."""

    @property
    def payload(self) -> bytes:
        """The body as sent: the bytes given, or the JSON value encoded."""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()


def envelope(status: int, message: str) -> Reply:
    """Fyno's `{"_message", "status"}` answer; status "ok" below 400, else "error"."""
    return Reply(status, {"_message": message, "status": "ok" if status < 400 else "error"})


def path_only(raw_path: str) -> str:
    return raw_path.partition("?")[0]


def html_reply(status: int, page: str, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, page.encode(), headers, content_type=HTML_CONTENT)


def cannot(method: str, raw_path: str) -> Reply:
    """Express's default 404, as any Node server answers a path it has no route for.

    It is what a wrong base URL (say, `/v1` left out) meets: HTML, nothing like Fyno's JSON.
    """
    page = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>Error</title>\n</head>\n<body>\n"
        f"<pre>Cannot {escape(method)} {escape(path_only(raw_path))}</pre>\n"
        "</body>\n</html>\n"
    )
    headers = (("X-Powered-By", "Express"), ("Content-Security-Policy", "default-src 'none'"),
               ("X-Content-Type-Options", "nosniff"))
    return html_reply(404, page, headers)
