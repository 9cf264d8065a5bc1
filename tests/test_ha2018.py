"""ha2018 unit tests: parameter counts, losses against hand-computed values, temperature, the dream, CMA-ES."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ha2018.__main__ import config_for, main, open_context
from ha2018.dream import BatchedDream, DreamEnv, dream_returns
from ha2018.mdnrnn import MDNRNN, Mixture, adjust_temperature, done_loss, done_probability, mixture_nll, sample_mixture
from ha2018.sanity import judge_dream, vae_check
from ha2018.models import build_controller, build_mdnrnn, build_vae, param_count
from ha2018.sequences import stream_batches
from ha2018.stages import train_controller
from ha2018.vae import ConvVAE, vae_loss
from tools.checkpoint import load_checkpoint, save_checkpoint


@pytest.mark.parametrize("task, vae, mdnrnn, controller", [
    ("carracing", 4_348_547, 422_368, 867),           # paper, CarRacing parameter table
    ("doom_take_cover", 4_446_915, 1_678_785, 1_088),  # paper, Doom parameter table
])
def test_parameter_counts_match_the_paper(task, vae, mdnrnn, controller):
    config = config_for(task, "paper", [])
    assert param_count(build_vae(config)) == vae
    assert param_count(build_mdnrnn(config, task)) == mdnrnn
    assert build_controller(config, task).param_count == controller


def test_medium_preset_has_the_paper_model_sizes_and_is_doom_only(capsys):
    config = config_for("doom_take_cover", "medium", [])
    assert param_count(build_vae(config)) == 4_446_915 and param_count(build_mdnrnn(config, "doom_take_cover")) \
        == 1_678_785 and build_controller(config, "doom_take_cover").param_count == 1_088
    assert (config.controller.popsize, config.controller.rollouts, config.controller.temperature) == (64, 16, 1.15)
    assert main(["collect", "--task", "carracing", "--preset", "medium"]) == 2
    assert capsys.readouterr().err.startswith("error: the medium preset is defined for doom_take_cover only")


def test_vae_shapes():
    vae = ConvVAE(32)
    recon, mu, logvar = vae(torch.rand(2, 3, 64, 64))
    assert recon.shape == (2, 3, 64, 64) and mu.shape == logvar.shape == (2, 32)
    assert 0 <= recon.min() and recon.max() <= 1


def test_vae_loss_by_hand():
    x, recon = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2)  # squared error 4 * 0.25 = 1
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2)              # KL = 0.5 * (1 + 0) = 0.5
    loss, reconstruction, kl = vae_loss(x, recon, mu, logvar, kl_tolerance=0.0)
    assert reconstruction.item() == pytest.approx(1.0) and kl.item() == pytest.approx(0.5)
    assert loss.item() == pytest.approx(1.5)
    loss, _, kl = vae_loss(x, recon, mu, logvar, kl_tolerance=0.5)  # floor 0.5 * N_z = 1.0
    assert kl.item() == pytest.approx(1.0) and loss.item() == pytest.approx(2.0)


def test_mixture_nll_by_hand():
    mixture = Mixture(torch.log(torch.tensor([[0.25, 0.75]])), torch.tensor([[0.0, 2.0]]),
                      torch.log(torch.tensor([[1.0, 2.0]])))
    normal = lambda y, m, s: math.exp(-0.5 * ((y - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))  # noqa: E731
    expected = -math.log(0.25 * normal(1, 0, 1) + 0.75 * normal(1, 2, 2))
    assert mixture_nll(mixture, torch.tensor([1.0])).item() == pytest.approx(expected, rel=1e-6)


def test_mixture_nll_is_finite_far_from_every_component():
    mixture = Mixture(torch.log_softmax(torch.zeros(1, 5), -1), torch.zeros(1, 5), torch.full((1, 5), -7.0))
    assert torch.isfinite(mixture_nll(mixture, torch.tensor([50.0])))


def test_done_loss_weights_positives():
    logit = torch.zeros(2)
    assert done_loss(logit, torch.tensor([1.0, 0.0]), 10.0).item() == pytest.approx((10 + 1) / 2 * math.log(2))


def test_done_probability_undoes_the_weighting():
    q = torch.tensor([0.01, 0.3, 0.9])
    p_weighted = 10 * q / (1 + 9 * q)
    assert torch.allclose(done_probability(torch.logit(p_weighted), 10.0), q, atol=1e-6)


def test_temperature_one_leaves_the_mixture_unchanged():
    mixture = Mixture(torch.log_softmax(torch.randn(4, 3, 5), -1), torch.randn(4, 3, 5), torch.randn(4, 3, 5))
    adjusted = adjust_temperature(mixture, 1.0)
    for a, b in zip(adjusted, mixture):
        assert torch.allclose(a, b, atol=1e-6)


def test_low_temperature_sharpens_the_mixture():
    mixture = Mixture(torch.log(torch.tensor([[0.2, 0.8]])), torch.tensor([[-3.0, 3.0]]), torch.zeros(1, 2))
    cold = adjust_temperature(mixture, 0.1)
    assert cold.logmix.exp()[0, 1] > 0.999 and torch.allclose(cold.logstd, torch.full((1, 2), 0.5 * math.log(0.1)))
    generator = torch.Generator().manual_seed(0)
    batch = Mixture(*(x.expand(2000, 2) for x in mixture))
    cold_samples = sample_mixture(batch, 0.1, generator)
    warm_samples = sample_mixture(batch, 1.0, generator)
    assert (cold_samples - 3).abs().max() < 1.5 and cold_samples.std() < warm_samples.std() / 2


# ---- the dream ---------------------------------------------------------------------------------------------
def tiny_m(done_bias: float) -> MDNRNN:
    """A 1-d latent, 2-unit M whose done logit is 20 * h_0 + done_bias with h_0 ~ tanh(tanh(5 a)): acting
    negative keeps it alive when done_bias > 0. z stays near 1."""
    m = MDNRNN(z_size=1, action_size=1, hidden=2, mixtures=1, predict_done=True)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        bias = m.cell.input_gates.bias  # gates (i, g, f, o) x 2 units
        bias[0:2], bias[4:6], bias[6:8] = 10.0, -10.0, 10.0
        m.cell.input_gates.weight[2, 1] = 5.0   # g_0 = tanh(5 a)
        m.head.bias[0] = done_bias              # done logit
        m.head.weight[0, 0] = 20.0
        m.head.bias[2], m.head.bias[3] = 1.0, -5.0  # (logmix, mean, logstd) of z: mean 1, std e^-5
    return m


def test_dream_env_api_and_done():
    env = DreamEnv(tiny_m(done_bias=5.0), torch.ones(3, 1), torch.full((3, 1), -10.0), temperature=1.0,
                   inputs="zch", max_steps=5)
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (5,) and obs.dtype == np.float32
    _, reward, terminated, truncated, _ = env.step(np.zeros(1))   # a = 0: logit 5 > 0, dies
    assert reward == 1.0 and terminated and not truncated
    env.reset(seed=0)
    for step in range(5):                                           # a = -1: logit -10, survives to the cap
        _, _, terminated, truncated, _ = env.step(-np.ones(1))
        assert not terminated and truncated == (step == 4)


def test_sampled_done_follows_the_calibrated_probability():
    q = 0.3
    logit = math.log(10 * q / (1 + 9 * q) / (1 - 10 * q / (1 + 9 * q)))
    m = tiny_m(done_bias=logit)
    dream = BatchedDream(m, torch.ones(1, 1), torch.full((1, 1), -10.0), 1.0, "sample",
                         torch.Generator().manual_seed(0), done_weight=10.0)
    dream.reset(4000)
    rate = dream.step(torch.zeros(4000, 1)).float().mean().item()
    assert rate == pytest.approx(q, abs=0.03)


def test_batched_dream_scores_each_candidate():
    m = tiny_m(done_bias=5.0)
    config = config_for("doom_take_cover", "small", ["vae.z_size=1", "mdnrnn.hidden=2"])
    controller = build_controller(config, "doom_take_cover")
    params = torch.zeros(3, controller.param_count)
    params[1, 0] = -5.0  # acts on z ~ 1: a = tanh(-5) -> survives
    dream = BatchedDream(m, torch.ones(2, 1), torch.full((2, 1), -10.0), 1.0, "threshold", torch.Generator())
    returns = dream_returns(dream, controller, params, 4, "doom_take_cover", "zch", max_steps=30)
    assert returns.shape == (3, 4)
    assert returns[0].tolist() == [1.0] * 4 and returns[1].tolist() == [30.0] * 4


def test_cma_es_improves_a_controller_in_a_tiny_dream(tmp_path, monkeypatch):
    overrides = ["vae.z_size=1", "mdnrnn.hidden=2", "mdnrnn.mixtures=1", "controller.max_steps=50",
                 "controller.generations=12", "controller.popsize=8", "controller.rollouts=2",
                 "controller.eval_every=3", "controller.eval_rollouts=8", "controller.done_mode=threshold",
                 "checks.refuse_bad_dream=false", "iterate.rounds=1", "iterate.max_rounds=1"]
    # left lives, right dies: a lopsided dream on purpose
    ctx = open_context("doom_take_cover", "small", overrides, tmp_path)
    monkeypatch.setattr("ha2018.verify.baseline_trials", lambda *a: REAL_SURVIVAL)
    save_checkpoint(ctx.path("mdnrnn.pt", shared=True), {
        "model": tiny_m(done_bias=12.0).state_dict(), "initial_mu": torch.ones(4, 1),
        "initial_logvar": torch.full((4, 1), -10.0), "finished": True})
    train_controller(ctx)
    state = torch.load(ctx.path("controller.pt"), weights_only=True)
    history = state["history"]
    assert history[0]["mean"] < 15 and state["best_eval"] == 50.0  # needs a < -0.17 to survive: found
    assert (tmp_path / "fitness.png").exists()


REAL_SURVIVAL = {"random": [200.0], "noop": [180.0], "left": [190.0], "right": [190.0]}


def test_controller_refuses_a_dream_that_fails_its_check(tmp_path, monkeypatch, capsys):
    save_checkpoint(tmp_path / "checkpoints" / "mdnrnn.pt", {
        "model": tiny_m(done_bias=12.0).state_dict(), "initial_mu": torch.ones(4, 1),
        "initial_logvar": torch.full((4, 1), -10.0), "finished": True})
    monkeypatch.setattr("ha2018.verify.baseline_trials", lambda *a: REAL_SURVIVAL)
    args = ["controller", "--logdir", str(tmp_path), *[x for kv in ("vae.z_size=1", "mdnrnn.hidden=2",
            "mdnrnn.mixtures=1", "controller.max_steps=500", "controller.generations=1", "controller.popsize=4",
            "controller.done_mode=threshold", "checks.dream_trials=8", "iterate.rounds=1", "iterate.max_rounds=1")
            for x in ("--set", kv)]]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: the dream fails its check")
    assert "left (500) and right (1) differ" in err and "refuse_bad_dream=false" in err
    check = json.loads((tmp_path / "data" / "dream_check.json").read_text())
    assert check["left_dream"] == 500 and check["right_dream"] == 1 and not check["passed"]
    assert main(args + ["--set", "checks.refuse_bad_dream=false"]) == 0  # told to: trains in it
    save_checkpoint(tmp_path / "checkpoints" / "mdnrnn.pt", {  # M retrained (dies at once): checked anew
        "model": tiny_m(done_bias=40.0).state_dict(), "initial_mu": torch.ones(4, 1),
        "initial_logvar": torch.full((4, 1), -10.0), "finished": True})
    (tmp_path / "checkpoints" / "controller.pt").unlink()
    assert main(args) == 0
    assert json.loads((tmp_path / "data" / "dream_check.json").read_text())["left_dream"] == 1


def test_an_earlier_rounds_controller_trains_in_a_dream_that_fails_and_keeps_its_check(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "checkpoints" / "mdnrnn.pt", {
        "model": tiny_m(done_bias=12.0).state_dict(), "initial_mu": torch.ones(4, 1),
        "initial_logvar": torch.full((4, 1), -10.0), "epoch": 1})
    monkeypatch.setattr("ha2018.verify.baseline_trials", lambda *a: REAL_SURVIVAL)
    args = ["controller", "--round", "1", "--logdir", str(tmp_path), *[x for kv in (
        "vae.z_size=1", "mdnrnn.hidden=2", "mdnrnn.mixtures=1", "mdnrnn.epochs=1", "controller.max_steps=500",
        "controller.generations=1", "controller.popsize=4", "controller.eval_rollouts=2",
        "controller.done_mode=threshold", "checks.dream_trials=8", "iterate.rounds=2") for x in ("--set", kv)]]
    assert main(args) == 0  # its C only collects round 2's data: the procedure is there to fix this dream
    assert not json.loads((tmp_path / "data" / "dream_check_round1.json").read_text())["passed"]
    assert load_checkpoint(tmp_path / "checkpoints" / "controller_round1.pt")["round"] == 1
    assert not (tmp_path / "checkpoints" / "controller.pt").exists()


def test_a_last_round_whose_dream_fails_adds_a_round_up_to_max_rounds(tmp_path, monkeypatch, capsys):
    save_checkpoint(tmp_path / "checkpoints" / "mdnrnn.pt", {
        "model": tiny_m(done_bias=12.0).state_dict(), "initial_mu": torch.ones(4, 1),
        "initial_logvar": torch.full((4, 1), -10.0), "epoch": 1})
    monkeypatch.setattr("ha2018.verify.baseline_trials", lambda *a: REAL_SURVIVAL)
    args = ["controller", "--logdir", str(tmp_path), *[x for kv in (
        "vae.z_size=1", "mdnrnn.hidden=2", "mdnrnn.mixtures=1", "mdnrnn.epochs=1", "controller.max_steps=500",
        "controller.generations=1", "controller.popsize=4", "controller.eval_rollouts=2",
        "controller.done_mode=threshold", "checks.dream_trials=8", "iterate.rounds=1", "iterate.max_rounds=2")
        for x in ("--set", kv)]]
    assert main(args) == 0  # round 1 was the last; its dream fails, so round 2 is added and round 1's C collects
    assert "round 1's dream fails its check: its controller collects round 2's data" in capsys.readouterr().out
    assert json.loads((tmp_path / "data" / "rounds.json").read_text()) == {"rounds": 2}
    assert not json.loads((tmp_path / "data" / "dream_check_round1.json").read_text())["passed"]
    assert load_checkpoint(tmp_path / "checkpoints" / "controller_round1.pt")["round"] == 1
    assert not (tmp_path / "checkpoints" / "controller.pt").exists()
    assert main(["mdnrnn", "--round", "3", *args[1:]]) == 2  # the run has 2 rounds now
    assert "--round must be from 1 to the run's 2 rounds" in capsys.readouterr().err


def test_judge_dream_flags_an_easy_dream_and_passes_a_faithful_one():
    real = {"random": 200.0, "noop": 180.0, "left": 190.0, "right": 190.0}
    assert judge_dream({"random": 250.0, "noop": 200.0, "left": 210.0, "right": 180.0}, real, 2.0, 0.5)["passed"]
    easy = judge_dream({"random": 900.0, "noop": 200.0, "left": 210.0, "right": 180.0}, real, 2.0, 0.5)
    assert not easy["passed"] and easy["reasons"][0].startswith("random lives 4.5x longer")


def test_vae_check_fails_a_v_that_outputs_the_mean_image():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (40, 64, 64, 3), dtype=np.uint8)
    mean_image = torch.from_numpy(frames.astype(np.float32).mean(axis=0) / 255).permute(2, 0, 1)

    class MeanV(ConvVAE):
        def decode(self, z):
            return mean_image.expand(len(z), -1, -1, -1)

    class PerfectV(ConvVAE):  # remembers the frame it encoded
        def encode(self, x):
            self.last = x
            return super().encode(x)

        def decode(self, z):
            return self.last
    mean_check = vae_check(MeanV(4), frames, max_ratio=0.5)
    assert mean_check["vae_error_ratio"] == pytest.approx(1.0, abs=1e-4) and not mean_check["vae_check_passed"]
    perfect = vae_check(PerfectV(4), frames, max_ratio=0.5)
    assert perfect["vae_heldout_error"] < 1e-6 and perfect["vae_check_passed"]


# ---- data and CLI --------------------------------------------------------------------------------------------
def test_stream_batches_flag_restarts_and_overlap_by_one_frame():
    episodes = [{"mu": np.full((n, 2), float(i)), "logvar": np.full((n, 2), -30.0), "actions": np.zeros((n, 1)),
                 "dones": np.zeros(n, bool)} for i, n in enumerate([7, 5, 9, 4])]
    batches = list(stream_batches(episodes, batch_size=2, seq_len=4, rng=np.random.default_rng(0)))
    assert len(batches) == 2 and not batches[0].carry and batches[1].carry
    assert np.array_equal(batches[0].z[:, -1], batches[1].z[:, 0])  # chunk k ends where chunk k+1 starts
    z, restart = batches[0].z[0, :, 0], batches[0].restart[0]
    changes = np.flatnonzero(np.diff(np.round(z)) != 0) + 1
    assert restart[0] == 1 and all(restart[changes] == 1) and restart.sum() == 1 + len(changes)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["vae", "--task", "doom_take_cover", "--logdir", str(tmp_path), "--set", "vae.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["vae", "--task", "doom_take_cover", "--logdir", str(tmp_path)]) == 2
    assert "collect" in capsys.readouterr().err  # no rollouts yet
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    (tmp_path / "checkpoints" / "controller.pt").write_bytes(b"garbage")
    assert main(["evaluate", "--task", "doom_take_cover", "--logdir", str(tmp_path)]) == 2
    assert "corrupt" in capsys.readouterr().err
