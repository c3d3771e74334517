"""SPEC §5 SMS segment counting (GSM-7 vs UCS-2), as invariants over any text (Hypothesis)."""

from __future__ import annotations

import math
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.channels.sms_segments import GSM7_BASIC, GSM7_EXTENSION, count_segments
from tests.channels.sms.fake_twilio import twilio_segments

SURROGATES: tuple[Literal["Cs"]] = ("Cs",)  # lone surrogates are no text
basic = st.sampled_from(sorted(GSM7_BASIC))
extended = st.sampled_from(sorted(GSM7_EXTENSION))
gsm_text = st.text(st.one_of(basic, basic, basic, extended), max_size=700)
any_text = st.text(max_size=400) | gsm_text
outside_gsm = st.characters(exclude_characters=GSM7_BASIC | GSM7_EXTENSION, exclude_categories=SURROGATES)


@given(any_text, st.characters(exclude_categories=SURROGATES))
def test_appending_a_character_never_lowers_the_count(text: str, extra: str) -> None:
    assert count_segments(text + extra).segments >= count_segments(text).segments


@given(st.text(st.one_of(basic, extended), min_size=1, max_size=160))
def test_a_gsm_text_of_at_most_160_septets_is_one_segment(text: str) -> None:
    count = count_segments(text)
    assert count.encoding == "GSM-7"
    assert count.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    if count.units <= 160:
        assert count.segments == 1


@given(any_text)
def test_parts_hold_their_capacity_and_waste_at_most_one_unit_each(text: str) -> None:
    count = count_segments(text)
    if not text:
        assert (count.encoding, count.segments) == ("GSM-7", 0)
        return
    single = 160 if count.encoding == "GSM-7" else 70
    if count.units <= single:
        assert count.segments == 1
    else:
        per = count.per_segment
        # Never fewer parts than the units need; an escape or surrogate pair is never split, so
        # a part loses at most one unit.
        assert math.ceil(count.units / per) <= count.segments <= math.ceil(count.units / (per - 1))


@given(any_text, outside_gsm, st.integers(min_value=0, max_value=400))
def test_one_character_outside_gsm7_makes_the_whole_text_ucs2(text: str, odd: str, where: int) -> None:
    mixed = text[:where] + odd + text[where:]
    count = count_segments(mixed)
    assert count.encoding == "UCS-2" and count.units == len(mixed.encode("utf-16-le")) // 2


no_pairs = st.characters(max_codepoint=0xFFFF, exclude_categories=SURROGATES, exclude_characters=GSM7_EXTENSION)


@given(st.text(basic, max_size=700) | st.text(no_pairs, max_size=400))
def test_without_pairs_to_keep_together_the_count_is_twilios(text: str) -> None:
    """No escape pair (GSM-7) or surrogate pair (UCS-2) to keep in one part: plain division."""
    if text:
        assert count_segments(text).segments == twilio_segments(text)
