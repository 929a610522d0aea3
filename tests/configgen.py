"""Generate desired-state YAML of any size, for tests and benchmarks (bench/ reuses it)."""

from __future__ import annotations


def profile_yaml(index: int) -> str:
    """One profile: email, quoted sms, two push tokens (one with integration_id and status),
    one inapp token."""
    return (
        f"  u-{index:06d}:\n"
        f"    email: user{index:06d}@example.com\n"
        f'    sms: "+9198{index:08d}"\n'
        f"    push:\n"
        f'      - "fcm_token:{index:08x}aa{index * 7919:012x}"\n'
        f'      - token: "apns_token:{index * 104729:016x}"\n'
        f"        integration_id: I{index % 97:07d}\n"
        f"        status: {index % 2}\n"
        f"    inapp:\n"
        f"      - token: u-{index:06d}\n"
    )


def generate_config(
    count: int, *, workspace: str = "FYBENCH001", version: str = "live", start: int = 0
) -> str:
    """A configuration file with `count` profiles (about 255 bytes each)."""
    head = f"workspace: {workspace}\nversion: {version}\nprofiles:\n"
    return head + "".join(profile_yaml(index) for index in range(start, start + count))
