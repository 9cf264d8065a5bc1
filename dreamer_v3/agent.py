"""The DreamerV3 agent: world model, imagined actor-critic with return normalisation, critic EMA regulariser and
critic replay loss; one LaProp optimiser over all modules (official `dreamerv3/agent.py`, 2024 agent)."""
from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from dreamer_v3.networks import RSSM, Actor, BinaryHead, Decoder, Encoder, TwoHotHead
from dreamer_v3.optim import LaProp
from dreamer_v3.robustness import ReturnNormalizer, kl_losses, lambda_return, symlog, twohot_loss, twohot_mean

FLAGS = ("is_first", "is_last", "is_terminal")


class DreamerV3(nn.Module):
    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], act_dim: int, discrete: bool, config: DictConfig,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        c = config
        self.config, self.discrete, self.act_dim = c, discrete, act_dim
        self.obs_shapes = {k: tuple(v) for k, v in obs_shapes.items()}
        units, depth, r = c.units, c.depth, c.rssm
        self.encoder = Encoder(self.obs_shapes, depth, list(c.enc.mults), c.enc.layers, units, c.enc.kernel,
                               c.enc.symlog)
        self.rssm = RSSM(self.encoder.out_dim, act_dim, r.deter, r.hidden, r.stoch, r.classes, r.blocks, r.unimix,
                         r.imglayers, r.obslayers, r.dynlayers)
        feat = self.rssm.feat_dim
        self.decoder = Decoder(self.obs_shapes, r.deter, r.stoch * r.classes, depth, list(c.dec.mults),
                               c.dec.layers, units, c.dec.kernel, c.dec.bspace, c.dec.outscale)
        self.reward = TwoHotHead(feat, c.rewhead.layers, units, c.rewhead.bins, c.rewhead.outscale)
        self.cont = BinaryHead(feat, c.conhead.layers, units, c.conhead.outscale)
        p = c.policy
        self.actor = Actor(feat, act_dim, discrete, p.layers, units, p.minstd, p.maxstd, p.outscale)
        self.critic = TwoHotHead(feat, c.value.layers, units, c.value.bins, c.value.outscale)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.retnorm = ReturnNormalizer(c.retnorm.rate, c.retnorm.limit, c.retnorm.perclo, c.retnorm.perchi)
        self.to(device)
        self.device = torch.device(device)
        o = c.opt
        self.opt = LaProp(self.trained_parameters(), o.lr, o.agc, o.eps, o.beta1, o.beta2, o.warmup)
        scales = dict(c.loss_scales)
        rec = scales.pop("rec")
        self.scales = {**scales, **{key: rec for key in self.obs_shapes}}  # every decoded key is scaled by rec
        self.autocast = bool(c.bf16) and self.device.type == "cuda"
        # replay context (official `replay_context: 1`): the latent last computed at each replayed step is stored
        # in the replay (deter as float16, stoch as class indices) and starts the next sequence sampled there
        self.replay_context = int(c.replay_context)
        self.context_spec = {"ctx_deter": ((r.deter,), "<f2"), "ctx_stoch": ((r.stoch,), "|u1" if r.classes <= 256
                                                                            else "<i2")}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def trained_parameters(self) -> list[nn.Parameter]:
        modules = (self.encoder, self.rssm, self.decoder, self.reward, self.cont, self.actor, self.critic)
        return [p for m in modules for p in m.parameters()]

    def _amp(self):
        return torch.autocast("cuda", torch.bfloat16) if self.autocast else contextlib.nullcontext()

    # ---- acting -----------------------------------------------------------------------------------
    def initial_state(self, batch: int) -> dict[str, Tensor]:
        state = self.rssm.initial(batch, self.device)
        state["action"] = torch.zeros(batch, self.act_dim, device=self.device)
        return state

    @torch.inference_mode()
    def policy(self, obs: dict[str, np.ndarray], state: dict[str, Tensor], mode: str = "train"
               ) -> tuple[Tensor, dict[str, Tensor]]:
        """One step for a batch of environments: obs values (N, ...), ``is_first`` (N,). Returns the action
        (N, A) (one-hot for discrete actions) and the next state. Sampled in training and evaluation alike, as
        the official policy does (``mode`` changes nothing)."""
        obs_t = self.to_tensors(obs)
        with self._amp():
            tokens = self.encoder({k: obs_t[k] for k in self.obs_shapes})
            post = self.rssm.obs_step(state, state["action"], tokens, obs_t["is_first"].bool())
            action = self.actor(self.rssm.feat(post)).sample()
        if self.discrete:
            action = F.one_hot(action, self.act_dim).float()
        return action, {"deter": post["deter"], "stoch": post["stoch"], "action": action}

    def context(self, state: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """Replay-context entries of states with any leading dims (N or B, T): deter float16, stoch indices."""
        dtype = np.dtype(self.context_spec["ctx_stoch"][1])
        return {"ctx_deter": state["deter"].cpu().numpy().astype(np.float16),
                "ctx_stoch": state["stoch"].argmax(-1).cpu().numpy().astype(dtype)}

    def _split_context(self, data: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
        """With replay context the batch has K extra leading steps: their stored latent (the last one) starts
        the rollout over the remaining T steps (official `_apply_replay_context`)."""
        if not self.replay_context:
            return data, None
        K = self.replay_context
        start = {"deter": data["ctx_deter"][:, K - 1].float(),
                 "stoch": F.one_hot(data["ctx_stoch"][:, K - 1].long(), self.rssm.classes).float()}
        return {k: v[:, K:] for k, v in data.items() if not k.startswith("ctx_")}, start

    def to_tensors(self, data: dict[str, np.ndarray]) -> dict[str, Tensor]:
        return {k: torch.as_tensor(np.ascontiguousarray(v), device=self.device) for k, v in data.items()}

    # ---- training ---------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, np.ndarray]):
        """One gradient step on a replay batch of (B, T) steps (see `SequenceReplay` for the layout). Returns
        the metrics; with replay context also the new context entries of the T trained steps, for the replay."""
        data, start = self._split_context(self.to_tensors(batch))
        self.opt.zero_grad(set_to_none=True)
        with self._amp():
            losses, metrics, post = self.loss(data, start)
        total = sum(losses[k].mean() * self.scales[k] for k in losses)
        total.backward()
        self.opt.step()
        self.update_slow_critic()
        metrics.update({f"loss/{k}": v.mean().item() for k, v in losses.items()})
        metrics["loss/total"] = total.item()
        if not self.replay_context:
            return metrics
        return metrics, self.context({k: post[k].detach() for k in ("deter", "stoch")})  # (B, T, ...) each

    @torch.no_grad()
    def update_slow_critic(self) -> None:
        """Slow critic EMA: rate 0.02 every update (official `slowvalue: {rate: 0.02, every: 1}`)."""
        rate = self.config.slow_rate
        for slow, fast in zip(self.slow_critic.parameters(), self.critic.parameters()):
            slow.lerp_(fast, rate)

    def loss(self, data: dict[str, Tensor], start: dict[str, Tensor] | None = None
             ) -> tuple[dict[str, Tensor], dict[str, float], dict[str, Tensor]]:
        losses, metrics, post = self.world_model_loss(data, start)
        B, T = data["is_first"].shape
        K = min(self.config.imag_last or T, T)  # imagine from the last K posterior states of each sequence
        last_k = lambda x: x[:, -K:]  # noqa: E731
        starts = {k: last_k(post[k]).detach().flatten(0, 1) for k in ("deter", "stoch")}  # (B*K, ...)
        ac_losses, ac_metrics, start_ret = self.actor_critic_loss(starts)
        losses.update(ac_losses)
        metrics.update(ac_metrics)
        if self.scales.get("repval", 0):
            replay = {k: last_k(data[k]) for k in ("is_last", "is_terminal", "reward")}
            losses["repval"] = self.replay_value_loss(replay, {k: last_k(v) for k, v in post.items()},
                                                      start_ret.reshape(B, K))
        return losses, metrics, post

    def world_model_loss(self, data: dict[str, Tensor], start: dict[str, Tensor] | None = None
                         ) -> tuple[dict[str, Tensor], dict[str, float], dict]:
        c = self.config
        reset = data["is_first"].bool()
        B, T = reset.shape
        tokens = self.encoder({k: data[k] for k in self.obs_shapes})  # (B, T, E)
        start = self.rssm.initial(B, self.device) if start is None else start
        _, post = self.rssm.observe(start, data["action"].float(), tokens, reset)
        prior_logits = self.rssm.prior_logits(post["deter"])  # (B, T, S, C)
        dyn, rep = kl_losses(post["logits"].float(), prior_logits.float(), c.rssm.free_nats)
        feat = self.rssm.feat(post)  # (B, T, F)
        losses = {"dyn": dyn, "rep": rep}
        recon = self.decoder(post["deter"], post["stoch"].flatten(-2))
        for key, pred in recon.items():
            if len(self.obs_shapes[key]) == 3:
                target = data[key].float() / 255
                losses[key] = (pred - target).square().sum((-3, -2, -1))
            else:
                losses[key] = (pred - symlog(data[key].float())).square().sum(-1)
        losses["rew"] = twohot_loss(self.reward(feat), data["reward"].float(), self.reward.bins)
        con = (1 - data["is_terminal"].float()) * (1 - 1 / c.horizon)  # contdisc: continue head predicts discount
        losses["con"] = F.binary_cross_entropy_with_logits(self.cont(feat), con, reduction="none")
        metrics = {"dyn_ent": _entropy(prior_logits), "rep_ent": _entropy(post["logits"])}
        return losses, metrics, post

    def imagine(self, starts: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Roll out the actor in the prior for H steps from (N, ...) start states (no gradients, as the official
        imagined features and actions are stop-gradiented). Returns the features (N, H+1, F) and actions
        (N, H+1, A): action t is the one taken at state t. The features the actor reads at each step are the
        ones returned (one stack, not a stack of states and a second concatenation)."""
        feats, actions = [], []
        state = starts
        with torch.no_grad():
            for t in range(self.config.imag_length + 1):
                feats.append(self.rssm.feat(state))
                actions.append(self._act(self.actor(feats[-1]).sample()))
                if t < self.config.imag_length:
                    state = self.rssm.img_step(state, actions[-1])
        return torch.stack(feats, 1), torch.stack(actions, 1)

    def _act(self, sample: Tensor) -> Tensor:
        return F.one_hot(sample, self.act_dim).float() if self.discrete else sample

    def actor_critic_loss(self, starts: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, float], Tensor]:
        """Policy and value losses on imagined trajectories (official `imag_loss`, contdisc=True, slowtar=False).
        Returns per-start losses (N,), metrics and the lambda return at each start state (N,)."""
        c = self.config
        feat, actions = self.imagine(starts)  # (N, H+1, F), (N, H+1, A)
        with torch.no_grad():
            rew = twohot_mean(self.reward(feat), self.reward.bins)
            con = torch.sigmoid(self.cont(feat))  # includes the discount 1 - 1/horizon
            slow_logits = self.slow_critic(feat)
            slowval = twohot_mean(slow_logits, self.critic.bins)
        weight = torch.cumprod(con, 1)  # (N, H+1)
        value_logits = self.critic(feat)
        val = twohot_mean(value_logits, self.critic.bins)
        ret = lambda_return(torch.zeros_like(con), 1 - con, rew, val.detach(), disc=1.0, lam=c.lam)  # (N, H)
        if self.training:
            self.retnorm.update(ret)
        _, scale = self.retnorm.stats()
        adv = (ret - val[:, :-1].detach()) / scale
        dist = self.actor(feat)
        logpi = dist.log_prob(actions.argmax(-1) if self.discrete else actions)[:, :-1]
        entropy = dist.entropy()[:, :-1]
        policy = weight[:, :-1] * -(logpi * adv.detach() + c.actent * entropy)
        target = leading_twohot_loss(value_logits, ret.detach(), self.critic.bins)
        slowreg = leading_twohot_loss(value_logits, slowval[:, :-1], self.critic.bins)
        value = weight[:, :-1] * (target + c.slowreg * slowreg)
        metrics = {"ret": ret.mean().item(), "ret_scale": scale.item(), "adv_mag": adv.abs().mean().item(),
                   "entropy": entropy.mean().item(), "val": val.mean().item(), "imag_rew": rew.mean().item(),
                   "imag_con": con.mean().item()}
        return {"policy": policy.mean(1), "value": value.mean(1)}, metrics, ret[:, 0].detach()

    def replay_value_loss(self, data: dict[str, Tensor], post: dict[str, Tensor], boot: Tensor) -> Tensor:
        """Critic replay loss (paper v2 / Nature, scale 0.3): lambda returns along the replayed sequence,
        bootstrapped with the imagination returns; gradients reach the world model (official repval_grad=True).
        Returns (B, T-1)."""
        c = self.config
        feat = self.rssm.feat(post)
        value_logits = self.critic(feat)
        with torch.no_grad():
            slowval = twohot_mean(self.slow_critic(feat), self.critic.bins)
        last, term = data["is_last"].float(), data["is_terminal"].float()
        ret = lambda_return(last, term, data["reward"].float(), boot, disc=1 - 1 / c.horizon, lam=c.lam)
        target = leading_twohot_loss(value_logits, ret.detach(), self.critic.bins)
        slowreg = leading_twohot_loss(value_logits, slowval[:, :-1], self.critic.bins)
        return (1 - last[:, :-1]) * (target + c.slowreg * slowreg)

    # ---- open-loop prediction -----------------------------------------------------------------------
    @torch.no_grad()
    def open_loop(self, data: dict[str, np.ndarray], context: int) -> dict[str, np.ndarray]:
        """Observe ``context`` steps, then imagine the rest with the replayed actions; per image key a video
        (B, T, H, 3W, C) uint8 of [truth | prediction | error]."""
        d = self.to_tensors(data)
        B, T = d["is_first"].shape
        tokens = self.encoder({k: d[k][:, :context] for k in self.obs_shapes})
        state, post = self.rssm.observe(self.rssm.initial(B, self.device), d["action"][:, :context].float(),
                                        tokens, d["is_first"][:, :context].bool())
        states = [post]
        for t in range(context, T):
            state = self.rssm.img_step(state, d["action"][:, t].float())
            states.append({k: v[:, None] for k, v in state.items()})
        deter = torch.cat([s["deter"] for s in states], 1)
        stoch = torch.cat([s["stoch"] for s in states], 1).flatten(-2)
        recon = self.decoder(deter, stoch)
        videos = {}
        for key in self.decoder.images:
            truth = d[key].int()
            pred = (recon[key] * 255).clamp(0, 255).int()
            error = ((pred - truth + 255) // 2)
            videos[key] = torch.cat([truth, pred, error], 3).to(torch.uint8).cpu().numpy()
        return videos


def leading_twohot_loss(logits: Tensor, target: Tensor, bins: Tensor) -> Tensor:
    """``twohot_loss(logits[:, :-1], target, bins)`` for logits (N, T+1, K) and target (N, T) -> (N, T), the same
    values computed on the whole contiguous logits (the target's last step repeated, its loss dropped): the
    log-softmax of the slice copied it forward and backward, ~0.3 s of a 12M update (issue 15)."""
    return twohot_loss(logits, torch.cat([target, target[:, -1:]], 1), bins)[:, :-1]


def _entropy(logits: Tensor) -> float:
    logp = logits.float().log_softmax(-1)
    return -(logp.exp() * logp).sum((-2, -1)).mean().item()
