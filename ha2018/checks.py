"""Up-front checks of a resolved config: every count and budget must make sense before any stage runs
(``controller.generations=0`` or ``evaluate.trials=0`` would otherwise finish with a stale or empty result)."""
from __future__ import annotations

import math

from omegaconf import DictConfig, OmegaConf

from tools.config import ConfigError

AT_LEAST_ONE = ("threads", "workers", "collect.rollouts", "collect.max_frames", "collect.repeat_max", "vae.z_size",
                "vae.batch_size", "vae.epochs", "mdnrnn.hidden", "mdnrnn.mixtures", "mdnrnn.batch_size",
                "mdnrnn.seq_len", "mdnrnn.epochs", "controller.rollouts", "controller.generations",
                "controller.eval_every", "controller.eval_rollouts", "controller.max_steps", "evaluate.trials",
                "evaluate.dream_trials", "evaluate.video_steps", "checks.dream_trials", "iterate.rounds",
                "iterate.max_rounds", "iterate.rollouts")
AT_LEAST_ZERO = ("seed", "collect.min_length", "vae.kl_tolerance", "vae.max_batches", "mdnrnn.lr_min",
                 "controller.weight_decay", "vae.holdout_rollouts", "iterate.mdnrnn_epochs")
POSITIVE = ("vae.lr", "mdnrnn.done_weight", "mdnrnn.lr", "mdnrnn.grad_clip", "controller.sigma_init",
            "controller.temperature", "checks.vae_max_ratio", "checks.dream_max_ratio",
            "checks.dream_max_asymmetry")
CHOICES = {"collect.policy": ("random_model", "repeat_uniform"), "mdnrnn.batching": ("episodes", "stream"),
           "controller.inputs": ("zh", "zch"), "controller.train_in": ("dream", "real"),
           "controller.done_mode": ("threshold", "sample"), "checks.refuse_bad_dream": (True, False),
           "collect.full_episode": (True, False)}


def check_config(config: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value cannot run."""
    for keys, low, strict in ((AT_LEAST_ONE, 1, False), (AT_LEAST_ZERO, 0, False), (POSITIVE, 0, True)):
        for key in keys:
            value = OmegaConf.select(config, key)
            if not _number(value) or value < low or (strict and value == low):
                raise ConfigError(f"{key} must be a number {'>' if strict else '>='} {low}, got {value!r}")
    for key, allowed in CHOICES.items():
        if OmegaConf.select(config, key) not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {OmegaConf.select(config, key)!r}")
    _check_relations(config)


def _check_relations(config: DictConfig) -> None:
    if config.controller.popsize < 2:
        raise ConfigError(f"controller.popsize must be >= 2 (CMA-ES), got {config.controller.popsize}")
    if config.iterate.max_rounds > 1 and config.controller.train_in != "dream":
        raise ConfigError(f"iterate.max_rounds={config.iterate.max_rounds} needs controller.train_in=dream (a C "
                          "evolved in the real game does not use M's dream: one round)")
    if config.iterate.max_rounds < config.iterate.rounds:
        raise ConfigError(f"iterate.max_rounds ({config.iterate.max_rounds}) must be >= iterate.rounds "
                          f"({config.iterate.rounds})")
    if config.collect.min_length >= config.collect.max_frames:
        raise ConfigError(f"collect.min_length ({config.collect.min_length}) must be below collect.max_frames "
                          f"({config.collect.max_frames}): every rollout would be dropped")
    if not 0 < config.mdnrnn.lr_decay <= 1:
        raise ConfigError(f"mdnrnn.lr_decay must be in (0, 1], got {config.mdnrnn.lr_decay}")
    if not config.mdnrnn.logstd_min < config.mdnrnn.logstd_max:
        raise ConfigError(f"mdnrnn.logstd_min ({config.mdnrnn.logstd_min}) must be below mdnrnn.logstd_max "
                          f"({config.mdnrnn.logstd_max})")
    temperatures = list(config.sweep.temperatures)
    if not temperatures or not all(_number(t) and t > 0 for t in temperatures):
        raise ConfigError(f"sweep.temperatures must be a non-empty list of numbers > 0, got {temperatures}")


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
