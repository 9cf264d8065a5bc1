"""Published numbers + our runs -> tables, figures and README sections (``python -m tools.results``).

API: ``export_run(run_dir, out_root="results/runs") -> Path`` writes a run's record when it finishes.
"""
from tools.results.metrics import crafter_score, crafter_success_rates, human_normalized
from tools.results.ours import RecordError, export_run

__all__ = ["export_run", "RecordError", "crafter_score", "crafter_success_rates", "human_normalized"]
