"""How fast `reconciler apply` makes and records calls, against the sandbox over real HTTP.

1. 2,000 calls, 50 ms added latency, --parallelism 16: the ideal is 16 / 0.05 = 320 calls/s;
   the target is at least 0.85 of it.
2. 20,000 calls without added latency, the state holding 100,000 profiles: calls/s and peak
   memory. In the same run, 1,000 calls on a 1,000-profile state (one profile cannot take
   20 calls): the cost of recording a call must not grow with the state (calls/s within 1.2x).
Each apply is timed as a whole process, and its own report (the call phase: journal, audit
ledger and the final save included) gives calls/s; peak RSS comes from wait4.
3. The adoption plan: `plan --out plan.json` of 100,000 new profiles (no state yet), then
   `apply plan.json` against an empty sandbox without latency: peak memory at most 800 MB,
   and calls/s within 10% of the same for a 1,000-profile adoption plan, in the same run.
   `--only-adoption` runs this scenario alone.
4. With `--baseline REV`: scenario 1 again, alternating this tree's reconciler with the one
   of git revision REV (checked out in a worktree under bench/_work), `--rounds` times each,
   against the same sandbox: the median ratio of their calls/s, measured in one run.

    python bench/apply_throughput.py --results bench/RESULTS.md [--baseline HEAD~1]
    python bench/apply_throughput.py --only-adoption --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import WORKSPACE, write_state, write_yaml  # noqa: E402
from plan_scale import record  # noqa: E402

WORK = HERE / "_work" / "apply"
KEY = "bench-key-not-secret"


class Sandbox:
    def __init__(self, seed: Path, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "sandbox", "--port", "0", "--seed", str(seed),
             "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE, text=True, env={**os.environ, "FYNO_API_KEY": KEY})
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.url = line.rsplit(" ", 1)[1].strip()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


def run_apply(folder: Path, sandbox: Sandbox, parallelism: int,
              source: Path | None = None, what: tuple[str, ...] = ("profiles.yaml",
                                                                   "--auto-approve"),
              ) -> dict[str, float]:
    """One `reconciler apply` process; `source`: run the package of that source tree;
    `what`: the configuration (and --auto-approve), or a saved plan."""
    env = {**os.environ, "FYNO_API_KEY": KEY, "FYNO_BASE_URL": sandbox.url}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    argv = [sys.executable, "-m", "reconciler", "apply", *what,
            "--parallelism", str(parallelism), "--no-color"]
    log = folder / "apply.log"  # a file, not a pipe: the plan text would fill a pipe
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=folder, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    output = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"apply failed:\n{output[-3000:]}")
    # both forms: "N planned calls, ..." (before 0.1.0's trust work) and "N of N planned calls
    # made, ..." (after)
    match = re.search(r"Apply complete: (?:\d+ of )?(\d+) planned calls(?: made)?, 0 failed, "
                      r"in ([\d.]+) s \(([\d.]+) calls/s", output)
    assert match, output[-2000:]
    calls, seconds, rate = int(match.group(1)), float(match.group(2)), float(match.group(3))
    return {"calls": calls, "apply_s": seconds, "rate": rate, "wall_s": wall,
            "peak_mb": usage.ru_maxrss / 1024}


def scenario(name: str, profiles: int, calls: int, latency_ms: float,
             parallelism: int) -> dict[str, float]:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "state").mkdir(parents=True)
    state = folder / "state" / f"{WORKSPACE}-live.json"
    write_state(state, profiles, in_sync_with_desired=True)
    write_yaml(folder / "profiles.yaml", profiles, new_email_below=calls)
    sandbox = Sandbox(state, latency_ms)
    try:
        result = run_apply(folder, sandbox, parallelism)
    finally:
        sandbox.stop()
    print(f"{name}: {result['calls']:.0f} calls, {result['rate']:.0f} calls/s", file=sys.stderr)
    return {**result, "profiles": profiles, "latency_ms": latency_ms,
            "parallelism": parallelism}


def adoption(profiles: int, parallelism: int = 16) -> dict[str, float]:
    """`plan --out plan.json` of `profiles` new profiles, then `apply plan.json` against an
    empty sandbox without latency (each call a PATCH answered 404, then the create)."""
    folder = WORK / f"adoption-{profiles}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "state").mkdir(parents=True)
    write_yaml(folder / "profiles.yaml", profiles)
    seed = folder / "seed.json"
    write_state(seed, 0)
    planned = subprocess.run([sys.executable, "-m", "reconciler", "plan", "profiles.yaml",
                              "--out", "plan.json", "--format", "json"], cwd=folder,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if planned.returncode != 0:
        sys.exit(f"plan failed:\n{planned.stderr.decode()[-3000:]}")
    sandbox = Sandbox(seed, 0)
    try:
        result = run_apply(folder, sandbox, parallelism, what=("plan.json",))
    finally:
        sandbox.stop()
    print(f"adoption of {profiles}: {result['calls']:.0f} calls, {result['rate']:.0f} calls/s, "
          f"{result['peak_mb']:.0f} MB", file=sys.stderr)
    return {**result, "profiles": profiles}


ADOPTION_PROFILE = """
Where the memory went (issue 13), from `tracemalloc` snapshots compared at points of an
in-process apply of 3,000 and 20,000 profiles, and RSS around each step at 100,000. Before:
1096 MB peak, 141 calls/s against 117 for 1,000 profiles, in one run. At 100,000 profiles:

- `ledger.prepare` (a data key per profile): +456 MB RSS, a traced peak of 481 MB. Each of the
  100,000 key lines `orjson.dumps` made kept its 4 KB output buffer (410 MB) until the one
  append. Now each line is copied to its length: +51 MB.
- The data keys were held twice for the whole run (55 MB each): by the ledger that prepared
  them and by the journal's. Now once (44 MB: workspace and version interned, a key kept in
  clear not cached a second time), and let go when the journal closes, before the save.
- The works of `plan_works`, all made next to the plan: +51 MB. Now made as workers take them.
- The final save (`codec.encode`): the whole state as JSON dicts next to its bytes, +229 MB,
  the peak of the run. Now the profiles and their managed entries go 1,000 at a time into
  one buffer: about the bytes (64 MB) and one block.
- Left as it is: the state the run records (channel data and managed entries, ~1.7 KB per
  profile), and the saved plan as read (166 MB; `planread.py`, outside this change).
"""


def adoption_report(large: dict[str, float], small: dict[str, float]) -> str:
    lines = [
        "",
        "Adoption: `apply plan.json` of a saved plan where every profile is new (no state, an "
        "empty sandbox, no latency, parallelism 16), in the same run:",
        "",
        "| saved plan | calls/s (apply phase) | apply phase | whole process | peak RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in (large, small):
        lines.append(f"| {int(row['profiles']):,} new profiles | {row['rate']:.0f} "
                     f"| {row['apply_s']:.1f} s | {row['wall_s']:.1f} s "
                     f"| {row['peak_mb']:.0f} MB |")
    lines += [
        "",
        f"- {int(large['profiles']):,} profiles: {large['rate']:.0f} calls/s = "
        f"{large['rate'] / small['rate']:.2f} of the {int(small['profiles']):,}-profile plan's "
        f"{small['rate']:.0f} (target at least 0.90); peak {large['peak_mb']:.0f} MB (target "
        "at most 800 MB).",
        ADOPTION_PROFILE,
    ]
    return "\n".join(lines)


def report(latency: dict[str, float], large: dict[str, float], small: dict[str, float]) -> str:
    ideal = latency["parallelism"] / (latency["latency_ms"] / 1000)
    rows = [
        ("2,000 calls, 50 ms latency, parallelism 16, 2,000-profile state", latency),
        ("20,000 calls, no latency, parallelism 16, 100,000-profile state", large),
        ("1,000 calls, no latency, parallelism 16, 1,000-profile state", small),
    ]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; the sandbox runs on "
        "the same 2 cores as the reconciler.",
        "",
        "| scenario | calls/s (apply phase) | apply phase | whole process | peak RSS |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, row in rows:
        lines.append(f"| {label} | {row['rate']:.0f} | {row['apply_s']:.1f} s "
                     f"| {row['wall_s']:.1f} s | {row['peak_mb']:.0f} MB |")
    lines += [
        "",
        f"- With 50 ms latency: {latency['rate']:.0f} calls/s = "
        f"{latency['rate'] / ideal:.2f} of the ideal {ideal:.0f} (target at least 0.85).",
        f"- Recording cost against state size: {small['rate']:.0f} calls/s with 1,000 "
        f"profiles, {large['rate']:.0f} with 100,000: ratio "
        f"{small['rate'] / large['rate']:.2f} (target at most 1.2).",
    ]
    return "\n".join(lines)


def baseline(revision: str, rounds: int) -> str:
    """Scenario 1 for this tree and for `revision`, alternating, against one sandbox."""
    source = WORK / "baseline"
    subprocess.run(["git", "worktree", "remove", "--force", str(source)],
                   capture_output=True, check=False)
    subprocess.run(["git", "worktree", "add", "--detach", str(source), revision],
                   check=True, capture_output=True)
    rates: dict[str, list[float]] = {"this tree": [], revision: []}
    try:
        for _ in range(rounds):
            for label, tree in (("this tree", None), (revision, source)):
                folder = WORK / "compare"
                shutil.rmtree(folder, ignore_errors=True)
                (folder / "state").mkdir(parents=True)
                state = folder / "state" / f"{WORKSPACE}-live.json"
                write_state(state, 2_000, in_sync_with_desired=True)
                write_yaml(folder / "profiles.yaml", 2_000, new_email_below=2_000)
                sandbox = Sandbox(state, 50)
                try:
                    rates[label].append(run_apply(folder, sandbox, 16, tree)["rate"])
                finally:
                    sandbox.stop()
                print(f"{label}: {rates[label][-1]:.0f} calls/s", file=sys.stderr)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(source)],
                       capture_output=True, check=False)
    ours, theirs = (statistics.median(rates[key]) for key in ("this tree", revision))
    runs = ", ".join(f"{rate:.0f}" for rate in rates["this tree"])
    old = ", ".join(f"{rate:.0f}" for rate in rates[revision])
    return (f"- Same run, 2,000 calls at 50 ms, parallelism 16, {rounds} alternating runs each: "
            f"this tree {ours:.0f} calls/s (runs: {runs}), `{revision}` {theirs:.0f} calls/s "
            f"(runs: {old}): ratio {ours / theirs:.3f} (target at least 0.95).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="record the table in this markdown file")
    parser.add_argument("--baseline", metavar="REV",
                        help="also compare scenario 1 with this git revision's reconciler")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, with --baseline")
    parser.add_argument("--only-adoption", action="store_true",
                        help="run only the adoption scenario (recorded in its own section)")
    parser.add_argument("--adoption-profiles", type=int, default=100_000)
    args = parser.parse_args()
    adopted = adoption_report(adoption(args.adoption_profiles), adoption(1_000))
    if args.only_adoption:
        print(adopted)
        if args.results:
            record(args.results, adopted.strip(), name="apply_adoption",
                   command="python bench/apply_throughput.py --only-adoption "
                           "--results bench/RESULTS.md")
        return
    latency = scenario("latency", 2_000, 2_000, 50, 16)
    large = scenario("large-state", 100_000, 20_000, 0, 16)
    small = scenario("small-state", 1_000, 1_000, 0, 16)
    text = report(latency, large, small) + "\n" + adopted
    if args.baseline:
        text += "\n" + baseline(args.baseline, args.rounds)
    print(text)
    if args.results:
        record(args.results, text, name="apply_throughput",
               command="python bench/apply_throughput.py --results bench/RESULTS.md")


if __name__ == "__main__":
    main()
