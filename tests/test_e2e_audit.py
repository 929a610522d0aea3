"""End to end: the audit ledger tells the whole truth. Every request that may have changed
the server is on record, whatever came back, one record per request the sandbox saw; a
read-back says what it settled; drift is only what no call of ours explains. On both state
backends (files, PostgreSQL: the `store` fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ledgers import ledger_records
from sandboxproc import (
    WORKSPACE,
    SandboxProcess,
    reconciler,
    recorded_state,
    seed_state,
    state_option,
    write_config,
)

pytestmark = pytest.mark.usefixtures("store")

STATE = Path("state") / "FYE2E00001-live.json"
RECORDED = {f"p-{i:02d}": {"sms": f"+1555000{i:04d}", "email": f"p{i}@old.example.com",
                           "push": [{"token": f"t-{i}-a"}, {"token": f"t-{i}-b"}]}
            for i in range(12)}
DESIRED = {f"p-{i:02d}": {"email": f"p{i}@new.example.com", "push": [f"t-{i}-a"]}
           for i in range(12)}


def ledger(workdir: Path) -> list[dict[str, Any]]:
    return ledger_records(workdir)


def start(workdir: Path, sandboxes: list[SandboxProcess], server: dict[str, Any],
          *faults: str) -> SandboxProcess:
    sandbox = SandboxProcess.seeded(workdir, server, *faults)
    sandboxes.append(sandbox)
    return sandbox


def write_state_in_doubt(workdir: Path, recorded: dict[str, Any],
                         doubts: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """A state an earlier run left with p-1 unconfirmed: with the requests in doubt, when
    given (as a killed run's journal leaves them), or without (an older state)."""
    seed_state(workdir, recorded, unconfirmed=["p-1"], **({"doubts": doubts} if doubts else {}))


def apply_until_converged(workdir: Path, sandbox: SandboxProcess) -> None:
    for _ in range(4):
        result = reconciler("apply", "profiles.yaml", "--auto-approve", "--max-delete-percent",
                            "100", cwd=workdir, sandbox=sandbox)
        assert "Traceback" not in result.output
        if result.code == 0:
            return
    raise AssertionError(result.output)


def assert_every_write_is_on_record_once(workdir: Path, sandbox: SandboxProcess) -> None:
    """Match the sandbox's writes (all but 429s: those changed nothing) with the ledger's
    write records, one to one, by method, path and body."""
    seen = [(entry["method"], entry["path"].split("/live", 1)[1], json.dumps(
        entry["body"], sort_keys=True)) for entry in sandbox.log()
        if entry["method"] != "GET" and entry["status"] != 429]
    recorded = [(record["method"], record["path"], json.dumps(record["request"], sort_keys=True))
                for record in ledger(workdir) if record.get("outcome")]
    assert sorted(seen) == sorted(recorded)


@pytest.mark.parametrize("faults", [["--lose-rate", "1"],
                                    ["--error-rate", "0.4", "--fault-seed", "7"],
                                    ["--lose-rate", "0.4", "--error-rate", "0.2",
                                     "--fault-seed", "3"]])
def test_every_write_the_server_saw_is_on_record(tmp_path: Path,
                                                 sandboxes: list[SandboxProcess],
                                                 faults: list[str]) -> None:
    seed_state(tmp_path, RECORDED)
    write_config(tmp_path / "profiles.yaml", DESIRED)
    sandbox = start(tmp_path, sandboxes, RECORDED, *faults)
    apply_until_converged(tmp_path, sandbox)
    assert_every_write_is_on_record_once(tmp_path, sandbox)
    records = ledger(tmp_path)
    unknown = [(index, record) for index, record in enumerate(records)
               if record.get("outcome") == "unknown"]
    assert unknown
    # Each is settled by a later read-back that names it: the one that followed it, or
    # (when that read-back failed too) the next run's, which reads the profile back first.
    for index, record in unknown:
        assert any(record["request_id"] in later.get("settles", ())
                   and later["distinct_id"] == record["distinct_id"]
                   for later in records[index + 1:]), record
    assert all(record.get("found") in ("landed", "not_landed", "landed_partly")
               for record in records if record.get("settles"))
    assert not [record for record in records if record["operation"] == "drift"]
    verified = reconciler("audit", "verify", cwd=tmp_path)
    assert verified.code == 0, verified.output


def test_a_crash_between_two_calls_of_a_profile_is_not_drift(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    # The run died after its PATCH reached the server and before its delete: the state
    # still records the old email and the profile is unconfirmed.
    before = {"p-1": {"email": "old@example.com", "sms": "+15550001"}}
    landed = {"p-1": {"email": "new@example.com", "sms": "+15550001"}}
    write_state_in_doubt(tmp_path, before)
    write_config(tmp_path / "profiles.yaml", {"p-1": {"email": "new@example.com"}})
    sandbox = start(tmp_path, sandboxes, landed)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    assert "changed outside reconciler" not in result.output
    assert [record["operation"] for record in ledger(tmp_path)] == [
        "read_back", "delete_channels"]


def test_a_request_the_killed_run_never_recorded_is_put_on_record_and_settled(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    # The run died after its PATCH reached the server and before its answer was recorded:
    # the journal, folded into the state, holds the request; the ledger does not.
    before = {"p-1": {"email": "old@example.com", "sms": "+15550001"}}
    patch = {"request_id": "ab" * 16, "operation": "patch_channel", "changes": [
        {"channel": "email", "before": "old@example.com", "after": "new@example.com"}]}
    write_state_in_doubt(tmp_path, before, {"p-1": [patch]})
    write_config(tmp_path / "profiles.yaml", {"p-1": {"email": "new@example.com"}})
    sandbox = start(tmp_path, sandboxes, {"p-1": {"email": "new@example.com",
                                                  "sms": "+15550001"}})
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    records = ledger(tmp_path)
    assert [record["operation"] for record in records] == [
        "patch_channel", "read_back", "delete_channels"]
    lost, read_back, _ = records
    assert (lost["method"], lost["path"], lost["request"], lost["outcome"]) == (
        "PATCH", "/profiles/p-1/channel", {"channel": {"email": "new@example.com"}}, "unknown")
    assert lost["request_id"] == "ab" * 16
    assert read_back["settles"] == ["ab" * 16] and read_back["found"] == "landed"
    # Run again: the request is on record once, never twice.
    again = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                       sandbox=sandbox)
    assert again.code == 0, again.output
    assert len(ledger(tmp_path)) == 3


@pytest.mark.parametrize("command", [["refresh", "profiles.yaml"], ["state", "rm", "p-1"]],
                         ids=["refresh", "state-rm"])
def test_other_commands_that_settle_a_doubt_put_its_request_on_record_first(
        tmp_path: Path, sandboxes: list[SandboxProcess], command: list[str]) -> None:
    before = {"p-1": {"email": "old@example.com"}}
    delete = {"request_id": "cd" * 16, "operation": "delete_channels", "changes": [
        {"channel": "email", "before": "old@example.com", "after": None}]}
    write_state_in_doubt(tmp_path, before, {"p-1": [delete]})
    write_config(tmp_path / "profiles.yaml", {"p-1": {}})
    sandbox = start(tmp_path, sandboxes, {"p-1": {}})  # the delete landed
    env = {}
    if command[0] == "state":  # the state of FYNO_WSID: the file --state names, or a database's
        command, env = [*command, *state_option(STATE)], {"FYNO_WSID": WORKSPACE}
    result = reconciler(*command, cwd=tmp_path, sandbox=sandbox, extra_env=env)
    assert result.code == 0, result.output
    records = ledger(tmp_path)
    assert records[0]["operation"] == "delete_channels"
    assert records[0]["request"] == {"channel": ["email"]}
    assert records[0]["outcome"] == "unknown" and records[0]["request_id"] == "cd" * 16
    assert "drift" not in [record["operation"] for record in records]
    if command[0] == "refresh":
        assert records[1]["settles"] == ["cd" * 16] and records[1]["found"] == "landed"
    state = recorded_state(tmp_path)
    assert "doubts" not in state and "unconfirmed" not in state


def test_a_change_behind_the_tools_back_is_drift(tmp_path: Path,
                                                 sandboxes: list[SandboxProcess]) -> None:
    write_state_in_doubt(tmp_path, {"p-1": {"email": "a@example.com", "sms": "+15550001"}})
    write_config(tmp_path / "profiles.yaml", {"p-1": {"email": "a@example.com"}})
    sandbox = start(tmp_path, sandboxes, {"p-1": {"email": "someone@else.example.com",
                                                  "sms": "+15550001"}})
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    assert "drift" in [record["operation"] for record in ledger(tmp_path)]


CI = {"RECONCILER_ACTOR": "", "GITHUB_ACTOR": "octocat", "GITHUB_SHA": "abc123",
      "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "team/profiles",
      "GITHUB_RUN_ID": "42"}


def test_changes_made_without_a_call_are_on_record_with_who_and_where(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    server = {"u-1": {"email": "one@example.com"}, "u-2": {"email": "two@example.com"}}
    sandbox = start(tmp_path, sandboxes, server)
    write_config(tmp_path / "profiles.yaml", {**server, "u-3": {"email": "three@example.com"}})

    imported = reconciler("import", "profiles.yaml", cwd=tmp_path, sandbox=sandbox,
                          extra_env=CI)
    assert imported.code == 0, imported.output
    sandbox.put_data({**server, "u-1": {"email": "changed@example.com"}})
    refreshed = reconciler("refresh", "profiles.yaml", cwd=tmp_path, sandbox=sandbox,
                           extra_env=CI)
    assert refreshed.code == 0, refreshed.output
    removed = reconciler("state", "rm", "u-2", *state_option(STATE), cwd=tmp_path,
                         extra_env={**CI, "FYNO_WSID": WORKSPACE})
    assert removed.code == 0, removed.output

    records = ledger(tmp_path)
    facts = [(record["operation"], record["distinct_id"]) for record in records]
    assert facts == [("import", "u-1"), ("import", "u-2"), ("import", "u-3"), ("drift", "u-1"),
                     ("state_rm", "u-2")]
    assert records[2]["message"].startswith("not found on the server")
    assert records[3]["before"] == {"email": "one@example.com"}
    assert records[3]["after"] == {"email": "changed@example.com"}
    assert all(is_from_ci(record) for record in records)
    assert reconciler("audit", "verify", cwd=tmp_path).code == 0


def is_from_ci(record: dict[str, Any]) -> bool:
    return (record["actor"] == "octocat" and record["commit"] == "abc123"
            and record["pipeline"] == "https://github.example/team/profiles/actions/runs/42")


@pytest.mark.file_only("a stale lock file is the file backend's: PostgreSQL's advisory lock "
                       "is freed with its holder's session, and `state unlock` finds no lock")
def test_a_forced_unlock_of_a_stale_lock_file_is_on_record_with_who_and_where(
        tmp_path: Path) -> None:
    seed_state(tmp_path, {"u-1": {"email": "one@example.com"}})
    (tmp_path / "state" / "FYE2E00001-live.json.lock").write_text(json.dumps(
        {"pid": 999999999, "host": "elsewhere", "command": "apply",
         "started_at": "2026-01-01T00:00:00Z"}))
    unlocked = reconciler("state", "unlock", "--force", "--state", str(STATE), cwd=tmp_path,
                          extra_env=CI)
    assert unlocked.code == 0, unlocked.output
    (record,) = ledger(tmp_path)
    assert (record["operation"], record["distinct_id"]) == ("unlock", None)
    assert "elsewhere" in record["message"]
    assert is_from_ci(record)
    assert reconciler("audit", "verify", cwd=tmp_path).code == 0


def test_a_saved_plan_forced_past_the_rail_is_on_record(tmp_path: Path) -> None:
    seed_state(tmp_path, RECORDED)
    write_config(tmp_path / "profiles.yaml", {})
    refused = reconciler("plan", "profiles.yaml", "--out", "plan.json", cwd=tmp_path)
    assert refused.code == 1 and ledger(tmp_path) == []
    forced = reconciler("plan", "profiles.yaml", "--out", "plan.json", "--force",
                        cwd=tmp_path, extra_env={"RECONCILER_ACTOR": "alice"})
    assert forced.code == 0, forced.output
    (record,) = ledger(tmp_path)
    assert (record["operation"], record["actor"]) == ("force", "alice")
    assert "forced past --max-delete-percent 30" in record["message"]
