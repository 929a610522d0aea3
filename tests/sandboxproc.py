"""End-to-end harness: the sandbox as a separate process on a free loopback port, and the
reconciler CLI run as a process against it.

Every CLI process keeps its state, lock and ledger in the test's store (`stores.ACTIVE`: files
under its working directory, or a PostgreSQL database); `seed_state`, `recorded_state`,
`loaded_state`, `state_snapshot` and `state_option` seed and read that state whichever it is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import stores

from reconciler.state import State

API_KEY = "sk-e2e-7f3c9a1b2d4e6f80"
WORKSPACE = "FYE2E00001"


class SandboxProcess:
    """`reconciler sandbox --port 0 ...` in a child process; stopped with SIGTERM."""

    def __init__(self, *args: str, seed: Path | None = None) -> None:
        command = [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", *args]
        if seed is not None:
            command += ["--seed", str(seed)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "FYNO_API_KEY": API_KEY})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1].strip()  # http://127.0.0.1:PORT/v1
        self.admin = self.url.rsplit("/v1", 1)[0] + "/_sandbox"

    @classmethod
    def seeded(cls, folder: Path, profiles: dict[str, Any], *args: str) -> SandboxProcess:
        """A sandbox whose live version of `WORKSPACE` starts with `profiles` (the seed file
        is written in `folder`)."""
        seed = folder / "seed.json"
        seed.write_text(json.dumps({WORKSPACE: {"live": profiles}}))
        return cls(*args, seed=seed)

    def data(self, version: str = "live") -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/data")
        return dict(result.get(WORKSPACE, {}).get(version, {}))

    def put_data(self, profiles: dict[str, Any], version: str = "live") -> None:
        self._call("PUT", "/data", {WORKSPACE: {version: profiles}})

    def log(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/log")
        return result

    def clear_log(self) -> None:
        self._call("DELETE", "/log")

    def set_faults(self, **faults: Any) -> None:
        self._call("PUT", "/faults", faults)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.admin + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def reconciler(*args: str | Path, cwd: Path, sandbox: SandboxProcess | None = None,
               key: str | None = API_KEY, extra_env: dict[str, str] | None = None,
               timeout: float = 120) -> Run:
    """Run the CLI as a process, as CI would: no terminal, the key only in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FYNO_", "RECONCILER_"))}
    env["RECONCILER_RETRY_BASE"] = "0.01"
    if sandbox is not None:
        env["FYNO_BASE_URL"] = sandbox.url
    if key is not None:
        env["FYNO_API_KEY"] = key
    env.update(stores.ACTIVE.env(cwd))
    env.update(extra_env or {})
    result = subprocess.run([sys.executable, "-m", "reconciler", *map(str, args)], cwd=cwd,
                            env=env, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, check=False)
    return Run(result.returncode, result.stdout, result.stderr)


def start_apply(workdir: Path, sandbox: SandboxProcess, *args: str,
                output: int | None = subprocess.DEVNULL,
                errors: int | IO[str] | None = None) -> subprocess.Popen[str]:
    """`reconciler apply profiles.yaml --auto-approve ARGS` in the background; its stderr
    goes where `errors` says, or with its stdout to `output`."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FYNO_", "RECONCILER_"))},
           "FYNO_API_KEY": API_KEY, "FYNO_BASE_URL": sandbox.url,
           "RECONCILER_RETRY_BASE": "0.01", **stores.ACTIVE.env(workdir)}
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "profiles.yaml", "--auto-approve",
         "--max-delete-percent", "100", *args],
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=output,
        stderr=output if errors is None else errors, text=True,
        preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """SIGINT as a terminal gives it, whatever the test run inherited: a run started in the
    background by a non-interactive shell (`nohup make test &`) ignores SIGINT, and an
    ignored signal stays ignored across exec, so the Ctrl-C test's apply would not see it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_config(path: Path, profiles: dict[str, Any]) -> None:
    """A desired-state YAML file (JSON is YAML: every value stays a quoted string)."""
    path.write_text(json.dumps({"workspace": WORKSPACE, "version": "live",
                                "profiles": profiles}, indent=1))


def write_state(path: Path, profiles: dict[str, Any], serial: int = 1) -> None:
    """A state file at `path` (the file backend only: `seed_state` seeds the test's store)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state_document(profiles, serial)))


def state_document(profiles: dict[str, Any], serial: int = 1,
                   **fields: Any) -> dict[str, Any]:
    """A state of `WORKSPACE` live recording `profiles`, as its file holds it; `fields` adds
    others (`unconfirmed`, `doubts`, ...)."""
    return {"format_version": 1, "lineage": "00000000-0000-4000-8000-000000000e2e",
            "serial": serial, "workspace": WORKSPACE, "version": "live",
            "profiles": {name: _with_status(channel) for name, channel in profiles.items()},
            **fields}


def seed_state(workdir: Path, profiles: dict[str, Any], serial: int = 1,
               **fields: Any) -> None:
    """Record `profiles` (and `fields`) as the state of `WORKSPACE` live in the test's store
    for CLI runs in `workdir`: `state/FYE2E00001-live.json` there, or its database."""
    stores.ACTIVE.write(workdir, state_document(profiles, serial, **fields))


def recorded_state(workdir: Path) -> dict[str, Any]:
    """The state the runs in `workdir` recorded, as the JSON document its file holds."""
    return stores.ACTIVE.document(workdir, WORKSPACE, "live")


def loaded_state(workdir: Path) -> State:
    """That state as the next command loads it (a file backend's journal folded in)."""
    return stores.ACTIVE.load(workdir, WORKSPACE, "live")


def state_snapshot(workdir: Path) -> bytes:
    """That state's bytes (the file's; the same document for PostgreSQL), to tell whether
    a command changed it at all, serial included."""
    return stores.ACTIVE.snapshot(workdir, WORKSPACE, "live")


def state_option(path: Path | str) -> list[str]:
    """`--state PATH` on the file backend; nothing on PostgreSQL, whose state FYNO_WSID
    names (set it in the command's environment: it is harmless next to --state)."""
    return stores.ACTIVE.state_option(path)


def _with_status(channel: dict[str, Any]) -> dict[str, Any]:
    return {name: [{"status": 1, **token} for token in value] if isinstance(value, list)
            else value for name, value in channel.items()}


def writes_repeated_without_read_back(log: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Writes sent again, identical, to a profile with no GET of it since the first copy
    reached the server: the thing apply must never do."""
    offenders = []
    last_write: dict[str, tuple[str, str, str, bool]] = {}
    for entry in log:
        distinct_id = entry["distinct_id"]
        if distinct_id is None:
            continue
        if entry["method"] == "GET":
            last_write.pop(distinct_id, None)
            continue
        key = (entry["method"], entry["path"], json.dumps(entry["body"], sort_keys=True),
               entry["performed"])
        previous = last_write.get(distinct_id)
        if previous is not None and previous[:3] == key[:3] and previous[3]:
            offenders.append(entry)
        last_write[distinct_id] = key
    return offenders
