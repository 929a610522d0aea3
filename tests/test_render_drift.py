"""Specifications of the drift renderers: what a reader of `refresh` sees in each format."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest
from markdown_it import MarkdownIt

from reconciler.drift import DriftReport, ProfileDrift, compare
from reconciler.model import ChannelData, Token
from reconciler.plan import Change
from reconciler.render import render_drift
from reconciler.render.drift_markdown import render_drift_markdown

PERSONAL_VALUES = ("alice@example.com", "bob@example.org", "+919879000000",
                   "fcm_token:abcdef0123f3", "fcm_token:zzzzzzzzzz99", "carol@example.net")
SUMMARY = re.compile(r"<summary><code>[+~-] (.*?)</code>")
ANSI = re.compile(r"\x1b\[")


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def found(distinct_id: str, recorded: ChannelData | None, server: ChannelData | None,
          **options: Any) -> ProfileDrift:
    drift = compare(distinct_id, recorded, server, **options)
    assert drift is not None
    return drift


def sample_report() -> DriftReport:
    """u-1001 drifted in every way; u-1002 is gone from the server; u-1003 is back."""
    profiles = (
        found("u-1003", None, data(email="carol@example.net"), recorded_missing=True),
        found("u-1001",
              data(email="alice@example.com", push=[{"token": "fcm_token:abcdef0123f3"},
                                                     {"token": "fcm_token:zzzzzzzzzz99"}],
                   webpush={"endpoint": "https://push.example/1"}),
              data(email="bob@example.org", sms="+919879000000",
                   push=[{"token": "fcm_token:zzzzzzzzzz99", "status": 0}],
                   webpush={"endpoint": "https://push.example/2"})),
        found("u-1002", data(slack="U024BE7LH"), None),
    )
    return DriftReport("FYTEST0001", "live", profiles, checked=5)


def text(report: DriftReport, **options: Any) -> str:
    return render_drift(report, "text", **{"color": False, "show_values": False, **options})


def test_text_reads_like_a_plan_of_what_the_server_changed() -> None:
    assert text(sample_report()).splitlines() == [
        "Drift in workspace FYTEST0001 (live): 3 of 5 profiles changed outside reconciler",
        "Markers: + added on the server, ~ changed there, - removed there. "
        "Values are masked (--show-values shows them).",
        "",
        "  ~ u-1001",
        "      + sms: +91•••••0000",
        "      ~ email: a•••@example.com -> b•••@example.org",
        "      ~ push: fcm_token:zz…99 -> fcm_token:zz…99 (status 0)",
        "      - push: fcm_token:ab…f3",
        "      ~ webpush: (not managed by reconciler)",
        "",
        "  - u-1002 (deleted on the server)",
        "      - slack: U0•••",
        "",
        "  + u-1003 (exists on the server again)",
        "      + email: c•••@example.net",
        "",
        "Drift in 3 profiles (1 deleted on the server, 1 back on it): 2 added, 2 changed, "
        "2 removed on the server; 1 unmanaged key changed.",
    ]


def test_every_format_ends_with_exactly_one_newline() -> None:
    for report in (sample_report(), DriftReport("FYTEST0001", "live", (), checked=3)):
        for fmt in ("text", "markdown", "json"):
            rendered = render_drift(report, fmt, color=True, show_values=False)
            assert rendered.endswith("\n") and not rendered.endswith("\n\n"), fmt


def test_text_masks_values_unless_shown() -> None:
    masked = text(sample_report())
    shown = text(sample_report(), show_values=True)
    for value in PERSONAL_VALUES:
        assert value not in masked
        assert value in shown
    assert "push.example" not in masked
    assert ('~ webpush: {"endpoint":"https://push.example/1"} -> '
            '{"endpoint":"https://push.example/2"} (not managed by reconciler)') in shown
    assert "Values are masked" not in shown


def test_text_has_no_ansi_codes_unless_color_is_asked() -> None:
    assert not ANSI.search(text(sample_report()))
    colored = text(sample_report(), color=True)
    assert "\x1b[33m~\x1b[0m \x1b[1mu-1001\x1b[0m" in colored
    assert "\x1b[31m-\x1b[0m slack: U0•••" in colored
    assert ANSI.sub("", re.sub(r"\x1b\[[0-9;]*m", "", colored)) == text(sample_report())


def test_text_escapes_control_characters_in_ids() -> None:
    report = DriftReport("FYTEST0001", "live",
                         (found("u\x1b[31mX\u202e", data(), None),), checked=1)
    rendered = text(report)
    assert "\x1b" not in rendered and "\u202e" not in rendered
    assert "  - u\\x1b[31mX\\u202e (deleted on the server)" in rendered.splitlines()


def test_text_without_drift_is_one_line() -> None:
    report = DriftReport("FYTEST0001", "live", (), checked=7)
    assert text(report) == "No drift: the server matches the recorded state for all 7 profiles.\n"


def html(markdown: str) -> str:
    return str(MarkdownIt("commonmark").enable("table").render(markdown))


def test_markdown_has_a_summary_table_and_a_folded_diff_per_profile() -> None:
    markdown = render_drift(sample_report(), "markdown", show_values=False)
    rendered = html(markdown)
    rows = dict(re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>\s*<td[^>]*>(.*?)</td>\s*</tr>", rendered))
    assert rows["Profiles read"] == "5"
    assert rows["Profiles changed"] == "3"
    assert rows["Deleted on the server"] == "1"
    assert rows["Back on the server"] == "1"
    assert rows["Entries added on the server"] == "2"
    assert rows["Entries changed on the server"] == "2"
    assert rows["Entries removed on the server"] == "2"
    assert rows["Unmanaged keys changed"] == "1"
    assert rendered.count("<details><summary>") == rendered.count("</details>") == 3
    assert SUMMARY.findall(rendered) == ["u-1001", "u-1002", "u-1003"]
    assert ("<summary><code>~ u-1001</code>: 1 added, 2 changed, 1 removed, "
            "1 unmanaged key changed</summary>") in rendered
    assert "<summary><code>- u-1002</code> deleted on the server: 1 removed</summary>" in rendered
    fences = [token for token in MarkdownIt("commonmark").parse(markdown)
              if token.type == "fence"]
    assert [token.info for token in fences] == ["diff", "diff", "diff"]
    assert fences[0].content.splitlines() == [
        "+ sms: +91•••••0000",
        "! email: a•••@example.com -> b•••@example.org",
        "! push: fcm_token:zz…99 -> fcm_token:zz…99 (status 0)",
        "- push: fcm_token:ab…f3",
        "! webpush: (not managed by reconciler)",
    ]
    assert fences[2].content.splitlines() == ["# the server has it again",
                                              "+ email: c•••@example.net"]


def test_markdown_masks_values_unless_shown() -> None:
    masked = render_drift(sample_report(), "markdown")
    shown = render_drift(sample_report(), "markdown", show_values=True)
    for value in PERSONAL_VALUES:
        assert value not in masked
        assert value in shown


def test_markdown_escapes_ids_and_workspace() -> None:
    report = DriftReport("FY|<i>", "live", (found("u|`<b>x", data(), None),), checked=1)
    rendered = html(render_drift(report, "markdown"))
    assert "<b>" not in rendered and "<i>" not in rendered
    assert "<summary><code>- u|`&lt;b&gt;x</code>" in rendered
    assert re.search(r"<td[^>]*>FY\|&lt;i&gt; / live</td>", rendered)


def test_markdown_without_drift_says_so() -> None:
    markdown = render_drift(DriftReport("FYTEST0001", "live", (), checked=2), "markdown")
    assert "No drift: the server matches the recorded state for all 2 profiles." in markdown
    assert "<details>" not in markdown and "<table>" not in html(markdown)


def huge_report(profiles: int) -> DriftReport:
    """Profile i has 1 to 3 drifted entries, so the left-out count is not a multiple."""
    drifted = []
    for index in range(profiles):
        changes = (Change("email", f"user{index}@example.com", f"user{index}@example.org"),
                   Change("sms", None, "+919879000000"),
                   Change("push", Token(f"fcm_token:{index:012}"), None))[:index % 3 + 1]
        drifted.append(ProfileDrift(f"u-{index:06}", changes))
    return DriftReport("FYTEST0001", "live", tuple(drifted), checked=profiles * 5)


def test_huge_markdown_is_cut_under_the_limit_with_the_right_counts() -> None:
    report = huge_report(20_000)
    markdown = render_drift(report, "markdown")
    assert len(markdown) <= 65_000
    shown = set(SUMMARY.findall(markdown))
    left_out = [profile for profile in report.profiles if profile.distinct_id not in shown]
    changes = sum(len(profile.changes) for profile in left_out)
    assert 0 < len(shown) < 20_000
    assert f"**{len(left_out):,} more profiles ({changes:,} changes) left out**" in markdown
    assert "`--format json` lists every profile" in markdown
    rendered = html(markdown)
    assert rendered.count("<details><summary>") == rendered.count("</details>") == len(shown)
    assert rendered.rstrip().endswith("</blockquote>")


@pytest.mark.parametrize("limit", [3_000, 20_000])
def test_markdown_never_exceeds_a_smaller_limit(limit: int) -> None:
    markdown = render_drift_markdown(huge_report(2_000), show_values=True, limit=limit)
    assert len(markdown) <= limit
    assert "left out" in markdown


def test_markdown_that_fits_has_no_cut_note() -> None:
    assert "left out" not in render_drift(sample_report(), "markdown")


def test_json_is_masked_unless_show_values_and_then_round_trips() -> None:
    report = sample_report()
    masked = render_drift(report, "json")
    assert orjson.loads(masked)["masked"] is True
    for value in PERSONAL_VALUES:
        assert value not in masked
    rendered = render_drift(report, "json", show_values=True)
    document = orjson.loads(rendered)
    assert DriftReport.from_json(document) == report
    for value in PERSONAL_VALUES:
        assert value in rendered
    assert list(document) == sorted(document)
    assert rendered.startswith('{\n  "checked": 5,')


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format 'html'"):
        render_drift(sample_report(), "html")


def assert_printable(output: str) -> None:
    raw = sorted({char for char in output if not (char.isprintable() or char in "\n\t")})
    assert not raw, f"raw control characters {raw!r} in {output!r}"


HOSTILE = "\x1b[2J\u202e\r\x07\x00\x9b\u2028\x7f"


def hostile_report() -> DriftReport:
    return DriftReport(f"FY{HOSTILE}", "live", (
        found(f"u{HOSTILE}", data(email=f"a{HOSTILE}@x.io", webpush={HOSTILE: 1}),
              data(email=f"b{HOSTILE}@x.io", sms=f"+91{HOSTILE}", webpush={HOSTILE: 2},
                   push=[{"token": f"fcm_token:{HOSTILE}", "integration_id": HOSTILE}])),
        found(f"gone{HOSTILE}", data(slack=HOSTILE), None)), checked=2)


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("show_values", [False, True])
def test_text_and_markdown_escape_every_control_character(fmt: str, show_values: bool) -> None:
    assert_printable(render_drift(hostile_report(), fmt, color=False, show_values=show_values))


def test_json_escapes_bidi_and_c1_controls_and_still_round_trips() -> None:
    report = hostile_report()
    rendered = render_drift(report, "json", show_values=True)
    assert_printable(rendered)
    assert "\\u202e" in rendered and "\\u009b" in rendered and "\\u2028" in rendered
    assert DriftReport.from_json(orjson.loads(rendered)) == report


def test_json_escapes_characters_beyond_the_basic_plane_as_surrogate_pairs() -> None:
    tag = "\U000e0041"  # TAG LATIN CAPITAL LETTER A: invisible, not printable
    report = DriftReport("FYTEST0001", "live", (found(f"u{tag}", data(), None),), checked=1)
    rendered = render_drift(report, "json")
    assert "u\\udb40\\udc41" in rendered
    assert orjson.loads(rendered)["profiles"][0]["distinct_id"] == f"u{tag}"
