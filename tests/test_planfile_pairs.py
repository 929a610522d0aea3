"""Saved plans of several workspace/version pairs: one document, one call per line, each call
naming its pair; round trip, and refusal of edited, malformed and masked ones."""

from __future__ import annotations

import copy
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest

from reconciler import plandoc
from reconciler.encryption import Encryption
from reconciler.errors import PlanEditedError, PlanFileError
from reconciler.model import ChannelData
from reconciler.ownership import Mode, Policy
from reconciler.plan import Plan, total_summary
from reconciler.plandoc import checksum, document_lines, encode
from reconciler.planfile import read_plan, read_plans, write_plan, write_plans
from reconciler.planner import diff
from reconciler.render.json import render_json, write_json

LINEAGE = "00000000-0000-0000-0000-000000000001"
KEY = "q0h3QfUjWwq5m2PO1tdQmZ3Zbmn3Lq2jL8k0V3yT2hE="
SCHEMA = orjson.loads((Path(__file__).parent.parent / "schemas" / "plan.schema.json").read_bytes())
VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA)
PAIRS = (("FYA", "live"), ("FYA", "test"), ("FYB", "live"))


def pair_plan(workspace: str, version: str, profiles: int = 0, **options: Any) -> Plan:
    """A pair's plan of one run (plan id, creation time and targets shared): every kind of
    call, values naming the pair, and `profiles` more new profiles."""
    mark = f"{workspace.lower()}-{version}"
    desired = {"u1": ChannelData.from_json({"email": f"{mark}@x.io", "push": [
                   {"token": f"{mark}-new"}, {"token": "x", "integration_id": "I1", "status": 0}]}),
               "a/b": ChannelData.from_json({"sms": "+1555"})}
    desired.update({f"n{index:04d}": ChannelData.from_json({"email": f"n{index}@{mark}.io"})
                    for index in range(profiles)})
    recorded = {"u1": ChannelData.from_json({"push": [{"token": "old"}, {"token": "x"}]}),
                "gone": ChannelData.from_json({"teams": f"{mark}-general"})}
    fields: dict[str, Any] = {
        "plan_id": "p-run", "created_at": "2026-11-28T00:00:00Z", "workspace": workspace,
        "version": version, "lineage": f"{LINEAGE[:-len(mark)]}{mark}", "serial": len(mark),
        "config_digest": f"sha256:{mark}", "recorded_entries": 3,
        "calls": diff(desired, recorded), "targets": (), "warnings": (f"about {mark}",)}
    return Plan(**{**fields, **options})


def run_plans(count: int = 3, profiles: int = 0) -> tuple[Plan, ...]:
    """The plans of one run for the first `count` pairs; the second with ownership policies
    and profiles to forget, the last forced."""
    plans = [pair_plan(workspace, version, profiles) for workspace, version in PAIRS[:count]]
    plans[1] = Plan(**{**plans[1]._fields(), "forget": ("left",), "policies": {
        "u1": Policy({"push": Mode.OWNED}, frozenset({("email", "old@x.io")}))}})
    plans[-1] = Plan(**{**plans[-1]._fields(), "forced": True})
    return tuple(plans)


def saved(tmp_path: Path, plans: tuple[Plan, ...] | None = None) -> Path:
    path = tmp_path / "plan.json"
    write_plans(plans or run_plans(), path)
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def document_of(plans: tuple[Plan, ...]) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(b"".join(document_lines(plans)))
    return loaded


def sealing() -> Encryption:
    return Encryption.configure("env:KEY", None, None, {"KEY": KEY})


# --- round trip ------------------------------------------------------------------------------

@pytest.mark.parametrize("count", [2, 3])
def test_the_plans_of_several_pairs_round_trip(tmp_path: Path, count: int) -> None:
    plans = run_plans(count)
    written = write_plans(plans, tmp_path / "plan.json")
    loaded = read_plans(tmp_path / "plan.json")
    assert loaded == plans
    for plan, original in zip(loaded, plans, strict=True):
        assert plan.calls == original.calls and plan.summary == original.summary
        assert (plan.lineage, plan.serial, plan.digest(), plan.recorded_entries) == (
            original.lineage, original.serial, original.digest(), original.recorded_entries)
        assert (plan.warnings, plan.forced, plan.forget, plan.policies) == (
            original.warnings, original.forced, original.forget, original.policies)
        assert (plan.plan_id, plan.created_at, plan.targets, plan.checksum) == (
            "p-run", "2026-11-28T00:00:00Z", (), written)
    assert loaded[1].policies["u1"].mode("push") is Mode.OWNED and loaded[-1].forced


def test_the_pairs_are_saved_sorted_whatever_order_they_are_given_in(tmp_path: Path) -> None:
    plans = run_plans()
    write_plans(tuple(reversed(plans)), tmp_path / "plan.json")
    assert [(plan.workspace, plan.version) for plan in read_plans(tmp_path / "plan.json")] == [
        *PAIRS]


def test_several_pairs_of_many_calls_round_trip(tmp_path: Path) -> None:
    plans = run_plans(3, profiles=1_200)  # more calls than one batch of the reader
    loaded = read_plans(saved(tmp_path, plans))
    assert [plan.calls for plan in loaded] == [plan.calls for plan in plans]


def test_pairs_with_no_call_round_trip(tmp_path: Path) -> None:
    plans = tuple(Plan(**{**plan._fields(), "calls": ()}) for plan in run_plans(2))
    assert read_plans(saved(tmp_path, plans)) == plans


def test_a_sealed_plan_of_several_pairs_round_trips(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plandoc, "BLOCK_BYTES", 4096)  # sealed in several blocks
    plans = run_plans(3, profiles=500)
    path = tmp_path / "plan.json"
    write_plans(plans, path, sealing())
    data = path.read_bytes()
    assert data.startswith(b'{"reconciler_encrypted":1,"content":"plan-blocks"')
    assert b"fya-live@x.io" not in data and len(data.splitlines()) > 3
    assert read_plans(path, sealing()) == plans


def test_read_plan_refuses_a_plan_of_several_pairs_naming_them(tmp_path: Path) -> None:
    path = saved(tmp_path, run_plans(2))
    with pytest.raises(PlanFileError) as raised:
        read_plan(path)
    assert str(raised.value) == (f"{path} holds the plans of 2 workspace/version pairs (FYA "
                                 "(live), FYA (test)), where the plan of one was expected")


def test_read_plans_of_a_single_pair_plan_is_that_plan(tmp_path: Path) -> None:
    plan = pair_plan("FYA", "live")
    write_plan(plan, tmp_path / "plan.json")
    assert read_plans(tmp_path / "plan.json") == (plan,)


@pytest.mark.parametrize(("plans", "message"), [
    ((), "at least one"),
    ((pair_plan("FYA", "live"), pair_plan("FYA", "live")), "two plans for workspace FYA"),
    ((pair_plan("FYA", "live"), pair_plan("FYB", "live", plan_id="p-other")), "made by one run"),
    ((pair_plan("FYA", "live"), pair_plan("FYB", "live", targets=("u1",))), "made by one run"),
])
def test_plans_of_different_runs_or_one_pair_twice_are_not_written(
        tmp_path: Path, plans: tuple[Plan, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_plans(plans, tmp_path / "plan.json")
    assert not (tmp_path / "plan.json").exists()


# --- layout ----------------------------------------------------------------------------------

def test_the_plan_of_one_pair_keeps_the_single_pair_layout_byte_for_byte(
        tmp_path: Path) -> None:
    # As written before several pairs existed (format_version 2).
    plan = Plan(**{**pair_plan("FY1", "live")._fields(), "lineage": LINEAGE, "serial": 4,
                   "config_digest": "sha256:abc", "targets": ("u1", "a/b", "gone"),
                   "warnings": ("w",), "forget": ("z",), "calls": run_plans()[1].calls,
                   "plan_id": "p-1", "policies": {"u1": Policy(
                       {"push": Mode.OWNED}, frozenset({("email", "old@x.io")}))}})
    expected = (
        b'{"format_version":2,"plan_id":"p-1","created_at":"2026-11-28T00:00:00Z",'
        b'"workspace":"FY1","version":"live","state":{"lineage":"' + LINEAGE.encode() +
        b'","serial":4,"recorded_entries":3},"config_digest":"sha256:abc",'
        b'"targets":["u1","a/b","gone"],"forced":false,"warnings":["w"],"forget":["z"],'
        b'"summary":{"profiles":3,"add":3,"change":1,"forget":1,"remove":2,"calls":'
        b'{"patch_channel":2,"delete_tokens":1,"delete_channels":1,"readd_tokens":1}},'
        b'"ownership":{"u1":{"modes":{"push":"owned"},"remove":{"email":"old@x.io"}}},'
        b'"calls":[\n'
        b'{"distinct_id":"a/b","operation":"patch_channel","changes":[{"channel":"sms",'
        b'"after":"+1555"}]},\n'
        b'{"distinct_id":"gone","operation":"delete_channels","changes":[{"channel":"teams",'
        b'"before":"fya-test-general"}],"forget":true},\n'
        b'{"distinct_id":"u1","operation":"patch_channel","changes":[{"channel":"email",'
        b'"after":"fya-test@x.io"},{"channel":"push","after":{"token":"fya-test-new",'
        b'"status":1}}]},\n'
        b'{"distinct_id":"u1","operation":"delete_tokens","changes":[{"channel":"push",'
        b'"before":{"token":"old","status":1}},{"channel":"push","before":{"token":"x",'
        b'"status":1},"after":{"token":"x","integration_id":"I1","status":0}}]},\n'
        b'{"distinct_id":"u1","operation":"readd_tokens","changes":[{"channel":"push",'
        b'"before":{"token":"x","status":1},"after":{"token":"x","integration_id":"I1",'
        b'"status":0}}]}\n')
    digest = "sha256:" + hashlib.sha256(expected).hexdigest()
    expected += b'],"checksum":"' + digest.encode() + b'"}\n'
    assert write_plans((plan,), tmp_path / "one.json") == digest
    assert (tmp_path / "one.json").read_bytes() == expected
    assert write_plan(plan, tmp_path / "alone.json") == digest
    assert (tmp_path / "alone.json").read_bytes() == expected
    assert b"".join(document_lines(plan)) == b"".join(document_lines([plan])) == expected


def test_a_plan_of_several_pairs_is_one_document_with_one_call_per_line(
        tmp_path: Path) -> None:
    plans = run_plans()
    lines = lines_of(saved(tmp_path, plans))
    header = orjson.loads(lines[0].removesuffix(plandoc.HEADER_END) + b"}")
    assert list(header) == ["format_version", "plan_id", "created_at", "targets", "pairs",
                            "summary"]
    assert (header["format_version"], header["plan_id"], header["targets"]) == (2, "p-run", [])
    assert [list(pair) for pair in header["pairs"]][:2] == [
        ["workspace", "version", "state", "config_digest", "forced", "warnings", "forget",
         "summary"],
        ["workspace", "version", "state", "config_digest", "forced", "warnings", "forget",
         "summary", "ownership"]]
    assert [pair["summary"] for pair in header["pairs"]] == [
        plan.summary.to_json() for plan in plans]
    assert header["summary"] == total_summary(plan.summary for plan in plans).to_json()
    assert header["summary"]["add"] == sum(plan.summary.add for plan in plans)
    calls = lines[1:-1]
    assert len(calls) == sum(len(plan.calls) for plan in plans)
    expected = [(index, call.to_json()) for index, plan in enumerate(plans)
                for call in plan.calls]
    assert [line.startswith(b'{"pair":%d,' % index) for line, (index, _) in
            zip(calls, expected, strict=True)] == [True] * len(calls)
    assert [orjson.loads(line.rstrip(b",\n")) for line in calls] == [
        {"pair": index, **call} for index, call in expected]
    document = orjson.loads(b"".join(lines))
    assert document["checksum"] == checksum(document)
    assert lines[-1] == b'],"checksum":"' + document["checksum"].encode() + b'"}\n'


def test_the_schema_describes_both_forms(tmp_path: Path) -> None:
    several = orjson.loads(saved(tmp_path).read_bytes())
    single = document_of((pair_plan("FYA", "live"),))
    assert list(VALIDATOR.iter_errors(several)) == []
    assert list(VALIDATOR.iter_errors(single)) == []


def _mutated(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    document = copy.deepcopy(document_of(run_plans()))
    change(document)
    return document


@pytest.mark.parametrize(("name", "change"), [
    ("a call without its pair", lambda doc: doc["calls"][0].pop("pair")),
    ("a pair index that is no integer", lambda doc: doc["calls"][0].update(pair="0")),
    ("a negative pair index", lambda doc: doc["calls"][0].update(pair=-1)),
    ("one pair only", lambda doc: doc.update(pairs=doc["pairs"][:1])),
    ("a workspace beside the pairs", lambda doc: doc.update(workspace="FYA")),
    ("a pair without its state", lambda doc: doc["pairs"][0].pop("state")),
    ("a pair with a plan id", lambda doc: doc["pairs"][0].update(plan_id="p")),
    ("no totals", lambda doc: doc.pop("summary")),
    ("an unknown operation", lambda doc: doc["calls"][0].update(operation="drop")),
    ("a request body", lambda doc: doc["calls"][0].update(body={})),
])
def test_the_schema_rejects_several_pairs_documents_no_writer_makes(
        name: str, change: Callable[[dict[str, Any]], Any]) -> None:
    assert list(VALIDATOR.iter_errors(_mutated(change))), name


# --- edits, without the checksum recomputed ---------------------------------------------------

def _first_line_of_pair(lines: list[bytes], pair: int) -> int:
    return next(index for index, line in enumerate(lines)
                if line.startswith(b'{"pair":%d,' % pair))


def _swap_between_pairs(lines: list[bytes]) -> list[bytes]:
    at = _first_line_of_pair(lines, 1)
    lines[at - 1], lines[at] = lines[at], lines[at - 1]
    return lines


def _pair_removed_from_header(lines: list[bytes]) -> list[bytes]:
    header = orjson.loads(lines[0].removesuffix(plandoc.HEADER_END) + b"}")
    del header["pairs"][1]
    lines[0] = orjson.dumps(header)[:-1] + plandoc.HEADER_END
    return lines


EDITS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "a pair index": lambda lines: [lines[0], lines[1].replace(b'{"pair":0,', b'{"pair":1,'),
                                   *lines[2:]],
    "a pair object removed from the header": _pair_removed_from_header,
    "two call lines swapped between pairs": _swap_between_pairs,
    "a value in a pair's fields": lambda lines: [
        lines[0].replace(b'"forced":true', b'"forced":false'), *lines[1:]],
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edited_plan_of_several_pairs_is_refused_as_edited(tmp_path: Path,
                                                              edit: str) -> None:
    path = saved(tmp_path)
    path.write_bytes(b"".join(EDITS[edit](lines_of(path))))
    with pytest.raises(PlanEditedError, match="edited after it was saved"):
        read_plans(path)


@pytest.mark.parametrize("cut", [1, 300, 2_000])
def test_a_plan_of_several_pairs_cut_short_is_refused(tmp_path: Path, cut: int) -> None:
    path = saved(tmp_path)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(PlanEditedError, match="ends before its checksum: it was cut short"):
        read_plans(path)


def test_a_sealed_plan_of_several_pairs_cut_at_a_block_end_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plandoc, "BLOCK_BYTES", 4096)
    path = tmp_path / "plan.json"
    write_plans(run_plans(3, profiles=500), path, sealing())
    path.write_bytes(b"".join(lines_of(path)[:-1]))
    with pytest.raises(PlanEditedError, match="ends before its checksum"):
        read_plans(path, sealing())


# --- every rule checked, even under a checksum that matches -----------------------------------

def resealed(document: dict[str, Any], path: Path) -> Path:
    document["checksum"] = checksum(document)
    path.write_bytes(encode(document))
    return path


def _swap_pairs_in_header(document: dict[str, Any]) -> None:
    document["pairs"][0], document["pairs"][1] = document["pairs"][1], document["pairs"][0]


def _pair_twice(document: dict[str, Any]) -> None:
    document["pairs"][1]["version"] = "live"


def _calls_swapped_between_pairs(document: dict[str, Any]) -> None:
    calls = document["calls"]
    at = next(index for index, call in enumerate(calls) if call["pair"] == 1)
    calls[at - 1], calls[at] = calls[at], calls[at - 1]


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "a pair index out of range": (
        lambda doc: doc["calls"][-1].update(pair=3),
        "at /calls/14/pair: there is no pair 3 (the header lists 3)"),
    "a pair object removed from the header": (
        lambda doc: doc["pairs"].pop(1), "at /calls/10/pair: there is no pair 2"),
    "two call lines swapped between pairs": (
        _calls_swapped_between_pairs,
        "at /calls/5/pair: a call of pair 0 after one of pair 1 (the calls are ordered by pair)"),
    "pairs not sorted": (_swap_pairs_in_header, "at /pairs/1: the pairs are not sorted by "
                                                "workspace and version, each pair once"),
    "a pair twice": (_pair_twice, "at /pairs/1: the pairs are not sorted"),
    "a pair summary that does not count its calls": (
        lambda doc: doc["pairs"][1]["summary"].update(add=99),
        "at /pairs/1/summary: it does not count the calls of its pair"),
    "calls moved to another pair, summaries unchanged": (
        lambda doc: [call.update(pair=0) for call in doc["calls"] if call["pair"] == 1],
        "at /pairs/0/summary: it does not count the calls of its pair"),
    "totals that are not the sum": (
        lambda doc: doc["summary"]["calls"].update(patch_channel=5),
        "at /summary: it is not the sum of the pairs' summaries"),
    "a call without its pair": (lambda doc: doc["calls"][3].pop("pair"),
                                'at /calls/3: the member "pair" is missing'),
    "a workspace beside the pairs": (lambda doc: doc.update(workspace="FYA"),
                                     'unexpected member "workspace"'),
    "a workspace naming another directory": (
        lambda doc: doc["pairs"][2].update(workspace="../FYB"),
        "at /pairs/2/workspace: holds a path separator"),
    "one pair only": (lambda doc: doc.update(pairs=doc["pairs"][:1]), "at /pairs: "),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_plan_of_several_pairs_breaking_a_rule_is_refused_under_a_matching_checksum(
        tmp_path: Path, case: str) -> None:
    change, expected = MALFORMED[case]
    document = document_of(run_plans())
    change(document)
    path = resealed(document, tmp_path / "plan.json")
    with pytest.raises(PlanFileError) as raised:
        read_plans(path)
    assert type(raised.value) is PlanFileError
    assert str(raised.value).startswith(f"{path} is not a valid saved plan: ")
    assert expected in str(raised.value)


def test_a_call_naming_a_pair_in_a_single_pair_plan_is_refused(tmp_path: Path) -> None:
    document = document_of((pair_plan("FYA", "live"),))
    document["calls"][2] = {"pair": 0, **document["calls"][2]}
    with pytest.raises(PlanFileError, match='at /calls/2: unexpected member "pair"'):
        read_plans(resealed(document, tmp_path / "plan.json"))


def test_a_wrong_pair_index_far_into_the_plan_is_placed_exactly(tmp_path: Path) -> None:
    document = document_of(run_plans(3, profiles=1_200))
    document["calls"][2_345]["pair"] = 0
    with pytest.raises(PlanFileError, match="at /calls/2345/pair: a call of pair 0 after one "
                                            "of pair 1"):
        read_plans(resealed(document, tmp_path / "plan.json"))


# --- the rendering for people -----------------------------------------------------------------

def test_json_of_several_pairs_with_values_is_the_saved_plan(tmp_path: Path) -> None:
    plans = run_plans()
    text = render_json(plans, show_values=True)
    assert saved(tmp_path, plans).read_text() == text
    out = io.BytesIO()
    write_json(plans, out, show_values=True)
    assert out.getvalue().decode() == text


def test_a_masked_rendering_of_several_pairs_masks_names_its_plan_and_is_refused(
        tmp_path: Path) -> None:
    plans = run_plans()
    saved_checksum = write_plans(plans, tmp_path / "plan.json")
    text = render_json(plans)
    for value in ("fya-live@x.io", "fyb-live-new", "old@x.io"):
        assert value in render_json(plans, show_values=True)
        assert value not in text
    lines = text.splitlines(keepends=True)
    assert lines[1].startswith('{"pair":0,') and len(lines) == len(lines_of(
        tmp_path / "plan.json"))
    document = orjson.loads(text)
    assert document["masked"] is True and document["checksum"] == saved_checksum
    assert document["pairs"][1]["ownership"]["u1"]["remove"] == {"email": "•••"}
    out = io.BytesIO()
    write_json(read_plans(tmp_path / "plan.json"), out)  # read back: names its checksum
    assert out.getvalue().decode() == text
    (tmp_path / "printed.json").write_text(text)
    with pytest.raises(PlanFileError, match="printed with its values masked"):
        read_plans(tmp_path / "printed.json")


@pytest.mark.parametrize("count", [1, 3])
def test_a_masked_rendering_made_in_parts_is_the_rendering_made_whole(count: int) -> None:
    plans = run_plans(count, profiles=2) if count > 1 else (pair_plan("FYA", "live", 2),)
    total = sum(len(plan.calls) for plan in plans)
    whole = b"".join(document_lines(plans, masked=True, checksum="sha256:" + "1" * 64))
    for cut in range(total + 1):
        parts = [b"".join(document_lines(plans, masked=True, checksum="sha256:" + "1" * 64,
                                         part=part)) for part in (range(cut), range(cut, total))]
        assert parts[0] + parts[1] == whole
        # the header, its calls, the trailer after the last
        assert parts[0].count(b"\n") == (1 + cut + (cut == total) if cut else 0)
    with pytest.raises(ValueError, match="in parts"):  # the checksum needs every line
        list(document_lines(plans, part=range(1)))
