"""Generate a desired-state YAML and a recorded state of N profiles for benchmarks.

Each profile has an email, an sms, two push tokens (one with integration_id and status) and
one inapp token. The state differs from the configuration in about a tenth of the profiles,
spread over the kinds of change a plan makes: a changed email, a rotated push token (PATCH
plus an Option 2 delete), and an sms the configuration no longer declares (Option 1).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

WORKSPACE = "FYBENCH001"


def profile_id(index: int) -> str:
    return f"u-{index:07d}"


def desired(index: int) -> dict[str, Any]:
    return {
        "email": f"user{index}@example.com",
        "sms": f"+9198{index:08d}",
        "push": [
            {"token": f"fcm_token:{index:07d}-a1b2c3d4", "integration_id": f"I{index % 7}",
             "status": 1},
            {"token": f"apns_token:{index:07d}-e5f6"},
        ],
        "inapp": [{"token": profile_id(index)}],
    }


def recorded(index: int) -> dict[str, Any]:
    profile = desired(index)
    profile["push"] = [{"status": 1, **token} for token in profile["push"]]
    profile["inapp"] = [{"status": 1, **token} for token in profile["inapp"]]
    match index % 30:
        case 0:
            profile["email"] = f"old{index}@example.com"
        case 1:
            profile["push"][1] = {"token": f"apns_token:{index:07d}-old", "status": 1}
        case 2:
            profile["whatsapp"] = profile["sms"]
    return profile


def write_yaml(path: Path, count: int, *, new_email_below: int = 0) -> None:
    """The configuration; with `new_email_below`, profiles below that index get a new email."""
    with path.open("w", encoding="utf-8") as out:
        out.write(f"workspace: {WORKSPACE}\nversion: live\nprofiles:\n")
        for index in range(count):
            p = desired(index)
            if index < new_email_below:
                p["email"] = f"new{index}@example.com"
            push = p["push"]
            out.write(
                f"  {profile_id(index)}:\n"
                f"    email: {p['email']}\n"
                f"    sms: \"{p['sms']}\"\n"
                f"    push:\n"
                f"      - token: \"{push[0]['token']}\"\n"
                f"        integration_id: {push[0]['integration_id']}\n"
                f"        status: 1\n"
                f"      - \"{push[1]['token']}\"\n"
                f"    inapp:\n"
                f"      - token: {profile_id(index)}\n"
            )


def in_sync(index: int) -> dict[str, Any]:
    """What the server holds for a profile that matches `desired` exactly."""
    profile = desired(index)
    for channel in ("push", "inapp"):
        profile[channel] = [{"status": 1, **token} for token in profile[channel]]
    return profile


def write_state(path: Path, count: int, *, in_sync_with_desired: bool = False) -> None:
    """The recorded state: a tenth differs from `desired`, or none with `in_sync_...`."""
    record = in_sync if in_sync_with_desired else recorded
    document = {
        "format_version": 1,
        "lineage": str(uuid.UUID(int=count)),
        "serial": 1,
        "workspace": WORKSPACE,
        "version": "live",
        "profiles": {profile_id(index): record(index) for index in range(count)},
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    size = int(sys.argv[1])
    folder = Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    write_yaml(folder / "profiles.yaml", size)
    write_state(folder / "state.json", size)
