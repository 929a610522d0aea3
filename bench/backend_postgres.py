"""The PostgreSQL backend against the file backend, as ratios measured in one run.

1. apply: 2,000 calls, 50 ms latency, --parallelism 16, against the sandbox, alternating the
   two backends (ROUNDS each): PostgreSQL's calls/s over the file's (target at least 0.9).
2. load: a 100,000-profile state loaded for a plan (in process, the two alternating, best
   of 5): PostgreSQL's time over the file's (target at most 1.5x).
3. a settled call: a call's row change and ledger record in one transaction, on a state of
   1,000 and of 100,000 profiles (500 calls each): the per-call ratio (target at most 1.1x).

A throwaway PostgreSQL server is started from the installed binaries (tests/pgserver.py),
with fsync on, as a production server would run.

    python bench/backend_postgres.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from apply_throughput import KEY, Sandbox  # noqa: E402
from generate import WORKSPACE, write_state, write_yaml  # noqa: E402
from pgserver import PostgresServer, find_binaries  # noqa: E402

from reconciler.audit import AuditContext  # noqa: E402
from reconciler.model import ChannelData  # noqa: E402
from reconciler.state import Begun, Holds, LocalStateFile  # noqa: E402
from reconciler.state.postgres import PostgresState  # noqa: E402

WORK = HERE / "_work" / "postgres"


def apply_rate(folder: Path, sandbox: Sandbox, backend: str | None) -> float:
    env = {**os.environ, "FYNO_API_KEY": KEY, "FYNO_BASE_URL": sandbox.url}
    env.pop("RECONCILER_BACKEND", None)
    if backend:
        env["RECONCILER_BACKEND"] = backend
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "profiles.yaml",
                           "--auto-approve", "--parallelism", "16", "--no-color"], cwd=folder,
                          env=env, capture_output=True, text=True, check=False)
    match = re.search(r"Apply complete: \d+ of (\d+) planned calls made, 0 failed, in "
                      r"[\d.]+ s \(([\d.]+) calls/s", done.stdout + done.stderr)
    if done.returncode or not match:
        sys.exit(f"apply failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return float(match.group(2))


def scenario_apply(server: PostgresServer, rounds: int, calls: int = 2000) -> dict[str, float]:
    rates: dict[str, list[float]] = {"file": [], "postgresql": []}
    for round_number in range(rounds):
        for kind in ("file", "postgresql"):
            folder = WORK / f"apply-{kind}-{round_number}"
            shutil.rmtree(folder, ignore_errors=True)
            (folder / "state").mkdir(parents=True)
            state = folder / "state" / f"{WORKSPACE}-live.json"
            write_state(state, calls, in_sync_with_desired=True)
            write_yaml(folder / "profiles.yaml", calls, new_email_below=calls)
            url = None
            if kind == "postgresql":
                url = server.create_database(f"apply_{round_number}")
                PostgresState(url, WORKSPACE, "live").restore(
                    LocalStateFile(state).load(WORKSPACE, "live"))
                state.unlink()
            sandbox = Sandbox(_seed(folder, calls), 50)
            try:
                rates[kind].append(apply_rate(folder, sandbox, url))
            finally:
                sandbox.stop()
            print(f"apply {kind} round {round_number + 1}: {rates[kind][-1]:.0f} calls/s",
                  file=sys.stderr)
    file_rate, pg_rate = (statistics.median(rates[k]) for k in ("file", "postgresql"))
    return {"file": file_rate, "postgresql": pg_rate, "ratio": pg_rate / file_rate}


def _seed(folder: Path, count: int) -> Path:
    """The sandbox's seed: the state's profiles, as the server holds them."""
    seed = folder / "seed.json"
    write_state(seed, count, in_sync_with_desired=True)
    return seed


def scenario_load(server: PostgresServer, count: int = 100_000) -> dict[str, float]:
    folder = WORK / "load"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / f"{WORKSPACE}-live.json"
    write_state(path, count)
    state = LocalStateFile(path).load(WORKSPACE, "live")
    url = server.create_database("load")
    PostgresState(url, WORKSPACE, "live").restore(state)
    makers = {"file": lambda: LocalStateFile(path),
              "postgresql": lambda: PostgresState(url, WORKSPACE, "live")}
    times = {kind: float("inf") for kind in makers}
    for _ in range(5):  # alternating, so that the machine's other load falls on both alike
        for kind, make in makers.items():
            backend = make()
            start = time.perf_counter()
            loaded = backend.load(WORKSPACE, "live")
            times[kind] = min(times[kind], time.perf_counter() - start)
            assert len(loaded.profiles) == count
    print(f"load: file {times['file']:.2f} s, postgresql {times['postgresql']:.2f} s",
          file=sys.stderr)
    return {**times, "ratio": times["postgresql"] / times["file"]}


def scenario_settle(server: PostgresServer, calls: int = 300,
                    rounds: int = 3) -> dict[str, float]:
    """Seconds per settled call (its `begin`, then its row and ledger record), one call at a
    time; the two state sizes alternate, best of `rounds`."""
    backends: dict[int, PostgresState] = {}
    for count in (1_000, 100_000):
        folder = WORK / f"settle-{count}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        path = folder / f"{WORKSPACE}-live.json"
        write_state(path, count)
        backends[count] = PostgresState(server.create_database(f"settle_{count}"), WORKSPACE,
                                        "live")
        backends[count].restore(LocalStateFile(path).load(WORKSPACE, "live"))
    context = AuditContext("bench", None, "plan", WORKSPACE, "live")
    best: dict[int, float] = {}
    for round_number in range(rounds):
        for count, backend in backends.items():
            with backend.lock("bench"):
                state = backend.load(WORKSPACE, "live")
                log = backend.open_journal(state)
                names = sorted(state.profiles)[round_number * calls:(round_number + 1) * calls]
                backend.ledger().prepare((WORKSPACE, "live", name) for name in names)
                start = time.perf_counter()
                for number, name in enumerate(names):
                    data = ChannelData({"email": f"settled{number}@example.com"})
                    log.record(Begun(name))
                    log.record(Holds(name, data), [context.entry(
                        name, "patch_channel", request={"channel": data.to_json()},
                        status=200, message="Updated", attempts=1, before={},
                        after=data.to_json(), outcome="ok")])
                seconds = (time.perf_counter() - start) / calls
                backend.save(state)
            best[count] = min(best.get(count, seconds), seconds)
            print(f"settle on {count}: {seconds * 1e3:.2f} ms/call", file=sys.stderr)
    return {"small": best[1_000], "large": best[100_000],
            "ratio": best[100_000] / best[1_000]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("settle", "load", "apply"),
                        help="Run one scenario (its row only).")
    args = parser.parse_args()
    binaries = find_binaries()
    if binaries is None:
        sys.exit("PostgreSQL is not installed: apt-get install postgresql")
    server = PostgresServer(binaries, durable=True)
    nothing = {"file": 0.0, "postgresql": 0.0, "small": 0.0, "large": 0.0, "ratio": 0.0}
    try:
        settle = scenario_settle(server) if args.only in (None, "settle") else nothing
        load = scenario_load(server) if args.only in (None, "load") else nothing
        applied = scenario_apply(server, args.rounds) if args.only in (None, "apply") else nothing
    finally:
        server.close()
    print("| measure | file | PostgreSQL | ratio | target |")
    print("|---|---:|---:|---:|---:|")
    print(f"| apply, 2,000 calls, 50 ms, parallelism 16 | {applied['file']:.0f} calls/s | "
          f"{applied['postgresql']:.0f} calls/s | {applied['ratio']:.3f} | >= 0.9 |")
    print(f"| load a 100,000-profile state | {load['file']:.2f} s | {load['postgresql']:.2f} s | "
          f"{load['ratio']:.3f}x | <= 1.5x |")
    print(f"| a settled call, 100,000 vs 1,000 profiles (PostgreSQL) | "
          f"{settle['small'] * 1e3:.2f} ms | {settle['large'] * 1e3:.2f} ms | "
          f"{settle['ratio']:.3f}x | <= 1.1x |")


if __name__ == "__main__":
    main()
