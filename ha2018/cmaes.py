"""CMA-ES state in a checkpoint, so that a resumed controller stage continues exactly where it stopped.

``cma.CMAEvolutionStrategy`` keeps far more than its mean and step size (the covariance, its eigendecomposition,
both evolution paths, the iteration counters), and it draws its samples from NumPy's global RNG. A checkpoint
holds the strategy pickled into a byte tensor together with that RNG's state. Checkpoints are loaded with
``weights_only=True``, so the pickle is read by an unpickler that builds only the classes a ``cma`` 4.5.0
strategy is made of (the ``ALLOWED`` list) and nothing else."""
from __future__ import annotations

import io
import pickle
from typing import Any

import cma
import numpy as np
import torch

from tools.checkpoint import CheckpointError, numpy_rng_state, set_numpy_rng_state

ALLOWED = {  # (module, name) a pickled CMAEvolutionStrategy of cma 4.5.0 refers to (544-1,088 parameters, 4-64
    "builtins": {"range"},  # candidates, 12 generations; builtins.getattr is handled apart)
    "cma.boundary_handler": {"BoundNone", "BoundTransform"},
    "cma.evolution_strategy": {"CMAEvolutionStrategy", "_CMASolutionDict_empty", "_CMASolutionDict_functional",
                               "_CMAStopDict", "_StopTolXStagnation", "_pass"},
    "cma.logger": {"CMADataLogger"},
    "cma.optimization_tools": {"BestSolution"},
    "cma.options_parameters": {"CMAOptions", "CMAParameters", "is_feasible"},
    "cma.recombination_weights": {"RecombinationWeights"},
    "cma.sampler": {"GaussFullSampler"},
    "cma.sigma_adaptation": {"CMAAdaptSigmaCSA", "CMAAdaptSigmaTPA", "_TPAParameters"},
    "cma.transformations": {"DiagonalDecoding", "GenoPheno", "RoundIntegerVariables"},
    "cma.utilities.utils": {"BlancClass", "DictFromTagsInString", "ElapsedWCTime", "MoreToWrite", "SolutionDict"},
    "numpy": {"dtype", "ndarray"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},  # numpy 1.x
    "numpy.linalg": {"eigh"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._pickle": {"__bit_generator_ctor", "__randomstate_ctor"},
}


def _global_rng_method(state: np.random.RandomState, name: str) -> Any:
    """The pickle's ``getattr(RandomState, 'randn')``: the strategy's sampler, bound to NumPy's global RNG again
    (a plain unpickle would bind it to a private copy, apart from cma's other draws from the global RNG)."""
    if not isinstance(state, np.random.RandomState) or name.startswith("_"):
        raise pickle.UnpicklingError(f"CMA-ES checkpoint: getattr({type(state).__name__}, {name!r}) is not allowed")
    return getattr(np.random.mtrand._rand, name)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("builtins", "getattr"):
            return _global_rng_method
        if name not in ALLOWED.get(module, ()):
            raise pickle.UnpicklingError(f"CMA-ES checkpoint refers to {module}.{name}, which a CMA-ES state "
                                         "does not hold")
        return super().find_class(module, name)


def save_strategy(es: cma.CMAEvolutionStrategy) -> dict[str, Any]:
    """What ``load_strategy`` needs to go on exactly: the pickled strategy and NumPy's global RNG state."""
    blob = pickle.dumps(es, protocol=4)  # arrays as _reconstruct + bytes: no _frombuffer
    return {"pickle": torch.frombuffer(bytearray(blob), dtype=torch.uint8), "numpy_rng": numpy_rng_state()}


def load_strategy(saved: dict[str, Any]) -> cma.CMAEvolutionStrategy:
    """The strategy as ``save_strategy`` saw it, with NumPy's global RNG set back to where it was then."""
    try:
        es = _Unpickler(io.BytesIO(saved["pickle"].numpy().tobytes())).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as error:
        raise CheckpointError(f"unreadable CMA-ES state in the controller checkpoint: {error}") from None
    if not isinstance(es, cma.CMAEvolutionStrategy):
        raise CheckpointError(f"the controller checkpoint's CMA-ES state is a {type(es).__name__}")
    set_numpy_rng_state(saved["numpy_rng"])
    return es
