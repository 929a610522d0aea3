"""`show` of a large saved plan, read and rendered in two halves on two cores: the same text
as the plan read whole, and every refusal the whole read makes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from reconciler import planview
from reconciler.beside import PROCESSES_VARIABLE
from reconciler.cli import cli
from reconciler.encryption import Encryption
from reconciler.errors import PlanEditedError, PlanFileError
from reconciler.model import ChannelData
from reconciler.plan import Plan
from reconciler.plandoc import checksum, document_lines, encode
from reconciler.planfile import read_plan, write_plan, write_plans
from reconciler.planner import diff
from reconciler.planread import read_part
from reconciler.planview import show_text
from reconciler.render.text import render_text

KEY = "q0h3QfUjWwq5m2PO1tdQmZ3Zbmn3Lq2jL8k0V3yT2hE="


def large_plan(profiles: int = 7, *, workspace: str = "FY1") -> Plan:
    """Two calls per profile (a PATCH, then an Option 2 delete), so that the middle call
    may be a profile's second; one profile leaves with a call, one without; warnings."""
    desired = {f"p{index:03d}": ChannelData.from_json({
        "email": f"n{index}@x.io", "push": [{"token": f"new-token-{index:03d}"}]})
        for index in range(profiles)}
    recorded = {f"p{index:03d}": ChannelData.from_json({
        "push": [{"token": f"old-token-{index:03d}", "integration_id": "I1", "status": 0}]})
        for index in range(profiles)}
    recorded["zz-gone"] = ChannelData.from_json({"teams": "general"})
    return Plan(plan_id="p-1", created_at="2026-11-28T00:00:00Z", workspace=workspace,
                version="live", lineage="00000000-0000-0000-0000-000000000001", serial=4,
                config_digest="sha256:abc", recorded_entries=3 * profiles,
                calls=diff(desired, recorded), warnings=("the state moved",),
                forget=("zz-empty",))


def saved(tmp_path: Path, plan: Plan | None = None) -> Path:
    path = tmp_path / "plan.json"
    write_plan(plan or large_plan(), path)
    return path


def rewritten(path: Path, change: Any) -> None:
    """The saved plan at `path` with `change` made to its document, and a checksum that
    holds: a plan a faulty writer might make."""
    document = orjson.loads(path.read_bytes())
    change(document)
    document["checksum"] = checksum(document)
    path.write_bytes(encode(document))


@pytest.fixture(autouse=True)
def _forking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROCESSES_VARIABLE, raising=False)


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("show_values", [False, True])
def test_a_plan_read_in_halves_renders_as_the_plan_read_whole(
        tmp_path: Path, color: bool, show_values: bool) -> None:
    path = saved(tmp_path)
    whole = render_text(read_plan(path), color=color, show_values=show_values)
    assert show_text(path, color=color, show_values=show_values, split_from=2) == whole


@pytest.mark.parametrize("profiles", [1, 2, 3, 7, 8])
def test_the_halves_meet_at_a_profile_start_so_no_profile_is_split(
        tmp_path: Path, profiles: int) -> None:
    path = saved(tmp_path, large_plan(profiles))
    text = show_text(path, color=False, show_values=False, split_from=1)
    assert text == render_text(read_plan(path), color=False, show_values=False)
    for index in range(profiles):
        assert text.count(f"  ~ p{index:03d}\n") == 1


def test_with_one_process_the_text_is_the_same(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = saved(tmp_path)
    forked = show_text(path, color=False, show_values=False, split_from=2)
    monkeypatch.setenv(PROCESSES_VARIABLE, "1")
    assert show_text(path, color=False, show_values=False, split_from=2) == forked


def test_small_sealed_and_several_pairs_plans_are_read_whole(tmp_path: Path) -> None:
    path = saved(tmp_path)
    calls = len(large_plan().calls)
    assert show_text(path, color=False, show_values=False, split_from=calls + 1) is None
    sealed = tmp_path / "sealed.json"
    write_plan(large_plan(), sealed, Encryption.configure("env:KEY", None, None, {"KEY": KEY}))
    assert show_text(sealed, color=False, show_values=False, split_from=2) is None
    pairs = tmp_path / "pairs.json"
    write_plans((large_plan(workspace="FYA"), large_plan(workspace="FYB")), pairs)
    assert show_text(pairs, color=False, show_values=False, split_from=2) is None
    assert show_text(tmp_path / "missing.json", color=False, show_values=False) is None


@pytest.mark.parametrize("where", ["first half", "second half"])
def test_an_edit_in_either_half_is_refused_as_an_edit(tmp_path: Path, where: str) -> None:
    path = saved(tmp_path)
    lines = path.read_bytes().split(b"\n")
    index = 2 if where == "first half" else len(lines) - 3
    lines[index] = lines[index].replace(b"n", b"m", 1)
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(PlanEditedError, match="edited after it was saved"):
        read_plan(path)
    with pytest.raises(PlanEditedError, match="edited after it was saved"):
        show_text(path, color=False, show_values=False, split_from=2)


@pytest.mark.parametrize("index", [1, 12])
def test_a_malformed_call_is_named_as_the_whole_read_names_it(tmp_path: Path,
                                                              index: int) -> None:
    path = saved(tmp_path)

    def break_call(document: dict[str, Any]) -> None:
        document["calls"][index]["operation"] = "delete_everything"

    rewritten(path, break_call)
    with pytest.raises(PlanFileError) as whole:
        read_plan(path)
    assert f"/calls/{index}" in str(whole.value)
    with pytest.raises(PlanFileError) as halves:
        show_text(path, color=False, show_values=False, split_from=2)
    assert str(halves.value) == str(whole.value)


def test_a_summary_that_does_not_count_the_calls_is_refused(tmp_path: Path) -> None:
    path = saved(tmp_path)

    def miscount(document: dict[str, Any]) -> None:
        document["summary"]["add"] += 1

    rewritten(path, miscount)
    with pytest.raises(PlanFileError, match="at /summary: it does not count its calls"):
        read_plan(path)
    with pytest.raises(PlanFileError, match="at /summary: it does not count its calls"):
        show_text(path, color=False, show_values=False, split_from=2)


def test_show_renders_a_large_plan_in_halves(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = saved(tmp_path)
    halves: list[str | None] = []
    real = planview.show_text

    def watched(*args: Any, **kwargs: Any) -> str | None:
        text = real(*args, **kwargs)
        halves.append(text)
        return text

    monkeypatch.setattr(planview, "SPLIT_FROM", 2)
    monkeypatch.setattr("reconciler.cli.show_cmd.show_text", watched)
    result = CliRunner().invoke(cli, ["show", str(path), "--no-color"])
    assert result.exit_code == 0, result.output
    assert halves and halves[0] is not None
    assert result.output == render_text(read_plan(path), color=False, show_values=False)
    assert b"".join(document_lines(read_plan(path))) == path.read_bytes()


def test_a_carriage_return_splits_no_line_the_whole_read_keeps(tmp_path: Path) -> None:
    path = saved(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"channel"', b'"chan\rnel"', 1)

    def document_with_checksum() -> bytes:
        body = b"\n".join(lines[:-2]) + b"\n"
        trailer = b'],"checksum":"sha256:' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'
        return body + trailer

    path.write_bytes(document_with_checksum())
    with pytest.raises(PlanFileError) as whole:
        read_plan(path)
    with pytest.raises(PlanFileError) as halves:
        show_text(path, color=False, show_values=False, split_from=2)
    assert str(halves.value) == str(whole.value)


@pytest.mark.parametrize("part", [range(0, 3), range(3, 15), range(0, 0), range(15, 15)])
def test_any_part_of_the_calls_is_read_without_the_checksum(
        tmp_path: Path, part: range) -> None:
    plan = large_plan()
    data = saved(tmp_path, plan).read_bytes()
    lines = data.splitlines(keepends=True)
    _, calls, _ = read_part(iter(lines), "plan.json", lambda: data, part, checksummed=False)
    assert calls == plan.calls[part.start:part.stop]
