"""Connect to (or start) Ray, the one way for every user here (``tools.sweep``, ha2018's ``backend: ray``).

``address``: a running cluster (``"auto"`` after ``ray start --head`` on this node, or ``"ray://host:10001"``);
None: ``RAY_ADDRESS`` if set, else a new local Ray of ``num_cpus`` cores (default all).

On a 2-core machine kept busy by other processes at a higher priority, a local start can fail: Ray's dashboard
agent (a Python process) then misses the raylet's fixed ~25 s wait for its port file, the raylet aborts and
``ray.init`` raises "The current node timed out during startup". Run again when the machine is less loaded (a
failed start can leave Ray processes behind: ``ray stop`` ends them).
"""
from __future__ import annotations

import os


def init_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Returns False when this process already had a Ray session (then left as it is)."""
    import ray
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return True
