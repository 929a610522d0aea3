"""The diff: a pure function from (desired, recorded) channel data to the calls that converge it.

Rules (product.md, "Semantics of a plan"), per managed profile:
- a channel recorded but not desired is deleted whole: Option 1, one call per profile;
- a token channel that keeps a desired token but has recorded tokens no longer desired: those
  tokens are deleted by Option 2, one call per profile;
- desired single values that differ from the record, and desired tokens not recorded, are
  sent in one PATCH per profile; a PATCH never sends a token the record already holds;
- a token recorded with another integration_id/status is deleted with the Option 2 call and
  sent again, with its new fields, by a re-add PATCH after it: Fyno documents that a PATCH
  inserts tokens rather than updating them;
- a recorded profile that is no longer desired loses every managed channel (Option 1) and is
  then forgotten.
Option 1 and Option 2 never share a call. Calls sort by distinct_id, then PATCH, Option 2,
Option 1, re-add: a replacement token exists before the old one goes, and a changed token is
re-added only once its old entry is gone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from reconciler.model import EMPTY, SINGLE_VALUE_CHANNELS, TOKEN_CHANNELS, ChannelData, Token
from reconciler.ownership import (
    EVERYTHING_EXCLUSIVE,
    NO_ENTRIES,
    WEBPUSH,
    Entry,
    Ownership,
    effective,
    webpush_removals,
)
from reconciler.plan import (
    Call,
    Change,
    DeleteChannels,
    DeleteTokens,
    PatchChannels,
    ReAddTokens,
)
from reconciler.values import same_value


def diff(
    desired: Mapping[str, ChannelData],
    recorded: Mapping[str, ChannelData],
    targets: Collection[str] = (),
    missing: Collection[str] = (),
    ownership: Ownership = EVERYTHING_EXCLUSIVE,
    managed: Mapping[str, frozenset[Entry]] | None = None,
) -> tuple[Call, ...]:
    """Every call needed, in their fixed order; only `targets` when any are given.

    Profiles known to be `missing` on the server get no call: the caller warns about them.
    A profile whose `ownership` policy is not exclusive is diffed against what its
    declaration means under that policy (`ownership.effective`), given the entries of it
    that calls of ours wrote (`managed`).
    """
    if targets:
        wanted = set(targets)
        ids = sorted(wanted.intersection(desired) | wanted.intersection(recorded))
    else:
        # A state's ids come sorted, and a configuration's mostly: the sort finds them in
        # runs, a few times faster than sorting a set of them.
        ids = list(recorded)
        ids += [distinct_id for distinct_id in desired if distinct_id not in recorded]
        ids.sort()
    if missing:
        ids = [distinct_id for distinct_id in ids if distinct_id not in missing]
    calls: list[Call] = []
    if ownership.is_exclusive:  # every profile's policy: the loop below, without asking
        for distinct_id in ids:
            want = desired.get(distinct_id)
            if want is None:
                calls.extend(_forget(distinct_id, recorded[distinct_id]))
            elif want.channels != (have := recorded.get(distinct_id, EMPTY)).channels:
                calls.extend(diff_profile(distinct_id, want, have))
        return tuple(calls)
    for distinct_id in ids:
        want = desired.get(distinct_id)
        have = recorded.get(distinct_id, EMPTY)
        policy = ownership.policy(distinct_id)
        if not policy.is_exclusive:
            goal = effective(want or EMPTY, have, policy,
                             (managed or {}).get(distinct_id, NO_ENTRIES))
            profile_calls = diff_profile(distinct_id, goal, have,
                                         policy.shared_token_channels)
            if webpush := webpush_removals(have, policy):
                # In a call of its own: the web SDK sends {"webpush": [...]} alone, and
                # whether the API takes it beside push or inapp is not documented.
                profile_calls.append(DeleteTokens(distinct_id, tuple(
                    Change(WEBPUSH, key, None) for key in webpush)))
                profile_calls.sort(key=Call.sort_key)
            calls.extend(profile_calls)
        elif want is None:
            calls.extend(_forget(distinct_id, have))
        elif want.channels != have.channels:
            calls.extend(diff_profile(distinct_id, want, have))
    return tuple(calls)


def forgotten_without_calls(
    desired: Mapping[str, ChannelData],
    recorded: Mapping[str, ChannelData],
    calls: Collection[Call],
    targets: Collection[str] = (),
) -> tuple[str, ...]:
    """Recorded profiles no longer declared that no call of `calls` forgets: those holding no
    channel, and those whose policy keeps entries others wrote (their calls, if any, delete
    only what is ours). They leave the state once their calls are done."""
    wanted = set(targets)
    forgotten_by_a_call = {call.distinct_id for call in calls
                           if isinstance(call, DeleteChannels) and call.forget}
    return tuple(sorted(
        distinct_id for distinct_id in recorded
        if distinct_id not in desired and distinct_id not in forgotten_by_a_call
        and (not wanted or distinct_id in wanted)
    ))


def diff_profile(distinct_id: str, want: ChannelData, have: ChannelData,
                 by_name: Collection[str] = ()) -> list[Call]:
    """The calls for one managed profile, in their fixed order. Token channels in `by_name`
    are shared with other writers: their tokens are deleted by name (Option 2) even when none
    is left, since a whole-channel delete would take tokens written since the last read."""
    if not have.channels:
        return _all_new(distinct_id, want)
    patch: list[Change] = []
    drop_tokens: list[Change] = []
    drop_channels: list[Change] = []
    readd: list[Change] = []
    for channel in SINGLE_VALUE_CHANNELS:
        new = want.channels.get(channel)
        old = have.channels.get(channel)
        assert new is None or isinstance(new, str)
        assert old is None or isinstance(old, str)
        if new is not None and (old is None or not same_value(channel, new, old)):
            patch.append(Change(channel, old, new))
        elif new is None and old is not None:
            drop_channels.append(Change(channel, old, None))
    for channel in TOKEN_CHANNELS:
        wanted = _tokens(want, channel)
        held = _tokens(have, channel)
        if not wanted and channel not in by_name:
            drop_channels.extend(Change(channel, token, None) for token in held)
            continue
        held_by_name = {token.token: token for token in held}
        twice = _held_twice(held) if len(held_by_name) != len(held) else set()
        wanted_by_name: dict[str, Token] = {}
        for token in wanted:
            if token.token in twice:
                continue  # deleted below, by name, with every copy; the next plan adds it
            old_token = held_by_name.get(token.token)
            if old_token is None:
                patch.append(Change(channel, None, token))
            elif old_token != token:
                readd.append(Change(channel, old_token, token))
            wanted_by_name[token.token] = token
        for token in held:
            kept = wanted_by_name.get(token.token)
            if kept is None:
                drop_tokens.append(Change(channel, token, None))
            elif kept != token:
                drop_tokens.append(Change(channel, token, kept))
    calls: list[Call] = []
    if patch:
        calls.append(PatchChannels(distinct_id, tuple(patch)))
    if drop_tokens:
        calls.append(DeleteTokens(distinct_id, tuple(drop_tokens)))
    if drop_channels:
        calls.append(DeleteChannels(distinct_id, tuple(drop_channels)))
    if readd:
        calls.append(ReAddTokens(distinct_id, tuple(readd)))
    return calls


def _all_new(distinct_id: str, want: ChannelData) -> list[Call]:
    """The calls for a profile with nothing recorded: one PATCH adding every entry, in the
    order `diff_profile` gives them. Every profile of a first plan takes this path, so it
    skips the comparisons that find nothing to compare with."""
    changes = [Change(channel, None, value) for channel in SINGLE_VALUE_CHANNELS
               if isinstance(value := want.channels.get(channel), str)]
    changes += [Change(channel, None, token) for channel in TOKEN_CHANNELS
                for token in _tokens(want, channel)]
    return [PatchChannels(distinct_id, tuple(changes))] if changes else []


def _forget(distinct_id: str, have: ChannelData) -> list[Call]:
    """A profile that left the configuration: delete its managed channels, then forget it."""
    changes = [
        Change(channel, old, None)
        for channel in (*SINGLE_VALUE_CHANNELS, *TOKEN_CHANNELS)
        for old in _entries(have, channel)
    ]
    if not changes:
        return []
    return [DeleteChannels(distinct_id, tuple(changes), forget=True)]


def _held_twice(held: tuple[Token, ...]) -> set[str]:
    """Token strings the server holds more than once (a PATCH re-sending a token may add a
    copy, an UNKNOWN of the API). Deleting a token by name removes every copy, so such a
    token is deleted now and added once again by the next plan (or by apply's re-check)."""
    seen: set[str] = set()
    twice: set[str] = set()
    for token in held:
        (twice if token.token in seen else seen).add(token.token)
    return twice


def _tokens(data: ChannelData, channel: str) -> tuple[Token, ...]:
    value = data.channels.get(channel, ())
    assert isinstance(value, tuple)
    return value


def _entries(data: ChannelData, channel: str) -> tuple[str | Token, ...]:
    value = data.channels.get(channel)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value
