"""A large configuration taken for its assumed meaning while the checks confirm it beside:
the same configs, the same problems, as the slow way; nothing returned or raised before the
checks have spoken."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from configgen import generate_config
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.beside import PROCESSES_VARIABLE
from reconciler.config import Config, load_configs, load_configs_then
from reconciler.config import assume as assume_module
from reconciler.config import loader as loader_module
from reconciler.config.assume import (
    assumed_document,
    assumed_text,
    checked_document,
    confirms,
    holds,
)
from reconciler.config.checks import check_document
from reconciler.config.schema import is_valid
from reconciler.errors import ConfigError, StateError
from reconciler.model import CHANNELS


@pytest.fixture(autouse=True)
def _assume_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROCESSES_VARIABLE, raising=False)
    monkeypatch.setattr(loader_module, "ASSUME_FROM", 0)


def the_slow_way(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setenv(PROCESSES_VARIABLE, "1")
        try:
            return load_configs(paths)
        except ConfigError as error:
            return [str(problem) for problem in error.problems]


def loaded(paths: list[Path], calls: list[tuple[Config, ...]]) -> Any:
    def meanwhile(configs: tuple[Config, ...]) -> int:
        calls.append(configs)
        return len(calls)

    try:
        configs, outcome = load_configs_then(paths, meanwhile)
    except ConfigError as error:
        return [str(problem) for problem in error.problems]
    assert outcome == len(calls)  # what the last run of `meanwhile` gave
    assert calls[-1] == configs
    return configs


def write(tmp_path: Path, text: str, name: str = "profiles.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_clean_configuration_is_confirmed_and_meanwhile_runs_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, generate_config(50))
    assert confirms(path.read_text())
    calls: list[tuple[Config, ...]] = []
    configs = loaded([path], calls)
    assert len(calls) == 1
    assert configs == the_slow_way([path], monkeypatch)
    assert configs[0].digest == the_slow_way([path], monkeypatch)[0].digest


@pytest.mark.parametrize(("name", "text"), [
    ("a phone the checks normalise", 'profiles:\n  u-1:\n    sms: "+91 98790 00000"\n'),
    ("an address the checks refuse", "profiles:\n  u-1:\n    email: not-an-address\n"),
    ("a repeated token", "profiles:\n  u-1:\n    push: [a1, a1]\n"),
    ("an unprintable token", 'profiles:\n  u-1:\n    push: ["a\\u00ad1"]\n'),
    ("a token status out of range", "profiles:\n  u-1:\n    push: [{token: a, status: 3}]\n"),
    ("an alias, read only the precise way", "profiles:\n  u-1: &x {email: a@b.io}\n"
                                            "  u-2: *x\n"),
    ("ownership, never assumed", "ownership: owned\nprofiles:\n  u-1: {email: a@b.io}\n"),
    ("a removal, never assumed", "profiles:\n  u-1:\n    remove: {email: a@b.io}\n"),
    ("an unknown channel", "profiles:\n  u-1:\n    fax: '123'\n"),
    ("a value that is not text", "profiles:\n  u-1:\n    email: 12\n"),
    ("a workspace the checks refuse", "workspace: nope\nprofiles:\n  u-1: {}\n"),
    ("a null profile", "profiles:\n  u-1:\n"),
])
def test_what_the_checks_would_change_or_refuse_ends_as_the_slow_way_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: str) -> None:
    path = write(tmp_path, generate_config(20) + text.removeprefix("profiles:\n")
                 if text.startswith("profiles:\n") else text)
    calls: list[tuple[Config, ...]] = []
    assert loaded([path], calls) == the_slow_way([path], monkeypatch), name


def test_files_assumed_and_not_are_merged_as_the_slow_way_merges_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean = write(tmp_path, generate_config(30), "a.yaml")
    owned = write(tmp_path, "ownership: owned\nprofiles:\n  x-1: {email: a@b.io}\n", "b.yaml")
    other = write(tmp_path, generate_config(5, workspace="FYOTHER"), "c.yaml")
    twice = write(tmp_path, generate_config(2, start=29), "d.yaml")  # u-000029 again
    for paths in ([clean, owned, other], [clean, twice]):
        calls: list[tuple[Config, ...]] = []
        assert loaded(paths, calls) == the_slow_way(paths, monkeypatch)


def test_an_error_of_meanwhile_waits_for_the_checks(tmp_path: Path) -> None:
    clean = write(tmp_path, generate_config(10))

    def meanwhile(configs: tuple[Config, ...]) -> None:
        raise StateError("the state is locked")

    with pytest.raises(StateError, match="locked"):
        load_configs_then([clean], meanwhile)
    broken = write(tmp_path, generate_config(10) + "  u-x:\n    email: nope\n", "b.yaml")
    with pytest.raises(ConfigError):  # the configuration's problems come first
        load_configs_then([broken], meanwhile)


def test_meanwhile_runs_again_on_the_checked_meaning_when_the_assumption_fails(
        tmp_path: Path) -> None:
    path = write(tmp_path, generate_config(3) + "  u-a: &x {email: a@b.io}\n  u-b: *x\n")
    seen: list[tuple[Config, ...]] = []
    configs, _ = load_configs_then([path], seen.append)
    assert len(seen) == 2 and seen[-1] == configs
    assert configs[0].profiles["u-b"] == configs[0].profiles["u-a"]


def test_with_one_process_nothing_is_assumed(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROCESSES_VARIABLE, "1")
    monkeypatch.setattr(loader_module, "assumed_text", _never)
    path = write(tmp_path, generate_config(10))
    assert load_configs([path])[0].profiles


def _never(text: str) -> None:
    raise AssertionError("nothing is assumed with one process")


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_token = st.one_of(_text, st.fixed_dictionaries(
    {"token": _text}, optional={"integration_id": _text,
                                "status": st.one_of(st.integers(-1, 2), st.booleans())}))
_profile = st.dictionaries(
    st.sampled_from(["sms", "whatsapp", "voice", "email", "slack", "push", "inapp"]),
    st.one_of(_text, st.sampled_from(["+919879000000", "+1 415 555 0100", "a@b.io"]),
              st.lists(_token, max_size=3)),
    max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_text, _profile, max_size=4), st.sampled_from([None, "FY1", "x"]))
def test_an_assumed_meaning_that_the_checks_find_clean_is_the_checked_meaning(
        profiles: dict[str, Any], workspace: str | None) -> None:
    data: dict[str, Any] = {"profiles": profiles}
    if workspace is not None:
        data["workspace"] = workspace
    assumed = assumed_document(data)
    checked = check_document(data)
    if assumed is not None and not checked.findings:
        assert assumed == checked


def test_assumed_text_takes_what_yaml_rs_reads() -> None:
    assumed = assumed_text("profiles:\n  u-1: {email: a@b.io, push: [t1]}\n")
    assert assumed is not None
    assert assumed.profiles["u-1"].channels["email"] == "a@b.io"
    assert assumed_text("profiles: [\n") is None


# What `holds` decides without the checks, compared with the checks on documents of the
# common shape, each valid but for at most one value, key or item one step off in a way that
# a single rule catches.
_VALID = {
    "phone": ["+919879000000", "+14155550100", "+91 98790 00000", "+442079460000"],
    "email": ["a@b.io", "A.b@Example.COM", "x@xn--bcher-kva.de"],
    "other": ["https://hooks.slack.com/x", "\u00e9t\u00e9", "t"],
}
_OFF = {
    "phone": ["+4402079460000", "+49 00 27180", "+490027180", "+1234", "+12", "+999999999",
              "+0123456789", "919879000000", "+91-98790-00000", "+91 (987) 900-0000",
              "+\u0669\u0661\u0669\u0668\u0667\u0669\u0660\u0660\u0660\u0660\u0660\u0660",
              "+9198790000001234567", "+91987900000x", "a@b.io"],
    "email": ["a@B\u00fccher.de", "\u00fc@b.io", "a@b", "a..b@c.io", "a@b@c.io", '"q"@b.io',
              "a@[127.0.0.1]", "x" * 65 + "@b.io", "a@" + "b" * 250 + ".io", " a@b.io",
              "+919879000000"],
    "text": ["", "a\n", "\u00a0x", "\u00ad", "v" * 4097, "\u2028", "t\x00"],
    "not text": [None, 12, 1.5, True, [], {}],
    "status": [2, -1, True, False, 1.0, 0.0, None, "1", 2**70, 10**5000],
}
_KINDS = {"sms": "phone", "whatsapp": "phone", "voice": "phone", "email": "email",
          "slack": "other", "discord": "other", "teams": "other"}


@st.composite
def _tokens(draw: st.DrawFn) -> list[Any]:
    names = draw(st.lists(st.sampled_from(["t1", "t2", "t3", "\u00e9"]), unique=True,
                          max_size=3))
    items: list[Any] = []
    for name in names:
        if draw(st.booleans()):
            items.append(name)
        else:
            item: dict[str, Any] = {"token": name}
            if draw(st.booleans()):
                item["integration_id"] = draw(st.sampled_from(["I1", "\u00e9"]))
            if draw(st.booleans()):
                item["status"] = draw(st.sampled_from([0, 1]))
            items.append(item)
    return items


@st.composite
def _near_documents(draw: st.DrawFn) -> dict[str, Any]:
    profiles: dict[str, Any] = {}
    for distinct_id in draw(st.lists(st.sampled_from(["u-1", "u-2", "\u00fc"]), unique=True,
                                     max_size=3)):
        channels = draw(st.lists(st.sampled_from(CHANNELS), unique=True, max_size=4))
        profiles[distinct_id] = {channel: draw(_tokens()) if channel in ("push", "inapp")
                                 else draw(st.sampled_from(_VALID[_KINDS[channel]]))
                                 for channel in channels}
    data: dict[str, Any] = {"profiles": profiles}
    if draw(st.booleans()):
        data["workspace"] = "FYABC1"
    if draw(st.booleans()):
        data["version"] = draw(st.sampled_from(["live", "test"]))
    off = draw(st.sampled_from(["none", "value", "item", "status", "repeat", "key", "id",
                                "top"]))
    where = draw(st.sampled_from(sorted(profiles))) if profiles else None
    if off == "value" and where is not None:
        channel = draw(st.sampled_from(CHANNELS))
        kind = _KINDS.get(channel, "text")
        choices = _OFF[kind] if kind in ("phone", "email") else _OFF["text"]
        profiles[where][channel] = draw(st.sampled_from(choices + _OFF["not text"]))
    elif off in ("item", "status", "repeat") and where is not None:
        channel = draw(st.sampled_from(["push", "inapp"]))
        items = profiles[where].get(channel) or ["t9"]
        profiles[where][channel] = items
        if off == "item":
            odd = draw(st.sampled_from(_OFF["text"] + _OFF["not text"]))
            items.append(odd if draw(st.booleans()) else {"token": odd})
        elif off == "status":
            items.append({"token": "t8", "status": draw(st.sampled_from(_OFF["status"]))})
        else:
            first = items[0]
            items.append({"token": first} if isinstance(first, str) else first["token"])
    elif off == "key" and where is not None:
        key = draw(st.sampled_from(["ownership", "remove", "fax", "webpush", "tokn"]))
        profiles[where][key] = draw(st.sampled_from(["owned", {"email": "a@b.io"}, "x"]))
    elif off == "id":
        profiles[draw(st.sampled_from(["", "u\x00", "u" * 2049, "u\u00a0"]))] = {}
    elif off == "top":
        key, value = draw(st.sampled_from([("workspace", "x"), ("workspace", None),
                                           ("version", "prod"), ("ownership", "owned"),
                                           ("profile", {})]))
        data[key] = value
    return data


@settings(max_examples=500, deadline=None)
@given(_near_documents())
def test_holds_says_what_the_checks_and_the_schema_say(data: dict[str, Any]) -> None:
    holding = holds(data)  # on any data, without failing; what it says counts when
    assumed = assumed_document(data)  # a meaning is assumed
    checked = check_document(data)
    clean = not checked.findings and is_valid(data)
    assert (assumed is not None and holding) == (
        assumed is not None and clean and checked == assumed)
    assert checked_document(data) == (checked if clean else None)


@pytest.mark.parametrize(("channel", "value"), [
    ("sms", "+4402079460000"),  # E.164 in form, yet the library strips a national prefix
    ("sms", "+1234"),  # too short for any country
    ("email", "a@b"),  # no dot in the domain
    ("push", ["t1", {"token": "t1"}]),  # a token repeated, once as a mapping
    ("push", [{"token": "t1", "status": 1.0}]),  # the schema counts 1.0 as an integer
    ("push", [{"token": "t1", "status": 10**5000}]),  # and jsonschema-rs this as 1
    ("ownership", "owned"),  # a profile's own modes, never assumed
])
def test_what_only_the_checks_see_is_never_assumed_to_hold(channel: str, value: Any) -> None:
    data = {"profiles": {"u-1": {channel: value}}}
    assumed = assumed_document(data)
    assert assumed is None or not holds(data)
    checked = check_document(data)
    assert checked.findings or checked != assumed or not is_valid(data)


def test_a_clean_file_is_read_without_running_the_checks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`holds` stands in for the checks on a clean file, in one process as beside one; a
    file with a problem still gets them, and their message."""
    monkeypatch.setenv(PROCESSES_VARIABLE, "1")
    clean = write(tmp_path, generate_config(30))
    expected = load_configs([clean])
    ran: list[object] = []

    def counted(data: object, *args: Any) -> Any:
        ran.append(data)
        return check_document(data, *args)

    monkeypatch.setattr(assume_module, "check_document", counted)
    monkeypatch.setattr(loader_module, "check_document", counted)
    assert load_configs([clean]) == expected and confirms(clean.read_text())
    assert ran == []
    broken = write(tmp_path, generate_config(3) + "  u-x:\n    email: nope\n", "b.yaml")
    with pytest.raises(ConfigError) as raised:
        load_configs([broken])
    assert "not a valid e-mail address" in str(raised.value.problems[0])
    assert ran
