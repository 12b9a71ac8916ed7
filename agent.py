"""A trained run as a driver for any CarRacing-v3 loop.

    agent = Agent.load("logs/my_run")
    obs, _ = env.reset(seed=1_000_000); agent.reset()
    while True:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs))

`act` takes raw 96x96x3 frames, one per environment frame, and applies the run's preprocessing, frame
stack and action repeat itself: it picks a new action every `action_repeat` frames and repeats it between.
`test` drives through the same stacker and `decide`. The run's policy brakes, accelerates and steers as its
config's `model.brake_deadzone`, `model.brake_scale`, `model.gas_scale` and `model.steer_scale` say (train_rl's
trials); a named checkpoint drives as it was trained.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distributed import resolve_device
from env import EnvConfig, FrameStacker
from errors import UserError
from networks import POLICY_ACTIONS, ActorCritic, ModelConfig
from runs import checkpoint_path, load_checkpoint, load_config, run_dir

MAX_GAS_SCALE = 2.0  # a gas scale beyond it only turns every bit of gas into full gas
MAX_STEER_SCALE = 2.0  # likewise the steering, into full lock


def own_driving_setting(run_value: float, checkpoint: str | None, setting: str) -> float:
    """The value of a driving setting (ModelConfig.DRIVING_SETTINGS) a checkpoint of a run drives with: the run's
    (its config's) for its policy, else the setting's default (as trained)."""
    return run_value if checkpoint in (None, "latest") else ModelConfig.as_trained()[setting]


# Each driving setting's values: (lowest, highest, whether the highest itself is allowed).
DRIVING_RANGES = {"brake_deadzone": (0.0, 1.0, False),  # a deadzone of 1 would release every brake
                  "brake_scale": (0.0, 1.0, True), "gas_scale": (1.0, MAX_GAS_SCALE, True),
                  "steer_scale": (1.0, MAX_STEER_SCALE, True)}


def driving_range_error(setting: str, value: float) -> str:
    """What is wrong with `value` for a driving setting (ModelConfig.DRIVING_SETTINGS): "" if it is in range."""
    low, high, high_allowed = DRIVING_RANGES[setting]
    if low <= value < high or (high_allowed and value == high):
        return ""
    return f"must be in [{low:g}, {high:g}{']' if high_allowed else ')'}, got {value}"


def check_driving(settings: dict[str, float | None], prefix: str = "") -> None:
    """Each given driving setting (None: not given) in its range, or a UserError naming it after `prefix` (a config
    file's name, or "--" for a flag)."""
    for setting, value in settings.items():
        if value is not None and (problem := driving_range_error(setting, value)):
            raise UserError(f"{prefix}{setting} {problem}")


class Agent:
    def __init__(self, model: ActorCritic, env_config: EnvConfig, device: str | torch.device = "cpu",
                 brake_scale: float = 1.0, gas_scale: float = 1.0, brake_deadzone: float = 0.0,
                 steer_scale: float = 1.0):
        self.model = model
        self.brake_scale = brake_scale
        self.gas_scale = gas_scale
        self.brake_deadzone = brake_deadzone
        self.steer_scale = steer_scale
        self.env_config = env_config
        self.device = torch.device(device)
        self.stacker = FrameStacker(env_config)
        self._frames_seen = 0
        self._action = np.zeros(3, np.float32)

    @classmethod
    def load(cls, run: str | Path, checkpoint: str | None = None, device: str = "cpu",
             policy_action: str | None = None, brake_scale: float | None = None,
             gas_scale: float | None = None, brake_deadzone: float | None = None,
             steer_scale: float | None = None) -> "Agent":
        """Rebuild a run's networks from `config.json` and load its latest (or the named) checkpoint.
        `policy_action` ("mean" or "expected", see ModelConfig), `brake_scale` (in [0, 1]), `gas_scale` (in
        [1, MAX_GAS_SCALE]), `brake_deadzone` (in [0, 1)) and `steer_scale` (in [1, MAX_STEER_SCALE]; all four by
        default the run's own for its policy, as trained for a named checkpoint) override the run's, for
        comparisons."""
        path = run_dir(str(run))
        config = load_config(path)  # checked: a malformed file is a one-line error naming it
        env_config, model_config = EnvConfig(**config["env"]), ModelConfig(**config["model"])
        if policy_action is not None:
            if policy_action not in POLICY_ACTIONS:
                raise UserError(f"policy_action must be one of {POLICY_ACTIONS}, got {policy_action!r}")
            model_config.policy_action = policy_action
        try:
            model = ActorCritic(env_config.obs_shape, model_config)
        except ValueError as error:  # e.g. an unknown encoder or policy_action in a hand-edited config.json
            raise UserError(f"{path / 'config.json'}: {error}") from None
        state = load_checkpoint(checkpoint_path(path, checkpoint))
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise UserError(f"{path}: checkpoint does not match the run's networks "
                            f"({str(error).splitlines()[0]})") from None
        own = {key: getattr(model_config, key) for key in ModelConfig.DRIVING_SETTINGS}
        check_driving(own, f"{path / 'config.json'}: ")  # hand-edited?
        given = {"brake_deadzone": brake_deadzone, "brake_scale": brake_scale, "gas_scale": gas_scale,
                 "steer_scale": steer_scale}
        check_driving(given)
        driving = {key: own_driving_setting(own[key], checkpoint, key) if value is None else value
                   for key, value in given.items()}
        device = resolve_device(device)
        model.to(device).eval()
        return cls(model, env_config, device, **driving)

    def reset(self) -> None:
        """Forget the previous episode (call after every env.reset)."""
        self.stacker.frames.clear()
        self._frames_seen = 0

    def act(self, frame: np.ndarray) -> np.ndarray:
        """Action (steer, gas, brake) for the raw frame just observed."""
        frame = np.asarray(frame)
        if frame.shape != (96, 96, 3) or frame.dtype != np.uint8:
            raise ValueError(f"expected a raw CarRacing frame uint8 (96, 96, 3), got {frame.dtype} {frame.shape}")
        if self._frames_seen % self.env_config.action_repeat == 0:
            obs = self.stacker.reset(frame) if self._frames_seen == 0 else self.stacker.push(frame)
            self._action = self.decide(obs[None])[0]
        self._frames_seen += 1
        return self._action.copy()

    def decide(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions (N, 3) for a batch of preprocessed, stacked observations (N, C, S, S)."""
        with torch.no_grad():
            actions = self.model.act(torch.as_tensor(obs, device=self.device)).cpu().numpy().astype(np.float32)
        actions[:, 0] = np.clip(actions[:, 0] * self.steer_scale, -1.0, 1.0)
        actions[:, 1] = np.minimum(actions[:, 1] * self.gas_scale, 1.0)
        actions[:, 2] = np.where(actions[:, 2] < self.brake_deadzone, 0.0, actions[:, 2] * self.brake_scale)
        return actions
