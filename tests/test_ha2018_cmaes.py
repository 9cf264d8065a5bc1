"""CMA-ES in the controller's checkpoint: a resumed strategy asks for exactly the candidates an uninterrupted one
does, and the restricted unpickler builds nothing but a strategy."""
from __future__ import annotations

import os
import pickle

import cma
import numpy as np
import pytest
import torch

from ha2018.cmaes import load_strategy, save_strategy
from tools.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def sphere(candidates: list[np.ndarray]) -> list[float]:
    return [float(np.sum(x ** 2)) for x in candidates]


@pytest.mark.parametrize("size,popsize", [(544, 32), (1088, 16)])  # Doom small / medium and paper
def test_resumed_strategy_asks_what_an_uninterrupted_one_asks(size, popsize, tmp_path):
    es = cma.CMAEvolutionStrategy(np.zeros(size), 0.1, {"popsize": popsize, "seed": 3, "verbose": -9})
    asked = []
    for generation in range(5):
        candidates = es.ask()
        asked.append(np.asarray(candidates))
        es.tell(candidates, sphere(candidates))
        if generation == 1:
            save_checkpoint(tmp_path / "controller.pt", {"cma": save_strategy(es)})
    np.random.seed(0)  # a new process: the global RNG is elsewhere
    resumed = load_strategy(load_checkpoint(tmp_path / "controller.pt")["cma"])
    for generation in range(2, 5):
        candidates = resumed.ask()
        assert np.array_equal(np.asarray(candidates), asked[generation]), generation
        resumed.tell(candidates, sphere(candidates))
    assert np.array_equal(resumed.mean, es.mean) and resumed.sigma == es.sigma


def test_checkpoint_pickle_builds_nothing_but_a_strategy():
    for payload in (pickle.dumps({"run": os.system}), pickle.dumps([1, 2]), b"\x80\x04not a pickle"):
        saved = {"pickle": torch.frombuffer(bytearray(payload), dtype=torch.uint8), "numpy_rng": None}
        with pytest.raises(CheckpointError):
            load_strategy(saved)
