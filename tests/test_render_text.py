"""Specifications of the text renderer: what a reviewer reads in a terminal or a CI log."""

from __future__ import annotations

from typing import Any

from reconciler.model import ChannelData
from reconciler.plan import Plan
from reconciler.planner import diff
from reconciler.render.text import render_text

PERSONAL_VALUES = ("alice@example.com", "+919879000000", "+919879111111", "+15551234567",
                   "fcm_token:abcdef0123f3", "fcm_token:zzzzzzzzzz99", "fcm_token:newtoken99",
                   "apns_token:xyzxyzxyz1", "bob@example.org", "inapp-token-77")


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def make_plan(desired: dict[str, ChannelData], recorded: dict[str, ChannelData],
              **options: Any) -> Plan:
    return Plan(plan_id="p-1", created_at="2024-05-01T10:00:00Z", workspace="FYTEST0001",
                version="live", lineage="lineage-1", serial=7, config_digest="sha256:00",
                recorded_entries=20, calls=diff(desired, recorded), **options)


def sample_plan(**options: Any) -> Plan:
    """u-1001 gains, changes and loses; u-1002 loses two channels; u-gone leaves management."""
    desired = {
        "u-1001": data(email="alice@example.com", sms="+919879111111",
                       push=[{"token": "fcm_token:newtoken99"}]),
        "u-1002": data(),
    }
    recorded = {
        "u-1001": data(sms="+919879000000", push=[{"token": "fcm_token:abcdef0123f3"},
                                                   {"token": "fcm_token:zzzzzzzzzz99"}]),
        "u-1002": data(sms="+15551234567", push=[{"token": "apns_token:xyzxyzxyz1"}]),
        "u-gone": data(email="bob@example.org", inapp=[{"token": "inapp-token-77"}]),
    }
    return make_plan(desired, recorded, **options)


def test_each_profile_shows_its_calls_and_masked_changes() -> None:
    lines = render_text(sample_plan(), color=False, show_values=False).splitlines()
    start = lines.index("  ~ u-1001")
    assert lines[start:start + 8] == [
        "  ~ u-1001",
        "      # PATCH channel",
        "      ~ sms: +91•••••0000 -> +91•••••1111",
        "      + email: a•••@example.com",
        "      + push: fcm_token:ne…99",
        "      # delete tokens push\u00d72 (Option 2)",
        "      - push: fcm_token:ab…f3",
        "      - push: fcm_token:zz…99",
    ]
    start = lines.index("  - u-1002")
    assert lines[start + 1:start + 4] == [
        "      # delete channels [sms, push] (Option 1)",
        "      - sms: +15•••••4567",
        "      - push: apns_token:xy…z1",
    ]


def test_profile_leaving_management_is_marked() -> None:
    lines = render_text(sample_plan(), color=False, show_values=False).splitlines()
    start = lines.index("  - u-gone (leaves management)")
    assert lines[start + 1] == "      # delete channels [email, inapp] (Option 1)"


def test_profile_gaining_its_first_data_is_marked_plus() -> None:
    plan = make_plan({"u-new": data(email="carol@example.com")}, {})
    assert "  + u-new" in render_text(plan, color=False, show_values=False).splitlines()


def test_token_field_change_shows_its_delete_then_its_re_add() -> None:
    plan = make_plan({"u1": data(push=[{"token": "fcm_token:abcdef0123f3", "integration_id": "I1",
                                        "status": 0}, {"token": "fcm_token:newtoken99"}])},
                     {"u1": data(push=[{"token": "fcm_token:abcdef0123f3"},
                                       {"token": "fcm_token:zzzzzzzzzz99"}])})
    lines = render_text(plan, color=False, show_values=False).splitlines()
    start = lines.index("  ~ u1")
    assert lines[start:] == [
        "  ~ u1",
        "      # PATCH channel",
        "      + push: fcm_token:ne…99",
        "      # delete tokens push\u00d72 (Option 2)",
        "      ~ push: fcm_token:ab…f3 (deleted, then re-added with new fields)",
        "      - push: fcm_token:zz…99",
        "      # re-add tokens push (after their delete)",
        "      ~ push: fcm_token:ab…f3: integration (all) -> I1, status 1 -> 0",
        "",
        "Plan: 1 to add, 1 to change, 1 to remove, in 3 calls across 1 profile.",
    ]


def test_re_added_token_is_shown_in_full_with_show_values() -> None:
    plan = make_plan({"u1": data(inapp=[{"token": "inapp-token-77", "integration_id": "I2"}])},
                     {"u1": data(inapp=[{"token": "inapp-token-77", "integration_id": "I1",
                                         "status": 0}])})
    text = render_text(plan, color=False, show_values=True)
    assert "      ~ inapp: inapp-token-77 (deleted, then re-added with new fields)\n" in text
    assert ("      # re-add tokens inapp (after their delete)\n"
            "      ~ inapp: inapp-token-77: integration I1 -> I2, status 0 -> 1\n") in text
    assert text.endswith("\nPlan: 0 to add, 1 to change, 0 to remove, in 2 calls across 1 "
                         "profile.\n")


def test_summary_line_counts_changes_calls_and_profiles() -> None:
    text = render_text(sample_plan(), color=False, show_values=False)
    assert text.endswith(
        "\nPlan: 2 to add, 1 to change, 6 to remove, in 4 calls across 3 profiles.\n")


def test_summary_line_uses_singular_for_one_call_and_profile() -> None:
    plan = make_plan({"u1": data(email="a@example.com")}, {})
    assert render_text(plan, color=False, show_values=False).endswith(
        "\nPlan: 1 to add, 0 to change, 0 to remove, in 1 call across 1 profile.\n")


def test_no_changes_says_the_state_matches() -> None:
    profile = data(email="alice@example.com")
    text = render_text(make_plan({"u1": profile}, {"u1": profile}), color=False,
                       show_values=False)
    assert text.endswith("\nNo changes. The recorded state matches the configuration.\n")
    assert "Plan:" not in text
    assert "u1" not in text


def test_personal_values_are_masked_by_default() -> None:
    text = render_text(sample_plan(), color=False, show_values=False)
    for value in PERSONAL_VALUES:
        assert value not in text


def test_show_values_shows_every_full_value() -> None:
    text = render_text(sample_plan(), color=False, show_values=True)
    for value in PERSONAL_VALUES:
        assert value in text
    assert "•••" not in text


def test_no_ansi_codes_without_color() -> None:
    assert "\x1b" not in render_text(sample_plan(forced=True, warnings=("w",)), color=False,
                                     show_values=False)


def test_color_paints_markers_and_ids() -> None:
    text = render_text(sample_plan(), color=True, show_values=False)
    assert "\x1b[32m+\x1b[0m email" in text
    assert "\x1b[33m~\x1b[0m sms" in text
    assert "\x1b[31m-\x1b[0m push" in text
    assert "\x1b[1mu-1001\x1b[0m" in text


def test_forced_plan_is_announced() -> None:
    text = render_text(sample_plan(forced=True), color=False, show_values=False)
    assert ("FORCED: this plan removes 6 of 20 recorded channel entries, more than the safety "
            "rail allows; --force let it through.") in text


def test_warnings_and_targets_are_shown() -> None:
    text = render_text(sample_plan(warnings=("u-9 is declared but empty",),
                                   targets=("u-1001", "u-1002")),
                       color=False, show_values=False)
    assert "Warnings:\n  ! u-9 is declared but empty\n" in text
    assert "Targeted profiles only: u-1001, u-1002. Other changes may be pending." in text


def test_control_characters_in_a_distinct_id_are_escaped() -> None:
    plan = make_plan({"evil\x1b[2J\nid": data(email="a@example.com")}, {})
    text = render_text(plan, color=False, show_values=False)
    assert "\x1b" not in text
    assert "  + evil\\x1b[2J\\nid" in text.splitlines()


def test_profiles_appear_in_plan_order() -> None:
    text = render_text(sample_plan(), color=False, show_values=False)
    assert text.index("u-1001") < text.index("u-1002") < text.index("u-gone")


def test_ten_thousand_profiles_render_one_section_each() -> None:
    # How fast is bench/plan_scale.py's business (show, at 100,000 profiles), not a test's.
    desired = {f"u-{index:05}": data(email=f"user{index}@example.com", sms="+919879111111",
                                     push=[{"token": f"fcm_token:new{index:08}"}])
               for index in range(10_000)}
    recorded = {f"u-{index:05}": data(sms="+919879000000",
                                      push=[{"token": f"fcm_token:old{index:08}"}])
                for index in range(10_000)}
    plan = make_plan(desired, recorded)
    text = render_text(plan, color=True, show_values=False)
    assert text.count("# PATCH channel") == 10_000
    assert text.count("# delete tokens push (Option 2)") == 10_000
    assert "in 20000 calls across 10000 profiles." in text.splitlines()[-1]
