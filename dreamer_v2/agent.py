"""The DreamerV2 agent: world model (encoder, RSSM, image decoder, reward and discount heads), actor and critic
trained in imagination, a slow critic copied every 100 updates, and three Adam optimisers with global-norm
clipping and weight decay (official danijar/dreamerv2@07d906e `agent.py`, `common/tfutils.py`)."""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from dreamer_v2.losses import actor_loss, critic_loss, kl_balance, lambda_return, slow_target_due
from dreamer_v2.networks import RSSM, Actor, Decoder, Encoder, ScalarHead, DenseStack, dense
from dreamer_v2.optim import Optimizer

REWARD_TRANSFORMS = {"identity": lambda r: r, "tanh": torch.tanh, "sign": torch.sign}


class WorldModel(nn.Module):
    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], act_dim: int, c: DictConfig) -> None:
        super().__init__()
        self.image_key = next((k for k, s in obs_shapes.items() if len(s) == 3), None)
        self.vector_keys = sorted(k for k, s in obs_shapes.items() if len(s) == 1)
        embed = 0
        if self.image_key:
            self.encoder = Encoder(obs_shapes[self.image_key][-1], c.encoder.cnn_depth, list(c.encoder.cnn_kernels))
            embed += self.encoder.out_dim
        if self.vector_keys:
            self.vector_sizes = [obs_shapes[k][0] for k in self.vector_keys]
            self.vector_encoder = DenseStack(sum(self.vector_sizes), list(c.encoder.mlp_layers))
            embed += self.vector_encoder.out_dim
        r = c.rssm
        self.rssm = RSSM(embed, act_dim, r.deter, r.hidden, r.stoch, r.discrete)
        feat = self.rssm.feat_dim
        if self.image_key:
            self.decoder = Decoder(feat, obs_shapes[self.image_key][-1], c.decoder.cnn_depth,
                                   list(c.decoder.cnn_kernels))
        if self.vector_keys:
            layers = list(c.decoder.mlp_layers)
            self.vector_decoder = nn.Sequential(DenseStack(feat, layers), dense(layers[-1], sum(self.vector_sizes)))
        self.reward = ScalarHead(feat, c.reward_head.layers, c.reward_head.units)
        self.discount = ScalarHead(feat, c.discount_head.layers, c.discount_head.units) if c.pred_discount else None

    def embed(self, obs: dict[str, Tensor]) -> Tensor:  # values (..., *shape) -> (..., E)
        parts = []
        if self.image_key:
            parts.append(self.encoder(obs[self.image_key]))
        if self.vector_keys:
            parts.append(self.vector_encoder(torch.cat([obs[k].float() for k in self.vector_keys], -1)))
        return torch.cat(parts, -1)

    def decode_losses(self, feat: Tensor, data: dict[str, Tensor]) -> dict[str, Tensor]:
        """Negative log-likelihoods of unit-variance normals, summed over each observation's dimensions."""
        losses = {}
        if self.image_key:
            target = data[self.image_key].float() / 255 - 0.5
            losses[self.image_key] = -_normal_log_prob(self.decoder(feat), target).sum((-3, -2, -1))
        if self.vector_keys:
            preds = self.vector_decoder(feat).split(self.vector_sizes, -1)
            for key, pred in zip(self.vector_keys, preds):
                losses[key] = -_normal_log_prob(pred, data[key].float()).sum(-1)
        return losses


def _normal_log_prob(mean: Tensor, x: Tensor) -> Tensor:
    return torch.distributions.Normal(mean.float(), 1.0).log_prob(x)


class DreamerV2(nn.Module):
    def __init__(self, spec: Any, config: DictConfig, device: str | torch.device = "cpu") -> None:
        super().__init__()
        c = self.config = config
        self.obs_shapes = {k: tuple(v) for k, v in spec.obs_shapes.items()}
        self.act_dim, self.discrete = int(spec.act_dim), bool(spec.discrete)
        self.wm = WorldModel(self.obs_shapes, self.act_dim, c)
        feat = self.wm.rssm.feat_dim
        self.actor = Actor(feat, self.act_dim, self.discrete, c.actor.layers, c.actor.units, c.actor.min_std)
        self.critic = ScalarHead(feat, c.critic.layers, c.critic.units)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        grad = c.actor_grad if c.actor_grad != "auto" else ("reinforce" if self.discrete else "dynamics")
        self.rho = {"reinforce": 1.0, "dynamics": 0.0, "both": 1.0 - float(c.actor_grad_mix)}[grad]
        self.device = torch.device(device)
        self.to(self.device)
        self.optimizers = {"model": Optimizer(self.wm.parameters(), **c.model_opt),
                           "actor": Optimizer(self.actor.parameters(), **c.actor_opt),
                           "critic": Optimizer(self.critic.parameters(), **c.critic_opt)}

    # ---- acting -----------------------------------------------------------------------------------
    def initial_state(self, batch: int) -> dict[str, Tensor]:
        state = self.wm.rssm.initial(batch, self.device)
        state["action"] = torch.zeros(batch, self.act_dim, device=self.device)
        return state

    @torch.no_grad()
    def policy(self, obs: dict[str, np.ndarray], state: dict[str, Tensor], mode: str = "train"
               ) -> tuple[Tensor, dict[str, Tensor]]:
        """Posterior step on the observation, then an action: sampled in "train", the mode in "eval"
        (official `eval_state_mean: False`: the latent is sampled in both)."""
        data = self.to_tensors(obs)
        embed = self.wm.embed({k: data[k] for k in self.obs_shapes})
        latent = self.wm.rssm.obs_step(state, state["action"], embed, data["is_first"])
        dist = self.actor(self.wm.rssm.feat(latent))
        action = dist.sample() if mode == "train" else dist.mode()
        return action, {"deter": latent["deter"], "stoch": latent["stoch"], "action": action}

    def to_tensors(self, data: dict[str, np.ndarray]) -> dict[str, Tensor]:
        return {k: torch.as_tensor(np.ascontiguousarray(v), device=self.device) for k, v in data.items()}

    # ---- training ---------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """World-model update, then actor and critic updates on imagined rollouts from every posterior state
        (official `Agent.train`): the model is updated before the behaviour imagines with it."""
        data = self.to_tensors(batch)
        data["is_first"] = data["is_first"].clone()
        data["is_first"][:, 0] = True  # every sequence starts from a zero state and action (official replay)
        model_loss, post, metrics = self.world_model_loss(data)
        metrics.update(self.optimizers["model"].update(model_loss, "model"))
        start = {k: post[k].detach().flatten(0, 1) for k in ("deter", "stoch")}  # (B*T, ...)
        metrics.update(self.behaviour_step(start, data["is_terminal"].flatten(0, 1)))
        return metrics

    def world_model_loss(self, data: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], dict[str, float]]:
        c = self.config
        embed = self.wm.embed({k: data[k] for k in self.obs_shapes})
        post, prior_logits = self.wm.rssm.observe(embed, data["action"].float(), data["is_first"])
        kl_loss, kl_value = kl_balance(post["logits"], prior_logits, c.kl.balance, c.kl.free, c.kl.free_avg)
        feat = self.wm.rssm.feat(post)
        losses = {k: v.mean() for k, v in self.wm.decode_losses(feat, data).items()}
        reward = REWARD_TRANSFORMS[c.clip_rewards](data["reward"].float())
        losses["reward"] = -_normal_log_prob(self.wm.reward(feat), reward).mean()
        if self.wm.discount is not None:
            discount = c.discount * (1 - data["is_terminal"].float())
            losses["discount"] = F.binary_cross_entropy_with_logits(self.wm.discount(feat), discount)
        losses["kl"] = kl_loss
        scales = c.loss_scales
        total = sum(scales.get(k, 1.0) * v for k, v in losses.items())
        metrics = {f"loss/{k}": v.item() for k, v in losses.items()}
        metrics.update({"loss/model": total.item(), "kl/value": kl_value.mean().item(),
                        "ent/prior": _ent(prior_logits), "ent/post": _ent(post["logits"])})
        return total, post, metrics

    def imagine(self, start: dict[str, Tensor], is_terminal: Tensor) -> dict[str, Tensor]:
        """Roll the actor out in the prior for H steps from N start states (official `WorldModel.imagine`).
        Returns feat (N, H+1, F), action (N, H+1, A) (action t led into state t; zeros at t=0), discount and
        weight (N, H+1): the first discount is the replayed gamma (1 - terminal), weight = cumprod of shifted
        discounts."""
        c, rssm = self.config, self.wm.rssm
        state = dict(start)
        feats = [rssm.feat(state)]
        actions = [torch.zeros(feats[0].shape[0], self.act_dim, device=self.device)]
        for _ in range(c.imag_horizon):
            action = self.actor(feats[-1].detach()).sample()
            state = rssm.img_step(state, action)
            feats.append(rssm.feat(state))
            actions.append(action)
        feat, action = torch.stack(feats, 1), torch.stack(actions, 1)
        if self.wm.discount is not None:
            disc = torch.sigmoid(self.wm.discount(feat))
            first = c.discount * (1 - is_terminal.float())
            disc = torch.cat([first[:, None], disc[:, 1:]], 1)
        else:
            disc = torch.full(feat.shape[:2], float(c.discount), device=self.device)
        weight = torch.cumprod(torch.cat([torch.ones_like(disc[:, :1]), disc[:, :-1]], 1), 1)
        return {"feat": feat, "action": action, "discount": disc, "weight": weight}

    def behaviour_step(self, start: dict[str, Tensor], is_terminal: Tensor) -> dict[str, float]:
        c = self.config
        # REINFORCE needs no gradient through the imagined rollout; dynamics backpropagation does
        with torch.set_grad_enabled(self.rho < 1):
            seq = self.imagine(start, is_terminal)
            reward = self.wm.reward(seq["feat"])
            value = self.target_critic(seq["feat"])
            target = lambda_return(reward[:, :-1], value[:, :-1], seq["discount"][:, :-1], value[:, -1],
                                   c.discount_lambda)  # (N, H)
        policy = self.actor(seq["feat"][:, :-2].detach())
        baseline = self.target_critic(seq["feat"][:, :-2]) if self.rho > 0 else None
        loss, metrics = actor_loss(policy, seq["action"][:, 1:-1], target[:, 1:], baseline,
                                   seq["weight"][:, :-2], self.rho, c.actor_ent)
        metrics.update(self.optimizers["actor"].update(loss, "actor"))
        value_loss = critic_loss(self.critic(seq["feat"][:, :-1].detach()), target, seq["weight"][:, :-1])
        metrics.update(self.optimizers["critic"].update(value_loss, "critic"))
        self.update_slow_target()
        metrics.update({"loss/actor": loss.item(), "loss/critic": value_loss.item(),
                        "critic/target": target.mean().item(), "critic/slow": value.mean().item(),
                        "imag/reward": reward.mean().item(), "imag/discount": seq["discount"].mean().item()})
        return metrics

    @torch.no_grad()
    def update_slow_target(self) -> None:
        """Copy the critic into the slow target at update 0, 100, 200, ... (fraction 1: a hard copy)."""
        if slow_target_due(int(self.updates), int(self.config.slow_target_update)):
            mix = 1.0 if int(self.updates) == 0 else float(self.config.slow_target_fraction)
            for slow, fast in zip(self.target_critic.parameters(), self.critic.parameters()):
                slow.lerp_(fast, mix)
        self.updates += 1

    # ---- open-loop prediction ---------------------------------------------------------------------
    @torch.no_grad()
    def open_loop(self, data: dict[str, np.ndarray], context: int = 5) -> dict[str, np.ndarray]:
        """Observe ``context`` steps, imagine the rest with the replayed actions (official `video_pred`);
        per image key a uint8 video (B, T, H, 3W, C) of [truth | prediction | error]."""
        key = self.wm.image_key
        if key is None:
            return {}
        d = self.to_tensors(data)
        embed = self.wm.embed({k: d[k][:, :context] for k in self.obs_shapes})
        post, _ = self.wm.rssm.observe(embed, d["action"][:, :context].float(), d["is_first"][:, :context])
        state = {k: post[k][:, -1] for k in ("deter", "stoch")}
        feats = [self.wm.rssm.feat(post)]
        for t in range(context, d["is_first"].shape[1]):
            state = self.wm.rssm.img_step(state, d["action"][:, t].float())
            feats.append(self.wm.rssm.feat(state)[:, None])
        pred = ((self.wm.decoder(torch.cat(feats, 1)) + 0.5) * 255).clamp(0, 255).int()
        truth = d[key].int()
        error = (pred - truth + 255) // 2
        return {key: torch.cat([truth, pred, error], 3).to(torch.uint8).cpu().numpy()}


def _ent(logits: Tensor) -> float:
    logp = logits.float().log_softmax(-1)
    return -(logp.exp() * logp).sum((-2, -1)).mean().item()
