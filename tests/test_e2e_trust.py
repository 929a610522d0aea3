"""End to end: trust under the real API. Bounded loops, only the reviewed writes, and a
misconfiguration or a hostile answer that never becomes data. The CLI as a process against
the sandbox as a process, under each value of the switches that stand for the API's UNKNOWNs
and for what a gateway, a wrong URL or a hostile server answers."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sandboxproc import SandboxProcess, reconciler, write_config, write_state

from reconciler import __version__
from reconciler.converge import MAX_REQUESTS_PER_PROFILE
from reconciler.model import ChannelData

STATE = Path("state") / "FYE2E00001-live.json"
RESEND = ("update", "duplicate", "ignore", "merge")


def serve(sandboxes: list[SandboxProcess], tmp_path: Path, server: dict[str, Any],
          *args: str) -> SandboxProcess:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"FYE2E00001": {"live": server}}))
    sandbox = SandboxProcess(*args, seed=seed)
    sandboxes.append(sandbox)
    return sandbox


def normal(channel: dict[str, Any]) -> dict[str, Any]:
    data = ChannelData.from_json(channel)
    return {name: value if isinstance(value, str) else sorted(value)
            for name, value in data.channels.items()}


def state_of(workdir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((workdir / STATE).read_text())
    return document


def requests_per_profile(sandbox: SandboxProcess) -> Counter[str]:
    return Counter(entry["distinct_id"] for entry in sandbox.log() if entry["distinct_id"])


# --- 1. every loop is bounded ---------------------------------------------------------------

@pytest.mark.parametrize("resend", RESEND)
def test_a_token_status_change_converges_by_delete_and_re_add_whatever_a_resend_does(
        tmp_path: Path, sandboxes: list[SandboxProcess], resend: str) -> None:
    held = {"push": [{"token": "fcm_token:x", "integration_id": "I1", "status": 1}],
            "email": "a@example.com"}
    sandbox = serve(sandboxes, tmp_path, {"u-1": held}, "--resend-token", resend)
    write_state(tmp_path / STATE, {"u-1": held})
    write_config(tmp_path / "profiles.yaml", {"u-1": {
        "email": "a@example.com", "push": [{"token": "fcm_token:x", "status": 0}]}})

    shown = reconciler("plan", "profiles.yaml", cwd=tmp_path)
    assert "re-add" in shown.output, shown.output
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox, timeout=60)

    assert result.code == 0, result.output
    writes = [(entry["method"], entry["body"]) for entry in sandbox.log()
              if entry["distinct_id"] == "u-1"]
    assert writes == [("POST", {"push": ["fcm_token:x"]}),
                      ("PATCH", {"channel": {"push": [{"token": "fcm_token:x", "status": 0}]}})]
    assert sandbox.data()["u-1"]["push"] == [{"token": "fcm_token:x", "status": 0}]
    again = reconciler("plan", "profiles.yaml", "--detailed-exitcode", cwd=tmp_path)
    assert again.code == 0, again.output


@pytest.mark.parametrize("resend", RESEND)
def test_a_state_that_lacks_a_held_token_ends_within_the_request_bound(
        tmp_path: Path, sandboxes: list[SandboxProcess], resend: str) -> None:
    # Drift: the server already holds the token the plan adds, with other fields. Whatever a
    # re-sent token does there, apply ends, within the bound, and records what it read.
    sandbox = serve(sandboxes, tmp_path, {"u-1": {"push": [{"token": "t", "status": 0}]}},
                    "--resend-token", resend, "--error-rate", "0.3", "--fault-seed", "9")
    write_state(tmp_path / STATE, {"u-1": {}})
    write_config(tmp_path / "profiles.yaml", {"u-1": {"push": [{"token": "t", "status": 1}]}})
    for _ in range(3):
        result = reconciler("apply", "profiles.yaml", "--auto-approve", "--refresh",
                            cwd=tmp_path, sandbox=sandbox, timeout=60)
        assert result.code in (0, 1) and "Traceback" not in result.output
    assert requests_per_profile(sandbox)["u-1"] <= 3 * (MAX_REQUESTS_PER_PROFILE + 1)
    assert result.code == 0, result.output
    assert normal(sandbox.data()["u-1"]) == normal({"push": [{"token": "t", "status": 1}]})


# --- 2. a reviewed plan is the whole set of writes -----------------------------------------

def _unconfirmed_y(tmp_path: Path, sandboxes: list[SandboxProcess]) -> SandboxProcess:
    """x needs a change; y was left unconfirmed by a crash after its PATCH had landed."""
    sandbox = serve(sandboxes, tmp_path, {"x": {"email": "x@old.example.com"},
                                          "y": {"email": "y@landed.example.com"}})
    write_state(tmp_path / STATE, {"x": {"email": "x@old.example.com"},
                                   "y": {"email": "y@old.example.com"}})
    document = json.loads((tmp_path / STATE).read_text())
    document["unconfirmed"] = ["y"]
    (tmp_path / STATE).write_text(json.dumps(document))
    write_config(tmp_path / "profiles.yaml", {"x": {"email": "x@new.example.com"},
                                              "y": {"email": "y@other.example.com"}})
    return sandbox


def test_a_saved_plan_for_x_sends_only_gets_to_an_unconfirmed_y(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = _unconfirmed_y(tmp_path, sandboxes)
    planned = reconciler("plan", "profiles.yaml", "--target", "x", "--out", "plan.json",
                         cwd=tmp_path)
    assert planned.code == 0, planned.output
    assert "y: unconfirmed" in planned.output

    result = reconciler("apply", "plan.json", cwd=tmp_path, sandbox=sandbox)

    assert result.code == 0, result.output
    to_y = [entry["method"] for entry in sandbox.log() if entry["distinct_id"] == "y"]
    assert to_y == ["GET"]
    assert sandbox.data()["y"] == {"email": "y@landed.example.com"}  # not reverted
    state = state_of(tmp_path)
    assert state["profiles"]["y"] == {"email": "y@landed.example.com"}  # its truth, recorded
    assert "y" not in state.get("unconfirmed", [])
    assert sandbox.data()["x"] == {"email": "x@new.example.com"}


def test_apply_with_a_target_writes_only_to_the_target(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = _unconfirmed_y(tmp_path, sandboxes)
    result = reconciler("apply", "profiles.yaml", "--target", "x", "--auto-approve",
                        cwd=tmp_path, sandbox=sandbox)
    assert result.code == 0, result.output
    assert "y: unconfirmed" in result.output
    assert {entry["method"] for entry in sandbox.log() if entry["distinct_id"] == "y"} <= {"GET"}
    assert sandbox.data()["y"] == {"email": "y@landed.example.com"}


# --- 3, 5. a misconfiguration is a setup error, never data ----------------------------------

SERVER = {f"p-{i:02d}": {"email": f"p{i}@example.com"} for i in range(30)}


def _adopted(tmp_path: Path, sandboxes: list[SandboxProcess], *args: str) -> SandboxProcess:
    sandbox = serve(sandboxes, tmp_path, SERVER, *args)
    write_state(tmp_path / STATE, SERVER)
    write_config(tmp_path / "profiles.yaml",
                 {**SERVER, "p-00": {"email": "changed@example.com"}})
    return sandbox


@pytest.mark.parametrize("command", [["refresh", "profiles.yaml"],
                                     ["apply", "profiles.yaml", "--auto-approve"],
                                     ["import", "profiles.yaml", "--replace"],
                                     ["plan", "profiles.yaml", "--refresh"]])
def test_a_base_url_without_v1_stops_with_the_url_and_status_and_touches_nothing(
        tmp_path: Path, sandboxes: list[SandboxProcess], command: list[str]) -> None:
    sandbox = _adopted(tmp_path, sandboxes)
    before = (tmp_path / STATE).read_bytes()
    wrong = sandbox.url.removesuffix("/v1")
    result = reconciler(*command, cwd=tmp_path, sandbox=sandbox,
                        extra_env={"FYNO_BASE_URL": wrong})
    assert result.code == 1, result.output
    assert "404" in result.output and wrong in result.output and "/v1" in result.output
    assert "Traceback" not in result.output and "drift" not in result.output.lower()
    assert (tmp_path / STATE).read_bytes() == before
    assert not (tmp_path / "state" / "audit.jsonl").exists()
    assert len(sandbox.log()) == 1


@pytest.mark.parametrize("gateway", ["403", "404", "html", "redirect"])
@pytest.mark.parametrize("paths", ["all", "reads"])
def test_a_gateway_answering_for_the_api_stops_the_command_at_once(
        tmp_path: Path, sandboxes: list[SandboxProcess], gateway: str, paths: str) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--gateway", gateway, "--gateway-paths", paths)
    before = (tmp_path / STATE).read_bytes()
    started = time.monotonic()
    result = reconciler("refresh", "profiles.yaml", "--parallelism", "8", cwd=tmp_path,
                        sandbox=sandbox)
    assert time.monotonic() - started < 15
    assert result.code == 1, result.output
    assert sandbox.url.removesuffix("/v1") in result.output
    assert (tmp_path / STATE).read_bytes() == before
    assert len(sandbox.log()) <= 8 + 2  # parallelism, and a few more


def test_a_gateway_refusing_writes_stops_apply_before_a_second_write(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--gateway", "403", "--gateway-paths", "writes")
    write_config(tmp_path / "profiles.yaml",
                 {name: {"email": f"new-{name}@example.com"} for name in SERVER})
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--parallelism", "4",
                        cwd=tmp_path, sandbox=sandbox)
    assert result.code == 1, result.output
    assert "403" in result.output and "allow-list" in result.output
    writes = [entry for entry in sandbox.log() if entry["method"] != "GET"]
    assert 1 <= len(writes) <= 4
    assert sandbox.data() == SERVER


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("command", [["refresh", "profiles.yaml"],
                                     ["apply", "profiles.yaml", "--auto-approve"]])
def test_an_api_that_cannot_be_reached_fails_fast_and_says_why(
        tmp_path: Path, sandboxes: list[SandboxProcess], command: list[str]) -> None:
    _adopted(tmp_path, sandboxes)
    before = (tmp_path / STATE).read_bytes()
    started = time.monotonic()
    result = reconciler(*command, cwd=tmp_path, extra_env={
        "FYNO_BASE_URL": f"http://127.0.0.1:{_free_port()}/v1", "RECONCILER_RETRY_BASE": "0.5"})
    assert time.monotonic() - started < 15
    assert result.code == 1
    assert "cannot reach" in result.output and "refused" in result.output.lower()
    assert (tmp_path / STATE).read_bytes() == before


# --- 4. never depend on example strings -----------------------------------------------------

@pytest.mark.parametrize("message", ["sdk", "other"])
def test_any_success_text_is_success(tmp_path: Path, sandboxes: list[SandboxProcess],
                                     message: str) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--success-message", message)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    assert sandbox.data()["p-00"] == {"email": "changed@example.com"}
    assert [entry["method"] for entry in sandbox.log() if entry["distinct_id"] == "p-00"] == [
        "PATCH"]


# --- 7. apply --refresh keeps what it learned -----------------------------------------------

def test_apply_refresh_saves_what_it_learned_when_there_is_nothing_to_apply(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = serve(sandboxes, tmp_path, {"u-1": {"email": "new@example.com"}})
    write_state(tmp_path / STATE, {"u-1": {"email": "old@example.com"}})
    write_config(tmp_path / "profiles.yaml", {"u-1": {"email": "new@example.com"}})
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--refresh",
                        cwd=tmp_path, sandbox=sandbox)
    assert result.code == 0 and "Nothing to apply" in result.output, result.output
    assert state_of(tmp_path)["profiles"]["u-1"] == {"email": "new@example.com"}


# --- 8. an answer is data only when it has Fyno's documented shape ---------------------------

SHAPES = ("no-channel", "channel-string", "channel-null", "channel-list", "token-number",
          "token-missing", "email-number", "html", "text", "undecodable")


@pytest.mark.parametrize("malformed", SHAPES)
def test_a_malformed_read_records_nothing(tmp_path: Path, sandboxes: list[SandboxProcess],
                                          malformed: str) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--malformed", malformed)
    before = (tmp_path / STATE).read_bytes()
    result = reconciler("refresh", "profiles.yaml", cwd=tmp_path, sandbox=sandbox)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert (tmp_path / STATE).read_bytes() == before


@pytest.mark.parametrize("malformed", ["html", "text", "undecodable"])
def test_a_malformed_answer_to_a_write_is_settled_by_a_read_back(
        tmp_path: Path, sandboxes: list[SandboxProcess], malformed: str) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--malformed", malformed,
                       "--malformed-paths", "writes")
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox)
    assert result.code == 0, result.output
    assert [entry["method"] for entry in sandbox.log() if entry["distinct_id"] == "p-00"] == [
        "PATCH", "GET"]
    assert state_of(tmp_path)["profiles"]["p-00"] == {"email": "changed@example.com"}


def test_a_trickling_answer_ends_within_the_deadline(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--malformed", "trickle", "--trickle-seconds",
                       "0.2")
    before = (tmp_path / STATE).read_bytes()
    started = time.monotonic()
    result = reconciler("refresh", "profiles.yaml", "--target", "p-01", cwd=tmp_path,
                        sandbox=sandbox, extra_env={"RECONCILER_TIMEOUT": "0.5"})
    assert time.monotonic() - started < 30
    assert result.code == 1, result.output
    assert "longer than 0.5 s" in result.output
    assert (tmp_path / STATE).read_bytes() == before


# --- 5. the summary of a stopped run ---------------------------------------------------------

def test_a_stopped_apply_counts_the_calls_made_and_left(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--gateway", "403", "--gateway-paths", "writes")
    write_config(tmp_path / "profiles.yaml",
                 {name: {"email": f"new-{name}@example.com"} for name in SERVER})
    result = reconciler("apply", "profiles.yaml", "--auto-approve", "--parallelism", "1",
                        cwd=tmp_path, sandbox=sandbox)
    found = re.search(r"(\d+) of (\d+) planned calls made, (\d+) left", result.output)
    assert found, result.output
    made, planned, left = map(int, found.groups())
    assert (made, planned, left) == (0, 30, 30)


# --- 6. a real HTTP client: proxies and User-Agent -------------------------------------------

class _Proxy(ThreadingHTTPServer):
    """A forwarding HTTP proxy that remembers each request line and User-Agent it carried."""

    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        server = self.server
        assert isinstance(server, _Proxy)
        server.seen.append((self.path, self.headers.get("User-Agent", "")))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() not in ("host", "connection", "proxy-connection")}
        request = urllib.request.Request(self.path, data=body, method=self.command,
                                         headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                status, payload, kind = response.status, response.read(), \
                    response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), \
                error.headers.get("Content-Type", "")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = _forward


def test_requests_go_through_the_proxy_of_the_environment_with_a_user_agent(
        tmp_path: Path, sandboxes: list[SandboxProcess]) -> None:
    sandbox = _adopted(tmp_path, sandboxes)
    proxy = _Proxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                            sandbox=sandbox, extra_env={
                                "HTTP_PROXY": f"http://127.0.0.1:{proxy.server_address[1]}",
                                "NO_PROXY": "", "no_proxy": ""})
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert result.code == 0, result.output
    assert sandbox.data()["p-00"] == {"email": "changed@example.com"}
    assert any(path.startswith(sandbox.url) and path.endswith("/profiles/p-00/channel")
               for path, _agent in proxy.seen), proxy.seen
    assert {agent for _path, agent in proxy.seen} == {f"reconciler/{__version__}"}


def test_no_proxy_naming_the_host_goes_direct(tmp_path: Path,
                                              sandboxes: list[SandboxProcess]) -> None:
    sandbox = _adopted(tmp_path, sandboxes)
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox,
                        extra_env={"HTTP_PROXY": f"http://127.0.0.1:{_free_port()}",
                                   "NO_PROXY": "localhost,127.0.0.1"})
    assert result.code == 0, result.output


def test_a_retry_after_of_days_ends_the_run_at_once(tmp_path: Path,
                                                    sandboxes: list[SandboxProcess]) -> None:
    sandbox = _adopted(tmp_path, sandboxes, "--throttle-rate", "1", "--retry-after", "172800")
    started = time.monotonic()
    result = reconciler("apply", "profiles.yaml", "--auto-approve", cwd=tmp_path,
                        sandbox=sandbox)
    assert time.monotonic() - started < 20
    assert result.code == 1 and "172800" in result.output, result.output
    assert sandbox.data() == SERVER
