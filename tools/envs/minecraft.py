"""Minecraft Diamond as in DreamerV3, task ``minecraft_diamond`` (needs ``minerl==0.4.4``; not installable here).

Follows the official ``danijar/dreamerv3`` ``embodied/envs/minecraft.py`` / ``minecraft_base.py`` /
``minecraft_minerl.py`` (read, not copied):
- reward: +1 the first time in an episode each of the 12 milestone items (``MILESTONES``) enters the inventory,
  plus 0.01 x the change of health/20 (official ``HealthReward(scale=0.01)`` on the normalised health);
- episodes of 36,000 steps (30 minutes at 20 Hz), the limit is ``truncated``; MineRL's own end (death) is
  ``terminated``;
- the 25 categorical actions of the paper (``ACTIONS``: 12 basic moves + 13 craft/place/equip/smelt), each a
  full MineRL action dict over ``NOOP_ACTION``; camera turns of 15 degrees with pitch kept in [-60, 60],
  sticky jump for 10 steps, sticky attack for 30 steps only at break speed 1 (off at the default 100);
- block-break speed multiplier 100 (``break_speed``), 64x64 RGB first-person view, survival world
  (MineRL's default world generator, spawning on, time passing).

Observations: ``image`` (64, 64, 3) uint8 and ``vector`` float32 = [inventory counts, running max of the
inventory, one-hot equipped item, health/20, food/20, air/300] as the official base env builds them.
``info["milestones"]``: the milestone items reached so far this episode.

The reward and action logic (``MilestoneReward``, ``ActionMapper``, ``merge_logs``) are pure Python and
tested without MineRL; only ``MinecraftDiamond`` imports ``minerl``, lazily, and raises
``MinecraftUnavailableError`` naming what is missing.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from tools.envs.wrappers import UnknownTaskError, check_options, finish

TASKS = ("minecraft_diamond",)
MILESTONES = ("log", "planks", "stick", "crafting_table", "wooden_pickaxe", "cobblestone", "stone_pickaxe",
              "iron_ore", "furnace", "iron_ingot", "iron_pickaxe", "diamond")  # official MinecraftDiamond rewards
NOOP_ACTION = dict(camera=(0, 0), forward=0, back=0, left=0, right=0, attack=0, sprint=0, jump=0, sneak=0,
                   craft="none", nearbyCraft="none", nearbySmelt="none", place="none", equip="none")
ACTIONS: dict[str, dict] = {  # official BASIC_ACTIONS + MinecraftDiamond actions, in their order
    "noop": {}, "attack": {"attack": 1},
    "turn_up": {"camera": (-15, 0)}, "turn_down": {"camera": (15, 0)},
    "turn_left": {"camera": (0, -15)}, "turn_right": {"camera": (0, 15)},
    "forward": {"forward": 1}, "back": {"back": 1}, "left": {"left": 1}, "right": {"right": 1},
    "jump": {"jump": 1, "forward": 1}, "place_dirt": {"place": "dirt"},
    "craft_planks": {"craft": "planks"}, "craft_stick": {"craft": "stick"},
    "craft_crafting_table": {"craft": "crafting_table"}, "place_crafting_table": {"place": "crafting_table"},
    "craft_wooden_pickaxe": {"nearbyCraft": "wooden_pickaxe"}, "craft_stone_pickaxe": {"nearbyCraft": "stone_pickaxe"},
    "craft_iron_pickaxe": {"nearbyCraft": "iron_pickaxe"}, "equip_stone_pickaxe": {"equip": "stone_pickaxe"},
    "equip_wooden_pickaxe": {"equip": "wooden_pickaxe"}, "equip_iron_pickaxe": {"equip": "iron_pickaxe"},
    "craft_furnace": {"nearbyCraft": "furnace"}, "place_furnace": {"place": "furnace"},
    "smelt_iron_ingot": {"nearbySmelt": "iron_ingot"},
}
DEFAULTS = {
    "size": 64,  # DreamerV3 env.minecraft size [64, 64]
    "break_speed": 100.0,  # DreamerV3 env.minecraft break_speed 100 (paper: "block breaking speed" x100)
    "max_steps": 36_000,  # DreamerV3 env.minecraft length 36000 (30 min at 20 Hz)
    "health_scale": 0.01,  # official HealthReward(scale=0.01)
    "sticky_attack": 30,  # official MinecraftBase; disabled when break_speed != 1
    "sticky_jump": 10,  # official MinecraftBase
    "pitch_limit": (-60, 60),  # official MinecraftBase
    "action_repeat": 1,  # official MinecraftBase repeat=1
}
INSTALL_HINT = ("minecraft_diamond needs minerl==0.4.4, which is not installed ({error}). It builds only with "
                "Java 8 (JDK on PATH), gym==0.19.0 and a gradle download: `pip install gym==0.19.0 minerl==0.4.4` "
                "on such a machine (see the project README).")


class MinecraftUnavailableError(ImportError):
    pass


class MilestoneReward:
    """+1 the first time each milestone item is held in an episode, plus ``health_scale`` x change of health."""

    def __init__(self, milestones: tuple[str, ...] = MILESTONES, health_scale: float = 0.01) -> None:
        self.milestones, self.health_scale = milestones, health_scale
        self.reached: list[str] = []
        self._health = 0.0

    def reset(self, inventory: dict[str, float], health: float) -> None:
        """Items already held at the start earn nothing (official CollectReward on is_first)."""
        self.reached = [item for item in self.milestones if inventory.get(item, 0) > 0]
        self._health = health

    def __call__(self, inventory: dict[str, float], health: float) -> float:
        new = [item for item in self.milestones if item not in self.reached and inventory.get(item, 0) > 0]
        self.reached += new
        reward = len(new) + self.health_scale * (health - self._health)
        self._health = health
        return float(reward)


class ActionMapper:
    """Categorical action index -> MineRL action dict, with the official sticky keys and pitch limit."""

    def __init__(self, sticky_attack: int = 0, sticky_jump: int = 10, pitch_limit: tuple[int, int] = (-60, 60)):
        self.names = tuple(ACTIONS)
        self._sticky_attack, self._sticky_jump, self._pitch_limit = sticky_attack, sticky_jump, pitch_limit
        self.reset()

    def reset(self) -> None:
        self._attack_left = self._jump_left = 0
        self._pitch = 0

    def __call__(self, index: int) -> dict:
        action = {**NOOP_ACTION, **ACTIONS[self.names[index]]}
        if self._sticky_attack:
            if action["attack"]:
                self._attack_left = self._sticky_attack
            if self._attack_left > 0:
                action.update(attack=1, jump=0)
                self._attack_left -= 1
        if self._sticky_jump:
            if action["jump"]:
                self._jump_left = self._sticky_jump
            if self._jump_left > 0:
                action.update(jump=1, forward=1)
                self._jump_left -= 1
        pitch = action["camera"][0]
        if pitch:
            low, high = self._pitch_limit
            if not low <= self._pitch + pitch <= high:
                action["camera"] = (0, action["camera"][1])
            self._pitch += action["camera"][0]
        return action


def merge_logs(inventory: dict[str, float]) -> dict[str, float]:
    """MineRL 0.4 splits logs into ``log`` and ``log2`` (acacia, dark oak); the official code adds them."""
    merged = dict(inventory)
    merged["log"] = merged.get("log", 0) + merged.pop("log2", 0)
    return merged


def _import_minerl():
    try:
        import minerl  # noqa: F401  (lazy: minerl is not in requirements.txt)
        from minerl.herobraine.env_spec import EnvSpec
        from minerl.herobraine.hero import handler, handlers, mc
    except ImportError as error:
        raise MinecraftUnavailableError(INSTALL_HINT.format(error=f"{type(error).__name__}: {error}")) from None
    return EnvSpec, handler, handlers, mc


def _make_minerl_env(size: int, break_speed: float):
    """The survival env spec of the official ``minecraft_minerl.py`` on MineRL 0.4.4 (untested here)."""
    EnvSpec, handler, handlers, mc = _import_minerl()
    from minerl.herobraine.hero.mc import INVERSE_KEYMAP

    class BreakSpeed(handler.Handler):
        def __init__(self) -> None:
            self.multiplier = break_speed

        def to_string(self) -> str:
            return f"break_speed({break_speed})"

        def xml_template(self) -> str:
            return "<BreakSpeedMultiplier>{{multiplier}}</BreakSpeedMultiplier>"

    class Survival(EnvSpec):
        def __init__(self) -> None:
            super().__init__(name="MineRLEnv-v1")

        def create_agent_start(self):
            return [BreakSpeed()]

        def create_server_world_generators(self):
            return [handlers.DefaultWorldGenerator(force_reset=True)]

        def create_server_quit_producers(self):
            return [handlers.ServerQuitWhenAnyAgentFinishes()]

        def create_server_initial_conditions(self):
            return [handlers.TimeInitialCondition(allow_passage_of_time=True, start_time=0),
                    handlers.SpawningInitialCondition(allow_spawning=True)]

        def create_observables(self):
            return [handlers.POVObservation((size, size)), handlers.FlatInventoryObservation(mc.ALL_ITEMS),
                    handlers.EquippedItemObservation(mc.ALL_ITEMS, _default="air", _other="other"),
                    handlers.ObservationFromCurrentLocation(), handlers.ObservationFromLifeStats()]

        def create_actionables(self):
            keys = [handlers.KeybasedCommandAction(k, INVERSE_KEYMAP[k])
                    for k in ("forward", "back", "left", "right", "jump", "sneak", "attack")]
            kw = dict(_other="none", _default="none")
            items = ["none"] + mc.ALL_ITEMS
            return keys + [handlers.CameraAction(), handlers.PlaceBlock(items, **kw), handlers.EquipAction(items, **kw),
                           handlers.CraftAction(items, **kw), handlers.CraftNearbyAction(items, **kw),
                           handlers.SmeltItemNearby(items, **kw)]

        def create_agent_handlers(self):
            return []

        def create_rewardables(self):
            return []

        def create_server_decorators(self):
            return []

        def create_mission_handlers(self):
            return []

        def create_monitors(self):
            return []

        def is_from_folder(self, folder: str) -> bool:
            return folder == "none"

        def get_docstring(self) -> str:
            return ""

        def determine_success_from_rewards(self, rewards) -> bool:
            return True

    return Survival().make(), mc.ALL_ITEMS


class MinecraftDiamond(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, seed: int, size: int, break_speed: float, max_steps: int, health_scale: float,
                 sticky_attack: int, sticky_jump: int, pitch_limit: tuple[int, int]) -> None:
        self._env, items = _make_minerl_env(size, break_speed)
        self._env.seed(seed)
        self._items = [item for item in items if item != "log2"]
        self._equip = list(self._env.observation_space["equipped_items"]["mainhand"]["type"].values)
        self._reward = MilestoneReward(MILESTONES, health_scale)
        self._actions = ActionMapper(sticky_attack if break_speed == 1.0 else 0, sticky_jump, pitch_limit)
        self._max_steps, self._steps, self._max_inventory = max_steps, 0, None
        dim = 2 * len(self._items) + len(self._equip) + 3
        self.action_space = gym.spaces.Discrete(len(ACTIONS))
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8),
                                                  "vector": gym.spaces.Box(-np.inf, np.inf, (dim,), np.float32)})

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(seed)
        raw = self._env.reset()
        self._actions.reset()
        self._steps, self._max_inventory = 0, None
        obs, inventory, health = self._observe(raw)
        self._reward.reset(inventory, health)
        return obs, {"milestones": list(self._reward.reached)}

    def step(self, action):
        raw, _, done, _ = self._env.step(self._actions(int(action)))
        self._steps += 1
        obs, inventory, health = self._observe(raw)
        reward = self._reward(inventory, health)
        truncated = not done and self._steps >= self._max_steps
        return obs, reward, bool(done), truncated, {"milestones": list(self._reward.reached)}

    def _observe(self, raw: dict) -> tuple[dict[str, np.ndarray], dict[str, float], float]:
        inventory = merge_logs({k: float(v) for k, v in raw["inventory"].items()})
        counts = np.array([inventory.get(item, 0.0) for item in self._items], np.float32)
        self._max_inventory = counts if self._max_inventory is None else np.maximum(self._max_inventory, counts)
        equipped = np.zeros(len(self._equip), np.float32)
        equipped[self._equip.index(raw["equipped_items"]["mainhand"]["type"])] = 1.0
        life = raw["life_stats"]
        stats = np.array([life["life"] / 20, life["food"] / 20, life["air"] / 300], np.float32)
        vector = np.concatenate([counts, self._max_inventory, equipped, stats]).astype(np.float32)
        return {"image": np.asarray(raw["pov"], np.uint8), "vector": vector}, inventory, float(stats[0])

    def close(self) -> None:
        self._env.close()


def make(task: str, seed: int, **options) -> gym.Env:
    if task not in TASKS:
        raise UnknownTaskError(f"unknown minecraft task {task!r}; valid: {list(TASKS)}")
    opts = check_options("minecraft", options, DEFAULTS)
    repeat = opts.pop("action_repeat")
    return finish(MinecraftDiamond(seed, **opts), seed, repeat)
