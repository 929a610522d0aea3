"""`reconciler doctor` against the sandbox process: what it finds, what it says to fix, and
that it never writes, never shows the key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandboxproc import API_KEY, SandboxProcess, reconciler, write_config, write_state

from reconciler.doctor import check_setup

SERVER = {"u-1": {"email": "one@example.com", "push": [{"token": "fcm_token:abc"}]}}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"FYE2E00001": {"live": SERVER}}))
    started = SandboxProcess(seed=seed)
    yield started
    started.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    write_config(tmp_path / "profiles.yaml", SERVER)
    write_state(tmp_path / "state" / "FYE2E00001-live.json", SERVER)
    return tmp_path


def test_a_good_setup_passes_every_check_with_gets_only(workdir: Path,
                                                        sandbox: SandboxProcess) -> None:
    result = reconciler("doctor", "profiles.yaml", cwd=workdir, sandbox=sandbox)
    assert result.code == 0, result.output
    assert "FAIL" not in result.output
    assert "answers as Fyno's profile API" in result.output
    assert "profile u-1: has Fyno's shape; channels: email, push" in result.output
    assert API_KEY not in result.output and f"{len(API_KEY)} characters" in result.output
    assert {entry["method"] for entry in sandbox.log()} == {"GET"}


def test_a_base_url_without_v1_fails_naming_the_fix(workdir: Path,
                                                    sandbox: SandboxProcess) -> None:
    result = reconciler("doctor", "profiles.yaml", cwd=workdir, sandbox=sandbox,
                        extra_env={"FYNO_BASE_URL": sandbox.url.removesuffix("/v1")})
    assert result.code == 1
    assert "FAIL base URL" in result.output and "ending in /v1" in result.output
    assert "FAIL API" in result.output and "404" in result.output


def test_a_wrong_key_fails_without_showing_either_key(workdir: Path,
                                                      sandbox: SandboxProcess) -> None:
    result = reconciler("doctor", "--id", "u-1", cwd=workdir, sandbox=sandbox,
                        key="sk-wrong-key-123",
                        extra_env={"FYNO_WSID": "FYE2E00001"})
    assert result.code == 1
    assert "FAIL API" in result.output and "401" in result.output
    assert "sk-wrong-key-123" not in result.output and API_KEY not in result.output


def test_a_missing_key_is_the_first_finding(workdir: Path) -> None:
    result = reconciler("doctor", "profiles.yaml", cwd=workdir, key=None)
    assert result.code == 1 and "FAIL API key: FYNO_API_KEY is not set" in result.output


def test_a_forbidding_gateway_is_named(workdir: Path, tmp_path: Path) -> None:
    seed = tmp_path / "seed403.json"
    seed.write_text(json.dumps({"FYE2E00001": {"live": SERVER}}))
    gateway = SandboxProcess("--gateway", "403", seed=seed)
    try:
        result = reconciler("doctor", "profiles.yaml", cwd=workdir, sandbox=gateway)
    finally:
        gateway.stop()
    assert result.code == 1 and "403" in result.output and "allow-list" in result.output


def test_setup_checks_mask_proxy_credentials_and_flag_plain_http() -> None:
    checks = check_setup({"FYNO_API_KEY": "k"}, "http://api.fyno.io/v1",
                         "http://user:secret@proxy.example:3128")
    by_name = {check.name: check for check in checks}
    assert not by_name["base URL"].ok and "not https" in by_name["base URL"].found
    assert "secret" not in by_name["proxy"].found and "proxy.example:3128" in by_name[
        "proxy"].found
