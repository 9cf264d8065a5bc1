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


def generation_seconds(backend: str, workers: int, popsize: int, rollouts: int, steps: int
                       ) -> tuple[float, float, int]:
    """Wall time of one CarRacing generation (popsize x rollouts real episodes of at most ``steps`` steps, the
    paper's V and M with random weights, random controllers), this process's CPU time in it (all of it with one
    in-process worker) and the env steps it took."""
    import time

    import numpy as np
    import torch

    from ha2018.__main__ import config_for
    from ha2018.models import build_controller, build_mdnrnn, build_vae
    from ha2018.rollout import Pool, agent_job

    config = config_for("carracing", "paper", [f"backend={backend}"])
    n = build_controller(config, "carracing").param_count
    rng = np.random.default_rng(0)
    jobs = [(rng.normal(0, 0.1, n).astype(np.float32), 1000 + r, steps) for _ in range(popsize)
            for r in range(rollouts)]
    with Pool(workers, "carracing", config, build_vae(config), build_mdnrnn(config, "carracing")) as pool:
        list(pool.imap(agent_job, jobs[:workers]))  # workers up and environments made before the clock starts
        torch.set_num_threads(1)
        start, cpu = time.perf_counter(), time.process_time()
        results = list(pool.imap(agent_job, jobs))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, sum(length for _, length in results)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ha2018.ray_workers",
                                     description="time one CarRacing CMA-ES generation of real rollouts")
    parser.add_argument("--backend", choices=("pool", "ray"), default="pool")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--popsize", type=int, default=4)
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    seconds, cpu, env_steps = generation_seconds(args.backend, args.workers, args.popsize, args.rollouts, args.steps)
    per_step = cpu if args.workers == 1 and args.backend == "pool" else seconds * args.workers
    per_step /= env_steps
    print(f"{args.backend}, {args.workers} worker(s): {args.popsize} x {args.rollouts} rollouts, {env_steps} env steps "
          f"in {seconds:.1f} s wall ({cpu:.1f} s CPU here): {per_step * 1000:.1f} ms per env step per worker; a paper "
          f"generation (64 x 16 rollouts of 1000 steps) on 64 such workers: {16 * 1000 * per_step / 60:.1f} min")
