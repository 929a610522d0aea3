"""End to end: `state migrate` from files to PostgreSQL and back, against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxproc import SandboxProcess, reconciler, write_config

STATE = Path("state") / "FYE2E00001-live.json"
DECLARED: dict[str, Any] = {
    "u-1": {"email": "one@example.com", "sms": "+15550000001", "push": ["fcm_token:p1"]},
    "u-2": {"email": "two@example.com"},
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    started = SandboxProcess.seeded(tmp_path, {})
    yield started
    started.stop()


def run(workdir: Path, sandbox: SandboxProcess, *args: str, code: int = 0,
        **env: str) -> Any:
    result = reconciler(*args, cwd=workdir, sandbox=sandbox, extra_env=env)
    assert "Traceback" not in result.output
    assert result.code == code, result.output
    return result


def applied(tmp_path: Path, sandbox: SandboxProcess) -> Path:
    """A working directory whose configuration was applied with the file backend."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    write_config(workdir / "profiles.yaml", DECLARED)
    run(workdir, sandbox, "apply", "profiles.yaml", "--auto-approve")
    return workdir


def test_file_to_postgresql_and_back_keeps_profiles_serial_and_ledger(
        tmp_path: Path, sandbox: SandboxProcess, postgres_url: str) -> None:
    workdir = applied(tmp_path, sandbox)
    source = workdir / STATE
    before_state, before_ledger = source.read_bytes(), (workdir / "state/audit.jsonl").read_bytes()
    run(workdir, sandbox, "plan", "profiles.yaml", "--out", "saved.json")

    moved = run(workdir, sandbox, "state", "migrate", "--state", str(STATE), "--to",
                postgres_url)
    assert "Moved 2 profiles at serial" in moved.stdout and "the copy matches" in moved.stdout
    assert source.read_bytes() == before_state  # the source is only read
    assert (workdir / "state/audit.jsonl").read_bytes() == before_ledger

    on_postgres = {"RECONCILER_BACKEND": postgres_url}
    # the copy is the same state: a plan saved against the file is fresh against it
    run(workdir, sandbox, "apply", "saved.json", **on_postgres)
    assert "chain intact" in run(workdir, sandbox, "audit", "verify", **on_postgres).stdout
    write_config(workdir / "profiles.yaml", {**DECLARED, "u-3": {"email": "three@example.com"}})
    run(workdir, sandbox, "apply", "profiles.yaml", "--auto-approve", **on_postgres)
    on_postgres_history = run(workdir, sandbox, "audit", "--format", "json", "--show-values",
                              **on_postgres).stdout

    back = workdir / "back" / "FYE2E00001-live.json"
    run(workdir, sandbox, "state", "migrate", "--to", str(back), FYNO_WSID="FYE2E00001",
        **on_postgres)
    returned = json.loads(back.read_text())
    assert sorted(returned["profiles"]) == ["u-1", "u-2", "u-3"]
    assert returned["lineage"] == json.loads(before_state)["lineage"]
    listed = run(workdir, sandbox, "state", "list", "--state", str(back)).stdout
    assert listed.split() == ["u-1", "u-2", "u-3"]
    assert run(workdir, sandbox, "audit", "--state-dir", str(back.parent), "--format", "json",
               "--show-values").stdout == on_postgres_history
    assert "chain intact" in run(workdir, sandbox, "audit", "verify", "--state-dir",
                                 str(back.parent)).stdout
    assert run(workdir, sandbox, "plan", "profiles.yaml", "--state", str(back),
               "--detailed-exitcode").code == 0


def test_a_destination_that_already_holds_a_state_is_refused(
        tmp_path: Path, sandbox: SandboxProcess, postgres_url: str) -> None:
    workdir = applied(tmp_path, sandbox)
    run(workdir, sandbox, "state", "migrate", "--state", str(STATE), "--to", postgres_url)

    again = run(workdir, sandbox, "state", "migrate", "--state", str(STATE), "--to",
                postgres_url, code=1)
    assert "already holds a state" in again.stderr
