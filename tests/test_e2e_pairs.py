"""End to end: one repository holding live and test of one workspace and a second workspace.

One plan, one saved plan, one apply; three states and each pair's records in the ledger; a
saved plan refused as a whole when one pair's state changed since; one markdown comment with
a section per pair under GitHub's limit. Runs on both state backends (the `store` fixture).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ledgers import ledger_records
from sandboxproc import SandboxProcess, reconciler
from stores import Store

pytestmark = pytest.mark.usefixtures("store")

BRAND_A = "FYPAIRA001"
BRAND_B = "FYPAIRB001"
PAIRS = [(BRAND_A, "live"), (BRAND_A, "test"), (BRAND_B, "live")]

# What the server holds before the first apply: the profiles exist, some with old data.
SERVER: dict[str, dict[str, dict[str, Any]]] = {
    BRAND_A: {
        "live": {"u-1": {"email": "old@a.example.com"}, "u-2": {}},
        "test": {"u-1": {"email": "tester@a.example.com"}, "t-9": {}},
    },
    BRAND_B: {"live": {"u-1": {"sms": "+15550001111"}, "b-2": {}}},
}
# What the repository declares: the same distinct_id in three pairs is three profiles.
DESIRED: dict[tuple[str, str], dict[str, Any]] = {
    (BRAND_A, "live"): {"u-1": {"email": "alice@a.example.com"},
                        "u-2": {"push": ["fcm_token:live-2"]}},
    (BRAND_A, "test"): {"u-1": {"email": "alice+test@a.example.com"},
                        "t-9": {"inapp": ["t-9"]}},
    (BRAND_B, "live"): {"u-1": {"sms": "+15550002222"}, "b-2": {"email": "b2@b.example.com"}},
}
FILES = {(BRAND_A, "live"): "brand-a/live.yaml", (BRAND_A, "test"): "brand-a/test.yaml",
         (BRAND_B, "live"): "brand-b.yaml"}


def write_repository(root: Path, desired: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (workspace, version), profiles in desired.items():
        path = root / "profiles" / FILES[workspace, version]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"workspace": workspace, "version": version,
                                        "profiles": profiles}))


def config_paths(root: Path) -> list[Path]:
    """Every file of the repository: `profiles/brand-a` is a directory of two files."""
    return [root / "profiles" / "brand-a", root / "profiles" / "brand-b.yaml"]


def server_data(sandbox: SandboxProcess) -> dict[str, Any]:
    data: dict[str, Any] = sandbox._call("GET", "/data")
    return data


def held(sandbox: SandboxProcess, workspace: str, version: str, distinct_id: str) -> Any:
    return server_data(sandbox)[workspace][version][distinct_id]


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    write_repository(tmp_path, DESIRED)
    return tmp_path


@pytest.fixture
def sandbox(tmp_path: Path) -> Any:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SERVER))
    process = SandboxProcess(seed=seed)
    yield process
    process.stop()


def test_one_plan_one_apply_three_states_and_their_ledger_records(
        repository: Path, sandbox: SandboxProcess, store: Store) -> None:
    plan = reconciler("plan", *config_paths(repository), "--out", "plan.json",
                      "--detailed-exitcode", cwd=repository, sandbox=sandbox)
    assert plan.code == 2, plan.output
    for workspace, version in PAIRS:
        assert f"Reconciler plan for workspace {workspace} ({version})" in plan.stdout
    assert "In all: 6 to add, 0 to change, 0 to remove, in 6 calls across 6 profiles of 3 " \
           "workspace/version pairs." in plan.stdout
    saved = json.loads((repository / "plan.json").read_text())
    assert [(pair["workspace"], pair["version"]) for pair in saved["pairs"]] == PAIRS

    applied = reconciler("apply", "plan.json", cwd=repository, sandbox=sandbox)
    assert applied.code == 0, applied.output
    assert "in 3 workspace/version pairs" in applied.stderr

    for (workspace, version), profiles in DESIRED.items():
        document = store.document(repository, workspace, version)
        assert document["workspace"] == workspace and document["version"] == version
        assert sorted(document["profiles"]) == sorted(profiles)
    assert held(sandbox, BRAND_A, "live", "u-1")["email"] == "alice@a.example.com"
    assert held(sandbox, BRAND_A, "test", "u-1")["email"] == "alice+test@a.example.com"
    assert held(sandbox, BRAND_B, "live", "u-1")["sms"] == "+15550002222"
    assert held(sandbox, BRAND_B, "live", "b-2")["email"] == "b2@b.example.com"

    records = ledger_records(repository)
    calls = {(record["workspace"], record["version"], record["distinct_id"])
             for record in records if record.get("status") is not None}
    assert calls == {(workspace, version, distinct_id)
                     for (workspace, version), profiles in DESIRED.items()
                     for distinct_id in profiles}
    assert {record["plan_id"] for record in records if record.get("status") is not None} \
        == {saved["plan_id"]}

    again = reconciler("plan", *config_paths(repository), "--detailed-exitcode",
                       cwd=repository, sandbox=sandbox)
    assert again.code == 0, again.output
    assert "In all: no changes in 3 workspace/version pairs." in again.stdout
    verify = reconciler("audit", "verify", cwd=repository)
    assert verify.code == 0, verify.output

    # The other commands go over every pair as well, or over those chosen.
    fresh = reconciler("plan", *config_paths(repository), "--refresh", "--detailed-exitcode",
                       cwd=repository, sandbox=sandbox)
    assert fresh.code == 0, fresh.output
    refreshed = reconciler("refresh", *config_paths(repository), "--detailed-exitcode",
                           cwd=repository, sandbox=sandbox)
    assert refreshed.code == 0, refreshed.output
    assert refreshed.stdout.count("No drift") == 3
    only_b = reconciler("audit", "--workspace", BRAND_B, "--format", "json", cwd=repository)
    assert only_b.code == 0, only_b.output
    lines = [json.loads(line) for line in only_b.stdout.splitlines()]
    assert lines and {(line["workspace"], line["version"]) for line in lines} == {
        (BRAND_B, "live")}
    exported = reconciler("export", *config_paths(repository), "--all-recorded", "--out",
                          "exported/", cwd=repository, sandbox=sandbox)
    assert exported.code == 0, exported.output
    for workspace, version in PAIRS:
        folder = repository / "exported" / f"{workspace}-{version}"
        document = yaml.safe_load((folder / "profiles-0001.yaml").read_text())
        assert (document["workspace"], document["version"]) == (workspace, version)
        assert sorted(document["profiles"]) == sorted(DESIRED[workspace, version])


def test_a_saved_plan_is_refused_whole_when_one_pair_changed_since(
        repository: Path, sandbox: SandboxProcess, store: Store) -> None:
    first = reconciler("apply", *config_paths(repository), "--auto-approve", cwd=repository,
                       sandbox=sandbox)
    assert first.code == 0, first.output
    changed = {pair: dict(profiles) for pair, profiles in DESIRED.items()}
    for pair in PAIRS:
        changed[pair]["new-1"] = {"email": "new@example.com"}
    write_repository(repository, changed)
    plan = reconciler("plan", *config_paths(repository), "--out", "plan.json",
                      cwd=repository, sandbox=sandbox)
    assert plan.code == 0, plan.output
    # One pair moves on behind the saved plan's back: its state serial changes.
    only_test = reconciler("apply", *config_paths(repository), "--workspace", BRAND_A,
                           "--version", "test", "--auto-approve", cwd=repository,
                           sandbox=sandbox)
    assert only_test.code == 0, only_test.output
    assert "new-1" in server_data(sandbox)[BRAND_A]["test"]
    before = {pair: store.snapshot(repository, *pair) for pair in PAIRS}
    sandbox.clear_log()

    stale = reconciler("apply", "plan.json", cwd=repository, sandbox=sandbox)

    assert stale.code == 1, stale.output
    assert f"{BRAND_A} (test): plan.json is stale" in stale.stderr
    assert "nothing was applied, to any pair" in stale.stderr
    assert [entry for entry in sandbox.log() if entry.get("method") != "GET"] == []
    assert {pair: store.snapshot(repository, *pair) for pair in PAIRS} == before
    assert "new-1" not in server_data(sandbox)[BRAND_A]["live"]


def test_filters_choose_pairs_and_name_those_declared(repository: Path,
                                                      sandbox: SandboxProcess) -> None:
    only_b = reconciler("plan", *config_paths(repository), "--workspace", BRAND_B,
                        cwd=repository, sandbox=sandbox)
    assert only_b.code == 0, only_b.output
    assert f"Reconciler plan for workspace {BRAND_B} (live)" in only_b.stdout
    assert BRAND_A not in only_b.stdout and "In all" not in only_b.stdout

    nothing = reconciler("plan", *config_paths(repository), "--workspace", "FYNOTHERE1",
                         cwd=repository, sandbox=sandbox)
    assert nothing.code == 1
    assert (f"the files declare: {BRAND_A} (live), {BRAND_A} (test), {BRAND_B} (live)"
            in nothing.stderr)

    one_file = reconciler("plan", *config_paths(repository), "--state", "x.json",
                          cwd=repository, sandbox=sandbox)
    assert one_file.code == 1
    assert "--state names one state file" in one_file.stderr
    assert "Traceback" not in one_file.output


@pytest.mark.file_only("the markdown comment does not depend on where the state is kept")
def test_markdown_comment_has_a_section_per_pair_under_the_limit(tmp_path: Path) -> None:
    many = {pair: {f"user-{index:04d}": {"email": f"user{index}@example.com",
                                         "push": [f"fcm_token:{index:06d}"]}
                   for index in range(400)} for pair in PAIRS}
    many[BRAND_B, "live"] = {"only-1": {"email": "one@example.com"}}  # a short section
    write_repository(tmp_path, many)

    comment = reconciler("plan", *config_paths(tmp_path), "--format", "markdown",
                         cwd=tmp_path)

    assert comment.code == 0, comment.output
    text = comment.stdout
    assert len(text) < 65_000
    assert text.startswith("## Reconciler plan: 3 workspace/version pairs")
    sections = [f"### Reconciler plan for {workspace} ({version})"
                for workspace, version in PAIRS]
    assert [text.count(section) for section in sections] == [1, 1, 1]
    assert text.index(sections[0]) < text.index(sections[1]) < text.index(sections[2])
    # The two large pairs are cut, the short one is whole, and what it left unused went to
    # the others: the comment is nearly full.
    assert text.count("left out** to keep this comment under") == 2
    assert "only-1" in text
    assert len(text) > 60_000


def test_import_reads_every_pair_into_its_own_state(repository: Path, sandbox: SandboxProcess,
                                                    store: Store) -> None:
    validated = reconciler("validate", *config_paths(repository), cwd=repository)
    assert validated.code == 0, validated.output
    assert validated.stdout.splitlines() == [
        f"Valid: 2 profiles in 1 file (workspace {workspace}, version {version})."
        for workspace, version in PAIRS]

    imported = reconciler("import", *config_paths(repository), cwd=repository,
                          sandbox=sandbox)

    assert imported.code == 0, imported.output
    for workspace, version in PAIRS:
        assert f"{workspace} ({version}): Imported 2 profiles into" in imported.stdout
        document = store.document(repository, workspace, version)
        assert document["profiles"].keys() == DESIRED[workspace, version].keys()
    assert store.document(repository, BRAND_B, "live")["profiles"]["u-1"]["sms"] \
        == SERVER[BRAND_B]["live"]["u-1"]["sms"]


def test_a_401_stops_the_run_and_the_pairs_after_it_are_not_started(
        repository: Path, sandbox: SandboxProcess) -> None:
    before = server_data(sandbox)

    refused = reconciler("apply", *config_paths(repository), "--auto-approve",
                         cwd=repository, sandbox=sandbox, key="sk-not-the-sandbox-key")

    assert refused.code == 1, refused.output
    assert (f"{BRAND_A} (live): not applied: stopped before its first call (the error below)."
            in refused.output)
    assert "answered 401" in refused.stderr
    assert f"{BRAND_A} (test): not applied: the run stopped before it." in refused.output
    assert f"{BRAND_B} (live): not applied: the run stopped before it." in refused.output
    assert "sk-not-the-sandbox-key" not in refused.output
    assert server_data(sandbox) == before
