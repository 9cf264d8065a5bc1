"""The Dreamer agent (Hafner et al. 2020; official `danijar/dreamer@56d4d44` `dreamer.py`): world model learned
from replayed sequences, behaviour learned by backpropagating lambda-returns through imagined trajectories of
the learned dynamics. Three Adam optimisers (model, actor, value); each loss updates only its own modules."""
from __future__ import annotations

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from dreamer_v1.networks import RSSM, Actor, DenseHead, ObsDecoder, ObsEncoder, State, keras_init


def lambda_return(reward: Tensor, value: Tensor, pcont: Tensor, bootstrap: Tensor, lam: float) -> Tensor:
    """TD(lambda) returns along the first (time) axis, official `tools.lambda_return`:
    R_t = r_t + pcont_t ((1 - lam) v_{t+1} + lam R_{t+1}), with v_T = R_T = bootstrap.
    reward, value, pcont (H, ...) -> (H, ...); value_t is v(s_t), so v_{t+1} is value[t + 1]."""
    next_values = torch.cat([value[1:], bootstrap[None]], 0)
    inputs = reward + pcont * next_values * (1 - lam)
    returns, last = [], bootstrap
    for t in reversed(range(reward.shape[0])):
        last = inputs[t] + pcont[t] * lam * last
        returns.append(last)
    return torch.stack(returns[::-1], 0)


def unit_normal_nll(pred: Tensor, target: Tensor, event_dims: int = 0) -> Tensor:
    """-log N(target; pred, 1) summed over the last ``event_dims`` dims (official Independent(Normal(x, 1)))."""
    nll = -Normal(pred, 1.0).log_prob(target)
    return nll.sum(tuple(range(-event_dims, 0))) if event_dims else nll


class Dreamer(nn.Module):
    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], act_dim: int, config: DictConfig,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        if not set(obs_shapes) <= {"image", "vector"} or not obs_shapes:
            raise ValueError(f"Dreamer (v1) takes 'image' and/or 'vector' observations; got {sorted(obs_shapes)}")
        c = self.config = config
        self.act_dim = act_dim
        self.obs_keys = sorted(obs_shapes)
        self.encoder = ObsEncoder(obs_shapes, c.cnn_depth)
        self.rssm = RSSM(self.encoder.out_dim, act_dim, c.stoch, c.deter, c.deter, c.min_std)
        feat = self.rssm.feat_dim
        self.decoder = ObsDecoder(obs_shapes, feat, c.cnn_depth, c.vector_layers, c.units)
        self.reward = DenseHead(feat, c.reward_layers, c.units)
        self.value = DenseHead(feat, c.value_layers, c.units)
        a = c.actor
        self.actor = Actor(feat, act_dim, a.layers, c.units, a.init_std, a.mean_scale, a.min_std)
        keras_init(self)
        self.to(device)
        self.device = torch.device(device)
        adam = lambda params, lr: torch.optim.Adam(params, lr, eps=c.adam_eps)  # noqa: E731
        self.optimizers = {"model": adam(self.model_parameters(), c.model_lr),
                           "actor": adam(list(self.actor.parameters()), c.actor_lr),
                           "value": adam(list(self.value.parameters()), c.value_lr)}

    def model_parameters(self) -> list[nn.Parameter]:
        return [p for m in (self.encoder, self.rssm, self.decoder, self.reward) for p in m.parameters()]

    # ---- acting -----------------------------------------------------------------------------------------
    def initial_state(self, batch: int) -> dict[str, Tensor]:
        state = self.rssm.initial(batch, self.device)
        state["action"] = torch.zeros(batch, self.act_dim, device=self.device)
        return state

    def preprocess(self, obs: dict[str, np.ndarray]) -> dict[str, Tensor]:
        """image uint8 (..., 64, 64, C) -> float in [-0.5, 0.5] (official `preprocess`); vector as float."""
        out = {k: torch.as_tensor(np.ascontiguousarray(obs[k]), device=self.device).float() for k in self.obs_keys}
        if "image" in out:
            out["image"] = out["image"] / 255.0 - 0.5
        return out

    @torch.no_grad()
    def policy(self, obs: dict[str, np.ndarray], state: dict[str, Tensor], mode: str = "train"
               ) -> tuple[Tensor, dict[str, Tensor]]:
        """obs: image (N, 64, 64, C) uint8, is_first (N,). Train: a sample plus Normal(0, 0.3) noise, clipped to
        [-1, 1]; eval: the mode (official `Dreamer.policy` / `_exploration`, eval_noise 0)."""
        if mode not in ("train", "eval"):
            raise ValueError(f"policy mode must be 'train' or 'eval', got {mode!r}")
        keep = 1.0 - torch.as_tensor(np.asarray(obs["is_first"]), device=self.device).float()[:, None]
        state = {k: v * keep for k, v in state.items()}  # zero the state of environments that just reset
        action = state.pop("action")
        embed = self.encoder(self.preprocess(obs))
        post, _ = self.rssm.obs_step(state, action, embed)
        dist = self.actor(self.rssm.feat(post))
        if mode == "eval":
            action = dist.mode()
        else:
            action = (dist.sample() + self.config.expl_amount * torch.randn_like(dist.base.loc)).clamp(-1, 1)
        return action, {**post, "action": action}

    # ---- training ---------------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One update of world model, actor and value on a replay batch (B, T). Sequences lie within one
        episode and start from the zero state, as the official dataset; ``is_first`` is not needed."""
        obs = self.preprocess(batch)  # image (B, T, 64, 64, C), vector (B, T, D)
        action = torch.as_tensor(batch["action"], device=self.device).float()  # (B, T, A)
        reward = torch.as_tensor(batch["reward"], device=self.device).float()  # (B, T)
        model_loss, post, metrics = self.world_model_loss(obs, action, reward)
        actor_loss, value_loss, ac_metrics = self.behaviour_losses(post)
        metrics.update(ac_metrics)
        losses = {"model": model_loss, "actor": actor_loss, "value": value_loss}
        for name, loss in losses.items():  # all gradients first: the actor's graph uses the model's weights
            self.optimizers[name].zero_grad(set_to_none=True)
            loss.backward(inputs=self.params(name))
        for name, loss in losses.items():
            metrics[f"grad_norm/{name}"] = nn.utils.clip_grad_norm_(self.params(name), self.config.grad_clip).item()
            self.optimizers[name].step()
            metrics[f"loss/{name}"] = loss.item()
        return metrics

    def params(self, name: str) -> list[nn.Parameter]:
        """The parameters of one optimiser. Each loss is differentiated w.r.t. its own optimiser's parameters
        only, as the official code takes each loss's gradient on its own tape for its own variables."""
        return [p for group in self.optimizers[name].param_groups for p in group["params"]]

    def world_model_loss(self, obs: dict[str, Tensor], action: Tensor, reward: Tensor
                         ) -> tuple[Tensor, State, dict[str, float]]:
        """Reconstruction and reward log-likelihoods plus the KL above 3 free nats (of the batch mean, as the
        official code clips the mean KL). Returns the loss, the posterior states (B, T, ...) and metrics."""
        c = self.config
        embed = self.encoder(obs)  # (B, T, 1024) for images
        post, prior = self.rssm.observe(embed, action)
        feat = self.rssm.feat(post)  # (B, T, 230)
        recon = {k: unit_normal_nll(pred, obs[k], len(self.decoder.shapes[k])).mean()
                 for k, pred in self.decoder(feat).items()}
        reward_loss = unit_normal_nll(self.reward(feat), reward).mean()
        div = kl_divergence(self.rssm.dist(post), self.rssm.dist(prior)).mean()
        model_loss = c.kl_scale * torch.clamp(div, min=c.free_nats) + sum(recon.values()) + reward_loss
        metrics = {**{f"loss/{k}": v.item() for k, v in recon.items()}, "loss/reward": reward_loss.item(),
                   "loss/kl": div.item(),
                   "prior_ent": self.rssm.dist(prior).entropy().mean().item(),
                   "post_ent": self.rssm.dist(post).entropy().mean().item()}
        return model_loss, post, metrics

    def imagine_ahead(self, post: State) -> Tensor:
        """Roll the actor out in the prior for H steps from every posterior state of the batch (detached, as
        they come from the model's tape). The actor sees stop-gradient features, but its reparameterised actions
        carry gradients through the dynamics into every later state. Returns features (H, B*T, F) of the H
        imagined states (the start states are not included, as the official `_imagine_ahead`)."""
        state = {k: v.detach().flatten(0, 1) for k, v in post.items()}
        feats = []
        for _ in range(self.config.horizon):
            action = self.actor(self.rssm.feat(state).detach()).sample()
            state = self.rssm.img_step(state, action)
            feats.append(self.rssm.feat(state))
        return torch.stack(feats, 0)

    def behaviour_losses(self, post: State) -> tuple[Tensor, Tensor, dict[str, float]]:
        """Imagine H steps ahead of every posterior state, then the actor and value losses on them."""
        return self.returns_and_losses(self.imagine_ahead(post))

    def returns_and_losses(self, imag_feat: Tensor) -> tuple[Tensor, Tensor, dict[str, float]]:
        """Actor: maximise the discount-weighted lambda-returns of the imagined states (H, N, F), the gradient
        flowing through rewards, values and dynamics. Value: regress the stopped lambda-return on the stopped
        features (official `_train`)."""
        c = self.config
        reward = self.reward(imag_feat)  # (H, N): the mode of the unit Gaussian
        value = self.value(imag_feat)
        pcont = torch.full_like(reward, c.discount)
        returns = lambda_return(reward[:-1], value[:-1], pcont[:-1], value[-1], c.disclam)  # (H-1, N)
        discount = torch.cumprod(torch.cat([torch.ones_like(pcont[:1]), pcont[:-2]], 0), 0).detach()
        actor_loss = -(discount * returns).mean()
        value_pred = self.value(imag_feat.detach())[:-1]
        value_loss = (discount * unit_normal_nll(value_pred, returns.detach())).mean()
        metrics = {"imag_reward": reward.mean().item(), "imag_value": value.mean().item(),
                   "imag_return": returns.mean().item()}
        return actor_loss, value_loss, metrics

    # ---- open-loop prediction ---------------------------------------------------------------------------
    @torch.no_grad()
    def open_loop(self, data: dict[str, np.ndarray], context: int = 5) -> dict[str, np.ndarray]:
        """Observe ``context`` steps, then predict the rest from the replayed actions alone (official
        `_image_summaries`): video (B, T, H, 3W, C) uint8 of [truth | model | error], the model frames being
        reconstructions for the context and open-loop predictions after it."""
        if "image" not in self.obs_keys:
            return {}
        obs = self.preprocess(data)
        action = torch.as_tensor(data["action"], device=self.device).float()
        post, _ = self.rssm.observe(self.encoder({k: v[:, :context] for k, v in obs.items()}), action[:, :context])
        state = {k: v[:, -1] for k, v in post.items()}
        feats = [self.rssm.feat(post)]
        for t in range(context, action.shape[1]):
            state = self.rssm.img_step(state, action[:, t])
            feats.append(self.rssm.feat(state)[:, None])
        image = obs["image"]
        model = self.decoder(torch.cat(feats, 1))["image"].clamp(-0.5, 0.5)
        error = (model - image + 1) / 2 - 0.5
        video = torch.cat([image, model, error], 3) + 0.5  # side by side along the width
        return {"image": (video * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()}
