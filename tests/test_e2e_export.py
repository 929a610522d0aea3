"""End to end: `export` against the sandbox process. 1,000 profiles of every shape exported,
then imported and planned: no change; the same export twice is byte-identical."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxproc import WORKSPACE, SandboxProcess, reconciler

from reconciler.config import load_config

STATE = Path("state") / f"{WORKSPACE}-live.json"
HOSTILE_IDS = ["a/b?c#d %e", "ünï 日本", 'quote"id', "0123", "null", "- dash: colon", "x" * 1500]


def shape(number: int) -> dict[str, Any]:
    """Channel data of varied shapes, as apps and the dashboard leave it."""
    kind = number % 6
    if kind == 0:
        return {"email": f"user{number}@example.com"}
    if kind == 1:
        return {"sms": f"+9198790{number:05d}", "whatsapp": f"+1415555{number:04d}",
                "push": [{"token": f"fcm_token:{number}-a", "integration_id": "IFCM0001",
                          "status": 1},
                         {"token": f"apns_token:{number}-b", "integration_id": "IAPNS001",
                          "status": 0}]}
    if kind == 2:
        return {"email": f"user{number}@example.com", "inapp": [{"token": f"u-{number}"}],
                "webpush": [{"token": {"endpoint": f"https://push.example.com/{number}",
                                       "keys": {"p256dh": "BNc", "auth": "tB"}},
                             "integration_id": "IWEB0001", "status": 1}]}
    if kind == 3:
        return {"voice": f"+4420794{number:05d}", "slack": f"U{number:07d}",
                "discord": f"{number:018d}", "teams": "General",
                "push": [{"token": f"ExponentPushToken[{number}]"}]}
    if kind == 4:
        return {"email": f"o'brien+{number}@example.com", "sms": f"+1555010{number:04d}",
                "push": [{"token": f"onesignal_player_id:{number}", "status": 0}]}
    return {}


SERVER: dict[str, Any] = {f"u-{number:04d}": shape(number) for number in range(1000 - len(
    HOSTILE_IDS))}
SERVER.update({name: shape(number) for number, name in enumerate(HOSTILE_IDS, start=1)})
GHOSTS = ["u-ghost-1", "u-ghost-2"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    started = SandboxProcess.seeded(tmp_path, SERVER)
    yield started
    started.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    lines = ["# every profile of the workspace, and two it never had", ""]
    lines += [*sorted(SERVER), *GHOSTS]
    (folder / "ids.txt").write_text("\n".join(lines) + "\n")
    return folder


def run(workdir: Path, sandbox: SandboxProcess, *args: str | Path) -> Any:
    result = reconciler(*args, cwd=workdir, sandbox=sandbox,
                        extra_env={"FYNO_WSID": WORKSPACE})
    assert "Traceback" not in result.output
    return result


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_an_export_of_1000_profiles_imports_and_plans_to_nothing(
        workdir: Path, sandbox: SandboxProcess) -> None:
    started = time.monotonic()
    result = run(workdir, sandbox, "export", "--ids-from", "ids.txt", "--out", "profiles/",
                 "--per-file", "250")
    print(f"export of {len(SERVER)} profiles: {time.monotonic() - started:.2f} s")
    assert result.code == 0, result.output
    assert f"Exported {len(SERVER)} profiles to profiles (4 files)." in result.stderr
    assert "2 not found on the server, not declared: u-ghost-1, u-ghost-2" in result.stderr
    assert list(files_of(workdir / "profiles")) == [f"profiles-000{n}.yaml" for n in range(1, 5)]
    first = (workdir / "profiles" / "profiles-0001.yaml").read_text()
    assert '#   "u-ghost-1"\n#   "u-ghost-2"\n' in first
    assert "webpush" in first  # shown as a comment, never declared

    validated = run(workdir, sandbox, "validate", "profiles/")
    assert validated.code == 0, validated.output
    assert f"Valid: {len(SERVER)} profiles in 4 files" in validated.stdout
    assert load_config([workdir / "profiles"]).profiles.keys() == SERVER.keys()

    imported = run(workdir, sandbox, "import", "profiles/")
    assert imported.code == 0, imported.output
    plan = run(workdir, sandbox, "plan", "profiles/", "--detailed-exitcode")
    assert plan.code == 0, plan.output
    assert "No changes." in plan.stdout

    again = run(workdir, sandbox, "export", "--ids-from", "ids.txt", "--out", "again/",
                "--per-file", "250")
    assert again.code == 0, again.output
    assert files_of(workdir / "again") == files_of(workdir / "profiles")

    recorded = run(workdir, sandbox, "export", "--all-recorded", "--out", "all.yaml")
    assert recorded.code == 0, recorded.output
    assert load_config([workdir / "all.yaml"]).profiles == load_config(
        [workdir / "profiles"]).profiles
    assert run(workdir, sandbox, "plan", "all.yaml", "--detailed-exitcode").code == 0


def test_ids_on_the_command_line_export_to_stdout_as_the_server_holds_them(
        workdir: Path, sandbox: SandboxProcess) -> None:
    result = run(workdir, sandbox, "export", "--id", "u-0001", "--id", "a/b?c#d %e",
                 "--id", "u-0002")
    assert result.code == 0, result.output
    assert result.stdout.startswith("# Exported by reconciler ")
    assert f"from {sandbox.url}, workspace {WORKSPACE}, version live:" in result.stdout
    assert ('  "u-0001":\n'
            '    sms: "+919879000001"\n'
            '    whatsapp: "+14155550001"\n'
            '    push:\n'
            '      - token: "fcm_token:1-a"\n'
            '        integration_id: "IFCM0001"\n'
            '        status: 1\n'
            '      - token: "apns_token:1-b"\n'
            '        integration_id: "IAPNS001"\n'
            '        status: 0\n') in result.stdout
    assert ('  "u-0002":\n'
            '    # Not declared, kept as the server holds them, never planned: channels the '
            'profile API does not document\n'
            '    #   webpush: [{"integration_id": "IWEB0001", "status": 1, "token": '
            '{"endpoint": "https://push.example.com/2", "keys": {"auth": "tB", "p256dh": '
            '"BNc"}}}]\n') in result.stdout
    (workdir / "three.yaml").write_text(result.stdout)
    assert run(workdir, sandbox, "import", "three.yaml").code == 0
    assert run(workdir, sandbox, "plan", "three.yaml", "--detailed-exitcode").code == 0


def test_an_export_again_into_its_directory_needs_force_and_leaves_only_its_files(
        workdir: Path, sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "export", "--ids-from", "ids.txt", "--out", "profiles/",
               "--per-file", "100").code == 0
    assert len(files_of(workdir / "profiles")) == 10
    refused = run(workdir, sandbox, "export", "--ids-from", "ids.txt", "--out", "profiles",
                  "--per-file", "400")
    assert refused.code == 1 and "re-run with --force" in refused.stderr
    assert len(files_of(workdir / "profiles")) == 10
    forced = run(workdir, sandbox, "export", "--ids-from", "ids.txt", "--out", "profiles",
                 "--per-file", "400", "--force")
    assert forced.code == 0, forced.output
    assert list(files_of(workdir / "profiles")) == ["profiles-0001.yaml", "profiles-0002.yaml",
                                                    "profiles-0003.yaml"]
    assert load_config([workdir / "profiles"]).profiles.keys() == SERVER.keys()


def test_all_recorded_takes_the_workspace_from_the_state_alone(
        workdir: Path, sandbox: SandboxProcess) -> None:
    assert run(workdir, sandbox, "import", "--id", "u-0001", "--id", "u-0003",
               "--id", "u-ghost-1").code == 0
    result = reconciler("export", "--all-recorded", "--state", STATE, cwd=workdir,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    assert f"workspace: {WORKSPACE}\n" in result.stdout
    assert '  "u-0001":\n' in result.stdout and '  "u-0003":\n' in result.stdout
    assert '#   "u-ghost-1"\n' in result.stdout  # recorded as missing, and still missing


def test_a_profile_the_server_answers_wrongly_fails_the_export_and_writes_nothing(
        workdir: Path, sandbox: SandboxProcess) -> None:
    sandbox.set_faults(malformed="channel-string", malformed_paths="reads", malformed_rate=1)
    result = run(workdir, sandbox, "export", "--id", "u-0001", "--out", "out.yaml")
    assert result.code == 1
    assert "could not be read (u-0001); nothing was written" in result.stderr
    assert not (workdir / "out.yaml").exists()
