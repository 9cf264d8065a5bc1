"""tools.results: arithmetic against hand-computed values, official-file ingest, tables from synthetic runs,
malformed input."""
from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tools.results.__main__ import build, main as results_main
from tools.results.catalog import PAPERS
from tools.results.curves import Curve, load_curve_file, official_curves, parse_curve, seeds_at, value_at
from tools.results.metrics import (crafter_score, crafter_score_from_counts,
                                   crafter_success_rates, human_normalized, mean_and_median, mean_std)
from tools.results.ours import RecordError, bin_curve, export_run, load_record, nice_width
from tools.results.published import PAPER_CSVS, PUBLISHED, SHARED, paper_rows, task_key
from tools.results.readme import replace_between_markers
from tools.results.tables import crafter_reference_scores
from tools.runs import Run, iter_runs

OFFICIAL = sorted(p for p in (PUBLISHED / "official").rglob("*.json*")
                  if "baselines" not in p.name and p.parent.name != "ha2018")  # ha2018: CMA-ES logs, not curves


# ---- arithmetic --------------------------------------------------------------------------------------
def test_human_normalisation_hand_values():
    assert human_normalized(50.0, 10.0, 110.0) == pytest.approx(0.4)
    assert human_normalized(-20.7, -20.7, 14.6) == 0.0                       # Pong random = 0
    assert human_normalized(14.6, -20.7, 14.6) == pytest.approx(1.0)         # Pong human = 1
    assert mean_and_median([0.4, 1.0, 0.1, 2.5]) == (pytest.approx(1.0), pytest.approx(0.7))


def test_mean_std_is_population_std():
    assert mean_std([1.0, 3.0]) == (2.0, 1.0, 2)
    mean, std, n = mean_std([])
    assert math.isnan(mean) and n == 0


def _curve(xs, ys):
    return Curve("dmc_walker_walk", "m", "0", np.array(xs, float), np.array(ys, float))


def test_interpolation_hand_values():
    curve = _curve([10, 20, 30], [0, 10, 30])
    assert value_at(curve, 15) == pytest.approx(5.0)
    assert value_at(curve, 25) == pytest.approx(20.0)
    assert value_at(curve, 30) == pytest.approx(30.0)
    assert value_at(curve, 40) == pytest.approx(30.0)   # within the last point's bin
    assert value_at(curve, 41) is None                   # beyond: no number rather than a wrong one
    assert value_at(curve, 10) == pytest.approx(0.0)
    assert value_at(curve, 9) is None                    # before the first point: no extrapolation
    other = Curve("dmc_walker_walk", "m", "1", np.array([10.0, 30.0]), np.array([10.0, 50.0]))
    assert seeds_at([curve, other, _curve([1e6, 2e6], [1, 2])], "dmcproprio_walker_walk", 20) == [10.0, 30.0]


def test_task_keys_join_our_names_files_and_csvs():
    assert task_key("dmcproprio_cup_catch") == task_key("dmc_ball_in_cup_catch") == task_key("ball_in_cup_catch")
    assert task_key("atari_james_bond") == task_key("Jamesbond") == task_key("atari_jamesbond")
    assert task_key("atari_ms_pacman") == task_key("Ms Pacman")
    assert task_key("crafter-reward") == task_key("crafter_reward") != task_key("crafter_noreward")


def test_crafter_score_hand_values():
    assert crafter_score([0.0] * 22) == pytest.approx(0.0)
    assert crafter_score([100.0] * 22) == pytest.approx(100.0)
    one = [0.0] * 21 + [99.0]                          # exp(ln(100)/22) - 1 = 100^(1/22) - 1
    assert crafter_score(one) == pytest.approx(100 ** (1 / 22) - 1)
    assert crafter_score([3.0] * 11 + [15.0] * 11) == pytest.approx(math.sqrt(4 * 16) - 1)  # = 7
    with pytest.raises(ValueError):
        crafter_score([1.0] * 21)


def test_crafter_success_rates_from_episodes():
    episodes = [{"collect_wood": 2}, {"collect_wood": 1, "wake_up": 1}, {"collect_wood": 0}, {"collect_wood": 5}]
    rates = crafter_success_rates(episodes)
    assert rates["collect_wood"] == 75.0 and rates["wake_up"] == 25.0 and rates["collect_diamond"] == 0.0
    assert len(rates) == 22
    expected = math.exp((math.log(76) + math.log(26)) / 22) - 1
    assert crafter_score(rates) == pytest.approx(expected)
    assert crafter_score_from_counts({"collect_wood": 3, "wake_up": 1}, 4) == pytest.approx(expected)


def test_crafter_score_of_authors_files_matches_published_scoreboard():
    """The Crafter paper's human 50.5 ± 6.8 and random 1.6 ± 0.0 (dreamer_v3_other.csv) from the episode files."""
    table = crafter_reference_scores()
    assert "| human | 5 | 100 | 50.5 ± 6.8 |" in table
    assert "| random | 5 | 29784 | 1.6 ± 0.0 |" in table
    rows = {r.method: r for r in paper_rows("dreamer_v3") if r.metric == "Crafter score (%)"}
    assert (rows["Human experts"].mean, rows["Human experts"].std) == (50.5, 6.8)
    assert rows["Random"].mean == 1.6


def test_binning_round_width_right_edges():
    assert nice_width(100_000) == 2000 and nice_width(400_000) == 10_000 and nice_width(120) == 2.5
    xs, ys = bin_curve([1000, 2000, 2500, 99_000], [1.0, 3.0, 5.0, 7.0])
    assert xs == [2000, 4000, 100_000] and ys == [2.0, 5.0, 7.0]


# ---- official files ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: p.name)
def test_ingest_official_file(path, capsys):
    curves = load_curve_file(path)
    assert curves and "warning" not in capsys.readouterr().err
    for c in curves:
        assert len(c.xs) == len(c.ys) > 0 and np.all(np.isfinite(c.ys)) and np.all(np.diff(c.xs) >= 0)
    xmax = max(c.xs[-1] for c in curves)
    if path.name.startswith("atari100k"):
        assert 390_000 < xmax <= 400_000       # frames (100K agent steps x 4)
    elif path.name.startswith(("atari57", "atari-")):
        assert xmax == pytest.approx(2e8, rel=0.01)  # frames
    elif path.name.startswith("dmc"):
        assert xmax <= 2e6                     # environment steps


@pytest.mark.skipif(not (SHARED / "official").exists(), reason="no ../shared/published beside the clone")
def test_repo_copy_matches_shared_reference():
    for path in sorted((SHARED / "official").rglob("*.json*")):
        rel = path.relative_to(SHARED)
        copy = PUBLISHED / rel if path.suffix == ".gz" else PUBLISHED / rel.with_name(rel.name + ".gz")
        assert copy.exists(), copy
        data = gzip.decompress(copy.read_bytes()) if path.suffix != ".gz" else copy.read_bytes()
        assert data == path.read_bytes(), rel
    for name in [n for names in PAPER_CSVS.values() for n in names] + ["atari_reference_scores.csv"]:
        assert (PUBLISHED / name).read_bytes() == (SHARED / name).read_bytes(), name


# ---- tables from runs --------------------------------------------------------------------------------
def _root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "results" / "runs").mkdir(parents=True)
    return root


def _build(root: Path, runs_dir: Path | None, figures: bool) -> dict[str, int]:
    """Export every run under ``runs_dir`` into ``root``'s records (as a user would), then build the tables."""
    for run_dir in iter_runs(runs_dir) if runs_dir else []:
        export_run(run_dir, root / "results" / "runs")
    return build(root, figures, published=PUBLISHED)


def _run(tmp_path, paper="dreamer_v3", task="dmcproprio_cartpole_balance", seed=0, returns=(100.0, 300.0),
         step=10_000, unit="env_steps", preset="small", **finish) -> Path:
    logdir = tmp_path / "runs" / paper / task / f"{preset}_seed{seed}"
    run = Run.create(paper, task, preset, seed, config={"a": 1}, logdir=logdir, budget_unit=unit)
    for i, ret in enumerate(returns, 1):
        run.log_episode(step * i // len(returns), ret=ret, length=1000, mode="train")
    run.finish(step, **finish)
    return logdir


def test_export_record_format(tmp_path):
    path = export_run(_run(tmp_path), tmp_path / "out")
    assert path == tmp_path / "out" / "dreamer_v3" / "dmcproprio_cartpole_balance" / "dreamer_v3_small_seed0.json"
    data = json.loads(path.read_text())
    assert {k: data[k] for k in ("task", "method", "seed", "paper", "preset", "budget", "budget_unit", "mode",
                                 "episodes")} == {
        "task": "dmcproprio_cartpole_balance", "method": "dreamer_v3", "seed": 0, "paper": "dreamer_v3",
        "preset": "small", "budget": 10_000, "budget_unit": "env_steps", "mode": "train", "episodes": 2}
    assert data["xs"] == [5000, 10_000] and data["ys"] == [100.0, 300.0]
    assert data["score"] == 200.0 and data["score_std"] == 100.0 and "commit" in data
    assert load_record(path).score == 200.0


def test_export_keeps_the_median_of_the_scored_episodes_only(tmp_path):
    run_dir = _run(tmp_path, returns=(100.0, 1000.0, 300.0, 200.0), last=3)  # the score: the last 3 episodes
    data = json.loads(export_run(run_dir, tmp_path / "out").read_text())
    assert data["score"] == 500.0 and data["score_median"] == 300.0
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "score": 123.0}))  # not these episodes' mean
    assert "score_median" not in json.loads(export_run(run_dir, tmp_path / "other").read_text())


def test_table_from_synthetic_runs(tmp_path):
    root = _root(tmp_path)
    (root / "dreamer_v3").mkdir()
    (root / "dreamer_v3" / "README.md").write_text("# keep\n<!-- results:start -->\nold\n<!-- results:end -->\ntail\n")
    _run(tmp_path, seed=0, returns=(100.0, 300.0), step=20_000)   # score 200
    _run(tmp_path, seed=1, returns=(300.0, 500.0), step=20_000)   # score 400
    counts = _build(root, tmp_path / "runs", figures=True)
    assert counts["records"] == 2 and counts["figures"] == 1
    table = (root / "results" / "tables" / "dreamer_v3.md").read_text()
    curves = official_curves("dreamerv3/dmc_proprio-dreamerv3.json.gz", "dreamerv3")
    theirs = [float(np.interp(20_000, c.xs, c.ys)) for c in curves if c.task == "dmc_cartpole_balance"]
    assert len(theirs) == 5
    mean, std, _ = mean_std(theirs)
    row = next(line for line in table.splitlines() if "| dmcproprio_cartpole_balance |" in line)
    assert "| 300.0 ± 100.0 | 2 |" in row and f"| {mean:.1f} ± {std:.1f} | 5 |" in row
    assert "20K env_steps" in row and "last 2 train" in row and "DMC proprioceptive" in row
    assert "task mean over 1 task(s): 300.0" in table
    assert (root / "results" / "figures" / "dreamer_v3_dmcproprio_cartpole_balance.png").stat().st_size < 60_000
    readme = (root / "dreamer_v3" / "README.md").read_text()
    assert readme.startswith("# keep\n<!-- results:start -->\n") and readme.endswith("<!-- results:end -->\ntail\n")
    assert "300.0 ± 100.0" in readme and "old" not in readme


def test_atari_human_normalised_aggregate(tmp_path, capsys):
    root = _root(tmp_path)
    _run(tmp_path, paper="dreamer_v2", task="atari_pong", returns=(-20.7, 14.6), step=1_000_000,
         unit="frames")  # mean -3.05
    _run(tmp_path, paper="dreamer_v2", task="atari_breakout", returns=(5.0,), step=1_000_000)  # wrong unit
    _build(root, tmp_path / "runs", figures=False)
    assert "atari_breakout/dreamer_v2_small_seed0.json: budget unit 'env_steps', but Atari 55 games counts " \
           "'frames'; skipped" in capsys.readouterr().err
    table = (root / "results" / "tables" / "dreamer_v2.md").read_text()
    # Pong, danijar/dreamerv2 references: random -20.7, human 14.6 -> (-3.05 + 20.7) / 35.3 = 50.0 %
    assert "human-normalised score over 1 game(s)" in table and "mean 50.0%, median 50.0%" in table


def test_ha2018_doom_temperature_table(tmp_path):
    root = _root(tmp_path)
    _run(tmp_path, paper="ha2018", task="doom_take_cover", returns=(800.0, 1200.0), step=0, temperature=1.15,
         dream_score=1000.0, dream_score_std=50.0, random_policy_score=200.0, random_policy_score_std=90.0)
    sweep = _run(tmp_path / "sweep", paper="ha2018", task="doom_take_cover", returns=(300.0, 500.0), step=0,
                 temperature=1.3, dream_score=700.0, dream_score_std=50.0, random_policy_score=200.0,
                 random_policy_score_std=90.0)  # a second sweep point: the same random measurement
    shutil.move(sweep, tmp_path / "runs" / "ha2018" / "doom_take_cover" / "small_seed0" / "sweep")
    _run(tmp_path, paper="ha2018", task="carracing", returns=(900.0, 910.0), step=0)
    _run(tmp_path, paper="ha2018", task="doom_take_cover", returns=(100.0, 300.0), step=0, temperature=1.15,
         preset="medium", dream_score=400.0, dream_score_std=10.0, random_policy_score=200.0,
         random_policy_score_std=90.0)
    _build(root, tmp_path / "runs", figures=False)
    table = (root / "results" / "tables" / "ha2018.md").read_text()
    medium, row = [line for line in table.splitlines() if line.startswith("| 1.15 |")]  # presets never pooled
    assert "| 918 ± 546 | 1092 ± 556 |" in row                  # published virtual / actual at tau = 1.15 (CSV)
    assert "| 1000 ± 50 | 1000 ± 200 (2 trials) |" in row       # ours: dream score, actual score
    assert "| 918 ± 546 | 1092 ± 556 | 400 ± 10 | 200 ± 100 (2 trials) | 1 | ha2018 (medium, seed 0) |" in medium
    assert "| ha2018 | small | 0 | 905 ± 5 (2 trials) |" in table
    doom = table.split("### DoomTakeCover-v0")[1].split("###")[0]
    random_row = next(line for line in doom.splitlines() if line.startswith("| Random policy baseline |"))
    assert "| 210 ± 108 | — | 200 ± 90 (2 trials, same seeds) |" in random_row  # published beside ours
    assert "DQN" not in doom                                      # CarRacing rows stay in the CarRacing table


def test_no_runs_and_every_published_row_reachable(tmp_path):
    root = _root(tmp_path)
    counts = _build(root, tmp_path / "no_runs_here", figures=True)
    assert counts["records"] == 0 and counts["figures"] == 0
    for paper in PAPERS:
        table = (root / "results" / "tables" / f"{paper}.md").read_text()
        lines = table.splitlines()
        rows = paper_rows(paper)
        assert rows
        for r in rows:
            assert any(f"| {r.method} |" in line and f"| {r.value()} | {r.verified} |" in line for line in lines), r
        assert "⚠ = `no`" in table
    v3 = (root / "results" / "tables" / "dreamer_v3.md").read_text()
    assert "⚠ | no |" in v3                                       # recalled numbers carry the mark


# ---- malformed input ---------------------------------------------------------------------------------
def test_run_without_episodes_is_reported_and_skipped(tmp_path, capsys):
    logdir = tmp_path / "runs" / "dreamer_v3" / "dmc_walker_walk" / "small_seed0"
    logdir.mkdir(parents=True)
    (logdir / "scores.jsonl").write_text("")
    with pytest.raises(RecordError, match="scores.jsonl: no train episodes"):
        export_run(logdir, tmp_path / "out")
    assert results_main(["--export", str(logdir), "--out", str(tmp_path / "out")]) == 2
    assert "scores.jsonl: no train episodes" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_truncated_jsonl_line_is_skipped(tmp_path, capsys):
    logdir = _run(tmp_path, returns=(100.0, 300.0))
    (logdir / "summary.json").unlink()
    with open(logdir / "scores.jsonl", "a") as handle:
        handle.write('{"step": 20000, "retu')
    data = json.loads(export_run(logdir, tmp_path / "out").read_text())
    assert data["score"] == 200.0 and data["episodes"] == 2
    assert "truncated last line" in capsys.readouterr().err


def test_corrupt_middle_line_names_the_file(tmp_path):
    logdir = _run(tmp_path)
    lines = (logdir / "scores.jsonl").read_text().splitlines()
    (logdir / "scores.jsonl").write_text("{oops\n" + "\n".join(lines) + "\n")
    with pytest.raises(RecordError, match="scores.jsonl:1: not valid json"):
        export_run(logdir, tmp_path / "out")


def test_curve_with_mismatched_lengths_is_skipped(tmp_path, capsys):
    path = tmp_path / "bad.json"
    good = {"task": "dmc_walker_walk", "method": "m", "seed": 0, "xs": [1, 2], "ys": [3, 4]}
    path.write_text(json.dumps([good, {**good, "ys": [1]}, {"task": "x"}]))
    curves = load_curve_file(path)
    err = capsys.readouterr().err
    assert len(curves) == 1 and f"{path} record 1: xs and ys differ in length (2 vs 1)" in err
    assert f"{path} record 2: missing xs, ys" in err
    with pytest.raises(ValueError, match="not increasing"):
        parse_curve({**good, "xs": [2, 1]}, "here")
    (tmp_path / "broken.json.gz").write_bytes(b"not gzip")
    assert load_curve_file(tmp_path / "broken.json.gz") == []


def test_malformed_records_and_unknown_task_are_skipped(tmp_path, capsys):
    root = _root(tmp_path)
    export_run(_run(tmp_path, task="dmcproprio_cartpole_balance"), root / "results" / "runs")
    folder = root / "results" / "runs" / "dreamer_v3" / "x"
    folder.mkdir(parents=True)
    good = json.loads(next((root / "results" / "runs").rglob("*.json")).read_text())
    (folder / "unknown.json").write_text(json.dumps({**good, "task": "pacman_classic"}))
    (folder / "lengths.json").write_text(json.dumps({**good, "ys": [1.0]}))
    (folder / "nan.json").write_text(json.dumps({**good, "score": float("nan")}))
    (folder / "paper.json").write_text(json.dumps({**good, "paper": "dreamer_v9"}))
    (folder / "truncated.json").write_text('{"task": ')
    counts = _build(root, None, figures=False)
    err = capsys.readouterr().err
    assert counts["records"] == 1  # the good one; the others are reported and skipped
    for message in ("unknown.json: unknown task 'pacman_classic'", "lengths.json: xs and ys differ in length",
                    "nan.json: score is not a finite number", "paper.json: unknown paper 'dreamer_v9'",
                    "truncated.json: not valid json"):
        assert message in err
    table = (root / "results" / "tables" / "dreamer_v3.md").read_text()
    assert "pacman" not in table and table.count("| dmcproprio_cartpole_balance |") == 1


def test_markers_missing_leave_file_untouched(tmp_path, capsys):
    path = tmp_path / "README.md"
    path.write_text("no markers here\n")
    assert not replace_between_markers(path, "body")
    assert path.read_text() == "no markers here\n" and "no '<!-- results:start -->'" in capsys.readouterr().err
    assert not replace_between_markers(tmp_path / "missing.md", "body")


# ---- export only when asked, never over another run's record -------------------------------------------
def test_export_refuses_to_replace_the_record_of_a_different_run(tmp_path, capsys):
    out = tmp_path / "out"
    long_run = _run(tmp_path / "a", step=50_000)
    committed = export_run(long_run, out)                                  # the committed 50K record
    text = committed.read_text()
    assert json.loads(text)["config_hash"] not in ("", "none")
    assert export_run(long_run, out) == committed                          # the same run again: harmless
    assert committed.read_text() == text
    short = _run(tmp_path / "b", step=3_000)                               # an ad-hoc 3K test run, same seed
    with pytest.raises(RecordError, match=r"different run \(budget 50000 -> 3000"):
        export_run(short, out)
    assert results_main(["--export", str(short), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--replace" in err and committed.read_text() == text
    other_config = _run(tmp_path / "c", step=50_000)                       # same budget, another config
    (other_config / "config.yaml").write_text("a: 2\n")
    with pytest.raises(RecordError, match="config_hash"):
        export_run(other_config, out)
    assert results_main(["--export", str(short), "--out", str(out), "--replace"]) == 0
    assert json.loads(committed.read_text())["budget"] == 3_000


def test_tables_come_from_the_records_only_not_from_runs(tmp_path, monkeypatch):
    """`python -m tools.results` must not turn a user's ad-hoc runs/ into records (only --export does)."""
    import tools.results.__main__ as cli
    root = _root(tmp_path)
    (root / "results" / "published").symlink_to(PUBLISHED)
    _run(root)                                                             # root/runs/dreamer_v3/.../small_seed0
    monkeypatch.setattr(cli, "ROOT", root)
    assert cli.main(["--no-figures"]) == 0
    assert not list((root / "results" / "runs").rglob("*.json"))


def test_nan_score_at_export_is_one_line_exit_2(tmp_path, capsys):
    logdir = tmp_path / "runs" / "dreamer_v3" / "dmc_walker_walk" / "small_seed0"
    run = Run.create("dreamer_v3", "dmc_walker_walk", "small", 0, config={"a": 1}, logdir=logdir)
    run.log_episode(1000, ret=5.0, length=1000, mode="train")
    run.finish(1000, mode="eval")                                          # no eval episode: score NaN
    assert results_main(["--export", str(logdir), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "summary.json: score is nan, not a finite number" in err
    assert not (tmp_path / "out").exists()


def test_duplicate_records_of_one_run_count_once(tmp_path, capsys):
    root = _root(tmp_path)
    path = export_run(_run(tmp_path, returns=(100.0, 300.0)), root / "results" / "runs")
    copy = path.with_name("dreamer_v3_small_seed0 (copy).json")
    shutil.copy(path, copy)
    counts = _build(root, None, figures=False)
    err = capsys.readouterr().err
    assert counts["records"] == 1
    assert f"{copy} and {path}: two records of the same run" in err and "counted once" in err
    row = next(line for line in (root / "results" / "tables" / "dreamer_v3.md").read_text().splitlines()
               if "| dmcproprio_cartpole_balance |" in line)
    assert "| 200.0 ± 0.0 | 1 |" in row


def test_records_with_bad_task_budget_or_curve_are_skipped(tmp_path, capsys):
    root = _root(tmp_path)
    runs = root / "results" / "runs"
    good = json.loads(export_run(_run(tmp_path, step=20_000), runs).read_text())
    folder = runs / "dreamer_v3" / "dmcproprio_cartpole_balance"
    bad = {"nan_curve": {**good, "seed": 1, "ys": [100.0, float("nan")]},
           "negative": {**good, "seed": 2, "budget": -5},
           "scale": {**good, "seed": 3, "budget": 5_000},                  # curve to 20K, budget in other units
           "unit": {**good, "seed": 4, "budget_unit": "agent_steps"}}
    for name, data in bad.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    ha = runs / "ha2018" / "pong"
    ha.mkdir(parents=True)
    (ha / "world_models_small_seed0.json").write_text(json.dumps({**good, "paper": "ha2018", "task": "pong"}))
    (root / "README.md").write_text("<!-- results:start -->\n<!-- results:end -->\n")
    counts = _build(root, None, figures=False)
    err = capsys.readouterr().err
    assert counts["records"] == 1
    for message in ("nan_curve.json: ys[1] = nan in the curve", "negative.json: negative budget -5",
                    "scale.json: the curve reaches 20000 env_steps but the budget is 5000",
                    "unit.json: unknown budget unit 'agent_steps'", "unknown task 'pong' for paper ha2018"):
        assert message in err
    assert "| World Models (Ha & Schmidhuber 2018) | 0 | — |" in (root / "README.md").read_text()


def test_state_based_small_runs_are_read_against_the_pixel_curve():
    from tools.results.catalog import benchmark_of
    bench = benchmark_of("dreamer_v1", "dmcproprio_cartpole_swingup", 20_000)
    assert bench.prefix == "dmcproprio_" and bench.curve_task("dmcproprio_cartpole_swingup") == "dmc_cartpole_swingup"
    assert benchmark_of("dreamer_v1", "dmc_cartpole_swingup", 20_000).curve_task("dmc_x_y") == "dmc_x_y"
    assert benchmark_of("planet", "dmcproprio_cartpole_swingup", 30_000).curve is None


def test_ha2018_cmaes_figure_plots_ours_over_the_authors_log(tmp_path):
    from tools.results.ha2018_figures import authors_log, ha2018_figures
    from tools.results.ours import Record
    rec = Record("ha2018", "doom_take_cover", "world_models", "small", 0, 35_000, "env_steps", "eval", 300.0, 100.0,
                 100, [35_000], [300.0], extra={"temperature": 1.15, "dream_score": 900.0, "cma_generation": [1, 2],
                                                "cma_mean": [300.0, 320.0], "random_policy_score": 220.0})
    assert len(authors_log("doom_take_cover")) == 1800 and authors_log("carracing", "hist_best")[0][0] == 25
    names = sorted(p.name for p in ha2018_figures([rec], tmp_path))
    assert names == ["ha2018_doom_take_cover_cmaes.png", "ha2018_doom_take_cover_temperature.png"]
