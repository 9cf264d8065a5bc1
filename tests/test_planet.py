"""PlaNet: RSSM shapes and the prior/posterior split, free-nats KL, CEM, bit depth, parameter counts, the policy
and open-loop contracts, the CLI's errors; slow: training steps on real DMC, resume after SIGKILL."""
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from planet.__main__ import CONFIG, build_config, main
from planet.agent import PlaNet, free_nats_kl, postprocess, preprocess
from planet.networks import RSSM, Decoder, Encoder, kl_gaussian
from planet.planner import cem
from tools.config import load_config

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")


def spec(act_dim: int = 1) -> SimpleNamespace:
    return SimpleNamespace(obs_shapes={"image": (64, 64, 3)}, act_dim=act_dim, discrete=False, action_repeat=8)


def paper_agent(act_dim: int = 1, **planner) -> PlaNet:
    config = load_config(CONFIG, [], [f"agent.planner.{k}={v}" for k, v in planner.items()])
    return PlaNet(spec(act_dim), config.agent)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- RSSM -----------------------------------------------------------------------------------------
def test_rssm_shapes_and_prior_posterior_split():
    torch.manual_seed(0)
    rssm = RSSM(act_dim=2, embed_dim=1024)
    B, T = 3, 5
    embed, action = torch.randn(B, T, 1024), torch.randn(B, T, 2)
    first = torch.zeros(B, T, dtype=torch.bool)
    first[:, 0] = True
    prior, post = rssm.observe(embed, action, first)
    for state in (prior, post):
        assert state["mean"].shape == state["std"].shape == state["stoch"].shape == (B, T, 30)
        assert state["deter"].shape == (B, T, 200)
        assert state["std"].min() >= 0.1  # softplus + min std 0.1
    assert torch.equal(prior["deter"], post["deter"])  # both read the same GRU belief h_t
    assert rssm.feat(post).shape == (B, T, 230)
    # the prior never sees o_t: a different embedding changes the posterior only
    torch.manual_seed(1)
    prior2, post2 = rssm.observe(embed.clone().index_fill_(1, torch.tensor([T - 1]), 0.0), action, first)
    torch.manual_seed(1)
    prior1, post1 = rssm.observe(embed, action, first)
    assert torch.equal(prior1["mean"][:, -1], prior2["mean"][:, -1])
    assert not torch.allclose(post1["mean"][:, -1], post2["mean"][:, -1])


def test_is_first_resets_state_to_zero():
    torch.manual_seed(0)
    rssm = RSSM(act_dim=1, embed_dim=8)
    embed, action = torch.randn(2, 4, 8), torch.randn(2, 4, 1)
    first = torch.tensor([[True, False, True, False], [True, False, False, False]])
    torch.manual_seed(1)
    _, post = rssm.observe(embed, action, first)
    torch.manual_seed(1)
    _, fresh = rssm.observe(embed[:, 2:], torch.zeros(2, 2, 1), torch.ones(2, 2, dtype=torch.bool))
    # row 0 restarts at t=2 from the zero state and zero action: same deterministic belief as a fresh start
    assert torch.allclose(post["deter"][0, 2], fresh["deter"][0, 0], atol=1e-6)
    assert not torch.allclose(post["deter"][1, 2], fresh["deter"][1, 0])


# ---- objective --------------------------------------------------------------------------------------
def test_free_nats_kl_matches_hand_computation():
    # post N(1, 1), prior N(0, 2) per dim: KL = log 2 + (1 + 1) / (2 * 4) - 1/2 = 0.4431472 per dim
    post = {"mean": torch.ones(2, 30), "std": torch.ones(2, 30)}
    prior = {"mean": torch.zeros(2, 30), "std": torch.full((2, 30), 2.0)}
    kl = kl_gaussian(post, prior)
    assert torch.allclose(kl, torch.full((2,), 30 * (math.log(2) + 0.25 - 0.5)), atol=1e-4)
    kl_values = torch.tensor([[13.294416, 0.5], [2.0, 7.0]])
    # clipped below at 3 nats, then averaged: (13.294416 + 3 + 3 + 7) / 4
    assert free_nats_kl(kl_values, 3.0).item() == pytest.approx((13.294416 + 3 + 3 + 7) / 4, abs=1e-5)
    grad_probe = kl_values.clone().requires_grad_()
    free_nats_kl(grad_probe, 3.0).backward()
    assert torch.equal(grad_probe.grad, torch.tensor([[0.25, 0.0], [0.0, 0.25]]))  # no gradient below 3 nats


def test_bit_depth_reduction_and_dequantisation_noise():
    torch.manual_seed(0)
    image = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16, 1).expand(4, 16, 16, 3)
    x = preprocess(image, 5)
    base = torch.floor(image.float() / 8) / 32 - 0.5  # 32 levels
    noise = x - base
    assert noise.min() >= 0 and noise.max() < 1 / 32  # uniform noise within one bin
    assert x.min() >= -0.5 and x.max() < 0.5
    assert torch.equal(postprocess(x, 5), (image // 8) * 8)  # the noise never crosses a bin
    assert len(torch.unique(postprocess(x, 5))) == 32


# ---- planner ---------------------------------------------------------------------------------------
def test_cem_finds_quadratic_optimum():
    torch.manual_seed(0)
    target = torch.tensor([[0.5, -0.3], [0.2, 0.9], [-0.7, 0.1]])  # (H=3, A=2), inside [-1, 1]
    calls = []

    def objective(actions):  # (N*J, H, A) -> (N*J,)
        calls.append(actions.shape)
        return -(actions - target).square().sum((1, 2))

    first = cem(objective, batch=2, horizon=3, act_dim=2, iterations=10, candidates=1000, top_k=100)
    assert first.shape == (2, 2)
    assert torch.allclose(first, target[0].expand(2, 2), atol=0.02)
    assert calls == [(2000, 3, 2)] * 10  # all candidates of all environments as one batch, I times


def test_cem_respects_action_bounds():
    torch.manual_seed(0)
    first = cem(lambda a: a.sum((1, 2)), batch=1, horizon=2, act_dim=1, iterations=5, candidates=100, top_k=10)
    assert 0.9 < first.item() <= 1.0


# ---- sizes -------------------------------------------------------------------------------------------
def test_parameter_counts_of_the_paper_networks():
    """Ha & Schmidhuber conv nets at depth 32; RSSM with GRU 200, hidden 200, latent 30; reward head 3 x 300."""
    encoder = Encoder(3, 32)
    assert count(encoder) == sum(i * o * 16 + o for i, o in [(3, 32), (32, 64), (64, 128), (128, 256)])
    assert encoder(torch.zeros(2, 64, 64, 3)).shape == (2, 1024)
    decoder = Decoder(230, 3, 32)
    assert count(decoder) == (230 * 1024 + 1024 + 1024 * 128 * 25 + 128 + 128 * 64 * 25 + 64 + 64 * 32 * 36 + 32
                              + 32 * 3 * 36 + 3)
    assert decoder(torch.zeros(2, 230)).shape == (2, 64, 64, 3)
    rssm = RSSM(act_dim=6, embed_dim=1024)
    gru = (400 * 400 + 400) + (400 * 200 + 200)
    heads = (200 * 200 + 200 + 200 * 60 + 60) + (1224 * 200 + 200 + 200 * 60 + 60)
    assert count(rssm) == (36 * 200 + 200) + gru + heads
    agent = paper_agent(act_dim=6)
    assert count(agent.reward) == 230 * 300 + 300 + 2 * (300 * 300 + 300) + 301
    assert count(agent) == count(encoder) + count(decoder) + count(rssm) + count(agent.reward)


def test_gru_gate_biases_start_at_one():
    rssm = RSSM(act_dim=1, embed_dim=8)
    assert torch.equal(rssm.gru.gates.bias, torch.ones(400))
    assert torch.equal(rssm.gru.cand.bias, torch.zeros(200))


# ---- agent contracts --------------------------------------------------------------------------------
def test_policy_resets_plans_and_adds_noise_only_in_training():
    agent = paper_agent(act_dim=2, candidates=50, top_k=5, iterations=2)
    obs = {"image": np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8),
           "is_first": np.array([True, True, True])}
    outs = {}
    for mode in ("eval", "eval", "train"):
        torch.manual_seed(0)
        action, state = agent.policy(obs, agent.initial_state(3), mode)
        outs.setdefault(mode, []).append(action)
        assert action.shape == (3, 2) and action.abs().max() <= 1
        assert torch.equal(state["action"], action) and state["deter"].shape == (3, 200)
    assert torch.equal(outs["eval"][0], outs["eval"][1])
    assert not torch.equal(outs["eval"][0], outs["train"][0])
    # a state carried from another episode is dropped where is_first is set
    torch.manual_seed(0)
    carried = {k: v + 5 for k, v in state.items()}
    reset, _ = agent.policy(obs, carried, "eval")
    assert torch.equal(reset, outs["eval"][0])


def batch_of(B: int, T: int, act_dim: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = np.zeros((B, T), bool)
    first[:, 0] = True
    return {"image": rng.integers(0, 256, (B, T, 64, 64, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (B, T, act_dim)).astype(np.float32),
            "reward": rng.uniform(0, 1, (B, T)).astype(np.float32), "is_first": first,
            "is_last": np.zeros((B, T), bool), "is_terminal": np.zeros((B, T), bool)}


def test_train_step_metrics_and_open_loop_video():
    torch.manual_seed(0)
    agent = paper_agent()
    metrics = agent.train_step(batch_of(2, 6))
    for key in ("loss/image", "loss/reward", "loss/kl", "loss/total", "grad_norm/model"):
        assert math.isfinite(metrics[key])
    assert metrics["loss/kl"] >= 3.0  # free nats
    expected = metrics["loss/image"] + 10 * metrics["loss/reward"] + metrics["loss/kl"]
    assert metrics["loss/total"] == pytest.approx(expected, rel=1e-5)
    video = agent.open_loop(batch_of(4, 8), context=5)["image"]
    assert video.shape == (4, 8, 64, 192, 3) and video.dtype == np.uint8


def test_state_vector_agent_of_the_small_preset():
    """dmcproprio tasks: the state is the embedding, decoded by a dense net; same objective, no video."""
    torch.manual_seed(0)
    config = build_config("dmcproprio_cartpole_swingup", "small", 0, [])
    agent = PlaNet(SimpleNamespace(obs_shapes={"vector": (5,)}, act_dim=1, discrete=False), config.agent)
    batch = batch_of(4, 10)
    batch["vector"] = np.random.default_rng(1).normal(size=(4, 10, 5)).astype(np.float32)
    del batch["image"]
    first = agent.train_step(batch)
    expected = first["loss/vector"] + 10 * first["loss/reward"] + first["loss/kl"]
    assert first["loss/total"] == pytest.approx(expected, rel=1e-5)
    for _ in range(20):
        last = agent.train_step(batch)
    assert last["loss/vector"] < first["loss/vector"]
    assert agent.open_loop(batch, context=5) == {}
    action, _ = agent.policy({"vector": batch["vector"][:, 0], "is_first": np.ones(4, bool)},
                             agent.initial_state(4), "eval")
    assert action.shape == (4, 1)
    with pytest.raises(ValueError, match="pixels"):
        PlaNet(SimpleNamespace(obs_shapes={"image": (64, 64, 3), "vector": (5,)}, act_dim=1, discrete=False),
               config.agent)


# ---- CLI --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "dmc_cartpole_swingup", "--preset", "huge"], "unknown preset 'huge'"),
    (["train", "--task", "atari_pong"], "DeepMind Control from pixels only"),
    (["train", "--task", "crafter_reward"], "DeepMind Control from pixels only"),
    (["train", "--task", "dmc_cartpole_swingup", "--set", "agent.nope=1"], "agent.nope"),
    (["train", "--task", "dmc_cartpole_swingup", "--seed", "-1"], "seed must be a number >= 0, got -1"),
    (["train", "--task", "dmc_cartpole_swingup", "--set", "seed=-2"], "seed must be a number >= 0, got -2"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_unknown_dmc_task(tmp_path, capsys):
    pytest.importorskip("tools.loop")
    assert main(["train", "--task", "dmc_cartpole_flyaway", "--logdir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "dmc_cartpole_flyaway" in err and err.count("\n") == 1


def test_cli_corrupt_checkpoint(tmp_path, capsys):
    pytest.importorskip("tools.loop")
    logdir = tmp_path / "run"
    assert main(["train", "--preset", "small", "--logdir", str(logdir), "--set", "run.steps=1",
                 "--set", "run.eval_every=0", "--no-export"]) == 0
    (logdir / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    capsys.readouterr()
    assert main(["train", "--preset", "small", "--logdir", str(logdir), "--set", "run.steps=2000",
                 "--set", "run.eval_every=0", "--no-export"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_presets_resolve():
    paper = build_config("dmc_walker_walk", "paper", 3, [])
    assert paper.agent.planner.candidates == 1000 and paper.batch_size == 50 and paper.seed == 3
    small = build_config(None, "small", 0, [])
    assert small.task == "dmcproprio_cartpole_swingup" and small.run.prefill_episodes == 5


# ---- slow: real DMC -------------------------------------------------------------------------------
@pytest.mark.slow
def test_training_steps_on_real_dmc_reduce_the_losses(random_cartpole_episode):
    data = {k: v[None] for k, v in random_cartpole_episode(40, action_repeat=8).items()}
    data["is_first"] = np.zeros((1, 41), bool)
    data["is_first"][0, 0] = True
    batch = {k: np.repeat(v[:, :32], 4, 0) for k, v in data.items()}
    torch.manual_seed(0)
    agent = paper_agent()
    first = agent.train_step(batch)
    for _ in range(10):
        last = agent.train_step(batch)
    assert last["loss/image"] < first["loss/image"] - 100  # nats per image
    assert last["loss/reward"] < first["loss/reward"]


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    pytest.importorskip("tools.loop")
    logdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "planet", "train", "--preset", "small", "--seed", "0", "--logdir", str(logdir),
           "--no-export", "--set", "run.steps=2000", "--set", "run.save_every=1000", "--set", "run.prefill_episodes=1",
           "--set", "run.schedule.updates=1", "--set", "batch_size=2", "--set", "batch_length=8",
           "--set", "agent.planner.candidates=10", "--set", "agent.planner.top_k=2",
           "--set", "agent.planner.iterations=1", "--set", "run.eval_every=0", "--set", "replay.size=4000"]
    env = {**os.environ, "MUJOCO_GL": "egl"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = logdir / "checkpoints" / "latest.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed" in done.stdout
    import json
    summary = json.loads((logdir / "summary.json").read_text())
    assert summary["finished"] and summary["budget"] >= 2000


def test_latent_overshooting_option():
    """Off in `paper`; on, it adds masked multi-step KL terms and trains."""
    from planet.agent import overshooting_kl

    torch.manual_seed(0)
    rssm = RSSM(act_dim=1, embed_dim=8)
    first = torch.zeros(2, 6, dtype=torch.bool)
    first[:, 0] = True
    _, post = rssm.observe(torch.randn(2, 6, 8), torch.randn(2, 6, 1), first)
    assert overshooting_kl(rssm, post, torch.randn(2, 6, 1), first, 1, 3.0).item() == 0  # no distance >= 1
    kl = overshooting_kl(rssm, post, torch.randn(2, 6, 1), first, 4, 0.0)
    assert kl.item() > 0 and kl.requires_grad
    assert build_config(None, "paper", 0, []).agent.overshooting.scale == 0
    config = load_config(CONFIG, [], ["agent.overshooting.distance=4", "agent.overshooting.scale=1.0"])
    agent = PlaNet(spec(), config.agent)
    assert "loss/overshooting" in agent.train_step(batch_of(2, 6))


def test_cli_speed_and_random_commands(capsys):
    assert main(["speed", "--preset", "small", "--calls", "1", "--set", "agent.planner.candidates=20",
                 "--set", "agent.planner.top_k=2"]) == 0
    assert "actions/s" in capsys.readouterr().out
    assert main(["baseline", "--preset", "small", "--eval-step", "0", "--episodes", "1", "--policy", "0"]) == 0
    assert "0 policy, dmcproprio_cartpole_swingup seed 0, the evaluation round at step 0" in capsys.readouterr().out
