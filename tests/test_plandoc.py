"""The saved-plan document's masked lines: the fast path agrees with the one masking rule."""

from __future__ import annotations

import orjson
import pytest

from reconciler.mask import mask_change_json
from reconciler.model import Token
from reconciler.plan import Change, DeleteTokens, PatchChannels
from reconciler.plandoc import masked_call_line

VALUES = {"email": "alice@example.com", "sms": "+919879000000", "whatsapp": "+15550001111",
          "voice": "+441234567890", "slack": "U0123456789", "discord": "123456789012345678",
          "teams": "https://example.webhook.office.com/x"}
TOKENS = [Token("fcm_token:abcdef0123456789"), Token("apns_token:zz", "I1", 0),
          Token("u-1001", None, 0), Token("x:y", "INT-2", 1)]
CHANGES = ([Change(channel, None, value) for channel, value in VALUES.items()]
           + [Change(channel, value, None) for channel, value in VALUES.items()]
           + [Change(channel, None, token) for channel in ("push", "inapp") for token in TOKENS]
           + [Change(channel, token, None) for channel in ("push", "inapp") for token in TOKENS]
           + [Change("email", "u1@example.com", "u2@example.com"),  # masks alike: fingerprints
              Change("push", TOKENS[0], TOKENS[0]._replace(status=0)),
              Change("webpush", '{"endpoint": "https://push.example/abc"}', None)])


@pytest.mark.parametrize("change", CHANGES, ids=lambda change: f"{change.channel}{change.action}")
def test_a_masked_line_masks_each_change_as_mask_change_json_does(change: Change) -> None:
    kind = DeleteTokens if change.channel == "webpush" else PatchChannels
    line = orjson.loads(masked_call_line(kind("u-1", (change,))))
    expected = mask_change_json(change.to_json(compact=True))
    (masked,) = line["changes"]
    assert masked == expected  # fingerprints too: their key is the same within a process
    assert list(masked) == list(expected)  # the members in the same order
    for value in VALUES.values():
        assert value not in str(masked)
