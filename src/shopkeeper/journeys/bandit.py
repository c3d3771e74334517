"""Thompson sampling for `channel: auto`, with no database: Beta posteriors over engagement, one
draw per channel, and the channel of highest expected value p × value − cost.

Two levels of evidence. The workspace's counts give the population's engagement rate θ, drawn
from Beta(1 + successes, 1 + misses): the draw is the exploration, wide while the workspace knows
little and narrowing as its sends accumulate. The customer's own counts then move that estimate
as if θ were worth `customer_weight` sends of theirs:

    p = (customer_weight × θ + customer successes) / (customer_weight + customer trials)

so a new customer gets the population's estimate, and a customer who never opens email drifts
away from it after a handful of sends. (Drawing the customer's rate from Beta(kθ + s, k(1−θ) + f)
instead would keep every new customer's choice nearly random however much the workspace knows:
regret that never stops growing.)

A trial is counted when the channel is chosen and a success when the customer engages, so a
send not (yet) engaged counts as a miss: pessimistic for the latest sends of a channel, which
is the side to err on when a message may never be opened.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Rng = random.Random | np.random.Generator

# How many of a customer's own sends the population's estimate is worth.
CUSTOMER_WEIGHT = 10.0
# Beta(1, 1): before any send, every engagement rate is as likely as any other.
PRIOR = (1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Counts:
    """Sends on which the channel was chosen (trials), engaged (successes), and failed outright
    (bounced, complained, failed: a subset of the misses, kept to explain the figures)."""

    trials: int = 0
    successes: int = 0
    failures: int = 0

    @property
    def misses(self) -> int:
        return max(self.trials - self.successes, 0)


@dataclass(frozen=True, slots=True)
class Arm:
    channel: str
    value: float
    cost: float
    population: Counts = field(default_factory=Counts)
    customer: Counts = field(default_factory=Counts)


@dataclass(frozen=True, slots=True)
class Estimate:
    channel: str
    p: float  # the sampled engagement probability this choice used
    mean: float  # the posterior mean, for display: what the draw is scattered around
    value: float
    cost: float

    @property
    def expected_value(self) -> float:
        return self.p * self.value - self.cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "p": round(self.p, 4),
            "mean": round(self.mean, 4),
            "value": self.value,
            "cost": self.cost,
            "expected_value": round(self.expected_value, 4),
        }


def beta_draw(rng: Rng, a: float, b: float) -> float:
    if isinstance(rng, random.Random):
        return rng.betavariate(a, b)
    return float(rng.beta(a, b))


def population_parameters(counts: Counts, prior: tuple[float, float] = PRIOR) -> tuple[float, float]:
    return prior[0] + counts.successes, prior[1] + counts.misses


def shrink(theta: float, customer: Counts, customer_weight: float = CUSTOMER_WEIGHT) -> float:
    """The customer's rate given the population's θ and their own sends."""
    return (customer_weight * theta + customer.successes) / (customer_weight + customer.trials)


def estimate(
    arm: Arm, rng: Rng, *, customer_weight: float = CUSTOMER_WEIGHT, prior: tuple[float, float] = PRIOR
) -> Estimate:
    a, b = population_parameters(arm.population, prior)
    theta = beta_draw(rng, a, b)
    return Estimate(
        channel=arm.channel,
        p=shrink(theta, arm.customer, customer_weight),
        mean=shrink(a / (a + b), arm.customer, customer_weight),
        value=arm.value,
        cost=arm.cost,
    )


def choose(
    arms: Sequence[Arm], rng: Rng, *, customer_weight: float = CUSTOMER_WEIGHT, prior: tuple[float, float] = PRIOR
) -> tuple[Estimate, list[Estimate]]:
    """The arm of highest sampled expected value (the first on a tie), and every arm's estimate
    in the order given."""
    if not arms:
        raise ValueError("choose needs at least one arm")
    estimates = [estimate(arm, rng, customer_weight=customer_weight, prior=prior) for arm in arms]
    best = max(estimates, key=lambda e: e.expected_value)  # max keeps the first of equals
    return best, estimates
