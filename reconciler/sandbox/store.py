"""The profiles the sandbox holds, per workspace and version, and the API's operations on them.

Every operation takes the store's one lock for its whole duration, so that concurrent
requests see each write whole; each returns an `Outcome` the HTTP layer only serialises.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .channels import (
    PHONE_CHANNELS,
    SINGLE_CHANNELS,
    TOKEN_CHANNELS,
    WEBPUSH,
    BadRequest,
    Channel,
    DeleteChannels,
    DeleteTokens,
    country_code,
    parse_channel_update,
    parse_data,
    stored_phone,
    with_default_status,
)
from .settings import Faults

NO_PROFILE = "incorrect/non existing distinct_id provided"
NO_CHANNEL = "Unable to delete channel since the channel does not exist"
MODIFIED = "Channel has been modified successfully"
SDK_UPDATED = "1 Record(s) updated successfully"
"""What Fyno's Node SDK test expects of a channel PATCH, against the doc's MODIFIED."""
CREATED = "Profile created successfully"
NO_USER = "Cannot delete non existing user"
OTHER_SUCCESS = "OK"
"""The text and status 202 of every successful write with `success_message=other`."""
DEFAULT_TIMEZONE = ("UTC", "+00:00")


@dataclass(frozen=True)
class Outcome:
    """An answer to one API request, and whether it changed the store."""

    status: int
    body: dict[str, Any]
    changed: bool = False


def error(message: str, status: int = 400, *, changed: bool = False) -> Outcome:
    return Outcome(status, {"_message": message, "status": "error"}, changed=changed)


def success(faults: Faults, message: str, status: int = 200, *, changed: bool = True) -> Outcome:
    """A write's success, its text and status as `Faults.success_message` says."""
    if faults.success_message == "other":
        message, status = OTHER_SUCCESS, 202
    return Outcome(status, {"_message": message, "status": "ok"}, changed=changed)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Profile:
    """One stored profile; `channel` holds only channels that have data."""

    distinct_id: str
    name: str | None = None
    channel: Channel = field(default_factory=dict)
    created_at: str = field(default_factory=_now)
    updated_at: str = ""

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at

    def touch(self) -> None:
        self.updated_at = _now()


def _copy(channel: Channel) -> Channel:
    # token lists and objects are mutable: never hand out the stored ones
    return {
        name: [dict(token) for token in data] if name in TOKEN_CHANNELS else data
        for name, data in channel.items()
    }


class Store:
    """Thread-safe profiles keyed by (WSID, version); live and test never see each other."""

    def __init__(self, data: object = None) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[tuple[str, str], dict[str, Profile]] = {}
        if data is not None:
            self.replace(data)

    # -- admin ------------------------------------------------------------------------------

    def replace(self, data: object) -> None:
        """Replace all data with `{WSID: {version: {distinct_id: channel}}}`; BadRequest if bad."""
        parsed = parse_data(data)
        profiles = {
            key: {pid: Profile(pid, channel=channel) for pid, channel in group.items()}
            for key, group in parsed.items()
        }
        with self._lock:
            self._profiles = profiles

    def dump(self) -> dict[str, dict[str, dict[str, Channel]]]:
        """Everything stored, in the shape `replace` takes."""
        result: dict[str, dict[str, dict[str, Channel]]] = {}
        with self._lock:
            for (wsid, version), group in sorted(self._profiles.items()):
                result.setdefault(wsid, {})[version] = {
                    pid: _copy(profile.channel) for pid, profile in group.items()
                }
        return result

    # -- API --------------------------------------------------------------------------------

    def get(self, wsid: str, version: str, distinct_id: str, faults: Faults) -> Outcome:
        with self._lock:
            profile = self._profiles.get((wsid, version), {}).get(distinct_id)
            if profile is None:
                return error(NO_PROFILE)
            channel = _copy(profile.channel)
            name, created_at, updated_at = profile.name, profile.created_at, profile.updated_at
        country = country_code(channel.get("sms"))
        timezone, offset = DEFAULT_TIMEZONE
        if faults.empty_channels == "empty":
            for single in SINGLE_CHANNELS:
                channel.setdefault(single, "")
            for tokens in TOKEN_CHANNELS:
                channel.setdefault(tokens, [])
        # the OpenAPI file's ProfileFetched, every required key in its example's order; the id
        # is a stable stand-in for Mongo's ObjectId
        profile_id = hashlib.sha1(f"{wsid}\0{version}\0{distinct_id}".encode()).hexdigest()[:24]
        body: dict[str, Any] = {
            "distinct_id": distinct_id,
            "name": name,
            "country_code": country,
            "timezone": timezone,
            "timezone_offset": offset,
            "created_at": created_at,
            "updated_at": updated_at,
            "status": 1,
            "id_list": [],
            "profile_id": profile_id,
            "version": version,
            "channel": channel,
            "properties": {},
            "channel_raw": {},
        }
        return Outcome(200, body)

    def create(self, wsid: str, version: str, body: object, faults: Faults) -> Outcome:
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        distinct_id = body.get("distinct_id")
        if not isinstance(distinct_id, str) or not distinct_id:
            raise BadRequest("distinct_id must be a non-empty string")
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise BadRequest("name must be a string")
        update = parse_channel_update(body["channel"]) if "channel" in body else {}
        with self._lock:
            group = self._profiles.setdefault((wsid, version), {})
            if distinct_id in group:
                return error(f"Distinct ID '{distinct_id}' already exists in the '{version}' "
                             "version of your workspace")
            profile = Profile(distinct_id, name=name)
            _merge(profile.channel, update, faults)
            group[distinct_id] = profile
        return success(faults, CREATED, 201)

    def patch_channel(
        self, wsid: str, version: str, distinct_id: str, body: object, faults: Faults
    ) -> Outcome:
        if not isinstance(body, dict) or "channel" not in body:
            raise BadRequest("request body must be an object with a channel object")
        update = parse_channel_update(body["channel"])
        with self._lock:
            profile = self._profiles.get((wsid, version), {}).get(distinct_id)
            if profile is None:
                return error(NO_PROFILE)
            _merge(profile.channel, update, faults)
            profile.touch()
        return success(faults, SDK_UPDATED if faults.success_message == "sdk" else MODIFIED)

    def delete_channel(
        self,
        wsid: str,
        version: str,
        distinct_id: str,
        request: DeleteChannels | DeleteTokens,
        faults: Faults,
    ) -> Outcome:
        with self._lock:
            profile = self._profiles.get((wsid, version), {}).get(distinct_id)
            if profile is None:
                # the doc says a 400 but not its message: the GET/PATCH one is the likeliest
                return error(NO_PROFILE)
            if isinstance(request, DeleteChannels):
                outcome = _delete_channels(profile.channel, request.names, faults)
            else:
                outcome = _delete_tokens(profile.channel, request, faults)
            if outcome.changed:
                profile.touch()
            return outcome

    def delete_profiles(self, wsid: str, version: str, body: object, faults: Faults) -> Outcome:
        ids = body.get("distinct_id") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise BadRequest("distinct_id must be a non-empty list of strings")
        with self._lock:
            group = self._profiles.get((wsid, version), {})
            deleted = sum(group.pop(distinct_id, None) is not None for distinct_id in set(ids))
        if not deleted:
            return error(NO_USER)
        return success(faults, f"{deleted} User(s) deleted successfully")


def _merge(channel: Channel, update: Channel, faults: Faults) -> None:
    """PATCH semantics (DOC): single values replaced, push/inapp tokens added to the list;
    phone numbers stored as `Faults.phone_format` says.

    A token already held meets `Faults.resend_token`, the API's UNKNOWN: update (replaced by
    the one sent) | duplicate | ignore (left as it was) | merge (the fields sent overwrite).
    """
    for name, data in update.items():
        if name in PHONE_CHANNELS:
            channel[name] = stored_phone(data, faults.phone_format)
            continue
        if name not in TOKEN_CHANNELS:
            channel[name] = data
            continue
        tokens: list[dict[str, Any]] = channel.setdefault(name, [])
        for sent in data:
            index = next((i for i, t in enumerate(tokens) if t["token"] == sent["token"]), None)
            if index is None or faults.resend_token == "duplicate":
                tokens.append(with_default_status(sent))
            elif faults.resend_token == "update":
                tokens[index] = with_default_status(sent)
            elif faults.resend_token == "merge":
                tokens[index] = {**tokens[index], **sent}
            # ignore: the held entry stays exactly as it was
        if not tokens:
            del channel[name]


def _delete_channels(channel: Channel, names: tuple[str, ...], faults: Faults) -> Outcome:
    present = [name for name in names if name in channel]
    if len(present) == len(names):
        for name in present:
            del channel[name]
        return success(faults, MODIFIED)
    # documented: a channel without data is a 400; what happens to the OTHER named
    # channels of the same request is UNKNOWN, so it is a switch
    if not present or faults.delete_empty == "fail-whole":
        return error(NO_CHANNEL)
    for name in present:
        del channel[name]
    if faults.delete_empty == "fail-partial":
        return error(NO_CHANNEL, changed=True)
    return success(faults, MODIFIED)


def _delete_tokens(channel: Channel, request: DeleteTokens, faults: Faults) -> Outcome:
    tokens = request.tokens
    held = {name: {t["token"] for t in channel.get(name, [])} for name in tokens}
    absent = any(token not in held[name] for name, wanted in tokens.items() for token in wanted)
    stored = channel.get(WEBPUSH)
    entries = stored if isinstance(stored, list) else []  # kept verbatim, whatever it is
    webpush = [entry.get("token") if isinstance(entry, dict) else entry for entry in entries]
    absent = absent or any(token not in webpush for token in request.webpush)
    if absent and faults.absent_token == "fail":
        return error(NO_CHANNEL)
    changed = False
    if request.webpush and entries:
        kept_webpush = [entry for entry, token in zip(entries, webpush, strict=True)
                        if token not in request.webpush]
        changed = len(kept_webpush) != len(entries)
        if kept_webpush:
            channel[WEBPUSH] = kept_webpush
        else:
            del channel[WEBPUSH]
    for name, wanted in tokens.items():
        if not wanted or name not in channel:
            continue
        kept = [t for t in channel[name] if t["token"] not in wanted]
        changed = changed or len(kept) != len(channel[name])
        if kept:
            channel[name] = kept
        else:
            del channel[name]
    return success(faults, MODIFIED, changed=changed)
