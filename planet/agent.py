"""The PlaNet agent: world model (encoder, RSSM, decoder, reward model) trained on the paper's objective, and
the CEM planner acting by model-predictive control (paper Sec. 2-3, Appendix A; official
`training/utility.py::compute_objectives`, `control/mpc_agent.py`)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from planet.networks import RSSM, Decoder, Encoder, State, kl_gaussian, mlp
from planet.planner import cem, latent_return

LOG_2PI = float(np.log(2 * np.pi))


def preprocess(image: Tensor, bits: int = 5) -> Tensor:
    """uint8 (..., H, W, C) -> float in [-0.5, 0.5): bit depth reduced to ``bits`` plus uniform dequantisation
    noise of one bin (paper Appendix A, Kingma & Dhariwal 2018; official `tools/preprocess.py`)."""
    bins = 2 ** bits
    x = torch.floor(image.float() / 2 ** (8 - bits)) / bins
    return x + torch.rand_like(x) / bins - 0.5


def postprocess(image: Tensor, bits: int = 5) -> Tensor:
    """float image in [-0.5, 0.5] -> uint8 at ``bits`` depth (official `postprocess`, uint8 branch)."""
    bins = 2 ** bits
    return (torch.floor(bins * (image + 0.5)) * (256 / bins)).clamp(0, 255).to(torch.uint8)


def gaussian_nll(mean: Tensor, target: Tensor, dims: int) -> Tensor:
    """-log N(target | mean, 1), summed over the last ``dims`` axes (unit-variance observation / reward model)."""
    nll = 0.5 * (target - mean).square() + 0.5 * LOG_2PI
    return nll.sum(tuple(range(-dims, 0))) if dims else nll


def free_nats_kl(kl: Tensor, free_nats: float) -> Tensor:
    """KL term per step, clipped below at ``free_nats`` (paper: "3 free nats by clipping the divergence loss
    below this value"), averaged over batch and time. The official `max(0, kl - 3)` differs by a constant."""
    return kl.clamp(min=free_nats).mean()


def overshooting_kl(rssm: RSSM, post: State, action: Tensor, is_first: Tensor, distance: int,
                    free_nats: float) -> Tensor:
    """Latent overshooting (paper Sec. 4, off in the final paper; official `tools/overshooting.py`): from the
    posterior at every t - 1 (zero state for t = 0), roll the prior open-loop with the replayed actions and
    compare it at t + d, d = 1 .. distance - 1, with the stop-gradient posterior there (free nats as above).
    Targets past the sequence end or a new episode are masked to zero and count in the mean, as official."""
    B, T = is_first.shape
    state = {k: torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], 1).flatten(0, 1) for k, v in post.items()}
    start = torch.arange(T, device=action.device).repeat(B)  # (B*T,) start time t of each rollout
    row = torch.arange(B, device=action.device).repeat_interleave(T)
    episode = is_first.long().cumsum(1)  # (B, T) episode index within each sequence
    target = {k: v.detach() for k, v in post.items()}
    kls = []
    for d in range(distance):
        index = (start + d).clamp(max=T - 1)
        state = rssm.img_step(state, action[row, index])  # prior at t + d
        if d == 0:
            continue
        valid = (start + d < T) & (episode[row, index] == episode[row, start])
        kl = kl_gaussian({k: v[row, index] for k, v in target.items()}, state)
        kls.append((kl - free_nats).clamp(min=0) * valid)
    return torch.stack(kls).mean() if kls else torch.zeros((), device=action.device)


class PlaNet(nn.Module):
    """``spec``: `tools.loop.EnvSpec` (obs_shapes with one key, act_dim, discrete). The paper's agent sees
    ``image``; the small preset's proprioceptive tasks give ``vector`` (the state is the embedding as it is, decoded
    by a dense ReLU net of ``vector_decoder`` layers: README Deviations)."""

    def __init__(self, spec: Any, config: DictConfig, device: str | torch.device = "cpu") -> None:
        super().__init__()
        if spec.discrete:
            raise ValueError("PlaNet plans continuous actions with CEM (DeepMind Control only)")
        keys = sorted(spec.obs_shapes)
        if keys not in (["image"], ["vector"]):
            raise ValueError(f"PlaNet learns from pixels (or, small preset, a state vector); the environment gives {keys}")
        c = self.config = config
        self.act_dim = int(spec.act_dim)
        self.obs_key = keys[0]
        shape = spec.obs_shapes[self.obs_key]
        r = c.rssm
        self.encoder = Encoder(shape[-1], c.depth) if self.obs_key == "image" else nn.Identity()
        embed_dim = self.encoder.out_dim if self.obs_key == "image" else shape[-1]
        self.rssm = RSSM(self.act_dim, embed_dim, r.deter, r.stoch, r.hidden, r.layers, r.min_std)
        if self.obs_key == "image":
            self.decoder = Decoder(self.rssm.feat_dim, shape[-1], c.depth)
        else:
            self.decoder = mlp(self.rssm.feat_dim, c.vector_decoder.layers, c.vector_decoder.units, shape[-1])
        self.reward = mlp(self.rssm.feat_dim, c.reward.layers, c.reward.units, 1)
        self.to(device)
        self.device = torch.device(device)
        self.optimizers = {"model": torch.optim.Adam(self.parameters(), lr=c.opt.lr, eps=c.opt.eps)}

    def observation(self, obs: Tensor) -> Tensor:
        """The model's target: image uint8 (..., 64, 64, C) -> 5-bit float in [-0.5, 0.5); vector -> float."""
        return preprocess(obs, self.config.image_bits) if self.obs_key == "image" else obs.float()

    # ---- acting -----------------------------------------------------------------------------------
    def initial_state(self, batch: int) -> State:
        state = self.rssm.initial(batch, self.device)
        state["action"] = torch.zeros(batch, self.act_dim, device=self.device)
        return state

    @torch.no_grad()
    def policy(self, obs: dict[str, np.ndarray], state: State, mode: str = "train") -> tuple[Tensor, State]:
        """Filter the new observation into the posterior, plan with CEM, execute the first action (MPC) plus
        N(0, 0.3) exploration noise in training, none in evaluation (official `MPCAgent.perform`)."""
        x = torch.as_tensor(np.ascontiguousarray(obs[self.obs_key]), device=self.device)  # (N, 64, 64, C) or (N, D)
        keep = (~torch.as_tensor(obs["is_first"], device=self.device)).float()[:, None]  # (N, 1)
        state = {k: v * keep for k, v in state.items()}  # zero state and action at episode starts
        embed = self.encoder(self.observation(x))  # (N, 1024) for images
        _, post = self.rssm.obs_step(state, state["action"], embed)
        p = self.config.planner
        objective = latent_return(self.rssm, self.reward, post, p.candidates)
        action = cem(objective, x.shape[0], p.horizon, self.act_dim, p.iterations, p.candidates, p.top_k,
                     self.device)  # (N, A)
        if mode == "train":
            action = action + self.config.expl_noise * torch.randn_like(action)
        action = action.clamp(-1, 1)
        return action, {**post, "action": action}

    # ---- training ---------------------------------------------------------------------------------
    def to_tensors(self, data: dict[str, np.ndarray]) -> dict[str, Tensor]:
        return {k: torch.as_tensor(np.ascontiguousarray(v), device=self.device) for k, v in data.items()}

    def loss(self, data: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Image (or state) and reward negative log-likelihoods plus the free-nats KL, not rescaled (paper Eq. 3 / App. A);
        the official code weights the reward term by 10 (`reward_loss_scale`). Batch values (B, T, ...)."""
        c = self.config
        target = self.observation(data[self.obs_key])  # (B, T, 64, 64, C) in [-0.5, 0.5), or (B, T, D)
        embed = self.encoder(target)  # (B, T, 1024) for images
        prior, post = self.rssm.observe(embed, data["action"].float(), data["is_first"].bool())
        feat = self.rssm.feat(post)  # (B, T, 230)
        kl = kl_gaussian(post, prior)  # (B, T)
        losses = {
            self.obs_key: gaussian_nll(self.decoder(feat), target, target.dim() - 2).mean(),
            "reward": gaussian_nll(self.reward(feat).squeeze(-1), data["reward"].float(), 0).mean(),
            "kl": free_nats_kl(kl, c.free_nats),
        }
        if c.overshooting.scale:
            losses["overshooting"] = overshooting_kl(self.rssm, post, data["action"].float(), data["is_first"].bool(),
                                                     c.overshooting.distance, c.free_nats)
        scales = {**c.loss_scales, "overshooting": c.overshooting.scale}
        total = sum(scales[k] * v for k, v in losses.items())
        metrics = {f"loss/{k}": v.item() for k, v in losses.items()}
        metrics.update({"kl": kl.mean().item(), "prior_std": prior["std"].mean().item(),
                        "post_std": post["std"].mean().item()})
        return total, metrics

    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One Adam step (lr 1e-3, eps 1e-4) with the global gradient norm clipped at 1000."""
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        total, metrics = self.loss(self.to_tensors(batch))
        total.backward()
        norm = nn.utils.clip_grad_norm_(self.parameters(), self.config.opt.clip)
        opt.step()
        metrics.update({"loss/total": total.item(), "grad_norm/model": norm.item()})
        return metrics

    # ---- open-loop prediction -----------------------------------------------------------------------
    @torch.no_grad()
    def open_loop(self, data: dict[str, np.ndarray], context: int = 5) -> dict[str, np.ndarray]:
        """Observe ``context`` steps, then predict the rest open-loop with the replayed actions (official
        `open_loop`, context 5). Returns {"image": (B, T, H, 3W, C) uint8} of [truth | prediction | error]."""
        if self.obs_key != "image":
            return {}
        d = self.to_tensors(data)
        bits = self.config.image_bits
        embed = self.encoder(preprocess(d["image"][:, :context], bits))
        _, post = self.rssm.observe(embed, d["action"][:, :context].float(), d["is_first"][:, :context].bool())
        state = {k: v[:, -1] for k, v in post.items()}
        feats = [self.rssm.feat(post)]
        for action in d["action"][:, context:].float().unbind(1):
            state = self.rssm.img_step(state, action)
            feats.append(self.rssm.feat(state)[:, None])
        pred = postprocess(self.decoder(torch.cat(feats, 1)), bits).int()  # (B, T, 64, 64, C)
        truth = d["image"].int()
        error = (pred - truth + 255) // 2
        return {"image": torch.cat([truth, pred, error], 3).to(torch.uint8).cpu().numpy()}
