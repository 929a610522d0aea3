"""Why the loader reads YAML the way it does: candidate parsers on the same 100,000 profiles.

Each candidate parses bench/_work/100000/profiles.yaml (made by plan_scale.py) in a fresh
process; parsers that are not installed are skipped (`pip install ryaml py-yaml12 rapidyaml`
to see them too). The reconciler's own two paths are measured as well: the fast path
(yaml_rs, guarded) that valid files take, and the precise path (libyaml events with
positions) that a file with a problem takes.

    python bench/yaml_parsers.py --results bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from plan_scale import prepare, record, timed  # noqa: E402

CANDIDATES = [  # (label, module that must be importable, code run on `data` / `path`)
    ("PyYAML CSafeLoader (libyaml), full load", "yaml",
     "import yaml; yaml.load(data, Loader=yaml.CSafeLoader)"),
    ("PyYAML libyaml event stream only, events discarded", "yaml",
     "import yaml\nfor event in yaml.parse(data, Loader=yaml.CSafeLoader): pass"),
    ("yaml_rs (Rust), full load", "yaml_rs",
     "import yaml_rs; yaml_rs.loads(data.decode(), parse_datetime=False)"),
    ("ryaml (Rust, serde_yaml), full load", "ryaml", "import ryaml; ryaml.loads(data.decode())"),
    ("py-yaml12 (Rust), full load", "yaml12", "import yaml12; yaml12.parse_yaml(data.decode())"),
    ("rapidyaml (C++), parse to its tree only", "ryml", "import ryml; ryml.parse_in_arena(data)"),
    ("reconciler load_config, fast path (checks, schema, digest included)", "reconciler",
     "from reconciler.config import load_config; load_config([path])"),
    ("reconciler load_config, precise path forced", "reconciler",
     "import reconciler.config.loader as l; l.load_fast = lambda text: None; "
     "l.load_config([path])"),
]
PRELUDE = "import sys; path = sys.argv[1]; data = open(path, 'rb').read()\n"


def available(module: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                           check=False)
    return probe.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path)
    args = parser.parse_args()
    path = prepare(100_000) / "profiles.yaml"
    lines = [f"File: {path.stat().st_size / 1e6:.1f} MB of YAML, 100,000 profiles; one cold "
             f"process each, on {os.cpu_count()} cores.", "",
             "| parser | time | peak RSS |", "|---|---:|---:|"]
    for label, module, code in CANDIDATES:
        if not available(module):
            lines.append(f"| {label} | not installed | |")
            continue
        seconds, peak = timed([sys.executable, "-c", PRELUDE + code, str(path)])
        lines.append(f"| {label} | {seconds:.2f} s | {peak:.0f} MB |")
        print(lines[-1], file=sys.stderr)
    text = "\n".join(lines)
    print(text)
    if args.results:
        record(args.results, text, name="yaml_parsers",
               command="python bench/yaml_parsers.py --results bench/RESULTS.md")


if __name__ == "__main__":
    main()
