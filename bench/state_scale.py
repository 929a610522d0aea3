"""Time loading and saving a 100,000-profile state with the local file backend.

Each profile holds an email, an sms, two push tokens and one in-app token (500,000 entries).
Run: `.venv/bin/python bench/state_scale.py [PROFILES]`; results are printed, best of 3.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reconciler.model import ChannelData, Token
from reconciler.state import LocalStateFile, State


def profile(index: int) -> ChannelData:
    return ChannelData({
        "sms": f"+9198790{index:05d}",
        "email": f"user{index}@example.com",
        "push": (Token(f"fcm_token:{index:08d}abcdefghijklmnop", "IXXXXXXX"),
                 Token(f"apns_token:{index:08d}qrstuvwxyz", None, 0)),
        "inapp": (Token(f"u-{index}"),),
    })


def best_of(runs: int, action: Callable[[], object]) -> tuple[float, float]:
    """Best wall-clock and best CPU time: CPU time is what other load on the machine
    does not inflate."""
    wall, cpu = [], []
    for _ in range(runs):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as directory:
        backend = LocalStateFile(Path(directory) / "FYBENCH-live.json")
        state = State.new("FYBENCH", "live")
        state.profiles = {f"u-{index:06d}": profile(index) for index in range(count)}
        holder = [backend.save(state)]
        save = best_of(3, lambda: holder.append(backend.save(holder[-1])))
        load = best_of(3, lambda: backend.load("FYBENCH", "live"))
        size = backend.path.stat().st_size
        loaded = backend.load("FYBENCH", "live")
        print(f"{count} profiles, {loaded.entry_count()} entries, file {size / 1e6:.1f} MB; "
              f"best of 3, wall/CPU seconds: load {load[0]:.2f}/{load[1]:.2f}, "
              f"save {save[0]:.2f}/{save[1]:.2f}")


if __name__ == "__main__":
    main()
