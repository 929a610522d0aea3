"""Specifications of drift: how a profile on the server differs from what the state recorded."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import drift as drift_module
from reconciler.drift import DriftReport, ProfileDrift, compare
from reconciler.heap import collector_paused
from reconciler.model import ChannelData, Token
from reconciler.plan import Change

FCM = "fcm_token:abcdef0123f3"
APNS = "apns_token:xyzxyzxyz1"


def data(**channels: Any) -> ChannelData:
    return ChannelData.from_json(channels)


def drift_of(recorded: ChannelData | None, server: ChannelData | None,
             **options: Any) -> ProfileDrift:
    found = compare("u-1001", recorded, server, **options)
    assert found is not None
    return found


def test_equal_profiles_have_no_drift() -> None:
    profile = data(email="alice@example.com", push=[{"token": FCM}], webpush={"k": 1})
    assert compare("u-1001", profile, data(**profile.to_json())) is None


def test_equal_profiles_cost_one_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object) -> None:
        raise AssertionError("an equal profile was compared entry by entry")

    monkeypatch.setattr(drift_module, "_changes", never)
    monkeypatch.setattr(drift_module, "_unmanaged", never)
    profile = data(email="alice@example.com", push=[{"token": FCM}, {"token": APNS}])
    assert compare("u-1001", profile, data(**profile.to_json())) is None


def test_a_profile_not_recorded_yet_has_no_drift() -> None:
    assert compare("u-1001", None, data(email="alice@example.com")) is None
    assert compare("u-1001", None, None) is None


def test_channel_added_on_the_server() -> None:
    found = drift_of(data(email="alice@example.com"),
                     data(email="alice@example.com", sms="+919879000000"))
    assert found.changes == (Change("sms", None, "+919879000000"),)
    assert [change.action for change in found.changes] == ["+"]
    assert (found.missing, found.appeared, found.action) == (False, False, "~")


def test_channel_changed_on_the_server() -> None:
    found = drift_of(data(email="alice@example.com"), data(email="bob@example.org"))
    assert found.changes == (Change("email", "alice@example.com", "bob@example.org"),)
    assert found.changes[0].action == "~"


def test_channel_removed_on_the_server() -> None:
    found = drift_of(data(email="alice@example.com", slack="U024BE7LH"),
                     data(email="alice@example.com"))
    assert found.changes == (Change("slack", "U024BE7LH", None),)


def test_token_added_on_the_server() -> None:
    found = drift_of(data(push=[{"token": FCM}]), data(push=[{"token": FCM}, {"token": APNS}]))
    assert found.changes == (Change("push", None, Token(APNS)),)


def test_whole_token_channel_added_on_the_server() -> None:
    found = drift_of(data(), data(inapp=[{"token": "u-1001"}]))
    assert found.changes == (Change("inapp", None, Token("u-1001")),)


def test_token_removed_on_the_server() -> None:
    found = drift_of(data(push=[{"token": FCM}, {"token": APNS}]), data(push=[{"token": APNS}]))
    assert found.changes == (Change("push", Token(FCM), None),)


def test_token_with_another_status_is_one_change() -> None:
    found = drift_of(data(push=[{"token": FCM, "status": 1}]),
                     data(push=[{"token": FCM, "status": 0}]))
    assert found.changes == (Change("push", Token(FCM, None, 1), Token(FCM, None, 0)),)
    assert found.changes[0].action == "~"


def test_token_with_another_integration_is_one_change() -> None:
    found = drift_of(data(push=[{"token": FCM, "integration_id": "I1"}]),
                     data(push=[{"token": FCM, "integration_id": "I2"}]))
    assert found.changes == (Change("push", Token(FCM, "I1"), Token(FCM, "I2")),)


def test_token_order_alone_is_no_drift() -> None:
    recorded = data(push=[{"token": FCM}, {"token": APNS}])
    assert compare("u-1001", recorded, data(push=[{"token": APNS}, {"token": FCM}])) is None


def test_a_token_held_twice_on_the_server_is_one_addition() -> None:
    found = drift_of(data(push=[{"token": FCM}]), data(push=[{"token": FCM}, {"token": FCM}]))
    assert found.changes == (Change("push", None, Token(FCM)),)


def test_changes_follow_channel_order_tokens_in_server_then_recorded_order() -> None:
    recorded = data(inapp=[{"token": "old-inapp-1"}], email="alice@example.com",
                    push=[{"token": "p-gone-1"}, {"token": "p-kept"}, {"token": "p-gone-2"}])
    server = data(push=[{"token": "p-new-2"}, {"token": "p-kept", "status": 0},
                        {"token": "p-new-1"}],
                  email="bob@example.org", sms="+919879000000")
    found = drift_of(recorded, server)
    assert [(change.channel, change.action, change.before or change.after)
            for change in found.changes] == [
        ("sms", "+", "+919879000000"),
        ("email", "~", "alice@example.com"),
        ("push", "+", Token("p-new-2")),
        ("push", "~", Token("p-kept")),
        ("push", "+", Token("p-new-1")),
        ("push", "-", Token("p-gone-1")),
        ("push", "-", Token("p-gone-2")),
        ("inapp", "-", Token("old-inapp-1")),
    ]


def test_unmanaged_key_changed_is_reported_apart_from_channel_changes() -> None:
    found = drift_of(data(email="alice@example.com", webpush={"endpoint": "https://a"}),
                     data(email="alice@example.com", webpush={"endpoint": "https://b"}))
    assert found.changes == ()
    assert found.unmanaged == (("webpush", {"endpoint": "https://a"},
                                {"endpoint": "https://b"}),)


def test_unmanaged_keys_added_and_removed_are_sorted_by_key() -> None:
    found = drift_of(data(zeta=[1]), data(alpha="x"))
    assert found.unmanaged == (("alpha", None, "x"), ("zeta", [1], None))


def test_profile_missing_on_the_server_lists_what_was_recorded() -> None:
    found = drift_of(data(email="alice@example.com", push=[{"token": FCM}], webpush={"k": 1}),
                     None)
    assert found.missing and not found.appeared
    assert found.action == "-"
    assert found.changes == (Change("email", "alice@example.com", None),
                             Change("push", Token(FCM), None))
    assert found.unmanaged == (("webpush", {"k": 1}, None),)


def test_profile_with_no_channel_data_missing_on_the_server_is_still_drift() -> None:
    found = drift_of(data(), None)
    assert found.missing
    assert found.changes == ()


def test_profile_recorded_missing_that_appeared_lists_what_the_server_holds() -> None:
    found = drift_of(None, data(email="alice@example.com"), recorded_missing=True)
    assert found.appeared and not found.missing
    assert found.action == "+"
    assert found.changes == (Change("email", None, "alice@example.com"),)


def test_profile_recorded_missing_and_still_missing_has_no_drift() -> None:
    assert compare("u-1001", None, None, recorded_missing=True) is None


def make_report() -> DriftReport:
    profiles = (
        drift_of(data(email="alice@example.com"), None),
        ProfileDrift("u-0001", (Change("push", Token(FCM), Token(FCM, "I1", 0)),),
                     (("webpush", None, {"k": 1}),)),
        ProfileDrift("u-0500", (Change("sms", None, "+919879000000"),), appeared=True),
    )
    return DriftReport("FYTEST0001", "live", profiles, checked=40)


def test_report_sorts_profiles_and_counts_them() -> None:
    report = make_report()
    assert [profile.distinct_id for profile in report.profiles] == ["u-0001", "u-0500", "u-1001"]
    assert report.has_drift
    summary = report.summary
    assert (summary.profiles, summary.added, summary.changed, summary.removed) == (3, 1, 1, 1)
    assert (summary.unmanaged, summary.missing, summary.appeared) == (1, 1, 1)


def test_a_report_without_drifted_profiles_has_no_drift() -> None:
    report = DriftReport("FYTEST0001", "live", (), checked=100)
    assert not report.has_drift
    assert report.to_json()["summary"]["profiles"] == 0


def test_report_json_carries_full_values_and_reads_back() -> None:
    report = make_report()
    document = report.to_json()
    assert document["checked"] == 40
    assert document["profiles"][0]["changes"][0]["after"] == {
        "token": FCM, "integration_id": "I1", "status": 0}
    assert document["profiles"][2]["changes"][0]["before"] == "alice@example.com"
    assert DriftReport.from_json(document) == report


def many(count: int, domain: str = "com", status: int = 1) -> list[ChannelData]:
    """Profiles built directly (from_json would dominate the time), no object shared."""
    with collector_paused():
        return [ChannelData({"email": f"user{index}@example.{domain}", "sms": "+919879000000",
                             "push": (Token(f"fcm_token:{index:012}", "I1", status),)})
                for index in range(count)]


def test_compare_over_many_profiles_finds_exactly_the_drifted_ones() -> None:
    # Speed is measured in bench/, never asserted here; this checks the result at scale.
    recorded, server = many(2_000), many(2_000)
    found = [compare(f"u-{index}", recorded[index], server[index]) for index in range(2_000)]
    assert found.count(None) == 2_000
    drifted = many(2_000, domain="org", status=0)
    found = [compare(f"u-{index}", recorded[index], drifted[index]) for index in range(2_000)]
    assert all(profile is not None and len(profile.changes) == 2 for profile in found)
