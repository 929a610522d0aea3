"""The Fyno profile API over HTTP: the httpx client behind `ProfileApi` (the only httpx user).

The client makes exactly one HTTP request per method call and reports what happened; it
never retries, because whether a write may be sent again depends on what the executor knows
(a delete is not idempotent at the server). What it reports:
- an `Answer` with a `Verdict` for each of Fyno's documented answers (`answers.judge`), its
  body checked against the response schema (`reconciler.responses`);
- `ApiAuthError` for 401, which must stop every call;
- `UnexpectedAnswerError` for an answer only a misconfiguration explains (404, 403, a
  redirect, an error body that is not Fyno's envelope): the command stops, touching nothing;
- `NotSentError` when the request never reached the server (no connection), so it is safe
  to send again;
- `NoAnswerError` when it may have reached the server but no whole answer came in time
  (timeout, reset, an answer trickling past the deadline): its outcome is unknown.
The API key goes in one header and nowhere else: no message here ever contains it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from reconciler import __version__, responses
from reconciler.answers import Answer, Verdict, judge
from reconciler.errors import (
    ApiAuthError,
    ApiSetupError,
    NoAnswerError,
    NotSentError,
    UnexpectedAnswerError,
)
from reconciler.plan import HttpRequest, path_segment

DEFAULT_BASE_URL: Final = "https://api.fyno.io/v1"
USER_AGENT: Final = f"reconciler/{__version__}"
MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
"""A profile is a few KB; an answer past this is no profile, and is not read further."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `total` bounds a whole answer, however slowly its bytes trickle in."""

    connect: float = 10.0
    read: float = 30.0
    total: float = 60.0


class FynoClient:
    """`ProfileApi` over HTTP with httpx: one pooled, keep-alive transport shared by all workers.

    Requests go straight to the transport: `httpx.Client` would add cookie jars, redirects,
    auth flows and event hooks that this API never uses, and cost about 0.6 ms of CPU per
    request, a third of apply's (measured against the sandbox, bench/apply_throughput.py).
    Proxies are chosen here as `httpx.Client` would: `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`,
    unless `NO_PROXY` names the API's host.
    """

    def __init__(self, *, base_url: str, api_key: str, workspace: str, version: str,
                 max_connections: int = 10, timeouts: Timeouts = Timeouts(),
                 transport: httpx.BaseTransport | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        if not api_key:
            raise ApiSetupError("FYNO_API_KEY is not set: export the API key of the workspace "
                                "(it is read from the environment only, never from a file)")
        if not base_url.startswith(("http://", "https://")):
            raise ApiSetupError(f"FYNO_BASE_URL must be an http(s) URL, not {base_url!r}")
        try:
            base = httpx.URL(base_url.rstrip("/"))
        except httpx.InvalidURL as error:
            raise ApiSetupError(f"FYNO_BASE_URL is not a usable URL: {error}") from None
        if not base.host:
            raise ApiSetupError(f"FYNO_BASE_URL names no host: {base_url!r}")
        self._base = str(base)
        self._prefix = f"/{path_segment(workspace)}/{path_segment(version)}"
        self._headers = [
            (b"Host", base.netloc),
            (b"Authorization", f"Bearer {api_key}".encode()),
            (b"Content-Type", b"application/json"),
            (b"Accept", b"application/json"),
            (b"User-Agent", USER_AGENT.encode()),
        ]
        read = min(timeouts.read, timeouts.total)
        self._timeouts = {"connect": timeouts.connect, "read": read, "write": read,
                          "pool": timeouts.total}
        self._total = timeouts.total
        proxy = proxy_for(base, env or {})
        self._transport = transport or httpx.HTTPTransport(
            proxy=proxy, limits=httpx.Limits(max_connections=max_connections,
                                             max_keepalive_connections=max_connections))
        self._where = f"{self._base} (workspace {workspace}, version {version})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, workspace: str, version: str,
                 max_connections: int = 10, timeouts: Timeouts = Timeouts()) -> FynoClient:
        return cls(base_url=env.get("FYNO_BASE_URL") or DEFAULT_BASE_URL,
                   api_key=env.get("FYNO_API_KEY", ""), workspace=workspace, version=version,
                   max_connections=max_connections, timeouts=timeouts, env=env)

    @property
    def where(self) -> str:
        return self._where

    def get_profile(self, distinct_id: str) -> Answer:
        return self._request("GET", f"/profiles/{path_segment(distinct_id)}", None,
                             responses.profile_problem)

    def send(self, request: HttpRequest) -> Answer:
        return self._request(request.method, request.path, request.body,
                             responses.envelope_problem)

    def close(self) -> None:
        self._transport.close()

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None,
                 shape_problem: Any) -> Answer:
        url = self._base + self._prefix + path
        content = b"" if body is None else orjson.dumps(body)
        request = httpx.Request(method, url, headers=self._headers, content=content,
                                extensions={"timeout": self._timeouts})
        status, headers, raw = self._exchange(request, method, url)
        if status == 401:
            raise ApiAuthError(
                f"the Fyno API answered 401 to {method} {url}: check FYNO_API_KEY and "
                f"FYNO_WSID, and that the key is allowed for {self._where} and this IP")
        parsed, not_json = responses.decode_json(raw)
        problem = (not_json or shape_problem(parsed)) if 200 <= status < 300 else None
        verdict = judge(status, parsed, shape_problem=problem)
        if verdict is None:
            raise UnexpectedAnswerError(_unexpected(method, url, status, headers, not_json))
        message = parsed.get("_message", "") if isinstance(parsed, dict) else ""
        return Answer(status, verdict, str(message), parsed if verdict is not Verdict.MALFORMED
                      else None, _retry_after(headers.get("Retry-After")), problem or "")

    def _exchange(self, request: httpx.Request, method: str,
                  url: str) -> tuple[int, httpx.Headers, bytes]:
        """Send `request` and read its whole answer within the overall deadline."""
        deadline = time.monotonic() + self._total
        try:
            response = self._transport.handle_request(request)
            try:
                raw = self._read_body(response, deadline)
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
                httpx.UnsupportedProtocol, httpx.ProxyError) as error:
            raise NotSentError(f"{method} {url}: cannot reach {self._where}: "
                               f"{_cause(error)}") from None
        except httpx.TransportError as error:
            raise NoAnswerError(f"{method} {url}: no answer from {self._where}: "
                                f"{_cause(error)}") from None
        return response.status_code, response.headers, raw

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        assert isinstance(response.stream, httpx.SyncByteStream)
        for chunk in response.stream:
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout(f"the answer took longer than {self._total:g} s")
            if size > MAX_ANSWER_BYTES:
                break  # judged as not JSON: far too large for a profile or an envelope
        return b"".join(chunks)


def proxy_for(url: httpx.URL, env: Mapping[str, str]) -> str | None:
    """The proxy for `url` from the usual variables (lower case first, as curl and httpx)."""
    def variable(name: str) -> str:
        return env.get(name.lower()) or env.get(name.upper()) or ""

    proxy = variable(f"{url.scheme}_proxy") or variable("all_proxy")
    if not proxy:
        return None
    if _bypassed(url.host.lower(), variable("no_proxy")):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether `NO_PROXY` (comma-separated hosts or domain suffixes, `*` for all) names
    `host`: `example.com` and `.example.com` both cover `api.example.com`."""
    for entry in no_proxy.split(","):
        name = entry.strip().lower().lstrip(".")
        if name.startswith("[") and "]" in name:  # [::1] or [::1]:8080
            name = name[1:name.index("]")]
        elif name.count(":") == 1:  # host:port; a port is not part of the name
            name = name.split(":")[0]
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _cause(error: Exception) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _unexpected(method: str, url: str, status: int, headers: httpx.Headers,
                not_json: str | None) -> str:
    kind = headers.get("Content-Type", "no content type").split(";")[0]
    what = f"{method} {url} answered {status} ({kind}), which is not an answer of Fyno's " \
           "profile API"
    if 300 <= status < 400:
        hint = (f"it redirects to {headers.get('Location', '(no Location)')}: set "
                "FYNO_BASE_URL to the final URL")
    elif status == 403:
        hint = ("the request was forbidden: is the key scoped to this version (live/test), "
                "and is this machine's IP on the key's allow-list?")
    elif status == 404:
        hint = ("nothing is there: check FYNO_BASE_URL (it must end in /v1, e.g. "
                "https://api.fyno.io/v1), FYNO_WSID and FYNO_VERSION")
    else:
        hint = "check FYNO_BASE_URL, and any proxy or gateway in between"
    body = f"; the body is {not_json}" if not_json else ""
    return f"{what}{body}: {hint}. Nothing was recorded."


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = moment.timestamp() - time.time()
    return max(0.0, seconds) if seconds == seconds else None  # NaN: no usable value
