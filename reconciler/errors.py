"""Every error the reconciler raises on purpose, and the exit code each one means.

    ReconcilerError                 anything the user can act on (exit 1)
    ├── UsageError                  a command line that cannot be run as given
    ├── ConfigError                 the desired-state YAML is invalid (carries every Problem)
    ├── StateError                  the recorded state cannot be used
    │   ├── StateCorruptError       the state file is unreadable or not a state
    │   ├── StateMismatchError      the state belongs to another workspace or version
    │   └── StateLockedError        another process holds the state lock
    ├── PlanFileError               a saved plan cannot be used
    │   ├── PlanEditedError         its checksum does not match its content
    │   └── PlanStaleError          it was computed against another state
    ├── TooMuchChangeError          the plan deletes more than the safety rail allows
    ├── ApiError                    the Fyno API cannot be used
    │   ├── ApiSetupError           no API key, an unusable base URL, or no API there
    │   │   ├── UnexpectedAnswerError   an answer only a misconfiguration explains (404, 403...)
    │   │   └── UnreachableError        the API cannot be reached at all (refused, DNS, TLS)
    │   ├── ApiAuthError            the API answered 401: stop every call at once
    │   └── TransportError          no answer to a request
    │       ├── NotSentError        the request never left: safe to send again
    │       └── NoAnswerError       it may have reached the server: outcome unknown
    ├── ApplyFailedError            some calls failed; the state records what was done
    ├── AuditError                  the audit ledger cannot be read, appended to, or verified
    ├── EncryptionError             a file cannot be sealed or opened: no key, another key,
    │                               an edited ciphertext, or a clear file where a key is set
    └── BesideError                 the process working beside this one ended without a result
    Interrupted                     the user pressed Ctrl-C (exit 130), or SIGTERM came (143)

Errors become output in exactly one place, `reconciler.cli.main`; nothing else prints them.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field

from reconciler import termination


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with an input file, at a 1-based line and column (0: the whole file)."""

    file: str
    line: int
    column: int
    message: str
    # Values in `message` that identify a person beyond what `mask.mask_text` finds by their
    # form (tokens): masked wherever the problem is shown, unless --show-values.
    secrets: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        if self.line == 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ReconcilerError(Exception):
    """Base of every error the user can act on."""

    exit_code = 1


class UsageError(ReconcilerError):
    """A command line that cannot be run as given."""


class ConfigError(ReconcilerError):
    """The desired-state configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"configuration has {count} {noun}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[Problem]]]:
        # Raised in a process working beside the command's (`reconciler.beside`), it is
        # pickled: rebuilt from its problems, not from its message.
        return (ConfigError, (self.problems,))


class StateError(ReconcilerError):
    """The recorded state cannot be used."""


class StateCorruptError(StateError):
    """The state file is unreadable, not JSON, or not a reconciler state."""


class StateMismatchError(StateError):
    """The state belongs to another workspace or version than the configuration."""


class StateLockedError(StateError):
    """Another process holds the state lock."""


class PlanFileError(ReconcilerError):
    """A saved plan cannot be read or used."""


class PlanEditedError(PlanFileError):
    """The saved plan's checksum does not match its content."""


class PlanStaleError(PlanFileError):
    """The saved plan was computed against another lineage or serial of the state."""


class TooMuchChangeError(ReconcilerError):
    """The plan would delete more recorded entries than the safety rail allows."""


class ApiError(ReconcilerError):
    """The Fyno API cannot be used."""


class ApiSetupError(ApiError):
    """No API key, an unusable base URL, or no Fyno API answering there: stop, touch nothing."""


class UnexpectedAnswerError(ApiSetupError):
    """An answer that is not one of Fyno's (a 404, 403, redirect, HTML page, a body that is not
    its JSON envelope): something else answered, e.g. a wrong base URL or a gateway."""


class UnreachableError(ApiSetupError):
    """The API cannot be reached (connection refused, DNS failure, TLS error)."""


class ApiAuthError(ApiError):
    """The API answered 401: the key is wrong or not allowed here; no further call is made."""


class TransportError(ApiError):
    """No answer to a request."""


class NotSentError(TransportError):
    """The request never reached the server (no connection): safe to send again."""


class NoAnswerError(TransportError):
    """The request may have reached the server, but no answer came: its outcome is unknown."""


class ApplyFailedError(ReconcilerError):
    """Some calls failed; the state records exactly what was done."""


class AuditError(ReconcilerError):
    """The audit ledger cannot be read, appended to, or verified."""


class EncryptionError(ReconcilerError):
    """A file cannot be encrypted or decrypted: no key, another key, or an edited ciphertext."""


class BesideError(ReconcilerError):
    """The process working beside this one (`reconciler.beside`) ended without a result."""


class Interrupted(ReconcilerError):
    """The user interrupted the run (Ctrl-C), or SIGTERM did (`reconciler.termination`):
    then it says "terminated" where its message says "interrupted", and exits 143."""

    exit_code = 130

    def __init__(self, message: str) -> None:
        if termination.received():
            if message.startswith("interrupted"):
                message = "terminated (SIGTERM)" + message.removeprefix("interrupted")
            self.exit_code = termination.EXIT_CODE
        super().__init__(message)


def bug_location(error: BaseException) -> str:
    """An unexpected error's type and the line that raised it, never its message: a bug's
    message may hold any value it met (a phone number, an e-mail address, a token), and what
    the user is told goes to CI logs. `--debug` shows the whole traceback to whoever asks."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    path, marker = frames[-1].filename, f"{os.sep}reconciler{os.sep}"
    shown = ("reconciler/" + path.rsplit(marker, 1)[1].replace(os.sep, "/") if marker in path
             else os.path.basename(path))
    return f"{type(error).__name__} at {shown}:{frames[-1].lineno}"
