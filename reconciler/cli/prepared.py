"""A plan's output made before it may be shown, then published or thrown away.

`plan` computes its plans, saves them and renders them while a large configuration's checks
finish beside it (`reconciler.config.load_configs_then`), but nothing may reach a person, a
pipeline or the file system's view before those checks confirm the configuration. So the
saved plan is written whole next to its place (`atomic.Prepared`) and the rendering is held
(JSON in an unnamed temporary file, since it runs to tens of megabytes; text as text): once
confirmed, the saved plan is moved into place and the rendering printed; otherwise both are
thrown away and the plan is made again from the checked configuration.

A large plan saved and rendered as JSON (`--out` with `--format json`, the adoption plan of
a CI pipeline) is rendered mostly by a process beside this one while it saves: it renders
the first calls, this one the rest once saved, with the saved plan's checksum in the last
line; each pair's digest, in the first line, is filled in after.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import click

from reconciler.atomic import Prepared
from reconciler.beside import Beside, can_fork
from reconciler.cli.options import use_color
from reconciler.cli.settings import Settings
from reconciler.encryption import Encryption
from reconciler.errors import BesideError
from reconciler.plan import Plan
from reconciler.planfile import prepare_plans
from reconciler.render.formats import OutputFormat, PlansWriter

RENDER_BESIDE_FROM: Final = 20_000
"""Calls from which a JSON rendering is made by a process beside while this one saves the
plan: 100,000 calls take about a second to save and as long to render; below, the fork
costs more than it saves."""
BESIDE_SHARE: Final = 85
"""Percent of the calls whose rendering the process beside makes: rendering a call (its
values masked one by one) takes about twice as long as saving it, which this process does
first. At 100,000 calls, with all of them beside, this one waited 0.5 s to 1 s for the other."""
_UNKNOWN_CHECKSUM: Final = "sha256:" + "0" * 64
"""Given to the process beside, whose part never reaches the trailer: a checksum known, so
that it does not hash the lines of a document it only renders."""


def _unknown_digest(index: int) -> str:
    """The placeholder of the digest of the `index`th plan: as long as a digest, and unlike
    any (not hexadecimal)."""
    return f"sha256:{f'unknown-{index}':x<64}"


@dataclass
class PreparedOutput:
    """The saved plan (when `--out` asks for one) and the rendering of a run's plans."""

    saved: Prepared | None
    checksum: str | None  # the saved plan's, which a JSON rendering names
    rendering: BinaryIO | str
    color: bool

    @classmethod
    def make(cls, settings: Settings, plans: tuple[Plan, ...], out: Path | None,
             fmt: OutputFormat, show_values: bool) -> PreparedOutput:
        color = use_color(settings)
        if out is not None and fmt.write_plans is not None and not show_values \
                and sum(len(plan.calls) for plan in plans) >= RENDER_BESIDE_FROM and can_fork():
            return cls._saved_and_rendered_beside(plans, out, settings.encryption(),
                                                  fmt.write_plans, color)
        saved, checksum = None, None
        if out is not None:
            checksum, saved = prepare_plans(plans, out, settings.encryption())
        try:
            if fmt.write_plans is None:
                return cls(saved, checksum, fmt.plans(plans, color, show_values), color)
            # Unnamed: gone with the process, whatever ends it. Kept open past this function.
            held = tempfile.TemporaryFile()  # noqa: SIM115
            try:
                fmt.write_plans(plans, held, show_values, checksum, None)
            except BaseException:
                held.close()
                raise
            return cls(saved, checksum, held, color)
        except BaseException:
            if saved is not None:
                saved.discard()
            raise

    @classmethod
    def _saved_and_rendered_beside(cls, plans: tuple[Plan, ...], out: Path,
                                   encryption: Encryption, write_plans: PlansWriter,
                                   color: bool) -> PreparedOutput:
        """`make` of a large plan saved and rendered (masked) at once: a process beside
        renders the first calls (`BESIDE_SHARE`) into the unnamed file while this one
        computes the configurations' digests, saves, and renders the last calls, which it
        adds once the other is done. What the process beside cannot know yet, each pair's
        digest in the first line, is written as a placeholder of its length and filled in."""
        held = tempfile.TemporaryFile()  # noqa: SIM115  (shared with the child: one offset)
        saved: Prepared | None = None
        undigested = tuple(dataclasses.replace(plan, config_digest=_unknown_digest(index))
                           for index, plan in enumerate(plans))
        total = sum(len(plan.calls) for plan in plans)
        cut = total * BESIDE_SHARE // 100
        try:
            with Beside(lambda: write_plans(undigested, held, False, _UNKNOWN_CHECKSUM,
                                            range(cut))) as beside:
                checksum, saved = prepare_plans(plans, out, encryption)
                rest = io.BytesIO()
                write_plans(plans, rest, False, checksum, range(cut, total))
                beside.result()
            held.seek(0, os.SEEK_END)
            held.write(rest.getbuffer())
            held.seek(0)
            first = held.readline()
            for index, plan in enumerate(plans):
                unknown = _unknown_digest(index).encode()
                if first.count(unknown) != 1:
                    raise BesideError("the rendering made beside does not begin as it should")
                first = first.replace(unknown, plan.digest().encode())
            held.seek(0)
            held.write(first)
            held.flush()
            return cls(saved, checksum, held, color)
        except BaseException:
            held.close()
            if saved is not None:
                saved.discard()
            raise

    def save(self) -> None:
        """Move the saved plan into its place."""
        if self.saved is not None:
            self.saved.commit()

    def print(self) -> None:
        """Print the rendering (after what was echoed before it)."""
        if isinstance(self.rendering, str):
            # click strips ANSI codes off a stream that is not a terminal unless told so.
            click.echo(self.rendering, nl=False, color=self.color)
            return
        sys.stdout.flush()
        with self.rendering as held:
            held.seek(0)
            shutil.copyfileobj(held, sys.stdout.buffer, 1 << 20)

    def discard(self) -> None:
        """Throw both away: the saved plan's file is removed, the rendering closed."""
        if self.saved is not None:
            self.saved.discard()
        if not isinstance(self.rendering, str):
            self.rendering.close()
