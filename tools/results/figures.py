"""results/figures/<paper>_<task>.png: our curves (one line per seed) over the authors' mean ± std band."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tools.results.curves import band, official_curves
from tools.results.published import PUBLISHED
from tools.results.tables import Comparison


def plot_comparison(paper: str, task: str, comparisons: list[Comparison], out_dir: Path,
                    published: Path = PUBLISHED) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bench = comparisons[0].bench
    xmax = max(max(r.xs, default=r.budget) for c in comparisons for r in c.records)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=80)
    if bench.curve:
        grid = np.linspace(0, xmax, 60)
        mean, std, n = band(official_curves(bench.curve, bench.curve_method, published), bench.curve_task(task),
                             grid)
        if n:
            where = "" if bench.curve_task(task) == task else f", {bench.curve_task(task)}"
            ax.plot(grid, mean, color="gray", label=f"authors ({n} seeds{where})")
            ax.fill_between(grid, mean - std, mean + std, color="gray", alpha=0.25)
    for index, c in enumerate(comparisons):
        color = f"C{index}"
        for seed_index, rec in enumerate(c.records):
            label = f"ours: {c.method} ({c.preset}), {len(c.records)} seed(s)" if seed_index == 0 else None
            ax.plot(rec.xs, rec.ys, color=color, alpha=0.8, marker="." if len(rec.xs) < 5 else None, label=label)
    ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    ax.set_xlabel(f"budget ({bench.unit})")
    ax.set_ylabel("episode return")
    ax.set_title(f"{paper}: {task}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{paper}_{task}.png"
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
