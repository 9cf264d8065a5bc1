"""The online training driver of the RSSM papers (PlaNet, Dreamer v1, DreamerV2, DreamerV3): environments,
random prefill, replay, train schedule, logging, evaluation, videos, checkpoints and resume, written once.
The agent interface is documented in ``tools/README.md``."""
from tools.loop.driver import EnvSpec, check_config, env_factory, spec_of, train_loop
from tools.loop.records import DivergenceError, crafter_score
from tools.loop.schedule import Every, PerEpisode, Prefill, Ratio, make_schedule

__all__ = ["train_loop", "EnvSpec", "check_config", "env_factory", "spec_of", "DivergenceError", "crafter_score",
           "Ratio", "Every", "PerEpisode", "Prefill", "make_schedule"]
