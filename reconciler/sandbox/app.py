"""What the sandbox answers to a request, independent of how HTTP carried it.

The order of checks for an API request is fixed:
1. a connection reset (`reset_before_reading`, asked by the HTTP side before the body is read);
2. injected latency;
3. a gateway in front of the API, which answers before anything else is looked at;
4. a path outside `/v1/`: no Fyno route there, so Express's HTML 404 (a wrong base URL);
5. the API key (before anything else can be learnt);
6. injected rejections (rate limit, 429, 5xx: the request is not looked at);
7. the route and body, then the store;
8. a write's answer may then be lost, or any answer malformed (after a write was performed).
The `/_sandbox/` admin routes need no key and meet no fault.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any
from urllib.parse import unquote_to_bytes

from .channels import VERSIONS, BadRequest, parse_delete
from .faults import FaultInjector
from .hostile import gateway_reply, malformed_reply
from .log import LogEntry, RequestLog
from .replies import JSON_TYPE, Reply, Request, cannot, envelope, path_only
from .settings import SHAPE_MALFORMED, Faults, SandboxConfig, applies
from .store import Outcome, Store, error

__all__ = ["Reply", "Request", "SandboxApp", "envelope", "split_path"]

ADMIN_PREFIX = "/_sandbox/"
API_PREFIX = "/v1/"


def split_path(raw_path: str) -> list[str] | None:
    """The decoded segments of a raw path; None if a segment is not UTF-8.

    The raw path is split on "/" BEFORE decoding, so that `a%2Fb` stays one segment "a/b",
    and each segment is decoded exactly once, so that `%252F` is "%2F".
    """
    path = raw_path.partition("?")[0].partition("#")[0]
    try:
        return [unquote_to_bytes(segment).decode("utf-8") for segment in path.split("/")]
    except UnicodeDecodeError:
        return None


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise BadRequest("request body must be valid JSON") from None


def _logged_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class SandboxApp:
    """The whole sandbox behind HTTP: store, faults, log and the key it expects."""

    def __init__(self, config: SandboxConfig) -> None:
        self._expected = f"Bearer {config.api_key}".encode()
        try:
            self.store = Store(config.seed_data)
        except BadRequest as problem:
            raise ValueError(f"invalid seed data: {problem}") from None
        self.injector = FaultInjector(config.faults)
        self.log = RequestLog()

    def handle(self, request: Request) -> Reply:
        path = path_only(request.raw_path)
        if path.startswith(ADMIN_PREFIX):
            return self._admin(request.method, path, request.body)
        return self._api(request)

    def reset_before_reading(self, method: str, raw_path: str) -> bool:
        """Whether to reset this request's connection now, before its body is read.

        A reset request is logged as neither performed nor answered (status 0, lost).
        """
        if path_only(raw_path).startswith(ADMIN_PREFIX) or not self.injector.reset_connection():
            return False
        self.log.append(LogEntry(
            method=method, path=raw_path, distinct_id=_distinct_id(method, raw_path), body=None,
            status=0, performed=False, lost=True, time=time.monotonic(), fault="reset",
        ))
        return True

    # -- the Fyno API ----------------------------------------------------------------------

    def _api(self, request: Request) -> Reply:
        received = time.monotonic()
        faults = self.injector.faults
        if faults.latency_ms > 0:
            time.sleep(faults.latency_ms / 1000)
        # routed first only so that the log names the profile even of a refused request
        route = _route(request.method, split_path(request.raw_path))
        distinct_id = route[3] if route is not None else None
        performed = lost = False
        fault: str | None = None
        reply: Reply
        if faults.gateway != "none" and applies(faults.gateway_paths, request.method):
            reply = gateway_reply(faults.gateway, request.method, request.raw_path)
            fault = "gateway"
        elif not request.raw_path.startswith(API_PREFIX):
            reply = cannot(request.method, request.raw_path)
        elif not self._authorized(request.authorization):
            reply = envelope(401, "Invalid API details")
        elif (rejection := self.injector.reject()) is not None:
            headers = (("Retry-After", rejection.retry_after),) if rejection.retry_after else ()
            body = envelope(rejection.status, rejection.message).body
            reply = Reply(rejection.status, body, headers)
            fault = "rejected"
        elif route is None:
            reply = envelope(404, f"Cannot {request.method} {path_only(request.raw_path)}")
        else:
            operation, wsid, version, _ = route
            outcome = self._perform(operation, wsid, version, distinct_id, request, faults)
            performed = outcome.changed or (outcome.status < 300 and operation != "get")
            lost = operation != "get" and self.injector.lose()
            reply = Reply(outcome.status, outcome.body, lost=lost)
            if not lost and self._malforms(request.method, reply, faults):
                reply = malformed_reply(faults.malformed, reply, faults.trickle_seconds)
                fault = "malformed"
        self.log.append(LogEntry(
            method=request.method, path=request.raw_path, distinct_id=distinct_id,
            body=_logged_body(request.body), status=reply.status, performed=performed,
            lost=lost, time=received, fault=fault,
        ))
        return reply

    def _malforms(self, method: str, reply: Reply, faults: Faults) -> bool:
        """Whether `Faults.malformed` covers this answer of a route and, by its rate, meets it."""
        if faults.malformed == "none" or not applies(faults.malformed_paths, method):
            return False
        # a wrong shape needs a profile to break: only a GET's 200 has one
        if faults.malformed in SHAPE_MALFORMED and (method != "GET" or reply.status != 200):
            return False
        return self.injector.malform()

    def _authorized(self, authorization: str | None) -> bool:
        # constant-time, so that the key cannot be guessed byte by byte from timings
        return authorization is not None and hmac.compare_digest(
            authorization.encode("utf-8", "replace"), self._expected
        )

    def _perform(
        self, operation: str, wsid: str, version: str, distinct_id: str | None,
        request: Request, faults: Faults,
    ) -> Outcome:
        store = self.store
        try:
            if version not in VERSIONS:
                raise BadRequest(f"version must be live or test, not {version}")
            if operation == "get":
                assert distinct_id is not None
                return store.get(wsid, version, distinct_id, faults)
            if not (request.content_type or "").lower().startswith(JSON_TYPE):
                # the real API parses no body without it, and the doc requires it
                raise BadRequest("Content-Type must be application/json")
            body = _parse_json(request.body)
            if operation == "create":
                return store.create(wsid, version, body, faults)
            if operation == "delete-profiles":
                return store.delete_profiles(wsid, version, body, faults)
            assert distinct_id is not None
            if operation == "patch":
                return store.patch_channel(wsid, version, distinct_id, body, faults)
            return store.delete_channel(wsid, version, distinct_id, parse_delete(body), faults)
        except BadRequest as problem:
            return error(str(problem))

    # -- test and admin routes -------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> Reply:
        try:
            match (method, path):
                case ("GET", "/_sandbox/data"):
                    return Reply(200, self.store.dump())
                case ("PUT", "/_sandbox/data"):
                    self.store.replace(_parse_json(body))
                    return envelope(200, "Data replaced")
                case ("GET", "/_sandbox/log"):
                    return Reply(200, self.log.to_json())
                case ("DELETE", "/_sandbox/log"):
                    self.log.clear()
                    return envelope(200, "Log cleared")
                case ("GET", "/_sandbox/faults"):
                    return Reply(200, self.injector.faults.to_json())
                case ("PUT", "/_sandbox/faults"):
                    try:
                        self.injector.reset(Faults.from_json(_parse_json(body)))
                    except (TypeError, ValueError) as problem:
                        raise BadRequest(str(problem)) from None
                    return envelope(200, "Faults replaced")
        except BadRequest as problem:
            return envelope(400, str(problem))
        return envelope(404, f"Cannot {method} {path}")


def _distinct_id(method: str, raw_path: str) -> str | None:
    route = _route(method, split_path(raw_path))
    return route[3] if route is not None else None


def _route(
    method: str, segments: list[str] | None
) -> tuple[str, str, str, str | None] | None:
    """(operation, WSID, version, distinct_id) of an API path, or None for an unknown route."""
    if segments is None or len(segments) < 5 or segments[:2] != ["", "v1"]:
        return None
    wsid, version, collection, *rest = segments[2:]
    if not wsid or collection != "profiles":
        return None
    match (method, rest):
        case ("POST", []):
            return ("create", wsid, version, None)
        case ("POST", ["delete"]):
            return ("delete-profiles", wsid, version, None)
        case ("GET", [distinct_id]):
            return ("get", wsid, version, distinct_id)
        case ("PATCH", [distinct_id, "channel"]):
            return ("patch", wsid, version, distinct_id)
        case ("POST", [distinct_id, "channel", "delete"]):
            return ("delete-channel", wsid, version, distinct_id)
    return None
