"""DreamerV3's update pinned on a fixed batch and seed: every loss and the gradient of every module, recorded
before the speed work of issue 15 (commit bac7b04) and required to stay the same. The categorical latents are
drawn by a deterministic stand-in (the mode, with the same straight-through gradient), so the pin holds whatever
way samples are drawn; the sampler itself is checked against its distribution by a statistical test."""
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dreamer_v3.__main__ import CONFIG
from dreamer_v3.agent import DreamerV3
from dreamer_v3.networks import RSSM
from dreamer_v3.seqgrad import Stash
from dreamer_v3.train import compile_agent
from tools.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")

# recorded with the code of commit bac7b04 (before the issue-15 changes)
LOSSES = {'dyn': 7.0946431, 'rep': 7.0946431, 'vector': 2.0388083, 'image': 72.953201, 'rew': 5.5412636,
          'con': 0.60921395, 'policy': -5.1217641e-05, 'value': 0.7246511, 'repval': 11.082528}
GRADS = {'encoder': 4.1338286, 'rssm': 13149.781, 'decoder': 106.05472, 'reward': 1.2217897, 'cont': 2.8440764,
         'actor': 9.4332872e-06, 'critic': 1.7218255}


def mode_sample(logits: torch.Tensor) -> torch.Tensor:
    """The deterministic stand-in: one-hot of the most likely class plus probs - stop_grad(probs)."""
    onehot = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    probs = logits.softmax(-1)
    return onehot + probs - probs.detach()


def pinned_batch(B: int = 4, T: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"vector": rng.standard_normal((B, T, 5)).astype(np.float32),
            "image": rng.integers(0, 256, (B, T, 16, 16, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (B, T, 2)).astype(np.float32),
            "reward": rng.standard_normal((B, T)).astype(np.float32),
            "is_first": np.eye(T, dtype=bool)[[0, 0, 3, 5]],
            "is_last": np.zeros((B, T), bool), "is_terminal": np.eye(T, dtype=bool)[[7, 6, 2, 4]]}


def pinned_losses_and_grads(compile: bool = False) -> tuple[dict[str, float], dict[str, float]]:
    """Per-loss means and per-module gradient norms of one loss evaluation of a small agent (vector + 16x16
    image observations, continuous actions) on `pinned_batch`, seed 0; ``compile`` as the config key."""
    config = load_config(CONFIG, ["dmc_proprio", "small"], [f"compile={str(compile).lower()}"])
    torch.manual_seed(0)
    agent = compile_agent(DreamerV3({"vector": (5,), "image": (16, 16, 3)}, 2, False, config.agent, "cpu"), config)
    with mock.patch.object(RSSM, "sample", staticmethod(mode_sample)):  # restores the staticmethod itself
        losses, _, _ = agent.loss(agent.to_tensors(pinned_batch()))
    total = sum(losses[k].mean() * agent.scales[k] for k in losses)
    total.backward()
    modules = ("encoder", "rssm", "decoder", "reward", "cont", "actor", "critic")
    grads = {name: torch.cat([p.grad.flatten() for p in getattr(agent, name).parameters()
                              if p.grad is not None]).norm().item() for name in modules}
    return {k: v.mean().item() for k, v in losses.items()}, grads


@pytest.mark.parametrize("compile", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_losses_and_gradients_are_pinned(compile):
    """Eager and compiled (fused norms, compiled RSSM core) alike; float32 rounding differs by ~1e-6."""
    losses, grads = pinned_losses_and_grads(compile)
    assert losses.keys() == LOSSES.keys() and grads.keys() == GRADS.keys()
    for name, value in {**losses, **grads}.items():
        assert value == pytest.approx({**LOSSES, **GRADS}[name], rel=1e-5, abs=1e-10), name


@pytest.mark.slow
def test_compiled_norms_never_fall_back_to_eager(caplog):
    """Every norm width, layout and grad mode of an update and of acting gets a compiled graph: torch's default
    limit of 8 graphs per function once left the rest eager without an error (the 12M image agent)."""
    config = load_config(CONFIG, ["dmc_proprio", "small"], ["compile=true"])
    torch.manual_seed(0)
    agent = compile_agent(DreamerV3({"vector": (5,), "image": (16, 16, 3)}, 2, False, config.agent, "cpu"), config)
    batch = pinned_batch()
    with caplog.at_level("WARNING", logger="torch._dynamo"):
        agent.train_step(batch)  # with torch's default limit, this and acting need more than 8 graphs of the norm
        state = agent.initial_state(1)
        for t in range(3):
            obs = {k: batch[k][:1, t] for k in ("vector", "image")}
            _, state = agent.policy({**obs, "is_first": np.array([t == 0])}, state, "train")
    assert not [r for r in caplog.records if "hit config" in r.getMessage()]


def test_latent_sampler_draws_the_categorical_distribution():
    """Chi-square goodness of fit of 200,000 draws per latent against the unimix probabilities, including
    classes of probability ~1e-3 and a near-deterministic latent."""
    from scipy.stats import chisquare

    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.099, 0.001],
                                     [0.2, 0.2, 0.2, 0.2, 0.2],
                                     [0.996, 0.001, 0.001, 0.001, 0.001]]))
    n = 200_000
    sample = RSSM.sample(logits.expand(n, -1, -1)).detach().round()  # (n, 3, 5) one-hot
    assert torch.equal(sample.sum(-1), torch.ones(n, 3))
    counts = sample.sum(0)  # (3, 5)
    for latent in range(3):
        probs = logits[latent].double().exp()
        expected = probs / probs.sum() * n
        assert chisquare(counts[latent].double().numpy(), expected.numpy()).pvalue > 1e-3, latent


def test_latent_sampler_has_the_straight_through_gradient():
    logits = torch.randn(6, 4, 8, requires_grad=True)
    weights = torch.randn(6, 4, 8)
    (RSSM.sample(logits) * weights).sum().backward()
    expected = torch.autograd.grad((logits.softmax(-1) * weights).sum(), logits)[0]
    assert torch.allclose(logits.grad, expected, atol=1e-6)


def test_sequence_weight_gradients_equal_per_step_autograd():
    """`observe` forms the recurrent weights' gradients once per sequence (seqgrad.py); stepping `obs_step` by
    hand leaves them to autograd step by step. Same gradients, episode starts and data-only inputs included."""
    torch.manual_seed(0)
    rssm = RSSM(token_dim=8, act_dim=2, deter=32, hidden=8, stoch=4, classes=4, blocks=4, unimix=0.01,
                imglayers=1, obslayers=1, dynlayers=1)
    B, T = 3, 6
    tokens, actions = torch.randn(B, T, 8), torch.randn(B, T, 2)
    reset = torch.zeros(B, T, dtype=torch.bool)
    reset[:, 0], reset[1, 3] = True, True

    def grads(by_hand: bool) -> dict[str, torch.Tensor]:
        rssm.zero_grad(set_to_none=True)
        with mock.patch.object(RSSM, "sample", staticmethod(mode_sample)):
            if by_hand:
                state, steps = rssm.initial(B), []
                for t in range(T):
                    state = rssm.obs_step(state, actions[:, t], tokens[:, t], reset[:, t])
                    steps.append(state)
                post = {k: torch.stack([s[k] for s in steps], 1) for k in steps[0]}
            else:
                _, post = rssm.observe(rssm.initial(B), actions, tokens, reset)
        (post["deter"].square().mean() + post["logits"].exp().square().mean()).backward()
        return {name: p.grad.clone() for name, p in rssm.named_parameters() if p.grad is not None}

    with mock.patch.object(Stash, "weight_grad", autospec=True, side_effect=Stash.weight_grad) as formed:
        sequence = grads(False)
    assert formed.call_count == len(rssm.step_layers())  # once per layer and sequence, not per step
    by_hand = grads(True)
    assert sequence.keys() == by_hand.keys() and "dynhid.0.0.weight" in sequence
    for name in sequence:
        torch.testing.assert_close(sequence[name], by_hand[name], rtol=1e-5, atol=1e-7, msg=name)
    assert all(layer.stash is None for layer in rssm.step_layers())
    rssm.zero_grad(set_to_none=True)  # a second backward over a retained graph adds the same gradient again
    _, post = rssm.observe(rssm.initial(B), actions, tokens, reset)
    loss = post["deter"].square().mean() + post["logits"].square().mean()  # every step's output reaches it
    loss.backward(retain_graph=True)
    once = rssm.dynhid[0][0].weight.grad.clone()
    loss.backward()
    torch.testing.assert_close(rssm.dynhid[0][0].weight.grad, 2 * once)
    _, post = rssm.observe(rssm.initial(B), actions, tokens, reset)  # a loss on the first steps only: loud, not lost
    with pytest.raises(RuntimeError, match=r"reached [1-5] of the 6 steps"):
        post["deter"][:, :3].square().mean().backward()
