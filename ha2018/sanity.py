"""Checks that V and M learned what C needs, written into the run record.

V: reconstruction error on held-out frames (rollouts V never trained on) against the mean-frame baseline (the
best constant image of the same frames). A V that outputs one image for every frame scores a ratio near 1.

The dream: the uniform random policy and the constant policies (no-op, left, right) in M's dream, next to their
survival in the real game on the evaluation seeds; and left against right (the game is left-right symmetric).
A dream in which trivial policies live far longer than in the game is one CMA-ES will exploit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ha2018.data import atomic_target
from ha2018.dream import BatchedDream, dream_survival
from ha2018.vae import ConvVAE, to_frames, to_input

CONSTANT_ACTIONS = {"noop": 0.0, "left": -1.0, "right": 1.0}  # M's action; the game thresholds it at +-1/3
# CarRacing's trivial policies in the real game: (steer, gas, brake) held every step (ours, not the paper's)
CARRACING_CONSTANT_ACTIONS = {"noop": (0.0, 0.0, 0.0), "gas": (0.0, 1.0, 0.0), "left_gas": (-1.0, 1.0, 0.0),
                              "right_gas": (1.0, 1.0, 0.0)}


# ---- V ----------------------------------------------------------------------------------------------------
@torch.no_grad()
def reconstruct(vae: ConvVAE, frames: np.ndarray, batch: int = 500) -> np.ndarray:
    """uint8 frames (N, 64, 64, 3) -> V's reconstructions from mu, float (N, 3, 64, 64) in [0, 1]."""
    device = next(vae.parameters()).device
    parts = [vae.decode(vae.encode(to_input(torch.from_numpy(frames[i:i + batch]).to(device)))[0]).cpu()
             for i in range(0, len(frames), batch)]
    return torch.cat(parts).numpy()


def vae_check(vae: ConvVAE, frames: np.ndarray, max_ratio: float) -> dict[str, float | bool]:
    """Per-image summed squared error (the units of V's loss) of V's reconstructions and of the frames' mean
    image, on held-out frames (N, 64, 64, 3) uint8."""
    x = to_input(torch.from_numpy(frames)).numpy()
    error = float(((reconstruct(vae, frames) - x) ** 2).sum(axis=(1, 2, 3)).mean())
    baseline = float(((x.mean(axis=0, keepdims=True) - x) ** 2).sum(axis=(1, 2, 3)).mean())
    ratio = error / max(baseline, 1e-12)
    return {"vae_heldout_error": error, "vae_mean_frame_error": baseline, "vae_error_ratio": ratio,
            "vae_check_passed": bool(ratio <= max_ratio)}


def reconstruction_figure(vae: ConvVAE, frames: np.ndarray, path: Path, columns: int = 8) -> None:
    """Held-out frames (top row) over V's reconstructions (bottom row): half of them the frames farthest from
    the mean image (fireballs and monsters close by), half evenly spaced; 2x upscaled PNG."""
    import imageio.v2 as imageio
    x = frames.astype(np.float32)
    far = np.argsort(((x - x.mean(axis=0)) ** 2).sum(axis=(1, 2, 3)))[::-1][:columns // 2]
    spaced = np.linspace(0, len(frames) - 1, columns - len(far)).astype(int)
    chosen = frames[np.concatenate([np.sort(far), spaced])]
    recon = to_frames(torch.from_numpy(reconstruct(vae, chosen))).numpy()
    grid = np.concatenate([np.concatenate(list(chosen), axis=1), np.concatenate(list(recon), axis=1)], axis=0)
    with atomic_target(path) as tmp:
        imageio.imwrite(tmp, grid.repeat(2, axis=0).repeat(2, axis=1))


# ---- the dream --------------------------------------------------------------------------------------------
def policy_action(name: str, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(n, 1) actions of a named trivial policy for M."""
    if name == "random":
        return torch.rand((n, 1), generator=generator, device=device) * 2 - 1
    return torch.full((n, 1), CONSTANT_ACTIONS[name], device=device)


@torch.no_grad()
def dream_baselines(dream: BatchedDream, trials: int, max_steps: int, seed: int) -> dict[str, float]:
    """Mean dream survival of the random and constant policies over ``trials`` dreams each."""
    scores = {}
    for name in ("random", *CONSTANT_ACTIONS):
        dream.generator.manual_seed(seed)
        act = lambda rows, name=name: policy_action(name, len(rows), dream.generator, dream.device)  # noqa: E731
        scores[name] = float(dream_survival(dream, act, trials, max_steps).mean())
    return scores


def judge_dream(dream_scores: dict[str, float], real_scores: dict[str, float], max_ratio: float,
                max_asymmetry: float) -> dict:
    """The dream check: every trivial policy's dream survival at most ``max_ratio`` x its real survival, and
    left and right within ``max_asymmetry`` of each other (relative to their mean). Returns the record, with
    ``passed`` and the ``reasons`` it failed."""
    ratios = {name: dream_scores[name] / max(real_scores[name], 1.0) for name in dream_scores}
    left, right = dream_scores["left"], dream_scores["right"]
    asymmetry = abs(left - right) / max((left + right) / 2, 1.0)
    reasons = [f"{name} lives {ratio:.1f}x longer in the dream ({dream_scores[name]:.0f}) than in the game "
               f"({real_scores[name]:.0f})" for name, ratio in ratios.items() if ratio > max_ratio]
    if asymmetry > max_asymmetry:
        reasons.append(f"left ({left:.0f}) and right ({right:.0f}) differ by {asymmetry:.0%} in the dream")
    record = {f"{name}_{where}": scores[name] for name in dream_scores
              for where, scores in (("dream", dream_scores), ("real", real_scores))}
    record.update(max_ratio=max(ratios.values()), left_right_asymmetry=asymmetry, passed=not reasons,
                  reasons=reasons)
    return record
