"""End to end: a phone number is one number however it is written, in the configuration or
by the server. Whether Fyno stores a number as sent or reformats it is UNKNOWN, so each test
runs against the sandbox under every `--phone-format`: the configuration converges, no
drift follows, and the state records what the server holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sandboxproc import SandboxProcess, reconciler, write_config

STATE = Path("state") / "FYE2E00001-live.json"
DESIRED = {
    "p-1": {"sms": "+91 98790 00000", "whatsapp": "+919879000000",
            "voice": "+1 (201) 555-0123", "email": "Alice@EXAMPLE.com"},
    "p-2": {"sms": "+919879000001", "whatsapp": "+91-98790-00001"},
}
SENT = {  # what the configuration means: phones in E.164, addresses as written
    "p-1": {"sms": "+919879000000", "whatsapp": "+919879000000", "voice": "+12015550123",
            "email": "Alice@EXAMPLE.com"},
    "p-2": {"sms": "+919879000001", "whatsapp": "+919879000001"},
}
STORED = {
    "as-sent": SENT,
    "international": {
        "p-1": {"sms": "+91 98790 00000", "whatsapp": "+91 98790 00000",
                "voice": "+1 201-555-0123", "email": "Alice@EXAMPLE.com"},
        "p-2": {"sms": "+91 98790 00001", "whatsapp": "+91 98790 00001"},
    },
}
PHONE_FORMATS = sorted(STORED)


def recorded(workdir: Path) -> dict[str, Any]:
    profiles: dict[str, Any] = json.loads((workdir / STATE).read_text())["profiles"]
    return profiles


def converged(workdir: Path, sandbox: SandboxProcess) -> None:
    """`plan` sees no change and `refresh` no drift (each with --detailed-exitcode)."""
    for command in ("plan", "refresh"):
        result = reconciler(command, "profiles.yaml", "--detailed-exitcode", cwd=workdir,
                            sandbox=sandbox)
        assert result.code == 0, (command, result.output)


@pytest.mark.parametrize("phone_format", PHONE_FORMATS)
def test_numbers_written_several_ways_converge_without_drift(
        tmp_path: Path, sandboxes: list[SandboxProcess], phone_format: str) -> None:
    write_config(tmp_path / "profiles.yaml", DESIRED)
    sandbox = SandboxProcess("--phone-format", phone_format)
    sandboxes.append(sandbox)
    applied = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                         sandbox=sandbox)
    assert applied.code == 0, applied.output
    sent = {entry["distinct_id"]: entry["body"]["channel"] for entry in sandbox.log()
            if entry["method"] != "GET" and entry["distinct_id"] in SENT}
    assert sent == SENT
    assert sandbox.data() == STORED[phone_format]

    converged(tmp_path, sandbox)
    assert recorded(tmp_path) == STORED[phone_format]  # refresh recorded the server's form
    converged(tmp_path, sandbox)  # and, from it, still nothing to do


@pytest.mark.parametrize("phone_format", PHONE_FORMATS)
def test_another_number_set_behind_our_back_is_still_drift(
        tmp_path: Path, sandboxes: list[SandboxProcess], phone_format: str) -> None:
    write_config(tmp_path / "profiles.yaml", DESIRED)
    sandbox = SandboxProcess("--phone-format", phone_format)
    sandboxes.append(sandbox)
    assert reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                      sandbox=sandbox).code == 0
    sandbox.put_data({**STORED[phone_format],
                      "p-2": {**STORED[phone_format]["p-2"], "sms": "+91 98790 00009"}})
    refreshed = reconciler("refresh", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                           sandbox=sandbox)
    assert refreshed.code == 2, refreshed.output
    assert "p-2" in refreshed.output and "p-1" not in refreshed.output
    planned = reconciler("plan", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path,
                         sandbox=sandbox)
    assert planned.code == 2, planned.output
    assert "p-2" in planned.output and "p-1" not in planned.output


def test_a_number_the_server_holds_in_another_form_is_adopted_without_a_change(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = SandboxProcess.seeded(tmp_path, STORED["international"])
    sandboxes.append(sandbox)
    write_config(tmp_path / "profiles.yaml", DESIRED)
    imported = reconciler("import", "profiles.yaml", cwd=tmp_path, sandbox=sandbox)
    assert imported.code == 0, imported.output
    assert recorded(tmp_path) == STORED["international"]
    converged(tmp_path, sandbox)
    assert [entry for entry in sandbox.log() if entry["method"] != "GET"] == []
