"""The executor against an in-memory model of the API whose answers are scripted: every kind
of doubt, every stop, every bound."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from fakeapi import FakeApi, Switches

from reconciler.answers import Answer, Verdict
from reconciler.converge import MAX_REQUESTS_PER_PROFILE, MAX_ROUNDS, Report, Work
from reconciler.effects import target
from reconciler.errors import ApiAuthError, UnexpectedAnswerError, UnreachableError
from reconciler.executor import Executor, Outcome
from reconciler.model import ChannelData
from reconciler.pacing import RetryPolicy
from reconciler.plan import HttpRequest
from reconciler.planner import diff
from reconciler.state import Doubt

FAST = RetryPolicy(attempts=4, base=0.001, cap=0.01, max_wait=1.0)


@dataclass
class Events:
    """An Observer that keeps what it is told."""

    recorded: dict[str, ChannelData | None] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    refusals: list[tuple[Report, bool]] = field(default_factory=list)
    unsettled_reports: list[Report] = field(default_factory=list)
    read_backs: list[Report] = field(default_factory=list)
    finished: int = 0

    def begin(self, doubt: Doubt) -> None:
        self.log.append(("begin", doubt.call.distinct_id))

    def abandoned(self, distinct_id: str) -> None:
        self.log.append(("abandoned", distinct_id))

    def done(self, report: Report, before: ChannelData, after: ChannelData | None) -> None:
        self.log.append(("done", report.operation))
        self.recorded[report.distinct_id] = after

    def read_back(self, report: Report, before: ChannelData, truth: ChannelData,
                  explained: tuple[ChannelData, ...] | None) -> None:
        self.log.append(("read_back", report.distinct_id))
        self.read_backs.append(report)
        self.recorded[report.distinct_id] = truth

    def unsettled(self, report: Report, before: ChannelData) -> None:
        self.unsettled_reports.append(report)

    def refused(self, report: Report, before: ChannelData, in_doubt: bool) -> None:
        self.refusals.append((report, in_doubt))

    def progress(self, finished_calls: int) -> None:
        self.finished += finished_calls


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def converge(api: FakeApi, desired: dict[str, ChannelData], recorded: dict[str, ChannelData],
             unconfirmed: frozenset[str] = frozenset(), read_only: frozenset[str] = frozenset(),
             retry: RetryPolicy = FAST) -> tuple[Events, Outcome]:
    calls = diff(desired, recorded)
    works = []
    for distinct_id in sorted({call.distinct_id for call in calls} | unconfirmed | read_only):
        own = tuple(call for call in calls if call.distinct_id == distinct_id)
        have = recorded.get(distinct_id, ChannelData())
        works.append(Work(distinct_id, own, have,
                          target(have, own) if distinct_id in desired else None,
                          read_back_first=distinct_id in unconfirmed,
                          read_only=distinct_id in read_only))
    events = Events()
    outcome = Executor(api, events, parallelism=4, retry=retry).run(works)
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
    assert events.finished == outcome.finished == 2
    assert outcome.requests == 2


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


def test_a_malformed_success_of_a_write_is_settled_by_a_read_back() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["malformed-after"]})
    events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()})
    assert not outcome.failures
    assert api.requests == [("patch", "u1"), ("get", "u1")]  # it had landed: not sent again
    assert events.recorded["u1"] == data(email="a@x.io")


def test_a_malformed_read_back_records_nothing_and_leaves_the_profile_in_doubt() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["500"], ("get", "u1"): ["malformed"]})
    events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()})
    (report, in_doubt), = events.refusals
    assert in_doubt and "channel must be an object" in report.message
    assert "u1" not in events.recorded
    assert outcome.failures == [report]


def test_429_and_unsent_requests_are_retried_directly() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["429", "not-sent", "429"]})
    _events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()})
    assert not outcome.failures
    assert api.requests == [("patch", "u1")] * 4


def test_a_retry_after_of_days_is_not_waited_for() -> None:
    api = FakeApi({"u1": {}})

    def days(request: HttpRequest) -> Answer:
        api.requests.append(("patch", "u1"))
        return Answer(429, Verdict.THROTTLED, "Too many requests", retry_after=2 * 86400.0)

    api.send = days  # type: ignore[method-assign]
    started = time.monotonic()
    events, _outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()},
                                retry=RetryPolicy(attempts=6, base=0.001, max_wait=60.0))
    assert time.monotonic() - started < 5
    (report, in_doubt), = events.refusals
    assert not in_doubt and "Retry-After 172800 s" in report.message
    assert api.requests == [("patch", "u1")]


def test_patch_of_a_profile_the_server_lacks_creates_it() -> None:
    api = FakeApi({})
    events, outcome = converge(api, {"u9": data(sms="+1")}, {})
    assert not outcome.failures
    assert api.requests == [("patch", "u9"), ("get", "u9"), ("create", "u9")]
    assert server_view(api, "u9") == data(sms="+1") == events.recorded["u9"]


def test_a_400_that_changed_nothing_is_refused_after_one_read_back_never_resent() -> None:
    api = FakeApi({"u1": {"sms": "+1"}, "u2": {}})
    original = api.send

    def refuse_u1(request: HttpRequest) -> Answer:
        if "/u1/" in request.path:
            api.requests.append(("delete", "u1"))
            return Answer(400, Verdict.REFUSED, "some validation message",
                          {"_message": "some validation message", "status": "error"})
        return original(request)

    api.send = refuse_u1  # type: ignore[method-assign]
    events, _outcome = converge(api, {"u1": data(), "u2": data(email="b@x.io")},
                                {"u1": data(sms="+1"), "u2": data()})
    (report, in_doubt), = events.refusals
    assert not in_doubt and report.status == 400 and report.distinct_id == "u1"
    assert [r for r in api.requests if r[1] == "u1"] == [("delete", "u1"), ("get", "u1")]
    assert server_view(api, "u2") == data(email="b@x.io")


@pytest.mark.parametrize(("fault", "error"), [("401", ApiAuthError),
                                              ("404", UnexpectedAnswerError)])
def test_a_401_or_a_setup_error_stops_every_call(fault: str, error: type[Exception]) -> None:
    api = FakeApi({f"u{i}": {} for i in range(20)}, faults={("patch", "u0"): [fault]})
    desired = {f"u{i}": data(email=f"{i}@x.io") for i in range(20)}
    _events, outcome = converge(api, desired, {f"u{i}": data() for i in range(20)})
    assert isinstance(outcome.fatal, error)
    # The other workers (parallelism 4) already past their check when the answer came may
    # finish one call each; nothing new starts after. (Counted from the fatal request, not
    # from the start: on a loaded machine other workers may well have gone first.)
    fatal_at = api.requests.index(("patch", "u0"))
    assert len(api.requests) - fatal_at - 1 <= 3, api.requests


def test_an_api_that_cannot_be_reached_stops_the_run_saying_why() -> None:
    api = FakeApi({f"u{i}": {} for i in range(50)},
                  random_faults=lambda kind, distinct_id: "not-sent")
    desired = {f"u{i}": data(email=f"{i}@x.io") for i in range(50)}
    _events, outcome = converge(api, desired, {f"u{i}": data() for i in range(50)})
    assert isinstance(outcome.fatal, UnreachableError)
    assert "connection refused" in str(outcome.fatal)
    # one request per worker's profile, each tried `attempts` times at most
    assert len(api.requests) <= 2 * 4 * FAST.attempts


def test_doubt_that_never_clears_fails_after_bounded_read_backs() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["500"] * 50})
    events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()})
    (report, in_doubt), = events.refusals
    assert in_doubt and f"{MAX_ROUNDS} read-backs" in report.message
    assert api.requests.count(("get", "u1")) == MAX_ROUNDS
    assert outcome.failures == [report]


def test_no_profile_receives_more_requests_than_its_budget() -> None:
    api = FakeApi({"u1": {}}, faults={("patch", "u1"): ["429", "429", "429", "500"] * 20,
                                      ("get", "u1"): ["500", "500", "500"] * 20})
    events, outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()},
                               retry=RetryPolicy(attempts=6, base=0.0001, cap=0.001))
    assert len(api.requests) <= MAX_REQUESTS_PER_PROFILE
    (_report, in_doubt), = events.refusals
    assert in_doubt and outcome.failures


def test_an_unconfirmed_profile_is_read_back_before_anything_else() -> None:
    api = FakeApi({"u1": {"email": "a@x.io"}})  # the earlier PATCH had landed
    events, _outcome = converge(api, {"u1": data(email="a@x.io")}, {"u1": data()},
                                unconfirmed=frozenset({"u1"}))
    assert api.requests == [("get", "u1")]
    assert events.recorded["u1"] == data(email="a@x.io")


def test_a_read_only_profile_gets_one_get_and_no_write() -> None:
    api = FakeApi({"u1": {"email": "landed@x.io"}})
    events, _outcome = converge(api, {"u1": data(email="wanted@x.io")},
                                {"u1": data(email="old@x.io")},
                                unconfirmed=frozenset({"u1"}), read_only=frozenset({"u1"}))
    assert api.requests == [("get", "u1")]
    assert events.recorded["u1"] == data(email="landed@x.io")


def test_a_profile_leaving_management_is_forgotten_after_its_delete() -> None:
    api = FakeApi({"gone": {"sms": "+1"}})
    events, outcome = converge(api, {}, {"gone": data(sms="+1")})
    assert not outcome.failures
    assert events.recorded == {"gone": None}
    assert server_view(api, "gone") == data()


def test_a_timeout_before_the_server_acted_is_read_back_then_sent_again() -> None:
    api = FakeApi({"u1": {"sms": "+1", "email": "e@x.io"}},
                  faults={("delete", "u1"): ["timeout"]})
    _events, outcome = converge(api, {"u1": data()}, {"u1": data(sms="+1", email="e@x.io")})
    assert not outcome.failures
    assert api.requests == [("delete", "u1"), ("get", "u1"), ("delete", "u1")]
    assert server_view(api, "u1") == data()


@pytest.mark.parametrize("resend", ["update", "duplicate", "ignore", "merge"])
def test_a_token_status_flip_converges_in_two_calls_whatever_a_resent_token_does(
        resend: str) -> None:
    before = {"push": [{"token": "t1", "integration_id": "I1", "status": 1}]}
    api = FakeApi({"u1": before}, switches=Switches(resend_token=resend))
    desired = {"u1": data(push=[{"token": "t1", "status": 0}])}
    events, outcome = converge(api, desired, {"u1": data(**before)})
    assert not outcome.failures
    assert api.requests == [("delete", "u1"), ("patch", "u1")]
    assert server_view(api, "u1") == desired["u1"] == events.recorded["u1"]


@pytest.mark.parametrize("resend", ["update", "duplicate", "ignore", "merge"])
def test_a_token_re_sent_by_an_older_saved_plan_is_read_back_and_settled_within_bounds(
        resend: str) -> None:
    from reconciler.model import Token
    from reconciler.plan import Change, PatchChannels

    old, new = Token("t1", "I1", 1), Token("t1", None, 0)
    api = FakeApi({"u1": {"push": [old.to_json()]}}, switches=Switches(resend_token=resend))
    legacy = PatchChannels("u1", (Change("push", old, new),))  # what older planners made
    have = data(push=[old.to_json()])
    events = Events()
    outcome = Executor(api, events, parallelism=1, retry=FAST).run(
        [Work("u1", (legacy,), have, data(push=[new.to_json()]))])
    assert not outcome.failures
    assert api.requests[:2] == [("patch", "u1"), ("get", "u1")]
    assert len(api.requests) <= 4
    assert server_view(api, "u1") == data(push=[new.to_json()]) == events.recorded["u1"]


@pytest.mark.parametrize(("fault", "outcome", "found"), [
    ("lose", "unknown", "landed"), ("500", "unknown", "not_landed"),
    ("timeout", "unknown", "not_landed"), ("malformed-after", "unknown", "landed")])
def test_a_write_of_unknown_outcome_is_on_record_and_its_read_back_settles_it(
        fault: str, outcome: str, found: str) -> None:
    api = FakeApi({"u1": {"sms": "+1"}}, faults={("delete", "u1"): [fault]})
    events, result = converge(api, {"u1": data()}, {"u1": data(sms="+1")})
    assert not result.failures
    (doubtful,) = events.unsettled_reports
    assert (doubtful.method, doubtful.path, doubtful.request) == (
        "POST", "/profiles/u1/channel/delete", {"channel": ["sms"]})
    assert doubtful.outcome is not None and doubtful.outcome.value == outcome
    (read_back,) = events.read_backs
    assert read_back.settles == (doubtful.request_id,) and read_back.found is not None
    assert read_back.found.value == found
