"""examples/gitops: ci.sh through a whole pull-request cycle against the sandbox, and the
workflow files checked against the real CLI.

The example holds the live and the test version of its workspace side by side
(profiles/live/, profiles/test/): every step handles both pairs at once, one plan (a section
per pair in the comment), one apply, both states on one state branch.

Each test works in a private copy of examples/gitops made into a git repository, whose
`origin` is a bare repository beside it (where the state branch goes); a pull request is a
branch, a merge is `git merge --no-ff`, and the plan artifact is a copy of the pull request's
plan.json kept outside the working tree. The flow runs with a state key, as the workflow files
configure it (one test runs it without, too): nothing personal may then be in clear in any
commit of the state branch or in any plan artifact. One test runs the flow with the state in a
PostgreSQL database of the throwaway server (`postgres_url`) instead of on the branch.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
import yaml
from ledgers import ledger_records
from markdown_it import MarkdownIt
from sandboxproc import API_KEY, WORKSPACE, SandboxProcess

from reconciler.cli import cli
from reconciler.config import load_configs
from reconciler.encryption import NO_ENCRYPTION, Encryption
from reconciler.model import ChannelData
from reconciler.state.postgres import PostgresState

ROOT = Path(__file__).resolve().parent.parent
GITOPS = ROOT / "examples" / "gitops"
WORKFLOWS = {"github": GITOPS / ".github" / "workflows" / "reconciler.yml",
             "gitlab": GITOPS / ".gitlab-ci.yml"}
MARKER = "<!-- reconciler-plan -->"
LIMIT = 65_000
GIT_ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
STATE_KEY = "RECONCILER_STATE_KEY"  # the variable the workflow files put the key in
# Every e-mail address of the profiles (and of the tests' edits) is @*example.com; the phone
# numbers and the push tokens of the profiles (live and test) as they are written.
PERSONAL = (b"example.com", b"+14155550142", b"+919879000101", b"fcm_token:omar-pixel-7",
            b"fcm_token:qa-pixel-8")
PAIRS = ("live", "test")  # the versions of the workspace the example declares
SEALED = b'{"reconciler_encrypted":'


# -- harness -------------------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                            env={**os.environ, **GIT_ENV}, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD")


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()  # as `openssl rand -base64 32`


class Ci:
    """`./ci.sh MODE` in a repository, as a CI job would run it: no terminal, the keys only in
    the environment, reconciler on PATH. With `key`, the state key is configured as the
    workflow files do: RECONCILER_ENCRYPTION_KEY=env:RECONCILER_STATE_KEY."""

    def __init__(self, repo: Path, sandbox: SandboxProcess | None,
                 key: str | None = None, backend: str | None = None) -> None:
        self.repo = repo
        self.sandbox = sandbox
        self.key = key
        self.backend = backend  # RECONCILER_BACKEND, as the CI's secret store would set it

    @property
    def encryption(self) -> Encryption:
        """The configured keys, to read the ledger in-process."""
        if self.key is None:
            return NO_ENCRYPTION
        return Encryption.configure(f"env:{STATE_KEY}", None, None,
                                    environ={STATE_KEY: self.key})

    def env(self, **env: str) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("FYNO_", "RECONCILER_", "GITHUB_"))}
        clean.update(GIT_ENV)
        clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
        clean["PYTHON"] = sys.executable
        clean["RECONCILER_RETRY_BASE"] = "0.01"
        clean["FYNO_API_KEY"] = API_KEY
        if self.sandbox is not None:
            clean["FYNO_BASE_URL"] = self.sandbox.url
        if self.key is not None:
            clean["RECONCILER_ENCRYPTION_KEY"] = f"env:{STATE_KEY}"
            clean[STATE_KEY] = self.key
        if self.backend is not None:
            clean["RECONCILER_BACKEND"] = self.backend
        clean.update(env)
        return clean

    def __call__(self, mode: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["./ci.sh", mode, *args], cwd=self.repo, env=self.env(**env),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=120, check=False)

    def start(self, mode: str, **env: str) -> subprocess.Popen[str]:
        """`./ci.sh MODE` started, not waited for: a job that overlaps another."""
        return subprocess.Popen(["./ci.sh", mode], cwd=self.repo, env=self.env(**env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)

    def job(self, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
        """A job that writes the state, as the workflow files run it: state-fetch, MODE,
        then state-push whatever MODE's outcome."""
        fetched = self("state-fetch", **env)
        assert fetched.returncode == 0, fetched.stderr
        result = self(mode, **env)
        pushed = self("state-push", **env)
        assert pushed.returncode == 0, pushed.stderr
        return result

    def reconciler(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """The CLI, with this job's environment (and so its key)."""
        return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=self.repo,
                              env=self.env(**env), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120, check=False)

    def plan(self, path: Path) -> dict[str, Any]:
        """A saved plan's document, through `reconciler show` (it may be encrypted)."""
        shown = self.reconciler("show", str(path), "--format", "json")
        assert shown.returncode == 0, shown.stderr
        document: dict[str, Any] = json.loads(shown.stdout)
        return document

    def out(self, name: str) -> str:
        return (self.repo / "reconciler-out" / name).read_text(encoding="utf-8")

    def keep_plan(self, name: str) -> Path:
        """The plan job's artifact: plan.json, downloaded by the apply job into its (ignored)
        output directory, as the workflow files do."""
        artifact = self.repo / "reconciler-out" / "artifacts" / name / "plan.json"
        artifact.parent.mkdir(parents=True)
        shutil.copy(self.repo / "reconciler-out" / "plan.json", artifact)
        return artifact


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """The CI service's copy of the repository: where state-push sends the state branch."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    return bare


@pytest.fixture
def repo(tmp_path: Path, remote: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(GITOPS, copy)
    for path in (copy / "profiles").rglob("*.yaml"):
        path.write_text(path.read_text().replace("FYGITOPS01", WORKSPACE))
    git(copy, "init", "-q", "-b", "main")
    commit_all(copy, "team profiles")
    git(copy, "remote", "add", "origin", str(remote))
    return copy


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    started = SandboxProcess()
    yield started
    started.stop()


@pytest.fixture
def encrypted() -> bool:
    """Whether the flow runs with a state key (as the workflow files do); parametrized to
    False where it must run in clear too."""
    return True


@pytest.fixture
def ci(repo: Path, sandbox: SandboxProcess, encrypted: bool) -> Ci:
    return Ci(repo, sandbox, new_key() if encrypted else None)


def edit(repo: Path, file: str, old: str, new: str) -> None:
    path = repo / "profiles" / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def pull_request(repo: Path, branch: str, file: str, old: str, new: str,
                 base: str = "main") -> None:
    git(repo, "checkout", "-q", "-b", branch, base)
    edit(repo, file, old, new)
    commit_all(repo, branch)


def reviewed_and_merged(ci: Ci, repo: Path) -> tuple[Path, str, str]:
    """After a first apply, a pull request changing Maria's e-mail in live and in test is
    planned, its plan kept as the merge's apply would fetch it, and merged: (that plan, its
    id, the merge commit)."""
    applied_first(ci)
    pull_request(repo, "pr-1", "live/support.yaml", "maria@example.com", "maria@new.example.com")
    edit(repo, "test/testers.yaml", "maria+test@example.com", "maria+test@new.example.com")
    commit_all(repo, "pr-1, test too")
    assert ci("plan").returncode == 0
    reviewed = ci.keep_plan("pr-1")
    return reviewed, ci.plan(reviewed)["plan_id"], merge(repo, "pr-1")


def merge(repo: Path, branch: str) -> str:
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
    return git(repo, "rev-parse", "HEAD")


def assert_server_holds_the_configuration(repo: Path, sandbox: SandboxProcess) -> None:
    """Every pair the files declare (live and test), as the server holds its version."""
    desired = load_configs([repo / "profiles"])
    assert [config.version for config in desired] == list(PAIRS)
    for config in desired:
        server = sandbox.data(config.version)
        for distinct_id, channel in config.profiles.items():
            held = ChannelData.from_json(server.get(distinct_id, {}))
            assert held.channels == channel.channels, (config.version, distinct_id)


def change_server(sandbox: SandboxProcess, version: str, distinct_id: str,
                  **channels: Any) -> None:
    """A change behind the tool's back to one profile of one version (the others kept: the
    sandbox's PUT /data replaces everything)."""
    everything = sandbox._call("GET", "/data")
    everything[WORKSPACE][version][distinct_id].update(channels)
    sandbox._call("PUT", "/data", everything)


def applied_first(ci: Ci) -> None:
    """The configuration as it is on main, applied, and the state branch created: the
    starting point. (No plan was reviewed, as after a push without a pull request: ci.sh
    apply says so and plans.)"""
    applied = ci.job("apply")
    assert applied.returncode == 0, applied.stderr
    assert "ci.sh: NO REVIEWED PLAN: reconciler-out/plan.json does not exist" in applied.stderr


def state_branch_files(remote: Path, ref: str = "reconciler-state") -> dict[str, list[bytes]]:
    """Every version of every file committed to the state branch up to `ref`, by name."""
    listing = git(remote, "rev-list", "--objects", ref).splitlines()
    # The branch's tree is flat: every named object is a file (the root tree has no name).
    named = [line.split(" ", 1) for line in listing if line.partition(" ")[2].strip()]
    files: dict[str, list[bytes]] = {}
    for sha, name in named:
        content = subprocess.run(["git", "cat-file", "blob", sha], cwd=remote,
                                 capture_output=True, check=True).stdout
        files.setdefault(name, []).append(content)
    return files


def plan_artifacts(repo: Path) -> dict[str, bytes]:
    """Every plan ci.sh saved or was given: plan.json, the kept artifacts, replan.json..."""
    out = repo / "reconciler-out"
    return {str(path.relative_to(out)): path.read_bytes() for path in out.rglob("*.json")}


def clear_copies(ci: Ci, remote: Path) -> list[str]:
    """Which files of the state branch (any commit) and which plans hold a personal value of
    the profiles in clear."""
    found = [f"{name} (a version on the state branch)"
             for name, versions in state_branch_files(remote).items()
             for content in versions if any(value in content for value in PERSONAL)]
    found += [name for name, content in plan_artifacts(ci.repo).items()
              if any(value in content for value in PERSONAL)]
    return found


def assert_sealed_at_rest(ci: Ci, remote: Path) -> None:
    """With a key, nothing personal is in clear in the state branch's history or in a plan;
    without one, it is (which shows that the search finds what it looks for)."""
    found = clear_copies(ci, remote)
    head = state_branch_files(remote, "reconciler-state^{tree}")
    # Every pair's state, beside the one ledger of the state directory and its data keys.
    assert {f"{WORKSPACE}-{version}.json" for version in PAIRS} | {"audit.jsonl",
                                                                   "audit.keys"} <= head.keys()
    if ci.key is not None:
        assert found == []
        assert all(head[f"{WORKSPACE}-{version}.json"][0].startswith(SEALED)
                   for version in PAIRS)
        assert head["audit.keys"][0].startswith(b'{"wrap":')
        assert all(plan.startswith(SEALED) for plan in plan_artifacts(ci.repo).values())
    else:
        for version in PAIRS:
            assert f"{WORKSPACE}-{version}.json (a version on the state branch)" in found
        assert "plan.json" in found


# -- the pull-request cycle -----------------------------------------------------------------

def test_plan_writes_one_comment_with_the_marker_that_renders(ci: Ci) -> None:
    result = ci("plan", RECONCILER_COMMIT="abc1234")
    assert result.returncode == 0, result.stderr
    assert ci.out("plan.env") == "changes=true\n"
    plan = ci.plan(ci.repo / "reconciler-out" / "plan.json")
    assert plan["summary"]["calls"]
    plan_id = plan["plan_id"]
    assert f"ci.sh: plan {plan_id} saved to reconciler-out/plan.json" in result.stderr
    comment = ci.out("comment.md")
    assert comment.startswith(MARKER + "\n")
    assert comment.count(MARKER) == 1
    assert len(comment) < LIMIT
    assert "for commit `abc1234`" in comment
    # One comment for both versions: a title, then a section per pair, each with its plan.
    assert comment.startswith(f"{MARKER}\n## Reconciler plan: 2 workspace/version pairs\n")
    _, live, test = comment.split("\n### Reconciler plan for ")
    assert live.startswith(f"{WORKSPACE} (live)\n") and test.startswith(f"{WORKSPACE} (test)\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(comment)
    assert "table_open" in [token.type for token in tokens]
    assert [t.content for t in tokens if t.type == "inline" and t.content.startswith(
        "Reconciler plan")] == ["Reconciler plan: 2 workspace/version pairs",
                                f"Reconciler plan for {WORKSPACE} (live)",
                                f"Reconciler plan for {WORKSPACE} (test)"]
    # One folded section per planned profile (svc-statuspage holds nothing: nothing planned),
    # in its pair's section: u-2001 is a profile of each version.
    for section, distinct_ids in ((live, ("svc-oncall", "u-2001", "u-2002", "u-3001", "u-3002")),
                                  (test, ("qa-android", "u-2001"))):
        assert section.count("<details>") == section.count("</details>") == len(distinct_ids)
        for distinct_id in distinct_ids:
            assert f"<code>+ {distinct_id}</code>" in section
    html = "".join(token.content for token in tokens if token.type == "html_block")
    assert html.count("<details>") == html.count("</details>") == 7
    # A rule before each pair's section, and the footer's: a rule and a note, not a setext
    # heading or part of the last section.
    assert [t.type for t in tokens].count("hr") == 3


def test_plan_without_changes_exits_0_and_says_so(ci: Ci) -> None:
    applied_first(ci)
    result = ci("plan")
    assert result.returncode == 0, result.stderr
    assert ci.out("plan.env") == "changes=false\n"
    assert "No changes" in ci.out("comment.md")


def test_plan_of_an_invalid_configuration_exits_1_with_the_reason_in_the_comment(
        ci: Ci, repo: Path) -> None:
    edit(repo, "live/support.yaml", 'sms: "+14155550142"', "sms: +14155550142")
    result = ci("plan")
    assert result.returncode == 1
    assert not (repo / "reconciler-out" / "plan.json").exists()
    comment = ci.out("comment.md")
    assert comment.startswith(MARKER)
    assert "support.yaml:10:" in comment and '"+14•••••0142"' in comment
    assert "4155550142" not in comment  # no phone number posted into the pull request


def test_fmt_passes_the_example_and_fails_an_unformatted_file_with_a_masked_diff(
        ci: Ci, repo: Path) -> None:
    assert ci("fmt").returncode == 0  # the example is in the layout it preaches
    edit(repo, "live/support.yaml", '    sms: "+14155550142"\n', "")
    edit(repo, "live/support.yaml", "    email: kenji@example.com\n",
         '    email: kenji@example.com\n    sms: "+14155550142"\n')
    result = ci("fmt")
    assert result.returncode == 1
    assert "support.yaml" in result.stdout and "reconciler fmt profiles" in result.stderr
    assert "+14•••••0142" in result.stdout and "4155550142" not in result.stdout


@pytest.mark.parametrize("encrypted", [True, False], ids=["with-key", "in-clear"])
def test_merged_pull_request_applies_exactly_its_reviewed_plan(
        ci: Ci, repo: Path, remote: Path, sandbox: SandboxProcess) -> None:
    reviewed, plan_id, merged = reviewed_and_merged(ci, repo)

    result = ci.job("apply", RECONCILER_PLAN=str(reviewed))
    assert result.returncode == 0, result.stderr
    assert "STALE" not in result.stderr
    # Both pairs, from the one reviewed plan, each to its own state.
    assert (f"Applying the saved plan {reviewed}: 2 calls in 2 workspace/version pairs."
            in result.stdout)
    assert "chain intact" in result.stdout
    assert sandbox.data("live")["u-2001"]["email"] == "maria@new.example.com"
    assert sandbox.data("test")["u-2001"]["email"] == "maria+test@new.example.com"
    assert_server_holds_the_configuration(repo, sandbox)
    records = ledger_records(repo, ci.encryption)
    applied = [r for r in records if r["plan_id"] == plan_id]
    assert [(r["commit"], r["version"], r["distinct_id"]) for r in applied] == [
        (merged, "live", "u-2001"), (merged, "test", "u-2001")]
    assert [r["after"]["email"] for r in applied] == [  # readable with the key
        "maria@new.example.com", "maria+test@new.example.com"]
    assert_sealed_at_rest(ci, remote)


def test_plan_made_stale_by_another_apply_is_refused_then_replanned_and_applied(
        ci: Ci, repo: Path, remote: Path, sandbox: SandboxProcess) -> None:
    applied_first(ci)
    # Two pull requests; pr-b is planned as merged onto main with pr-a (as GitHub plans the
    # merge ref), while pr-a's apply is still waiting for its turn.
    pull_request(repo, "pr-a", "live/support.yaml", "kenji@example.com", "kenji@new.example.com")
    merge(repo, "pr-a")
    pull_request(repo, "pr-b", "live/sales.yaml", "ana@example.com", "ana@new.example.com")
    assert ci("plan").returncode == 0
    plan_b = ci.keep_plan("pr-b")
    git(repo, "checkout", "-q", "main")
    assert ci("plan").returncode == 0
    plan_a = ci.keep_plan("pr-a")
    assert ci.job("apply", RECONCILER_PLAN=str(plan_a)).returncode == 0
    git(repo, "merge", "-q", "--ff-only", "pr-b")

    result = ci.job("apply", RECONCILER_PLAN=str(plan_b))
    assert result.returncode == 0, result.stderr
    assert f"{plan_b} is stale: it was computed against state serial" in result.stdout
    assert (f"ci.sh: STALE PLAN: reconciler apply refused {plan_b} because the state changed since "
            "it was reviewed.") in result.stderr
    assert "Re-planning against the current state and applying the new plan." in result.stderr
    server = sandbox.data()
    assert server["u-2002"]["email"] == "kenji@new.example.com"
    assert server["u-3001"]["email"] == "ana@new.example.com"
    assert_server_holds_the_configuration(repo, sandbox)
    assert "ana@new.example.com" not in ci.out("applied.md")  # masked, as in any comment
    assert "a•••@new.example.com" in ci.out("applied.md")
    assert_sealed_at_rest(ci, remote)


def test_plan_for_another_configuration_is_refused_then_replanned_and_applied(
        ci: Ci, repo: Path, remote: Path, sandbox: SandboxProcess) -> None:
    applied_first(ci)
    # pr-b is planned on its own branch; pr-a, which changes another file, merges and is
    # applied first.
    pull_request(repo, "pr-a", "live/support.yaml", "kenji@example.com", "kenji@new.example.com")
    assert ci("plan").returncode == 0
    plan_a = ci.keep_plan("pr-a")
    pull_request(repo, "pr-b", "live/sales.yaml", "ana@example.com", "ana@new.example.com")
    assert ci("plan").returncode == 0
    plan_b = ci.keep_plan("pr-b")
    merge(repo, "pr-a")
    assert ci.job("apply", RECONCILER_PLAN=str(plan_a)).returncode == 0
    merge(repo, "pr-b")  # main now holds a configuration pr-b's plan was never made for

    result = ci.job("apply", RECONCILER_PLAN=str(plan_b))
    assert result.returncode == 0, result.stderr
    # Named for the pair whose configuration changed: the test version's did not.
    assert re.search(rf"ci\.sh: STALE PLAN: refusing {re.escape(str(plan_b))}: it was "
                     rf"reviewed for another configuration of {WORKSPACE} \(live\) \(digest "
                     r"sha256:[0-9a-f]{64}\), and the configuration at this commit is "
                     r"sha256:[0-9a-f]{64}\.", result.stderr), result.stderr
    server = sandbox.data()
    assert server["u-2002"]["email"] == "kenji@new.example.com"
    assert server["u-3001"]["email"] == "ana@new.example.com"
    assert_server_holds_the_configuration(repo, sandbox)
    assert_sealed_at_rest(ci, remote)


def test_drift_behind_the_tools_back_exits_2_and_none_exits_0(
        ci: Ci, remote: Path, sandbox: SandboxProcess) -> None:
    applied_first(ci)
    none = ci.job("drift")
    assert none.returncode == 0, none.stderr
    assert ci.out("drift.env") == "drift=false\n"
    assert "No drift" in ci.out("drift.md")

    change_server(sandbox, "live", "u-3002", push=[])
    change_server(sandbox, "live", "u-2001", email="someone@else.example.com")
    change_server(sandbox, "test", "qa-android", push=[])
    found = ci.job("drift")
    assert found.returncode == 2, found.stderr
    assert ci.out("drift.env") == "drift=true\n"
    report = ci.out("drift.md")
    assert report.startswith("<!-- reconciler-drift -->\n")
    # One report, a section per pair: each version's drift in its own.
    live, test = report.split(f"### Drift in {WORKSPACE} (test)")
    assert f"### Drift in {WORKSPACE} (live)" in live
    assert "<code>~ u-2001</code>" in live and "u-3002" in live and "qa-android" not in live
    assert "qa-android" in test and "u-2001" not in test
    assert "someone@else.example.com" not in report  # masked
    assert "u-2002" not in report
    # The state now records what the server holds: the next check finds nothing new.
    assert ci.job("drift").returncode == 0
    # ... the value someone else wrote too, encrypted like the rest.
    shown = ci.reconciler("state", "show", "u-2001", "--state", f"state/{WORKSPACE}-live.json",
                          "--show-values")
    assert "someone@else.example.com" in shown.stdout, shown.stderr
    assert_sealed_at_rest(ci, remote)


def test_drift_without_the_key_exits_1(ci: Ci) -> None:
    result = ci("drift", FYNO_API_KEY="")
    assert result.returncode == 1
    assert "refresh failed" in result.stderr


def test_comment_of_a_huge_plan_is_cut_under_the_limit_after_whole_sections(
        ci: Ci, repo: Path) -> None:
    bulk = {f"u-{n:05d}": {"email": f"someone-with-a-long-name-{n}@example.com",
                           "sms": f"+1415555{n:04d}"} for n in range(1500)}
    (repo / "profiles" / "bulk.yaml").write_text(json.dumps(
        {"workspace": WORKSPACE, "version": "live", "profiles": bulk}))
    assert ci("plan").returncode == 0
    comment = ci.out("comment.md")
    assert LIMIT - 2_000 < len(comment) <= LIMIT
    assert comment.count("<details>") == comment.count("</details>") > 100
    assert "plan.json" in comment.split("</details>")[-1]  # the note says where the rest is
    assert comment.rstrip().endswith("plans again.</sub>")


# -- encryption: migration, erasure, rotation ---------------------------------------------------

def test_a_state_branch_in_clear_is_encrypted_by_the_first_job_with_a_key(
        repo: Path, remote: Path, sandbox: SandboxProcess) -> None:
    applied_first(Ci(repo, sandbox))  # before the key: the branch is in clear
    in_clear = git(remote, "rev-parse", "reconciler-state")
    keyed = Ci(repo, sandbox, new_key())
    git(repo, "worktree", "remove", "--force", "state")  # a new job: a fresh checkout

    # A pull request's plan job: its checkout is encrypted, used, and never pushed.
    fetched = keyed("state-fetch")
    assert fetched.returncode == 0, fetched.stderr
    for version in PAIRS:
        assert (f"ci.sh: state/{WORKSPACE}-{version}.json is in clear and "
                "RECONCILER_ENCRYPTION_KEY is set: encrypting the state branch") in fetched.stderr
    planned = keyed("plan")
    assert planned.returncode == 0, planned.stderr
    assert keyed.out("plan.env") == "changes=false\n"
    assert git(remote, "rev-parse", "reconciler-state") == in_clear

    # The next job that writes the state pushes it encrypted; the earlier commit stays as it was.
    drift = keyed.job("drift")
    assert drift.returncode == 0, drift.stderr
    head = state_branch_files(remote, "reconciler-state^{tree}")
    for version in PAIRS:
        assert head[f"{WORKSPACE}-{version}.json"][0].startswith(SEALED)
        assert head[f"{WORKSPACE}-{version}.json.backup"][0].startswith(SEALED)
    assert not any(value in content for value in PERSONAL
                   for versions in head.values() for content in versions)
    earlier = git(remote, "show", f"{in_clear}:{WORKSPACE}-live.json")
    assert "maria@example.com" in earlier
    verified = keyed.reconciler("audit", "verify", "--state-dir", "state")
    assert verified.returncode == 0 and "chain intact" in verified.stdout, verified.stderr


def checkout(remote: Path, ref: str, where: Path) -> Path:
    """The state branch at `ref`, as a plain directory."""
    commit = git(remote, "rev-parse", ref)
    git(remote.parent, "clone", "-q", "--no-checkout", str(remote), str(where))
    git(where, "checkout", "-q", "--detach", commit)
    return where


def test_erase_leaves_no_value_in_the_state_branch_and_rotation_closes_its_history(
        ci: Ci, repo: Path, remote: Path, sandbox: SandboxProcess, tmp_path: Path) -> None:
    applied_first(ci)
    # Kenji leaves: his profile goes from the configuration, and its apply deletes his data.
    pull_request(repo, "offboard-kenji", "live/support.yaml",
                 '  u-2002:\n    sms: "+14155550142"\n    email: kenji@example.com\n', "")
    assert ci("plan").returncode == 0
    reviewed = ci.keep_plan("offboard-kenji")
    merge(repo, "offboard-kenji")
    assert ci.job("apply", RECONCILER_PLAN=str(reviewed)).returncode == 0
    assert "u-2002" not in sandbox.data() or not sandbox.data()["u-2002"].get("email")
    # Omar's profile is no longer managed here (dropped from the YAML, not applied yet).
    edit(repo, "live/sales.yaml", '  u-3002:\n    email: omar@example.com\n    push:\n'
         '      - token: "fcm_token:omar-pixel-7"\n        integration_id: IFCM0001\n', "")
    commit_all(repo, "stop managing omar")
    before = git(remote, "rev-parse", "reconciler-state")

    refused = ci("erase", "u-3001", "u-2002")
    assert refused.returncode == 1
    assert (f"ci.sh: still declared in profiles: u-3001 in {WORKSPACE} (live). Remove them "
            "there first" in refused.stderr), refused.stderr
    assert git(remote, "rev-parse", "reconciler-state") == before

    erased = ci("erase", "u-2002", "u-3002")
    assert erased.returncode == 0, erased.stderr
    # In each pair: recorded in live's ledger, and the erasure recorded in test's too.
    assert erased.stdout.count("Erased u-2002: ") == erased.stdout.count("Erased u-3002: ") == 2
    assert f"still recorded in the state of {WORKSPACE} (live): u-3002." in erased.stderr
    assert "their channel data stays on the server" in erased.stderr
    assert sandbox.data()["u-3002"]["email"] == "omar@example.com"  # state rm makes no call
    assert "chain intact" in erased.stdout
    assert git(remote, "log", "-1", "--format=%s", "reconciler-state") == (
        "reconciler-ci: erased u-2002 u-3002")

    gone = (b"kenji@example.com", b"+14155550142", b"omar@example.com",
            b"fcm_token:omar-pixel-7")
    # The head, opened with the key: no file holds their values, and the ledger shows each
    # call without them, its chain intact.
    head = checkout(remote, "reconciler-state", tmp_path / "head")
    for distinct_id in ("u-2002", "u-3002"):
        history = ci.reconciler("audit", "--profile", distinct_id, "--format", "json",
                                "--show-values", "--state-dir", str(head))
        assert history.returncode == 0, history.stderr
        assert history.stdout.count('"distinct_id":"' + distinct_id) >= 2
        assert not any(value.decode() in history.stdout for value in gone)
    verified = ci.reconciler("audit", "verify", "--state-dir", str(head))
    assert verified.returncode == 0 and "chain intact" in verified.stdout, verified.stderr
    opened = ci.reconciler("state", "decrypt", "--state", str(head / f"{WORKSPACE}-live.json"))
    assert opened.returncode == 0, opened.stderr
    files = {path.name: path.read_bytes() for path in head.iterdir() if path.is_file()}
    assert b"maria@example.com" in files[f"{WORKSPACE}-live.json"]  # in clear now, truly
    assert [name for name, content in files.items() if any(v in content for v in gone)] == []

    # The commit before still holds them, under the same key.
    earlier = checkout(remote, before, tmp_path / "earlier")
    kept = ci.reconciler("audit", "--profile", "u-2002", "--format", "json", "--show-values",
                         "--state-dir", str(earlier))
    assert "kenji@example.com" in kept.stdout, kept.stderr

    # Rotating the key (the workflow files' mapping), then dropping the old one, closes it.
    assert ci("plan").returncode == 0
    reviewed_before = ci.keep_plan("reviewed-before-the-rotation")
    rotated_key = new_key()
    rotated = ci("rotate", RECONCILER_STATE_KEY=rotated_key, RECONCILER_STATE_KEY_OLD=ci.key or "",
                 RECONCILER_ENCRYPTION_FALLBACK="env:RECONCILER_STATE_KEY_OLD")
    assert rotated.returncode == 0, rotated.stderr
    assert "Destroy the old key now" in rotated.stderr
    after = Ci(repo, sandbox, rotated_key)
    unreadable = after.reconciler("audit", "--profile", "u-2002", "--state-dir", str(earlier))
    assert unreadable.returncode == 1
    assert "none of the configured keys" in unreadable.stderr
    # The head reads with the new key alone; a plan made before can no longer be read, and
    # its apply plans again.
    applied = after.job("apply", RECONCILER_PLAN=str(reviewed_before))
    assert applied.returncode == 0, applied.stderr
    assert ("STALE PLAN: refusing " + str(reviewed_before) + ": it was encrypted with a key "
            "that is no longer configured") in applied.stderr
    assert "chain intact" in applied.stdout
    assert ci("plan").returncode == 1  # nor does the head read with the old key


# -- state in PostgreSQL -------------------------------------------------------------------

def database_values(url: str) -> dict[str, list[bytes]]:
    """Every value of every row of reconciler's tables in the database at `url`, by table."""
    found: dict[str, list[bytes]] = {}
    with psycopg.connect(url, autocommit=True) as connection:
        tables = [row[0] for row in connection.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'reconciler%'")]
        for table in tables:
            rows = connection.execute(psycopg.sql.SQL("SELECT * FROM {}").format(
                psycopg.sql.Identifier(table))).fetchall()
            found[table] = [bytes(value) if isinstance(value, bytes | memoryview)
                            else str(value).encode()
                            for row in rows for value in row if value is not None]
    return found


def waiting_for_the_lock(url: str) -> bool:
    """Whether a session of the database waits for a lock: blocked on it, or polling for an
    advisory lock it did not get (a holder's last query is the row that names it)."""
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
            "pid <> pg_backend_pid() AND (wait_event_type = 'Lock' OR "
            "query LIKE 'SELECT pg_try_advisory_lock%')").fetchone()
    return row is not None and row[0] > 0


def test_state_in_postgresql_no_branch_jobs_wait_for_the_lock_and_the_ledger_verifies(
        repo: Path, remote: Path, sandbox: SandboxProcess, postgres_url: str) -> None:
    ci = Ci(repo, sandbox, new_key(), backend=postgres_url)
    fetched, pushed = ci("state-fetch"), ci("state-push")
    assert fetched.returncode == pushed.returncode == 0, fetched.stderr + pushed.stderr
    assert fetched.stderr.splitlines() == [
        "ci.sh: RECONCILER_BACKEND is set: the state and the audit ledger are in the database, "
        "no state branch to fetch"]
    assert len(pushed.stderr.splitlines()) == 1 and "no state branch to push" in pushed.stderr
    # Nothing applied yet: the database holds no state of the workspace, so erase says so.
    early = ci("erase", "u-9999")
    assert early.returncode == 1, early.stdout + early.stderr
    assert "no state at" in early.stderr and "nothing was erased" in early.stderr
    reviewed, plan_id, merged = reviewed_and_merged(ci, repo)

    # The merge's apply starts while someone else (a person at a terminal, another runner)
    # holds the workspace's lock: it waits for it instead of failing, then applies the plan.
    holder = PostgresState(postgres_url, WORKSPACE, "live", ci.encryption)
    with holder.lock("apply (someone at a terminal)"):
        job = ci.start("apply", RECONCILER_PLAN=str(reviewed))
        try:
            deadline = time.monotonic() + 90
            while not waiting_for_the_lock(postgres_url):
                assert job.poll() is None, job.communicate()
                assert time.monotonic() < deadline, "ci.sh apply never asked for the lock"
                time.sleep(0.2)
            listed = ci.reconciler("state", "list", FYNO_WSID=WORKSPACE)
            assert "running 'apply (someone at a terminal)'" in listed.stderr, listed.stderr
            assert job.poll() is None  # still waiting
        except BaseException:
            job.kill()
            job.communicate()
            raise
    holder.connections.get().close()
    out, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    assert f"Applying the saved plan {reviewed}: 2 calls in 2 workspace/version pairs." in out
    assert "STALE" not in err
    assert sandbox.data()["u-2001"]["email"] == "maria@new.example.com"
    assert_server_holds_the_configuration(repo, sandbox)

    # The scheduled drift job, on the same database.
    change_server(sandbox, "live", "u-2002", email="someone@else.example.com")
    drift = ci.job("drift")
    assert drift.returncode == 2, drift.stderr
    assert "<code>~ u-2002</code>" in ci.out("drift.md")

    # The ledger is the database's: it verifies, and names the reviewed plan and the merge.
    verified = ci.reconciler("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "table reconciler_ledger" in verified.stdout and "chain intact" in verified.stdout
    shown = ci.reconciler("audit", "--format", "json", "--show-values")
    assert shown.returncode == 0, shown.stderr
    records = [json.loads(line) for line in shown.stdout.splitlines()]
    applied = [r for r in records if r["plan_id"] == plan_id]
    assert [(r["commit"], r["version"], r["distinct_id"]) for r in applied] == [
        (merged, "live", "u-2001"), (merged, "test", "u-2001")]
    assert records[-1]["operation"] == "drift" and records[-1]["distinct_id"] == "u-2002"

    # No state branch, no state directory; nothing personal in clear in the database (rows
    # and ledger sealed with the state key) or in a plan.
    assert git(remote, "branch", "--list") == ""
    assert not (repo / "state").exists()
    tables = database_values(postgres_url)
    assert tables["reconciler_profiles"] and tables["reconciler_ledger"]
    assert [table for table, values in tables.items()
            if any(secret in value for secret in PERSONAL for value in values)] == []
    plans = plan_artifacts(repo)
    assert plans and all(plan.startswith(SEALED) for plan in plans.values())


# -- the state branch -----------------------------------------------------------------------

def test_state_branch_is_created_then_pushed_fast_forward_only(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    clones = []
    for name in ("job-1", "job-2"):
        clone = tmp_path / name
        shutil.copytree(GITOPS, clone)
        git(clone, "init", "-q", "-b", "main")
        commit_all(clone, "profiles")
        git(clone, "remote", "add", "origin", str(remote))
        clones.append(Ci(clone, None))
    first, second = clones
    assert first("state-fetch").returncode == 0  # no branch yet: an empty state directory
    # Every pair's state, the ledger's data keys; never a lock.
    for name in ("FYGITOPS01-live.json", "FYGITOPS01-test.json", "audit.keys"):
        (first.repo / "state" / name).write_text("{}")
    (first.repo / "state" / "FYGITOPS01-live.json.lock").write_text("pid")
    pushed = first("state-push")
    assert pushed.returncode == 0, pushed.stderr
    files = git(remote, "ls-tree", "--name-only", "reconciler-state")
    assert files.split() == [".gitignore", "FYGITOPS01-live.json", "FYGITOPS01-test.json",
                             "audit.keys"]
    assert git(first.repo, "ls-files").count("state/") == 0  # never on the working branch

    assert second("state-fetch").returncode == 0
    assert (second.repo / "state" / "FYGITOPS01-live.json").read_text() == "{}"
    (first.repo / "state" / "audit.jsonl").write_text("first\n")
    assert first("state-push").returncode == 0
    (second.repo / "state" / "audit.jsonl").write_text("second\n")
    rejected = second("state-push")
    assert rejected.returncode == 1
    assert "moved since state-fetch" in rejected.stderr
    assert git(remote, "show", "reconciler-state:audit.jsonl") == "first"
    # Its commit was not saved: pushing again is refused again, never reported as done.
    assert second("state-push").returncode == 1
    assert git(remote, "show", "reconciler-state:audit.jsonl") == "first"


# -- the workflow files against the real CLI --------------------------------------------------

CI_MODES = set(re.findall(r"^    ([a-z-]+)\) cmd_", (GITOPS / "ci.sh").read_text(), re.M))
INVOCATION = re.compile(r"(?<![\w./-])(?:\./)?(reconciler|ci\.sh)[ \t]+([^|;&<>()\n`]*)")


def command_lines(workflow: Any) -> list[str]:
    """Every line of every `run`/`script` entry of a parsed workflow file."""
    found: list[str] = []
    if isinstance(workflow, dict):
        for key, value in workflow.items():
            if key in ("run", "script", "before_script", "after_script"):
                scripts = value if isinstance(value, list) else [value]
                found += [line for text in scripts for line in str(text).splitlines()]
            else:
                found += command_lines(value)
    elif isinstance(workflow, list):
        for item in workflow:
            found += command_lines(item)
    return found


def shell_lines(text: str) -> list[str]:
    """Logical lines of a shell script: continuations joined, comment lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if not line.lstrip().startswith("#")]


def array_options(script: str) -> dict[str, list[str]]:
    """The options a script puts in arrays, e.g. `state_args=(--state "$STATE")`."""
    return {name: re.findall(r"(?<!\S)--[a-z][a-z-]*", body)
            for name, body in re.findall(r"(\w+)=\(([^)]*)\)", script)}


def command_problems(lines: list[str], arrays: dict[str, list[str]] | None = None) -> list[str]:
    """What is wrong with the `reconciler ...` and `ci.sh ...` invocations of `lines`."""
    problems = []
    for line in shell_lines("\n".join(lines)):
        for program, rest in INVOCATION.findall(line):
            words = rest.split()
            if program == "ci.sh":
                if not words or words[0] not in CI_MODES:
                    problems.append(f"ci.sh has no mode {words[:1]}: {line.strip()}")
                continue
            command: click.Command = cli
            params = list(cli.params)
            while words and isinstance(command, click.Group) and not words[0].startswith("-") \
                    and not words[0].startswith(('"', "$")):
                # as click finds it: the group imports a command's module when asked
                sub = command.get_command(click.Context(command), words.pop(0))
                if sub is None:
                    problems.append(f"no such command: {line.strip()}")
                    break
                command = sub
                params += sub.params
            else:
                known = {opt for param in params for opt in (*param.opts, *param.secondary_opts)}
                options = [w.split("=")[0] for w in words if w.startswith("--")]
                for name in re.findall(r'"\$\{(\w+)\[@\]\}"', rest):
                    options += (arrays or {}).get(name, [])
                problems += [f"{command.name} has no option {option}: {line.strip()}"
                             for option in options if option not in known]
    return problems


def ci_script_problems(text: str) -> list[str]:
    return command_problems(text.splitlines(), array_options(text))


@pytest.mark.parametrize("service", WORKFLOWS)
def test_workflow_file_is_valid_yaml_and_uses_only_real_commands(service: str) -> None:
    workflow = yaml.safe_load(WORKFLOWS[service].read_text())
    assert isinstance(workflow, dict)
    lines = command_lines(workflow)
    expected = {"github": {"./ci.sh apply", "./ci.sh drift || [ $? -eq 2 ]"},
                "gitlab": {"status=0; ./ci.sh apply || status=$?",
                           "status=0; ./ci.sh drift || status=$?"}}[service]
    expected |= {"./ci.sh state-fetch", "./ci.sh plan", "./ci.sh state-push",
                 "./ci.sh erase $RECONCILER_ERASE_IDS", "./ci.sh rotate", "./ci.sh fmt"}
    assert expected <= {line.split("#")[0].strip() for line in lines}
    assert command_problems(lines) == []
    text = WORKFLOWS[service].read_text()
    assert "<!-- reconciler-plan -->" in text and "<!-- reconciler-drift -->" in text
    # The key comes from the secret store only, and never reaches a pull request's job.
    jobs = workflow.get("jobs", workflow)
    assert set(values_of(workflow, "FYNO_API_KEY")) <= {"${{ secrets.FYNO_API_KEY }}"}
    assert values_of(jobs["plan"], "FYNO_API_KEY") == []
    # Every job reads the state with the state key, which comes from the secret store only
    # (GitLab: a CI/CD variable, so the file never sets it).
    assert values_of(workflow, "RECONCILER_ENCRYPTION_KEY") == ["env:RECONCILER_STATE_KEY"]
    secrets = {"github": "${{ secrets.RECONCILER_STATE_KEY }}", "gitlab": None}[service]
    for job in ("plan", "apply", "drift", "erase"):
        assert values_of(jobs[job], "RECONCILER_STATE_KEY") == ([secrets] if secrets else [])
    assert values_of(jobs["rotate"], "RECONCILER_STATE_KEY") == (
        ["${{ secrets.RECONCILER_STATE_KEY_NEW }}"] if secrets else [])
    assert values_of(jobs["rotate"], "RECONCILER_ENCRYPTION_FALLBACK") == [
        "env:RECONCILER_STATE_KEY_OLD"]
    assert "RECONCILER_STATE_KEY" in text.split("\n\n")[0]  # the header says what it needs
    # State in PostgreSQL, opt-in: the URL and the password from the secret store only, in
    # every job (GitHub: empty without the secrets, and ci.sh then uses the branch).
    for variable in ("RECONCILER_BACKEND", "PGPASSWORD"):
        assert variable in text.split("\n\n")[0]
        for job in ("plan", "apply", "drift", "erase", "rotate"):
            assert values_of(jobs[job], variable) == (
                [f"${{{{ secrets.{variable} }}}}"] if secrets else [])
    # Erasing and rotating are started by hand only.
    if service == "github":
        dispatch = workflow[True]["workflow_dispatch"]["inputs"]
        assert dispatch["task"]["options"] == ["drift", "erase", "rotate"] and "ids" in dispatch
        assert "inputs.task == 'erase'" in jobs["erase"]["if"]
        assert jobs["erase"]["env"]["RECONCILER_ERASE_IDS"] == "${{ inputs.ids }}"
        assert "inputs.task == 'rotate'" in jobs["rotate"]["if"]
    else:
        for job in ("erase", "rotate"):
            assert [rule.get("when") for rule in jobs[job]["rules"]] == ["manual"]


def values_of(tree: Any, key: str) -> list[Any]:
    """Every value stored under `key`, at any depth."""
    if isinstance(tree, dict):
        return [v for k, value in tree.items()
                for v in ([value] if k == key else values_of(value, key))]
    if isinstance(tree, list):
        return [v for item in tree for v in values_of(item, key)]
    return []


def test_ci_script_uses_only_real_commands_and_options() -> None:
    text = (GITOPS / "ci.sh").read_text()
    modes = {"plan", "apply", "drift", "state-fetch", "state-push", "erase", "rotate", "fmt"}
    assert modes == CI_MODES
    lines = shell_lines(text)
    assert sum("reconciler plan " in line for line in lines) >= 3
    assert ci_script_problems(text) == []
    # The options every invocation gets before the command name are reconciler's own.
    globals_ = {opt for param in cli.params for opt in param.opts}
    assert array_options(text)["lock_args"] == ["--lock-timeout"]
    assert set(array_options(text)["lock_args"]) <= globals_


def test_the_check_catches_a_misspelled_option_a_wrong_command_or_mode() -> None:
    workflow = yaml.safe_load(WORKFLOWS["github"].read_text())
    steps = workflow["jobs"]["plan"]["steps"]
    steps.append({"run": "reconciler plan profiles --detailed-exit-code"})
    assert command_problems(command_lines(workflow)) == [
        "plan has no option --detailed-exit-code: reconciler plan profiles --detailed-exit-code"]
    assert command_problems(["reconciler aply plan.json"]) == [
        "no such command: reconciler aply plan.json"]
    assert command_problems(["./ci.sh deploy"]) == ["ci.sh has no mode ['deploy']: ./ci.sh deploy"]
    script = (GITOPS / "ci.sh").read_text()
    assert ci_script_problems(script.replace("--detailed-exitcode", "--detailed-exit-codes"))
    assert ci_script_problems(script.replace('state_args=(--state "$STATE")',
                                             'state_args=(--state-file "$STATE")'))


def test_pre_commit_hook_runs_reconciler_validate_on_yaml_files() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(hook for hook in hooks if hook["id"] == "reconciler-validate")
    assert hook["entry"] == "reconciler validate" and hook["language"] == "python"
    assert command_problems([hook["entry"] + " profiles"]) == []
    files = re.compile(hook["files"])
    assert files.search("profiles/a.yaml") and files.search("b.yml")
    assert not files.search("README.md")
