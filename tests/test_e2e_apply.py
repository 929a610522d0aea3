"""End to end: the CLI as a process against the sandbox as a process, under every fault.

After each run the same three things must hold: the server holds exactly what the
configuration declares, the state records exactly what the server holds, and the audit
ledger verifies. A run may fail under harsh faults, but then with a clear summary, a state
that is still true, and a rerun that converges. Every test runs on both state backends (files,
PostgreSQL: the `store` fixture).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from ledgers import ledger_records
from sandboxproc import (
    API_KEY,
    WORKSPACE,
    Run,
    SandboxProcess,
    reconciler,
    recorded_state,
    seed_state,
    start_apply,
    state_option,
    state_snapshot,
    write_config,
    writes_repeated_without_read_back,
)
from stores import Store

from reconciler.model import ChannelData

pytestmark = pytest.mark.usefixtures("store")

HOSTILE_IDS = ["a/b", "../x", "a?b#c", "%2F", "x y", "ünï"]

RECORDED: dict[str, Any] = {
    "p-patch": {"email": "old@example.com", "push": [{"token": "t1"}]},
    "p-multi": {"sms": "+15550000001", "email": "multi@example.com", "teams": "general"},
    "p-tokens": {"push": [{"token": "a"}, {"token": "b"}, {"token": "c"}],
                 "inapp": [{"token": "i1"}, {"token": "i2"}]},
    "p-rotate": {"push": [{"token": "fcm_token:old"}]},
    "p-status": {"push": [{"token": "fcm_token:x", "status": 1}]},
    "p-gone": {"sms": "+15550000002", "push": [{"token": "g"}]},
    **{f"p-{i:02d}": {"email": f"u{i}@old.example.com"} for i in range(16)},
    **{name: {"email": "hostile@old.example.com"} for name in HOSTILE_IDS},
}
DESIRED: dict[str, Any] = {
    "p-patch": {"email": "new@example.com", "sms": "+15550000003",
                "push": [{"token": "t1"}, {"token": "t2", "integration_id": "I1"}]},
    "p-multi": {},
    "p-tokens": {"push": ["a"], "inapp": ["i1"]},
    "p-rotate": {"push": ["fcm_token:new"]},
    "p-status": {"push": [{"token": "fcm_token:x", "status": 0}]},
    "p-new": {"email": "new-profile@example.com"},
    **{f"p-{i:02d}": {"email": f"u{i}@example.com"} for i in range(16)},
    **{name: {"email": "hostile@example.com"} for name in HOSTILE_IDS},
}


def drifted(recorded: dict[str, Any]) -> dict[str, Any]:
    """The server lost some of what the state records, behind the reconciler's back."""
    server = json.loads(json.dumps(recorded))
    del server["p-multi"]["teams"]
    server["p-tokens"]["push"] = [{"token": "a"}, {"token": "c"}]
    del server["p-gone"]["sms"]
    return server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_config(tmp_path / "profiles.yaml", DESIRED)
    seed_state(tmp_path, RECORDED)
    return tmp_path


def start(workdir: Path, *args: str, server: dict[str, Any] | None = None) -> SandboxProcess:
    seed = workdir / "seed.json"
    seed.write_text(json.dumps({"FYE2E00001": {"live": RECORDED if server is None
                                               else server}}))
    return SandboxProcess(*args, seed=seed)


def normal(channel: dict[str, Any]) -> dict[str, Any]:
    """Channel data compared by meaning: defaults filled in, token order ignored."""
    data = ChannelData.from_json(channel)
    return {name: value if isinstance(value, str) else sorted(value)
            for name, value in data.channels.items()}


def state_of(workdir: Path) -> dict[str, Any]:
    return recorded_state(workdir)


def assert_state_is_true(workdir: Path, sandbox: SandboxProcess) -> None:
    """Every profile the state records holds exactly that on the server, unless the state
    itself says it is unsure (unconfirmed)."""
    state = state_of(workdir)
    server = sandbox.data()
    unsure = set(state.get("unconfirmed", ()))
    for name, channel in state["profiles"].items():
        if name not in unsure:
            assert normal(server.get(name, {})) == normal(channel), name


def assert_converged(workdir: Path, sandbox: SandboxProcess) -> None:
    server = sandbox.data()
    for name, channel in DESIRED.items():
        expected = {key: [item if isinstance(item, dict) else {"token": item} for item in value]
                    if isinstance(value, list) else value for key, value in channel.items()}
        assert normal(server.get(name, {})) == normal(expected), name
    assert normal(server.get("p-gone", {})) == {}
    state = state_of(workdir)
    assert "p-gone" not in state["profiles"]
    assert not state.get("unconfirmed")
    assert_state_is_true(workdir, sandbox)
    verified = reconciler("audit", "verify", cwd=workdir)
    assert verified.code == 0, verified.output
    again = reconciler("plan", "profiles.yaml", "--detailed-exitcode", cwd=workdir,
                       sandbox=sandbox)
    assert again.code == 0, again.output


def apply_until_converged(workdir: Path, sandbox: SandboxProcess, runs: int = 3) -> Run:
    for _ in range(runs):
        result = reconciler("apply", "profiles.yaml", "--auto-approve",
                            "--max-delete-percent", "100", cwd=workdir, sandbox=sandbox)
        assert "Traceback" not in result.output
        if result.code == 0:
            return result
        assert result.code == 1, result.output
        assert "failed" in result.output  # a clear summary of what failed
        assert_state_is_true(workdir, sandbox)
    raise AssertionError(f"no convergence after {runs} runs:\n{result.output}")


FAULTS = {
    "no-fault": [],
    "latency": ["--latency-ms", "20"],
    "server-errors": ["--error-rate", "0.3", "--fault-seed", "3"],
    "throttling": ["--throttle-rate", "0.4", "--retry-after", "0.05", "--fault-seed", "4"],
    "lost-answers": ["--lose-rate", "0.4", "--fault-seed", "5"],
    "rate-limit": ["--max-rps", "40", "--retry-after", "0.05"],
}
UNKNOWNS = {
    "delete-empty-fail-whole": ["--delete-empty", "fail-whole"],
    "delete-empty-fail-partial": ["--delete-empty", "fail-partial"],
    "delete-empty-succeed": ["--delete-empty", "succeed"],
    "absent-token-fail": ["--absent-token", "fail"],
    "absent-token-succeed": ["--absent-token", "succeed"],
    "resend-token-duplicate": ["--resend-token", "duplicate"],
    "empty-channels-shown": ["--empty-channels", "empty"],
}


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_mode_converges(workdir: Path, sandboxes: list[SandboxProcess],
                                    fault: str) -> None:
    sandbox = start(workdir, *FAULTS[fault])
    sandboxes.append(sandbox)
    apply_until_converged(workdir, sandbox)
    assert_converged(workdir, sandbox)
    assert writes_repeated_without_read_back(sandbox.log()) == []


@pytest.mark.parametrize("switch", UNKNOWNS)
def test_every_unknown_behaviour_converges_under_drift(
        workdir: Path, sandboxes: list[SandboxProcess], switch: str) -> None:
    sandbox = start(workdir, *UNKNOWNS[switch], server=drifted(RECORDED))
    sandboxes.append(sandbox)
    apply_until_converged(workdir, sandbox)
    assert_converged(workdir, sandbox)


def test_lost_answer_on_a_multi_channel_delete_is_read_back(
        workdir: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir, "--lose-rate", "1")
    sandboxes.append(sandbox)
    result = apply_until_converged(workdir, sandbox, runs=1)
    assert result.code == 0
    log = [entry for entry in sandbox.log() if entry["distinct_id"] == "p-multi"]
    assert [(entry["method"], entry["lost"]) for entry in log] == [("POST", True), ("GET", False)]
    assert_converged(workdir, sandbox)


def test_drift_the_server_lacks_what_the_state_records(
        workdir: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir, server=drifted(RECORDED))
    sandboxes.append(sandbox)
    apply_until_converged(workdir, sandbox, runs=1)
    assert_converged(workdir, sandbox)
    operations = [record["operation"] for record in ledger_records(workdir)]
    assert "read_back" in operations


def test_401_stops_at_once_and_leaves_the_state_unchanged(
        workdir: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir)
    sandboxes.append(sandbox)
    before = state_snapshot(workdir)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--parallelism", "4",
                        "--max-delete-percent", "100", cwd=workdir, sandbox=sandbox,
                        key="wrong-key")
    assert result.code == 1
    assert "401" in result.output and "FYNO_API_KEY" in result.output
    assert len(sandbox.log()) <= 4  # the calls already in flight, and not one more
    assert state_snapshot(workdir) == before
    assert "wrong-key" not in result.output


def test_a_missing_key_is_refused_before_any_plan_is_shown(workdir: Path) -> None:
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=workdir, key=None)
    assert result.code == 1
    assert "FYNO_API_KEY is not set" in result.output
    assert "Plan:" not in result.output


def test_without_a_terminal_apply_needs_auto_approve(workdir: Path,
                                                     sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir)
    sandboxes.append(sandbox)
    result = reconciler("apply", "profiles.yaml", cwd=workdir, sandbox=sandbox)
    assert result.code == 1 and "--auto-approve" in result.output
    assert sandbox.log() == []


def test_saved_plan_is_applied_exactly_and_refused_when_stale_or_edited(
        workdir: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir)
    sandboxes.append(sandbox)
    planned = reconciler("plan", "profiles.yaml", "--out", "plan.json",
                         "--max-delete-percent", "100", cwd=workdir)
    assert planned.code == 0, planned.output
    edited = workdir / "edited.json"
    text = (workdir / "plan.json").read_text()
    assert "@example.com" in text
    edited.write_text(text.replace("@example.com", "@mallory.example.com", 1))
    refused = reconciler("apply", "edited.json", cwd=workdir, sandbox=sandbox)
    assert refused.code == 1 and "edited" in refused.output
    removed = reconciler("state", "rm", "p-00", *state_option("state/FYE2E00001-live.json"),
                         cwd=workdir, extra_env={"FYNO_WSID": WORKSPACE})
    assert removed.code == 0, removed.output
    stale = reconciler("apply", "plan.json", cwd=workdir, sandbox=sandbox)
    assert stale.code == 1 and "stale" in stale.output and "plan --out" in stale.output
    assert sandbox.log() == []
    fresh = reconciler("plan", "profiles.yaml", "--out", "plan.json",
                       "--max-delete-percent", "100", cwd=workdir)
    assert fresh.code == 0
    applied = reconciler("apply", "plan.json", cwd=workdir, sandbox=sandbox)
    assert applied.code == 0, applied.output
    assert sandbox.data()["p-01"] == {"email": "u1@example.com"}


def test_a_second_concurrent_apply_is_refused_naming_the_holder(
        workdir: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir, "--latency-ms", "400")
    sandboxes.append(sandbox)
    first = start_apply(workdir, sandbox, "--parallelism", "1")
    try:
        deadline = time.monotonic() + 20
        while not sandbox.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=workdir,
                            sandbox=sandbox)
        assert second.code == 1
        assert f"pid {first.pid}" in second.output and "'apply'" in second.output
    finally:
        first.kill()
        first.wait()


def test_hostile_distinct_ids_reach_the_server_intact(
        workdir: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir)
    sandboxes.append(sandbox)
    apply_until_converged(workdir, sandbox, runs=1)
    server = sandbox.data()
    for name in HOSTILE_IDS:
        assert server[name] == {"email": "hostile@example.com"}, name
    assert {entry["distinct_id"] for entry in sandbox.log()} >= set(HOSTILE_IDS)


def test_the_api_key_is_in_no_file_and_no_output(workdir: Path, sandboxes: list[SandboxProcess],
                                                 store: Store) -> None:
    sandbox = start(workdir, "--lose-rate", "0.3", "--error-rate", "0.2")
    sandboxes.append(sandbox)
    outputs = [apply_until_converged(workdir, sandbox).output]
    outputs.append(reconciler("plan", "profiles.yaml", "--out", "plan.json",
                              cwd=workdir).output)
    outputs.append(reconciler("audit", "--format", "json", cwd=workdir).output)
    outputs.append(reconciler("apply", "profiles.yaml", "--auto-approve", cwd=workdir,
                              sandbox=sandbox, key="another-secret-key").output)
    for text in outputs:
        assert API_KEY not in text and "another-secret-key" not in text
    for path in workdir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert API_KEY.encode() not in content, path
            assert b"another-secret-key" not in content, path
    stored = store.kept_elsewhere(workdir)  # the database's rows, on PostgreSQL
    assert API_KEY.encode() not in stored and b"another-secret-key" not in stored


@pytest.mark.parametrize(("stop", "code", "said"), [
    (signal.SIGINT, 130, "Error: interrupted: the calls that finished are recorded"),
    # A cancelled CI job: the same clean stop, told as what it was.
    (signal.SIGTERM, 143, "Error: terminated (SIGTERM): the calls that finished are recorded"),
], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_new_calls_and_records_finished_ones(
        workdir: Path, sandboxes: list[SandboxProcess], stop: signal.Signals, code: int,
        said: str) -> None:
    sandbox = start(workdir, "--latency-ms", "150")
    sandboxes.append(sandbox)
    process = start_apply(workdir, sandbox, "--parallelism", "2", output=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while len(sandbox.log()) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stdout + stderr
    assert said in stderr and "Traceback" not in stderr
    made = sum(1 for entry in sandbox.log() if entry["method"] != "GET")
    assert 0 < made < 30  # it stopped starting new calls
    # The summary counts the planned calls made and left, and the rate of those made.
    summary = re.search(r"Apply stopped: (\d+) of (\d+) planned calls made, (\d+) left, .*"
                        r"\(([\d.]+) calls/s", stdout)
    assert summary, stdout
    done, planned, left, rate = summary.groups()
    assert int(done) + int(left) == int(planned) and 0 < int(done) <= made
    assert float(rate) > 0
    state = state_of(workdir)
    # The calls in flight finished and were recorded; only a call whose answer was in doubt
    # when the stop came (no read-back started after Ctrl-C) may leave its profile
    # unconfirmed, at most one per request in flight.
    unsure = state.get("unconfirmed", [])
    assert len(unsure) <= 2, unsure
    assert_state_is_true(workdir, sandbox)
    apply_until_converged(workdir, sandbox, runs=1)
    assert_converged(workdir, sandbox)


def test_rate_limits_the_calls_per_second(workdir: Path,
                                          sandboxes: list[SandboxProcess]) -> None:
    sandbox = start(workdir)
    sandboxes.append(sandbox)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--rate", "20",
                        "--max-delete-percent", "100", cwd=workdir, sandbox=sandbox)
    assert result.code == 0, result.output
    times = sorted(entry["time"] for entry in sandbox.log())
    assert len(times) >= 25
    # The client starts a call every 50 ms; the server sees each when it arrives, a few ms
    # to tens of ms later on a loaded machine. So a one-second window may hold 20 calls plus
    # the one that opens it plus one that arrived late: never more (no limit at all, or
    # twice the rate, would put all 25 or 40 there). And the whole run cannot be faster
    # than the rate allows.
    for index, start_time in enumerate(times):
        in_window = [moment for moment in times[index:] if moment < start_time + 1.0]
        assert len(in_window) <= 22, (index, len(in_window))
    assert times[-1] - times[0] >= (len(times) - 1) / 20 - 0.1


def test_a_recorded_profile_without_data_leaves_the_state_without_a_call(
        workdir: Path, sandboxes: list[SandboxProcess]) -> None:
    recorded = {**RECORDED, "p-empty": {}}
    seed_state(workdir, recorded)
    sandbox = start(workdir)
    sandboxes.append(sandbox)
    apply_until_converged(workdir, sandbox, runs=1)
    assert "p-empty" not in state_of(workdir)["profiles"]
    assert all(entry["distinct_id"] != "p-empty" for entry in sandbox.log())
    operations = {record["distinct_id"]: record["operation"]
                  for record in ledger_records(workdir)}
    assert operations["p-empty"] == "forget"
