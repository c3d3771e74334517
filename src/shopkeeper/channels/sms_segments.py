"""How many SMS segments a text costs: GSM-7 (160 characters alone, 153 per part when split,
extension characters counting twice) or UCS-2 (70 alone, 67 per part, counted in UTF-16 code
units so an emoji takes two) — the way carriers bill."""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class SegmentCount:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int


def count_segments(text: str) -> SegmentCount:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        septets = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        if septets <= 160:
            return SegmentCount("GSM-7", septets, 1 if septets else 0, 160)
        # A segment boundary never splits an escape pair: fill parts of 153 septets greedily.
        segments, used = 1, 0
        for ch in text:
            width = 2 if ch in GSM7_EXTENSION else 1
            if used + width > 153:
                segments, used = segments + 1, 0
            used += width
        return SegmentCount("GSM-7", septets, segments, 153)
    units = len(text.encode("utf-16-le")) // 2
    if units <= 70:
        return SegmentCount("UCS-2", units, 1, 70)
    # Nor does it split a surrogate pair.
    segments, used = 1, 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > 67:
            segments, used = segments + 1, 0
        used += width
    return SegmentCount("UCS-2", units, segments, 67)
