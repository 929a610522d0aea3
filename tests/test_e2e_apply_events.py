"""End to end: `apply --format json` is a stream of JSON objects, one per line: the plan,
each request with its outcome, read-backs, failures and a summary, as Terraform's
`apply -json` gives; stdout holds nothing else, and no personal value unless asked. On both
state backends (files, PostgreSQL: the `store` fixture)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ledgers import ledger_records
from sandboxproc import (
    SandboxProcess,
    reconciler,
    seed_state,
    start_apply,
    state_snapshot,
    write_config,
)

pytestmark = pytest.mark.usefixtures("store")

RECORDED = {f"p-{i}": {"email": f"p{i}@old.example.com", "push": [{"token": f"tok-{i}-a"}]}
            for i in range(6)}
DESIRED = {f"p-{i}": {"email": f"p{i}@new.example.com"} for i in range(6)}


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def setup(workdir: Path, sandboxes: list[SandboxProcess], *faults: str) -> SandboxProcess:
    seed_state(workdir, RECORDED)
    write_config(workdir / "profiles.yaml", DESIRED)
    sandbox = SandboxProcess.seeded(workdir, RECORDED, *faults)
    sandboxes.append(sandbox)
    return sandbox


def test_the_stream_has_the_plan_every_request_and_a_summary(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = setup(tmp_path, sandboxes, "--lose-rate", "0.5", "--fault-seed", "4")
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--format", "json",
                        "--max-delete-percent", "100", cwd=tmp_path, sandbox=sandbox)
    assert result.code == 0, result.output
    stream = events(result.stdout)
    assert stream[0]["type"] == "plan" and stream[0]["calls"] == 12
    assert stream[-1]["type"] == "summary"
    assert stream[-1]["made"] == 12 and stream[-1]["failed"] == 0 and stream[-1]["stopped"] is None
    assert all("time" in event for event in stream)
    requests = [event for event in stream if event["type"] == "request"]
    ledger = ledger_records(tmp_path)
    # One event per request the ledger records, with the same id and outcome.
    assert sorted((event["request_id"], event["outcome"]) for event in requests) == sorted(
        (record["request_id"], record["outcome"]) for record in ledger if record.get("outcome"))
    assert {event["outcome"] for event in requests} >= {"ok", "unknown"}
    settled = {request_id for event in stream if event["type"] == "read_back"
               for request_id in event.get("settles", ())}
    assert {event["request_id"] for event in requests if event["outcome"] == "unknown"} <= settled
    # Masked: no e-mail address or token in the stream; the prose went to stderr.
    assert "example.com" not in result.stdout.replace("•••@new.example.com", "").replace(
        "•••@old.example.com", "")
    assert "tok-1-a" not in result.stdout
    assert "Apply complete" in result.stderr and "Apply complete" not in result.stdout


def test_show_values_puts_the_request_bodies_in_the_stream(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = setup(tmp_path, sandboxes)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--format", "json",
                        "--show-values", "--max-delete-percent", "100", cwd=tmp_path,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    bodies = [event["request"] for event in events(result.stdout) if event["type"] == "request"]
    assert {"channel": {"email": "p1@new.example.com"}} in bodies


def test_a_run_that_stops_ends_the_stream_with_an_error_event(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = setup(tmp_path, sandboxes, "--gateway", "404")
    before = state_snapshot(tmp_path)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--format", "json",
                        "--max-delete-percent", "100", cwd=tmp_path, sandbox=sandbox)
    assert result.code == 1
    stream = events(result.stdout)
    assert [event["type"] for event in stream] == ["plan", "error"]
    assert stream[-1]["exit_code"] == 1 and "404" in stream[-1]["message"]
    assert state_snapshot(tmp_path) == before


def test_json_cannot_ask_for_yes(tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = setup(tmp_path, sandboxes)
    result = reconciler("apply", "profiles.yaml", "--format", "json", cwd=tmp_path,
                        sandbox=sandbox)
    assert result.code == 1
    assert events(result.stdout)[-1]["type"] == "error"
    assert "--auto-approve" in result.stderr
    assert sandbox.log() == []


def test_a_reader_that_goes_away_does_not_stop_the_run_half_way(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    """`apply --format json | head -1`: the reader leaves with every call still to make. The
    run goes on unseen to its end and records it, then exits 1 saying why on stderr."""
    recorded = {f"p-{i:02d}": {"email": f"p{i}@old.example.com"} for i in range(30)}
    seed_state(tmp_path, recorded)
    write_config(tmp_path / "profiles.yaml",
                 {name: {"email": f"{name}@new.example.com"} for name in recorded})
    sandbox = SandboxProcess.seeded(tmp_path, recorded, "--latency-ms", "20")
    sandboxes.append(sandbox)
    with (tmp_path / "stderr.txt").open("w") as errors:
        process = start_apply(tmp_path, sandbox, "--format", "json", "--parallelism", "2",
                              output=subprocess.PIPE, errors=errors)
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["type"] == "plan"
        process.stdout.close()  # before the first request's event: 30 calls still to make
        code = process.wait(timeout=120)
    stderr = (tmp_path / "stderr.txt").read_text()
    assert code == 1, stderr
    assert "Apply complete: 30 of 30 planned calls made" in stderr
    assert "the reader of standard output went away" in stderr and "Traceback" not in stderr
    assert {name: channel["email"] for name, channel in sandbox.data().items()} == {
        name: f"{name}@new.example.com" for name in recorded}
    after = reconciler("plan", "profiles.yaml", cwd=tmp_path, sandbox=sandbox)
    assert after.code == 0 and "No changes" in after.stdout, after.output
    assert len([record for record in ledger_records(tmp_path)
                if record.get("outcome") == "ok"]) == 30
