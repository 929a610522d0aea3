"""Fuzzing every file the tool reads back: the state, its backup, a saved plan, the ledger.

Each example copies a small valid arena (a state saved twice, so with a backup; a saved plan
computed against it; an audit ledger), damages one file and runs a command that reads it,
through the CLI. Damage is byte-level (flipped, inserted or deleted bytes, truncation) or
structural (a field given another type, a huge number, an empty, NUL or non-ASCII string or
key, a key removed, a key repeated), and a saved plan or a ledger record may be resealed
(checksum or hash recomputed) so that the damage reaches the checks behind them.

The property: the command succeeds or refuses cleanly (exit 1, a message naming the damaged
file), never with an internal error or a traceback, and a refusal leaves every file of the
arena byte-identical. `apply` of a saved plan goes to an HTTP server on 127.0.0.1 that
answers 401 to everything and counts requests: a plan refused must have made no request.

The number of examples comes from the hypothesis profile (tests/conftest.py):
    HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/test_fuzz_files.py
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reconciler.audit import AuditContext, AuditLedger
from reconciler.audit.ledger import ledger_path, record_hash
from reconciler.cli import cli
from reconciler.model import ChannelData, Token
from reconciler.plan import Change, CreateProfile, DeleteTokens, PatchChannels
from reconciler.plandoc import checksum
from reconciler.state import Begun, Doubt, Holds, LocalStateFile, Missing, Unchanged

WORKSPACE = "FYFUZZ0001"
CONFIG = f"""workspace: {WORKSPACE}
profiles:
  u-1001:
    email: alice@example.com
    sms: "+919879000000"
    push:
      - token: "fcm_token:abc"
        integration_id: IXXXXXXX
      - token: "apns_token:new"
        status: 0
  u-1002:
    whatsapp: "+14155550100"
  "ü-用户":
    email: "zoë@example.com"
"""
NO_PROXY = {"HTTP_PROXY": None, "HTTPS_PROXY": None, "ALL_PROXY": None, "http_proxy": None,
            "https_proxy": None, "all_proxy": None, "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost"}


# --- the arena and the server -------------------------------------------------------------------

class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers 401 to every request, as Fyno does to a wrong key, and counts them."""

    requests = 0

    def _refuse(self) -> None:
        type(self).requests += 1
        body = b'{"_message": "Invalid API key"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Arena:
    root: Path
    config: Path
    state: Path
    backup: Path
    plan: Path
    ledger: Path


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Arena:
    root = tmp_path_factory.mktemp("arena")
    state_path = root / "state" / f"{WORKSPACE}-live.json"
    backend = LocalStateFile(state_path)
    state = backend.load(WORKSPACE, "live")
    state.profiles.update({
        "u-1001": ChannelData(
            {"sms": "+919879000000", "email": "alice@old.example.com",
             "push": (Token("fcm_token:abc", "IXXXXXXX"), Token("apns_token:def", None, 0)),
             "inapp": (Token("u-1001"),)},
            {"webpush": [{"endpoint": "https://push.example.com/x", "n": 2**63}]}),
        "u-1002": ChannelData(),
        "ü-用户": ChannelData({"email": "zoe@example.com"}),
    })
    state = backend.save(state)
    state.unconfirmed.add("ü-用户")
    state.missing.add("u-1009")
    backend.save(state)
    config = root / "profiles.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    plan = root / "plan.json"
    result = CliRunner().invoke(cli, ["plan", str(config), "--state", str(state_path),
                                      "--out", str(plan)], env={"FYNO_WSID": None})
    assert result.exit_code == 0, result.output
    ledger = ledger_path(state_path.parent)
    context = AuditContext(actor="ci-bot", commit="abc123", plan_id="p-1",
                           workspace=WORKSPACE, version="live")
    with AuditLedger(ledger) as book:
        for distinct_id, email in (("u-1001", "alice@example.com"), ("ü-用户", "zoë@x.io"),
                                   ("u-1001", "carol@example.com")):
            book.append(context.entry(distinct_id, "patch_channel",
                                      request={"channel": {"email": email}}, status=200,
                                      message="Channel has been modified successfully",
                                      attempts=1, before={}, after={"email": email}))
    return Arena(root, config, state_path, state_path.with_name(state_path.name + ".backup"),
                 plan, ledger)


@pytest.fixture(scope="module")
def journaled(arena: Arena, tmp_path_factory: pytest.TempPathFactory) -> Arena:
    """The arena, plus the journal of a run killed mid-way: requests in doubt (with and
    without their call, as older journals have it), settled profiles, a missing one."""
    root = tmp_path_factory.mktemp("journaled") / "arena"
    shutil.copytree(arena.root, root)
    copy = Arena(root, *(root / path.relative_to(arena.root) for path in (
        arena.config, arena.state, arena.backup, arena.plan, arena.ledger)))
    backend = LocalStateFile(copy.state)
    token = Token("apns_token:def", None, 0)
    with backend.lock("apply"):
        state = backend.load(WORKSPACE, "live")
        log = backend.open_journal(state)
        for event in (
                Begun("u-1001", Doubt("ab" * 16, PatchChannels("u-1001", (
                    Change("email", "alice@old.example.com", "alice@example.com"),)))),
                Holds("u-1001", ChannelData({"email": "alice@example.com"})),
                Begun("u-1001", Doubt("cd" * 16, DeleteTokens("u-1001", (
                    Change("push", token, None),)))),
                Begun("u-1002", Doubt("ef" * 16, CreateProfile("u-1002", (
                    Change("whatsapp", None, "+14155550100"),)))),
                Unchanged("u-1002"), Begun("ü-用户"), Missing("u-1009")):
            log.record(event)
        log.close()
    assert backend.journal_path.exists()
    return copy


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under `directory` and the sha256 of its bytes."""
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


# --- damage -------------------------------------------------------------------------------------

Damage = Callable[[bytes], bytes]
INTERESTING_BYTES = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\x00", b"\xff", b"\xc3",
                     b"0", b"9", b"-", b"e", b"n", b" ", b"\n", b'"profiles":{},', b"\\u0000"]
INTERESTING_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 0.5, 1.0, 2**31, 2**52 + 1, 2**53, 2**63, 2**64 - 1, 2**64,
    -(2**63) - 1, 10**30, 1e308, "", " ", "x", "\x00", "a\x00b", "ü", "用户", "🎉", "e\u0301",
    "\u202e", "../x", "x" * 5000, "2026-01-01T00:00:00Z", "live", "test", "push", "sms",
    "sha256:" + "0" * 64, "00000000-0000-0000-0000-000000000000", [], {}, [None], [[]],
    {"token": "t"}, {"token": "t", "status": 1},
    {"token": "t", "status": 1, "integration_id": None},
]
INTERESTING_KEYS = ["", "\x00", "u\x00", "ü-用户", "u-1001", "profiles", "serial", "status",
                    "token", "email", "push", "hash", "seq", "checksum", "calls", "x"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _dumped(value: Any, ascii_only: bool, extra: tuple[tuple[Any, ...], str, Any, bool] | None,
            path: tuple[Any, ...] = ()) -> str:
    """JSON text of `value`; `extra` (object path, key, value, first) adds one more member to
    that object, before or after the others: a way to write a repeated key."""
    if isinstance(value, dict):
        members = [json.dumps(key, ensure_ascii=ascii_only) + ":"
                   + _dumped(item, ascii_only, extra, (*path, key)) for key, item in value.items()]
        if extra is not None and extra[0] == path:
            member = json.dumps(extra[1], ensure_ascii=ascii_only) + ":" + json.dumps(
                extra[2], ensure_ascii=ascii_only)
            members.insert(0 if extra[3] else len(members), member)
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dumped(item, ascii_only, extra, (*path, index))
                              for index, item in enumerate(value)) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def byte_damage(draw: st.DrawFn) -> Damage:
    kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "repeat"]))
    where = draw(st.floats(0, 1))
    length = draw(st.integers(1, 40))
    flip = draw(st.integers(1, 255))
    inserted = draw(st.sampled_from(INTERESTING_BYTES) | st.binary(min_size=1, max_size=8))

    def damage(data: bytes) -> bytes:
        at = int(where * len(data))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            return data[:at] + bytes([data[at] ^ flip]) + data[at + 1:]
        if kind == "insert":
            return data[:at] + inserted + data[at:]
        if kind == "delete":
            return data[:at] + data[at + length:]
        if kind == "repeat":
            return data[:at + length] + data[at:]
        return data[:at]
    return damage


@st.composite
def json_damage(draw: st.DrawFn, reseal: Callable[[Any], None] | None = None) -> Damage:
    """Structural damage to a JSON document; `reseal` recomputes its seal after, if drawn."""
    kind = draw(st.sampled_from(["replace", "remove", "rename", "repeat"]))
    choice = draw(st.floats(0, 1))
    value = draw(st.sampled_from(INTERESTING_VALUES))
    key = draw(st.sampled_from(INTERESTING_KEYS) | st.text(max_size=5))
    first = draw(st.booleans())
    ascii_only = draw(st.booleans())
    resealed = reseal is not None and draw(st.booleans())

    def damage(data: bytes) -> bytes:
        document = json.loads(data)
        paths = list(_paths(document))
        path = paths[min(int(choice * len(paths)), len(paths) - 1)]
        extra = None
        if kind == "replace" or not path:
            if path:
                _at(document, path[:-1])[path[-1]] = value
            else:
                document = value
        elif kind == "remove":
            parent = _at(document, path[:-1])
            del parent[path[-1]]
        elif kind == "rename" and isinstance(_at(document, path[:-1]), dict):
            parent = _at(document, path[:-1])
            parent[key] = parent.pop(path[-1])
        else:  # repeat a key of the object holding `path` (or the object itself)
            holder = path[:-1] if isinstance(_at(document, path[:-1]), dict) else path
            if isinstance(_at(document, holder), dict):
                repeated = path[-1] if holder == path[:-1] else key
                extra = (holder, repeated, value if first else _at(document, path), first)
        if resealed and reseal is not None and isinstance(document, dict):
            # Sealed over what a last-wins parser reads, as anyone recomputing it would.
            read = json.loads(_dumped(document, ascii_only, extra))
            if isinstance(read, dict):
                reseal(read)
                for name in ("checksum", "hash"):
                    if name in read and name in document:
                        document[name] = read[name]
        return _dumped(document, ascii_only, extra).encode()
    return damage


def _reseal_plan(document: Any) -> None:
    if isinstance(document, dict):
        document["checksum"] = checksum(document)


def _reseal_record(document: Any) -> None:
    if isinstance(document, dict):
        document["hash"] = record_hash(document)


@st.composite
def line_damage(draw: st.DrawFn) -> Damage:
    """Damage to one line of a JSON Lines file, or to the file as bytes."""
    if draw(st.booleans()):
        return draw(byte_damage())
    choice = draw(st.floats(0, 1))
    inner = draw(json_damage(_reseal_record))

    def damage(data: bytes) -> bytes:
        lines = data.split(b"\n")
        index = min(int(choice * (len(lines) - 1)), len(lines) - 2)
        lines[index] = inner(lines[index])
        return b"\n".join(lines)
    return damage


# --- running a command on a damaged copy --------------------------------------------------------

def _run(arena: Arena, target: Callable[[Arena], Path], damage: Damage,
         command: Callable[[Arena], list[str]], env: dict[str, str | None]
         ) -> tuple[int, str, Path, bytes]:
    """Copy the arena, damage one file, run `command` and check the common property; return
    the exit code, the output, the damaged file's path (gone by then) and its content."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "arena"
        shutil.copytree(arena.root, root)
        copy = Arena(root, *(root / path.relative_to(arena.root) for path in (
            arena.config, arena.state, arena.backup, arena.plan, arena.ledger)))
        damaged = target(copy)
        original = damaged.read_bytes()
        try:
            data = damage(original)
        except (ValueError, TypeError, KeyError, IndexError):  # damage made for another form
            data = original[: len(original) // 2]
        damaged.write_bytes(data)
        before = snapshot(root)
        with contextlib.chdir(root):
            result = CliRunner().invoke(cli, command(copy), env={
                "FYNO_API_KEY": "fuzz-key", "FYNO_WSID": None, "FYNO_VERSION": None,
                "RECONCILER_BACKEND": None, "NO_COLOR": "1", **NO_PROXY, **env})
        output = result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), output
        assert "internal error" not in output and "Traceback" not in output, output
        assert result.exit_code in (0, 1), output
        if result.exit_code == 1:
            assert snapshot(root) == before, output
        event(f"exit {result.exit_code}: " + _gist(output))
        return result.exit_code, output, damaged, data


def _gist(output: str) -> str:
    """The kind of an outcome, for hypothesis's statistics (--hypothesis-show-statistics)."""
    error = next((line for line in output.splitlines() if line.startswith("Error: ")), "")
    for mark in ("not valid JSON", "twice in one object", "edited after", "does not match",
                 "not a reconciler", "format_version", "not a valid saved plan", "is stale",
                 "another state", "answered 401", "records workspace", "has serial", "damaged",
                 "no audit ledger", "no checksum", "is for workspace"):
        if mark in error:
            return mark
    return error[:40]


def _error(output: str) -> str:
    """The error message of a run: what follows "Error: " (the rest of the output is the
    command's own, e.g. "Applying the saved plan FILE")."""
    _, found, error = output.partition("Error: ")
    return error if found else ""


# --- what an accepted file must be: an oracle written apart from the code under test ------------

class _Repeated(ValueError):
    pass


def _strict(data: bytes) -> Any:
    """The document, by the standard library, refusing repeated keys and non-JSON numbers;
    orjson too must read it (it refuses lone surrogates, which the standard library keeps)."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in items}) < len(items):
            raise _Repeated
        return dict(items)

    def constant(name: str) -> Any:
        raise ValueError(name)

    orjson.loads(data)
    return json.loads(data, object_pairs_hook=pairs, parse_constant=constant)


def _integer(value: Any, low: int, high: int) -> bool:
    return (not isinstance(value, bool) and isinstance(value, int | float)
            and float(value).is_integer() and low <= value <= high)


def _id(value: Any) -> bool:
    return isinstance(value, str) and value != "" and "\x00" not in value


def _ids(value: Any) -> bool:
    return isinstance(value, list) and all(map(_id, value)) and len(set(value)) == len(value)


def _token(value: Any) -> bool:
    return (isinstance(value, dict) and {"token", "status"} <= set(value)
            and set(value) <= {"token", "status", "integration_id"}
            and isinstance(value["token"], str) and value["token"] != ""
            and (value.get("integration_id") is None or isinstance(value["integration_id"], str))
            and not isinstance(value["status"], bool) and value["status"] in (0, 1))


def _channel(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    for name, item in value.items():
        if name in ("push", "inapp"):
            good = isinstance(item, list) and bool(item) and all(map(_token, item))
        elif name in ("sms", "whatsapp", "voice", "email", "slack", "discord", "teams"):
            good = isinstance(item, str) and item != ""
        else:
            good = True  # a channel the reconciler does not manage: kept as read
        if not good:
            return False
    return True


def believable_state(data: bytes) -> bool:
    """Whether a state file holds exactly what the issue says a state may hold."""
    try:
        document = _strict(data)
    except ValueError:
        return False
    required = {"format_version", "lineage", "serial", "workspace", "version", "profiles"}
    return (isinstance(document, dict) and required <= set(document)
            and set(document) <= required | {"unconfirmed", "missing", "doubts"}
            and _integer(document["format_version"], 1, 1)
            and isinstance(document["lineage"], str)
            and re.fullmatch("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                             document["lineage"]) is not None
            and _integer(document["serial"], 1, 2**52)
            and isinstance(document["workspace"], str)
            and re.fullmatch("[^\x00-\x1f\x7f-\x9f\u2028\u2029/\\\\]{1,50}",
                             document["workspace"]) is not None
            and document["version"] in ("live", "test")
            and isinstance(document["profiles"], dict)
            and all(map(_id, document["profiles"]))
            and all(map(_channel, document["profiles"].values()))
            and _ids(document.get("unconfirmed", [])) and _ids(document.get("missing", []))
            and _doubts(document.get("doubts", {}), document.get("unconfirmed", [])))


def _doubt(value: Any) -> bool:
    changes = value.get("changes") if isinstance(value, dict) else None
    return (isinstance(value, dict)
            and set(value) <= {"request_id", "operation", "changes", "forget"}
            and isinstance(value.get("request_id"), str)
            and re.fullmatch("[0-9a-f]{32}", value["request_id"]) is not None
            and value.get("operation") in ("create_profile", "patch_channel", "readd_tokens",
                                           "delete_tokens", "delete_channels")
            and isinstance(value.get("forget", False), bool)
            and isinstance(changes, list) and bool(changes)
            and all(isinstance(change, dict) and set(change) == {"channel", "before", "after"}
                    and (change["before"], change["after"]) != (None, None)
                    for change in changes))


def _doubts(value: Any, unconfirmed: Any) -> bool:
    return (isinstance(value, dict) and all(map(_id, value)) and set(value) <= set(unconfirmed)
            and all(isinstance(items, list) and items and all(map(_doubt, items))
                    for items in value.values()))


def believable_journal(data: bytes, lineage: str, serial: int) -> bool:
    """Whether a journal a command folded in (or rightly ignored) holds only what a journal
    may: a header for the state's version, then whole events. Ignored are a torn last line
    (no newline after it), empty lines, a journal with no whole event, and one for an older
    serial of the same lineage (a save folded it already)."""
    whole = [line for line in data.split(b"\n")[:-1] if line]
    if len(whole) < 2:
        return True  # nothing recorded, or not even the header: nothing to fold
    try:
        header, *events = [_strict(line) for line in whole]
    except ValueError:
        return False
    if not (isinstance(header, dict) and set(header) == {"journal", "lineage", "serial"}):
        return False
    if header["lineage"] == lineage and _integer(header["serial"], 0, serial - 1):
        return True
    if (header["journal"], header["lineage"], header["serial"]) != (1, lineage, serial) or \
            isinstance(header["journal"], bool) or isinstance(header["serial"], bool):
        return False
    for line in events:
        if not isinstance(line, dict) or len(set(line) & {"begin", "settle", "missing"}) != 1:
            return False
        name = line.get("begin", line.get("settle", line.get("missing")))
        if not _id(name) or set(line) - {"begin", "settle", "missing", "data", "doubt"}:
            return False
        if "doubt" in line and not ("begin" in line and _doubt(line["doubt"])):
            return False
        if "data" in line and not ("settle" in line and (
                line["data"] is None or _channel(line["data"]))):
            return False
    return True


def believable_plan(data: bytes) -> bool:
    """Whether a saved plan is one `plan --out` could have written, as far as ids, limits and
    the checksum go (the rest of its form is the schema's)."""
    try:
        document = _strict(data)
    except ValueError:
        return False
    return (isinstance(document, dict) and document.get("checksum") == checksum(document)
            and _integer(document.get("format_version"), 2, 2)
            and isinstance(document.get("workspace"), str)
            and not set("/\\\x00") & set(document["workspace"])
            and isinstance(document.get("state"), dict)
            and _integer(document["state"].get("serial"), 0, 2**53 - 1)
            and isinstance(document.get("calls"), list)
            and all(isinstance(call, dict) and _id(call.get("distinct_id"))
                    for call in document["calls"])
            and isinstance(document.get("targets"), list) and all(map(_id, document["targets"]))
            and all(map(_id, document.get("forget", []))))


FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
STATE_COMMANDS = {
    "plan": lambda a, s: ["plan", str(a.config), "--state", str(s)],
    "state list": lambda a, s: ["state", "list", "--state", str(s)],
    "state show": lambda a, s: ["state", "show", "u-1001", "--state", str(s)],
    "apply": lambda a, s: ["apply", str(a.config), "--state", str(s), "--auto-approve"],
}
# Errors from past reading the file: the API refusing the key, a profile the state lacks.
POST_READ = ("answered 401", "the state does not manage a profile")


@FUZZ
@given(damage=byte_damage() | json_damage(), command=st.sampled_from(sorted(STATE_COMMANDS)))
def test_damaged_state_is_used_or_refused_naming_it(arena: Arena, api: str, damage: Damage,
                                                    command: str) -> None:
    code, output, path, data = _run(arena, lambda a: a.state, damage,
                              lambda a: STATE_COMMANDS[command](a, a.state),
                              {"FYNO_BASE_URL": api})
    if code == 1:
        error = _error(output)
        assert f"state {path}" in error or any(mark in error for mark in POST_READ), output
    if code == 0 or any(mark in _error(output) for mark in POST_READ):
        assert believable_state(data), output  # believed: must be believable


@FUZZ
@given(damage=byte_damage() | json_damage(), command=st.sampled_from(["plan", "state list"]))
def test_damaged_backup_restored_as_the_state_is_used_or_refused_naming_it(
        arena: Arena, api: str, damage: Damage, command: str) -> None:
    # The tool never reads the backup itself: a user restores it, so read it as a state.
    code, output, path, data = _run(arena, lambda a: a.backup, damage,
                              lambda a: STATE_COMMANDS[command](a, a.backup),
                              {"FYNO_BASE_URL": api})
    if code == 1:
        assert f"state {path}" in _error(output), output
    else:
        assert believable_state(data), output


@FUZZ
@given(damage=byte_damage() | json_damage(_reseal_plan), command=st.sampled_from(
    ["show", "show --format json", "apply"]))
def test_damaged_saved_plan_is_shown_or_refused_before_any_call(
        arena: Arena, api: str, damage: Damage, command: str) -> None:
    def args(a: Arena) -> list[str]:
        if command == "apply":
            return ["apply", str(a.plan), "--state", str(a.state)]
        return ["show", str(a.plan), *command.split()[1:]]

    requests = _Refusing.requests
    code, output, path, data = _run(arena, lambda a: a.plan, damage, args, {"FYNO_BASE_URL": api})
    if command == "apply":
        assert code == 1, output  # nothing can be applied: the API refuses the key
    error = _error(output)
    if code == 1 and not any(mark in error for mark in POST_READ):
        # Refused before any call, naming the plan (or the state it does not fit).
        assert str(path) in error or f"state {path.parent / 'state'}" in error, output
        assert _Refusing.requests == requests, output
    if code == 0 or any(mark in error for mark in POST_READ):
        assert believable_plan(data), output


@FUZZ
@given(damage=line_damage())
def test_damaged_ledger_is_verified_or_refused_naming_it(arena: Arena, damage: Damage) -> None:
    code, output, path, data = _run(arena, lambda a: a.ledger, damage,
                                    lambda a: ["audit", "verify", "--state-dir",
                                               str(a.ledger.parent)], {})
    if code == 1:
        assert str(path) in _error(output), output
    else:  # an intact chain holds no line that a reader could read two ways
        assert not any(_repeats_a_key(line) for line in data.split(b"\n")), output


JOURNAL_COMMANDS = {
    "plan": lambda a: ["plan", str(a.config), "--state", str(a.state)],
    "state list": lambda a: ["state", "list", "--state", str(a.state)],
    "state rm": lambda a: ["state", "rm", "u-1002", "--state", str(a.state)],
}


@FUZZ
@given(damage=line_damage(), command=st.sampled_from(sorted(JOURNAL_COMMANDS)))
def test_damaged_journal_is_folded_or_refused_naming_it(journaled: Arena, damage: Damage,
                                                       command: str) -> None:
    code, output, path, data = _run(journaled, lambda a: LocalStateFile(a.state).journal_path,
                                    damage, JOURNAL_COMMANDS[command], {})
    if code == 1:
        assert str(path) in _error(output), output
    else:
        state = json.loads(journaled.state.read_bytes())
        assert believable_journal(data, state["lineage"], state["serial"]), output


def _repeats_a_key(line: bytes) -> bool:
    try:
        _strict(line)
    except _Repeated:
        return True
    except ValueError:
        pass
    return False
