"""Specifications of the markdown renderer: a pull-request comment that renders and fits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from markdown_it import MarkdownIt

from reconciler.model import ChannelData
from reconciler.plan import Call, Change, PatchChannels, Plan
from reconciler.planner import diff
from reconciler.render import markdown as markdown_module
from reconciler.render.markdown import render_markdown

PERSONAL_VALUES = ("alice@example.com", "+919879000000", "+919879111111",
                   "fcm_token:abcdef0123f3", "bob@example.org")
SUMMARY = re.compile(r"<summary><code>[+~-] (.*?)</code>")


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def make_plan(desired: dict[str, ChannelData], recorded: dict[str, ChannelData],
              workspace: str = "FYTEST0001", **options: Any) -> Plan:
    return Plan(plan_id="p-1", created_at="2024-05-01T10:00:00Z", workspace=workspace,
                version="live", lineage="lineage-1", serial=7, config_digest="sha256:00",
                recorded_entries=20, calls=diff(desired, recorded), **options)


def sample_plan(**options: Any) -> Plan:
    desired = {"u-1001": data(email="alice@example.com", sms="+919879111111")}
    recorded = {"u-1001": data(sms="+919879000000", push=[{"token": "fcm_token:abcdef0123f3"}]),
                "u-gone": data(email="bob@example.org")}
    return make_plan(desired, recorded, **options)


def huge_plan(profiles: int) -> Plan:
    """Profile i gains 1 to 3 entries, so the left-out change count is not a multiple."""
    desired = {}
    for index in range(profiles):
        channels = {"email": f"user{index}@example.com", "sms": "+919879000000",
                    "slack": "U024BE7LH"}
        desired[f"u-{index:06}"] = data(**dict(list(channels.items())[:index % 3 + 1]))
    return make_plan(desired, {})


def html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_summary_table_renders_with_counts() -> None:
    rendered = html(render_markdown(sample_plan(), show_values=False))
    rows = dict(re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td>\s*</tr>", rendered))
    assert rows["To add"] == "1"
    assert rows["To change"] == "1"
    assert rows["To remove"] == "2"
    assert rows["PATCH channel calls"] == "1"
    assert rows["delete channels (Option 1) calls"] == "2"
    assert rows["Profiles"] == "2"
    assert rows["Workspace / version"] == "FYTEST0001 / live"


def test_each_profile_is_a_folded_section_with_a_diff_block() -> None:
    markdown = render_markdown(sample_plan(), show_values=False)
    rendered = html(markdown)
    assert rendered.count("<details><summary>") == 2
    assert rendered.count("</details>") == 2
    fences = [token for token in MarkdownIt("commonmark").parse(markdown)
              if token.type == "fence"]
    assert [token.info for token in fences] == ["diff", "diff"]
    assert fences[0].content.splitlines() == [
        "# PATCH channel",
        "! sms: +91•••••0000 -> +91•••••1111",
        "+ email: a•••@example.com",
        "# delete channels [push] (Option 1)",
        "- push: fcm_token:ab…f3",
    ]
    assert "<summary><code>- u-gone</code> leaves management: 1 to remove</summary>" in rendered


def test_token_field_change_is_a_delete_then_a_re_add_counted_once() -> None:
    plan = make_plan({"u1": data(push=[{"token": "fcm_token:abcdef0123f3", "status": 0}])},
                     {"u1": data(push=[{"token": "fcm_token:abcdef0123f3"},
                                       {"token": "fcm_token:zzzzzzzzzz99"}])})
    markdown = render_markdown(plan, show_values=False)
    rendered = html(markdown)
    rows = dict(re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td>\s*</tr>", rendered))
    assert (rows["To add"], rows["To change"], rows["To remove"]) == ("0", "1", "1")
    assert rows["delete tokens (Option 2) calls"] == "1"
    assert rows["re-add tokens calls"] == "1"
    assert "<summary><code>~ u1</code>: 1 to change, 1 to remove</summary>" in rendered
    (fence,) = [token for token in MarkdownIt("commonmark").parse(markdown)
                if token.type == "fence"]
    assert fence.content.splitlines() == [
        "# delete tokens push\u00d72 (Option 2)",
        "! push: fcm_token:ab…f3 (deleted, then re-added with new fields)",
        "- push: fcm_token:zz…99",
        "# re-add tokens push (after their delete)",
        "! push: fcm_token:ab…f3: status 1 -> 0",
    ]
    assert "fcm_token:abcdef0123f3" in render_markdown(plan, show_values=True)


def test_cut_note_counts_a_re_added_token_once() -> None:
    desired = {f"u-{index:04}": data(push=[{"token": f"fcm_token:t{index:08}", "status": 0}])
               for index in range(2_000)}
    recorded = {name: data(push=[{"token": profile.to_json()["push"][0]["token"]}])
                for name, profile in desired.items()}
    markdown = render_markdown(make_plan(desired, recorded), show_values=False, limit=20_000)
    shown = len(SUMMARY.findall(markdown))
    left = 2_000 - shown
    assert f"**{left:,} more profiles ({left:,} changes) left out**" in markdown


def test_distinct_ids_and_workspace_are_escaped() -> None:
    plan = make_plan({"u|`<b>x": data(email="a@example.com")}, {}, workspace="FY|<i>")
    rendered = html(render_markdown(plan, show_values=False))
    assert "<b>" not in rendered
    assert "<i>" not in rendered
    assert "<summary><code>+ u|`&lt;b&gt;x</code>" in rendered
    assert re.search(r"<td[^>]*>FY\|&lt;i&gt; / live</td>", rendered)
    assert all(row.count("<td") == 2 for row in re.findall(r"<tr>.*?</tr>", rendered, re.S)
               if "<td" in row)


def test_values_are_masked_unless_shown() -> None:
    masked = render_markdown(sample_plan(), show_values=False)
    shown = render_markdown(sample_plan(), show_values=True)
    for value in PERSONAL_VALUES:
        assert value not in masked
        assert value in shown


def test_warnings_and_forced_are_called_out() -> None:
    rendered = html(render_markdown(sample_plan(forced=True, warnings=("look | <here>",)),
                                    show_values=False))
    assert "<strong>Forced:</strong> this plan removes 2 of 20" in rendered
    assert "<li>look | &lt;here&gt;</li>" in rendered


def test_no_changes_says_the_state_matches() -> None:
    profile = data(email="alice@example.com")
    markdown = render_markdown(make_plan({"u1": profile}, {"u1": profile}), show_values=False)
    assert "No changes. The recorded state matches the configuration." in markdown
    assert "<details>" not in markdown


def test_a_plan_that_fits_has_no_cut_note() -> None:
    assert "left out" not in render_markdown(sample_plan(), show_values=False)


def test_huge_plan_is_cut_under_the_limit_with_the_right_counts() -> None:
    plan = huge_plan(20_000)
    markdown = render_markdown(plan, show_values=False)
    assert len(markdown) <= 65_000
    shown = set(SUMMARY.findall(markdown))
    left_out = [call for call in plan.calls if call.distinct_id not in shown]
    profiles = len({call.distinct_id for call in left_out})
    changes = sum(len(call.changes) for call in left_out)
    assert 0 < len(shown) < 20_000
    assert f"**{profiles:,} more profiles ({changes:,} changes) left out**" in markdown
    assert "`reconciler show plan.json`" in markdown
    rendered = html(markdown)
    assert rendered.count("<details><summary>") == rendered.count("</details>") == len(shown)
    assert rendered.rstrip().endswith("</blockquote>")


def test_sections_are_kept_in_plan_order_up_to_the_cut() -> None:
    plan = huge_plan(2_000)
    shown = SUMMARY.findall(render_markdown(plan, show_values=False, limit=20_000))
    assert shown == [f"u-{index:06}" for index in range(len(shown))]


@pytest.mark.parametrize("limit", [2_000, 5_000, 30_000, 65_000])
def test_output_never_exceeds_the_limit(limit: int) -> None:
    markdown = render_markdown(huge_plan(3_000), show_values=True, limit=limit)
    assert len(markdown) <= limit
    assert "left out" in markdown


def test_a_limit_too_small_for_the_summary_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold the summary"):
        render_markdown(sample_plan(), show_values=False, limit=200)


def test_sections_past_the_cut_are_never_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real_section = markdown_module._section

    def counting_section(distinct_id: str, calls: list[Call], *, show_values: bool) -> str:
        built.append(distinct_id)
        return real_section(distinct_id, calls, show_values=show_values)

    monkeypatch.setattr(markdown_module, "_section", counting_section)
    markdown = render_markdown(huge_plan(5_000), show_values=False, limit=20_000)
    assert len(built) == len(SUMMARY.findall(markdown)) + 1


def test_hundred_thousand_profiles_render_under_the_limit() -> None:
    # Its cost is bounded by the sections it builds (the test above); its speed is measured
    # by bench/plan_scale.py, not asserted here.
    calls = tuple(PatchChannels(f"u-{index:06}", (Change("email", None, f"u{index}@example.com"),))
                  for index in range(100_000))
    plan = Plan(plan_id="p-1", created_at="2024-05-01T10:00:00Z", workspace="FYTEST0001",
                version="live", lineage=None, serial=0, config_digest="sha256:00",
                recorded_entries=0, calls=calls)
    markdown = render_markdown(plan, show_values=False)
    assert "left out" in markdown and len(markdown) < 65_000
