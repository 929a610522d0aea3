"""`reconciler sandbox`: every fault switch is an option that reaches `Faults` as given."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sandboxproc import API_KEY, WORKSPACE, SandboxProcess

from reconciler.cli import cli, sandbox_cmd
from reconciler.sandbox import Faults, SandboxConfig


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[SandboxConfig]:
    """The configs `reconciler sandbox` would serve, captured instead of serving."""
    configs: list[SandboxConfig] = []
    monkeypatch.setattr(sandbox_cmd, "serve_forever", configs.append)
    return configs


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["sandbox", *args], env={"FYNO_API_KEY": "k"})


def test_without_options_the_sandbox_serves_the_default_faults(
    served: list[SandboxConfig]
) -> None:
    assert run().exit_code == 0
    (config,) = served
    assert config.faults == Faults()


def test_every_new_option_reaches_its_faults_field(served: list[SandboxConfig]) -> None:
    result = run("--resend-token", "ignore", "--success-message", "other", "--gateway", "403",
                 "--gateway-paths", "reads", "--malformed", "channel-list",
                 "--malformed-paths", "all", "--malformed-rate", "0.25",
                 "--trickle-seconds", "0.5", "--reset-rate", "0.125", "--retry-after", "172800",
                 "--phone-format", "international", "--fault-seed", "9")
    assert result.exit_code == 0, result.output
    assert served[0].faults == Faults(
        resend_token="ignore", success_message="other", gateway="403", gateway_paths="reads",
        malformed="channel-list", malformed_paths="all", malformed_rate=0.25,
        trickle_seconds=0.5, reset_rate=0.125, retry_after=172800, phone_format="international",
        seed=9)


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--gateway", "500"], "'500' is not one of"),
     (["--reset-rate", "2"], "not in the range 0<=x<=1"),
     (["--malformed", "token-number", "--malformed-paths", "writes"],
      "GET profile bodies only"),
     (["--retry-after", "inf"], "retry_after"),
     (["--phone-format", "e164"], "'e164' is not one of")],
)
def test_bad_fault_options_are_usage_errors(
    served: list[SandboxConfig], args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert served == []


def test_help_lists_every_value_of_every_new_switch() -> None:
    text = CliRunner().invoke(cli, ["sandbox", "--help"], terminal_width=400).output
    for values in ("update|duplicate|ignore|merge", "documented|sdk|other",
                   "none|403|404|html|redirect", "all|reads|writes", "reads|writes|all",
                   "no-channel|channel-string|channel-null|channel-list|token-number|"
                   "token-missing|email-number|html|text|undecodable|trickle",
                   "as-sent|international"):
        assert values in text
    for option in ("--reset-rate", "--malformed-rate", "--trickle-seconds"):
        assert option in text


# -- as a process ------------------------------------------------------------------------------


@pytest.fixture
def process() -> Iterator[SandboxProcess]:
    started = SandboxProcess("--gateway", "403", "--gateway-paths", "writes",
                             "--malformed", "email-number", "--success-message", "sdk")
    try:
        started.put_data({"u": {"sms": "+919879000000"}})
        yield started
    finally:
        started.stop()


def _call(sandbox: SandboxProcess, method: str, tail: str, body: Any = None) -> tuple[int, Any]:
    port = int(sandbox.url.rsplit(":", 1)[1].split("/")[0])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, f"/v1/{WORKSPACE}/live/profiles{tail}",
                           None if body is None else json.dumps(body),
                           {"Authorization": f"Bearer {API_KEY}",
                            "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_the_options_reach_a_sandbox_run_as_a_process(process: SandboxProcess) -> None:
    status, body = _call(process, "GET", "/u")
    assert status == 200 and body["channel"] == {"sms": "+919879000000", "email": 9876543210}
    assert body["country_code"] == "IN"
    status, body = _call(process, "PATCH", "/u/channel", {"channel": {"email": "a@example.com"}})
    assert (status, body) == (403, {"message": "Forbidden"})
    assert process.data() == {"u": {"sms": "+919879000000"}}
    process.set_faults(success_message="sdk")
    status, body = _call(process, "PATCH", "/u/channel", {"channel": {"email": "a@example.com"}})
    assert (status, body["_message"]) == (200, "1 Record(s) updated successfully")
    assert [(e["method"], e["performed"], e["fault"]) for e in process.log()] == [
        ("GET", False, "malformed"), ("PATCH", False, "gateway"), ("PATCH", True, None)]
