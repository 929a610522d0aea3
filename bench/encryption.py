"""The cost of encryption at rest, as ratios to the same work without a key, in one run.

Two workloads, each run alternately with and without a key (best of N each, so that load on
this shared machine falls on both alike):
- state: save and load a state of PROFILES profiles (an email, an sms, two push tokens and
  one in-app token each) with the local file backend;
- per call: what apply writes for one call besides the request: the journal's begin and
  settle lines (durable, as apply writes them) and the ledger record (its values sealed
  with the profile's data key in both runs; with a key, the journal lines are sealed and
  the data keys wrapped too), for CALLS calls on as many profiles.

Run: `.venv/bin/python bench/encryption.py [PROFILES] [CALLS]` (defaults 100000, 2000).
Targets (issue 11): state load and save at most 1.3x, per call at most 1.1x.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from state_scale import profile  # the same 100,000 profiles

from reconciler.audit import AuditContext, AuditLedger
from reconciler.encryption import Encryption
from reconciler.plan import Change, PatchChannels
from reconciler.state import Begun, Doubt, Holds, LocalStateFile, State

ROUNDS = 5
os.environ["BENCH_KEY"] = base64.b64encode(secrets.token_bytes(32)).decode()
KEYED = Encryption.configure("env:BENCH_KEY", None, None)
CLEAR = Encryption()


def best(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def state_round(folder: Path, state: State, encryption: Encryption) -> tuple[float, float]:
    backend = LocalStateFile(folder / f"s-{bool(encryption.encrypts)}.json", encryption)
    saved = [backend.save(state) if not backend.path.exists() else
             backend.load("FYBENCH", "live")]
    save = best(lambda: saved.append(backend.save(saved[-1])))
    load = best(lambda: backend.load("FYBENCH", "live"))
    return save, load


def calls_round(folder: Path, calls: int, encryption: Encryption,
                run: int) -> tuple[float, float]:
    """Wall and CPU seconds per call of journal begin + settle and the ledger record, on
    fresh files. The wall time is mostly the two fsyncs, whose time varies with the disk's
    other load; the CPU time is what encryption adds."""
    where = folder / f"calls-{encryption.encrypts}-{run}"
    where.mkdir()
    backend = LocalStateFile(where / "FYBENCH-live.json", encryption)
    with backend.lock("bench"):
        state = backend.save(State.new("FYBENCH", "live"))
        journal = backend.open_journal(state)
        context = AuditContext("bench", None, "plan", "FYBENCH", "live")
        with AuditLedger(where / "audit.jsonl", durable=True, encryption=encryption) as ledger:
            # as apply does: the data keys of the plan's profiles made in one append
            ledger.prepare(("FYBENCH", "live", f"u-{index:06d}") for index in range(calls))
            start, cpu = time.perf_counter(), time.process_time()
            for index in range(calls):
                distinct_id = f"u-{index:06d}"
                data = profile(index)
                call = PatchChannels(distinct_id, (
                    Change("email", None, f"user{index}@example.com"),
                    Change("sms", None, f"+9198790{index:05d}"),
                    *(Change("push", None, token) for token in data.channels["push"])))
                journal.record(Begun(distinct_id, Doubt(f"r{index}", call)))
                ledger.append(context.entry(
                    distinct_id, "patch_channel", request=call.request().body, status=200,
                    message="Updated", attempts=1, before={}, after=data.to_json(),
                    method="PATCH", path=f"/profiles/{distinct_id}/channel", outcome="ok",
                    request_id=f"r{index}"))
                journal.record(Holds(distinct_id, data))
            elapsed = time.perf_counter() - start, time.process_time() - cpu
        journal.close(discard=True)
    return elapsed[0] / calls, elapsed[1] / calls


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    state = State.new("FYBENCH", "live")
    state.profiles = {f"u-{index:06d}": profile(index) for index in range(count)}
    results: dict[bool, dict[str, list[float]]] = {
        keyed: {"save": [], "load": [], "call": [], "call CPU": []} for keyed in (False, True)}
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        for run in range(ROUNDS):
            for encryption in (CLEAR, KEYED):
                save, load = state_round(folder, state, encryption)
                call, cpu = calls_round(folder, calls, encryption, run)
                mine = results[encryption.encrypts]
                mine["save"].append(save)
                mine["load"].append(load)
                mine["call"].append(call)
                mine["call CPU"].append(cpu)
        size = {keyed: (folder / f"s-{keyed}.json").stat().st_size for keyed in (False, True)}
    print(f"{count} profiles (state {size[False] / 1e6:.1f} MB clear, {size[True] / 1e6:.1f} MB "
          f"sealed), {calls} calls; best of {ROUNDS}, alternating")
    print("| measure | without a key | with a key | ratio | target |")
    print("|---|---:|---:|---:|---:|")
    for name, unit, scale, target in (("save", "s", 1, 1.3), ("load", "s", 1, 1.3),
                                      ("call", "us", 1e6, 1.1), ("call CPU", "us", 1e6, 1.1)):
        clear, keyed = min(results[False][name]), min(results[True][name])
        print(f"| {name} | {clear * scale:.3f} {unit} | {keyed * scale:.3f} {unit} | "
              f"{keyed / clear:.3f}x | <= {target}x |")


if __name__ == "__main__":
    main()
