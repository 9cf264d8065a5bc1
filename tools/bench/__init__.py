"""``python -m tools.bench``: update and acting benchmarks of every learner (see ``tools/bench/__main__.py``)."""
