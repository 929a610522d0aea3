"""Answers that do not come from Fyno's API as documented: a gateway in front of it, and a
hostile server whose answers are malformed.

A client must treat each as a setup error or an unreadable answer, never as data: these are
the answers that prove it does. Each function only builds a `Reply`; `SandboxApp` decides
which request meets which.
"""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import quote

from .replies import TEXT_CONTENT, Reply, cannot, html_reply, path_only

REDIRECT_TO = "https://sso.example.invalid/login"
"""Where the `redirect` gateway sends clients: `.invalid` never resolves (RFC 6761)."""
NUMBER_TOKEN = 1234567890
NUMBER_EMAIL = 9876543210

SIGN_IN_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Sign in to continue</title></head>
<body>
<h1>Sign in to continue</h1>
<p>This network requires you to sign in before you can reach the internet.</p>
<form method="post" action="/login"><input name="user"><input name="password" type="password">
<button>Sign in</button></form>
</body>
</html>
"""

MAINTENANCE_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>We'll be back soon</title></head>
<body><h1>We'll be back soon</h1><p>Scheduled maintenance is in progress.</p></body>
</html>
"""


def gateway_reply(kind: str, method: str, raw_path: str) -> Reply:
    """What a gateway of this `Faults.gateway` kind answers instead of the API."""
    if kind == "403":
        # an API gateway or an IP allow-list: AWS API Gateway's exact body
        return Reply(403, {"message": "Forbidden"}, (("x-amzn-ErrorType", "ForbiddenException"),))
    if kind == "404":
        return cannot(method, raw_path)
    if kind == "html":
        return html_reply(200, SIGN_IN_PAGE)
    if kind == "redirect":
        location = f"{REDIRECT_TO}?next={quote(path_only(raw_path), safe='')}"
        page = f'<p>Found. Redirecting to <a href="{location}">{location}</a></p>'
        return html_reply(302, page, (("Location", location),))
    raise ValueError(f"no gateway answers as {kind!r}")


def malformed_reply(kind: str, reply: Reply, trickle_seconds: float) -> Reply:
    """`reply` made malformed as `Faults.malformed` says; a shape needs a profile body."""
    match kind:
        case "html":
            return html_reply(200, MAINTENANCE_PAGE)
        case "text":
            return Reply(200, b"OK", content_type=TEXT_CONTENT)
        case "undecodable":
            # the right answer gzipped but sent without Content-Encoding, as a misconfigured
            # proxy does: 0x1f 0x8b... is neither UTF-8 nor JSON
            data = gzip.compress(reply.payload, mtime=0)
            return Reply(200, data, reply.headers)
        case "trickle":
            return Reply(reply.status, reply.body, reply.headers,
                         content_type=reply.content_type, trickle=trickle_seconds)
    if not isinstance(reply.body, dict):
        raise ValueError(f"malformed={kind} needs a profile body")
    return Reply(reply.status, misshape(kind, reply.body), reply.headers)


def misshape(kind: str, profile: dict[str, Any]) -> dict[str, Any]:
    """A copy of a GET profile body in the broken shape `kind`, whatever the profile holds.

    A profile without push or email still comes out broken: the bad entry is added.
    """
    body = dict(profile)
    channel: dict[str, Any] = dict(body.get("channel") or {})
    match kind:
        case "no-channel":
            body.pop("channel", None)
            return body
        case "channel-string":
            # encoded twice, as a server storing JSON in a text column would send it
            body["channel"] = json.dumps(channel)
            return body
        case "channel-null":
            body["channel"] = None
            return body
        case "channel-list":
            body["channel"] = [channel]
            return body
        case "token-number":
            channel["push"] = _break_first_token(channel, {"token": NUMBER_TOKEN})
        case "token-missing":
            channel["push"] = _break_first_token(channel, {})
        case "email-number":
            channel["email"] = NUMBER_EMAIL
        case _:
            raise ValueError(f"no malformed shape {kind!r}")
    body["channel"] = channel
    return body


def _break_first_token(channel: dict[str, Any], token: dict[str, Any]) -> list[Any]:
    """The push list with the `token` of its first entry replaced by `token`'s (or by none);
    a list of that one broken entry if there was no push token."""
    tokens = list(channel.get("push") or [])
    first = dict(tokens[0]) if tokens else {"status": 1}
    first.pop("token", None)
    return [{**token, **first}, *tokens[1:]]
