"""End to end: personal data at rest, encrypted with a configured key, and erased on request.

Every command runs as a process against the sandbox; afterwards every file the tool wrote
is searched for every value of the configuration.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledgers import ledger_records
from sandboxproc import SandboxProcess, reconciler, write_config

from reconciler.encryption import Encryption

STATE = Path("state") / "FYE2E00001-live.json"
DECLARED: dict[str, Any] = {
    "u-1": {"email": "alice@example.com", "sms": "+919879000000",
            "push": ["fcm_token:alice-pixel", {"token": "apns_token:alice-phone",
                                                "integration_id": "I1"}],
            "inapp": ["inapp-alice"]},
    "u-2": {"email": "bob@example.net", "whatsapp": "+14155550100", "push": ["fcm_token:bob"]},
    "u-3": {"slack": "U03SLACKER", "teams": "carol@teams.example.org"},
}
DRIFTED = "bob.changed@example.net"


def values_of(profiles: dict[str, Any]) -> set[str]:
    """Every value that identifies a person, and the digits of each phone number alone."""
    found: set[str] = set()
    for channels in profiles.values():
        for channel, value in channels.items():
            items = value if isinstance(value, list) else [value]
            for item in items:
                found.add(item["token"] if isinstance(item, dict) else item)
            if channel in ("sms", "whatsapp", "voice"):
                found.add(value.lstrip("+"))
    return found


def files_holding(folder: Path, values: set[str], *, skip: set[str]) -> dict[str, set[str]]:
    """The files under `folder` (but those named in `skip`) that hold any of `values`."""
    holding: dict[str, set[str]] = {}
    for path in folder.rglob("*"):
        if path.is_file() and path.name not in skip:
            data = path.read_bytes()
            inside = {value for value in values if value.encode() in data}
            if inside:
                holding[str(path.relative_to(folder))] = inside
    return holding


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    started = SandboxProcess.seeded(tmp_path, {})
    yield started
    started.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    write_config(folder / "profiles.yaml", DECLARED)
    return folder


def keyed(key: str = "env:STATE_KEY", **variables: str) -> dict[str, str]:
    return {"RECONCILER_ENCRYPTION_KEY": key,
            "STATE_KEY": base64.b64encode(secrets.token_bytes(32)).decode(), **variables}


def run(workdir: Path, sandbox: SandboxProcess, env: dict[str, str], *args: str,
        code: int = 0) -> Any:
    result = reconciler(*args, cwd=workdir, sandbox=sandbox, extra_env=env)
    assert "Traceback" not in result.output
    assert result.code == code, result.output
    return result


def test_with_a_key_no_file_holds_a_value_in_clear_after_the_whole_flow(
        workdir: Path, sandbox: SandboxProcess) -> None:
    env = keyed()
    run(workdir, sandbox, env, "plan", "profiles.yaml", "--out", "plan.json")
    run(workdir, sandbox, env, "show", "plan.json", "--format", "json")
    run(workdir, sandbox, env, "apply", "plan.json")
    sandbox.put_data({**sandbox.data(), "u-2": {**sandbox.data()["u-2"], "email": DRIFTED}})
    drift = run(workdir, sandbox, env, "refresh", "profiles.yaml", "--detailed-exitcode",
                code=2)
    assert "u-2" in drift.output
    run(workdir, sandbox, env, "plan", "profiles.yaml", "--out", "again.json",
        "--detailed-exitcode", code=2)
    run(workdir, sandbox, env, "apply", "again.json")
    run(workdir, sandbox, env, "apply", "profiles.yaml", "--auto-approve", "--refresh")
    run(workdir, sandbox, env, "import", "profiles.yaml")
    assert "u-1" in run(workdir, sandbox, env, "state", "list", "--state", str(STATE)).stdout
    shown = run(workdir, sandbox, env, "state", "show", "u-1", "--state", str(STATE),
                "--show-values")
    assert "alice@example.com" in shown.stdout  # opened: every command still works
    history = run(workdir, sandbox, env, "audit", "--profile", "u-2", "--show-values")
    assert DRIFTED in history.stdout and "bob@example.net" in history.stdout
    assert "chain intact" in run(workdir, sandbox, env, "audit", "verify").stdout
    assert run(workdir, sandbox, env, "plan", "profiles.yaml", "--detailed-exitcode").code == 0

    written = {path.name for path in workdir.rglob("*") if path.is_file()}
    assert {"plan.json", "again.json", "audit.jsonl", "audit.keys",
            "FYE2E00001-live.json", "FYE2E00001-live.json.backup"} <= written
    assert files_holding(workdir, values_of(DECLARED) | {DRIFTED},
                         skip={"profiles.yaml"}) == {}
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in workdir.rglob("*")
             if path.is_file() and path.name != "profiles.yaml"}
    assert set(modes.values()) == {"0o600"}, modes
    # ... and without the key, nothing can be read back
    refused = run(workdir, sandbox, {}, "state", "list", "--state", str(STATE), code=1)
    assert "is encrypted with key env:STATE_KEY" in refused.stderr


@pytest.mark.parametrize("encrypted", [True, False], ids=["with a key", "without a key"])
def test_audit_erase_leaves_no_value_anywhere_and_the_chain_verifies(
        workdir: Path, sandbox: SandboxProcess, encrypted: bool) -> None:
    env = keyed() if encrypted else {}
    run(workdir, sandbox, env, "apply", "profiles.yaml", "--auto-approve")
    others = {name: channels for name, channels in DECLARED.items() if name != "u-2"}
    write_config(workdir / "profiles.yaml", others)
    run(workdir, sandbox, env, "apply", "profiles.yaml", "--auto-approve",
        "--max-delete-percent", "100")  # u-2's channels are deleted; it leaves the state
    if not encrypted:  # the ledger, the backup: there is something to erase
        assert files_holding(workdir / "state", values_of({"u-2": DECLARED["u-2"]}),
                             skip=set())

    refused = run(workdir, sandbox, env, "audit", "erase", "u-1", "--state", str(STATE),
                  code=1)
    assert "still recorded" in refused.stderr and "state rm --erase u-1" in refused.stderr
    erased = run(workdir, sandbox, env, "audit", "erase", "u-2", "--state", str(STATE))

    assert "Erased u-2" in erased.stdout
    assert files_holding(workdir, values_of({"u-2": DECLARED["u-2"]}),
                         skip={"profiles.yaml"}) == {}
    assert "chain intact" in run(workdir, sandbox, env, "audit", "verify").stdout
    history = run(workdir, sandbox, env, "audit", "--profile", "u-2", "--show-values").stdout
    calls = [line for line in history.splitlines() if "  #" in line]
    assert any("patch_channel" in line or "create_profile" in line for line in calls)
    assert any("delete_channels" in line for line in calls)
    assert "[values erased]" in history and "bob" not in history
    records = ledger_records(workdir, Encryption.configure(
        env.get("RECONCILER_ENCRYPTION_KEY"), None, None, environ=env))
    mine = [record for record in records if record["distinct_id"] == "u-2"]
    assert mine[-1]["operation"] == "erase" and mine[-1]["actor"]
    assert all(record["erased"] for record in mine[:-1])
    assert all(record["request"] is None and record["after"] is None for record in mine)
    # the other profiles keep their values
    assert "alice@example.com" in run(workdir, sandbox, env, "audit", "--profile", "u-1",
                                      "--show-values").stdout


def test_state_rm_erase_forgets_and_erases_in_one_step(workdir: Path,
                                                       sandbox: SandboxProcess) -> None:
    env = keyed()
    run(workdir, sandbox, env, "apply", "profiles.yaml", "--auto-approve")
    run(workdir, sandbox, env, "state", "rm", "u-1", "--erase", "--state", str(STATE))

    assert files_holding(workdir, values_of({"u-1": DECLARED["u-1"]}),
                         skip={"profiles.yaml"}) == {}
    assert sandbox.data()["u-1"]["email"] == "alice@example.com"  # the server keeps its data
    assert "chain intact" in run(workdir, sandbox, env, "audit", "verify").stdout


def test_an_edited_state_is_refused_and_nothing_is_overwritten(
        workdir: Path, sandbox: SandboxProcess) -> None:
    env = keyed()
    run(workdir, sandbox, env, "apply", "profiles.yaml", "--auto-approve")
    state = workdir / STATE
    edited = bytearray(state.read_bytes())
    edited[-5] ^= 0x20
    state.write_bytes(bytes(edited))

    for command in (["plan", "profiles.yaml"], ["apply", "profiles.yaml", "--auto-approve"],
                    ["state", "list", "--state", str(STATE)]):
        refused = run(workdir, sandbox, env, *command, code=1)
        assert "failed authentication" in refused.stderr
        assert "edited or damaged" in refused.stderr
    assert state.read_bytes() == bytes(edited)


def test_an_edited_saved_plan_is_refused(workdir: Path, sandbox: SandboxProcess) -> None:
    env = keyed()
    run(workdir, sandbox, env, "plan", "profiles.yaml", "--out", "plan.json")
    plan = workdir / "plan.json"
    plan.write_bytes(plan.read_bytes()[:-1] + bytes([plan.read_bytes()[-1] ^ 1]))
    refused = run(workdir, sandbox, env, "apply", "plan.json", code=1)
    assert "plan file plan.json failed authentication" in refused.stderr
    assert sandbox.log() == [] or all(entry["method"] == "GET" for entry in sandbox.log())


def test_migration_both_ways_and_rotation_with_a_fallback_key(
        workdir: Path, sandbox: SandboxProcess) -> None:
    run(workdir, sandbox, {}, "apply", "profiles.yaml", "--auto-approve")
    env = keyed()
    state = workdir / STATE

    refused = run(workdir, sandbox, env, "plan", "profiles.yaml", code=1)
    assert "is not encrypted" in refused.stderr and "state encrypt" in refused.stderr
    run(workdir, sandbox, env, "state", "encrypt", "--state", str(STATE))
    assert state.read_bytes().startswith(b'{"reconciler_encrypted":1')
    assert files_holding(workdir / "state", {"alice@example.com"}, skip={"audit.jsonl"}) == {}
    assert run(workdir, sandbox, env, "plan", "profiles.yaml", "--detailed-exitcode").code == 0

    rotated = {**env, "RECONCILER_ENCRYPTION_KEY": "env:NEW_KEY",
               "NEW_KEY": base64.b64encode(secrets.token_bytes(32)).decode()}
    wrong = run(workdir, sandbox, {**rotated}, "plan", "profiles.yaml", code=1)
    assert "none of the configured keys" in wrong.stderr
    rotating = {**rotated, "RECONCILER_ENCRYPTION_FALLBACK": "env:STATE_KEY"}
    run(workdir, sandbox, rotating, "state", "encrypt", "--state", str(STATE))
    assert b'"key":"env:NEW_KEY"' in state.read_bytes().split(b"\n", 1)[0]
    assert run(workdir, sandbox, rotated, "audit", "--profile", "u-1", "--show-values"
               ).stdout.count("alice@example.com") >= 1  # the new key alone reads it all

    run(workdir, sandbox, rotated, "state", "decrypt", "--state", str(STATE))
    assert json.loads(state.read_text())["profiles"]["u-1"]["email"] == "alice@example.com"
    assert run(workdir, sandbox, {}, "plan", "profiles.yaml", "--detailed-exitcode").code == 0
