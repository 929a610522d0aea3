"""A tiny keep-alive HTTP client for the sandbox tests, on the standard library only.

The tests talk to the sandbox over real HTTP on 127.0.0.1, as the reconciler will; they do
not use the reconciler's own API client, so that the two can be judged against each other.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from reconciler.sandbox import Faults, Sandbox, SandboxConfig

KEY = "sbx-secret-key-7Qz91"
WSID = "FYTEST0001"
NO_PROFILE = {"_message": "incorrect/non existing distinct_id provided", "status": "error"}
NO_CHANNEL = {
    "_message": "Unable to delete channel since the channel does not exist",
    "status": "error",
}
MODIFIED = {"_message": "Channel has been modified successfully", "status": "ok"}
CREATED = {"_message": "Profile created successfully", "status": "ok"}
INVALID_KEY = {"_message": "Invalid API details", "status": "error"}


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    """Header names in lower case."""


@contextmanager
def running(
    faults: Faults | None = None, seed_data: dict[str, Any] | None = None
) -> Iterator[Client]:
    config = SandboxConfig(api_key=KEY, faults=faults or Faults(), seed_data=seed_data)
    with Sandbox(config) as sandbox:
        client = Client(sandbox.port)
        try:
            yield client
        finally:
            client.close()


def seed(profiles: dict[str, Any], version: str = "live") -> dict[str, Any]:
    """Seed data for one version of the test workspace."""
    return {WSID: {version: profiles}}


class Client:
    """Requests to one sandbox on one keep-alive connection (reopened after a drop)."""

    def __init__(self, port: int, key: str | None = KEY) -> None:
        self.port = port
        self.key = key
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = "default",
    ) -> Answer:
        sent = dict(headers or {})
        key = self.key if key == "default" else key
        if key is not None and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {key}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        if self._connection is None:
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self._connection.request(method, path, body=data, headers=sent)
            response = self._connection.getresponse()
            payload = response.read()
        except (http.client.HTTPException, OSError):
            self.close()
            raise
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, json.loads(payload) if payload else None, answer_headers)

    # -- the API ---------------------------------------------------------------------------

    def api(self, method: str, tail: str, body: Any = None, version: str = "live",
            **options: Any) -> Answer:
        return self.request(method, f"/v1/{WSID}/{version}/profiles{tail}", body, **options)

    def get(self, distinct_id: str, version: str = "live") -> Answer:
        return self.api("GET", f"/{quote(distinct_id, safe='')}", version=version)

    def create(self, distinct_id: str, version: str = "live", **fields: Any) -> Answer:
        return self.api("POST", "", {"distinct_id": distinct_id, **fields}, version=version)

    def patch(self, distinct_id: str, channel: Any, version: str = "live") -> Answer:
        path = f"/{quote(distinct_id, safe='')}/channel"
        return self.api("PATCH", path, {"channel": channel}, version=version)

    def delete(self, distinct_id: str, body: Any, version: str = "live") -> Answer:
        path = f"/{quote(distinct_id, safe='')}/channel/delete"
        return self.api("POST", path, body, version=version)

    def channel(self, distinct_id: str, version: str = "live") -> Any:
        """What the server holds for a profile, read from the admin route."""
        return self.data().get(WSID, {}).get(version, {}).get(distinct_id)

    # -- admin -----------------------------------------------------------------------------

    def data(self) -> Any:
        answer = self.request("GET", "/_sandbox/data", key=None)
        assert answer.status == 200
        return answer.body

    def log(self) -> list[dict[str, Any]]:
        answer = self.request("GET", "/_sandbox/log", key=None)
        assert answer.status == 200
        return list(answer.body)

    def set_faults(self, **faults: Any) -> None:
        answer = self.request("PUT", "/_sandbox/faults", faults, key=None)
        assert answer.status == 200, answer.body
