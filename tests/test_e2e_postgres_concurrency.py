"""End to end on the PostgreSQL backend: several runners on one workspace at once.

Four `apply` processes start together: one runs, the others refuse naming it, or with
`--lock-timeout` wait and then find nothing to do. The holder killed with SIGKILL mid-apply
frees the lock at once: a new apply starts without `state unlock` and converges. The
ledger's chain verifies afterwards, without gap or fork.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandboxproc import API_KEY, SandboxProcess, reconciler, write_config

PROFILES = {f"u-{number:03d}": {"email": f"user{number}@example.com"} for number in range(24)}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxProcess]:
    started = SandboxProcess.seeded(tmp_path, {}, "--latency-ms", "60")
    yield started
    started.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    write_config(folder / "profiles.yaml", PROFILES)
    return folder


def start(workdir: Path, sandbox: SandboxProcess, url: str, *args: str) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("FYNO_", "RECONCILER_"))},
           "FYNO_API_KEY": API_KEY, "FYNO_BASE_URL": sandbox.url, "RECONCILER_BACKEND": url,
           "RECONCILER_RETRY_BASE": "0.01"}
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args, "apply", "profiles.yaml", "--auto-approve",
         "--parallelism", "2"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out + err


def on_postgres(workdir: Path, sandbox: SandboxProcess, url: str, *args: str) -> Any:
    result = reconciler(*args, cwd=workdir, sandbox=sandbox,
                        extra_env={"RECONCILER_BACKEND": url})
    assert "Traceback" not in result.output
    return result


def assert_chain_intact(workdir: Path, sandbox: SandboxProcess, url: str) -> None:
    verified = on_postgres(workdir, sandbox, url, "audit", "verify")
    assert verified.code == 0 and "chain intact" in verified.stdout, verified.output
    records = on_postgres(workdir, sandbox, url, "audit", "--format", "json").stdout
    seqs = [int(seq) for seq in re.findall(r'"seq":(\d+)', records)]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no fork


def test_four_applies_at_once_one_runs_and_the_others_name_it(
        workdir: Path, sandbox: SandboxProcess, postgres_url: str) -> None:
    processes = [start(workdir, sandbox, postgres_url) for _ in range(4)]
    results = [finish(process) for process in processes]

    ran = [(process, output) for process, (code, output) in zip(processes, results, strict=True)
           if code == 0]
    refused = [output for code, output in results if code != 0]
    assert len(ran) == 1, results
    runner = ran[0][0].pid
    assert len(refused) == 3
    assert all(f"locked by pid {runner} " in output and "'apply'" in output
               for output in refused), refused
    assert len(sandbox.data()) == len(PROFILES)
    assert on_postgres(workdir, sandbox, postgres_url, "plan", "profiles.yaml",
                       "--detailed-exitcode").code == 0
    assert_chain_intact(workdir, sandbox, postgres_url)


def test_with_a_lock_timeout_the_others_wait_and_find_nothing_to_do(
        workdir: Path, sandbox: SandboxProcess, postgres_url: str) -> None:
    processes = [start(workdir, sandbox, postgres_url, "--lock-timeout", "120")
                 for _ in range(4)]
    results = [finish(process) for process in processes]

    assert all(code == 0 for code, _ in results), results
    assert sum("Apply complete" in output for _, output in results) == 1
    assert sum("No changes" in output or "Nothing to apply" in output
               for _, output in results) == 3
    writes = Counter((entry["method"], entry["path"], json.dumps(entry["body"], sort_keys=True))
                     for entry in sandbox.log() if entry["method"] != "GET")
    assert set(writes.values()) == {1}  # no request made twice: only one apply made calls
    assert_chain_intact(workdir, sandbox, postgres_url)


def test_a_holder_killed_mid_apply_frees_the_lock_and_a_new_apply_converges(
        workdir: Path, sandbox: SandboxProcess, postgres_url: str) -> None:
    holder = start(workdir, sandbox, postgres_url)
    deadline = time.monotonic() + 60
    while sum(entry["method"] != "GET" for entry in sandbox.log()) < 4:
        assert time.monotonic() < deadline and holder.poll() is None, "apply ended too soon"
        time.sleep(0.05)
    holder.send_signal(signal.SIGKILL)
    holder.wait()

    rerun = start(workdir, sandbox, postgres_url)  # no unlock, no waiting
    code, output = finish(rerun)

    assert code == 0, output
    assert on_postgres(workdir, sandbox, postgres_url, "plan", "profiles.yaml",
                       "--detailed-exitcode").code == 0
    assert len(sandbox.data()) == len(PROFILES)
    assert_chain_intact(workdir, sandbox, postgres_url)
