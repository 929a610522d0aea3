"""End to end: no e-mail address, phone number or token of the configuration reaches what a
person or a log reads, the stdout and the stderr of every command in every format it offers,
unless `--show-values`; what must carry the values (`export`'s YAML on stdout) carries them.

One workspace lives a whole life once per test process (validate, import, doctor, plan,
show, state, apply, drift made behind the tool's back and seen by refresh, an API that quotes
the values it refuses, audit, export), in process with CliRunner against the sandbox as a
real process; each stream of each output is then a case of its own. Every value is looked
for as written, in E.164 and by its national digits, and a token also without its prefix.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sandboxproc import (
    API_KEY,
    WORKSPACE,
    Run,
    SandboxProcess,
    reconciler,
    write_config,
    write_state,
)

from reconciler.cli import cli

ENDPOINT = "https://push.example.com/wp-Secret0005"
RENEWED = "https://push.example.com/wp-Renewed0011"
SERVER: dict[str, Any] = {  # the workspace before the reconciler adopts it
    "u-1": {"email": "alice.old@example.com", "sms": "+919879011111",
            "push": [{"token": "fcm_token:OldDeviceToken0001", "status": 1}],
            "webpush": [{"token": {"endpoint": ENDPOINT, "keys": {"auth": "tB"}}, "status": 1}]},
    "u-2": {"email": "bob.gone@example.com", "voice": "+442079460001",
            "inapp": [{"token": "inapp-Bob-Token0006", "status": 1}]},
    "u-3": {"push": [{"token": "apns_token:KeepToken0007", "status": 1},
                     {"token": "apns_token:DropToken0008", "status": 1}]},
}
DESIRED: dict[str, Any] = {
    "u-1": {"email": "alice.new@example.com", "sms": "+91 98790 22222",
            "whatsapp": "+1 (201) 555-0123",
            "push": ["fcm_token:NewDeviceToken0002",
                     {"token": "apns_token:StatusToken0003", "status": 0}]},
    "u-2": {},
    "u-3": {"push": ["apns_token:KeepToken0007"]},
    "u-4": {"email": "dora@example.com", "inapp": ["inapp-Dora-Token0009"]},
}
INVALID = """\
workspace: FYE2E00001
profiles:
  u-bad:
    email: "carol..bad@example.com"
    sms: 919879033333
    whatsapp: "+91 98790"
    voice: "+1 555 0100 9999 1234 5678"
    push: ["fcm_token:TwiceToken0012", "fcm_token:TwiceToken0012"]
"""
EMAILS = ["alice.old@example.com", "bob.gone@example.com", "alice.new@example.com",
          "dora@example.com", "alice.moved@example.com", "carol..bad@example.com"]
PHONES = [  # each number as written, in E.164, and by its national digits
    "+919879011111", "9879011111", "+91 98790 22222", "+919879022222", "9879022222",
    "+1 (201) 555-0123", "+12015550123", "2015550123", "+442079460001", "2079460001",
    "+15550100123", "5550100123", "+15550100456", "5550100456", "919879033333",
    "+919879033333", "9879033333", "+91 98790", "+9198790", "+1 555 0100 9999 1234 5678"]
TOKENS = ["fcm_token:OldDeviceToken0001", "fcm_token:NewDeviceToken0002",
          "apns_token:StatusToken0003", "inapp-Bob-Token0006", "apns_token:KeepToken0007",
          "apns_token:DropToken0008", "inapp-Dora-Token0009", "fcm_token:SdkAddedToken0010",
          "fcm_token:TwiceToken0012", ENDPOINT, RENEWED]
VALUES = sorted({*EMAILS, *PHONES, *TOKENS, *(token.rsplit(":", 1)[-1] for token in TOKENS),
                 *(token.rsplit("/", 1)[-1] for token in TOKENS)})


def leaks(text: str) -> list[str]:
    return [value for value in VALUES if value in text]


def drifted(server: dict[str, Any]) -> dict[str, Any]:
    """`server` changed behind the tool's back: an address replaced, a number removed and
    one added, an SDK's token added and one removed, the web push subscription renewed."""
    server = copy.deepcopy(server)
    u1 = server["u-1"]
    u1.update(email="alice.moved@example.com", voice="+15550100123", webpush=[
        {"token": {"endpoint": RENEWED, "keys": {"auth": "tB"}}, "status": 1}])
    u1.pop("sms", None)
    u1["push"] = [token for token in u1.get("push", []) if token["token"] not in (
        "fcm_token:NewDeviceToken0002", "fcm_token:SdkAddedToken0010")]
    u1["push"].append({"token": "fcm_token:SdkAddedToken0010", "status": 1})
    server["u-3"]["sms"] = "+15550100456"
    return server


class EchoingApi(ThreadingHTTPServer):
    """In front of the sandbox, an API that quotes values in its error messages: every PATCH
    is refused with a 400 quoting its body ("invalid channel data: ..."), and a GET of the
    `unreadable` profile answers 503 quoting the profile. All else is forwarded."""

    daemon_threads = True

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.upstream = sandbox.url.rsplit("/v1", 1)[0]
        self.unreadable: str | None = None
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"


class _EchoHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        server = self.server
        assert isinstance(server, EchoingApi)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        if self.command == "PATCH":
            status, payload = 400, self._quoting(body)
        else:
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in ("host", "connection")}
            request = urllib.request.Request(server.upstream + self.path, data=body,
                                             method=self.command, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()
            if server.unreadable and self.path.endswith(f"/profiles/{server.unreadable}"):
                status, payload = 503, self._quoting(payload)
        self.send_response(status)
        if status == 503:  # longer than apply waits: fails at once, not after backoff
            self.send_header("Retry-After", "86400")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    @staticmethod
    def _quoting(quoted: bytes | None) -> bytes:
        message = f"cannot do it: {(quoted or b'').decode()}"
        return json.dumps({"_message": message, "status": "error"}).encode()

    do_GET = do_POST = do_PATCH = _answer


class Session:
    """The CLI in process, in `workdir`, against one API; every output kept under a name."""

    def __init__(self, workdir: Path, url: str) -> None:
        self.workdir = workdir
        self.env: dict[str, str | None] = {
            "FYNO_API_KEY": API_KEY, "FYNO_BASE_URL": url, "FYNO_WSID": WORKSPACE,
            "FYNO_VERSION": None, "RECONCILER_RETRY_BASE": "0.01"}
        self.outputs: dict[str, Run] = {}

    def __call__(self, name: str, *args: str) -> Run:
        with contextlib.chdir(self.workdir):
            result = CliRunner().invoke(cli, list(args), env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        self.outputs[name] = Run(result.exit_code, result.stdout, result.stderr)
        return self.outputs[name]


def life(workdir: Path, sandbox: SandboxProcess) -> dict[str, Run]:
    """Every command, in every format, through one workspace's life; their outputs."""
    run = Session(workdir, sandbox.url)
    write_config(workdir / "profiles.yaml", DESIRED)
    (workdir / "invalid").mkdir()
    (workdir / "invalid" / "profiles.yaml").write_text(INVALID)
    assert run("validate", "validate", "profiles.yaml").code == 0
    assert run("validate-invalid", "validate", "invalid").code == 1
    run("validate-invalid-show-values", "validate", "invalid", "--show-values")
    assert run("plan-invalid-json", "plan", "invalid", "--format", "json").code == 1
    assert run("import", "import", "profiles.yaml").code == 0
    assert run("doctor", "doctor", "profiles.yaml", "--id", "u-1").code == 0
    for fmt in ("text", "json", "markdown"):
        assert run(f"plan-{fmt}", "plan", "profiles.yaml", "--format", fmt).code == 0
    run("plan-show-values", "plan", "profiles.yaml", "--show-values")
    assert run("plan-out", "plan", "profiles.yaml", "--out", "plan.json").code == 0
    for fmt in ("text", "json", "markdown"):
        assert run(f"show-{fmt}", "show", "plan.json", "--format", fmt).code == 0
    run("state-list", "state", "list")
    for fmt in ("text", "json"):
        assert run(f"state-show-{fmt}", "state", "show", "u-1", "--format", fmt).code == 0
    assert run("apply-json", "apply", "plan.json", "--format", "json").code == 0
    applied = sandbox.data()
    sandbox.put_data(drifted(applied))
    assert run("refresh-text", "refresh", "profiles.yaml", "--detailed-exitcode").code == 2
    sandbox.put_data(applied)
    assert run("refresh-json", "refresh", "profiles.yaml", "--format", "json",
               "--detailed-exitcode").code == 2
    sandbox.put_data(drifted(applied))
    assert run("plan-refresh", "plan", "profiles.yaml", "--refresh").code == 0
    assert run("refresh-markdown", "refresh", "profiles.yaml", "--format", "markdown",
               "--detailed-exitcode").code == 2
    assert run("apply-text", "apply", "profiles.yaml", "--auto-approve",
               "--max-delete-percent", "100").code == 0
    with EchoingApi(sandbox) as echo:
        threading.Thread(target=echo.serve_forever, daemon=True).start()
        run.env["FYNO_BASE_URL"] = echo.url
        echo.unreadable = "u-1"
        assert run("refresh-unreadable", "refresh", "profiles.yaml").code == 1
        echo.unreadable = None
        for fmt in ("text", "json"):
            sandbox.put_data(drifted(sandbox.data()))
            assert run(f"apply-refused-{fmt}", "apply", "profiles.yaml", "--auto-approve",
                       "--refresh", "--max-delete-percent", "100", "--format", fmt).code == 1
        echo.shutdown()
    run.env["FYNO_BASE_URL"] = sandbox.url
    for fmt in ("text", "json", "csv"):
        assert run(f"audit-{fmt}", "audit", "--format", fmt).code == 0
        assert run(f"audit-profile-{fmt}", "audit", "--profile", "u-1", "--format",
                   fmt).code == 0
    assert run("export-out", "export", "--id", "u-1", "--id", "u-3", "--out",
               "export.yaml").code == 0
    assert run("export-stdout", "export", "--id", "u-1", "--id", "u-3").code == 0
    return run.outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The life's outputs, lived once per run: pytest-xdist's workers share one copy."""
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    kept = shared / "masking-life.json"
    with (shared / "masking-life.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not kept.exists():
            workdir = tmp_path_factory.mktemp("masking")
            sandbox = SandboxProcess.seeded(workdir, SERVER)
            try:
                lived = life(workdir, sandbox)
            finally:
                sandbox.stop()
            kept.write_text(json.dumps({name: vars(run) for name, run in lived.items()}))
    return {name: Run(**run) for name, run in json.loads(kept.read_text()).items()}


MASKED = [
    "validate", "validate-invalid", "plan-invalid-json", "import", "doctor", "plan-text",
    "plan-json", "plan-markdown", "plan-out", "show-text", "show-json", "show-markdown",
    "state-list", "state-show-text", "state-show-json", "apply-json", "refresh-text",
    "refresh-json", "plan-refresh", "refresh-markdown", "apply-text", "refresh-unreadable",
    "apply-refused-text", "apply-refused-json", "audit-text", "audit-json", "audit-csv",
    "audit-profile-text", "audit-profile-json", "audit-profile-csv", "export-out",
    "export-stdout",
]
APPLY_SUMMARY = ("reconciler/cli/apply_cmd.py `_report` prints each failure's server message "
                 "raw ('  failed: ...'), in text and in --format json alike")
AUDIT = ("reconciler/audit/report.py: `masked` leaves the `message` field raw (json, csv), "
         "and `_text_line` and `_answer` (history) print it raw")
KNOWN_LEAKS = {("apply-refused-text", "stderr"): APPLY_SUMMARY,
               ("apply-refused-json", "stderr"): APPLY_SUMMARY,
               **{(f"audit{kind}-{fmt}", "stdout"): AUDIT
                  for kind in ("", "-profile") for fmt in ("text", "json", "csv")}}


def _cases() -> Iterator[Any]:
    for name in MASKED:
        for stream in ("stdout", "stderr"):
            if (name, stream) == ("export-stdout", "stdout"):
                continue  # configuration, by design: see the test below
            reason = KNOWN_LEAKS.get((name, stream))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            yield pytest.param(name, stream, id=f"{name}-{stream}", marks=marks)


@pytest.mark.parametrize(("name", "stream"), list(_cases()))
def test_no_value_reaches_stdout_or_stderr_without_show_values(
        outputs: dict[str, Run], name: str, stream: str) -> None:
    text = getattr(outputs[name], stream)
    assert leaks(text) == [], text


SHOWN = {  # outputs that carry values: asked for, or configuration written to stdout
    "plan-show-values": ["alice.new@example.com", "+919879022222", "+12015550123",
                         "fcm_token:NewDeviceToken0002", "+442079460001"],
    "validate-invalid-show-values": ["carol..bad@example.com", "919879033333", "+91 98790",
                                     "fcm_token:TwiceToken0012"],
    "export-stdout": ["alice.moved@example.com", "+12015550123", "apns_token:KeepToken0007",
                      RENEWED],
}


@pytest.mark.parametrize("name", SHOWN)
def test_values_are_shown_with_show_values_and_in_configuration_exported_to_stdout(
        outputs: dict[str, Run], name: str) -> None:
    output = outputs[name]
    assert [value for value in SHOWN[name] if value not in output.output] == [], output.output


def test_every_output_of_the_life_is_checked(outputs: dict[str, Run]) -> None:
    assert sorted(outputs) == sorted({*MASKED, *SHOWN})


def test_apply_progress_lines_in_a_log_show_no_value(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    """Progress lines are written every 5 s to a log: slow calls make some."""
    sandboxes.append(sandbox := SandboxProcess.seeded(tmp_path, SERVER, "--latency-ms", "1000"))
    write_state(tmp_path / "state" / f"{WORKSPACE}-live.json", SERVER)
    write_config(tmp_path / "profiles.yaml", DESIRED)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--parallelism", "1",
                        "--max-delete-percent", "100", cwd=tmp_path, sandbox=sandbox)
    assert result.code == 0, result.output
    assert re.search(r"^apply: \d+/\d+ calls \(\d+%\), ", result.stderr, re.M), result.stderr
    assert leaks(result.output) == [], result.output
