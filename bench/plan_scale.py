"""How `reconciler plan` and `show` scale: 1,000 to 100,000 profiles, each a cold process.

Two workloads on the same YAML:
- steady state: a state that differs from the configuration in a tenth of the profiles,
  `plan` printed as text;
- adoption: no state yet, every profile a change, `plan --format json --out plan.json` (the
  first plan of a workspace, saved in CI and printed for other tools), then `show plan.json`.
In the same run, PyYAML's CSafeLoader alone parses the same YAML, so the targets are ratios
measured side by side on a machine shared with others. At 100,000 profiles:
- steady-state plan at most 0.15x the CSafeLoader parse, peak memory under 1 GB;
- adoption plan at most 0.20x and 600 MB, its saved plan at most 2x the size of the YAML;
- `show plan.json` at most 0.10x and 600 MB;
- and 10x the profiles costs at most 11x the time.

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


# A cold process, as a user runs one: a new interpreter, with the bytecode an installed
# package has. Without it (PYTHONDONTWRITEBYTECODE set) every run would compile ~300 modules
# first, about 2 s on the shared machine.
CHILD_ENV = {name: value for name, value in os.environ.items()
             if name != "PYTHONDONTWRITEBYTECODE"}


SETTLE = 5.0
"""Seconds of rest before each run. On this shared machine a run that follows half a minute
of CSafeLoader at full load was about 10% slower than the same run after ten idle seconds
(3.2 s against 2.7 to 3.0 s for `show`, 2026-11-30): every command, CSafeLoader included,
starts from a machine at rest."""


def timed(argv: list[str], settle: float = SETTLE) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process, after `settle` seconds of rest;
    its output is discarded."""
    time.sleep(settle)
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=CHILD_ENV)
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


def measure(size: int, repeat: int, settle: float = SETTLE) -> dict[str, float]:
    """Every command of both workloads and the CSafeLoader parse, interleaved run by run so
    that a change in the machine's load touches them alike."""
    folder = prepare(size)
    yaml_path = folder / "profiles.yaml"
    saved = folder / "plan.json"
    reconciler = [sys.executable, "-m", "reconciler"]
    commands = {
        "plan": [*reconciler, "plan", str(yaml_path), "--state", str(folder / "state.json"),
                 "--no-color"],
        "adopt": [*reconciler, "plan", str(yaml_path), "--state", str(folder / "none.json"),
                  "--format", "json", "--out", str(saved), "--no-color"],
        "show": [*reconciler, "show", str(saved), "--no-color"],
        "csafe": [sys.executable, "-c", CSAFE, str(yaml_path)],
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            runs[name].append(timed(argv, settle))
    row = {"size": size, "yaml_mb": yaml_path.stat().st_size / 1e6,
           "saved_mb": saved.stat().st_size / 1e6}
    for name, timings in runs.items():
        row[f"{name}_s"] = statistics.median(run[0] for run in timings)
        row[f"{name}_mb"] = max(run[1] for run in timings)
    return row


def report(rows: list[dict[str, float]], repeat: int, settle: float = SETTLE) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}; "
        f"median of {repeat} cold process runs each, the commands interleaved, each after "
        f"{settle:g} s of rest.",
        "",
        "| profiles | YAML | CSafeLoader parse (peak RSS) | steady-state `plan` | adoption "
        "`plan --format json --out` | saved plan | `show plan.json` |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        csafe = row["csafe_s"]
        cells = [f"{row[f'{name}_s']:.2f} s = {row[f'{name}_s'] / csafe:.3f}x, "
                 f"{row[f'{name}_mb']:.0f} MB" for name in ("plan", "adopt", "show")]
        lines.append(
            f"| {int(row['size']):,} | {row['yaml_mb']:.1f} MB | {csafe:.2f} s "
            f"({row['csafe_mb']:.0f} MB) | {cells[0]} | {cells[1]} "
            f"| {row['saved_mb']:.1f} MB = {row['saved_mb'] / row['yaml_mb']:.2f}x "
            f"| {cells[2]} |")
    lines.append("")
    for small, large in itertools.pairwise(rows):
        factor = large["size"] / small["size"]
        growth = ", ".join(f"{name} {large[f'{name}_s'] / small[f'{name}_s']:.2f}x"
                           for name in ("plan", "adopt", "show"))
        lines.append(f"- {int(factor)}x the profiles ({int(small['size']):,} to "
                     f"{int(large['size']):,}) cost {growth} the time (target at most "
                     f"{factor * 1.1:.0f}x).")
    largest = rows[-1]
    csafe = largest["csafe_s"]
    lines.append(
        f"- At {int(largest['size']):,} profiles: steady-state plan / parse = "
        f"{largest['plan_s'] / csafe:.3f} (target at most 0.15), peak "
        f"{largest['plan_mb']:.0f} MB (at most 1024 MB); adoption plan / parse = "
        f"{largest['adopt_s'] / csafe:.3f} (at most 0.20), peak {largest['adopt_mb']:.0f} MB "
        f"(at most 600 MB), saved plan {largest['saved_mb'] / largest['yaml_mb']:.2f}x the "
        f"YAML (at most 2x); show / parse = {largest['show_s'] / csafe:.3f} (at most 0.10), "
        f"peak {largest['show_mb']:.0f} MB (at most 600 MB).")
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
    parser.add_argument("--settle", type=float, default=SETTLE,
                        help="seconds of rest before each run (default %(default)s)")
    args = parser.parse_args()
    # Compile the bytecode once, before anything is timed.
    subprocess.run([sys.executable, "-m", "reconciler", "--help"], env=CHILD_ENV, check=True,
                   stdout=subprocess.DEVNULL)
    rows = []
    for size in args.sizes:
        rows.append(measure(size, args.repeat, args.settle))
        row = rows[-1]
        print(f"{size:>7,} profiles: plan {row['plan_s']:.2f} s, adopt {row['adopt_s']:.2f} s, "
              f"show {row['show_s']:.2f} s, CSafeLoader {row['csafe_s']:.2f} s",
              file=sys.stderr)
    text = report(rows, args.repeat, args.settle)
    print(text)
    if args.results:
        record(args.results, text)


if __name__ == "__main__":
    main()
