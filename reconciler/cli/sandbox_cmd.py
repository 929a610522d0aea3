"""`sandbox`: run the local Fyno-compatible server, with faults on demand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import orjson

from reconciler.cli.group import cli
from reconciler.cli.options import common_options
from reconciler.errors import UsageError
from reconciler.sandbox import Faults, SandboxConfig, serve_forever
from reconciler.sandbox.settings import ABSENT_TOKEN, DELETE_EMPTY, EMPTY_CHANNELS, RESEND_TOKEN

RATE = click.FloatRange(0, 1)


@cli.command()
@common_options
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free port, printed on start).")
@click.option("--seed", "seed_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Initial data: {WSID: {version: {id: channel}}}, or a reconciler state file.")
@click.option("--latency-ms", type=click.FloatRange(0), default=0.0, help="Added to every request.")
@click.option("--error-rate", type=RATE, default=0.0, help="Share answered 500/503.")
@click.option("--throttle-rate", type=RATE, default=0.0, help="Share answered 429.")
@click.option("--retry-after", type=click.FloatRange(0), default=1.0,
              help="Seconds sent in Retry-After.")
@click.option("--lose-rate", type=RATE, default=0.0,
              help="Share of writes performed, then answered by closing the connection.")
@click.option("--max-rps", type=click.FloatRange(0), default=0.0,
              help="Request-rate limit (0: none); beyond it 429.")
@click.option("--delete-empty", type=click.Choice(DELETE_EMPTY), default="fail-whole",
              show_default=True, help="Option 1 naming an already empty channel.")
@click.option("--absent-token", type=click.Choice(ABSENT_TOKEN), default="fail",
              show_default=True, help="Option 2 naming a token not on the profile.")
@click.option("--resend-token", type=click.Choice(RESEND_TOKEN), default="update",
              show_default=True, help="PATCH re-sending a token already there.")
@click.option("--empty-channels", type=click.Choice(EMPTY_CHANNELS), default="omit",
              show_default=True, help="How GET shows an empty channel.")
@click.option("--fault-seed", type=int, default=0, help="Seed of the random fault draws.")
def sandbox(port: int, seed_file: Path | None, latency_ms: float, error_rate: float,
            throttle_rate: float, retry_after: float, lose_rate: float, max_rps: float,
            delete_empty: str, absent_token: str, resend_token: str, empty_channels: str,
            fault_seed: int) -> None:
    """Serve a local stand-in for Fyno's profile API on 127.0.0.1, until Ctrl-C.

    It expects the key in FYNO_API_KEY. Point the reconciler at the printed URL with
    FYNO_BASE_URL. Test hooks: GET/PUT /_sandbox/data, GET /_sandbox/log, PUT /_sandbox/faults.

    \b
    Example:
      FYNO_API_KEY=dev reconciler sandbox --port 8080 --seed state/FYDEMO0001-live.json
      FYNO_BASE_URL=http://127.0.0.1:8080/v1 FYNO_API_KEY=dev reconciler apply profiles/
    """
    key = os.environ.get("FYNO_API_KEY")
    if not key:
        raise UsageError("set FYNO_API_KEY to the key the sandbox should expect")
    try:
        faults = Faults(latency_ms=latency_ms, error_rate=error_rate, throttle_rate=throttle_rate,
                        retry_after=retry_after, lose_rate=lose_rate, max_rps=max_rps,
                        delete_empty=delete_empty, absent_token=absent_token,
                        resend_token=resend_token, empty_channels=empty_channels,
                        seed=fault_seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    seed = _seed(seed_file) if seed_file else None
    try:
        serve_forever(SandboxConfig(api_key=key, port=port, faults=faults, seed_data=seed))
    except ValueError as error:  # seed data the sandbox cannot hold
        raise UsageError(f"{seed_file}: {error}") from None
    except OSError as error:  # e.g. the port is taken
        raise UsageError(f"cannot serve on 127.0.0.1:{port}: {error.strerror}") from None


def _seed(path: Path) -> dict[str, Any]:
    """Seed data from its own shape, or from a reconciler state file."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise UsageError(f"cannot read seed file {path}: {error}") from None
    if isinstance(data, dict) and "format_version" in data and "profiles" in data:
        return {data["workspace"]: {data["version"]: data["profiles"]}}
    if not isinstance(data, dict):
        raise UsageError(f"seed file {path} must hold a JSON object")
    return data
