"""The signature a receiver checks: it verifies the exact body under the endpoint's secret, and
refuses a changed body, another secret, a malformed header and a stale timestamp (a replay)."""

from __future__ import annotations

import pytest

from shopkeeper.channels.webhook.signature import SignatureError, compute, sign, verify

SECRET = "whsec_" + "ab" * 32
BODY = b'{"id":"evt_1","type":"send.status_changed"}'
T = 1_772_366_400  # 2026-03-01 12:00 UTC


def test_a_signed_body_verifies_and_gives_its_timestamp() -> None:
    header = sign(SECRET, T, BODY)
    assert header.startswith(f"t={T},v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, header, BODY, tolerance=300, now=T + 10) == T


def test_a_changed_body_another_secret_or_a_stale_timestamp_is_refused() -> None:
    header = sign(SECRET, T, BODY)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(SECRET, header, BODY.replace(b"evt_1", b"evt_2"), now=T)
    with pytest.raises(SignatureError, match="no signature matches"):
        verify("whsec_" + "cd" * 32, header, BODY, now=T)
    # A captured request replayed later: the signature is genuine, the timestamp too old.
    with pytest.raises(SignatureError, match="tolerance 300"):
        verify(SECRET, header, BODY, tolerance=300, now=T + 301)
    # The timestamp is signed too: moving it forward breaks the signature.
    forged = header.replace(f"t={T}", f"t={T + 1000}")
    with pytest.raises(SignatureError, match="no signature matches"):
        verify(SECRET, forged, BODY, now=T + 1000)


@pytest.mark.parametrize(
    "header",
    [None, "", "v1=abc", f"t={T}", f"t=soon,v1={'0' * 64}", "garbage"],
)
def test_a_missing_or_malformed_header_is_refused(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify(SECRET, header, BODY, now=T)


def test_while_rotating_a_receiver_accepts_the_old_and_the_new_secret() -> None:
    new = "whsec_" + "ef" * 32
    assert verify([SECRET, new], sign(new, T, BODY), BODY, now=T) == T
    assert verify([SECRET, new], sign(SECRET, T, BODY), BODY, now=T) == T
    # A header with several v1 values matches when any of them does.
    both = f"t={T},v1={compute('whsec_other', T, BODY)},v1={compute(new, T, BODY)}"
    assert verify(new, both, BODY, now=T) == T
