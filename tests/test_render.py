"""Specifications of the renderer registry: one entry per `--format`, options passed through."""

from __future__ import annotations

import pytest

from reconciler.model import ChannelData
from reconciler.plan import Plan
from reconciler.planner import diff
from reconciler.render import FORMATS, render, render_json, render_markdown, render_text


def plan() -> Plan:
    calls = diff({"u1": ChannelData.from_json({"email": "alice@example.com"})}, {})
    return Plan(plan_id="p-1", created_at="2024-05-01T10:00:00Z", workspace="FYTEST0001",
                version="live", lineage=None, serial=0, config_digest="sha256:00",
                recorded_entries=0, calls=calls)


def test_every_cli_format_has_a_renderer() -> None:
    assert set(FORMATS) == {"text", "json", "markdown"}


def test_render_dispatches_with_options() -> None:
    assert render(plan(), "text", color=True, show_values=True) == render_text(
        plan(), color=True, show_values=True)
    assert render(plan(), "markdown", show_values=False) == render_markdown(
        plan(), show_values=False)
    assert render(plan(), "json", color=True) == render_json(plan())


def test_every_format_ends_with_exactly_one_newline() -> None:
    for fmt in FORMATS:
        output = render(plan(), fmt)
        assert output.endswith("\n") and not output.endswith("\n\n"), fmt


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format 'html'"):
        render(plan(), "html")
