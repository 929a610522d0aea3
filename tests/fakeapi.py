"""An in-memory model of Fyno's profile API for executor tests: documented semantics, every
UNKNOWN as a switch (as the sandbox has them), and faults scripted per request or drawn at
random. Written apart from the reconciler's own model, as the sandbox is."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from reconciler.answers import Answer, Verdict
from reconciler.errors import ApiAuthError, NoAnswerError, NotSentError, UnexpectedAnswerError
from reconciler.plan import HttpRequest

MODIFIED = "Channel has been modified successfully"
NO_PROFILE = "incorrect/non existing distinct_id provided"
NO_CHANNEL = "Unable to delete channel since the channel does not exist"
SINGLE = ("sms", "whatsapp", "voice", "email", "slack", "discord", "teams")
TOKENS = ("push", "inapp")

FAULTS = ("401", "404", "not-sent", "timeout", "lose", "500", "429", "malformed",
          "malformed-after")
"""What a request can meet instead of a plain answer:
401 / 404: the client raises (404 is a setup error); not-sent: never left; timeout: no
answer, nothing done; lose: done, answer lost; 500 / 429: nothing done; malformed: a 200
whose body is not Fyno's shape, nothing done; malformed-after: done, then a malformed 200."""


@dataclass
class Switches:
    """The UNKNOWN behaviours of the API (fyno-api.md), one value each."""

    resend_token: str = "update"  # update | duplicate | ignore | merge
    delete_empty: str = "fail-whole"  # fail-whole | fail-partial | succeed
    absent_token: str = "fail"  # fail | succeed
    empty_channels: str = "omit"  # omit | empty


@dataclass
class FakeApi:
    """Profiles as the server holds them: `{distinct_id: channel-object}`."""

    profiles: dict[str, dict[str, Any]]
    faults: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    switches: Switches = field(default_factory=Switches)
    random_faults: Callable[[str, str], str | None] | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    where: str = "the fake API"

    # --- ProfileApi ---------------------------------------------------------------------------

    def get_profile(self, distinct_id: str) -> Answer:
        return self._serve("get", distinct_id, lambda: self._get(distinct_id))

    def send(self, request: HttpRequest) -> Answer:
        kind, distinct_id = _route(request)
        if kind == "create":
            distinct_id = request.body["distinct_id"]
        actions = {"patch": lambda: self._patch(distinct_id, request.body),
                   "delete": lambda: self._delete(distinct_id, request.body),
                   "create": lambda: self._create(distinct_id, request.body)}
        return self._serve(kind, distinct_id, actions[kind])

    def close(self) -> None:
        pass

    # --- faults -------------------------------------------------------------------------------

    def _serve(self, kind: str, distinct_id: str, action: Callable[[], Answer]) -> Answer:
        with self.lock:
            self.requests.append((kind, distinct_id))
            queue = self.faults.get((kind, distinct_id), [])
            fault = queue.pop(0) if queue else None
            if fault is None and self.random_faults is not None:
                fault = self.random_faults(kind, distinct_id)
            if fault == "401":
                raise ApiAuthError("401")
            if fault == "404":
                raise UnexpectedAnswerError("404 from somewhere else")
            if fault == "not-sent":
                raise NotSentError("connection refused")
            if fault == "timeout":
                raise NoAnswerError("timeout before the server acted")
            if fault == "500":
                return Answer(500, Verdict.SERVER_ERROR, "Internal server error")
            if fault == "429":
                return Answer(429, Verdict.THROTTLED, "Too many requests", retry_after=0.001)
            if fault == "malformed":
                return Answer(200, Verdict.MALFORMED, problem="channel must be an object")
            answer = action()
            if fault == "lose":
                raise NoAnswerError("connection closed after the write")
            if fault == "malformed-after" and answer.ok:
                return Answer(200, Verdict.MALFORMED, problem="not JSON: HTML")
            return answer

    # --- the API's semantics ------------------------------------------------------------------

    def _get(self, distinct_id: str) -> Answer:
        if distinct_id not in self.profiles:
            return _refused(NO_PROFILE)
        channel = {name: [dict(token) for token in value] if isinstance(value, list) else value
                   for name, value in self.profiles[distinct_id].items()}
        if self.switches.empty_channels == "empty":
            for name in SINGLE:
                channel.setdefault(name, "")
            for name in TOKENS:
                channel.setdefault(name, [])
        return Answer(200, Verdict.OK, "", {"distinct_id": distinct_id, "name": None,
                                            "channel": channel, "properties": {},
                                            "channel_raw": {}})

    def _create(self, distinct_id: str, body: dict[str, Any]) -> Answer:
        if distinct_id in self.profiles:
            return _refused(f"Distinct ID '{distinct_id}' already exists")
        self.profiles[distinct_id] = {}
        self._merge(self.profiles[distinct_id], body.get("channel", {}))
        return Answer(201, Verdict.OK, "Profile created successfully")

    def _patch(self, distinct_id: str, body: dict[str, Any]) -> Answer:
        if distinct_id not in self.profiles:
            return _refused(NO_PROFILE)
        self._merge(self.profiles[distinct_id], body["channel"])
        return Answer(200, Verdict.OK, MODIFIED)

    def _merge(self, profile: dict[str, Any], channel: dict[str, Any]) -> None:
        for name, value in channel.items():
            if name not in TOKENS:
                profile[name] = value
                continue
            held: list[dict[str, Any]] = profile.setdefault(name, [])
            for item in value:
                sent = {"status": 1, **item}
                index = next((i for i, t in enumerate(held) if t["token"] == item["token"]),
                             None)
                mode = self.switches.resend_token
                if index is None or mode == "duplicate":
                    held.append(sent)
                elif mode == "update":
                    held[index] = sent
                elif mode == "merge":
                    held[index] = {**held[index], **item}
                # ignore: the stored entry stays as it was

    def _delete(self, distinct_id: str, body: dict[str, Any]) -> Answer:
        profile = self.profiles.get(distinct_id)
        if profile is None:
            return _refused(NO_CHANNEL)
        if "channel" in body:
            names = body["channel"]
            present = [name for name in names if profile.get(name)]
            if len(present) < len(names):
                if not present or self.switches.delete_empty == "fail-whole":
                    return _refused(NO_CHANNEL)
                for name in present:
                    del profile[name]
                return _refused(NO_CHANNEL) if self.switches.delete_empty == "fail-partial" \
                    else Answer(200, Verdict.OK, MODIFIED)
            for name in names:
                del profile[name]
            return Answer(200, Verdict.OK, MODIFIED)
        absent = any(token not in {t["token"] for t in profile.get(channel, [])}
                     for channel, names in body.items() for token in names)
        if absent and self.switches.absent_token == "fail":
            return _refused(NO_CHANNEL)
        for channel, names in body.items():
            kept = [t for t in profile.get(channel, []) if t["token"] not in names]
            if kept:
                profile[channel] = kept
            else:
                profile.pop(channel, None)
        return Answer(200, Verdict.OK, MODIFIED)


def _refused(message: str) -> Answer:
    return Answer(400, Verdict.REFUSED, message, {"_message": message, "status": "error"})


def _route(request: HttpRequest) -> tuple[str, str]:
    """(kind, distinct_id) of a write, read from the request as the server would."""
    parts = request.path.split("/")  # "", "profiles", id, ...
    if request.method == "POST" and parts[2:] == []:
        return "create", ""
    distinct_id = unquote(parts[2])
    if request.method == "PATCH" and parts[3:] == ["channel"]:
        return "patch", distinct_id
    if request.method == "POST" and parts[3:] == ["channel", "delete"]:
        return "delete", distinct_id
    raise AssertionError(f"no such route: {request.method} {request.path}")


def random_faults(seed: int, rate: float, kinds: tuple[str, ...] = FAULTS[2:]
                  ) -> Callable[[str, str], str | None]:
    """A fault drawn at random for a share `rate` of requests (replayable from `seed`)."""
    draw = random.Random(seed)

    def fault(kind: str, distinct_id: str) -> str | None:
        return draw.choice(kinds) if draw.random() < rate else None

    return fault
