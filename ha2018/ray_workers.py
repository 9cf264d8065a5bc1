"""``backend: ray``: the real-environment rollouts (collection, CMA-ES fitness, evaluation trials) over Ray
actors instead of local worker processes, so that a generation's popsize x rollouts episodes spread over every
core of a cluster. Each actor is one worker as in ``rollout.Pool`` (one environment, V and M built once, one
torch thread); jobs are the same functions, results come back in job order. Ray starts on this machine unless
``RAY_ADDRESS`` names a cluster (``RAY_ADDRESS=auto`` after ``ray start --head``; every node needs this
repository and its environment at the same path).
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator


class _Worker:
    def __init__(self, args: tuple) -> None:
        import torch

        from ha2018.rollout import _init_worker
        torch.set_num_threads(1)
        _init_worker(*args)

    def run(self, fn: Callable, job):
        return fn(job)

    def close(self) -> None:
        from ha2018.rollout import _WORKER
        if _WORKER.get("env") is not None:
            _WORKER["env"].close()


class RayWorkers:
    def __init__(self, workers: int, args: tuple) -> None:
        import ray
        from ray.util import ActorPool

        from tools.ray_init import init_ray
        init_ray()
        shared = ray.put(args)  # V and M state dicts: stored once, read by every actor
        actor = ray.remote(num_cpus=1)(_Worker)
        self.actors = [actor.remote(shared) for _ in range(max(1, workers))]
        self.pool = ActorPool(self.actors)

    def imap(self, fn: Callable, jobs: Iterable) -> Iterator:
        return self.pool.map(lambda worker, job: worker.run.remote(fn, job), list(jobs))

    def close(self) -> None:
        import ray
        ray.get([a.close.remote() for a in self.actors])
        for a in self.actors:
            ray.kill(a)

    def join(self) -> None:
        """multiprocessing.Pool's interface: nothing left to wait for after close()."""

    def terminate(self) -> None:
        import ray
        for a in self.actors:
            ray.kill(a)
