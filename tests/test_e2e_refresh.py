"""End to end: import, refresh and drift against the sandbox process, on both state backends
(files, PostgreSQL: the `store` fixture)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledgers import ledger_records
from sandboxproc import (
    WORKSPACE,
    SandboxProcess,
    reconciler,
    recorded_state,
    state_option,
    state_snapshot,
    write_config,
)

from reconciler.plan import call_from_json

pytestmark = pytest.mark.usefixtures("store")

STATE = Path("state") / "FYE2E00001-live.json"

SERVER: dict[str, Any] = {
    "u-1": {"email": "one@example.com", "sms": "+15550000001",
            "push": [{"token": "fcm_token:p1"}, {"token": "apns_token:p2", "status": 0,
                                                  "integration_id": "I1"}],
            "webpush": [{"endpoint": "https://push.example.com/abc", "keys": {"p256dh": "x"}}]},
    "u-2": {"email": "two@example.com", "inapp": [{"token": "u-2"}]},
    "u-3": {"slack": "U03"},
}
DECLARED: dict[str, Any] = {
    "u-1": {"email": "one@new.example.com", "sms": "+15550000001",
            "push": ["fcm_token:p1", {"token": "apns_token:p2", "status": 0,
                                      "integration_id": "I1"}]},
    "u-2": {"email": "two@example.com", "inapp": ["u-2"]},
    "u-3": {"slack": "U03"},
    "u-ghost": {"email": "ghost@example.com"},  # declared, but the server has no such profile
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    started = SandboxProcess.seeded(tmp_path, SERVER)
    yield started
    started.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    write_config(folder / "profiles.yaml", DECLARED)
    return folder


def state_of(workdir: Path) -> dict[str, Any]:
    return recorded_state(workdir)


def run(workdir: Path, sandbox: SandboxProcess, *args: str) -> Any:
    result = reconciler(*args, cwd=workdir, sandbox=sandbox)
    assert "Traceback" not in result.output
    return result


def test_import_records_declared_profiles_exactly_as_the_server_holds_them(
        workdir: Path, sandbox: SandboxProcess) -> None:
    result = run(workdir, sandbox, "import", "profiles.yaml")
    assert result.code == 0, result.output
    assert "Imported 3 profiles" in result.output
    assert "u-ghost" in result.output and "missing" in result.output
    state = state_of(workdir)
    assert state["profiles"]["u-1"]["push"] == [
        {"token": "fcm_token:p1", "status": 1},
        {"token": "apns_token:p2", "integration_id": "I1", "status": 0}]
    assert state["profiles"]["u-1"]["webpush"] == SERVER["u-1"]["webpush"]
    assert state["missing"] == ["u-ghost"]
    # The next plan shows precisely what the configuration changes: u-1's email, nothing else.
    planned = run(workdir, sandbox, "plan", "profiles.yaml", "--format", "json",
                  "--show-values")
    calls = json.loads(planned.stdout)["calls"]
    assert [(call["distinct_id"], call_from_json(call).body()) for call in calls] == [
        ("u-1", {"channel": {"email": "one@new.example.com"}})]
    warnings = json.loads(planned.stdout)["warnings"]
    assert any("u-ghost" in warning and "no such profile" in warning for warning in warnings)


def test_import_of_named_profiles_and_replace(workdir: Path, sandbox: SandboxProcess) -> None:
    first = run(workdir, sandbox, "import", "--id", "u-2", *state_option(STATE))
    assert first.code == 1 and "FYNO_WSID" in first.output
    named = reconciler("import", "--id", "u-2", "--id", "u-3", cwd=workdir, sandbox=sandbox,
                       extra_env={"FYNO_WSID": WORKSPACE})
    assert named.code == 0, named.output
    assert sorted(state_of(workdir)["profiles"]) == ["u-2", "u-3"]
    again = reconciler("import", "--id", "u-2", cwd=workdir, sandbox=sandbox,
                       extra_env={"FYNO_WSID": WORKSPACE})
    assert again.code == 1 and "--replace" in again.output
    replaced = reconciler("import", "--id", "u-2", "--replace", cwd=workdir, sandbox=sandbox,
                          extra_env={"FYNO_WSID": WORKSPACE})
    assert replaced.code == 0, replaced.output


def test_refresh_reports_each_kind_of_drift_and_records_the_server(
        workdir: Path, sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "import", "profiles.yaml").code == 0
    server = sandbox.data()
    server["u-1"]["whatsapp"] = "+15550000009"                  # a channel added
    server["u-1"]["email"] = "changed@example.com"               # a channel changed
    del server["u-1"]["sms"]                                     # a channel removed
    server["u-2"]["inapp"].append({"token": "u-2-tablet", "status": 1})  # a token added
    server["u-1"]["push"] = server["u-1"]["push"][1:]            # a token removed
    del server["u-3"]                                            # a profile deleted
    sandbox.put_data(server)
    result = run(workdir, sandbox, "refresh", "profiles.yaml", "--detailed-exitcode",
                 "--show-values")
    assert result.code == 2, result.output
    text = result.stdout
    for line in ("+ whatsapp: +15550000009",
                 "~ email: one@example.com -> changed@example.com",
                 "- sms: +15550000001",
                 "+ inapp: u-2-tablet",
                 "- push: fcm_token:p1"):
        assert line in text, line
    assert "u-3" in text and "deleted" in text
    state = state_of(workdir)
    assert state["profiles"]["u-1"]["email"] == "changed@example.com"
    assert "u-3" not in state["profiles"] and "u-3" in state["missing"]
    masked = run(workdir, sandbox, "refresh", "profiles.yaml", "--detailed-exitcode")
    assert masked.code == 0, masked.output  # recorded now: no more drift
    assert "changed@example.com" not in masked.stdout


def test_drift_as_json_and_markdown(workdir: Path, sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "import", "profiles.yaml").code == 0
    server = sandbox.data()
    server["u-2"]["email"] = "moved@example.com"
    sandbox.put_data(server)
    as_json = run(workdir, sandbox, "refresh", "profiles.yaml", "--format", "json")
    assert "moved@example.com" not in as_json.stdout  # masked, as everywhere a log reads
    assert json.loads(as_json.stdout)["masked"] is True
    server["u-2"]["email"] = "again@example.com"
    sandbox.put_data(server)
    as_markdown = run(workdir, sandbox, "refresh", "profiles.yaml", "--format", "markdown")
    assert "<details>" in as_markdown.stdout and "again@example.com" not in as_markdown.stdout


def test_unknown_channel_keys_survive_plan_and_apply_untouched(
        workdir: Path, sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "import", "profiles.yaml").code == 0
    applied = run(workdir, sandbox, "apply", "profiles.yaml", "--auto-approve")
    assert applied.code == 0, applied.output
    assert sandbox.data()["u-1"]["webpush"] == SERVER["u-1"]["webpush"]
    assert sandbox.data()["u-1"]["email"] == "one@new.example.com"
    assert state_of(workdir)["profiles"]["u-1"]["webpush"] == SERVER["u-1"]["webpush"]
    calls = [record["request"] for record in ledger_records(workdir)]
    assert all("webpush" not in json.dumps(request) for request in calls)


def test_plan_refresh_plans_against_the_server_and_leaves_the_state_byte_identical(
        workdir: Path, sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "import", "profiles.yaml").code == 0
    before = state_snapshot(workdir)
    server = sandbox.data()
    server["u-2"]["email"] = "drifted@example.com"
    sandbox.put_data(server)
    plain = run(workdir, sandbox, "plan", "profiles.yaml", "--format", "json", "--show-values")
    assert "u-2" not in {call["distinct_id"] for call in json.loads(plain.stdout)["calls"]}
    refreshed = run(workdir, sandbox, "plan", "profiles.yaml", "--refresh", "--format", "json",
                    "--show-values")
    assert refreshed.code == 0, refreshed.output
    calls = json.loads(refreshed.stdout)["calls"]
    assert ("u-2", {"channel": {"email": "two@example.com"}}) in [
        (call["distinct_id"], call_from_json(call).body()) for call in calls]
    assert "u-2" in refreshed.stderr  # the drift is reported
    assert state_snapshot(workdir) == before


def test_apply_refresh_converges_from_the_server_truth(workdir: Path,
                                                      sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "import", "profiles.yaml").code == 0
    server = sandbox.data()
    server["u-2"]["sms"] = "+15550000077"  # added behind the tool's back
    sandbox.put_data(server)
    applied = run(workdir, sandbox, "apply", "profiles.yaml", "--refresh", "--auto-approve")
    assert applied.code == 0, applied.output
    assert "sms" not in sandbox.data()["u-2"]
    again = run(workdir, sandbox, "plan", "profiles.yaml", "--refresh", "--detailed-exitcode")
    assert again.code == 0, again.output


def test_drift_met_during_apply_is_reported_and_audited_as_drift(
        workdir: Path, sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "import", "profiles.yaml").code == 0
    declared = json.loads(json.dumps(DECLARED))
    declared["u-2"] = {"email": "two@example.com"}  # drop the inapp token
    write_config(workdir / "profiles.yaml", declared)
    server = sandbox.data()
    server["u-2"]["inapp"] = []          # someone removed it already...
    server["u-2"]["teams"] = "general"   # ...and added a channel
    sandbox.put_data(server)
    applied = run(workdir, sandbox, "apply", "profiles.yaml", "--auto-approve")
    assert applied.code == 0, applied.output
    assert "u-2" in applied.stderr and "teams" in applied.stderr  # reported like refresh
    records = ledger_records(workdir)
    drift = [record for record in records if record["operation"] == "drift"]
    assert [record["distinct_id"] for record in drift] == ["u-2"]
    assert drift[0]["after"]["teams"] == "general"
    assert run(workdir, sandbox, "audit", "verify").code == 0


@pytest.mark.parametrize("faults", [
    ["--throttle-rate", "0.4", "--retry-after", "0.05"],
    ["--error-rate", "0.4"],
    ["--lose-rate", "0.5"],
])
def test_refresh_converges_under_faults(workdir: Path, tmp_path: Path,
                                        faults: list[str]) -> None:
    seed = tmp_path / "seed-faults.json"
    many = {f"p-{i:03d}": {"email": f"p{i}@example.com"} for i in range(60)}
    seed.write_text(json.dumps({"FYE2E00001": {"live": many}}))
    write_config(workdir / "profiles.yaml", many)
    sandbox = SandboxProcess(*faults, "--fault-seed", "11", seed=seed)
    try:
        imported = reconciler("import", "profiles.yaml", cwd=workdir, sandbox=sandbox)
        assert imported.code == 0, imported.output
        server = sandbox.data()
        for i in range(0, 60, 3):
            server[f"p-{i:03d}"]["email"] = f"changed{i}@example.com"
        sandbox.put_data(server)
        refreshed = reconciler("refresh", "profiles.yaml", "--detailed-exitcode", cwd=workdir,
                               sandbox=sandbox)
        assert refreshed.code == 2, refreshed.output
        recorded = state_of(workdir)["profiles"]
        assert {name: data["email"] for name, data in recorded.items()} == {
            name: data["email"] for name, data in server.items()}
    finally:
        sandbox.stop()
