"""How fast `reconciler refresh` reads profiles, and what writing the refreshed state costs.

1. 10,000 profiles against the sandbox with 50 ms added latency at --parallelism 16: the
   ideal is 16 / 0.05 = 320 profiles/s; the target is at least 0.85 of it.
2. Writing the refreshed state: seconds per profile for a state of 10,000 and of 100,000
   profiles (the state is written once per refresh): the cost per profile must not grow
   with the state's size.

    python bench/refresh_throughput.py --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from apply_throughput import KEY, WORK, Sandbox  # noqa: E402
from generate import WORKSPACE, write_state, write_yaml  # noqa: E402
from plan_scale import record  # noqa: E402

from reconciler.state import LocalStateFile  # noqa: E402


def refresh_rate(profiles: int, latency_ms: float, parallelism: int) -> dict[str, float]:
    folder = WORK / "refresh"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "state").mkdir(parents=True)
    state = folder / "state" / f"{WORKSPACE}-live.json"
    write_state(state, profiles, in_sync_with_desired=True)
    write_yaml(folder / "profiles.yaml", profiles)
    sandbox = Sandbox(state, latency_ms)
    try:
        env = {**os.environ, "FYNO_API_KEY": KEY, "FYNO_BASE_URL": sandbox.url}
        log = folder / "refresh.log"
        with log.open("w") as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "reconciler", "refresh", "profiles.yaml",
                            "--parallelism", str(parallelism), "--no-color"], cwd=folder,
                           env=env, stdout=out, stderr=out, check=True)
            wall = time.perf_counter() - start
    finally:
        sandbox.stop()
    match = re.search(r"read (\d+) profile\(s\) in ([\d.]+) s \(([\d.]+) profiles/s\)",
                      log.read_text())
    assert match, log.read_text()[-2000:]
    return {"profiles": float(match.group(1)), "seconds": float(match.group(2)),
            "rate": float(match.group(3)), "wall": wall}


def save_seconds(profiles: int) -> float:
    """Best of 3 saves of a state of `profiles` profiles (what a refresh writes once)."""
    folder = WORK / f"save-{profiles}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / f"{WORKSPACE}-live.json"
    write_state(path, profiles, in_sync_with_desired=True)
    backend = LocalStateFile(path)
    best = float("inf")
    for _ in range(3):
        with backend.lock("bench"):
            state = backend.load(WORKSPACE, "live")
            start = time.perf_counter()
            backend.save(state)
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    rate = refresh_rate(10_000, 50, 16)
    small, large = save_seconds(10_000), save_seconds(100_000)
    ideal = 16 / 0.05
    text = "\n".join([
        f"On {os.cpu_count()} cores, the sandbox sharing them.",
        "",
        "| measure | result |",
        "|---|---:|",
        f"| refresh of 10,000 profiles, 50 ms latency, parallelism 16 | {rate['rate']:.0f} "
        f"profiles/s ({rate['seconds']:.1f} s reading, {rate['wall']:.1f} s whole process) |",
        f"| writing a 10,000-profile state | {small:.2f} s = {small / 10_000 * 1e6:.1f} µs "
        "per profile |",
        f"| writing a 100,000-profile state | {large:.2f} s = {large / 100_000 * 1e6:.1f} µs "
        "per profile |",
        "",
        f"- {rate['rate']:.0f} profiles/s = {rate['rate'] / ideal:.2f} of the ideal "
        f"{ideal:.0f} (target at least 0.85).",
        f"- Writing cost per profile, 100,000 against 10,000: "
        f"{(large / 100_000) / (small / 10_000):.2f}x (it must not grow: about 1x).",
    ])
    print(text)
    if args.results:
        record(args.results, text, name="refresh_throughput",
               command="python bench/refresh_throughput.py --results bench/RESULTS.md")


if __name__ == "__main__":
    main()
