"""tools.bench: the FLOP counter and matmul probe, one tiny end-to-end bench run with its JSON, and bad input."""
import json

import pytest
import torch

from tools.bench.__main__ import main
from tools.bench.measure import MatmulProbe, count_flops, rate, timed_update

pytestmark = pytest.mark.usefixtures("one_thread")


def test_flop_counter_counts_matmul_forward_and_backward():
    a = torch.randn(8, 16, requires_grad=True)
    b = torch.randn(16, 4, requires_grad=True)
    flops, out = count_flops(lambda: (a @ b).sum().backward())
    # forward 2*8*16*4, backward two matmuls of the same size
    assert flops == 3 * 2 * 8 * 16 * 4 and out is None


def test_timed_update_reports_median_and_interleaved_peak():
    w = torch.randn(64, 64, requires_grad=True)
    timing = timed_update(lambda: (w @ w).sum().backward(), repeats=3, warmup=1)
    assert len(timing["times_s"]) == 3 and len(timing["peak_samples"]) == 3
    assert timing["flops"] == 3 * 2 * 64 ** 3
    assert timing["gflops_per_s"] > 0 and timing["peak_gflops"] > 0
    assert MatmulProbe(n=128)() > 0
    assert rate(lambda: None, repeats=2, target_s=0.01, max_calls=50)["calls"] == 50


def test_timed_update_back_to_back_measures_the_peak_after_the_updates():
    w = torch.randn(64, 64, requires_grad=True)
    calls = []
    timing = timed_update(lambda: calls.append((w @ w).sum().backward()), repeats=3, warmup=2, back_to_back=True)
    assert len(calls) == 1 + 1 + 3  # FLOP count, one more warm-up, 3 timed
    assert len(timing["peak_samples"]) == 3 and timing["peak_measured"] == "after the updates"
    assert timed_update(lambda: None, repeats=1, warmup=1)["peak_measured"] == "between the updates"


def test_bench_runs_small_learners_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--learners", "dreamer_v3,ha2018", "--sizes", "small", "--repeats", "1", "--act-seconds", "0.05",
                 "--back-to-back", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    v3, ha = report["results"]
    assert v3["learner"] == "dreamer_v3" and v3["size"] == "small" and v3["variant"] == "fp32"
    assert v3["update"]["flops"] > 0 and v3["update"]["median_s"] > 0 and v3["act"]["per_s"] > 0
    assert v3["params"] > 0 and 0 < v3["update"]["peak_fraction"]
    assert ha["v_update"]["flops"] > 0 and ha["m_update"]["flops"] > 0
    assert ha["dream"]["dream_steps_per_s"] > 0 and ha["real_env"]["steps_per_s"] > 0
    assert report["peak_gflops"] > 0 and report["machine"]["threads"] == 1
    assert report["peak_measured"] == v3["update"]["peak_measured"] == "after the updates"
    table = capsys.readouterr().out
    assert "| dreamer_v3 | small | fp32 |" in table and "M update" in table and "measured after the updates" in table


@pytest.mark.parametrize("args, message", [
    (["--learners", "dreamer_v9"], "unknown learner 'dreamer_v9'"),
    (["--learners", "planet", "--sizes", "12m"], "unknown size '12m'"),
    (["--variants", "fp16"], "unknown variant 'fp16'"),
    (["--repeats", "0"], "at least 1"),
])
def test_bad_input_is_one_error_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
