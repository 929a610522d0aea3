"""examples/gitops: ci.sh through a whole pull-request cycle against the sandbox, and the
workflow files checked against the real CLI.

Each test works in a private copy of examples/gitops made into a git repository; a pull
request is a branch, a merge is `git merge --no-ff`, and the plan artifact is a copy of the
pull request's plan.json kept outside the working tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from ledgers import ledger_records
from markdown_it import MarkdownIt
from sandboxproc import API_KEY, WORKSPACE, SandboxProcess

from reconciler.cli import cli
from reconciler.config import load_config
from reconciler.model import ChannelData

ROOT = Path(__file__).resolve().parent.parent
GITOPS = ROOT / "examples" / "gitops"
WORKFLOWS = {"github": GITOPS / ".github" / "workflows" / "reconciler.yml",
             "gitlab": GITOPS / ".gitlab-ci.yml"}
MARKER = "<!-- reconciler-plan -->"
LIMIT = 65_000
GIT_ENV = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


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


class Ci:
    """`./ci.sh MODE` in a repository, as a CI job would run it: no terminal, the key only in
    the environment, reconciler on PATH."""

    def __init__(self, repo: Path, sandbox: SandboxProcess | None) -> None:
        self.repo = repo
        self.sandbox = sandbox

    def __call__(self, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith(("FYNO_", "RECONCILER_", "GITHUB_"))}
        clean.update(GIT_ENV)
        clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
        clean["PYTHON"] = sys.executable
        clean["RECONCILER_RETRY_BASE"] = "0.01"
        clean["FYNO_API_KEY"] = API_KEY
        if self.sandbox is not None:
            clean["FYNO_BASE_URL"] = self.sandbox.url
        clean.update(env)
        return subprocess.run(["./ci.sh", mode], cwd=self.repo, env=clean, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)

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
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(GITOPS, copy)
    for path in (copy / "profiles").glob("*.yaml"):
        path.write_text(path.read_text().replace("FYGITOPS01", WORKSPACE))
    git(copy, "init", "-q", "-b", "main")
    commit_all(copy, "team profiles")
    return copy


@pytest.fixture
def sandbox() -> Iterator[SandboxProcess]:
    started = SandboxProcess()
    yield started
    started.stop()


@pytest.fixture
def ci(repo: Path, sandbox: SandboxProcess) -> Ci:
    return Ci(repo, sandbox)


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


def merge(repo: Path, branch: str) -> str:
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
    return git(repo, "rev-parse", "HEAD")


def assert_server_holds_the_configuration(repo: Path, sandbox: SandboxProcess) -> None:
    desired = load_config([repo / "profiles"])
    server = sandbox.data()
    for distinct_id, channel in desired.profiles.items():
        held = ChannelData.from_json(server.get(distinct_id, {}))
        assert held.channels == channel.channels, distinct_id


def applied_first(ci: Ci) -> None:
    """The configuration as it is on main, applied: the starting point. (No plan was
    reviewed, as after a push without a pull request: ci.sh apply says so and plans.)"""
    applied = ci("apply")
    assert applied.returncode == 0, applied.stderr
    assert "ci.sh: NO REVIEWED PLAN: reconciler-out/plan.json does not exist" in applied.stderr


# -- the pull-request cycle -----------------------------------------------------------------

def test_plan_writes_one_comment_with_the_marker_that_renders(ci: Ci) -> None:
    result = ci("plan", RECONCILER_COMMIT="abc1234")
    assert result.returncode == 0, result.stderr
    assert ci.out("plan.env") == "changes=true\n"
    assert json.loads(ci.out("plan.json"))["summary"]["calls"]
    comment = ci.out("comment.md")
    assert comment.startswith(MARKER + "\n")
    assert comment.count(MARKER) == 1
    assert len(comment) < LIMIT
    assert "for commit `abc1234`" in comment
    tokens = MarkdownIt("commonmark").enable("table").parse(comment)
    assert "table_open" in [token.type for token in tokens]
    html = "".join(token.content for token in tokens if token.type == "html_block")
    # One folded section per planned profile (svc-statuspage holds nothing: nothing planned).
    for distinct_id in ("svc-oncall", "u-2001", "u-2002", "u-3001", "u-3002"):
        assert f"<code>+ {distinct_id}</code>" in html
    assert html.count("<details>") == html.count("</details>") == 5
    # The footer is a rule and a note, not a setext heading or part of the last section.
    assert [t.type for t in tokens].count("hr") == 1


def test_plan_without_changes_exits_0_and_says_so(ci: Ci) -> None:
    applied_first(ci)
    result = ci("plan")
    assert result.returncode == 0, result.stderr
    assert ci.out("plan.env") == "changes=false\n"
    assert "No changes" in ci.out("comment.md")


def test_plan_of_an_invalid_configuration_exits_1_with_the_reason_in_the_comment(
        ci: Ci, repo: Path) -> None:
    edit(repo, "support.yaml", 'sms: "+14155550142"', "sms: +14155550142")
    result = ci("plan")
    assert result.returncode == 1
    assert not (repo / "reconciler-out" / "plan.json").exists()
    comment = ci.out("comment.md")
    assert comment.startswith(MARKER)
    assert "support.yaml:11:" in comment and '"+14•••••0142"' in comment
    assert "4155550142" not in comment  # no phone number posted into the pull request


def test_merged_pull_request_applies_exactly_its_reviewed_plan(
        ci: Ci, repo: Path, sandbox: SandboxProcess) -> None:
    applied_first(ci)
    pull_request(repo, "pr-1", "support.yaml", "maria@example.com", "maria@new.example.com")
    assert ci("plan").returncode == 0
    reviewed = ci.keep_plan("pr-1")
    plan_id = json.loads(reviewed.read_text())["plan_id"]
    merged = merge(repo, "pr-1")

    result = ci("apply", RECONCILER_PLAN=str(reviewed))
    assert result.returncode == 0, result.stderr
    assert "STALE" not in result.stderr
    assert f"Applying the saved plan {reviewed}: 1 calls." in result.stdout
    assert "chain intact" in result.stdout
    assert sandbox.data()["u-2001"]["email"] == "maria@new.example.com"
    assert_server_holds_the_configuration(repo, sandbox)
    records = ledger_records(repo)
    assert [(r["plan_id"], r["commit"], r["distinct_id"]) for r in records[-1:]] == [
        (plan_id, merged, "u-2001")]


def test_plan_made_stale_by_another_apply_is_refused_then_replanned_and_applied(
        ci: Ci, repo: Path, sandbox: SandboxProcess) -> None:
    applied_first(ci)
    # Two pull requests; pr-b is planned as merged onto main with pr-a (as GitHub plans the
    # merge ref), while pr-a's apply is still waiting for its turn.
    pull_request(repo, "pr-a", "support.yaml", "kenji@example.com", "kenji@new.example.com")
    merge(repo, "pr-a")
    pull_request(repo, "pr-b", "sales.yaml", "ana@example.com", "ana@new.example.com")
    assert ci("plan").returncode == 0
    plan_b = ci.keep_plan("pr-b")
    git(repo, "checkout", "-q", "main")
    assert ci("plan").returncode == 0
    plan_a = ci.keep_plan("pr-a")
    assert ci("apply", RECONCILER_PLAN=str(plan_a)).returncode == 0
    git(repo, "merge", "-q", "--ff-only", "pr-b")

    result = ci("apply", RECONCILER_PLAN=str(plan_b))
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


def test_plan_for_another_configuration_is_refused_then_replanned_and_applied(
        ci: Ci, repo: Path, sandbox: SandboxProcess) -> None:
    applied_first(ci)
    # pr-b is planned on its own branch; pr-a, which changes another file, merges and is
    # applied first.
    pull_request(repo, "pr-a", "support.yaml", "kenji@example.com", "kenji@new.example.com")
    assert ci("plan").returncode == 0
    plan_a = ci.keep_plan("pr-a")
    pull_request(repo, "pr-b", "sales.yaml", "ana@example.com", "ana@new.example.com")
    assert ci("plan").returncode == 0
    plan_b = ci.keep_plan("pr-b")
    merge(repo, "pr-a")
    assert ci("apply", RECONCILER_PLAN=str(plan_a)).returncode == 0
    merge(repo, "pr-b")  # main now holds a configuration pr-b's plan was never made for

    result = ci("apply", RECONCILER_PLAN=str(plan_b))
    assert result.returncode == 0, result.stderr
    assert re.search(rf"ci\.sh: STALE PLAN: refusing {re.escape(str(plan_b))}: it was "
                     r"reviewed for another configuration \(digest sha256:[0-9a-f]{64}\), "
                     r"and the configuration at this commit is sha256:[0-9a-f]{64}\.",
                     result.stderr), result.stderr
    server = sandbox.data()
    assert server["u-2002"]["email"] == "kenji@new.example.com"
    assert server["u-3001"]["email"] == "ana@new.example.com"
    assert_server_holds_the_configuration(repo, sandbox)


def test_drift_behind_the_tools_back_exits_2_and_none_exits_0(
        ci: Ci, sandbox: SandboxProcess) -> None:
    applied_first(ci)
    none = ci("drift")
    assert none.returncode == 0, none.stderr
    assert ci.out("drift.env") == "drift=false\n"
    assert "No drift" in ci.out("drift.md")

    server = sandbox.data()
    server["u-3002"]["push"] = []
    server["u-2001"]["email"] = "someone@else.example.com"
    sandbox.put_data(server)
    found = ci("drift")
    assert found.returncode == 2, found.stderr
    assert ci.out("drift.env") == "drift=true\n"
    report = ci.out("drift.md")
    assert report.startswith("<!-- reconciler-drift -->\n")
    assert "<code>~ u-2001</code>" in report and "u-3002" in report
    assert "someone@else.example.com" not in report  # masked
    assert "u-2002" not in report
    # The state now records what the server holds: the next check finds nothing new.
    assert ci("drift").returncode == 0


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
    (first.repo / "state" / "FYGITOPS01-live.json").write_text("{}")
    (first.repo / "state" / "FYGITOPS01-live.json.lock").write_text("pid")
    pushed = first("state-push")
    assert pushed.returncode == 0, pushed.stderr
    files = git(remote, "ls-tree", "--name-only", "reconciler-state")
    assert files.split() == [".gitignore", "FYGITOPS01-live.json"]
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
                sub = command.commands.get(words.pop(0))
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
    expected |= {"./ci.sh state-fetch", "./ci.sh plan", "./ci.sh state-push"}
    assert expected <= {line.split("#")[0].strip() for line in lines}
    assert command_problems(lines) == []
    text = WORKFLOWS[service].read_text()
    assert "<!-- reconciler-plan -->" in text and "<!-- reconciler-drift -->" in text
    # The key comes from the secret store only, and never reaches a pull request's job.
    assert set(values_of(workflow, "FYNO_API_KEY")) <= {"${{ secrets.FYNO_API_KEY }}"}
    assert values_of(workflow.get("jobs", workflow)["plan"], "FYNO_API_KEY") == []


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
    assert {"plan", "apply", "drift", "state-fetch", "state-push"} == CI_MODES
    lines = shell_lines(text)
    assert sum("reconciler plan " in line for line in lines) >= 3
    assert ci_script_problems(text) == []


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
