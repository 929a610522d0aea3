"""`kill -9` the apply process at seeded random instants, then run it again: every time the
result converges, nothing recorded is lost, and no write is repeated without a read-back.
On both state backends (files, PostgreSQL: the `store` fixture): twelve kills on each, at
instants of their own."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stores
from ledgers import ledger_records
from sandboxproc import (
    SandboxProcess,
    loaded_state,
    reconciler,
    seed_state,
    start_apply,
    write_config,
    writes_repeated_without_read_back,
)
from test_e2e_apply import DESIRED, RECORDED, assert_converged, normal

pytestmark = pytest.mark.usefixtures("store")

# Kill points per backend, each backend its own seeds: 24 different instants in all.
KILL_POINTS = 12


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    started = SandboxProcess("--latency-ms", "30")
    yield started
    started.stop()


def kill_after_writes(victim: subprocess.Popen[str], sandbox: SandboxProcess,
                      rng: random.Random, writes: int) -> None:
    """Wait for the moment to kill: before any call (`writes` 0: start-up, planning), after
    `writes` writes reached the server (mid-run), or after all 30 of them (the final save).
    Counting writes rather than seconds keeps the spread whatever the machine's speed."""
    if writes == 0:
        time.sleep(rng.uniform(0.0, 0.6))
        return
    deadline = time.monotonic() + 30
    while victim.poll() is None and time.monotonic() < deadline:
        if sum(1 for entry in sandbox.log() if entry["method"] != "GET") >= writes:
            break
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.03))


def assert_the_ledger_holds_every_write_and_no_more(workdir: Path, sandbox: SandboxProcess,
                                                    seed: int) -> None:
    """Every write the sandbox received, across the killed run and the rerun, is on record;
    a record says `ok` only of a write the sandbox performed; one it never received can only
    be `unknown` and settled as not landed; and nothing of ours is called drift.

    A write whose body never arrived whole (the kill came between its headers and the end of
    its body: the sandbox logs no body, or a piece of one, and performs nothing) is, for this
    count, one the sandbox never received: its record is the request as it was meant,
    `unknown`, settled as not landed."""
    def key(method: str, path: str, body: Any) -> tuple[str, str, str]:
        return method, path, json.dumps(body, sort_keys=True)

    writes = [entry for entry in sandbox.log() if entry["method"] != "GET"
              and (isinstance(entry["body"], dict) or entry["performed"])]
    received = Counter(key(entry["method"], entry["path"].split("/live", 1)[1], entry["body"])
                       for entry in writes)
    performed = Counter(key(entry["method"], entry["path"].split("/live", 1)[1], entry["body"])
                        for entry in writes if entry["performed"])
    records = ledger_records(workdir)
    requests = [record for record in records if record.get("outcome")]
    on_record = Counter(key(record["method"], record["path"], record["request"])
                        for record in requests)
    assert not received - on_record, (seed, received - on_record)
    ok = Counter(key(record["method"], record["path"], record["request"])
                 for record in requests if record["outcome"] == "ok")
    assert not ok - performed, (seed, ok - performed)
    found = {request_id: record["found"] for record in records
             for request_id in record.get("settles", ())}
    for extra, count in (on_record - received).items():
        never_received = [record for record in requests
                          if key(record["method"], record["path"], record["request"]) == extra
                          and record["outcome"] == "unknown"
                          and found.get(record["request_id"]) == "not_landed"]
        assert len(never_received) >= count, (seed, extra)
    assert "drift" not in [record["operation"] for record in records], seed


def test_apply_killed_at_random_instants_loses_nothing_and_converges_on_rerun(
        tmp_path: Path, sandbox: SandboxProcess, store: stores.Store) -> None:
    writes_at_kill = []
    first = 0 if store.kind == "file" else KILL_POINTS
    for index, seed in enumerate(range(first, first + KILL_POINTS)):
        rng = random.Random(seed)
        # On each backend: one kill at start-up, one at the final save, the rest mid-run.
        writes = (0, 30)[index] if index < 2 else rng.randint(1, 29)
        workdir = tmp_path / f"run-{seed}"
        workdir.mkdir()
        write_config(workdir / "profiles.yaml", DESIRED)
        seed_state(workdir, RECORDED)  # a state, and a ledger, of its own for each kill
        sandbox.put_data(json.loads(json.dumps(RECORDED)))
        sandbox.clear_log()

        victim = start_apply(workdir, sandbox, "--parallelism", "2")
        kill_after_writes(victim, sandbox, rng, writes)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        writes_at_kill.append(sum(1 for entry in sandbox.log() if entry["performed"]
                                  and entry["method"] != "GET"))

        # Nothing lost: what the state says after folding the journal (PostgreSQL: as its rows
        # hold it) is true on the server, except for profiles it marks unconfirmed (a call was
        # in flight at the kill).
        state = loaded_state(workdir)
        server = sandbox.data()
        for name, data in state.profiles.items():
            if name not in state.unconfirmed:
                assert normal(server.get(name, {})) == normal(data.to_json()), (seed, name)

        rerun = reconciler("apply", "profiles.yaml", "--auto-approve", "--max-delete-percent",
                           "100", cwd=workdir, sandbox=sandbox)
        assert rerun.code == 0, (seed, rerun.output)
        assert_converged(workdir, sandbox)
        assert writes_repeated_without_read_back(sandbox.log()) == [], seed
        assert_the_ledger_holds_every_write_and_no_more(workdir, sandbox, seed)
    # The kills landed all along the run, most of them while calls were being made.
    assert len(set(writes_at_kill)) >= 6, writes_at_kill
    assert len([count for count in writes_at_kill if 0 < count < 30]) >= 7, writes_at_kill
