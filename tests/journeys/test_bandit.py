"""`channel: auto` learns the better channel: Thompson sampling over engagement, by expected value
p × value − cost, measured by its regret over 10,000 simulated sends (SPEC §8, issue 7)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pytest

from shopkeeper.journeys.bandit import Arm, Counts, choose, estimate, shrink

# The simulated workspace: true engagement rate and cost per message. SMS engages best but
# costs most; the best by expected value (value 1) is WhatsApp: 0.28 against SMS's 0.25.
WORLD = {"email": (0.10, 0.001), "sms": (0.40, 0.15), "whatsapp": (0.30, 0.02)}
VALUE = 1.0
SENDS = 10_000
CUSTOMERS = 500
# Outcomes arrive 100 sends later, as opens do: meanwhile a send counts as a miss.
DELAY = 100

Policy = Callable[[str, Mapping[str, Counts], Mapping[str, Counts], random.Random], str]


def thompson(customer: str, population: Mapping[str, Counts], own: Mapping[str, Counts], rng: random.Random) -> str:
    arms = [Arm(c, VALUE, WORLD[c][1], population[c], own[c]) for c in WORLD]
    return choose(arms, rng)[0].channel


def engagement_only(
    customer: str, population: Mapping[str, Counts], own: Mapping[str, Counts], rng: random.Random
) -> str:
    """The same learner, blind to cost: it finds the channel customers engage with most."""
    arms = [Arm(c, VALUE, 0.0, population[c], own[c]) for c in WORLD]
    return choose(arms, rng)[0].channel


def cheapest(customer: str, population: Mapping[str, Counts], own: Mapping[str, Counts], rng: random.Random) -> str:
    return min(WORLD, key=lambda c: WORLD[c][1])


def uniform(customer: str, population: Mapping[str, Counts], own: Mapping[str, Counts], rng: random.Random) -> str:
    return rng.choice(sorted(WORLD))


@dataclass
class Run:
    regret: float  # Σ (best expected value − expected value of the channel chosen)
    best_share_last_1000: float


def expected_value(channel: str, rates: Mapping[str, float]) -> float:
    return rates[channel] * VALUE - WORLD[channel][1]


def simulate(policy: Policy, *, seed: int = 7, rates_of: Callable[[int], Mapping[str, float]] | None = None) -> Run:
    """SENDS sends to customers drawn at random; each outcome is drawn from the true rate of the
    channel chosen (for that customer, when rates differ by customer) and learnt DELAY sends later."""
    rng, world = random.Random(seed), random.Random(seed + 1)
    base = {c: rate for c, (rate, _) in WORLD.items()}
    rates = [rates_of(i) if rates_of else base for i in range(CUSTOMERS)]
    population = {c: [0, 0] for c in WORLD}
    own: dict[int, dict[str, list[int]]] = defaultdict(lambda: {c: [0, 0] for c in WORLD})
    pending: list[tuple[int, int, str, bool]] = []
    regret, best_late = 0.0, 0
    for i in range(SENDS):
        who = world.randrange(CUSTOMERS)
        channel = policy(
            str(who),
            {c: Counts(*population[c]) for c in WORLD},
            {c: Counts(*own[who][c]) for c in WORLD},
            rng,
        )
        values = {c: expected_value(c, rates[who]) for c in WORLD}
        regret += max(values.values()) - values[channel]
        if i >= SENDS - 1000 and values[channel] == max(values.values()):
            best_late += 1
        population[channel][0] += 1
        own[who][channel][0] += 1
        pending.append((i + DELAY, who, channel, world.random() < rates[who][channel]))
        while pending and pending[0][0] <= i:
            _, whom, sent_on, engaged = pending.pop(0)
            if engaged:
                population[sent_on][1] += 1
                own[whom][sent_on][1] += 1
    return Run(regret, best_late / 1000)


def finds_the_better_channel(run: Run, baseline: Run) -> bool:
    """The bar: at most a fifth of the regret of choosing at random, and the best channel in
    most of the last 1,000 sends."""
    return run.regret < 0.2 * baseline.regret and run.best_share_last_1000 > 0.6


@pytest.fixture(scope="module")
def random_choice() -> Run:
    return simulate(uniform)


def test_the_policy_finds_the_channel_of_best_expected_value(random_choice: Run) -> None:
    run = simulate(thompson)
    # Seed 7: regret 94 against 720 for random choice; WhatsApp in 72% of the last 1,000 sends.
    assert finds_the_better_channel(run, random_choice), (run, random_choice)


@pytest.mark.parametrize("policy", [cheapest, engagement_only, uniform])
def test_the_bar_fails_a_policy_that_ignores_value_or_cost(policy: Policy, random_choice: Run) -> None:
    assert not finds_the_better_channel(simulate(policy), random_choice)


def test_the_simulation_is_deterministic_for_a_seed() -> None:
    assert simulate(thompson, seed=3) == simulate(thompson, seed=3)


def test_a_customers_own_history_pays_where_customers_differ() -> None:
    """A third of the customers read email and ignore WhatsApp: learning per customer finds them,
    the population's estimate alone cannot."""

    def rates_of(i: int) -> Mapping[str, float]:
        if i % 3 == 0:
            return {"email": 0.60, "sms": 0.40, "whatsapp": 0.05}
        return {c: rate for c, (rate, _) in WORLD.items()}

    def population_only(
        customer: str, population: Mapping[str, Counts], own: Mapping[str, Counts], rng: random.Random
    ) -> str:
        return thompson(customer, population, {c: Counts() for c in WORLD}, rng)

    learning = simulate(thompson, rates_of=rates_of)
    blind = simulate(population_only, rates_of=rates_of)
    assert learning.regret < 0.7 * blind.regret, (learning, blind)


def test_a_new_customer_gets_the_populations_estimate() -> None:
    assert shrink(0.3, Counts()) == pytest.approx(0.3)
    # Ten of their own sends, none engaged, halve it (the population is worth ten sends).
    assert shrink(0.3, Counts(trials=10)) == pytest.approx(0.15)
    assert shrink(0.3, Counts(trials=10, successes=10)) == pytest.approx(0.65)


def test_draws_narrow_as_evidence_grows_and_take_a_numpy_generator() -> None:
    arm_new = Arm("email", 1.0, 0.0)
    arm_known = Arm("email", 1.0, 0.0, Counts(trials=10_000, successes=2_000))
    generator = np.random.default_rng(1)
    new = [estimate(arm_new, generator).p for _ in range(500)]
    known = [estimate(arm_known, generator).p for _ in range(500)]
    assert np.std(new) > 0.2
    assert np.std(known) < 0.01
    assert np.mean(known) == pytest.approx(0.2, abs=0.005)


def test_expected_value_is_probability_times_value_minus_cost() -> None:
    e = estimate(Arm("sms", 10.0, 0.5, Counts(trials=1_000_000, successes=250_000)), random.Random(1))
    assert e.expected_value == pytest.approx(e.p * 10.0 - 0.5)
    assert e.expected_value == pytest.approx(2.0, abs=0.02)


def test_choose_needs_an_arm() -> None:
    with pytest.raises(ValueError):
        choose([], random.Random(1))
