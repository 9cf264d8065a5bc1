"""Ha 2018 figures: our CMA-ES fitness by generation over the authors' own training logs, and the Doom
temperature table (virtual and actual score against tau) as a figure, ours beside the paper's.

The authors' logs (``results/published/official/ha2018/*.hist.json.gz``, format in SOURCES.md): one row per
generation ``[generation, seconds, mean, min, max, std, sigma, mean length, max length]``; ``hist_best``: one
row per evaluation ``[generation, seconds, "improvement", d, "curr", score, "prev", p, "best", b]``. Doom's
fitness is the dream survival at their code's temperature (1.25); CarRacing's is the real score.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from tools.results.metrics import mean_std
from tools.results.ours import Record
from tools.results.published import PUBLISHED, paper_rows

LOGS = {"doom_take_cover": "doomrnn", "carracing": "carracing"}
FITNESS = {"doom_take_cover": "dream survival (steps)", "carracing": "real score"}


def authors_log(task: str, kind: str = "hist", published: Path = PUBLISHED) -> list[list]:
    """The authors' per-generation (``hist``) or per-evaluation (``hist_best``) rows of a task ([] if absent)."""
    path = published / "official" / "ha2018" / f"{LOGS[task]}.cma.16.64.{kind}.json.gz"
    if not path.exists():
        return []
    with gzip.open(path, "rt") as f:
        return json.load(f)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_cmaes(task: str, records: list[Record], out_dir: Path, published: Path = PUBLISHED) -> Path | None:
    """results/figures/ha2018_<task>_cmaes.png: population mean fitness per generation, ours over theirs."""
    ours = [r for r in records if r.task == task and r.extra.get("cma_generation")]
    hist = authors_log(task, "hist", published)
    if not ours or not hist:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=80)
    gens = np.array([row[0] for row in hist])
    ax.plot(gens, [row[2] for row in hist], color="gray", label="authors: population mean")
    ax.plot(gens, [row[4] for row in hist], color="gray", alpha=0.4, lw=0.7, label="authors: population best")
    best = authors_log(task, "hist_best", published)
    if best:
        ax.plot([row[0] for row in best], [row[5] for row in best], "k.", ms=3, label="authors: evaluated mean")
    for index, r in enumerate(sorted(ours, key=lambda r: (r.preset, r.seed, r.extra.get("temperature") or 0))):
        tau = f", τ {r.extra['temperature']:g}" if r.extra.get("temperature") is not None else ""
        ax.plot(r.extra["cma_generation"], r.extra["cma_mean"], color=f"C{index}",
                label=f"ours: {r.preset}, seed {r.seed}{tau}")
    ax.set_xscale("log")
    ax.set_xlabel("CMA-ES generation")
    ax.set_ylabel(f"fitness: {FITNESS[task]}")
    note = " (authors at their code's τ 1.25)" if task == "doom_take_cover" else ""
    ax.set_title(f"ha2018 {task}: CMA-ES by generation{note}", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, plt, out_dir / f"ha2018_{task}_cmaes.png")


def plot_temperature(records: list[Record], out_dir: Path, published: Path = PUBLISHED) -> Path | None:
    """results/figures/ha2018_doom_take_cover_temperature.png: virtual and actual score against tau."""
    doom = [r for r in records if r.task == "doom_take_cover" and r.extra.get("temperature") is not None]
    rows = [r for r in paper_rows("ha2018", published) if r.file == "ha2018_doom_temperature.csv"
            and r.temperature is not None and "training-time" not in r.method]
    if not doom or not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(7, 3), dpi=80, sharey=True)
    for ax, where, key in ((axes[0], "virtual", "dream_score"), (axes[1], "actual", None)):
        pub = sorted((r.temperature, r.mean, r.std or 0) for r in rows if where in r.metric)
        ax.errorbar(*zip(*[(t, m) for t, m, _ in pub]), yerr=[s for *_, s in pub], fmt="o-", color="gray",
                    capsize=2, label="paper")
        for index, preset in enumerate(sorted({r.preset for r in doom}, reverse=True)):  # presets never pooled
            runs = [r for r in doom if r.preset == preset and (key is None or key in r.extra)]
            taus = sorted({float(r.extra["temperature"]) for r in runs})
            ours = [mean_std([float(r.extra[key]) if key else r.score for r in runs
                              if float(r.extra["temperature"]) == t]) for t in taus]
            ax.errorbar(taus, [m for m, _, _ in ours], yerr=[s for _, s, _ in ours], fmt="s-", color=f"C{index}",
                        capsize=2, label=f"ours, {preset} (mean ± std over runs)")
        ax.set_xlabel("temperature τ")
        ax.set_title(f"{where} score" + (" (in M's dream)" if key else " (real game)"), fontsize=9)
    axes[0].set_ylabel("steps survived")
    randoms = [float(r.extra["random_policy_score"]) for r in doom if "random_policy_score" in r.extra]
    if randoms:
        axes[1].axhline(np.mean(randoms), color="C3", ls=":", label="random policy (ours)")
    axes[1].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, plt, out_dir / "ha2018_doom_take_cover_temperature.png")


def _save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def ha2018_figures(records: list[Record], out_dir: Path, published: Path = PUBLISHED) -> list[Path]:
    paths = [plot_cmaes(task, records, out_dir, published) for task in LOGS]
    paths.append(plot_temperature(records, out_dir, published))
    return [p for p in paths if p is not None]
