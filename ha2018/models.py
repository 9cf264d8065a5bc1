"""Build V, M and C from a config, and pick the device."""
from __future__ import annotations

import torch
from omegaconf import DictConfig

from ha2018.controller import ACTION_SIZE, Controller
from ha2018.mdnrnn import MDNRNN
from ha2018.vae import ConvVAE


def pick_device(config: DictConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def build_vae(config: DictConfig) -> ConvVAE:
    return ConvVAE(config.vae.z_size)


def build_mdnrnn(config: DictConfig, task: str) -> MDNRNN:
    m = config.mdnrnn
    return MDNRNN(config.vae.z_size, ACTION_SIZE[task], m.hidden, m.mixtures, m.predict_done, m.logstd_min,
                  m.logstd_max)


def build_controller(config: DictConfig, task: str) -> Controller:
    return Controller.for_task(task, config.vae.z_size, config.mdnrnn.hidden, config.controller.inputs,
                               config.controller.bias)


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
