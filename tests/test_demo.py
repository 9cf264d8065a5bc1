"""`make demo` (tools/demo.py) with a stand-in for the 12-minute pipeline: it prints the new score beside the
committed record's and never writes into the record folder."""
from __future__ import annotations

import json

from tools import demo
from tools.runs import Run


def _finished_doom_run(logdir, score: float) -> None:
    run = Run.create("ha2018", "doom_take_cover", "small", 0, config={"controller": {"temperature": 1.15}},
                     logdir=logdir, method="world_models")
    for ret in (score - 10, score + 10):
        run.log_episode(35_260, ret, int(ret), mode="eval")
    run.finish(35_260, mode="eval", temperature=1.15, dream_score=900.0, dream_score_std=50.0,
               random_policy_score=220.0, random_policy_score_std=100.0)


def test_demo_prints_beside_the_committed_record_and_leaves_it(tmp_path, monkeypatch, capsys):
    records = tmp_path / "records"
    committed = records / "ha2018" / "doom_take_cover" / "world_models_small_seed0_temp1.15.json"
    committed.parent.mkdir(parents=True)
    committed.write_text(json.dumps({"paper": "ha2018", "task": "doom_take_cover", "method": "world_models",
                                     "preset": "small", "seed": 0, "budget": 35_260, "budget_unit": "env_steps",
                                     "score": 287.25, "score_std": 109.7, "episodes": 100, "temperature": 1.15,
                                     "random_policy_score": 221.0, "commit": "9b394b3", "xs": [36_000],
                                     "ys": [287.25]}))
    before = committed.read_text()
    monkeypatch.chdir(tmp_path)
    calls = []

    def pipeline(argv):  # what `python -m ha2018 all` leaves behind: a finished run at the default logdir
        calls.append(argv)
        _finished_doom_run(tmp_path / "runs" / "ha2018" / "doom_take_cover" / "small_seed0", score=350.0)
        return 0
    monkeypatch.setattr("ha2018.__main__.main", pipeline)
    monkeypatch.setattr("tools.results.__main__.main", lambda argv: calls.append(argv) or 0)
    demo.main(records)
    out = capsys.readouterr().out
    assert calls == [["all", "--task", "doom_take_cover", "--preset", "small", "--seed", "0"], []]
    assert "this run (runs/ha2018/doom_take_cover/small_seed0): real game 350 ± 10 over 2 trials, random policy " \
           "220 ± 100 on the same seeds, dream 900 ± 50" in out
    assert f"committed record ({committed}): real game 287 ± 110 over 100 trials" in out
    assert "--export runs/ha2018/doom_take_cover/small_seed0 --replace" in out
    assert committed.read_text() == before and list(records.rglob("*.json")) == [committed]
