"""The sandbox's injected faults and UNKNOWN-behaviour switches each do what they say.

Rates of 1.0 make a fault certain; seeded rates replay; the process test runs the sandbox as
the `reconciler sandbox` command will, in its own process, stopped by SIGTERM or SIGINT.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from sandboxclient import KEY, MODIFIED, NO_CHANNEL, Client, running, seed

from reconciler.sandbox import Faults

PROFILE = {
    "email": "a@example.com",
    "sms": "+15550000000",
    "push": [{"token": "p1", "status": 1}, {"token": "p2", "status": 1}],
}


def statuses(client: Client, count: int) -> list[int]:
    return [client.get("u").status for _ in range(count)]


# -- latency, errors, throttling ---------------------------------------------------------------


def test_latency_is_added_to_every_api_request() -> None:
    with running(Faults(latency_ms=150), seed({"u": PROFILE})) as client:
        client.data()  # open the connection outside the timing
        started = time.monotonic()
        assert client.get("u").status == 200
        assert client.get("nobody").status == 400
        assert time.monotonic() - started >= 0.3


def test_admin_routes_meet_no_fault() -> None:
    faults = Faults(latency_ms=500, error_rate=1.0)
    with running(faults) as client:
        started = time.monotonic()
        client.data()
        assert time.monotonic() - started < 0.4


def test_error_rate_answers_500_or_503_and_does_nothing() -> None:
    with running(Faults(error_rate=1.0), seed({"u": PROFILE})) as client:
        answers = [client.patch("u", {"email": f"{i}@example.com"}) for i in range(20)]
        assert {answer.status for answer in answers} == {500, 503}
        assert all(answer.body["status"] == "error" for answer in answers)
        assert client.channel("u") == PROFILE
        assert not any(entry["performed"] for entry in client.log())


def test_throttle_rate_answers_429_with_retry_after_and_does_nothing() -> None:
    with running(Faults(throttle_rate=1.0), seed({"u": PROFILE})) as client:
        answer = client.delete("u", {"channel": ["sms"]})
        assert answer.status == 429 and answer.body["status"] == "error"
        assert answer.headers["retry-after"] == "1"
        assert client.channel("u") == PROFILE
        client.set_faults(throttle_rate=1.0, retry_after=2.5)
        assert client.get("u").headers["retry-after"] == "2.5"


def test_rates_are_shares_drawn_from_the_seeded_rng() -> None:
    def run(fault_seed: int) -> list[int]:
        with running(Faults(error_rate=0.3, throttle_rate=0.2, seed=fault_seed),
                     seed({"u": PROFILE})) as client:
            return statuses(client, 400)

    first, replay, other = run(7), run(7), run(8)
    assert first == replay
    assert first != other
    # expected 120, 80 and 200 of 400; the bounds are about four standard deviations wide
    assert 85 < sum(status in (500, 503) for status in first) < 155
    assert 50 < first.count(429) < 110
    assert 160 < first.count(200) < 240


def test_max_rps_answers_429_with_retry_after_beyond_the_rate() -> None:
    with running(Faults(max_rps=5), seed({"u": PROFILE})) as client:
        answers = [client.get("u") for _ in range(20)]
        throttled = [answer for answer in answers if answer.status == 429]
        # a bucket of 5 then 5 a second: at least 5 of a 20-request burst must be refused
        assert 5 <= len(throttled) <= 15
        assert all(int(answer.headers["retry-after"]) >= 1 for answer in throttled)
        time.sleep(1.0)
        assert client.get("u").status == 200


def test_faults_replaced_at_runtime_take_effect_at_once() -> None:
    with running(seed_data=seed({"u": PROFILE})) as client:
        assert client.get("u").status == 200
        client.set_faults(error_rate=1.0)
        assert client.get("u").status in (500, 503)
        client.set_faults()
        assert client.get("u").status == 200


# -- lost answers ------------------------------------------------------------------------------


def test_a_lost_answer_performs_the_write_then_closes_the_connection() -> None:
    with running(Faults(lose_rate=1.0), seed({"u": PROFILE})) as client:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            client.delete("u", {"channel": ["sms"]})
        assert "sms" not in client.channel("u")
        (entry,) = client.log()
        assert entry["performed"] and entry["lost"] and entry["status"] == 200


def test_a_lost_patch_and_create_are_performed_too() -> None:
    with running(Faults(lose_rate=1.0), seed({"u": PROFILE})) as client:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            client.patch("u", {"email": "new@example.com"})
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            client.create("v")
        assert client.channel("u")["email"] == "new@example.com"
        assert client.channel("v") == {}


def test_reads_are_never_lost() -> None:
    with running(Faults(lose_rate=1.0), seed({"u": PROFILE})) as client:
        assert statuses(client, 5) == [200] * 5


def test_the_retry_of_a_lost_delete_meets_the_documented_400() -> None:
    with running(Faults(lose_rate=1.0), seed({"u": PROFILE})) as client:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            client.delete("u", {"channel": ["sms"]})
        client.set_faults()
        answer = client.delete("u", {"channel": ["sms"]})
        assert (answer.status, answer.body) == (400, NO_CHANNEL)


# -- UNKNOWN behaviours --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "left"),
    [
        ("fail-whole", 400, PROFILE),
        ("fail-partial", 400, {"email": PROFILE["email"]}),
        ("succeed", 200, {"email": PROFILE["email"]}),
    ],
)
def test_delete_empty_decides_a_multi_channel_delete_naming_an_empty_channel(
    mode: str, status: int, left: dict[str, Any]
) -> None:
    with running(Faults(delete_empty=mode), seed({"u": PROFILE})) as client:
        answer = client.delete("u", {"channel": ["sms", "whatsapp", "push"]})
        assert answer.status == status
        assert answer.body == (NO_CHANNEL if status == 400 else MODIFIED)
        assert client.channel("u") == left


@pytest.mark.parametrize("mode", ["fail-whole", "fail-partial", "succeed"])
def test_naming_only_empty_channels_is_the_documented_400_in_every_mode(mode: str) -> None:
    with running(Faults(delete_empty=mode), seed({"u": PROFILE})) as client:
        answer = client.delete("u", {"channel": ["whatsapp", "voice"]})
        assert (answer.status, answer.body) == (400, NO_CHANNEL)
        assert client.channel("u") == PROFILE


@pytest.mark.parametrize(
    ("mode", "status", "push"),
    [("fail", 400, PROFILE["push"]), ("succeed", 200, PROFILE["push"][1:])],
)
def test_absent_token_decides_an_option_2_naming_a_token_not_held(
    mode: str, status: int, push: list[dict[str, Any]]
) -> None:
    with running(Faults(absent_token=mode), seed({"u": PROFILE})) as client:
        answer = client.delete("u", {"push": ["p1", "gone"], "inapp": ["also-gone"]})
        assert answer.status == status
        assert answer.body == (NO_CHANNEL if status == 400 else MODIFIED)
        assert client.channel("u")["push"] == push


@pytest.mark.parametrize(
    ("mode", "push"),
    [
        ("update", [{"token": "p1", "integration_id": "I9", "status": 0},
                    {"token": "p2", "status": 1}]),
        ("duplicate", [{"token": "p1", "status": 1}, {"token": "p2", "status": 1},
                       {"token": "p1", "integration_id": "I9", "status": 0}]),
        ("ignore", PROFILE["push"]),
        ("merge", [{"token": "p1", "integration_id": "I9", "status": 0},
                   {"token": "p2", "status": 1}]),
    ],
)
def test_resend_token_decides_a_patch_re_sending_a_held_token(
    mode: str, push: list[dict[str, Any]]
) -> None:
    with running(Faults(resend_token=mode), seed({"u": PROFILE})) as client:
        answer = client.patch("u", {"push": [{"token": "p1", "integration_id": "I9", "status": 0}]})
        assert (answer.status, answer.body) == (200, MODIFIED)
        assert client.channel("u")["push"] == push


@pytest.mark.parametrize(
    ("mode", "first"),
    [("update", {"token": "p1", "status": 1}),
     ("ignore", {"token": "p1", "integration_id": "I1", "status": 0}),
     ("merge", {"token": "p1", "integration_id": "I1", "status": 1})],
)
def test_resend_token_without_integration_id_over_http(mode: str, first: dict[str, Any]) -> None:
    held = {"push": [{"token": "p1", "integration_id": "I1", "status": 0}]}
    with running(Faults(resend_token=mode), seed({"u": held})) as client:
        assert client.patch("u", {"push": [{"token": "p1", "status": 1}]}).status == 200
        assert client.channel("u")["push"] == [first]
        assert client.get("u").body["channel"]["push"] == [first]
        (entry, _) = client.log()
        assert entry["performed"] is True


def test_empty_channels_omit_leaves_them_out_of_get() -> None:
    with running(Faults(empty_channels="omit"), seed({"u": {"email": "a@example.com"}})) as c:
        assert c.get("u").body["channel"] == {"email": "a@example.com"}


def test_empty_channels_empty_shows_every_channel_with_an_empty_value() -> None:
    with running(Faults(empty_channels="empty"), seed({"u": {"email": "a@example.com"}})) as c:
        channel = c.get("u").body["channel"]
        assert channel == {
            "email": "a@example.com", "sms": "", "whatsapp": "", "voice": "", "slack": "",
            "discord": "", "teams": "", "push": [], "inapp": [],
        }
        assert c.channel("u") == {"email": "a@example.com"}


@pytest.mark.parametrize(
    "fields",
    [{"error_rate": 1.5}, {"throttle_rate": -0.1}, {"delete_empty": "sometimes"},
     {"absent_token": "update"}, {"resend_token": "fail"}, {"empty_channels": "null"},
     {"max_rps": -1}, {"seed": 1.5}, {"latency_ms": float("nan")},
     {"retry_after": float("inf")}, {"success_message": "sdk-ish"}, {"gateway": 403},
     {"gateway": "500"}, {"gateway_paths": "GET"}, {"malformed": "json"},
     {"malformed_paths": "none"}, {"malformed_rate": 1.1}, {"reset_rate": -0.5},
     {"reset_rate": True}, {"trickle_seconds": -1}, {"trickle_seconds": float("inf")},
     {"malformed": "no-channel", "malformed_paths": "writes"}, {"phone_format": "e164"}],
)
def test_faults_refuse_values_outside_their_range(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Faults(**fields)


NEW_SWITCHES: dict[str, Any] = {
    "resend_token": "merge", "success_message": "sdk", "gateway": "404",
    "gateway_paths": "writes", "malformed": "trickle", "malformed_paths": "all",
    "malformed_rate": 0.5, "trickle_seconds": 0.2, "reset_rate": 0.1, "retry_after": 172800,
    "phone_format": "international",
}


def test_the_new_switches_default_to_todays_behaviour() -> None:
    defaults = Faults()
    assert (defaults.resend_token, defaults.success_message, defaults.gateway,
            defaults.gateway_paths, defaults.malformed, defaults.malformed_paths,
            defaults.malformed_rate, defaults.trickle_seconds, defaults.reset_rate,
            defaults.phone_format) == (
        "update", "documented", "none", "all", "none", "reads", 1, 1, 0, "as-sent")


def test_every_new_switch_is_set_and_read_back_over_put_faults() -> None:
    with running() as client:
        client.set_faults(**NEW_SWITCHES)
        current = client.request("GET", "/_sandbox/faults", key=None).body
        assert current == {**Faults().to_json(), **NEW_SWITCHES}
        assert Faults.from_json(current) == Faults(**NEW_SWITCHES)


# -- concurrency and the store -----------------------------------------------------------------


def test_latency_does_not_serialise_concurrent_connections() -> None:
    with running(Faults(latency_ms=50), seed({"u": PROFILE})) as first:
        port = first.port
        done: list[int] = []

        def worker() -> None:
            client = Client(port)
            done.extend(client.get("u").status for _ in range(8))
            client.close()

        threads = [threading.Thread(target=worker) for _ in range(16)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    # 128 requests of 50 ms each: 6.4 s one at a time, 0.4 s across 16 connections
    assert done == [200] * 128
    assert elapsed < 2.0


def test_concurrent_token_writes_to_one_profile_are_all_kept() -> None:
    with running(seed_data=seed({"u": {}})) as first:
        port = first.port

        def worker(n: int) -> None:
            client = Client(port)
            for i in range(10):
                assert client.patch("u", {"push": [{"token": f"t{n}-{i}"}]}).status == 200
            client.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        tokens = [token["token"] for token in first.channel("u")["push"]]
        assert sorted(tokens) == sorted(f"t{n}-{i}" for n in range(16) for i in range(10))


# -- as a separate process ---------------------------------------------------------------------

SERVE = """
import json, sys
from reconciler.sandbox import Faults, SandboxConfig, serve_forever
serve_forever(SandboxConfig(api_key=sys.argv[1], seed_data=json.loads(sys.argv[2]),
                            faults=Faults(delete_empty="succeed")))
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_forever_runs_as_a_process_and_stops_cleanly_on_a_signal(
    stop_signal: signal.Signals,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, KEY, json.dumps(seed({"u": PROFILE}))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Sandbox listening on http://127.0.0.1:")
        assert line.rstrip().endswith("/v1")
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        client = Client(port)
        assert client.get("u").body["channel"] == PROFILE
        answer = client.delete("u", {"channel": ["sms", "whatsapp"]})
        assert answer.status == 200  # the faults given reached the process
        client.close()
        idle = Client(port)
        idle.get("u")  # an idle keep-alive connection must not hold up the exit
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=10)
        idle.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_the_log_names_the_profile_of_a_refused_request() -> None:
    with running(Faults(throttle_rate=1.0), seed({"u": PROFILE})) as client:
        client.patch("a/b", {"sms": "+1"})
        (entry,) = client.log()
        assert (entry["distinct_id"], entry["status"], entry["performed"]) == ("a/b", 429, False)
