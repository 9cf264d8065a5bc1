"""Score arithmetic: mean and std over seeds, human normalisation, the Crafter score."""
from __future__ import annotations

import math
from statistics import median

CRAFTER_ACHIEVEMENTS = (
    "collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling", "collect_stone",
    "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant", "make_iron_pickaxe",
    "make_iron_sword", "make_stone_pickaxe", "make_stone_sword", "make_wood_pickaxe", "make_wood_sword",
    "place_furnace", "place_plant", "place_stone", "place_table", "wake_up",
)  # the 22 achievements of Crafter (Hafner 2021)


def mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean, population std (ddof 0, as numpy and the authors' scripts use) and count."""
    if not values:
        return math.nan, math.nan, 0
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)), len(values)


def human_normalized(score: float, random: float, human: float) -> float:
    """(score - random) / (human - random): 0 = random policy, 1 = human gamer."""
    return (score - random) / (human - random)


def mean_and_median(values: list[float]) -> tuple[float, float]:
    return sum(values) / len(values), median(values)


def crafter_success_rates(episodes: list[dict[str, int]]) -> dict[str, float]:
    """Percent of episodes in which each achievement was unlocked at least once (missing key = 0)."""
    if not episodes:
        raise ValueError("no episodes")
    return {name: 100.0 * sum(1 for ep in episodes if ep.get(name, 0) >= 1) / len(episodes)
            for name in CRAFTER_ACHIEVEMENTS}


def crafter_score(success_rates: dict[str, float] | list[float]) -> float:
    """Crafter score S = exp(mean_i ln(1 + s_i)) - 1 over the 22 success rates s_i in percent."""
    rates = list(success_rates.values()) if isinstance(success_rates, dict) else list(success_rates)
    if len(rates) != len(CRAFTER_ACHIEVEMENTS):
        raise ValueError(f"Crafter score needs {len(CRAFTER_ACHIEVEMENTS)} success rates, got {len(rates)}")
    if any(not 0 <= r <= 100 for r in rates):
        raise ValueError("success rates must be percentages in [0, 100]")
    return math.exp(sum(math.log1p(r) for r in rates) / len(rates)) - 1


def crafter_score_from_counts(unlocked: dict[str, int], episodes: int) -> float:
    """The Crafter score from ``unlocked[name]`` = number of episodes that unlocked ``name`` out of ``episodes``."""
    if episodes <= 0:
        raise ValueError("no episodes")
    return crafter_score({name: 100.0 * unlocked.get(name, 0) / episodes for name in CRAFTER_ACHIEVEMENTS})
