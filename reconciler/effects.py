"""What a successful call does to a profile's channel data, as Fyno documents it.

`apply` records `after_call(before, call)` once the API has answered 2xx, and aims each
profile at `target(recorded, calls)`: where the plan's calls lead. When an answer leaves
doubt, the profile is read back and the calls still needed are planned again from the
server's truth toward the same target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.model import ChannelData, ChannelValue, Token
from reconciler.ownership import NO_ENTRIES, WEBPUSH, Entry, webpush_key
from reconciler.plan import Call, CreateProfile, DeleteChannels, DeleteTokens, PatchChannels
from reconciler.values import canonical


def after_call(data: ChannelData, call: Call) -> ChannelData:
    """Single values replaced, tokens added or updated by token string, deletes applied.

    A PATCH (and a re-add, which is one) puts each token it sends in place of an entry with
    the same token string: planned PATCHes send only tokens the profile does not hold, and an
    older saved plan that re-sends one is read back by the executor. A created profile holds
    exactly what its create sent.
    """
    if isinstance(call, CreateProfile):
        data = ChannelData()
    channels: dict[str, ChannelValue] = dict(data.channels)
    if isinstance(call, PatchChannels | CreateProfile):
        for change in call.changes:
            if isinstance(change.after, Token):
                channels[change.channel] = _put_token(channels.get(change.channel, ()),
                                                      change.after)
            elif change.after is not None:
                channels[change.channel] = change.after
    elif isinstance(call, DeleteTokens):
        if any(change.channel == WEBPUSH for change in call.changes):
            return ChannelData(channels, _without_webpush(data.unmanaged, call))
        for channel, names in call.body().items():
            held = _tokens(channels.get(channel))
            kept = tuple(token for token in held if token.token not in names)
            if kept:
                channels[channel] = kept
            else:
                channels.pop(channel, None)
    elif isinstance(call, DeleteChannels):
        for channel in call.channels():
            channels.pop(channel, None)
    return ChannelData(channels, data.unmanaged)


def written_by(call: Call) -> frozenset[Entry]:
    """The entries a call writes if it lands: they become managed (`reconciler.ownership`)."""
    if not isinstance(call, PatchChannels | CreateProfile):
        return NO_ENTRIES
    return frozenset(
        (change.channel, change.after.token) if isinstance(change.after, Token)
        else (change.channel, canonical(change.channel, change.after))
        for change in call.changes if change.after is not None)


def _without_webpush(unmanaged: Mapping[str, Any], call: DeleteTokens) -> dict[str, Any]:
    """The undocumented channels once `call` deleted the web push tokens it names."""
    gone = {change.before for change in call.changes}
    held = unmanaged.get(WEBPUSH)
    kept = [item for item in held if webpush_key(
        item.get("token") if isinstance(item, dict) else item) not in gone] if isinstance(
        held, list) else held
    result = {key: value for key, value in unmanaged.items() if key != WEBPUSH}
    if kept:
        result[WEBPUSH] = kept
    return result


def target(recorded: ChannelData, calls: Iterable[Call]) -> ChannelData:
    """Where `calls` lead from `recorded`: the channel data a profile should end with."""
    data = recorded
    for call in calls:
        data = after_call(data, call)
    return data


def _put_token(value: ChannelValue, token: Token) -> tuple[Token, ...]:
    tokens = _tokens(value)
    for index, held in enumerate(tokens):
        if held.token == token.token:
            return (*tokens[:index], token, *tokens[index + 1:])
    return (*tokens, token)


def _tokens(value: ChannelValue | None) -> tuple[Token, ...]:
    return value if isinstance(value, tuple) else ()
