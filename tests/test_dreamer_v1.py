"""Dreamer (v1): lambda-returns, gradient routing (actor through the dynamics, no actor/value gradient into the
world model, stopped value target), shapes, parameter counts, a few real training steps, resume and the CLI."""
import json
import math

import numpy as np
import pytest
import torch

from dreamer_v1.__main__ import CONFIG, main
from dreamer_v1.agent import Dreamer, lambda_return, unit_normal_nll
from dreamer_v1.networks import TanhNormal
from tools.config import load_config


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**agent):
    overrides = ["agent.units=32", "agent.deter=24", "agent.stoch=6", "agent.cnn_depth=4", "agent.horizon=5",
                 *(f"agent.{k}={v}" for k, v in agent.items())]
    return load_config(CONFIG, ["paper"], overrides)


def batch_of(B: int, T: int, A: int, seed: int = 0, image: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = {"image": rng.integers(0, 256, (B, T, 64, 64, 3), dtype=np.uint8)} if image else \
        {"vector": rng.normal(size=(B, T, 5)).astype(np.float32)}
    return {**obs, "action": rng.uniform(-1, 1, (B, T, A)).astype(np.float32),
            "reward": rng.uniform(0, 1, (B, T)).astype(np.float32)}


# ---- lambda return ------------------------------------------------------------------------------------
def test_lambda_return_by_hand():
    reward = torch.tensor([1.0, 2.0, 3.0])
    value = torch.tensor([10.0, 20.0, 30.0])  # v(s_0), v(s_1), v(s_2)
    pcont = torch.full((3,), 0.9)
    bootstrap, lam = torch.tensor(40.0), 0.5
    # R_2 = 3 + 0.9 * 40 = 39
    # R_1 = 2 + 0.9 * (0.5 * 30 + 0.5 * 39) = 2 + 0.9 * 34.5 = 33.05
    # R_0 = 1 + 0.9 * (0.5 * 20 + 0.5 * 33.05) = 1 + 0.9 * 26.525 = 24.8725
    returns = lambda_return(reward, value, pcont, bootstrap, lam)
    assert torch.allclose(returns, torch.tensor([24.8725, 33.05, 39.0]))
    # lambda 1: discounted Monte Carlo return with bootstrap; lambda 0: one-step TD targets
    mc = lambda_return(reward, value, pcont, bootstrap, 1.0)
    assert mc[0].item() == pytest.approx(1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 40)
    td = lambda_return(reward, value, pcont, bootstrap, 0.0)
    assert torch.allclose(td, torch.tensor([1 + 0.9 * 20, 2 + 0.9 * 30, 3 + 0.9 * 40]))


# ---- gradient routing ----------------------------------------------------------------------------------
def test_actor_gradient_flows_only_through_the_dynamics():
    torch.manual_seed(0)
    agent = Dreamer({"vector": (5,)}, 2, tiny_config().agent)
    data = agent.preprocess(batch_of(3, 6, 2, image=False))
    action = torch.as_tensor(batch_of(3, 6, 2, image=False)["action"])
    _, post, _ = agent.world_model_loss(data, action, torch.zeros(3, 6))
    actor_loss, value_loss, _ = agent.behaviour_losses(post)
    grads = torch.autograd.grad(actor_loss, agent.params("actor"), retain_graph=True)
    assert sum(g.abs().sum() for g in grads) > 0
    # the dynamics (and reward/value models) are in the actor's graph ...
    rssm = torch.autograd.grad(actor_loss, list(agent.rssm.parameters()), retain_graph=True, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in rssm)
    # ... and they are the only path: with the action columns of the dynamics' input layer zeroed, the actions
    # cannot affect any imagined state and the actor gets no gradient at all (its inputs are stop-gradients)
    with torch.no_grad():
        agent.rssm.img1.weight[:, agent.rssm.stoch_size:] = 0
    torch.manual_seed(1)
    actor_loss, _, _ = agent.behaviour_losses(post)
    grads = torch.autograd.grad(actor_loss, agent.params("actor"))
    assert sum(g.abs().sum() for g in grads) == 0


def test_each_optimiser_gets_only_its_own_loss_gradient():
    """After train_step the model's gradients equal those of the model loss alone (the actor and value losses
    add nothing) and the actor's those of the actor loss: same random numbers, lr 0 so nothing moves."""
    config = tiny_config(model_lr=0.0, actor_lr=0.0, value_lr=0.0)
    batch = batch_of(2, 5, 1)
    torch.manual_seed(0)
    agent = Dreamer({"image": (64, 64, 3)}, 1, config.agent)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    torch.manual_seed(1)
    obs, action = agent.preprocess(batch), torch.as_tensor(batch["action"])
    model_loss, post, _ = agent.world_model_loss(obs, action, torch.as_tensor(batch["reward"]))
    actor_loss, value_loss, _ = agent.behaviour_losses(post)
    expected = {name: torch.autograd.grad(loss, agent.params(name), retain_graph=True)
                for name, loss in (("model", model_loss), ("actor", actor_loss), ("value", value_loss))}
    torch.manual_seed(1)
    metrics = agent.train_step(batch)
    for name, grads in expected.items():
        assert metrics[f"grad_norm/{name}"] < agent.config.grad_clip  # no clipping in this check
        for p, g in zip(agent.params(name), grads):
            assert torch.allclose(p.grad, g, atol=1e-6), name
    assert all(torch.equal(before[k], v) for k, v in agent.state_dict().items())


def test_value_target_is_stopped():
    """The value loss trains only the value model, toward returns treated as constants."""
    torch.manual_seed(0)
    agent = Dreamer({"vector": (5,)}, 1, tiny_config().agent)
    imag_feat = torch.randn(5, 7, agent.rssm.feat_dim)  # (H, N, F)
    _, value_loss, _ = agent.returns_and_losses(imag_feat)
    others = agent.params("actor") + agent.params("model")
    assert all(g is None for g in torch.autograd.grad(value_loss, others, retain_graph=True, allow_unused=True))
    grads = torch.autograd.grad(value_loss, agent.params("value"))
    with torch.no_grad():  # the same loss with the target computed outside autograd
        reward, value = agent.reward(imag_feat), agent.value(imag_feat)
        target = lambda_return(reward[:-1], value[:-1], torch.full_like(reward[:-1], 0.99), value[-1], 0.95)
        weight = 0.99 ** torch.arange(4.0)[:, None]
    manual = (weight * unit_normal_nll(agent.value(imag_feat)[:-1], target)).mean()
    for g, m in zip(grads, torch.autograd.grad(manual, agent.params("value"))):
        assert torch.allclose(g, m, atol=1e-6)


# ---- shapes, distributions, sizes ------------------------------------------------------------------------
def test_shapes_policy_and_open_loop():
    torch.manual_seed(0)
    agent = Dreamer({"image": (64, 64, 3)}, 2, tiny_config().agent)
    batch = batch_of(2, 8, 2)
    obs = agent.preprocess(batch)
    assert obs["image"].min() >= -0.5 and obs["image"].max() <= 0.5
    embed = agent.encoder(obs)
    assert embed.shape == (2, 8, 32 * 4)
    post, prior = agent.rssm.observe(embed, torch.as_tensor(batch["action"]))
    assert post["stoch"].shape == (2, 8, 6) and prior["deter"].shape == (2, 8, 24)
    assert agent.decoder(agent.rssm.feat(post))["image"].shape == (2, 8, 64, 64, 3)
    assert agent.imagine_ahead(post).shape == (5, 16, 30)  # (H, B*T, stoch + deter)
    state = agent.initial_state(3)
    step = {"image": batch["image"][:, 0].repeat(2, 0)[:3], "is_first": np.array([True, False, True])}
    for mode in ("train", "eval"):
        action, new = agent.policy(step, state, mode)
        assert action.shape == (3, 2) and action.abs().max() <= 1
    # rows with is_first start again from the zero state
    new["deter"] += 1.0
    _, from_reset = agent.policy({**step, "is_first": np.ones(3, bool)}, new, "eval")
    _, from_zero = agent.policy({**step, "is_first": np.zeros(3, bool)}, agent.initial_state(3), "eval")
    assert torch.allclose(from_reset["deter"], from_zero["deter"])
    video = agent.open_loop(batch_of(4, 12, 2), context=5)["image"]
    assert video.shape == (4, 12, 64, 192, 3) and video.dtype == np.uint8


def test_tanh_normal_log_prob_mode_and_actor_init():
    dist = TanhNormal(torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, 2.0]]))
    y = torch.tensor([[0.2, -0.7]])
    x = torch.atanh(y)
    expected = (torch.distributions.Normal(dist.base.loc, dist.base.scale).log_prob(x)
                - torch.log(1 - y ** 2)).sum(-1)
    assert torch.allclose(dist.log_prob(y), expected, atol=1e-5)
    torch.manual_seed(0)
    narrow = TanhNormal(torch.tensor([[0.5], [-0.2]]), torch.tensor([[0.01], [0.01]]))
    assert torch.allclose(narrow.mode(), torch.tanh(torch.tensor([[0.5], [-0.2]])), atol=0.02)
    # initial actor: std = softplus(0 + softplus^-1(5)) + 1e-4 = 5 for zero pre-activations
    agent = Dreamer({"vector": (5,)}, 3, tiny_config().agent)
    torch.nn.init.zeros_(agent.actor.net[-1].weight)
    std = agent.actor(torch.zeros(1, agent.rssm.feat_dim)).base.scale
    assert torch.allclose(std, torch.full((1, 3), 5.0 + 1e-4))


def test_parameter_counts_of_the_paper_model():
    """Counted by hand from the official layer layout (models.py), 64x64x3 images, 6 actions (walker)."""
    agent = Dreamer({"image": (64, 64, 3)}, 6, load_config(CONFIG, ["paper"]).agent)
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    dense = lambda i, o: i * o + o  # noqa: E731
    assert count(agent.encoder) == conv(3, 32, 4) + conv(32, 64, 4) + conv(64, 128, 4) + conv(128, 256, 4) == 690144
    assert count(agent.decoder) == (dense(230, 1024) + conv(1024, 128, 5) + conv(128, 64, 5)
                                    + conv(64, 32, 6) + conv(32, 3, 6)) == 3795555
    gru = 3 * (200 * 200 + 200 * 200 + 2 * 200)
    assert count(agent.rssm) == (dense(36, 200) + gru + dense(200, 200) + dense(200, 60) + dense(1224, 200)
                                 + dense(200, 60)) == 557920
    assert count(agent.reward) == dense(230, 400) + dense(400, 400) + dense(400, 1) == 253201
    assert count(agent.value) == dense(230, 400) + 2 * dense(400, 400) + dense(400, 1) == 413601
    assert count(agent.actor) == dense(230, 400) + 3 * dense(400, 400) + dense(400, 12) == 578412
    assert sum(len(o.param_groups[0]["params"]) for o in agent.optimizers.values()) == len(list(agent.parameters()))


# ---- training --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_training_steps_on_real_dmc_reduce_the_losses(random_cartpole_episode):
    seqs = random_cartpole_episode(63)
    batch = {k: v.reshape(4, 16, *v.shape[1:]) for k, v in seqs.items()}
    torch.manual_seed(0)
    agent = Dreamer({"image": (64, 64, 3)}, 1, tiny_config(cnn_depth=8).agent)
    first = agent.train_step(batch)
    for _ in range(15):
        last = agent.train_step(batch)
    assert last["loss/image"] < first["loss/image"] - 50
    assert last["loss/reward"] < first["loss/reward"]
    assert all(math.isfinite(v) for v in last.values())


@pytest.mark.slow
def test_cli_run_resumes(tmp_path):
    logdir = tmp_path / "run"
    args = ["train", "--task", "dmcproprio_cartpole_balance", "--preset", "small", "--seed", "3", "--logdir",
            str(logdir), "--no-export", "--set", "batch_size=4", "--set", "batch_length=8", "--set", "agent.units=16",
            "--set", "run.prefill=200", "--set", "run.schedule.updates=2", "--set", "run.schedule.every=100",
            "--set", "run.save_every=200", "--set", "run.eval_every=0", "--set", "run.log_every=100"]
    assert main(args + ["--set", "run.steps=400"]) == 0
    first = json.loads((logdir / "summary.json").read_text())
    assert first["budget"] == 400 and first["finished"]
    assert main(args + ["--set", "run.steps=600"]) == 0
    summary = json.loads((logdir / "summary.json").read_text())
    assert summary["budget"] == 600 and summary["updates"] > first["updates"]
    steps = [json.loads(line)["step"] for line in (logdir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 600  # no duplicated rows after the resume


def test_cli_errors_are_one_line(capsys):
    for argv in (["train", "--task", "atari_pong"], ["train", "--task", "dmc_walker_walk", "--preset", "tiny"],
                 ["train", "--task", "dmc_walker_walk", "--set", "agent.nope=1"],
                 ["train", "--task", "dmc_walker_wobble"], ["baseline", "--task", "crafter_reward"]):
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, (argv, err)


@pytest.mark.slow
def test_pixel_run_writes_open_loop_video(tmp_path):
    """The image path end to end through the driver: DMC renders, policy, updates, the open-loop gif."""
    logdir = tmp_path / "pixels"
    assert main(["train", "--task", "dmc_cartpole_swingup", "--preset", "paper", "--logdir", str(logdir),
                 "--no-export", "--set", "threads=1", "--set", "batch_size=2", "--set", "batch_length=50",
                 "--set", "agent.units=16", "--set", "agent.cnn_depth=4", "--set", "run.steps=240",
                 "--set", "run.prefill=200", "--set", "run.schedule.updates=2", "--set", "run.schedule.every=100",
                 "--set", "run.eval_every=0"]) == 0
    assert (logdir / "videos" / "openloop_image_240.gif").exists()
    assert json.loads((logdir / "summary.json").read_text())["updates"] >= 2
