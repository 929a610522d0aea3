"""How `reconciler plan` scales: 1,000 to 100,000 profiles, timed end to end as a process.

In the same run, PyYAML's CSafeLoader alone parses the same YAML, so the targets are ratios
measured side by side on a machine shared with others:
- at 100,000 profiles the whole `plan` takes at most 0.25x the time of the CSafeLoader parse,
- its peak memory stays under 1 GB,
- 10x the profiles costs at most 11x the time.

    python bench/plan_scale.py                     # 1k, 10k, 100k; prints a markdown table
    python bench/plan_scale.py --results bench/RESULTS.md   # and records it there
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import write_state, write_yaml  # noqa: E402

WORK = HERE / "_work"
CSAFE = "import sys, yaml; yaml.load(open(sys.argv[1], 'rb'), Loader=yaml.CSafeLoader)"


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process; its output is discarded."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        assert process.stderr is not None
        sys.exit(f"failed: {' '.join(argv)}\n{process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024


def prepare(size: int) -> Path:
    folder = WORK / str(size)
    if not (folder / "state.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        write_yaml(folder / "profiles.yaml", size)
        write_state(folder / "state.json", size)
    return folder


def measure(size: int, repeat: int) -> dict[str, float]:
    folder = prepare(size)
    yaml_path = folder / "profiles.yaml"
    plan = [sys.executable, "-m", "reconciler", "plan", str(yaml_path),
            "--state", str(folder / "state.json"), "--no-color"]
    parse = [sys.executable, "-c", CSAFE, str(yaml_path)]
    plan_runs = [timed(plan) for _ in range(repeat)]
    parse_runs = [timed(parse) for _ in range(repeat)]
    return {
        "size": size,
        "yaml_mb": yaml_path.stat().st_size / 1e6,
        "plan_s": statistics.median(run[0] for run in plan_runs),
        "plan_mb": max(run[1] for run in plan_runs),
        "csafe_s": statistics.median(run[0] for run in parse_runs),
        "csafe_mb": max(run[1] for run in parse_runs),
    }


def report(rows: list[dict[str, float]], repeat: int) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
        f"median of {repeat} cold process runs each.",
        "",
        "| profiles | YAML | `reconciler plan` | plan peak RSS | CSafeLoader parse alone "
        "| its peak RSS | plan / parse |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {int(row['size']):,} | {row['yaml_mb']:.1f} MB | {row['plan_s']:.2f} s "
            f"| {row['plan_mb']:.0f} MB | {row['csafe_s']:.2f} s | {row['csafe_mb']:.0f} MB "
            f"| {row['plan_s'] / row['csafe_s']:.3f}x |"
        )
    lines.append("")
    for small, large in itertools.pairwise(rows):
        factor = large["size"] / small["size"]
        lines.append(f"- {int(factor)}x the profiles ({int(small['size']):,} to "
                     f"{int(large['size']):,}) cost {large['plan_s'] / small['plan_s']:.2f}x "
                     f"the time (target at most {factor * 1.1:.0f}x).")
    largest = rows[-1]
    lines.append(f"- At {int(largest['size']):,} profiles: plan / parse = "
                 f"{largest['plan_s'] / largest['csafe_s']:.3f} (target at most 0.25), "
                 f"peak {largest['plan_mb']:.0f} MB (target at most 1024 MB).")
    return "\n".join(lines)


def record(results: Path, text: str, *, name: str = "plan_scale",
           command: str = "python bench/plan_scale.py --results bench/RESULTS.md") -> None:
    """Replace this benchmark's section of the results file (or append it)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = f"{start}\n## {name}\n\nRerun: `{command}`\n\n{text}\n{end}"
    old = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    if start in old:
        before, rest = old.split(start, 1)
        after = rest.split(end, 1)[1]
        new = before + section + after
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    results.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, help="record the table in this markdown file")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.repeat))
        print(f"{size:>7,} profiles: plan {rows[-1]['plan_s']:.2f} s, "
              f"CSafeLoader {rows[-1]['csafe_s']:.2f} s", file=sys.stderr)
    text = report(rows, args.repeat)
    print(text)
    if args.results:
        record(args.results, text)


if __name__ == "__main__":
    main()
