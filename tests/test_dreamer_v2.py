"""DreamerV2: KL balancing, straight-through samples, the truncated normal, lambda returns, REINFORCE and dynamics
actor losses, the slow critic cadence, the optimiser, parameter counts, the CLI, and (slow) a few updates on real
ALE frames and a resumed end-to-end run."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dreamer_v2.__main__ import CONFIG, build_config, expand_presets, main
from dreamer_v2.agent import DreamerV2
from dreamer_v2.dists import OneHotDist, TruncNormalDist, categorical_kl
from dreamer_v2.losses import actor_loss, kl_balance, lambda_return
from dreamer_v2.optim import Optimizer
from tools.config import ConfigError, load_config


pytestmark = pytest.mark.usefixtures("one_thread")


# ---- KL balancing ---------------------------------------------------------------------------------
def test_kl_balance_hand_computed():
    # one latent, two classes: post = (0.5, 0.5), prior = (0.8, 0.2)
    # KL(post || prior) = 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2) = 0.5 ln(2.5 / 1.6) = 0.2231436
    post = torch.log(torch.tensor([[[0.5, 0.5]]]))
    prior = torch.log(torch.tensor([[[0.8, 0.2]]]))
    loss, value = kl_balance(post, prior, balance=0.8, free=0.0)
    kl = 0.5 * math.log(2.5 / 1.6)
    assert value.item() == pytest.approx(kl, abs=1e-6)
    assert loss.item() == pytest.approx(kl, abs=1e-6)  # both terms have the KL's value: 0.8 kl + 0.2 kl
    loss, _ = kl_balance(post, prior, balance=0.8, free=1.0)
    assert loss.item() == pytest.approx(1.0)  # free nats on the batch mean of each term ([code] free_avg)


def test_kl_balance_routes_alpha_to_prior_and_one_minus_alpha_to_posterior():
    torch.manual_seed(0)
    post = torch.randn(6, 32, 32, requires_grad=True)
    prior = torch.randn(6, 32, 32, requires_grad=True)
    loss, _ = kl_balance(post, prior, balance=0.8, free=0.0)
    g_post, g_prior = torch.autograd.grad(loss, [post, prior])
    # gradient of the plain KL, w.r.t. each side
    p2 = post.detach().requires_grad_()
    q2 = prior.detach().requires_grad_()
    plain = categorical_kl(p2, q2).sum(-1).mean()
    full_post, full_prior = torch.autograd.grad(plain, [p2, q2])
    assert torch.allclose(g_prior, 0.8 * full_prior, atol=1e-7)  # alpha = 0.8 trains the prior
    assert torch.allclose(g_post, 0.2 * full_post, atol=1e-7)  # 1 - alpha regularises the posterior
    # with free nats above the KL, nothing is trained
    loss, _ = kl_balance(post, prior, balance=0.8, free=1e6)
    assert all(g.abs().sum() == 0 for g in torch.autograd.grad(loss, [post, prior]))


# ---- distributions ----------------------------------------------------------------------------------
def test_straight_through_sample_is_one_hot_with_probability_gradients():
    torch.manual_seed(0)
    logits = torch.randn(1000, 32, 32, requires_grad=True)
    dist = OneHotDist(logits)
    sample = dist.sample()
    onehot = torch.nn.functional.one_hot(sample.detach().argmax(-1), 32).float()
    assert torch.allclose(sample.detach(), onehot, atol=1e-6)  # one-hot up to float rounding of probs - probs
    weights = torch.randn(32)
    (grad,) = torch.autograd.grad((sample * weights).sum(), logits)
    probs = logits.detach().softmax(-1)
    # d sample / d logits is d probs / d logits: softmax Jacobian applied to the weights
    jac = probs * (weights - (probs * weights).sum(-1, keepdim=True))
    assert torch.allclose(grad, jac, atol=1e-6)
    # empirical class frequencies follow the probabilities
    freq = dist.sample().detach().mean(0)
    assert (freq - probs.mean(0)).abs().max() < 0.1


def test_truncated_normal_bounds_density_and_entropy():
    torch.manual_seed(0)
    loc = torch.tensor([[0.9, -0.3]], requires_grad=True)
    scale = torch.tensor([[0.5, 1.5]], requires_grad=True)
    dist = TruncNormalDist(loc, scale, -1.0, 1.0)
    samples = torch.stack([dist.sample() for _ in range(2000)])
    assert samples.abs().max() <= 1 - 1e-6
    # the density integrates to one over [-1, 1] and its entropy is -E[log p]
    grid = torch.linspace(-1, 1, 20001)[:, None, None].expand(-1, 1, 2)
    logp = torch.stack([TruncNormalDist(loc[..., i:i + 1], scale[..., i:i + 1], -1, 1).log_prob(grid[..., i:i + 1])
                        for i in range(2)], -1).detach()  # (G, 1, 2)
    dens = logp.exp()
    assert torch.allclose(torch.trapezoid(dens, dx=2 / 20000, dim=0), torch.ones(1, 2), atol=1e-4)
    entropy = torch.trapezoid(-dens * logp, dx=2 / 20000, dim=0).sum(-1)
    assert dist.entropy().item() == pytest.approx(entropy.item(), abs=1e-3)
    samples.mean().backward()  # samples are reparameterised in loc and scale
    assert loc.grad.abs().sum() > 0 and scale.grad.abs().sum() > 0


def test_truncated_normal_pathwise_gradient_finds_an_interior_optimum():
    """Dynamics backpropagation through samples: minimising E[(a - 0.3)^2] moves the mean to 0.3 and shrinks the
    std, rather than pushing the action to a bound."""
    torch.manual_seed(0)
    mean, std = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([mean, std], lr=0.05)
    for _ in range(400):
        dist = TruncNormalDist(torch.tanh(mean).expand(256, 1), (2 * torch.sigmoid(std / 2) + 0.1).expand(256, 1),
                               -1.0, 1.0)
        loss = (dist.sample() - 0.3).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.tanh(mean).item() == pytest.approx(0.3, abs=0.03)
    assert (2 * torch.sigmoid(std / 2) + 0.1).item() < 0.2


def test_truncated_normal_sample_gradients_are_the_implicit_reparameterisation_ones():
    """TFP's TruncatedNormal samples with TF's implicit gradients dx/dtheta = -(dF(x; theta)/dtheta) / p(x); the
    inverse-CDF samples here must give the same, also with the mean near a bound and the minimum std."""
    torch.manual_seed(0)
    loc = torch.tensor([0.9, -0.3, 0.99, -0.999, 0.2], dtype=torch.float64)[:, None].expand(-1, 50)
    scale = torch.tensor([0.5, 1.5, 0.1, 0.1, 1.1], dtype=torch.float64)[:, None].expand(-1, 50)
    loc, scale = loc.clone().requires_grad_(), scale.clone().requires_grad_()
    x = TruncNormalDist(loc, scale, -1.0, 1.0).sample()
    g_loc, g_scale = torch.autograd.grad(x.sum(), [loc, scale])
    ndtr = torch.special.ndtr
    L, S, X = loc.detach().requires_grad_(), scale.detach().requires_grad_(), x.detach().double().requires_grad_()
    cdf = (ndtr((X - L) / S) - ndtr((-1 - L) / S)) / (ndtr((1 - L) / S) - ndtr((-1 - L) / S))
    dens, d_loc, d_scale = torch.autograd.grad(cdf.sum(), [X, L, S])
    assert torch.allclose(g_loc.double(), -d_loc / dens, atol=2e-6)
    assert torch.allclose(g_scale.double(), -d_scale / dens, atol=2e-6)


# ---- returns and actor losses ------------------------------------------------------------------------
def test_lambda_return_by_hand():
    reward = torch.tensor([[1.0, 2.0]])
    value = torch.tensor([[10.0, 20.0]])
    pcont = torch.tensor([[0.5, 0.5]])
    boot = torch.tensor([30.0])
    # lam 0: r_t + pcont_t v_{t+1}
    assert lambda_return(reward, value, pcont, boot, 0.0).tolist() == [[11.0, 17.0]]
    # lam 1: discounted return bootstrapped with 30
    assert lambda_return(reward, value, pcont, boot, 1.0).tolist() == [[1 + 0.5 * (2 + 0.5 * 30), 2 + 15.0]]
    # lam 0.5: R_1 = 2 + 0.5 (0.5 * 30 + 0.5 * 30) = 17; R_0 = 1 + 0.5 (0.5 * 20 + 0.5 * 17) = 10.25
    assert lambda_return(reward, value, pcont, boot, 0.5).tolist() == [[10.25, 17.0]]


def test_reinforce_actor_loss_gradient():
    logits = torch.tensor([[[0.0, 1.0, -1.0], [0.5, 0.0, 0.0]]], requires_grad=True)  # (N=1, T=2, A=3)
    policy = OneHotDist(logits)
    actions = torch.eye(3)[[1, 0]][None]
    target = torch.tensor([[2.0, -1.0]], requires_grad=True)
    baseline = torch.tensor([[0.5, 0.5]])
    weight = torch.tensor([[1.0, 0.5]])
    loss, _ = actor_loss(policy, actions, target, baseline, weight, rho=1.0, entropy_scale=0.0)
    grad_logits, grad_target = torch.autograd.grad(loss, [logits, target], allow_unused=True)
    # loss = -mean_t w_t (target_t - baseline_t) log pi(a_t): d/dlogits = -w adv (onehot - probs) / T
    probs = logits.detach().softmax(-1)
    adv = torch.tensor([[1.5, -1.5]])
    expected = -(weight * adv)[..., None] * (actions - probs) / 2
    assert torch.allclose(grad_logits, expected, atol=1e-6)
    assert grad_target is None  # the advantage is stop-gradient: no dynamics gradient with rho = 1


def test_dynamics_actor_loss_backpropagates_the_return():
    logits = torch.zeros(1, 2, 3, requires_grad=True)
    target = torch.tensor([[2.0, -1.0]], requires_grad=True)
    weight = torch.tensor([[1.0, 0.5]])
    loss, _ = actor_loss(OneHotDist(logits), torch.eye(3)[[1, 0]][None], target, None, weight, rho=0.0,
                         entropy_scale=0.0)
    assert loss.item() == pytest.approx(-(2.0 * 1.0 - 1.0 * 0.5) / 2)
    grad_logits, grad_target = torch.autograd.grad(loss, [logits, target], allow_unused=True)
    assert torch.allclose(grad_target, -weight / 2)  # d loss / d V_lambda = -w / T
    assert grad_logits is None or grad_logits.abs().sum() == 0  # no score-function term
    # the entropy bonus: eta H, maximised
    loss_ent, _ = actor_loss(OneHotDist(logits), torch.eye(3)[[1, 0]][None], target, None, weight, 0.0, 1e-3)
    assert loss_ent.item() == pytest.approx(loss.item() - 1e-3 * math.log(3) * 0.75, abs=1e-7)


# ---- agent ----------------------------------------------------------------------------------------
def spec(shape=(64, 64, 1), act=18, discrete=True):
    return SimpleNamespace(obs_shapes={"image": shape}, act_dim=act, discrete=discrete, action_repeat=4)


def tiny_agent(benchmark="atari", discrete=True, act=4, shape=(64, 64, 1), extra=()):
    config = load_config(CONFIG, [benchmark, "small"], [
        "agent.rssm.deter=32", "agent.rssm.hidden=32", "agent.rssm.stoch=4", "agent.rssm.discrete=4",
        "agent.encoder.cnn_depth=4", "agent.decoder.cnn_depth=4", "agent.reward_head.units=32",
        "agent.discount_head.layers=1", "agent.discount_head.units=32", "agent.actor.units=32",
        "agent.critic.units=32", "agent.imag_horizon=5", "agent.slow_target_update=3", *extra])
    return DreamerV2(spec(shape, act, discrete), config.agent)


def batch(rng, B=3, T=10, act=4, shape=(64, 64, 1), discrete=True):
    actions = (np.eye(act, dtype=np.float32)[rng.integers(0, act, (B, T))] if discrete
               else rng.uniform(-1, 1, (B, T, act)).astype(np.float32))
    data = {"image": rng.integers(0, 255, (B, T, *shape), dtype=np.uint8), "action": actions,
            "reward": rng.normal(size=(B, T)).astype(np.float32), "is_first": np.zeros((B, T), bool),
            "is_last": np.zeros((B, T), bool), "is_terminal": np.zeros((B, T), bool)}
    data["is_terminal"][0, -1] = data["is_last"][0, -1] = True
    return data


def test_slow_target_copied_every_100_updates():
    assert load_config(CONFIG, ["atari"]).agent.slow_target_update == 100
    agent = tiny_agent()  # slow_target_update=3 here
    rng = np.random.default_rng(0)
    same = []
    for _ in range(7):
        agent.train_step(batch(rng))
        same.append(all(torch.equal(s, f) for s, f in zip(agent.target_critic.parameters(),
                                                           agent.critic.parameters())))
    # copied after the critic step of updates 0, 3, 6; in between the critic moves on alone
    assert same == [True, False, False, True, False, False, True]
    assert int(agent.updates) == 7


def test_train_step_metrics_and_policy_both_action_spaces():
    rng = np.random.default_rng(0)
    for discrete, benchmark, shape in [(True, "atari", (64, 64, 1)), (False, "dmc_vision", (64, 64, 3))]:
        torch.manual_seed(0)
        agent = tiny_agent(benchmark, discrete, 2, shape)
        assert agent.rho == (1.0 if discrete else 0.0)  # REINFORCE on Atari, dynamics backprop on DMC
        metrics = agent.train_step(batch(rng, act=2, shape=shape, discrete=discrete))
        assert all(math.isfinite(v) for v in metrics.values())
        assert ("loss/discount" in metrics) == discrete  # DMC: no discount head ([code] pred_discount False)
        obs = {"image": rng.integers(0, 255, (2, *shape), dtype=np.uint8), "is_first": np.array([True, False])}
        action, state = agent.policy(obs, agent.initial_state(2), "train")
        assert action.shape == (2, 2)
        if discrete:
            assert torch.all(action.sum(-1) == 1)
        else:
            assert action.abs().max() < 1
        video = agent.open_loop(batch(rng, B=2, T=8, act=2, shape=shape, discrete=discrete), context=5)["image"]
        assert video.shape == (2, 8, 64, 192, shape[-1]) and video.dtype == np.uint8


def test_dmc_actor_learns_through_the_dynamics_and_leaves_the_world_model_alone():
    """DMC (rho 0, no entropy here): the actor's only gradient is the lambda return backpropagated through imagined
    actions, RSSM, reward head and slow critic; as in the official code (one optimiser per module) neither the world
    model nor the critics change in the actor's update, and the critic's update reaches only the critic."""
    torch.manual_seed(0)
    agent = tiny_agent("dmc_vision", False, 2, (64, 64, 3), ["agent.actor_ent=0"])
    wm = [p.detach().clone() for p in agent.wm.parameters()]
    actor = [p.detach().clone() for p in agent.actor.parameters()]
    start = {"deter": torch.randn(8, 32), "stoch": OneHotDist(torch.randn(8, 4, 4)).sample()}
    agent.updates += 1  # not an update that copies the slow critic
    slow = [p.detach().clone() for p in agent.target_critic.parameters()]
    metrics = agent.behaviour_step(start, torch.zeros(8, dtype=torch.bool))
    assert metrics["grad_norm/actor"] > 0
    assert all(torch.equal(a, b) for a, b in zip(wm, agent.wm.parameters()))
    assert all(p.grad is None for p in agent.wm.parameters())
    assert all(torch.equal(a, b) for a, b in zip(slow, agent.target_critic.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(actor, agent.actor.parameters()))


def test_optimizer_clips_global_norm_and_decays_weights():
    param = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = Optimizer([param], lr=0.0, eps=1e-5, clip=1.0, wd=0.5)
    metrics = opt.update((param * torch.tensor([30.0, 40.0])).sum(), "x")
    assert metrics["grad_norm/x"] == pytest.approx(50.0)  # the norm before clipping is reported
    assert torch.allclose(param.grad, torch.tensor([0.6, 0.8]))  # clipped to norm 1
    assert torch.allclose(param.detach(), torch.tensor([1.5, 2.0]))  # w <- (1 - wd) w, independent of lr


def test_optimizer_is_keras_adam_with_its_epsilon_and_resumes():
    """[code] tf.optimizers.Adam (ResourceApplyAdam): w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps), eps on
    the uncorrected sqrt(v). With gradients the size of eps (the actor's, ~1e-5 per parameter) PyTorch's own
    placement would step up to 16x further at t = 1."""
    grads = [1e-5 * torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64) * (1 + 0.3 * t) for t in range(6)]
    param = torch.nn.Parameter(torch.zeros(3))
    opt = Optimizer([param], lr=1e-3, eps=1e-5, clip=0.0, wd=0.0)
    w, m, v = (torch.zeros(3, dtype=torch.float64) for _ in range(3))
    for t, g in enumerate(grads, 1):
        if t == 4:  # a resumed optimiser (state_dict round trip) continues the same sequence
            param = torch.nn.Parameter(param.detach().clone())
            state = opt.state_dict()
            opt = Optimizer([param], lr=1e-3, eps=1e-5, clip=0.0, wd=0.0)
            opt.load_state_dict(state)
        opt.update((param * g.float()).sum(), "x")
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g ** 2
        w = w - 1e-3 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t) * m / (v.sqrt() + 1e-5)
        assert torch.allclose(param.detach().double(), w, rtol=1e-4, atol=0), t


def test_parameter_counts_atari():
    """Paper Appendix C: the model grew 'from 13M parameters to 22M parameters' (world model, actor and
    critic); the world model alone is ~20M."""
    config = load_config(CONFIG, ["atari"])
    with torch.device("meta"):
        agent = DreamerV2(spec(), config.agent, "meta")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    world_model = count(agent.wm)
    total = world_model + count(agent.actor) + count(agent.critic)
    assert 19.5e6 < world_model < 20.5e6, world_model
    assert 21.5e6 < total < 22.5e6, total
    # the RSSM by hand: img_in, GRU (dense over [x, h] + layer norm), img_out, img_dist, obs_out, obs_dist
    S, D, H, E = 32 * 32, 600, 600, 1536
    by_hand = ((S + 18) * H + H) + ((H + D) * 3 * D + 3 * D + 2 * 3 * D) + (D * H + H) + (H * S + S) \
        + ((D + E) * H + H) + (H * S + S)
    assert count(agent.wm.rssm) == by_hand


# ---- configs and CLI ----------------------------------------------------------------------------------
def test_presets_pick_benchmark_from_task():
    assert expand_presets("atari_pong", "paper") == ["atari"]
    assert expand_presets("dmc_walker_walk", "small") == ["dmc_vision", "small"]
    atari = build_config("atari_pong", "paper", 0, [])
    assert atari.agent.loss_scales.kl == 0.1 and atari.agent.kl.free == 0.0 and atari.agent.actor_ent == 1e-3
    assert atari.run.schedule.every == 16 and atari.run.steps == 200_000_000 and atari.env.atari.protocol == "dreamerv2"
    dmc = build_config("dmc_walker_walk", "paper", 0, [])
    assert dmc.agent.loss_scales.kl == 1.0 and dmc.agent.kl.free == 1.0 and dmc.agent.actor_ent == 1e-4
    with pytest.raises(ConfigError):
        expand_presets("crafter_reward", "paper")


@pytest.mark.parametrize("argv, needle", [
    (["--task", "atari_nope"], "unknown Atari game"),
    (["--task", "atari_pong", "--preset", "huge"], "unknown preset"),
    (["--task", "atari_pong", "--set", "agent.nope=1"], "agent.nope"),
    (["--task", "crafter_reward"], "no benchmark"),
])
def test_cli_errors_are_one_line(argv, needle, capsys, tmp_path):
    code = main(["train", *argv, "--logdir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and needle in err and err.count("\n") == 1


def test_random_command_errors_are_one_line(capsys):
    assert main(["baseline", "--task", "atari_nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


# ---- real environments (slow) ---------------------------------------------------------------------------
@pytest.mark.slow
def test_few_updates_on_real_ale_frames_reduce_losses():
    from tools.envs import make_env
    env = make_env("atari_pong", 0, protocol="dreamerv2")
    rng = np.random.default_rng(0)
    steps, obs = [], env.reset(seed=0)[0]
    for t in range(200):
        action = rng.integers(env.action_space.n)
        steps.append((obs["image"], action, 0.0 if t == 0 else reward))
        obs, reward, *_ = env.step(action)
    images = np.stack([s[0] for s in steps])
    actions = np.eye(18, dtype=np.float32)[[0] + [s[1] for s in steps[:-1]]]
    rewards = np.array([s[2] for s in steps], np.float32)
    torch.manual_seed(0)
    agent = tiny_agent("atari", True, 18)
    def sample():
        starts = rng.integers(0, 200 - 20, 4)
        return {"image": np.stack([images[s:s + 20] for s in starts]),
                "action": np.stack([actions[s:s + 20] for s in starts]),
                "reward": np.stack([rewards[s:s + 20] for s in starts]),
                **{k: np.zeros((4, 20), bool) for k in ("is_first", "is_last", "is_terminal")}}
    first = [agent.train_step(sample()) for _ in range(3)]
    for _ in range(40):
        agent.train_step(sample())
    last = [agent.train_step(sample()) for _ in range(3)]
    mean = lambda rows, key: np.mean([r[key] for r in rows])  # noqa: E731
    const = 64 * 64 * 0.5 * math.log(2 * math.pi)  # the unit-variance normal's NLL at zero error
    assert mean(last, "loss/image") - const < 0.8 * (mean(first, "loss/image") - const)
    assert mean(last, "loss/discount") < mean(first, "loss/discount")
    assert mean(last, "loss/model") < mean(first, "loss/model")


@pytest.mark.slow
def test_end_to_end_run_resumes(tmp_path):
    from tools.runs import read_jsonl
    args = ["train", "--task", "atari_pong", "--preset", "small", "--logdir", str(tmp_path),
            "--set", "batch_size=2", "--set", "batch_length=8", "--set", "run.prefill=400",
            "--set", "run.log_every=200", "--set", "run.save_every=400", "--set", "agent.encoder.cnn_depth=4",
            "--set", "agent.decoder.cnn_depth=4", "--set", "agent.rssm.deter=32", "--set", "agent.rssm.hidden=32",
            "--set", "agent.imag_horizon=3"]
    assert main([*args, "--set", "run.steps=800"]) == 0
    first = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert main([*args, "--set", "run.steps=1600"]) == 0
    second = torch.load(tmp_path / "checkpoints" / "latest.pt", weights_only=True)
    assert first["counters"]["step"] == 800 and second["counters"]["step"] == 1600
    assert second["counters"]["updates"] > first["counters"]["updates"] > 0
    assert int(second["agent"]["updates"]) == second["counters"]["updates"]  # the slow-target counter resumed
    steps = [row["step"] for row in read_jsonl(tmp_path / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 1600
    assert list((tmp_path / "videos").glob("openloop_image_*.gif"))


def test_constant_action_baseline(capsys):
    """The trivial policies beside a DMC score: a constant 0 never swings the pole up (reward 0); full force at a
    bound (where a collapsed actor sits) scores ~75 on cartpole swingup."""
    assert main(["baseline", "--task", "dmc_cartpole_swingup", "--preset", "small", "--episodes", "1",
                 "--policy", "0"]) == 0
    assert "0 policy, dmc_cartpole_swingup seed 0, training episodes 0-0: 0.0" in capsys.readouterr().out
    from tools.loop.baselines import trivial_returns
    (score,) = trivial_returns(build_config("dmc_cartpole_swingup", "small", 0, []), 1.0, 0, 1)
    assert 70 < score < 80
    assert main(["baseline", "--task", "atari_pong", "--policy", "1"]) == 2  # no constant for discrete actions
