"""Specifications of the renderer registry: one entry per `--format`, options passed through."""

from __future__ import annotations

import pytest

from reconciler.model import ChannelData, Token
from reconciler.plan import (
    Change,
    CreateProfile,
    DeleteChannels,
    DeleteTokens,
    PatchChannels,
    Plan,
    ReAddTokens,
)
from reconciler.planner import diff
from reconciler.render import FORMATS, render, render_json, render_markdown, render_text
from reconciler.render.common import describe_call


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


def test_every_call_type_is_described() -> None:
    flip = Change("push", Token("t1"), Token("t1", status=0))
    gone = Change("inapp", Token("i1"), None)
    email = Change("email", None, "a@example.com")
    assert [describe_call(call) for call in (
        PatchChannels("u1", (email,)),
        DeleteTokens("u1", (flip, Change("push", Token("t2"), None), gone)),
        DeleteChannels("u1", (Change("sms", "+1555", None), gone)),
        ReAddTokens("u1", (flip,)),
        CreateProfile("u1", (email,)),
    )] == [
        "PATCH channel",
        "delete tokens push\u00d72, inapp (Option 2)",
        "delete channels [sms, inapp] (Option 1)",
        "re-add tokens push (after their delete)",
        "create profile",
    ]


def test_every_format_shows_a_changed_token_as_deleted_then_re_added() -> None:
    recorded = {"u1": ChannelData.from_json({"push": [{"token": "fcm_token:abcdef0123f3"}]})}
    desired = {"u1": ChannelData.from_json(
        {"push": [{"token": "fcm_token:abcdef0123f3", "status": 0}]})}
    flip = Plan(plan_id="p-1", created_at="2024-05-01T10:00:00Z", workspace="FYTEST0001",
                version="live", lineage="l-1", serial=1, config_digest="sha256:00",
                recorded_entries=1, calls=diff(desired, recorded))
    for fmt in ("text", "markdown"):
        output = render(flip, fmt)
        assert "fcm_token:ab…f3 (deleted, then re-added with new fields)" in output, fmt
        assert "re-add tokens push (after their delete)" in output, fmt
        assert "push: fcm_token:ab…f3: status 1 -> 0" in output, fmt
    assert '"operation":"readd_tokens"' in render(flip, "json")
