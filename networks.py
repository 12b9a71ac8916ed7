"""Networks shared by BC and SAC: a CNN encoder, a tanh-Gaussian actor and an ensemble of Q critics.

As in DrQ-v2, one encoder turns frames into features; the critic's loss trains it and the actor reads
detached features during RL (BC trains it through both heads). Random-shift augmentation of the frames
is what lets pixel actor-critics learn from few samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# CarRacing actions: steer in [-1, 1], gas and brake in [0, 1]. The actor's tanh output in [-1, 1]^3
# is mapped affinely onto these bounds.
ACTION_LOW = torch.tensor([-1.0, 0.0, 0.0])
ACTION_HIGH = torch.tensor([1.0, 1.0, 1.0])
LOG_STD_MIN = -5.0
OLD_SPREAD_LIMIT = math.exp(2.0)  # the actor's largest std before ModelConfig.spread_limit (log-std clamp at 2)
# Gauss-Hermite rule: integral of exp(-x^2) f(x) dx ~ sum w_i f(x_i); exact enough for tanh of a Gaussian.
HERMITE_NODES, HERMITE_WEIGHTS = (torch.tensor(v, dtype=torch.float32) for v in np.polynomial.hermite.hermgauss(16))
ACTION_NAMES = ("steer", "gas", "brake")
POLICY_ACTIONS = ("mean", "expected")  # see ModelConfig.policy_action


@dataclass
class ModelConfig:
    """Network sizes; saved with each run so `Agent.load` rebuilds the same networks."""

    encoder: str = "nature"  # see ENCODERS
    feature_dim: int = 64  # encoder output after the projection (LayerNorm + tanh)
    hidden_dim: int = 256  # actor and critic MLP width
    num_qs: int = 2  # critic ensemble size
    # LayerNorm before each hidden ReLU of the critics (RLPD: bounds extrapolation). On by default in train_bc
    # and train_rl; False here is what runs saved before it existed had.
    critic_layer_norm: bool = False
    reward_scale: float = 0.1  # critics predict returns of reward * reward_scale (returns reach the hundreds)
    bc_actor: bool = False  # a frozen copy of the BC actor rides along (fine-tuned runs: reference and proposals)
    bc_selection: bool = False  # acting picks the higher-Q of the RL and BC proposals (IBRL; needs bc_actor)
    # The action test, validation and Agent.load drive: "mean" = tanh of the Gaussian's mean (what BC fits),
    # "expected" = the policy's average action E[tanh(u)], u ~ N(mean, std) (what SAC's samples are trained as).
    # "mean" here (BC runs, runs saved before it existed); train_rl's --policy_action auto: "mean" with the KL
    # cost, "expected" with SAC's entropy bonus.
    policy_action: str | None = "mean"  # None only until train_rl decides it (--policy_action auto)
    # The dashboard strip at the bottom of every stacked frame (CarRacing's speed, ABS, steering and gyroscope
    # bars) goes, as raw pixels, beside the encoder's features to the actor and critics. BC features hardly
    # tell a stopped car from a moving one (bench/speed_probe.py). On by default in train_bc and train_rl
    # (False here is what runs saved before it existed had); fine-tuning a BC run without them adds these
    # inputs with zero weights, so it starts as the BC policy.
    dashboard_inputs: bool | None = False  # None only until train_bc decides it from the data (--dashboard_inputs auto)
    # The actor's largest standard deviation in pre-tanh units (its own and the frozen BC actor's). Wider, a
    # tanh-Gaussian's samples pile up at the bounds and its average action moves off tanh(mean) toward the middle:
    # BC's brake mean saturates far below the bound with a spread of about 4, so a fine-tuned policy driving the
    # average braked, and the KL cost let the critic move that mean cheaply (README, Design notes). train_rl's
    # --spread_limit auto: 1 with the KL cost; the old clamp here (BC runs, runs saved before it existed).
    spread_limit: float | None = OLD_SPREAD_LIMIT  # None only until train_rl decides it (--spread_limit auto)
    # The brake of every action the run's policy drives (validation, test and Agent.load; not collection) times
    # this. train_rl's brake trial sets it after training, where the policy validates higher braking less.
    brake_scale: float = 1.0
    # Likewise the gas, times this (>= 1) and capped at full gas: train_rl's gas trial, after the brake trial.
    gas_scale: float = 1.0
    # Brakes the run's policy applies lighter than this (before brake_scale) are released. Its teacher brakes 0.1
    # or more or not at all, but tanh never reaches the bound, so a clone dabs the brake where the teacher coasted.
    # train_rl's deadzone trial sets it, before the brake trial.
    brake_deadzone: float = 0.0
    # The steering of every action times this (>= 1), clipped to full lock: train_rl's steering trial, after the
    # gas trial, where the strong policies validated higher with a sharper wheel (Design notes).
    steer_scale: float = 1.0
    # How the run's policy drives beyond what it was trained as (the trials'): a named checkpoint drives without them.
    DRIVING_SETTINGS: ClassVar[tuple] = ("brake_deadzone", "brake_scale", "gas_scale", "steer_scale")
    # Settings whose default is what a run saved before them did (drive as trained): loaded without a warning.
    QUIET_DEFAULTS: ClassVar[tuple] = DRIVING_SETTINGS

    @classmethod
    def as_trained(cls) -> dict[str, float]:
        """The driving settings' defaults: a policy driven as it was trained, the trials set aside."""
        return {key: getattr(cls(), key) for key in cls.DRIVING_SETTINGS}


# name -> conv stack as (out_channels, kernel, stride); `bench/learner_speed.py --encoder` times them.
ENCODERS = {
    "nature": [(32, 8, 4), (64, 4, 2), (64, 3, 1)],  # DQN's: cheap on CPU thanks to early striding
    "small": [(16, 8, 4), (32, 4, 2), (32, 3, 1)],  # half the channels: fastest, for tests and laptops
    "drq": [(32, 3, 2), (32, 3, 1), (32, 3, 1), (32, 3, 1)],  # DrQ-v2's: strong but ~10x the FLOPs
}


def dashboard_top(size: int) -> int:
    """First row of CarRacing's dashboard in a frame of `size` rows (it fills the bottom 12 of 96)."""
    return round(size * 84 / 96)


class Encoder(nn.Module):
    """uint8 frames (B, C, S, S) -> features (B, output_dim): the CNN's feature_dim, then with
    `dashboard_inputs` the dashboard rows of every frame as pixels in [0, 1]."""

    def __init__(self, obs_shape: tuple[int, int, int], config: ModelConfig):
        super().__init__()
        if config.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {config.encoder!r}; choose from {sorted(ENCODERS)}")
        layers: list[nn.Module] = []
        channels = obs_shape[0]
        for out_channels, kernel, stride in ENCODERS[config.encoder]:
            layers += [nn.Conv2d(channels, out_channels, kernel, stride), nn.ReLU()]
            channels = out_channels
        self.convs = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *obs_shape)).shape[1]
        self.projection = nn.Sequential(nn.Linear(flat, config.feature_dim), nn.LayerNorm(config.feature_dim),
                                        nn.Tanh())
        channels, size = obs_shape[0], obs_shape[1]
        self.feature_dim = config.feature_dim  # the CNN's part of the output
        self.dashboard_top = dashboard_top(size) if config.dashboard_inputs else size
        self.output_dim = config.feature_dim + channels * (size - self.dashboard_top) * obs_shape[2]

    def forward(self, obs: torch.Tensor, augment_pad: int = 0) -> torch.Tensor:
        """`augment_pad`: random-shift augmentation of the CNN's input only; the dashboard pixels are
        read unshifted, as the actor sees them when it drives."""
        features = self.projection(self.conv_features(random_shift(obs, augment_pad)).float())
        if self.dashboard_top == obs.shape[2]:
            return features
        dashboard = obs[:, :, self.dashboard_top:].flatten(1).to(features.dtype) / 255.0
        return torch.cat([features, dashboard], dim=1)

    def conv_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 frames -> the flattened conv stack's output for pixels scaled to [-0.5, 0.5]. The scaling is
        folded into the first (linear, unpadded) layer: conv(x / 255 - 0.5) = conv'(x) with weights / 255 and
        bias - 0.5 * sum(weights), so the frames are converted once and never divided (two passes fewer over
        the largest tensor of an update). Under bfloat16 autocast the frames go straight to bfloat16 (0-255
        are exact) in channels-last order, the layout oneDNN's AMX kernels on CPU want."""
        first, rest = self.convs[0], self.convs[1:]
        device = pixels.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else first.weight.dtype
        x = pixels.to(dtype)
        if dtype == torch.bfloat16 and device == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        weight = first.weight / 255.0
        bias = first.bias - 0.5 * first.weight.sum(dim=(1, 2, 3))
        return rest(F.conv2d(x, weight, bias, first.stride))


def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
        nn.Linear(hidden_dim, out_dim)
    )


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy; its squashed mean is the deterministic action."""

    def __init__(self, feature_dim: int, hidden_dim: int, spread_limit: float = OLD_SPREAD_LIMIT):
        super().__init__()
        self.net = mlp(feature_dim, hidden_dim, 6)
        self.max_log_std = math.log(spread_limit)
        self.register_buffer("action_scale", (ACTION_HIGH - ACTION_LOW) / 2)
        self.register_buffer("action_bias", (ACTION_HIGH + ACTION_LOW) / 2)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(features).chunk(2, dim=-1)
        return mean, torch.clamp(log_std, LOG_STD_MIN, self.max_log_std)

    def squash(self, mean: torch.Tensor) -> torch.Tensor:
        """Pre-tanh mean -> action within the bounds (the deterministic action)."""
        return torch.tanh(mean) * self.action_scale + self.action_bias

    def sample_from(self, mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised sample and its log-probability (with the tanh and scale corrections)."""
        std = log_std.exp()
        pre_tanh = mean + std * torch.randn_like(mean)
        log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        # log|d tanh(u)/du| = 2 (log 2 - u - softplus(-2u)), numerically stable.
        log_prob -= (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1)
        log_prob -= torch.log(self.action_scale).sum()
        return torch.tanh(pre_tanh) * self.action_scale + self.action_bias, log_prob

    def deterministic(self, features: torch.Tensor) -> torch.Tensor:
        return self.squash(self(features)[0])

    def expected_from(self, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """The average of the policy's squashed samples, E[tanh(mean + std * eps)], per action dimension
        by Gauss-Hermite quadrature: deterministic, and differs from `squash(mean)` where std is wide."""
        nodes, weights = HERMITE_NODES.to(mean.device), HERMITE_WEIGHTS.to(mean.device)
        pre_tanh = mean[..., None] + log_std.exp()[..., None] * math.sqrt(2) * nodes
        unit = (torch.tanh(pre_tanh) * weights).sum(-1) / math.sqrt(math.pi)
        return unit * self.action_scale + self.action_bias

    def sample(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.sample_from(*self(features))


class EnsembleLinear(nn.Module):
    """`num` independent linear layers applied in one batched matmul: (num, B, in) -> (num, B, out)."""

    def __init__(self, num: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)  # nn.Linear's default initialisation, per member
        self.weight = nn.Parameter(torch.empty(num, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class Critic(nn.Module):
    """An ensemble of `num_qs` independent Q networks on shared features: (B, F), (B, 3) -> (num_qs, B).
    Combine members with `.min(0)` (clipped double-Q over all) or over a random subset (REDQ)."""

    def __init__(self, feature_dim: int, hidden_dim: int, num_qs: int = 2, layer_norm: bool = False):
        super().__init__()
        self.num_qs = num_qs

        def activation() -> nn.Module:  # parameter-free, so the layers' keys are the same either way
            return (nn.Sequential(nn.LayerNorm(hidden_dim, elementwise_affine=False), nn.ReLU()) if layer_norm
                    else nn.ReLU())

        self.net = nn.Sequential(EnsembleLinear(num_qs, feature_dim + 3, hidden_dim), activation(),
                                 EnsembleLinear(num_qs, hidden_dim, hidden_dim), activation(),
                                 EnsembleLinear(num_qs, hidden_dim, 1))

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([features, action], dim=-1)
        return self.net(x.expand(self.num_qs, *x.shape)).squeeze(-1)


def upgrade_state_dict(state: dict) -> dict:
    """Checkpoints from before the critic ensemble (heads `q1`, `q2` of nn.Linear) in today's layout."""
    if not any(".q1." in k for k in state):
        return state
    state = {k: v for k, v in state.items()}
    for prefix in ("critic", "target_critic"):
        for layer, index in ((0, 0), (2, 2), (4, 4)):
            heads = [state.pop(f"{prefix}.q{h}.{layer}.weight") for h in (1, 2)]
            biases = [state.pop(f"{prefix}.q{h}.{layer}.bias") for h in (1, 2)]
            state[f"{prefix}.net.{index}.weight"] = torch.stack([w.t() for w in heads])
            state[f"{prefix}.net.{index}.bias"] = torch.stack(biases)[:, None, :]
    return state


def check_spread_limit(spread_limit: float) -> None:
    if not math.exp(LOG_STD_MIN) < spread_limit < math.inf:
        raise ValueError(f"spread_limit must be a finite number above {math.exp(LOG_STD_MIN):.4f}, got {spread_limit}")


class ActorCritic(nn.Module):
    """Everything a run saves: encoder, actor, critic, the target encoder + critic for TD targets, and
    (fine-tuned runs) the frozen BC actor under its own key `bc_actor`."""

    def __init__(self, obs_shape: tuple[int, int, int], config: ModelConfig):
        super().__init__()
        self.reward_scale = config.reward_scale
        self.bc_selection = config.bc_selection
        if config.policy_action not in POLICY_ACTIONS:
            raise ValueError(f"unknown policy_action {config.policy_action!r}; choose from {POLICY_ACTIONS}")
        self.policy_action = config.policy_action
        if config.bc_selection and not config.bc_actor:
            raise ValueError("bc_selection needs bc_actor")
        self.encoder = Encoder(obs_shape, config)
        inputs = self.encoder.output_dim
        check_spread_limit(config.spread_limit)
        self.actor = Actor(inputs, config.hidden_dim, config.spread_limit)
        self.bc_actor = (Actor(inputs, config.hidden_dim, config.spread_limit).requires_grad_(False)
                         if config.bc_actor else None)
        self.critic = Critic(inputs, config.hidden_dim, config.num_qs, config.critic_layer_norm)
        self.target_encoder = Encoder(obs_shape, config)
        self.target_critic = Critic(inputs, config.hidden_dim, config.num_qs, config.critic_layer_norm)
        self.sync_targets()
        for p in [*self.target_encoder.parameters(), *self.target_critic.parameters()]:
            p.requires_grad_(False)

    @torch.no_grad()
    def sync_targets(self, tau: float = 1.0) -> None:
        """Polyak update: target <- tau * online + (1 - tau) * target (tau = 1 copies)."""
        for online, target in ((self.encoder, self.target_encoder), (self.critic, self.target_critic)):
            polyak_update(target, online, tau)

    def select(self, features: torch.Tensor, rl_action: torch.Tensor, critic: nn.Module | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """IBRL's selection: of the RL proposal and the frozen BC policy's, the one the critic values more
        (min over heads); returns the actions and a bool mask of rows where the RL proposal won. Without
        selection the RL action always wins. BC is a floor as far as the critic can tell."""
        rl_wins = torch.ones(len(rl_action), dtype=torch.bool, device=rl_action.device)
        if not self.bc_selection:
            return rl_action, rl_wins
        critic = critic or self.critic
        bc_action = self.bc_actor.deterministic(features)
        rl_wins = critic(features, rl_action).min(0).values >= critic(features, bc_action).min(0).values
        return torch.where(rl_wins[:, None], rl_action, bc_action), rl_wins

    def driven_action(self, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """The actor's deterministic action of this run (`policy_action`) from its Gaussian's parameters."""
        return self.actor.expected_from(mean, log_std) if self.policy_action == "expected" else self.actor.squash(mean)

    @torch.no_grad()
    def policy(self, features: torch.Tensor, explore: bool = False) -> torch.Tensor:
        """The actions the run drives with: a sample (`explore`) or the actor's deterministic `policy_action`,
        passed through the BC selection when the run has it. Collection and `Agent` both use it."""
        action = self.actor.sample(features)[0] if explore else self.driven_action(*self.actor(features))
        return self.select(features, action)[0]

    @torch.no_grad()
    def act(self, obs: torch.Tensor, explore: bool = False) -> torch.Tensor:
        """Actions for a batch of uint8 observations (deterministic unless `explore`)."""
        return self.policy(self.encoder(obs), explore)


@torch.no_grad()
def polyak_update(average: nn.Module, online: nn.Module, tau: float) -> None:
    """average <- tau * online + (1 - tau) * average, parameter by parameter (tau = 1 copies)."""
    torch._foreach_lerp_(list(average.parameters()), list(online.parameters()), tau)  # one call, not one per tensor


def random_shift(obs: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """DrQ augmentation: shift each frame stack by a random integer offset in [-pad, pad], repeating the
    edge pixels (replicate padding is the same as clamping the source indices, so no padded copy is made)."""
    if pad == 0:
        return obs
    b, c, h, w = obs.shape
    dy = torch.randint(-pad, pad + 1, (b, 1), device=obs.device)
    dx = torch.randint(-pad, pad + 1, (b, 1), device=obs.device)
    rows = (torch.arange(h, device=obs.device).view(1, h) + dy).clamp_(0, h - 1)
    cols = (torch.arange(w, device=obs.device).view(1, w) + dx).clamp_(0, w - 1)
    flat_index = (rows[:, :, None] * w + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return obs.reshape(b, c, h * w).gather(2, flat_index).view(b, c, h, w)
