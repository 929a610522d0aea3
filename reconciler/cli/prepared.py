"""A plan's output made before it may be shown, then published or thrown away.

`plan` computes its plans, saves them and renders them while a large configuration's checks
finish beside it (`reconciler.config.load_configs_then`), but nothing may reach a person, a
pipeline or the file system's view before those checks confirm the configuration. So the
saved plan is written whole next to its place (`atomic.Prepared`) and the rendering is held
(JSON in an unnamed temporary file, since it runs to tens of megabytes; text as text): once
confirmed, the saved plan is moved into place and the rendering printed; otherwise both are
thrown away and the plan is made again from the checked configuration.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import click

from reconciler.atomic import Prepared
from reconciler.cli.options import use_color
from reconciler.cli.settings import Settings
from reconciler.plan import Plan
from reconciler.planfile import prepare_plans
from reconciler.render.formats import OutputFormat


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
        saved, checksum = None, None
        if out is not None:
            checksum, saved = prepare_plans(plans, out, settings.encryption())
        color = use_color(settings)
        try:
            if fmt.write_plans is None:
                return cls(saved, checksum, fmt.plans(plans, color, show_values), color)
            # Unnamed: gone with the process, whatever ends it. Kept open past this function.
            held = tempfile.TemporaryFile()  # noqa: SIM115
            try:
                fmt.write_plans(plans, held, show_values, checksum)
            except BaseException:
                held.close()
                raise
            return cls(saved, checksum, held, color)
        except BaseException:
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
