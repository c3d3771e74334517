"""Chart.js configurations built on the server: a page embeds the JSON, app.js draws it, and the
same numbers are rendered as a table beside it (for screen readers and without JavaScript)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

# Distinguishable in both colour schemes and for the common colour-vision deficiencies (Okabe–Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def day_labels(days: Sequence[datetime]) -> list[str]:
    return [d.strftime("%d %b") for d in days]


def _datasets(series: Mapping[str, Sequence[float | None]], kind: str) -> list[dict[str, Any]]:
    return [
        {
            "label": name,
            "data": list(values),
            "backgroundColor": PALETTE[i % len(PALETTE)],
            "borderColor": PALETTE[i % len(PALETTE)],
            **({"fill": False, "tension": 0.2} if kind == "line" else {}),
        }
        for i, (name, values) in enumerate(series.items())
    ]


def chart(
    kind: str,
    label: str,
    x_label: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    stacked: bool = False,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "type": kind,
        "data": {"labels": list(labels), "datasets": _datasets(series, kind)},
        "options": dict(options or {}),
    }
    if stacked:
        config["options"]["scales"] = {"x": {"stacked": True}, "y": {"stacked": True, "beginAtZero": True}}
    return {"label": label, "x_label": x_label, "config": config}


def bar_chart(
    label: str,
    x_label: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    stacked: bool = False,
) -> dict[str, Any]:
    return chart("bar", label, x_label, labels, series, stacked=stacked)


def line_chart(
    label: str, x_label: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]]
) -> dict[str, Any]:
    return chart("line", label, x_label, labels, series)
