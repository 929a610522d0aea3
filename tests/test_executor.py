"""The executor against an in-memory API whose answers are scripted: every kind of doubt."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.answers import CHANNEL_DOES_NOT_EXIST, NO_SUCH_PROFILE, Answer
from reconciler.effects import target
from reconciler.errors import ApiAuthError, NoAnswerError, NotSentError
from reconciler.executor import MAX_READ_BACKS, Executor, Report, Work
from reconciler.model import ChannelData
from reconciler.pacing import RetryPolicy
from reconciler.planner import diff

FAST = RetryPolicy(attempts=4, base=0.001, cap=0.01)
OK = "Channel has been modified successfully"


@dataclass
class FakeApi:
    """Fyno's documented semantics over a dict, with a queue of scripted faults per request
    kind ("get", "patch", "delete", "create") and distinct_id."""

    profiles: dict[str, dict[str, Any]]
    faults: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get_profile(self, distinct_id: str) -> Answer:
        return self._serve("get", distinct_id, lambda: self._get(distinct_id))

    def patch_channel(self, distinct_id: str, body: Mapping[str, Any]) -> Answer:
        return self._serve("patch", distinct_id, lambda: self._patch(distinct_id, body))

    def delete_channel(self, distinct_id: str, body: Mapping[str, Any]) -> Answer:
        return self._serve("delete", distinct_id, lambda: self._delete(distinct_id, body))

    def create_profile(self, distinct_id: str, channel: Mapping[str, Any]) -> Answer:
        def create() -> Answer:
            self.profiles[distinct_id] = {}
            return self._patch(distinct_id, {"channel": channel})
        return self._serve("create", distinct_id, create)

    def close(self) -> None:
        pass

    def _serve(self, kind: str, distinct_id: str, action: Any) -> Answer:
        with self.lock:
            self.requests.append((kind, distinct_id))
            queue = self.faults.get((kind, distinct_id), [])
            fault = queue.pop(0) if queue else None
            if fault == "401":
                raise ApiAuthError("401")
            if fault == "not-sent":
                raise NotSentError("refused")
            if fault == "timeout":
                raise NoAnswerError("timeout before the server acted")
            if fault in ("500", "429"):
                return Answer(int(fault), "", None, 0.001)
            answer: Answer = action()
            if fault == "lose":
                raise NoAnswerError("connection closed after the write")
            return answer

    def _get(self, distinct_id: str) -> Answer:
        if distinct_id not in self.profiles:
            return Answer(400, NO_SUCH_PROFILE, None)
        return Answer(200, "", {"distinct_id": distinct_id,
                                "channel": dict(self.profiles[distinct_id])})

    def _patch(self, distinct_id: str, body: Mapping[str, Any]) -> Answer:
        if distinct_id not in self.profiles:
            return Answer(400, NO_SUCH_PROFILE, None)
        profile = self.profiles[distinct_id]
        for channel, value in body["channel"].items():
            if isinstance(value, list):
                tokens = {item["token"]: item for item in profile.get(channel, [])}
                tokens.update({item["token"]: {"status": 1, **item} for item in value})
                profile[channel] = list(tokens.values())
            else:
                profile[channel] = value
        return Answer(200, OK, None)

    def _delete(self, distinct_id: str, body: Mapping[str, Any]) -> Answer:
        profile = self.profiles.get(distinct_id)
        if profile is None:
            return Answer(400, CHANNEL_DOES_NOT_EXIST, None)
        if "channel" in body:  # Option 1, failing whole when a channel is empty
            if any(not profile.get(name) for name in body["channel"]):
                return Answer(400, CHANNEL_DOES_NOT_EXIST, None)
            for name in body["channel"]:
                del profile[name]
            return Answer(200, OK, None)
        for channel, names in body.items():
            kept = [t for t in profile.get(channel, []) if t["token"] not in names]
            if kept:
                profile[channel] = kept
            else:
                profile.pop(channel, None)
        return Answer(200, OK, None)


@dataclass
class Events:
    """An Observer that keeps what it is told."""

    recorded: dict[str, ChannelData | None] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    refusals: list[tuple[Report, bool]] = field(default_factory=list)
    finished: int = 0

    def begin(self, distinct_id: str) -> None:
        self.log.append(("begin", distinct_id))

    def abandoned(self, distinct_id: str) -> None:
        self.log.append(("abandoned", distinct_id))

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        self.log.append(("done", report.operation))
        self.recorded[report.distinct_id] = after

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        self.log.append(("read_back", report.distinct_id))
        self.recorded[report.distinct_id] = truth

    def refused(self, report: Report, before: ChannelData, in_doubt: bool) -> None:
        self.refusals.append((report, in_doubt))

    def progress(self, finished_calls: int) -> None:
        self.finished += finished_calls


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def converge(api: FakeApi, desired: dict[str, ChannelData], recorded: dict[str, ChannelData],
             unconfirmed: frozenset[str] = frozenset()) -> tuple[Events, Any]:
    calls = diff(desired, recorded)
    works = []
    for distinct_id in sorted({call.distinct_id for call in calls} | unconfirmed):
        own = tuple(call for call in calls if call.distinct_id == distinct_id)
        have = recorded.get(distinct_id, ChannelData())
        works.append(Work(distinct_id, own, have,
                          target(have, own) if distinct_id in desired else None,
                          read_back_first=distinct_id in unconfirmed))
    events = Events()
    outcome = Executor(api, events, parallelism=4, retry=FAST).run(works)
    return events, outcome


def server_view(api: FakeApi, distinct_id: str) -> ChannelData:
    return ChannelData.from_json(api.profiles.get(distinct_id, {}))


def test_calls_are_made_and_each_result_recorded() -> None:
    api = FakeApi({"u1": {"email": "old@x.io", "sms": "+1"}})
    desired = {"u1": data(email="new@x.io")}
    events, outcome = converge(api, desired, {"u1": data(email="old@x.io", sms="+1")})
    assert not outcome.failures
    assert server_view(api, "u1") == desired["u1"] == events.recorded["u1"]
    assert api.requests == [("patch", "u1"), ("delete", "u1")]
    assert events.finished == 2


def test_lost_answer_on_a_multi_channel_delete_is_read_back_not_resent() -> None:
    api = FakeApi({"u1": {"email": "a@x.io", "sms": "+1", "teams": "t"}},
                  faults={("delete", "u1"): ["lose"]})
    events, outcome = converge(api, {"u1": data(email="a@x.io")},
                               {"u1": data(email="a@x.io", sms="+1", teams="t")})
    assert not outcome.failures
    assert api.requests == [("delete", "u1"), ("get", "u1")]
    assert events.recorded["u1"] == data(email="a@x.io") == server_view(api, "u1")


def test_delete_of_a_channel_already_gone_reads_back_and_deletes_the_rest() -> None:
    api = FakeApi({"u1": {"teams": "t"}})  # drift: sms vanished behind our back
    events, outcome = converge(api, {"u1": data()}, {"u1": data(sms="+1", teams="t")})
    assert not outcome.failures
    assert api.requests == [("delete", "u1"), ("get", "u1"), ("delete", "u1")]
    assert server_view(api, "u1") == data() == events.recorded["u1"]


def test_a_5xx_write_is_read_back_before_it_is_sent_again() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["500"]})
    _events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()})
    assert not outcome.failures
    assert api.requests == [("patch", "u1"), ("get", "u1"), ("patch", "u1")]
    assert server_view(api, "u1") == data(email="a@x.io")


def test_429_and_unsent_requests_are_retried_directly() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["429", "not-sent", "429"]})
    _events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()})
    assert not outcome.failures
    assert api.requests == [("patch", "u1")] * 4


def test_patch_of_a_profile_the_server_lacks_creates_it() -> None:
    api = FakeApi({})
    events, outcome = converge(api, {"u9": data(sms="+1")}, {})
    assert not outcome.failures
    assert api.requests == [("patch", "u9"), ("create", "u9")]
    assert server_view(api, "u9") == data(sms="+1") == events.recorded["u9"]


def test_401_stops_every_call() -> None:
    api = FakeApi({f"u{i}": {} for i in range(20)}, faults={("patch", "u0"): ["401"]})
    desired = {f"u{i}": data(email=f"{i}@x.io") for i in range(20)}
    _executor_events, outcome = converge(api, desired, {f"u{i}": data() for i in range(20)})
    assert isinstance(outcome.auth_error, ApiAuthError)
    # Workers already past their check may finish one call each; nothing new starts after.
    assert len(api.requests) <= 4


def test_doubt_that_never_clears_fails_after_bounded_read_backs() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["500"] * 50})
    events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()})
    (report, in_doubt), = events.refusals
    assert in_doubt and f"{MAX_READ_BACKS} read-backs" in report.message
    assert api.requests.count(("get", "u1")) == MAX_READ_BACKS
    assert outcome.failures == [report]


def test_a_refused_call_is_recorded_as_refused_and_stops_that_profile_only() -> None:
    api = FakeApi({"u1": {"sms": "+1"}, "u2": {}},
                  faults={("delete", "u1"): []})
    api.profiles["u1"] = {"sms": "+1"}

    def refuse(distinct_id: str, body: Mapping[str, Any]) -> Answer:
        api.requests.append(("delete", distinct_id))
        return Answer(400, "channel name unknown", None)

    api.delete_channel = refuse  # type: ignore[method-assign]
    events, _outcome = converge(api, {"u1": data(), "u2": data(email="b@x.io")},
                               {"u1": data(sms="+1"), "u2": data()})
    (report, in_doubt), = events.refusals
    assert not in_doubt and report.status == 400 and report.distinct_id == "u1"
    assert server_view(api, "u2") == data(email="b@x.io")


def test_an_unconfirmed_profile_is_read_back_before_anything_else() -> None:
    api = FakeApi({"u1": {"email": "a@x.io"}})  # the earlier PATCH had landed
    events, _outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()},
                               unconfirmed=frozenset({"u1"}))
    assert api.requests == [("get", "u1")]
    assert events.recorded["u1"] == data(email="a@x.io")


def test_a_profile_leaving_management_is_forgotten_after_its_delete() -> None:
    api = FakeApi({"gone": {"sms": "+1"}})
    events, outcome = converge(api, {}, {"gone": data(sms="+1")})
    assert not outcome.failures
    assert events.recorded == {"gone": None}
    assert server_view(api, "gone") == data()


def test_a_timeout_before_the_server_acted_is_read_back_then_sent_again() -> None:
    api = FakeApi({"u1": {"sms": "+1", "email": "e@x.io"}}, faults={("delete", "u1"): ["timeout"]})
    _events, outcome = converge(api, {"u1": data()}, {"u1": data(sms="+1", email="e@x.io")})
    assert not outcome.failures
    assert api.requests == [("delete", "u1"), ("get", "u1"), ("delete", "u1")]
    assert server_view(api, "u1") == data()
