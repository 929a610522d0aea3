"""What `apply` tells while and after it runs: prose for people, or (`--format json`) a
stream of JSON events on stdout (`render.events`) with the prose on stderr; and the
summary of each workspace/version pair's run, with the error that ends the command."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.apply import ApplyResult
from reconciler.audit import utc_now
from reconciler.cli import streams
from reconciler.cli.pairs import label
from reconciler.converge import Report
from reconciler.drift import DriftReport
from reconciler.errors import ApplyFailedError, Interrupted, ReconcilerError
from reconciler.plan import Plan
from reconciler.render.common import noun, plural, printable
from reconciler.render.events import (
    event_line,
    failed_event,
    plan_event,
    report_event,
    report_message,
    summary_event,
)
from reconciler.render.formats import TEXT


@dataclass(frozen=True)
class Applied:
    """One pair's apply, or a pair left alone: because an earlier one stopped the run, or
    because `error` stopped it before its first call."""

    workspace: str
    version: str
    result: ApplyResult | None  # None: not started
    error: ReconcilerError | None = None


class Output:
    """Where apply's account of the run goes: prose for people, or (`--format json`) a
    stream of JSON events on stdout (`render.events`), with the prose on stderr."""

    def __init__(self, json: bool, show_values: bool) -> None:
        self.json = json
        self.show_values = show_values
        self._mutex = threading.Lock()

    def event(self, event: dict[str, Any]) -> None:
        with self._mutex:  # reports come from the executor's threads: one line each
            streams.echo(event_line(event))

    def plan(self, plan: Plan) -> None:
        if self.json:
            self.event(plan_event(plan))

    def report(self, report: Report) -> None:
        if self.json:
            self.event(report_event(report, show_values=self.show_values))

    def prose(self, text: str, *, err: bool = False) -> None:
        streams.echo(text, err=err or self.json)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """In JSON, an error that stops apply is an event too, the stream's last line; it
        goes on to stderr and sets the exit code as in every other command."""
        try:
            yield
        except ReconcilerError as error:
            if self.json:
                self.event({"type": "error", "time": utc_now(), "message": str(error),
                            "exit_code": error.exit_code})
            raise

    def nothing_to_apply(self, serials: Sequence[int]) -> None:
        self.prose("Nothing to apply.")
        if self.json:
            for serial in serials:
                self.event(summary_event(planned=0, made=0, failed=0, requests=0,
                                         seconds=0.0, serial=serial, unconfirmed=0,
                                         stopped=None))


def report(applied: Sequence[Applied], out: Output) -> None:
    """Say what each pair's apply did; then stop with the error that stopped the run, or
    exit 1 when calls failed."""
    several = len(applied) > 1
    fatal: ReconcilerError | None = None
    interrupted = False
    failed = 0
    for item in applied:
        where = f"{label(item.workspace, item.version)}: " if several else ""
        if item.error is not None:
            out.prose(f"{where}not applied: stopped before its first call (the error below).")
            fatal = fatal or item.error
            continue
        if item.result is None:
            out.prose(f"{where}not applied: the run stopped before it.")
            continue
        _report_pair(item.result, out, where)
        outcome = item.result.outcome
        fatal = fatal or outcome.fatal
        interrupted = interrupted or outcome.interrupted
        failed += len(outcome.failures)
    if fatal is not None:
        raise fatal
    if interrupted:
        raise Interrupted("interrupted: the calls that finished are recorded; run `reconciler "
                          "plan` to see what is left")
    if failed:
        raise ApplyFailedError(f"{plural(failed, 'profile')} failed; the state records exactly "
                               "what was done: run `reconciler plan` to see what is left")


def _report_pair(result: ApplyResult, out: Output, where: str) -> None:
    if result.drift:
        drift = DriftReport(result.state.workspace, result.state.version, result.drift,
                            len(result.drift))
        streams.echo(TEXT.drift((drift,), False, False), nl=False, err=True)
    outcome = result.outcome
    failed = len(outcome.failures)
    stopped = outcome.interrupted or outcome.fatal is not None
    made = min(outcome.finished, result.calls)
    rate = made / result.seconds if result.seconds else 0.0
    left = f", {result.calls - made} left" if stopped else ""
    out.prose(f"{where}Apply {'stopped' if stopped else 'complete'}: {made} of "
              f"{plural(result.calls, 'planned call')} made{left}, {failed} failed, in "
              f"{result.seconds:.1f} s ({rate:.1f} calls/s; "
              f"{plural(outcome.requests, 'request')} in all); state serial "
              f"{result.state.serial}.")
    if out.json:
        for report in outcome.failures:
            out.event(failed_event(report, show_values=out.show_values))
        why = ("interrupted" if outcome.interrupted
               else None if outcome.fatal is None else str(outcome.fatal))
        out.event(summary_event(planned=result.calls, made=made, failed=failed,
                                requests=outcome.requests, seconds=result.seconds,
                                serial=result.state.serial,
                                unconfirmed=len(result.state.unconfirmed), stopped=why))
    for report in outcome.failures:
        status = "no answer" if report.status is None else str(report.status)
        message = report_message(report, out.show_values)
        streams.echo(printable(f"  failed: {where}{report.distinct_id}: {report.operation}: "
                               f"{status} {message} (attempts: {report.attempts})"), err=True)
    if result.state.unconfirmed:
        unconfirmed = len(result.state.unconfirmed)
        streams.echo(f"  {where}{plural(unconfirmed, 'profile')} "
                     f"{noun(unconfirmed, 'is', 'are')} unconfirmed (a call's outcome is "
                     f"unknown); the next apply reads {noun(unconfirmed, 'it', 'them')} back "
                     "first.", err=True)
