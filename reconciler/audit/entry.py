"""What one audit record says, and where its actor and commit come from.

`AuditEntry` is the record as the apply executor describes a finished call; the ledger adds
the chain fields (`seq`, `prev`, `hash`). Nothing here reads the environment except for the
actor: the API key never reaches an entry.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

# The variable each CI service sets to the person who started the run, in the order tried.
CI_ACTOR_VARIABLES: Final = (
    "GITHUB_ACTOR",  # GitHub Actions
    "GITLAB_USER_LOGIN",  # GitLab CI
    "BUILDKITE_BUILD_CREATOR",  # Buildkite
    "CIRCLE_USERNAME",  # CircleCI
    "BUILD_REQUESTEDFOR",  # Azure Pipelines
    "BITBUCKET_STEP_TRIGGERER_UUID",  # Bitbucket Pipelines (no login name is exposed)
    "BUILD_USER_ID",  # Jenkins, with the build-user-vars plugin
    "CHANGE_AUTHOR",  # Jenkins, multibranch pull requests
    "CI_COMMIT_AUTHOR",  # Woodpecker
    "DRONE_COMMIT_AUTHOR",  # Drone
)
GIT_TIMEOUT_SECONDS: Final = 5.0

# The operation of the marker record that the ledger writes after a torn line.
TORN_LINE_OPERATION: Final = "torn_line"
# The operation of the record an erasure leaves: it names the profile and holds no value.
ERASE_OPERATION: Final = "erase"


def utc_now() -> str:
    """Now, in UTC, as ISO 8601 with milliseconds and a `Z`: `2024-05-01T09:30:00.123Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resolve_actor(env: Mapping[str, str]) -> str:
    """Who is applying: `RECONCILER_ACTOR`, else the CI's actor variable, else user@host."""
    for name in ("RECONCILER_ACTOR", *CI_ACTOR_VARIABLES):
        value = env.get(name, "").strip()
        if value:
            return value
    return f"{_login(env)}@{socket.gethostname()}"


def _login(env: Mapping[str, str]) -> str:
    for name in ("LOGNAME", "USER", "USERNAME"):  # the order getpass.getuser uses
        value = env.get(name, "").strip()
        if value:
            return value
    with contextlib.suppress(ImportError, KeyError):
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    return "unknown"


# Where each CI service says which commit it runs and the URL of the run, in the order tried.
CI_COMMIT_VARIABLES: Final = ("GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1",
                              "BUILD_SOURCEVERSION", "BITBUCKET_COMMIT", "GIT_COMMIT")
CI_URL_VARIABLES: Final = ("CI_PIPELINE_URL", "BUILDKITE_BUILD_URL", "CIRCLE_BUILD_URL",
                           "BUILD_URL")


def ci_commit(env: Mapping[str, str]) -> str | None:
    """The commit the CI run is for, from the CI's variables; None outside CI."""
    return next((env[name] for name in CI_COMMIT_VARIABLES if env.get(name)), None)


def pipeline_url(env: Mapping[str, str]) -> str | None:
    """The URL of the CI run (GitHub Actions, GitLab CI, Buildkite, CircleCI, Jenkins)."""
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return next((env[name] for name in CI_URL_VARIABLES if env.get(name)), None)


def git_commit(directory: Path) -> str | None:
    """The HEAD commit of the git repository holding `directory`; None if there is none.

    None as well without git, in a repository without commits, or when git refuses the
    repository (e.g. "dubious ownership" in a CI container): the commit is a courtesy of the
    ledger and never a reason to stop an apply.
    """
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One API call made by apply (or one fact about it, such as drift), as recorded.

    `request`, `before` and `after` are JSON values: the request body, and the profile's
    API `channel` objects before and after the call (None when unknown).
    """

    actor: str
    commit: str | None
    plan_id: str
    workspace: str
    version: str
    distinct_id: str | None  # None only for the ledger's own torn-line marker
    operation: str  # patch_channel, delete_channels, delete_tokens, create_profile, ...
    request: Any
    status: int | None  # HTTP status; None when no answer came
    message: str  # the server's `_message`, or the error text
    attempts: int
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    forced: bool = False  # the plan was forced past the safety rail
    time: str = field(default_factory=utc_now)
    # A write: its HTTP method and path (below /{WSID}/{version}), what it came to (ok,
    # refused, unknown) and an id; a read-back: the ids of the writes it settles and what it
    # found of them (landed, not_landed, landed_partly). Absent from other records.
    pipeline: str | None = None  # the URL of the CI run, when the CI's variables give it
    method: str | None = None
    path: str | None = None
    outcome: str | None = None
    request_id: str | None = None
    settles: tuple[str, ...] = ()
    found: str | None = None

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {name: value for name, value in (
            ("pipeline", self.pipeline), ("method", self.method), ("path", self.path),
            ("outcome", self.outcome),
            ("request_id", self.request_id), ("found", self.found)) if value is not None}
        if self.settles:
            extra["settles"] = list(self.settles)
        return {**extra,
            "time": self.time,
            "actor": self.actor,
            "commit": self.commit,
            "plan_id": self.plan_id,
            "workspace": self.workspace,
            "version": self.version,
            "distinct_id": self.distinct_id,
            "operation": self.operation,
            "request": self.request,
            "status": self.status,
            "message": self.message,
            "attempts": self.attempts,
            "before": self.before,
            "after": self.after,
            "forced": self.forced,
        }


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What every record of one apply shares, so the executor only adds the call itself."""

    actor: str
    commit: str | None
    plan_id: str
    workspace: str
    version: str
    forced: bool = False
    pipeline: str | None = None

    @classmethod
    def current(
        cls,
        *,
        config_dir: Path | None,
        plan_id: str,
        workspace: str,
        version: str,
        forced: bool,
        env: Mapping[str, str] | None = None,
    ) -> AuditContext:
        """The context of this process; `config_dir` is where the configuration lives (its
        git commit; in CI without a checkout there, the commit the CI names)."""
        env = os.environ if env is None else env
        return cls(
            actor=resolve_actor(env),
            commit=(None if config_dir is None else git_commit(config_dir)) or ci_commit(env),
            pipeline=pipeline_url(env),
            plan_id=plan_id,
            workspace=workspace,
            version=version,
            forced=forced,
        )

    def entry(
        self,
        distinct_id: str | None,
        operation: str,
        *,
        request: Any,
        status: int | None,
        message: str,
        attempts: int,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        **call: Any,
    ) -> AuditEntry:
        """A record of this context; `call`: the write's (or read-back's) fields: method,
        path, outcome, request_id, settles, found."""
        return AuditEntry(
            actor=self.actor,
            commit=self.commit,
            plan_id=self.plan_id,
            workspace=self.workspace,
            version=self.version,
            distinct_id=distinct_id,
            operation=operation,
            request=request,
            status=status,
            message=message,
            attempts=attempts,
            before=before,
            after=after,
            forced=self.forced,
            pipeline=self.pipeline,
            **call,
        )
