"""`reconciler.export`: the YAML it writes loads back, through the project's own loader, to
exactly the channel data the server held; what no configuration can declare is a comment."""

from __future__ import annotations

import random
import string
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cli import cli
from reconciler.config import load_config
from reconciler.config.fast import load_fast
from reconciler.config.limits import MAX_DISTINCT_ID_LENGTH, MAX_VALUE_LENGTH
from reconciler.config.precise import parse_precise
from reconciler.export import Origin, public_url, quoted, render, render_files, sort_out
from reconciler.model import SINGLE_VALUE_CHANNELS, ChannelData, Token

ORIGIN = Origin("FYTEST0001", "live", "https://api.fyno.io/v1", "9.9.9", date(2024, 5, 1))

EVERY_KIND = ChannelData({
    "sms": "+919879000000", "whatsapp": "+14155550100", "voice": "+442079460000",
    "email": "alice@example.com", "slack": "U0123ABC", "discord": "123456789012345678",
    "teams": "General",
    "push": (Token("fcm_token:abc", "IXXXXXXX", 1), Token("apns_token:def", None, 0),
             Token("ExponentPushToken[xyz]")),
    "inapp": (Token("u-1001"),),
})

HOSTILE_TEXTS = [
    'quote " inside', "single ' quote", "back\\slash", "colon: space", "hash # sign", "#start",
    "- dash", "? question", "{brace}", "[bracket]", "&anchor", "*alias", "!tag", "%directive",
    "@at", "`tick`", "|pipe", ">fold", " leading space", "trailing space ", "null", "~",
    "true", "no", "0123", "1e3", "0x1F", ".inf", "+919879000000", "<<", "a\u00a0nbsp",
    "zero\u200bwidth", "rtl\u202eoverride", "bom\ufeff", "emoji \U0001f600", "tag\U000e0001",
    "private\ue000use", "noncharacter\ufffe", "日本語", "---", "...", "'", '"', "\\", ",",
]


def load_text(text: str, name: str = "export.yaml") -> dict[str, ChannelData]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_text(text, encoding="utf-8")
        return load_config([path]).profiles


def declared(found: dict[str, ChannelData | None]) -> dict[str, ChannelData]:
    """What the YAML should declare: every profile present, managed channels only."""
    return {name: ChannelData(data.channels) for name, data in found.items() if data is not None}


def assert_round_trip(found: dict[str, ChannelData | None]) -> str:
    text = render(ORIGIN, found)
    assert load_text(text) == declared(found)
    # Both of the loader's parsers read the same document (the fast one may decline).
    fast = load_fast(text)
    precise = parse_precise(text)
    assert precise.complete and not precise.problems
    if fast is not None:
        assert fast == precise.data
    return text


def test_single_value_channels_are_written_as_quoted_strings() -> None:
    text = render(ORIGIN, {"u-1": ChannelData({"sms": "+919879000000", "email": "a@b.example"})})
    assert '    sms: "+919879000000"\n' in text
    assert '    email: "a@b.example"\n' in text


def test_tokens_are_mappings_with_their_integration_and_status() -> None:
    text = render(ORIGIN, {"u-1": EVERY_KIND})
    assert ('    push:\n'
            '      - token: "fcm_token:abc"\n'
            '        integration_id: "IXXXXXXX"\n'
            '        status: 1\n'
            '      - token: "apns_token:def"\n'
            '        status: 0\n') in text
    assert '    inapp:\n      - token: "u-1001"\n        status: 1\n' in text


def test_channels_follow_the_models_order() -> None:
    text = render(ORIGIN, {"u-1": EVERY_KIND})
    positions = [text.index(f"    {name}:") for name in (*SINGLE_VALUE_CHANNELS, "push", "inapp")]
    assert positions == sorted(positions)


def test_every_channel_kind_loads_back_to_the_same_channel_data() -> None:
    assert_round_trip({"u-1": EVERY_KIND, "u-2": ChannelData(), "u-3": ChannelData(
        {"inapp": (Token("t", "I", 0),)})})


def test_a_profile_without_channel_data_is_declared_empty() -> None:
    text = assert_round_trip({"u-2": ChannelData()})
    assert '  "u-2": {}\n' in text


@pytest.mark.parametrize("hostile", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_ids_and_values_load_back_unchanged(hostile: str) -> None:
    assert_round_trip({
        hostile: ChannelData({"teams": hostile, "push": (Token(hostile, hostile, 0),)}),
        f"{hostile}-2": ChannelData({"slack": hostile, "discord": hostile}),
    })


def test_the_longest_distinct_id_and_value_load_back() -> None:
    longest = "v" * MAX_VALUE_LENGTH
    assert_round_trip({"i" * MAX_DISTINCT_ID_LENGTH: ChannelData(
        {"teams": longest, "push": (Token(longest, longest),)})})


def test_unprintable_characters_are_escaped_never_written_raw() -> None:
    text = quoted("a\u2028b\x85c\ufeffd\u00a0e\U000e0001")
    assert text == '"a\\u2028b\\u0085c\\ufeffd\\u00a0e\\U000e0001"'
    assert quoted('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'


@pytest.mark.parametrize(("distinct_id", "data", "why"), [
    ("line\nbreak", ChannelData({"email": "a@b.example"}), "control character \\n"),
    ("nul\x00", ChannelData(), "control character"),
    ("sep\u2028", ChannelData(), "line separator"),
    ("", ChannelData(), "must not be empty"),
    ("i" * (MAX_DISTINCT_ID_LENGTH + 1), ChannelData(), "at most 2,048"),
    ("u-value", ChannelData({"email": "a@b.example\n"}), "email: email "),
    ("u-long", ChannelData({"slack": "x" * (MAX_VALUE_LENGTH + 1)}), "at most 4,096"),
    ("u-token", ChannelData({"push": (Token(""),)}), "push.0.token: token must not be empty"),
    ("u-integration", ChannelData({"inapp": (Token("t", ""),)}),
     "inapp.0.integration_id: integration_id must not be empty"),
    ("u-status", ChannelData({"push": (Token("t", None, 2),)}), "status must be 0 or 1"),
    ("u-surrogate", ChannelData({"slack": "\ud800"}), "lone surrogate"),
])
def test_profiles_no_configuration_can_hold_are_listed_with_why_not_declared(
        distinct_id: str, data: ChannelData, why: str) -> None:
    found: dict[str, ChannelData | None] = {distinct_id: data, "u-ok": ChannelData()}
    text = render(ORIGIN, found)
    assert load_text(text) == {"u-ok": ChannelData()}
    assert sort_out(found).refused[0][0] == distinct_id
    comment = text.split("whose data no configuration can hold")[1].split("\n\n")[0]
    assert why in comment
    text.encode("utf-8")  # nothing unencodable reaches the file


def test_profiles_the_server_lacks_are_a_comment_not_declared() -> None:
    text = assert_round_trip({"u-ghost": None, "u-1": ChannelData({"email": "a@b.example"}),
                              "u-ghost-2": None})
    assert ("# Not declared: 2 profiles the server does not have.\n"
            '#   "u-ghost"\n#   "u-ghost-2"\n') in text


def test_channels_the_api_does_not_document_are_comments_under_their_profile() -> None:
    webpush = [{"token": {"endpoint": "https://push.example/abc", "keys": {"auth": "k"}},
                "integration_id": "W1", "status": 1}]
    found: dict[str, ChannelData | None] = {
        "u-1": ChannelData({"email": "a@b.example"}, {"webpush": webpush}),
        "u-2": ChannelData({}, {"webpush": webpush, "fax": "+1555"}),
    }
    text = assert_round_trip(found)
    profile = text.split('  "u-1":\n')[1].split('  "u-2"')[0]
    assert "never planned" in profile
    assert ('#   webpush: [{"integration_id": "W1", "status": 1, "token": {"endpoint": '
            '"https://push.example/abc", "keys": {"auth": "k"}}}]') in profile
    second = text.split('  "u-2": {}\n')[1]
    assert second.index("#   fax:") < second.index("#   webpush:")


def test_hostile_text_in_a_comment_cannot_end_it() -> None:
    hostile = "x\ny: 1\r\nprofiles:\u2028\x85z"
    found: dict[str, ChannelData | None] = {
        "u-1": ChannelData({}, {"webpush": [{"token": hostile}], hostile: hostile}),
        hostile: None,
    }
    text = assert_round_trip(found)
    assert all(line == "" or line.startswith(("#", " ", "workspace:", "version:", "profiles:"))
               for line in text.split("\n"))
    assert "\u2028" not in text and "\x85" not in text and "\r" not in text


def test_a_token_the_server_holds_twice_is_declared_once_with_a_note() -> None:
    found: dict[str, ChannelData | None] = {"u-1": ChannelData({"push": (
        Token("t1", "I1", 1), Token("t2"), Token("t1", None, 0))})}
    text = render(ORIGIN, found)
    assert load_text(text) == {"u-1": ChannelData({"push": (Token("t1", "I1", 1), Token("t2"))})}
    assert "holds this push token 2 times" in text


def test_the_header_names_version_day_source_and_how_to_adopt() -> None:
    text = render(ORIGIN, {"u-1": ChannelData()})
    header = text.split("\n\n")[0]
    assert header.startswith("# Exported by reconciler 9.9.9 on 2024-05-01 (UTC)\n")
    assert "from https://api.fyno.io/v1, workspace FYTEST0001, version live" in header
    assert "reconciler import PATH && reconciler plan PATH" in header
    assert "workspace: FYTEST0001\nversion: live\nprofiles:\n" in text


@pytest.mark.parametrize(("url", "shown"), [
    ("https://user:secret@api.example.com:8443/v1?key=abc#x", "https://api.example.com:8443/v1"),
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("http://[::1]:9000/v1", "http://[::1]:9000/v1"),
    ("http://token@host/v1", "http://host/v1"),
])
def test_the_source_url_is_shown_without_credentials(url: str, shown: str) -> None:
    assert public_url(url) == shown


def test_the_same_export_is_byte_identical_whatever_the_order_of_the_answers() -> None:
    found: dict[str, ChannelData | None] = {f"u-{i}": ChannelData({"email": f"{i}@x.example"})
                                            for i in range(50)}
    found.update({"gone": None, "bad\n": ChannelData()})
    items = list(found.items())
    random.Random(4).shuffle(items)
    assert render(ORIGIN, found).encode() == render(ORIGIN, dict(items)).encode()
    assert list(render_files(ORIGIN, found, 7)) == list(render_files(ORIGIN, dict(items), 7))


def test_a_directory_export_splits_into_numbered_files_each_a_whole_configuration(
        tmp_path: Path) -> None:
    found: dict[str, ChannelData | None] = {
        f"u-{i:02d}": ChannelData({"email": f"{i}@x.example"}) for i in range(10)}
    found["u-ghost"] = None
    files = list(render_files(ORIGIN, found, 3))
    assert [name for name, _ in files] == [f"profiles-000{i}.yaml" for i in range(1, 5)]
    for number, (name, text) in enumerate(files):
        alone = load_text(text, name)
        assert len(alone) == (1 if number == 3 else 3)
        assert ("u-ghost" in text) == (number == 0)
        assert f"(file {number + 1} of 4)" in text
        (tmp_path / name).write_text(text)
    merged = load_config([tmp_path])
    assert merged.profiles == declared(found)
    assert (merged.workspace, merged.version) == ("FYTEST0001", "live")


def test_an_export_of_nothing_is_one_valid_file() -> None:
    files = list(render_files(ORIGIN, {"u-ghost": None}, 5))
    assert [name for name, _ in files] == ["profiles-0001.yaml"]
    assert "profiles: {}\n" in files[0][1]
    assert load_text(files[0][1]) == {}


def test_file_names_widen_past_9999_files_and_keep_their_order() -> None:
    found: dict[str, ChannelData | None] = {f"u-{i:05d}": ChannelData() for i in range(10_001)}
    names = [name for name, _ in render_files(ORIGIN, found, 1)]
    assert names[0] == "profiles-00001.yaml" and names[-1] == "profiles-10001.yaml"
    assert names == sorted(names)


def test_a_file_stays_plain_yaml_for_other_tools() -> None:
    text = render(ORIGIN, {"u-1": EVERY_KIND, "0123": ChannelData({"sms": "+15550000001"})})
    data: Any = yaml.safe_load(text)
    assert data["profiles"]["0123"]["sms"] == "+15550000001"
    assert data["profiles"]["u-1"]["push"][0] == {"token": "fcm_token:abc",
                                                  "integration_id": "IXXXXXXX", "status": 1}


# Text the loader accepts: anything but controls, line and paragraph separators and lone
# surrogates (a UTF-8 file cannot hold one).
_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
                max_size=12)
_PHONE = st.sampled_from(("+919879000000", "+14155550100", "+442079460000", "+15550000001"))
_CHECKED = {"sms": _PHONE, "whatsapp": _PHONE, "voice": _PHONE, "email": st.sampled_from(
    ("alice@example.com", "o'brien+tag@example.com", "x@b.example", "Ünï@bücher.example"))}
_MIXED = st.one_of(_TEXT, st.text(string.ascii_letters + string.digits + ":-_@.+ #'\"\\",
                                  min_size=1, max_size=12))


@st.composite
def channel_data(draw: st.DrawFn) -> ChannelData:
    channels: dict[str, str | tuple[Token, ...]] = {}
    for name in draw(st.lists(st.sampled_from(SINGLE_VALUE_CHANNELS), unique=True)):
        # The loader checks phone numbers and e-mail addresses (and may normalise a phone
        # number not in E.164): those are drawn from good ones, every other value is any text.
        channels[name] = draw(_CHECKED.get(name, _MIXED))
    for name in draw(st.lists(st.sampled_from(("push", "inapp")), unique=True)):
        names = draw(st.lists(_MIXED, min_size=1, max_size=3, unique=True))
        channels[name] = tuple(Token(token, draw(st.none() | _MIXED), draw(st.sampled_from((0, 1))))
                               for token in names)
    unmanaged = draw(st.dictionaries(_MIXED, st.recursive(
        st.none() | st.booleans() | st.integers() | _MIXED,
        lambda inner: st.lists(inner, max_size=2) | st.dictionaries(_MIXED, inner, max_size=2),
        max_leaves=4), max_size=2).filter(lambda keys: not keys.keys() & {"push", "inapp",
                                                                          *SINGLE_VALUE_CHANNELS}))
    return ChannelData(channels, unmanaged)


@given(st.dictionaries(_MIXED, st.none() | channel_data(), max_size=6))
def test_any_channel_data_loads_back_exactly_as_rendered(
        found: dict[str, ChannelData | None]) -> None:
    assert not sort_out(found).refused
    assert_round_trip(found)


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    base = {"FYNO_API_KEY": "k", "FYNO_WSID": "FYTEST0001", "FYNO_BASE_URL":
            "http://127.0.0.1:9/v1"}
    return CliRunner().invoke(cli, ["export", *map(str, args)], env={**base, **(env or {})})


@pytest.mark.parametrize(("args", "message"), [
    ((), "exactly one of --id ID, --all-recorded or --ids-from FILE"),
    (("--id", "u-1", "--all-recorded"), "not --id and --all-recorded"),
    (("--id", "u-1", "--per-file", "5"), "--per-file splits a directory export"),
])
def test_the_profiles_to_export_are_named_one_way(args: tuple[str, ...], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_an_empty_or_unreadable_ids_file_is_an_error_naming_it(tmp_path: Path) -> None:
    empty = tmp_path / "ids.txt"
    empty.write_text("# none yet\n\n   \n")
    result = run("--ids-from", empty)
    assert result.exit_code == 1
    assert f"--ids-from {empty} names no distinct_id" in result.output
    missing = tmp_path / "absent.txt"
    result = run("--ids-from", missing)
    assert result.exit_code == 1
    assert f"cannot read --ids-from {missing}: No such file or directory" in result.output
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"u-1\n\xff\xfe\n")
    result = run("--ids-from", binary)
    assert result.exit_code == 1 and "not UTF-8 text" in result.output


def test_an_existing_output_is_kept_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "profiles.yaml"
    out.write_text("keep me")
    result = run("--id", "u-1", "--out", out)
    assert result.exit_code == 1
    assert "exists: re-run with --force" in result.output
    assert out.read_text() == "keep me"


def test_a_directory_holding_other_configuration_is_refused_even_with_force(
        tmp_path: Path) -> None:
    (tmp_path / "out" / "team").mkdir(parents=True)
    (tmp_path / "out" / "team" / "extra.yaml").write_text("profiles: {}\n")
    result = run("--id", "u-1", "--out", f"{tmp_path / 'out'}/", "--force")
    assert result.exit_code == 1
    assert "which is not a file of an export" in result.output


def test_all_recorded_needs_a_state_that_records_profiles(tmp_path: Path) -> None:
    result = run("--all-recorded", "--state", tmp_path / "absent.json")
    assert result.exit_code == 1
    assert "records no profile" in result.output
