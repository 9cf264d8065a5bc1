"""Environments for the driver: ``N`` copies of a task, stepped together, in worker processes when ``N > 1``.

One round gives every environment one command: ``("reset", seed)`` or ``("step", action)``; the workers run
their commands at the same time and the results come back in order. With one environment everything runs in
this process (the CPU default). Workers are started with ``spawn`` (no inherited rendering contexts) and die with
their parent (Linux ``PR_SET_PDEATHSIG``), so a killed run leaves no process behind that keeps stepping.
"""
from __future__ import annotations

import ctypes
import multiprocessing as mp
import signal
import sys
from typing import Any, Callable

import gymnasium as gym

Command = tuple[str, Any]
EnvFactory = Callable[[int], gym.Env]


def run_command(env: gym.Env, command: Command) -> tuple:
    """``reset``: (obs, info); ``step``: (obs, reward, terminated, truncated, info)."""
    name, arg = command
    if name == "reset":
        return env.reset(seed=arg)
    if name == "step":
        return env.step(arg)
    raise ValueError(f"unknown env command {name!r}")


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this process when its parent dies."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass


def _worker(make: EnvFactory, seed: int, pipe) -> None:
    die_with_parent()
    env = make(seed)
    try:
        while True:
            command = pipe.recv()
            if command[0] == "close":
                break
            try:
                pipe.send(("ok", run_command(env, command)))
            except Exception as error:  # noqa: BLE001 - sent to the parent, which raises it
                pipe.send(("error", f"{type(error).__name__}: {error}"))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        env.close()


class EnvPool:
    """``len(seeds)`` environments made by ``make(seed)``; ``parallel``: one worker process each."""

    def __init__(self, make: EnvFactory, seeds: list[int], parallel: bool) -> None:
        self.size = len(seeds)
        self.parallel = parallel and self.size > 1
        if self.parallel:
            context = mp.get_context("spawn")
            self.pipes, self.procs = [], []
            for seed in seeds:
                parent, child = context.Pipe()
                proc = context.Process(target=_worker, args=(make, seed, child), daemon=True)
                proc.start()
                child.close()
                self.pipes.append(parent)
                self.procs.append(proc)
        else:
            self.envs = [make(seed) for seed in seeds]

    def run(self, commands: list[Command]) -> list[tuple]:
        """One command per environment, executed together; results in order."""
        if not self.parallel:
            return [run_command(env, command) for env, command in zip(self.envs, commands)]
        for pipe, command in zip(self.pipes, commands):
            pipe.send(command)
        results = []
        for index, pipe in enumerate(self.pipes):
            status, value = pipe.recv()
            if status == "error":
                raise RuntimeError(f"environment worker {index}: {value}")
            results.append(value)
        return results

    def close(self) -> None:
        if not self.parallel:
            for env in self.envs:
                env.close()
            return
        for pipe in self.pipes:
            try:
                pipe.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
