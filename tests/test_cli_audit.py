"""`reconciler audit` and `audit verify` through the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from reconciler.audit import AuditContext, AuditLedger
from reconciler.cli import cli


def ledger(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    context = AuditContext(actor="ci-bot", commit="abc123", plan_id="p-1",
                           workspace="FY1", version="live")
    with AuditLedger(state_dir / "audit.jsonl") as book:
        for distinct_id, email in (("u-1", "a@x.io"), ("u-2", "b@x.io"), ("u-1", "c@x.io")):
            book.append(context.entry(
                distinct_id, "patch_channel", request={"channel": {"email": email}},
                status=200, message="Channel has been modified successfully", attempts=1,
                before={}, after={"email": email}))
    return state_dir


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_audit_lists_records_filtered_by_profile(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    code, output = run("audit", "--state-dir", str(state_dir), "--profile", "u-1")
    assert code == 0
    assert output.count("u-1") == 2 and "u-2" not in output
    assert "ci-bot" in output and "patch_channel" in output


def test_audit_formats_json_and_csv(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    code, output = run("audit", "--state-dir", str(state_dir), "--format", "json")
    assert code == 0
    records = [json.loads(line) for line in output.splitlines()]
    assert [record["seq"] for record in records] == [1, 2, 3]
    code, output = run("audit", "--state-dir", str(state_dir), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [row["distinct_id"] for row in rows] == ["u-1", "u-2", "u-1"]


def test_audit_since_a_future_date_shows_nothing(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    code, output = run("audit", "--state-dir", str(state_dir), "--since", "2999-01-01")
    assert code == 0 and output == ""


def test_audit_verify_passes_and_names_the_first_edited_record(tmp_path: Path) -> None:
    state_dir = ledger(tmp_path)
    code, output = run("audit", "verify", "--state-dir", str(state_dir))
    assert code == 0 and "3 records, chain intact" in output
    path = state_dir / "audit.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace("b@x.io", "mallory@x.io")
    path.write_text("\n".join(lines) + "\n")
    code, output = run("audit", "verify", "--state-dir", str(state_dir))
    assert code == 1
    assert "audit.jsonl:2" in output and "edited" in output


def test_audit_without_a_ledger_says_so(tmp_path: Path) -> None:
    code, output = run("audit", "--state-dir", str(tmp_path))
    assert code == 1 and "no audit ledger" in output
