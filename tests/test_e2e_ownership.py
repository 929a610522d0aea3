"""End to end: a workspace shared with the app. The test writes to the sandbox behind the
tool's back, as Fyno's SDKs do, and checks what `owned`, `ignored` and `remove` do with it.
On both state backends (files, PostgreSQL: the `store` fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ledgers import ledger_records
from sandboxproc import WORKSPACE, SandboxProcess, reconciler, recorded_state

pytestmark = pytest.mark.usefixtures("store")


def write(workdir: Path, profiles: dict[str, Any], ownership: Any = None) -> None:
    document: dict[str, Any] = {"workspace": WORKSPACE, "version": "live"}
    if ownership is not None:
        document["ownership"] = ownership
    document["profiles"] = profiles
    (workdir / "profiles.yaml").write_text(json.dumps(document, indent=1))


def apply(workdir: Path, sandbox: SandboxProcess, *args: str) -> str:
    result = reconciler("apply", "profiles.yaml", "--auto-approve", *args, cwd=workdir,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    return result.output


def tokens(sandbox: SandboxProcess, name: str, channel: str = "push") -> list[str]:
    return sorted(item["token"] for item in sandbox.data().get(name, {}).get(channel, []))


def app_registers(sandbox: SandboxProcess, name: str, token: str) -> None:
    """What the mobile SDK does when a user installs the app (through its own API)."""
    data = sandbox.data()
    data.setdefault(name, {}).setdefault("push", []).append({"token": token, "status": 1})
    sandbox.put_data(data)


def ledger(workdir: Path) -> list[dict[str, Any]]:
    return ledger_records(workdir)


def test_under_owned_the_apps_tokens_survive_and_only_ours_are_deleted(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = SandboxProcess()
    sandboxes.append(sandbox)
    owned = {"push": "owned"}
    write(tmp_path, {"u-1": {"email": "a@example.com", "push": ["git-1", "git-2"]}}, owned)
    apply(tmp_path, sandbox)
    app_registers(sandbox, "u-1", "app-1")

    # Refresh: the app's token is unmanaged, shown once, and not drift.
    refreshed = reconciler("refresh", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                           sandbox=sandbox)
    assert refreshed.code == 0, refreshed.output
    assert "Unmanaged" in refreshed.stdout and "u-1: + push: a…1" in refreshed.stdout
    again = reconciler("refresh", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                       sandbox=sandbox)
    assert again.code == 0 and "Unmanaged" not in again.stdout
    assert "drift" not in [record["operation"] for record in ledger(tmp_path)]

    # Apply: nothing to do, the app's token stays.
    assert "Nothing to apply" in apply(tmp_path, sandbox)
    assert tokens(sandbox, "u-1") == ["app-1", "git-1", "git-2"]

    # A token the reconciler added, then dropped from the YAML: deleted by name, Option 2.
    write(tmp_path, {"u-1": {"email": "a@example.com", "push": ["git-1"]}}, owned)
    sandbox.clear_log()
    apply(tmp_path, sandbox)
    writes = [entry for entry in sandbox.log() if entry["method"] != "GET"]
    assert [entry["body"] for entry in writes] == [{"push": ["git-2"]}]
    assert tokens(sandbox, "u-1") == ["app-1", "git-1"]

    # The profile leaves the configuration: ours go, the app's stay, and it is forgotten.
    write(tmp_path, {}, owned)
    apply(tmp_path, sandbox, "--max-delete-percent", "100")
    assert tokens(sandbox, "u-1") == ["app-1"]
    assert "u-1" not in recorded_state(tmp_path)["profiles"]


def test_an_explicit_removal_deletes_a_token_the_reconciler_never_owned(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = SandboxProcess()
    sandboxes.append(sandbox)
    write(tmp_path, {"u-1": {"push": ["git-1"]}}, {"push": "owned"})
    apply(tmp_path, sandbox)
    app_registers(sandbox, "u-1", "leaked")
    app_registers(sandbox, "u-1", "app-1")
    assert reconciler("refresh", "profiles.yaml", cwd=tmp_path, sandbox=sandbox).code == 0
    write(tmp_path, {"u-1": {"push": ["git-1"], "remove": {"push": ["leaked"]}}},
          {"push": "owned"})
    plan = reconciler("plan", "profiles.yaml", "--show-values", cwd=tmp_path, sandbox=sandbox)
    assert "- push: leaked" in plan.stdout, plan.stdout
    apply(tmp_path, sandbox)
    assert tokens(sandbox, "u-1") == ["app-1", "git-1"]
    # Done: the removal leaves the plan.
    done = reconciler("plan", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                      sandbox=sandbox)
    assert done.code == 0, done.output


def test_under_ignored_nothing_is_planned_whatever_the_server_holds(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = SandboxProcess()
    sandboxes.append(sandbox)
    write(tmp_path, {"u-1": {"email": "a@example.com", "push": ["git-1"]}})
    apply(tmp_path, sandbox)
    data = sandbox.data()
    data["u-1"] = {"email": "dashboard@example.com", "sms": "+15550100001",
                   "push": [{"token": "app-1", "status": 1}]}
    sandbox.put_data(data)
    write(tmp_path, {"u-1": {"email": "a@example.com", "push": ["git-1"]}}, "ignored")
    refreshed = reconciler("refresh", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                           sandbox=sandbox)
    assert refreshed.code == 0, refreshed.output
    plan = reconciler("plan", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                      sandbox=sandbox)
    assert plan.code == 0, plan.output
    assert sandbox.data()["u-1"]["email"] == "dashboard@example.com"


def test_under_owned_a_value_the_dashboard_changed_is_never_deleted_blindly(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    # The state says the email is ours; support changed it in the dashboard since. Dropping
    # it from the YAML must not delete the dashboard's value: apply looks first.
    sandbox = SandboxProcess()
    sandboxes.append(sandbox)
    write(tmp_path, {"u-1": {"email": "a@example.com"}}, {"email": "owned"})
    apply(tmp_path, sandbox)
    data = sandbox.data()
    data["u-1"]["email"] = "dashboard@example.com"
    sandbox.put_data(data)
    write(tmp_path, {"u-1": {}}, {"email": "owned"})
    apply(tmp_path, sandbox, "--max-delete-percent", "100")
    assert sandbox.data()["u-1"]["email"] == "dashboard@example.com"
    # Someone else changed a value of ours: that is drift, and on record as such.
    assert [record["operation"] for record in ledger(tmp_path)][-2:] == ["read_back", "drift"]


def test_a_web_push_subscription_is_deleted_only_when_listed(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    leaked = {"endpoint": "https://push.example.com/leaked", "keys": {"auth": "x"}}
    kept = {"endpoint": "https://push.example.com/laptop", "keys": {"auth": "y"}}
    sandbox = SandboxProcess.seeded(tmp_path, {"u-1": {"email": "a@example.com", "webpush": [
        {"token": leaked, "status": 1}, {"token": kept, "status": 1}]}})
    sandboxes.append(sandbox)
    write(tmp_path, {"u-1": {"email": "a@example.com"}})
    assert reconciler("import", "profiles.yaml", cwd=tmp_path, sandbox=sandbox).code == 0
    assert "Nothing to apply" in apply(tmp_path, sandbox)  # never planned unless listed
    write(tmp_path, {"u-1": {"email": "a@example.com", "remove": {"webpush": [leaked]}}})
    sandbox.clear_log()
    apply(tmp_path, sandbox)
    writes = [entry["body"] for entry in sandbox.log() if entry["method"] != "GET"]
    assert writes == [{"webpush": [leaked]}]
    assert [item["token"] for item in sandbox.data()["u-1"]["webpush"]] == [kept]
    done = reconciler("plan", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                      sandbox=sandbox)
    assert done.code == 0, done.output
