"""Which published numbers each paper's runs are compared with: one entry per benchmark of a paper."""
from __future__ import annotations

from dataclasses import dataclass

PAPERS = ("ha2018", "planet", "dreamer_v1", "dreamer_v2", "dreamer_v3")
TITLES = {
    "ha2018": "World Models (Ha & Schmidhuber 2018)",
    "planet": "PlaNet (Hafner et al. 2019)",
    "dreamer_v1": "Dreamer (Hafner et al. 2020)",
    "dreamer_v2": "DreamerV2 (Hafner et al. 2021)",
    "dreamer_v3": "DreamerV3 (Hafner et al. 2023/2025)",
}


@dataclass(frozen=True)
class Benchmark:
    name: str                      # heading in the tables
    prefix: str                    # our task names start with it
    unit: str                      # budget unit of our runs and of the curve file: env_steps | frames
    curve: str | None = None       # official curve file (under results/published/official/)
    curve_method: str | None = None
    csv: str | None = None         # CSV with the paper's final numbers
    csv_benchmark: str = ""        # rows whose benchmark starts with this
    csv_method: str = ""           # rows of this method are "the paper's number"
    max_budget: float | None = None  # runs above this budget belong to a later benchmark of the paper
    aggregate: str | None = None   # "human" (Atari), "task_mean" (DMC), "crafter"
    references: tuple[str, ...] = ()  # atari_reference_scores.csv sources for "human", first wins
    curve_prefix: str | None = None  # the curve file names our tasks with this prefix instead of ``prefix``

    def curve_task(self, task: str) -> str:
        """Our task's name in the curve file (a state-based run read against the authors' pixel curve)."""
        return self.curve_prefix + task[len(self.prefix):] if self.curve_prefix else task


# random / human_gamer of the DreamerV2 and Atari57 aggregates (the paper computes them from baselines.json);
# James Bond's stored human score is a flagged data issue, so it comes from the paper's Table K.1.
ATARI_DV2_REFS = ("danijar/dreamerv2", "DreamerV2 paper Table K.1")
ATARI100K_REFS = ("eloialonso/iris",)  # Atari100k normalisers (26 games)

# The small presets of PlaNet, Dreamer and DreamerV2 learn from DMC states (no published state curves of theirs).
STATE_SMALL = "DMC proprioceptive (small preset)"

BENCHMARKS: dict[str, tuple[Benchmark, ...]] = {
    "ha2018": (),  # CarRacing and Doom have their own tables (see tables.ha2018_sections)
    "planet": (
        Benchmark("DMC visual", "dmc_", "env_steps", csv="planet_dmc.csv", csv_benchmark="DMC",
                  csv_method="PlaNet (pixels)", aggregate="task_mean"),
        Benchmark(STATE_SMALL, "dmcproprio_", "env_steps", aggregate="task_mean"),
    ),
    "dreamer_v1": (
        Benchmark("DMC visual", "dmc_", "env_steps", "dreamer/dreamer.json", "dreamer", "dreamer_v1_dmc.csv",
                  "DMC visual (pixels", "Dreamer", aggregate="task_mean"),
        Benchmark(STATE_SMALL + ", beside the authors' pixel curve", "dmcproprio_", "env_steps",
                  "dreamer/dreamer.json", "dreamer", aggregate="task_mean", curve_prefix="dmc_"),
    ),
    "dreamer_v2": (
        Benchmark("Atari 55 games", "atari_", "frames", "dreamerv2/atari-dreamerv2.json", "dreamerv2",
                  "dreamer_v2_atari.csv", "Atari 55 games", "DreamerV2", aggregate="human",
                  references=ATARI_DV2_REFS),
        Benchmark("DMC visual (appendix curves)", "dmc_", "env_steps", "dreamerv2/dmc-vision-dreamerv2.json",
                  "dreamerv2", aggregate="task_mean"),
        Benchmark(STATE_SMALL + ", beside the authors' pixel curve", "dmcproprio_", "env_steps",
                  "dreamerv2/dmc-vision-dreamerv2.json", "dreamerv2", aggregate="task_mean", curve_prefix="dmc_"),
    ),
    "dreamer_v3": (
        Benchmark("Atari100k", "atari_", "frames", "dreamerv3/atari100k-dreamerv3.json.gz", "dreamerv3",
                  "dreamer_v3_atari100k.csv", "Atari100k", "DreamerV3", max_budget=400_000, aggregate="human",
                  references=ATARI100K_REFS),
        Benchmark("Atari57 (200M frames)", "atari_", "frames", "dreamerv3/atari57-dreamerv3.json.gz", "dreamerv3",
                  aggregate="human", references=ATARI_DV2_REFS),
        Benchmark("DMC proprioceptive", "dmcproprio_", "env_steps", "dreamerv3/dmc_proprio-dreamerv3.json.gz",
                  "dreamerv3", "dreamer_v3_dmc.csv", "DMC proprioceptive", "DreamerV3", aggregate="task_mean"),
        Benchmark("DMC visual", "dmc_", "env_steps", "dreamerv3/dmc_vision-dreamerv3.json.gz", "dreamerv3",
                  "dreamer_v3_dmc.csv", "DMC visual", "DreamerV3", aggregate="task_mean"),
        Benchmark("Crafter", "crafter_", "env_steps", csv="dreamer_v3_other.csv", csv_benchmark="Crafter",
                  csv_method="DreamerV3", aggregate="crafter"),
        Benchmark("Minecraft Diamond", "minecraft_", "env_steps", "dreamerv3/minecraft_diamond-dreamerv3.json.gz",
                  "dreamerv3", "dreamer_v3_other.csv", "Minecraft Diamond", "DreamerV3"),
    ),
}


HA2018_TASKS = ("carracing", "doom_take_cover")  # Ha2018 has its own tables (no Benchmark entries)


def known_task(paper: str, task: str, budget: float) -> bool:
    """Whether a run of ``task`` has a place in the paper's tables."""
    return task in HA2018_TASKS if paper == "ha2018" else benchmark_of(paper, task, budget) is not None


def benchmark_of(paper: str, task: str, budget: float) -> Benchmark | None:
    """The paper's benchmark a run of ``task`` at ``budget`` is compared with (None: unknown task)."""
    for bench in BENCHMARKS.get(paper, ()):
        if task.startswith(bench.prefix) and (bench.max_budget is None or budget <= bench.max_budget):
            return bench
    return None
