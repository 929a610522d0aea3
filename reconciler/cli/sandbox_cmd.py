"""`sandbox`: run the local Fyno-compatible server, with faults on demand."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from reconciler.cli.group import cli
from reconciler.cli.options import common_options
from reconciler.errors import UsageError
from reconciler.sandbox import Faults, SandboxConfig, serve_forever
from reconciler.sandbox.settings import (
    ABSENT_TOKEN,
    DELETE_EMPTY,
    EMPTY_CHANNELS,
    GATEWAY,
    GATEWAY_PATHS,
    MALFORMED,
    MALFORMED_PATHS,
    PHONE_FORMAT,
    RESEND_TOKEN,
    SUCCESS_MESSAGE,
)

F = TypeVar("F", bound=Callable[..., Any])
RATE = click.FloatRange(0, 1)
DEFAULT = Faults()
"""The defaults of every fault option: those of `Faults`, so that both always agree."""


def _choice(name: str, choices: tuple[str, ...], help: str) -> Callable[[F], F]:
    """`--name` choosing one of a `Faults` field's values, its default the field's."""
    option = "--" + name.replace("_", "-")
    return click.option(option, type=click.Choice(choices), default=getattr(DEFAULT, name),
                        show_default=True, help=help)


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
              help="Seconds sent in Retry-After (any size: 172800 is two days).")
@click.option("--lose-rate", type=RATE, default=0.0,
              help="Share of writes performed, then answered by closing the connection.")
@click.option("--reset-rate", type=RATE, default=0.0,
              help="Share of requests whose connection is reset before they are read "
                   "(nothing done).")
@click.option("--max-rps", type=click.FloatRange(0), default=0.0,
              help="Request-rate limit (0: none); beyond it 429.")
@_choice("delete_empty", DELETE_EMPTY, "Option 1 naming an already empty channel.")
@_choice("absent_token", ABSENT_TOKEN, "Option 2 naming a token not on the profile.")
@_choice("resend_token", RESEND_TOKEN,
         "PATCH re-sending a token already there: replace it, add a copy, keep the stored one "
         "as it was, or merge the fields sent into it.")
@_choice("empty_channels", EMPTY_CHANNELS, "How GET shows an empty channel.")
@_choice("success_message", SUCCESS_MESSAGE,
         "Success text of writes: the doc's, the Node SDK test's (PATCH: \"1 Record(s) updated "
         "successfully\"), or \"OK\" with status 202.")
@_choice("phone_format", PHONE_FORMAT,
         "How phone numbers (sms, whatsapp, voice) are stored and read back: as sent, or "
         "reformatted for people (\"+91 98790 00000\").")
@_choice("gateway", GATEWAY,
         "A gateway answering instead of the API, before the key check: 403 JSON, Express "
         "HTML 404, a 200 sign-in page, or a 302 elsewhere.")
@_choice("gateway_paths", GATEWAY_PATHS, "Requests the gateway answers: reads are GETs.")
@_choice("malformed", MALFORMED,
         "Hostile answers: a GET profile body of a broken shape, a 200 of HTML, plain text or "
         "undecodable bytes, or the right answer trickled byte by byte.")
@_choice("malformed_paths", MALFORMED_PATHS,
         "Answers made malformed: reads (GET), writes (after the write was done) or all.")
@click.option("--malformed-rate", type=RATE, default=DEFAULT.malformed_rate, show_default=True,
              help="Share of the answers --malformed covers that are malformed.")
@click.option("--trickle-seconds", type=click.FloatRange(0), default=DEFAULT.trickle_seconds,
              show_default=True, help="Seconds before each byte of a --malformed trickle body.")
@click.option("--fault-seed", type=int, default=0, help="Seed of the random fault draws.")
def sandbox(port: int, seed_file: Path | None, fault_seed: int, **faults: Any) -> None:
    """Serve a local stand-in for Fyno's profile API on 127.0.0.1, until Ctrl-C.

    It expects the key in FYNO_API_KEY. Point the reconciler at the printed URL with
    FYNO_BASE_URL. Test hooks: GET/PUT /_sandbox/data, GET /_sandbox/log, PUT /_sandbox/faults
    (its JSON takes the option names with underscores: {"gateway": "403"}).

    \b
    Example:
      FYNO_API_KEY=dev reconciler sandbox --port 8080 --seed state/FYDEMO0001-live.json
      FYNO_BASE_URL=http://127.0.0.1:8080/v1 FYNO_API_KEY=dev reconciler apply profiles/
    """
    key = os.environ.get("FYNO_API_KEY")
    if not key:
        raise UsageError("set FYNO_API_KEY to the key the sandbox should expect")
    try:
        settings = Faults(seed=fault_seed, **faults)
    except ValueError as error:
        raise UsageError(str(error)) from None
    seed = _seed(seed_file) if seed_file else None
    try:
        serve_forever(SandboxConfig(api_key=key, port=port, faults=settings, seed_data=seed))
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
