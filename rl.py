"""`train_rl`: SAC fine-tuning of a BC run (BC-SAC), or SAC from scratch.

One algorithm, top to bottom: flags -> config, vector environments, replay (demonstrations + online
data sampled at `demo_ratio`), the learner (`update_critic`, `update_actor`, `update`), the loop
(collect / learn / log / evaluate / checkpoint).

Actor loss (Lu et al. 2022, "Imitation Is Not Enough", with a TD3+BC-style scale):
    E[alpha * log pi(a|s) - (min Q(s, a) + min Q(s, mu(s))) / 2] / |Q|  +  lambda * E[(tanh(m(s)) - a_ref)^2]
a ~ pi(.|s) is a sample, m(s) the Gaussian's mean, mu(s) = tanh(m(s)) its deterministic action (whichever
action `policy_action` drives: valuing the average of the samples there lost the ablation); with
`mean_action_q` off the value term is min Q(s, a) alone, as in SAC. |Q| is the batch's mean absolute Q
(detached, at least 1), so lambda does not depend on the reward scale.
a_ref is the expert's action on demo rows and, with `bc_anchor_all`, the frozen BC policy's on online rows.
Fine-tuning a BC run adds, each measured in bench/finetune.py (on by default: the first, the adaptive
lambda, the best checkpoint, LayerNorm critics, the deterministic action's value, the driven action's choice
and the dashboard inputs; the others are flags that lost or tied the ablation):
  - the BC encoder stays fixed and the replay holds its features (computed once), so an update is a few
    MLP steps; with `learn_std` off the policy's spread stays the one BC fitted;
  - BC selection (IBRL): the frozen BC actor proposes an action beside the RL actor, and the one with the
    higher min-Q is executed, evaluated and bootstrapped from;
  - an adaptive lambda (`AdaptiveBCWeight`): stiff at first, relaxed while the training episodes keep up
    with the BC start's;
  - the run's policy is its best periodic validation checkpoint, the BC start's own evaluation included; of
    checkpoints within `validation_tie` of the best, the most trained (`note_validation`);
  - critics with LayerNorm (RLPD), on by default since it won the ablation; set when BC pre-trains them
    (`train_bc --critic_layer_norm`), so a fine-tuning run has its BC run's critics;
  - the actor loss values the deterministic action tanh(mean) as much as its samples:
    -(Q(s, a~pi) + Q(s, tanh mean))/2 (`mean_action_q`), on by default since it won the ablation;
  - validation, test and Agent.load drive (`policy_action` auto) tanh(mean) with the KL cost, the action both
    actor terms shape and BC drives, and the policy's average action E[tanh(u)] with SAC's entropy bonus, whose
    learnt spread stays wide where the critic is unsure: there the two are different drivers;
  - the actor and critics also read the dashboard strip of the frames (`dashboard_inputs`: the speed bar
    above all, which the frozen BC features hardly encode), through zero weights at the start.
  - `bc_prior_kl` (auto: on unless the demonstrations show no recovery): the soft objective charges
    alpha * KL(pi || pi_BC) (closed form, to the frozen BC policy) in place of alpha * log pi, in the actor
    loss and the TD target, at a fixed temperature: SAC's bonus widened the BC steering many-fold and pulled
    the saturated brake into tanh's slope within 400 updates of the actor's start, and the car crashed.
    With `kl_limit` the temperature rises while the batch's mean KL exceeds the limit (`update_temperature`).
  - the stall limit (EnvConfig.stall_limit, on when fine-tuning): a training episode without a new tile for
    100 frames ends at the cost of leaving the road, so a car that brakes to a stop facing the grass no longer
    finds a harbour there.
  - lambda's floor follows the start (`bc_weight_floor` auto): half of bc_weight with the KL cost, where a strong
    start is to be held, 0.3 with SAC's bonus, where a weak start has far to go.
  - the actor's learning rate and the budget follow the start too (`actor_lr`, `actor_lr_decay`, `total_steps`
    auto): under SAC's bonus without recovery laps (clean laps, whose critic knew better than the actor) 3e-4
    falling linearly to 0 over 30,000 steps; otherwise 1e-4 over 15,000.
  - the skipped-tile penalty (`skipped_tile_penalty` auto, on fine-tuning clean laps): each time the car leaves
    road tiles behind unvisited, the training reward loses what the test's lost lap costs (EnvConfig).
  - attempts (`attempts` auto, 2 fine-tuning clean laps): the same start fine-tuned again with another seed in
    the run's attempt_2/, and the run ends on the better validated policy (`train_other_attempts`).
  - the brake trial (`brake_trial` auto, down to 0.9 under the KL cost): after training the run's policy is
    validated again with its brake lighter step by step, and drives at the last step that validated higher
    (`action_trials`; ModelConfig.brake_scale); then the gas trial (`gas_trial` auto, up to 1.1 where the brake
    trial's auto walks) the same way with its gas heavier (ModelConfig.gas_scale), then the steering trial
    (`steer_trial` auto, up to 1.1) with its steering sharper (ModelConfig.steer_scale). `deadzone_trial` D (off by
    default) walks first, releasing the policy's lightest brakes, up to those below D (ModelConfig.brake_deadzone).
  - wider validations (`eval_episodes` auto): where the trials walk, every periodic validation and trial step drives
    30 validation tracks instead of 10, so a checkpoint that loses a lap now and then rarely passes for a sound one.
  - given recovery laps (`critic_dataset`), the robust recipe: training shoves, 2 s off the road, the laps in
    the critic's batches and imitated by the BC term (the actions meant), after an actor warm-up on both lap
    sets that then is the frozen BC policy (`warm_up_actor`).
From scratch the critic loss trains the encoder on augmented frames (the actor reads detached features).

Resuming (`--resume_run_id` of an RL run) restores weights, optimisers, temperature, lambda, step counters
and random-number states from `latest_step`; the replay buffer is not saved (it would be GBs): it is rebuilt
from the run's demonstrations plus fresh collection; once it holds `learning_starts` steps the updates owed
meanwhile are made, so the update count matches an uninterrupted run's.
"""
from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

import demos
import distributed
from agent import MAX_GAS_SCALE, MAX_STEER_SCALE, Agent, driving_range_error
from bc import BCConfig, add_env_and_model_arguments, auto_bool, auto_or, env_and_model_configs, override_reward
from distributed import DistContext
from env import FINE_TUNING_STALL_LIMIT, MAX_NUM_ENVS, TRAIN_SEED_LIMIT, EnvConfig, make_vec_env
from errors import UserError
from evaluate import SHOVE_HOLD_FRAMES, validate, validate_on_tracks
from networks import ACTION_NAMES, OLD_SPREAD_LIMIT, POLICY_ACTIONS, ActorCritic, ModelConfig, check_spread_limit
from replay_buffer import MAX_BATCH_SIZE, FrameReplay, demo_replay, encode_replay, sample_mixed
from runs import (LOG_ROOT, checkpoint_path, claim_run, load_checkpoint, load_config, log_hparams, new_run_id,
                  rng_from_state, rng_state, run_dir, save_checkpoint, save_config, set_latest)


SCRATCH_TARGET_ENTROPY = -3.0  # -|A|, SAC's usual target
# train_rl's defaults of the model settings it chooses (the rest are the BC run's or train_bc's)
MODEL_FLAG_DEFAULTS = {"policy_action": None, "dashboard_inputs": 1, "spread_limit": None}
KL_SPREAD_LIMIT = 1.0  # --spread_limit auto with the KL cost (ModelConfig.spread_limit)
# --bc_weight_floor auto: with the KL cost (DART laps, a strong start) lambda held at 0.3 x bc_weight let one strong
# run's validation fall late, 0.5 held all; with SAC's bonus (clean laps, a weak start) 0.5 held a weak start back.
KL_BC_WEIGHT_FLOOR, BONUS_BC_WEIGHT_FLOOR = 0.5, 0.3
# The robust recipe's auto settings with --critic_dataset: the test's shoves during training, and 2 s off the road
# before a training episode ends, so the replay holds the policy's own tries at coming back.
RECOVERY_TRAIN_SHOVE, RECOVERY_OFFTRACK_LIMIT = 0.02, 100
RECOVERY_ACTOR_WARMUP_STEPS = 5_000  # --actor_warmup_steps auto when imitating the recovery laps (about 25 s)
# --actor_lr auto: fine-tuning from clean laps (SAC's bonus, no recovery laps) the policy stopped on the road and ran
# out of time on 2 of 6 demo sets, where its critic ranked more gas above the policy's own action (bench/standstill.py);
# an actor 3 times faster followed it. Under the KL cost (strong starts) it gained nothing; the robust recipe was
# measured at 1e-4 only.
SLOW_ACTOR_LR, BONUS_ACTOR_LR = 1e-4, 3e-4
# --total_steps auto: the weak start from clean laps still gained at 15,000 steps; over 30,000, its rate falling to 0
# (--actor_lr_decay auto), the mean and the worst demo set rose, though fewer laps finished (Design notes).
DEFAULT_TOTAL_STEPS, CLEAN_LAPS_TOTAL_STEPS = 15_000, 30_000
# --attempts auto from clean laps: two fine-tunings, the better validated kept (one seed's result swings by up to 100
# points there; Design notes). An attempt's seed is the run's plus ATTEMPT_SEED_STRIDE per attempt before it.
CLEAN_LAPS_ATTEMPTS, ATTEMPT_SEED_STRIDE = 2, 100
# --brake_trial auto under the KL cost: the strong policies tested braking 10 % less gained 0.6 to 5 points on the
# 50 test tracks without losing a lap; 20 % less lost laps on some (bench/brake_headroom.py). Walking on to 20 %
# while the validation rose lost a test lap on 2 of 4 runs whose 10 (and 30) validation tracks lost none (Design
# notes): the validation sees the gain of each step, not the cliff beyond it, so the walk stops at 10 %.
LIGHTEST_BRAKE, BRAKE_STEP = 0.9, 0.05
# --gas_trial auto where --brake_trial's auto walks: the same walk with the gas of every action heavier, after it.
HEAVIEST_GAS, GAS_STEP = 1.1, 0.05
# --steer_trial auto where --brake_trial's auto walks, after the gas trial: the steering of every action sharper. On 3
# strong runs, after their brake and gas walks, 30 validation tracks rose by about 0.15 for every 5 % up to 20 %, yet
# at 20 % one of 6 runs lost a test lap (at 10 %, none); as with the brake, the walk stops short of the cliff the
# validation does not see (2026-12-07, third session; Design notes).
SHARPEST_STEER, STEER_STEP = 1.1, 0.05
# --eval_episodes auto: 30 validation tracks where the trials walk (strong starts: a choice between policies that all
# finish most laps, where one lost lap in 50 decides), 10 elsewhere. On 10 tracks set 12's seed 112 validated 919.7 and
# lost 3 of 50 test laps; on 30 its last two checkpoints validated 904 and the choice fell on step 5,000 (Design notes).
# Clean laps keep 10: their runs already take about an hour, and 30 tracks changed 1 choice of 4 there, no lap gained.
WIDE_VALIDATION_EPISODES, NARROW_VALIDATION_EPISODES = 30, 10
# --deadzone_trial D, before the brake trial: brakes lighter than 0.05, 0.1, ... up to D released. The autopilot
# brakes 0.1 or more or not at all; its clones dab lighter brakes where it coasted. Off by default: on 4 strong runs it
# gained 0.1 to 0.4 on 3 and cost a test lap on the fourth (Design notes).
DEADZONE_STEP = 0.05
# --skipped_tile_penalty auto fine-tuning clean laps: a lap completes only once every tile is visited, and most laps
# the weak start's fine-tuning missed look like corner cuts (the two replayed had left 3 and 5 tiles behind), running
# out the 1000 frames on a second lap. The penalty is what that costs the test's return: the rest of the frames, at
# -0.1, after a lap of about 770 (raw reward units). Not on DART laps: there it lost (923.1 against 924.3 on set 16),
# the training episodes, held near the BC policy by the KL cost, skipping tiles too rarely to charge (Design notes).
SKIPPED_TILE_PENALTY = 25.0
BONUS_SHOVE_SHARE = 0.5  # --train_shove_share auto under SAC's bonus (RLConfig.train_shove_share)
DIAGNOSE_EVERY = 50  # updates between BC-relative diagnostics (they cost extra forward passes)


@dataclass
class RLConfig:
    # Agent steps summed over environments and ranks (each = action_repeat frames). None (auto):
    # CLEAN_LAPS_TOTAL_STEPS fine-tuning clean laps without recovery laps, else DEFAULT_TOTAL_STEPS.
    total_steps: int | None = None
    learning_starts: int = 1_000  # steps collected before the first update
    batch_size: int = 256
    num_envs: int = 2
    updates_per_step: float = 1.0  # gradient updates per collected step (per rank)
    eval_every: int = 5_000  # steps between held-out evaluations (0 = never)
    # Validation tracks per periodic evaluation and trial step. None (auto): WIDE_VALIDATION_EPISODES where the trials'
    # auto walks (the KL cost, validations choosing), else NARROW_VALIDATION_EPISODES.
    eval_episodes: int | None = None
    eval_video: bool = True  # each evaluation also puts a clip of one episode in TensorBoard
    checkpoint_every: int = 5_000
    bc_weight: float = 100.0  # lambda of the BC term on demo rows (0 = plain SAC); adaptive: its start and maximum
    bc_decay_steps: int = 0  # linearly decay lambda to 0 over this many steps (0 = constant)
    adaptive_bc_weight: bool = True  # lambda rises while training returns are below the BC start's, else falls
    # The adaptive lambda never falls below this share of bc_weight. None (auto): 0.5 with the KL cost (a strong
    # start to hold), 0.3 with SAC's bonus (clean laps: a weak start with far to go; README, Design notes).
    bc_weight_floor: float | None = None
    bc_selection: bool = False  # fine-tuning: act and bootstrap with the higher-Q of RL and frozen-BC proposals (IBRL)
    bc_anchor_all: bool = False  # the BC term also pulls toward the frozen BC policy on online states (else it drifts)
    learn_std: bool = True  # False keeps the BC spread (held strong starts back: README)
    mean_action_q: bool = True  # the actor also maximises Q of its deterministic action, the one test drives
    # Fine-tuning: the temperature charges KL(pi || frozen BC policy) instead of rewarding entropy. None (auto):
    # on unless the demonstrations show no recovery (clean laps: a policy that must leave its BC start far behind).
    bc_prior_kl: bool | None = None
    # With the KL cost: while the batch's mean KL to the BC policy exceeds this many nats the temperature rises (dual
    # ascent, as SAC's tracks its entropy target), and falls back to init_temperature, never below, while it is
    # under; 0 keeps the temperature fixed at init_temperature.
    kl_limit: float = 0.0
    # The actor pays the KL cost on states on the road only (free to follow its critic off it). None (auto): on with a
    # critic_dataset the actor does not imitate (with imitate_critic_dataset the reference knows the ways back).
    kl_on_road_only: bool | None = None
    demo_ratio: float = 0.25  # share of each batch drawn from demonstrations
    final_policy: str = "best"  # the run's policy: 'best' periodic validation (BC start included) or 'last'
    # Validations within this share of the best one count as tied, and of tied checkpoints the most trained is the
    # run's policy: 10 tracks tell a BC start and its fine-tuning apart by hundredths of a point, while the test's
    # 50 tracks find the tail the fine-tuning removed (README, Results). 0 = strictly the best.
    validation_tie: float = 0.005
    # Fine-tunings of the same start with seeds seed, seed + ATTEMPT_SEED_STRIDE, ...; the run ends on the best
    # validated policy of them all (`choose_attempt`). The first is the run itself, the others run in its
    # attempt_K/ folders. None (auto): CLEAN_LAPS_ATTEMPTS from clean laps, else 1.
    attempts: int | None = None
    # After training, the run's policy validated again with the brake of every action lighter, in BRAKE_STEPs down
    # to this (< 1), and driven (test, Agent.load: ModelConfig.brake_scale) at the last step that validated higher
    # than the one before: the critic cannot see a few frames a lap, 10 validation tracks can. 1 = no trial. None
    # (auto): LIGHTEST_BRAKE under the KL cost where periodic validations choose the policy, else 1.
    brake_trial: float | None = None
    # After the brake trial, the same walk with the gas of every action heavier, in GAS_STEPs up to this (> 1; capped
    # at full gas; ModelConfig.gas_scale). 1 = no trial. None (auto): HEAVIEST_GAS where brake_trial's auto walks.
    gas_trial: float | None = None
    # After the gas trial, the same walk with the steering of every action sharper, in STEER_STEPs up to this (> 1;
    # clipped to full lock; ModelConfig.steer_scale). 1 = no trial. None (auto): SHARPEST_STEER where brake_trial's
    # auto walks.
    steer_trial: float | None = None
    # Before the brake trial, the same walk releasing the policy's lightest brakes, those below DEADZONE_STEP, 2
    # DEADZONE_STEP, ... up to this (< 1; ModelConfig.brake_deadzone). 0 = no trial.
    deadzone_trial: float = 0.0
    # Probability per agent step that collection pushes the car as `test --shove` does. None (auto): 0.02 with a
    # critic_dataset (the robust recipe, below), else 0.
    train_shove: float | None = None
    # Share of training episodes that meet the shoves: the others drive whole laps, where speed is learnt. None (auto):
    # 0.5 under SAC's bonus (clean laps: with every episode shoved a weak start's all stalled early and it learnt to
    # drive too slowly), 1 under the KL cost (a strong start: at 0.5 it recovered less; README, Results).
    train_shove_share: float | None = None
    # n-step targets stop before a training shove (bootstrapping from the state it interrupted): the critic then
    # values the policy's own driving, and shoves teach what coming back is worth without making caution pay.
    # None (auto): on under SAC's bonus, with train_shove_share (measured together).
    cut_returns_at_shoves: bool | None = None
    critic_warmup_steps: int = 2_000  # steps (after learning_starts) training critics only, actor frozen
    num_min_qs: int = 2  # ensemble members the TD target takes the min over (REDQ)
    gamma: float = 0.99
    n_step: int = 3
    tau: float = 0.01  # Polyak rate of the target encoder and critics
    # None (auto): BONUS_ACTOR_LR from clean laps without recovery laps, else SLOW_ACTOR_LR.
    actor_lr: float | None = None
    # The actor's rate falls linearly from actor_lr at its first step to 0 at total_steps. None (auto): on where
    # actor_lr auto is BONUS_ACTOR_LR (clean laps without recovery laps).
    actor_lr_decay: bool | None = None
    # The raw reward the training env charges each time the car leaves road tiles behind unvisited (the env applies
    # it: EnvConfig.skipped_tile_penalty). None (auto): SKIPPED_TILE_PENALTY fine-tuning clean laps, else 0.
    skipped_tile_penalty: float | None = None
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_temperature: float = 0.05
    # None: -|A| from scratch, the BC policy's entropy when fine-tuning (SAC's bonus)
    target_entropy: float | None = None
    train_encoder: bool | None = None  # None: trained from scratch, frozen when fine-tuning a BC run
    augment_pad: int = 4
    # bfloat16 autocast of the update's forward passes: for CUDA GPUs and CPUs with AMX (Intel Sapphire Rapids and
    # later; bench/learner_speed.py measures it); slower on CPUs whose oneDNN lacks fast bfloat16 kernels
    bf16: bool = False
    buffer_size: int = 100_000  # online transitions kept (frames stored once, uint8)
    seed: int = 0
    device: str = "cpu"
    bc_run: str = ""  # the BC run this fine-tunes ('' = SAC from scratch)
    dataset: str = ""  # demonstrations kept in the replay buffer ('' = none)
    # Laps apart from the demos (recovery laps: expert --shove): their transitions, with the actions the car executed,
    # join the TD step (target at least their own return) and the actor's Q term; the BC term only with
    # imitate_critic_dataset (the auto when fine-tuning).
    # Given one, the auto settings are the robust recipe (README, Results: RL fine-tuning): training shoves, 2 s off
    # the road before a training episode ends, the laps imitated after an actor warm-up on them.
    critic_dataset: str = ""
    critic_demo_ratio: float = 0.25  # share of each batch from critic_dataset
    # The BC term also on critic_dataset rows, toward the actions the driver meant there (not the executed ones the
    # critic learns from): the actor is shown the ways back, not only the critic (README, Results; with the actor
    # warm-up below, the robust recipe). None (auto): on when fine-tuning a BC run with a critic_dataset.
    imitate_critic_dataset: bool | None = None
    # Fine-tuning with imitate_critic_dataset: BC-only actor updates before collection, on the demos and the critic's
    # laps (half each, the actions meant); the frozen BC policy (the KL cost's reference, BC selection's proposer) is
    # then the warmed actor. Without it the KL cost charges every step toward a way back the frozen policy never
    # learnt, and the critic, whose soft target pays that charge, ranks the imitated ways back below it.
    # None (auto): RECOVERY_ACTOR_WARMUP_STEPS when imitating the critic's laps, else 0.
    actor_warmup_steps: int | None = None
    # Runs saved before a setting existed trained so (runs.load_config): with SAC's entropy bonus, lambda's floor at
    # a tenth.
    SAVED_BEFORE: ClassVar[dict] = {"bc_prior_kl": False, "bc_weight_floor": 0.1, "train_shove_share": 1.0,
                                    "cut_returns_at_shoves": False, "imitate_critic_dataset": False,
                                    "actor_warmup_steps": 0, "actor_lr_decay": False,
                                    "skipped_tile_penalty": 0.0, "attempts": 1, "brake_trial": 1.0,
                                    "gas_trial": 1.0, "steer_trial": 1.0}

    @property
    def actor_start(self) -> int:
        """The step of the actor's first update: after learning_starts and the critic-only warm-up."""
        return self.learning_starts + self.critic_warmup_steps


def policy_action_choice(text: str) -> str:
    if text not in POLICY_ACTIONS:
        raise ValueError(text)
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c = RLConfig()
    parser.add_argument("--resume_run_id", default=None,
                        help="a BC run to fine-tune, or an RL run to continue exactly; omit for SAC from scratch")
    parser.add_argument("--run_id", default=None, help="name of the new run (default: rl_<timestamp>)")
    parser.add_argument("--total_steps", type=auto_or(int, "a step count"), default=c.total_steps, metavar="{auto,N}",
                        help=f"environment steps (agent decisions, all envs); auto (default) = "
                             f"{CLEAN_LAPS_TOTAL_STEPS:,} fine-tuning clean laps (SAC's bonus, no --critic_dataset), "
                             f"else {DEFAULT_TOTAL_STEPS:,}")
    parser.add_argument("--learning_starts", type=int, default=c.learning_starts,
                        help="steps collected before updates begin")
    parser.add_argument("--batch_size", type=int, default=c.batch_size, help="transitions per update")
    parser.add_argument("--num_envs", type=int, default=c.num_envs, help="parallel environment processes")
    parser.add_argument("--updates_per_step", type=float, default=c.updates_per_step,
                        help="gradient updates per environment step")
    parser.add_argument("--eval_every", type=int, default=c.eval_every,
                        help="steps between held-out evaluations (0 = none)")
    parser.add_argument("--eval_episodes", type=auto_or(int, "a track count"), default=c.eval_episodes,
                        metavar="{auto,N}",
                        help=f"validation tracks per periodic evaluation and trial step; auto (default) = "
                             f"{WIDE_VALIDATION_EPISODES} where --brake_trial's auto walks (the KL cost), else "
                             f"{NARROW_VALIDATION_EPISODES}")
    parser.add_argument("--eval_video", type=int, choices=(0, 1), default=int(c.eval_video),
                        help="1: each evaluation also shows the first 8 s of one validation episode as a clip in "
                             "TensorBoard's Images tab (about 1 MB each)")
    parser.add_argument("--checkpoint_every", type=int, default=c.checkpoint_every, help="steps between checkpoints")
    parser.add_argument("--bc_weight", type=float, default=c.bc_weight,
                        help="lambda of the BC loss in the actor objective (0 = plain SAC)")
    parser.add_argument("--bc_decay_steps", type=int, default=c.bc_decay_steps,
                        help="linearly decay lambda to 0 over this many steps (0 = constant)")
    parser.add_argument("--adaptive_bc_weight", type=int, choices=(0, 1), default=int(c.adaptive_bc_weight),
                        help="1: lambda starts at --bc_weight, grows while the training episodes return less than the "
                             "BC policy did before the actor trained and shrinks otherwise (down to --bc_weight_floor "
                             "x --bc_weight); 0: constant")
    parser.add_argument("--bc_weight_floor", type=auto_or(float, "a share in [0, 1]"), default=c.bc_weight_floor,
                        metavar="{auto,X}",
                        help="the share of --bc_weight the adaptive lambda never falls below; auto (default) = "
                             f"{KL_BC_WEIGHT_FLOOR} with the KL cost (--bc_prior_kl), {BONUS_BC_WEIGHT_FLOOR} with "
                             "SAC's entropy bonus")
    parser.add_argument("--bc_selection", type=int, choices=(0, 1), default=int(c.bc_selection),
                        help="fine-tuning: 1 = the frozen BC policy proposes an action too, and the one the critic "
                             "values more is executed and bootstrapped from (IBRL); 0 = the RL actor alone")
    parser.add_argument("--bc_anchor_all", type=int, choices=(0, 1), default=int(c.bc_anchor_all),
                        help="1: the BC term also pulls the actor toward the frozen BC policy on the online states")
    parser.add_argument("--learn_std", type=int, choices=(0, 1), default=int(c.learn_std),
                        help="1: the actor loss also trains the policy's spread; 0: keep the BC spread")
    parser.add_argument("--mean_action_q", type=int, choices=(0, 1), default=int(c.mean_action_q),
                        help="1: the actor loss values the deterministic action tanh(mean) as "
                             "much as its samples: -(Q(s, a~pi) + Q(s, mean))/2; 0: -Q(s, a~pi) alone (SAC's, the "
                             "default before 2026-12-01: its mean action ran off the road and slow far more often)")
    parser.add_argument("--bc_prior_kl", type=auto_bool, default=c.bc_prior_kl, metavar="{auto,0,1}",
                        help="fine-tuning: 1 = the soft objective (actor loss and TD target) charges the temperature "
                             "times KL(policy || frozen BC policy) instead of rewarding entropy, and the temperature "
                             "stays at --init_temperature: the policy widens only where the critic pays for it; "
                             "0 = SAC's entropy bonus (its spread grows right after the actor starts); "
                             "auto (default) = 1 unless the demonstrations show no recovery (clean laps)")
    parser.add_argument("--kl_limit", type=float, default=c.kl_limit,
                        help="with the KL cost: while KL(policy || BC policy), averaged over each batch, exceeds this "
                             "many nats the temperature rises (at --alpha_lr), and it falls back to "
                             "--init_temperature, never below, while it is under; 0 (default) = the temperature stays "
                             "at --init_temperature")
    parser.add_argument("--kl_on_road_only", type=auto_bool, default=c.kl_on_road_only, metavar="{auto,0,1}",
                        help="with the KL cost: 1 = the actor loss charges it on states on the road only, so off the "
                             "road (where the BC policy only extrapolates) the policy follows its critic alone; auto "
                             "(default) = 1 with --critic_dataset when its laps are not imitated "
                             "(--imitate_critic_dataset 0)")
    parser.add_argument("--policy_action", type=auto_or(policy_action_choice, "one of mean, expected"),
                        default=MODEL_FLAG_DEFAULTS["policy_action"], metavar="{auto,mean,expected}",
                        help="the deterministic action validation, test and Agent.load drive: expected = the average "
                             "of the policy's squashed samples (what SAC trains); mean = tanh of its mean (what BC "
                             "fits and BC runs drive); auto (default) = mean with the KL cost, expected with SAC's "
                             "entropy bonus")
    parser.add_argument("--dashboard_inputs", type=int, choices=(0, 1), default=MODEL_FLAG_DEFAULTS["dashboard_inputs"],
                        help="1: the actor and critics also see the dashboard strip of each frame (speed, ABS, "
                             "steering, gyroscope bars) as pixels beside the encoder features, with zero weights at "
                             "the start of fine-tuning: the BC features alone hardly tell a stopped car from a moving "
                             "one; 0: the features alone (the default before 2026-12-01's sixth session)")
    parser.add_argument("--spread_limit", type=auto_or(float, "a number"), default=MODEL_FLAG_DEFAULTS["spread_limit"],
                        metavar="{auto,X}",
                        help="largest standard deviation of the policy and of the frozen BC policy it is charged "
                             "against, in pre-tanh units: wider, the samples pile up at the action bounds and the "
                             "average action (--policy_action expected) leaves tanh(mean) (BC's saturated brake then "
                             f"brakes); auto: {KL_SPREAD_LIMIT:g} with the KL cost, {OLD_SPREAD_LIMIT:.2f} (the limit "
                             "before 2026-12-02's sixth session) with SAC's entropy bonus")
    parser.add_argument("--final_policy", choices=("best", "last"), default=c.final_policy,
                        help="the policy the run ends with (what test and Agent.load use): the checkpoint with the "
                             "best periodic validation return, the BC start's own evaluation included, or the last one")
    parser.add_argument("--validation_tie", type=float, default=c.validation_tie,
                        help="with --final_policy best: validations within this share of the best one count as tied, "
                             "and the most trained of the tied checkpoints is the policy (0 = strictly the best)")
    parser.add_argument("--attempts", type=auto_or(int, "a count"), default=c.attempts, metavar="{auto,N}",
                        help="fine-tune N times from the same start, with seeds --seed, --seed + "
                             f"{ATTEMPT_SEED_STRIDE}, ... (the second and later in the run's attempt_K/ folders, each "
                             "a run test can drive), and end on the best validated policy of all; auto (default) = "
                             f"{CLEAN_LAPS_ATTEMPTS} fine-tuning clean laps (SAC's bonus, no --critic_dataset), whose "
                             "result swings widely between seeds, else 1")
    parser.add_argument("--brake_trial", type=auto_or(float, "a scale in (0, 1]"), default=c.brake_trial,
                        metavar="{auto,S}",
                        help="after training, validate the run's policy also with the brake of every action "
                             f"lighter by {BRAKE_STEP:g} a step, down to times S, while each step validates higher, "
                             "and drive it (test, Agent.load) at the last step that did; 1 = no trial; auto "
                             f"(default) = {LIGHTEST_BRAKE:g} with the KL cost (DART laps, whose policies brake more "
                             "than they need) and validations choosing the policy, else 1")
    parser.add_argument("--gas_trial", type=auto_or(float, f"a scale in [1, {MAX_GAS_SCALE:g}]"), default=c.gas_trial,
                        metavar="{auto,G}",
                        help="after the brake trial, the same walk with the gas of every action heavier by "
                             f"{GAS_STEP:g} a step (capped at full gas), up to times G; 1 = no trial; auto (default) = "
                             f"{HEAVIEST_GAS:g} with the KL cost and validations choosing the policy, else 1")
    parser.add_argument("--steer_trial", type=auto_or(float, f"a scale in [1, {MAX_STEER_SCALE:g}]"),
                        default=c.steer_trial, metavar="{auto,W}",
                        help="after the gas trial, the same walk with the steering of every action sharper by "
                             f"{STEER_STEP:g} a step (clipped to full lock), up to times W; 1 = no trial; auto "
                             f"(default) = {SHARPEST_STEER:g} with the KL cost and validations choosing the policy, "
                             "else 1")
    parser.add_argument("--deadzone_trial", type=float, default=c.deadzone_trial, metavar="D",
                        help="before the brake trial, the same walk releasing every brake lighter than "
                             f"{DEADZONE_STEP:g}, {2 * DEADZONE_STEP:g}, ... up to D (0.1: the autopilot's lightest "
                             "brake); 0 = no trial, the default (on 4 strong runs it gained a few tenths on 3 and cost "
                             "a test lap on the fourth)")
    parser.add_argument("--train_shove", type=auto_or(float, "a probability"), default=c.train_shove,
                        metavar="{auto,P}",
                        help="probability per training step of a shove like test --shove's (a full random steer, no "
                             "gas, for 16 frames; the replay keeps the executed action), so the replay holds states "
                             "off the racing line and what coming back from them earns (0 = none); auto (default) = "
                             f"{RECOVERY_TRAIN_SHOVE:g} with --critic_dataset, else 0")
    parser.add_argument("--train_shove_share", type=auto_or(float, "a share"), default=c.train_shove_share,
                        metavar="{auto,S}",
                        help="share of training episodes (drawn per episode; the first ones all) that meet "
                             "--train_shove's shoves: the others drive whole laps undisturbed; auto (default) = "
                             f"{BONUS_SHOVE_SHARE:g} under SAC's entropy bonus (clean laps), 1 under the KL cost")
    parser.add_argument("--cut_returns_at_shoves", type=auto_bool, default=c.cut_returns_at_shoves,
                        metavar="{auto,0,1}",
                        help="1: n-step targets stop before a training shove, so the critic never counts the chance of "
                             "being pushed against driving fast, only what coming back from a push is worth; auto "
                             "(default) = 1 under SAC's entropy bonus, 0 under the KL cost")
    parser.add_argument("--demo_ratio", type=float, default=c.demo_ratio,
                        help="share of each batch from demonstrations")
    parser.add_argument("--critic_dataset", default=c.critic_dataset,
                        help="laps apart from the demos, e.g. recovery laps (expert --shove): their transitions "
                             "(the executed actions) join every batch's TD step, with their own discounted return as "
                             "the least target, and the actor's Q term; the BC term only with --imitate_critic_dataset "
                             "1 (default: none). With them the auto settings are the robust recipe: --train_shove "
                             f"{RECOVERY_TRAIN_SHOVE:g}, --offtrack_limit {RECOVERY_OFFTRACK_LIMIT} (unless given), "
                             f"--imitate_critic_dataset 1 and --actor_warmup_steps {RECOVERY_ACTOR_WARMUP_STEPS} when "
                             "fine-tuning a BC run")
    parser.add_argument("--critic_demo_ratio", type=float, default=c.critic_demo_ratio,
                        help="share of each batch from --critic_dataset")
    parser.add_argument("--imitate_critic_dataset", type=auto_bool, default=c.imitate_critic_dataset,
                        metavar="{auto,0,1}",
                        help="1: the BC term also imitates --critic_dataset's rows, with the actions the driver meant "
                             "(a shove's override is what the critic learns from); auto (default) = 1 when fine-tuning "
                             "a BC run with --critic_dataset")
    parser.add_argument("--actor_warmup_steps", type=auto_or(int, "a step count"), default=c.actor_warmup_steps,
                        metavar="{auto,N}",
                        help="with --imitate_critic_dataset 1: BC-only actor updates before collection, on the demos "
                             "and the critic's laps, half each; the frozen BC policy the KL cost charges against (and "
                             "BC selection's proposer) then is the warmed actor; auto (default) = "
                             f"{RECOVERY_ACTOR_WARMUP_STEPS} when imitating --critic_dataset, else 0")
    parser.add_argument("--critic_warmup_steps", type=int, default=c.critic_warmup_steps,
                        help="steps training the critics only, actor frozen")
    parser.add_argument("--num_min_qs", type=int, default=c.num_min_qs,
                        help="critic ensemble members the TD target takes the min over")
    parser.add_argument("--gamma", type=float, default=c.gamma, help="discount")
    parser.add_argument("--n_step", type=int, default=c.n_step, help="n-step TD targets")
    parser.add_argument("--tau", type=float, default=c.tau, help="Polyak rate of the targets")
    parser.add_argument("--actor_lr", type=auto_or(float, "a learning rate"), default=c.actor_lr, metavar="{auto,LR}",
                        help=f"actor learning rate; auto (default) = {BONUS_ACTOR_LR:g} fine-tuning under SAC's bonus "
                             f"without --critic_dataset (clean laps), else {SLOW_ACTOR_LR:g} (slower than the critic: "
                             "the BC actor should move only where the critic is sure)")
    parser.add_argument("--actor_lr_decay", type=auto_bool, default=c.actor_lr_decay, metavar="{auto,0,1}",
                        help="1: the actor's learning rate falls linearly from --actor_lr at the actor's first step "
                             "to 0 at --total_steps; auto (default) = 1 fine-tuning clean laps (as --actor_lr auto)")
    parser.add_argument("--skipped_tile_penalty", type=auto_or(float, "a number"), default=c.skipped_tile_penalty,
                        metavar="{auto,X}",
                        help="raw reward the training episodes lose each time the car leaves road tiles behind "
                             "unvisited (the lap then cannot complete); auto (default) = "
                             f"{SKIPPED_TILE_PENALTY:g} fine-tuning clean laps (as --actor_lr auto), else 0")
    parser.add_argument("--critic_lr", type=float, default=c.critic_lr, help="critic (and encoder) learning rate")
    parser.add_argument("--alpha_lr", type=float, default=c.alpha_lr,
                        help="learning rate of the entropy temperature (how fast it corrects the policy's spread)")
    parser.add_argument("--init_temperature", type=float, default=c.init_temperature,
                        help="initial entropy temperature alpha")
    parser.add_argument("--target_entropy", type=float, default=c.target_entropy,
                        help="entropy target of the temperature (default: -3 from scratch; the BC policy's entropy on "
                             "its demos when fine-tuning with SAC's entropy bonus; the KL cost has none)")
    parser.add_argument("--augment_pad", type=int, default=c.augment_pad,
                        help="random-shift augmentation in pixels (0 = off)")
    parser.add_argument("--train_encoder", type=int, choices=(0, 1), default=None,
                        help="1: the critic loss trains the encoder; 0: keep it fixed (default: 1 from scratch, 0 when "
                             "fine-tuning, since critic updates drift the BC features away from the actor)")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast of the update's forward passes (CUDA GPUs, CPUs with AMX)")
    parser.add_argument("--buffer_size", type=int, default=c.buffer_size, help="online transitions kept")
    parser.add_argument("--dataset", default=None,
                        help="demonstrations to keep in the buffer: data/<dataset>/, a directory path or minari:<id> "
                             "(default: the BC run's; none from scratch)")
    parser.add_argument("--seed", type=int, default=c.seed, help="random seed")
    parser.add_argument("--device", default=c.device, help="torch device: cpu, cuda, auto")
    add_env_and_model_arguments(parser)


class SACLearner:
    """The networks, their optimisers and the temperature; `update` does one gradient step of each.

    `nets` are the trained parts as called during updates: DDP wrappers under torchrun (gradients are
    averaged over ranks), the plain modules otherwise. With the encoder fixed (`train_encoder` False) the
    replay holds encoder features instead of frames, and `encode` passes them through.
    """

    def __init__(self, model: ActorCritic, config: RLConfig, device: torch.device, ctx: DistContext | None = None):
        self.model, self.config, self.device = model, config, device
        self.ctx = ctx or DistContext(device=device)
        self.cached_features = config.train_encoder is False
        if self.cached_features:  # keep the BC features the actor was trained on (see RLConfig.train_encoder)
            model.encoder.requires_grad_(False)
        trained = [p for p in [*model.encoder.parameters(), *model.critic.parameters()] if p.requires_grad]
        self.critic_optimizer = torch.optim.Adam(trained, lr=config.critic_lr, fused=True)
        self.nets = distributed.wrap(model, self.ctx)
        actor_lr = config.actor_lr or SLOW_ACTOR_LR  # auto is train_rl's to resolve; a bare learner gets the slow rate
        self.actor_optimizer = torch.optim.Adam(model.actor.parameters(), lr=actor_lr, fused=True)
        self.target_entropy = SCRATCH_TARGET_ENTROPY if config.target_entropy is None else config.target_entropy
        self.log_alpha = torch.tensor(np.log(config.init_temperature), device=device, requires_grad=True)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)
        self.updates = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    def encode(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        """Features of a replay batch: stored features as they are, or augmented frames through the
        (target) encoder. The one place that turns replay observations into features."""
        if self.cached_features:
            return obs
        if target:
            with torch.no_grad():
                return self.model.target_encoder(obs, self.config.augment_pad)
        return self.nets.encoder(obs, self.config.augment_pad)

    def combine(self, q: torch.Tensor) -> torch.Tensor:
        """Target value from the ensemble: min over a random subset of `num_min_qs` members (REDQ; with
        two members and num_min_qs = 2 this is clipped double-Q)."""
        subset = torch.randperm(q.shape[0], device=q.device)[: self.config.num_min_qs]
        return q[subset].min(0).values

    def update_critic(self, batch: Batch) -> tuple[dict, torch.Tensor]:
        """Clipped double-Q soft TD step; returns metrics and the (detached) features of batch.obs.
        With BC selection the next action is the higher-Q of the RL and BC proposals, as in acting."""
        model = self.model
        with torch.no_grad():
            next_features = self.encode(batch.next_obs, target=True)
            next_mean, next_log_std = model.actor(next_features)
            next_action, next_log_prob = model.actor.sample_from(next_mean, next_log_std)
            next_cost = self.policy_cost(next_features, next_mean, next_log_std, next_log_prob)
            next_action, rl_wins = model.select(next_features, next_action, model.target_critic)
            next_q = self.combine(model.target_critic(next_features, next_action))
            # The entropy bonus (or KL cost) belongs to the RL policy's own samples only.
            target = batch.reward + batch.discount * (next_q - self.alpha * next_cost * rl_wins)
            # A critic-only demonstration's own return is one way its action earns, whatever the policy would do
            # next: a floor under the target. Else a way back is valued by the policy's next action, which lost it.
            target = torch.where(batch.critic_only, torch.maximum(target, batch.mc_return), target)
        features = self.encode(batch.obs)
        q = self.nets.critic(features, batch.action)
        loss = ((q - target) ** 2).mean(1).sum()  # every member regresses the same target
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        td_error = (q.detach() - target).abs().mean(0)
        metrics = {"critic_loss": loss.item(), "q": q.mean().item(), "target_q": target.mean().item(),
                   "diag/rl_action_wins_td_target": rl_wins.float().mean().item()}
        for name, rows in (("demo", batch.is_demo), ("critic_demo", batch.critic_only),
                           ("online", ~batch.is_demo & ~batch.critic_only)):
            if rows.any():
                metrics[f"diag/td_error_{name}"] = td_error[rows].mean().item()
        return metrics, features.detach()

    def set_actor_lr(self, lr: float) -> None:
        for group in self.actor_optimizer.param_groups:
            group["lr"] = lr

    def update_actor(self, features: torch.Tensor, batch: Batch, bc_weight: float) -> dict:
        """SAC actor loss / |Q| + bc_weight * BC loss; then the temperature step."""
        model, nets = self.model, self.nets
        mean, log_std = nets.actor(features)  # one forward serves both terms (DDP wants one per backward)
        if not self.config.learn_std:  # keep the BC policy's spread: the critic cannot judge wider actions
            log_std = log_std.detach()
        action, log_prob = model.actor.sample_from(mean, log_std)
        if self.config.mean_action_q:  # one critic pass for both actions (DDP wants one forward per backward)
            both = nets.critic(features.repeat(2, 1), torch.cat([action, model.actor.squash(mean)])).min(0).values
            q, value = both[:len(action)], both.view(2, -1).mean(0)
        else:
            q = value = nets.critic(features, action).min(0).values  # pessimistic over the whole ensemble
        cost = self.policy_cost(features, mean, log_std, log_prob)
        if self.config.kl_on_road_only and self.config.bc_prior_kl:  # off the road the BC policy only extrapolates
            cost = cost * ~batch.off_track
        sac_loss = (self.alpha * cost - value).mean()
        bc_loss = self.bc_loss(features, mean, batch) if bc_weight > 0 else torch.zeros((), device=self.device)
        # Dividing the SAC term by |Q| (at least 1) makes bc_weight independent of the reward scale.
        loss = sac_loss / q.abs().mean().detach().clamp(min=1.0) + bc_weight * bc_loss
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()
        # Critic parameters got gradients from this loss too; the critic step clears them before use.
        metrics = {"actor_loss": sac_loss.item(), "bc_loss": bc_loss.item(), "entropy": -log_prob.mean().item(),
                   "alpha": self.alpha.item()}
        if not self.config.bc_prior_kl:
            return {**metrics, **self.update_temperature(log_prob.detach() + self.target_entropy)}
        metrics["kl_to_bc"] = cost.mean().item()
        if self.config.kl_limit > 0:
            metrics.update(self.update_temperature(cost.detach() - self.config.kl_limit))
            with torch.no_grad():  # a limit, not a target: under it the fixed temperature's price stands
                self.log_alpha.clamp_(min=float(np.log(self.config.init_temperature)))
        return metrics

    def imitate(self, batch: dict, optimizer: torch.optim.Optimizer) -> float:
        """One BC-only actor step on a numpy batch of demonstrations (the actor warm-up); returns the BC loss."""
        batch = to_batch(batch, self.device, self.model.reward_scale)
        features = self.encode(batch.obs)
        loss = self.bc_loss(features, self.nets.actor(features)[0], batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    def update_temperature(self, excess: torch.Tensor) -> dict:
        """One dual step on log alpha: it rises while `excess` (what the temperature charges, minus its target:
        -(entropy - target entropy), or KL - kl_limit) is positive on average, and falls otherwise."""
        alpha_loss = -(self.log_alpha * excess).mean()
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        distributed.average(self.log_alpha.grad, self.ctx)  # the temperature is not a DDP module
        self.alpha_optimizer.step()
        return {"alpha_loss": alpha_loss.item()}

    def policy_cost(self, features: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor,
                    log_prob: torch.Tensor) -> torch.Tensor:
        """What the temperature charges per state: log pi(a|s) of the sample (SAC: minus the entropy) or,
        with `bc_prior_kl`, KL(pi || pi_BC) in closed form. tanh is one-to-one, so the KL of the squashed
        policies is that of their Gaussians: the tanh correction, which rewards moving a saturated mean
        (the BC brake at -4.8) back into tanh's slope, cancels."""
        if not self.config.bc_prior_kl:
            return log_prob
        with torch.no_grad():
            bc_mean, bc_log_std = self.model.bc_actor(features)
        return gaussian_kl(mean, log_std, bc_mean, bc_log_std)

    def bc_loss(self, features: torch.Tensor, mean: torch.Tensor, batch: Batch) -> torch.Tensor:
        """MSE of the deterministic action to the expert's on demo rows and, with `bc_anchor_all`, to the
        frozen BC policy's on the online rows (the policy's own states, where the demos say nothing)."""
        target, rows = batch.bc_action, batch.is_demo
        if self.config.imitate_critic_dataset:
            rows = rows | batch.critic_only
        if self.config.bc_anchor_all and self.model.bc_actor is not None:
            with torch.no_grad():
                target = torch.where(rows[:, None], target, self.model.bc_actor.deterministic(features))
            rows = torch.ones_like(rows)
        if not rows.any():
            return torch.zeros((), device=self.device)
        return F.mse_loss(self.model.actor.squash(mean[rows]), target[rows])

    @torch.no_grad()
    def bc_diagnostics(self, features: torch.Tensor, batch: Batch) -> dict:
        """Where the policy stands relative to the frozen BC policy on the online (policy's own) states:
        how much more the critic values it, and how far its action is; and how often the critic prefers the
        recorded action of a critic-only row off the road (a way back, on recovery laps) to the policy's own."""
        preferred = {}
        ways_back = batch.critic_only & batch.off_track
        if ways_back.any():  # bench/critic_recoveries.py's question, asked during training
            demo_features, recorded = features[ways_back], batch.action[ways_back]
            own = self.model.actor.squash(self.model.actor(demo_features)[0])
            q = lambda action: self.model.critic(demo_features, action).min(0).values
            preferred["diag/critic_demo_action_preferred"] = (q(recorded) > q(own)).float().mean().item()
        rows = ~batch.is_demo & ~batch.critic_only
        if self.model.bc_actor is None or not rows.any():
            return preferred
        features, off_track = features[rows], batch.off_track[rows]
        (mean, log_std), (bc_mean, bc_log_std) = self.model.actor(features), self.model.bc_actor(features)
        action, bc_action = self.model.actor.squash(mean), self.model.bc_actor.squash(bc_mean)
        critic = self.model.critic
        q_gap = critic(features, action).min(0).values - critic(features, bc_action).min(0).values
        # Per action: how far the spread left the BC policy's (SAC's bonus widened the steering first).
        spread = {f"diag/log_std_minus_bc_{name}": (log_std - bc_log_std)[:, i].mean().item()
                  for i, name in enumerate(ACTION_NAMES)}
        kl = gaussian_kl(mean, log_std, bc_mean, bc_log_std)
        # Off the road (shoves, spins) is where the BC policy extrapolates and a recovery has to be learnt.
        off_road = {"diag/kl_to_bc_off_track": kl[off_track].mean().item()} if off_track.any() else {}
        return {**preferred, "diag/q_pi_minus_q_bc": q_gap.mean().item() / self.model.reward_scale,
                "diag/action_distance_to_bc": (action - bc_action).norm(dim=-1).mean().item(),
                "diag/kl_to_bc": kl.mean().item(), "diag/off_track_share": off_track.float().mean().item(),
                **off_road, **spread}

    def update(self, batch: dict, bc_weight: float, train_actor: bool = True) -> dict:
        """One learner step on a numpy batch from `sample_mixed`."""
        batch = to_batch(batch, self.device, self.model.reward_scale)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            metrics, features = self.update_critic(batch)
            if train_actor:
                metrics.update(self.update_actor(features, batch, bc_weight))
        if self.updates % DIAGNOSE_EVERY == 0:
            metrics.update(self.bc_diagnostics(features, batch))
        self.model.sync_targets(self.config.tau)
        self.updates += 1
        return metrics

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "critic_optimizer": self.critic_optimizer.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(), "log_alpha": self.log_alpha.detach().cpu(),
                "alpha_optimizer": self.alpha_optimizer.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.updates = state["updates"]


def gaussian_kl(mean: torch.Tensor, log_std: torch.Tensor, ref_mean: torch.Tensor, ref_log_std: torch.Tensor
                ) -> torch.Tensor:
    """KL(N(mean, std) || N(ref_mean, ref_std)) of diagonal Gaussians, summed over the last dimension."""
    variance_ratio = torch.exp(2 * (log_std - ref_log_std))
    shift = ((mean - ref_mean) / ref_log_std.exp()) ** 2
    return (ref_log_std - log_std + (variance_ratio + shift - 1) / 2).sum(-1)


class Batch(NamedTuple):
    obs: torch.Tensor  # uint8 frame stacks, or float features when the encoder is fixed
    action: torch.Tensor
    bc_action: torch.Tensor  # what the BC term imitates: the action, or on recovery laps the one the driver meant
    reward: torch.Tensor  # n-step discounted sum, already times reward_scale
    discount: torch.Tensor
    next_obs: torch.Tensor
    is_demo: torch.Tensor
    off_track: torch.Tensor  # the car is off the road at obs
    critic_only: torch.Tensor  # rows of --critic_dataset: the critic's TD step and the actor's Q term, not BC's
    mc_return: torch.Tensor  # discounted return from obs on (demo rows; times reward_scale)


def to_batch(batch: dict, device: torch.device, reward_scale: float) -> Batch:
    as_tensor = lambda key: torch.as_tensor(batch[key], device=device)
    return Batch(as_tensor("obs"), as_tensor("action"), as_tensor("bc_action"), as_tensor("reward") * reward_scale,
                 as_tensor("discount"), as_tensor("next_obs"), as_tensor("is_demo"), as_tensor("off_track"),
                 as_tensor("critic_only"), as_tensor("mc_return") * reward_scale)


class AdaptiveBCWeight:
    """lambda that keeps fine-tuning from falling below its BC start, and lets go as it proves itself.

    It starts at bc_weight (the actor barely moves). Measured: letting it fall to bc_weight / 100 undid the
    gains of the steps before; at bc_weight / 10 the policy still drifted from its peak late in the run (with
    the dashboard inputs); at 0.3 x bc_weight (`bc_weight_floor`) it held on average, but one strong start's validation
    fell late, which 0.5 held (auto: 0.5 with the KL cost). Reference: the mean raw return of the training episodes
    driven before the actor trains (the BC policy itself, with its exploration noise). Once the actor
    trains, each finished episode compares the mean of the last `window` returns with it: below the
    reference (minus `tolerance` of its size) lambda grows by `up`, otherwise it shrinks by `down`, within
    [bc_weight_floor * bc_weight, bc_weight]. With `adaptive_bc_weight` off lambda stays at bc_weight (linearly decayed
    over bc_decay_steps if set).
    """

    window, up, down, tolerance = 6, 1.25, 1.15, 0.03

    def __init__(self, config: RLConfig):
        self.config = config
        self.weight = config.bc_weight
        self.reference: list[float] = []
        self.recent: list[float] = []

    def value(self, step: int) -> float:
        if self.config.bc_decay_steps > 0:
            return self.weight * max(0.0, 1.0 - step / self.config.bc_decay_steps)
        return self.weight

    def add_episode(self, raw_return: float, actor_training: bool) -> None:
        raw_return = float(raw_return)  # checkpoints hold plain floats, not numpy scalars
        if not self.config.adaptive_bc_weight or self.config.bc_weight <= 0:
            return
        if not actor_training:
            self.reference.append(raw_return)
            return
        self.recent = (self.recent + [raw_return])[-self.window:]
        if len(self.recent) < self.window or not self.reference:
            return
        reference = float(np.mean(self.reference))
        below = np.mean(self.recent) < reference - self.tolerance * abs(reference)
        factor = self.up if below else 1 / self.down
        floor = self.config.bc_weight_floor * self.config.bc_weight
        self.weight = float(np.clip(self.weight * factor, floor, self.config.bc_weight))

    def state_dict(self) -> dict:
        return {"weight": self.weight, "reference": self.reference, "recent": self.recent}

    def load_state_dict(self, state: dict) -> None:
        self.weight, self.reference, self.recent = state["weight"], list(state["reference"]), list(state["recent"])


def run(args: argparse.Namespace) -> int:
    """Resolve what to start from (scratch, a BC run, or an RL run to continue), then train."""
    with distributed.process_group(args.device) as ctx:
        with ExitStack() as claim:  # resolve_run claims the run for this process; released when training ends
            path, config, env_config, model_config, init_model, resume_state = resolve_run(args, ctx, claim)
            train_rl(path, config, env_config, model_config, ctx, init_model=init_model, resume_state=resume_state)
            if config.attempts > 1:
                train_other_attempts(path, config, env_config, model_config, ctx)
            if ctx.is_main and any(trial_walks(config).values()):
                action_trials(path, config)
    return 0


def resolve_run(args: argparse.Namespace, ctx: DistContext, claim: ExitStack):
    """Settings and starting weights of this run; rank 0 claims the run into `claim` and writes config.json
    (all ranks agree on the path)."""
    resume_state = init_model = None
    saved = load_config(run_dir(args.resume_run_id)) if args.resume_run_id else {}
    if saved.get("kind") == "rl":
        path = run_dir(args.resume_run_id)
        config = RLConfig(**{**saved["train"],
                             "total_steps": max(args.total_steps or 0, saved["train"]["total_steps"])})
        env_config, model_config = EnvConfig(**saved["env"]), ModelConfig(**saved["model"])
        saved_flags = {**asdict(config), **{k: getattr(model_config, k) for k in MODEL_FLAG_DEFAULTS}}
        ignored = [f"--{k}" for k, default in {**asdict(RLConfig()), **MODEL_FLAG_DEFAULTS}.items()
                   if k != "total_steps" and getattr(args, k, default) not in (default, None, saved_flags[k])]
        if ignored and ctx.is_main:
            print(f"warning: continuing {args.resume_run_id} with its saved settings; ignoring {', '.join(ignored)}")
        resume_state = load_checkpoint(checkpoint_path(path, "latest_step"), "cpu")
        for key, value in ModelConfig.as_trained().items():  # its policy may change: the trials run again
            setattr(model_config, key, value)
    else:
        config = RLConfig(**{k: getattr(args, k) for k in asdict(RLConfig()) if hasattr(args, k) and k != "dataset"})
        for name, default in asdict(RLConfig()).items():  # 0/1 flags -> the config's bools
            if isinstance(default, bool):
                setattr(config, name, bool(getattr(config, name)))
        if args.resume_run_id:  # fine-tune a BC run: its observation settings, networks and demonstrations
            bc_path = run_dir(args.resume_run_id)
            if saved.get("kind") != "bc":
                raise UserError(f"--resume_run_id {args.resume_run_id}: not a BC or RL run "
                                f"(kind {saved.get('kind')!r})")
            env_config = override_reward(EnvConfig(**saved["env"]), args)
            if args.stall_limit is None and not env_config.stall_limit:  # auto: on unless the BC run set one
                env_config.stall_limit = FINE_TUNING_STALL_LIMIT
            if saved["model"].get("dashboard_inputs") and not args.dashboard_inputs:
                raise UserError(f"--resume_run_id {args.resume_run_id}: this BC run reads the dashboard; "
                                "--dashboard_inputs 0 needs a BC run trained with train_bc --dashboard_inputs 0")
            # The frozen BC actor rides along: reference for diagnostics, proposals for BC selection.
            model_config = replace(ModelConfig(**saved["model"]), bc_actor=True, bc_selection=config.bc_selection,
                                   policy_action=args.policy_action, dashboard_inputs=bool(args.dashboard_inputs),
                                   spread_limit=args.spread_limit)
            init_model = bc_start(bc_path)
            config = replace(config, bc_run=bc_path.name, dataset=args.dataset or saved["train"]["dataset"])
            config.train_encoder = bool(config.train_encoder) if config.train_encoder is not None else False
        else:
            env_config, model_config = env_and_model_configs(args)
            model_config.policy_action, model_config.dashboard_inputs = args.policy_action, bool(args.dashboard_inputs)
            model_config.spread_limit = args.spread_limit
            # no BC policy to propose, keep or stay near
            config = replace(config, dataset=args.dataset or "", bc_weight=args.bc_weight if args.dataset else 0.0,
                             bc_selection=False, learn_std=True, bc_prior_kl=False)
            config.train_encoder = bool(config.train_encoder) if config.train_encoder is not None else True
        if config.critic_dataset and args.offtrack_limit is None:  # the robust recipe's auto settings
            env_config.offtrack_limit = RECOVERY_OFFTRACK_LIMIT
        if config.imitate_critic_dataset is None:
            config.imitate_critic_dataset = bool(config.critic_dataset and config.bc_run)
        if config.actor_warmup_steps is None:
            imitating_from_bc = config.imitate_critic_dataset and config.bc_run
            config.actor_warmup_steps = RECOVERY_ACTOR_WARMUP_STEPS if imitating_from_bc else 0
        run_id = distributed.broadcast_object(args.run_id or new_run_id("rl"), ctx)
        path = run_dir(run_id, must_exist=False)
        if (path / "config.json").exists():
            raise UserError(f"--run_id {run_id}: {path} already exists; pick another id or --resume_run_id it")
    validate_config(config)
    try:
        if model_config.spread_limit is not None:  # None: auto, decided in train_rl
            check_spread_limit(model_config.spread_limit)
    except ValueError as error:
        raise UserError(f"--{error}") from None
    if config.num_min_qs > model_config.num_qs:
        raise UserError(f"--num_min_qs {config.num_min_qs} exceeds the critic ensemble ({model_config.num_qs} members)")
    distributed.barrier(ctx)  # every rank has checked the path before rank 0 creates it
    if ctx.is_main:
        claim.enter_context(claim_run(path, new=resume_state is None))
        save_config(path, {"kind": "rl", "world_size": ctx.world_size, "train": asdict(config),
                           "env": asdict(env_config), "model": asdict(model_config)})
    return path, config, env_config, model_config, init_model, resume_state


def bc_start(bc_path: Path) -> dict:
    """The weights a fine-tuning of this BC run starts from: its policy's checkpoint."""
    return load_checkpoint(checkpoint_path(bc_path), "cpu")["model"]


def train_other_attempts(path: Path, config: RLConfig, env_config: EnvConfig, model_config: ModelConfig,
                         ctx: DistContext) -> None:
    """--attempts: the second and later fine-tunings, each a run of its own in `path`/attempt_K (started, resumed
    where it stopped, or left as it is when done), with the run's resolved settings and its own seed; then the
    run's policy becomes the best validated of all attempts."""
    for attempt, folder in enumerate(attempt_folders(path, config.attempts)[1:], start=2):
        attempt_config = replace(config, seed=config.seed + ATTEMPT_SEED_STRIDE * (attempt - 1), attempts=1)
        last_state = folder / "checkpoints" / "latest_step.pt"
        resume_state = load_checkpoint(last_state, "cpu") if last_state.exists() else None
        init_model = bc_start(run_dir(config.bc_run)) if config.bc_run and resume_state is None else None
        if ctx.is_main:
            print(f"attempt {attempt} of {config.attempts} (seed {attempt_config.seed}): {folder}")
            save_config(folder, {"kind": "rl", "world_size": ctx.world_size, "train": asdict(attempt_config),
                                 "env": asdict(env_config), "model": asdict(model_config)})
        distributed.barrier(ctx)
        train_rl(folder, attempt_config, replace(env_config), replace(model_config), ctx, init_model=init_model,
                 resume_state=resume_state)
    if ctx.is_main:
        choose_attempt(path, config.attempts)


def trial_scales(end: float, step: float, start: float = 1.0) -> list[float]:
    """The values a trial walks from `start` (as trained) toward `end` (a lighter brake below 1, a heavier gas
    above, a wider deadzone above 0): start -+ step, start -+ 2 step, ... while short of `end`, then `end` itself;
    none for `end` = `start` (no trial)."""
    if end == start:
        return []
    sign = 1 if end > start else -1
    grid = (round(start + sign * step * k, 6) for k in range(1, int(np.ceil(abs(end - start) / step)) + 1))
    return [scale for scale in grid if sign * (end - scale) > 0] + [end]


# Each driving setting (ModelConfig.DRIVING_SETTINGS) and the flag of the trial that sets it.
TRIAL_FLAGS = {"brake_deadzone": "deadzone_trial", "brake_scale": "brake_trial", "gas_scale": "gas_trial",
               "steer_scale": "steer_trial"}


def trial_walks(config: RLConfig) -> dict[str, list[float]]:
    """The trials in the order they walk: each driving setting (ModelConfig.DRIVING_SETTINGS) and the values it
    tries (none: no trial)."""
    return {"brake_deadzone": trial_scales(config.deadzone_trial, DEADZONE_STEP, start=0.0),
            "brake_scale": trial_scales(config.brake_trial, BRAKE_STEP),
            "gas_scale": trial_scales(config.gas_trial, GAS_STEP),
            "steer_scale": trial_scales(config.steer_trial, STEER_STEP)}


def walk(agent: Agent, knob: str, scales: list[float], best: float, config: RLConfig,
         tried: list[str]) -> tuple[float, float]:
    """Validate `agent` with its `knob` (one of ModelConfig.DRIVING_SETTINGS) at each of `scales` in turn, stopping
    at the first that does not validate strictly higher than the step before (`best` validated the agent as it is);
    the knob is left at the last that did (or as it was), and returned with its validation. Each step goes into
    `tried`."""
    kept = getattr(agent, knob)
    for scale in scales:
        setattr(agent, knob, scale)
        raw = validate(agent, config.eval_episodes, config.num_envs)["raw"]["mean"]
        tried.append(f"{raw:.1f} with its {knob} {scale:g}")
        if raw <= best:
            break
        kept, best = scale, raw
    setattr(agent, knob, kept)
    return kept, best


def action_trials(path: Path, config: RLConfig) -> dict[str, float]:
    """--deadzone_trial D, --brake_trial S, --gas_trial G and --steer_trial W: from the run's policy's validation as
    trained (its periodic one, else a drive now), validate it releasing its lightest brakes, step by step
    (`trial_scales`) while each step validates higher than the one before, then from there with the brake of every
    action lighter the same way, then with its gas heavier, then its steering sharper; keep the last steps that
    rose (config.json's model.brake_deadzone, brake_scale, gas_scale and steer_scale, which test and Agent.load
    apply to the run's policy). A walk stops at the first step that does not rise: driving faster gains a little on
    every track until it costs a lap somewhere. Returns the settings kept."""
    agent = Agent.load(path, device=config.device, **ModelConfig.as_trained())
    best = policy_validation(path, config) if validations_choose(config) else -np.inf
    if not np.isfinite(best):  # no periodic validation chose the policy: validate it as trained first
        best = validate(agent, config.eval_episodes, config.num_envs)["raw"]["mean"]
    tried = [f"{best:.1f} as trained"]
    kept, walked = {}, []
    for knob, scales in trial_walks(config).items():
        kept[knob], best = walk(agent, knob, scales, best, config, tried)
        walked += [knob] if scales else []
    saved = load_config(path)
    save_config(path, {**saved, "model": {**saved["model"], **kept}})
    verdict = (f"the policy validated {', '.join(tried)}: it drives with "
               + ", ".join(f"{knob} {kept[knob]:g}" for knob in walked))
    with SummaryWriter(str(path)) as writer:  # TensorBoard's Text tab, beside the run's curves
        writer.add_text("action_trials", verdict)
    print(f"trials: {verdict} (config.json model.{', model.'.join(walked)})")
    return kept


def attempt_validation(path: Path) -> float:
    """The periodic validation return of one fine-tuning's policy (the checkpoint it ends on)."""
    return load_checkpoint(checkpoint_path(path, "latest_step"), "cpu")["best_validation"]["policy_raw"]


def policy_validation(path: Path, config: RLConfig) -> float:
    """The periodic validation return of the run's policy as trained: its best validated attempt's. The trials
    start from it: validating the same weights on the same tracks again would only repeat it (-inf: none yet)."""
    return max(attempt_validation(folder) for folder in attempt_folders(path, config.attempts))


def attempt_folders(path: Path, attempts: int) -> list[Path]:
    """The run's own folder, then its later attempts' (`train_other_attempts`)."""
    return [path] + [path / f"attempt_{attempt}" for attempt in range(2, attempts + 1)]


def best_attempt(validations: list[float]) -> int:
    """--attempts' choice: the 1-based number of the attempt whose policy validated best, the first of equals."""
    return int(np.argmax(validations)) + 1


def choose_attempt(path: Path, attempts: int) -> int:
    """Point the run's policy (`latest`) at the attempt whose policy validated best (`best_attempt`), copied into
    the run's checkpoints as attempt_K.pt when it is not the run's own; returns K."""
    folders = attempt_folders(path, attempts)
    scores = [attempt_validation(folder) for folder in folders]
    chosen = best_attempt(scores)
    if chosen > 1:
        save_checkpoint(path, f"attempt_{chosen}", load_checkpoint(checkpoint_path(folders[chosen - 1]), "cpu"))
    print(f"attempts' policies validated {', '.join(f'{score:.1f}' for score in scores)}: the run's policy is "
          f"attempt {chosen}'s" + (f" (checkpoints/attempt_{chosen}.pt)" if chosen > 1 else ""))
    return chosen


def no_validation() -> dict:
    """`note_validation`'s record before any validation: the best so far, and the policy's step and validation."""
    return {"raw": -np.inf, "step": -1, "policy_raw": -np.inf}


def resolve_pace(config: RLConfig, from_clean_laps: bool) -> None:
    """--actor_lr, --actor_lr_decay and --total_steps auto: fine-tuning clean laps under SAC's bonus without recovery
    laps (a weak start with far to go) the actor learns 3 times faster, over twice the budget, its rate falling to 0
    by the end; otherwise 1e-4, constant, over 15,000 steps (Design notes)."""
    if config.actor_lr is None:
        config.actor_lr = BONUS_ACTOR_LR if from_clean_laps else SLOW_ACTOR_LR
    if config.actor_lr_decay is None:
        config.actor_lr_decay = from_clean_laps
    if config.total_steps is None:
        config.total_steps = CLEAN_LAPS_TOTAL_STEPS if from_clean_laps else DEFAULT_TOTAL_STEPS


def validations_choose(config: RLConfig) -> bool:
    """Whether the run's policy is chosen by periodic validation, the choice --attempts extends across attempts."""
    return config.eval_every > 0 and config.final_policy == "best"


def resolve_trials(config: RLConfig) -> None:
    """--brake_trial, --gas_trial, --steer_trial and --eval_episodes auto: under the KL cost, where validations
    choose the run's policy, the brake, gas and steering trials walk, and every validation drives the wider set of
    tracks (between strong policies a rare lost lap decides); otherwise no trial, and the narrow set."""
    trials = config.bc_prior_kl and validations_choose(config)
    if config.brake_trial is None:
        config.brake_trial = LIGHTEST_BRAKE if trials else 1.0
    if config.gas_trial is None:
        config.gas_trial = HEAVIEST_GAS if trials else 1.0
    if config.steer_trial is None:
        config.steer_trial = SHARPEST_STEER if trials else 1.0
    if config.eval_episodes is None:
        config.eval_episodes = WIDE_VALIDATION_EPISODES if trials else NARROW_VALIDATION_EPISODES


def auto_attempts(config: RLConfig, from_clean_laps: bool) -> int:
    """--attempts auto: CLEAN_LAPS_ATTEMPTS fine-tuning clean laps, where periodic validations can choose; else 1."""
    return CLEAN_LAPS_ATTEMPTS if from_clean_laps and validations_choose(config) else 1


def actor_lr_at(config: RLConfig, step: int) -> float:
    """The actor's learning rate at this step: constant, or with --actor_lr_decay falling linearly from the actor's
    first step (after learning_starts and the critic warm-up) to 0 at total_steps."""
    if not config.actor_lr_decay:
        return config.actor_lr
    steps_left = (config.total_steps - step) / max(config.total_steps - config.actor_start, 1)
    return config.actor_lr * min(1.0, max(0.0, steps_left))


def note_validation(best: dict, raw: float, step: int, tie: float) -> bool:
    """Record the periodic validation `raw` of `step` in `best`; True if that checkpoint is now the run's policy:
    the most trained one whose validation is within `tie` (a share) of the best so far."""
    best["raw"] = max(best["raw"], raw)
    if raw < best["raw"] - tie * abs(best["raw"]):
        return False
    best.update(step=step, policy_raw=raw)
    return True


def validate_config(config: RLConfig) -> None:
    for name, value in asdict(config).items():  # nan passes every `<` check below, inf hangs or overflows
        if isinstance(value, float) and not np.isfinite(value):
            raise UserError(f"--{name} must be a finite number, got {value}")
    for name in ("total_steps", "batch_size", "num_envs", "eval_episodes", "checkpoint_every", "buffer_size", "n_step",
                 "num_min_qs", "attempts"):
        if getattr(config, name) is not None and getattr(config, name) < 1:  # None: auto, decided in train_rl
            raise UserError(f"--{name} must be >= 1, got {getattr(config, name)}")
    if config.num_envs > MAX_NUM_ENVS:
        raise UserError(f"--num_envs must be <= {MAX_NUM_ENVS}, got {config.num_envs}")
    if config.batch_size > MAX_BATCH_SIZE:
        raise UserError(f"--batch_size must be <= {MAX_BATCH_SIZE}, got {config.batch_size}")
    for name in ("learning_starts", "eval_every", "bc_weight", "bc_decay_steps", "critic_warmup_steps",
                 "updates_per_step", "kl_limit", "actor_warmup_steps"):
        if getattr(config, name) < 0:
            raise UserError(f"--{name} must be >= 0, got {getattr(config, name)}")
    for name in ("demo_ratio", "critic_demo_ratio", "bc_weight_floor", "train_shove", "train_shove_share",
                 "validation_tie"):
        if getattr(config, name) is not None and not 0 <= getattr(config, name) <= 1:
            raise UserError(f"--{name} must be in [0, 1], got {getattr(config, name)}")
    if config.critic_dataset and config.demo_ratio + config.critic_demo_ratio > 1:
        raise UserError(f"--demo_ratio plus --critic_demo_ratio must be at most 1, got {config.demo_ratio} + "
                        f"{config.critic_demo_ratio}")
    if config.imitate_critic_dataset and not config.critic_dataset:
        raise UserError("--imitate_critic_dataset 1 needs --critic_dataset (the laps to imitate)")
    if config.actor_warmup_steps and not config.imitate_critic_dataset:
        raise UserError("--actor_warmup_steps needs --imitate_critic_dataset 1 (else it only repeats the BC run)")
    if config.actor_warmup_steps and not config.bc_run:
        raise UserError("--actor_warmup_steps needs a BC run to fine-tune (--resume_run_id BC_RUN)")
    if not 0 < config.gamma <= 1 or not 0 < config.tau <= 1:
        raise UserError("--gamma and --tau must be in (0, 1]")
    if config.init_temperature <= 0:
        raise UserError(f"--init_temperature must be > 0, got {config.init_temperature}")
    if config.updates_per_step > 1000:
        raise UserError(f"--updates_per_step must be <= 1000, got {config.updates_per_step}")
    for name in ("actor_lr", "critic_lr", "alpha_lr"):
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise UserError(f"--{name} must be > 0, got {getattr(config, name)}")
    for setting, flag in TRIAL_FLAGS.items():  # a trial walks to a value its setting can take
        value = getattr(config, flag)
        if value is not None and (problem := driving_range_error(setting, value)):
            raise UserError(f"--{flag} {problem}")
    if config.brake_trial == 0:  # the scale's range allows no brake at all; a trial walks to a brake it keeps
        raise UserError(f"--brake_trial must be in (0, 1], got {config.brake_trial}")
    if config.skipped_tile_penalty is not None and config.skipped_tile_penalty < 0:
        raise UserError(f"--skipped_tile_penalty must be >= 0, got {config.skipped_tile_penalty}")
    if config.augment_pad < 0:
        raise UserError(f"--augment_pad must be >= 0, got {config.augment_pad}")
    if (config.attempts or 1) > 1 and not validations_choose(config):
        raise UserError(f"--attempts {config.attempts} chooses by periodic validation: it needs --eval_every > 0 "
                        "and --final_policy best")


class EpisodeTracker:
    """Per environment: raw and penalized returns of the training episodes, and the critic's prediction
    at the episode's first state beside the discounted (penalized) return that followed it, and whether
    it ended stalled (`stall_limit`: 1, else 0), and the road tiles it left behind unvisited."""

    def __init__(self, num_envs: int, gamma: float):
        self.gamma = gamma
        self.raw, self.penalized, self.discounted = np.zeros(num_envs), np.zeros(num_envs), np.zeros(num_envs)
        self.discount = np.ones(num_envs)
        self.predicted = np.full(num_envs, np.nan)  # Q(s0, a0) in reward units; NaN until the policy acted
        self.fresh = np.ones(num_envs, bool)

    def note_start_values(self, q: np.ndarray) -> None:
        """Q of the actions just chosen; kept for the environments whose episode starts with them."""
        self.predicted = np.where(self.fresh, q, self.predicted)
        self.fresh[:] = False

    def add(self, reward: np.ndarray, info: dict, done: np.ndarray) -> list[dict[str, float]]:
        # Same-step autoreset: a finished env's step info is in info['final_info'], its info is the reset's.
        raw = np.where(info.get("_raw_reward", False), info.get("raw_reward", 0.0), 0.0)
        if done.any():
            raw = np.where(done, info["final_info"]["raw_reward"], raw)
        self.raw += raw
        self.penalized += reward
        self.discounted += self.discount * reward
        self.discount *= self.gamma
        finished = []
        for i in np.flatnonzero(done):
            ended = info["final_info"]
            episode = {"raw_return": self.raw[i], "penalized_return": self.penalized[i],
                       "stalled": float(ended.get("stalled", np.zeros(len(done)))[i]),
                       "tiles_skipped": float(ended.get("tiles_skipped", np.zeros(len(done)))[i])}
            if not np.isnan(self.predicted[i]):
                episode.update(predicted_q_s0=self.predicted[i], discounted_return_s0=self.discounted[i])
            finished.append(episode)
        self.raw[done] = self.penalized[done] = self.discounted[done] = 0.0
        self.discount[done], self.predicted[done], self.fresh[done] = 1.0, np.nan, True
        return finished


class TrainingShoves:
    """`train_shove`: during collection, each environment's action is now and then replaced by the test's
    shove (evaluate.Shoves: full steer to a random side, no gas, for SHOVE_HOLD_FRAMES frames). Without them
    a good start rarely leaves the road, so the critic never learns what getting back is worth."""

    def __init__(self, num_envs: int, probability: float, action_repeat: int, share: float = 1.0):
        self.probability, self.action_repeat, self.share = probability, action_repeat, share
        self.hold = np.zeros(num_envs, np.int64)  # frames of the current shove still to come
        self.push = np.zeros((num_envs, 3), np.float32)
        self.active = np.zeros(num_envs, bool)  # the last `apply` replaced this environment's action
        self.on = np.ones(num_envs, bool)  # this environment's episode meets shoves (drawn per episode after the first)

    def apply(self, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The actions to execute (and store): the policy's, or a shove's."""
        starts = self.on & (self.hold <= 0) & (rng.random(len(actions)) < self.probability)
        self.push[starts] = 0.0
        self.push[starts, 0] = rng.choice((-1.0, 1.0), size=int(starts.sum()))
        self.hold[starts] = SHOVE_HOLD_FRAMES
        self.active = self.hold > 0
        self.hold[self.active] -= self.action_repeat
        return np.where(self.active[:, None], self.push, actions)

    def end_episodes(self, done: np.ndarray, rng: np.random.Generator) -> None:
        self.hold[done] = 0  # a new track starts unshoved
        if self.share < 1:  # (no draw otherwise: runs without a share keep their random stream)
            self.on[done] = rng.random(int(done.sum())) < self.share

    def state_dict(self) -> dict:  # plain lists: weights_only checkpoints
        return {"hold": self.hold.tolist(), "push": self.push.tolist(), "on": self.on.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self.hold, self.push = np.array(state["hold"], np.int64), np.array(state["push"], np.float32)
        self.on = np.array(state.get("on", np.ones(len(self.hold), bool)), bool)  # runs saved before shares: all on


class Every:
    """True once per `every` steps (steps advance by num_envs x world_size, so compare distances)."""

    def __init__(self, every: int, step: int):
        self.every, self.last = every, step

    def __call__(self, step: int) -> bool:
        if self.every <= 0 or step - self.last < self.every:
            return False
        self.last = step
        return True


def record_step(online: FrameReplay, actions, reward, next_obs, terminated, truncated, info, entry,
                forced: np.ndarray | None = None) -> np.ndarray:
    """Store one vector-env step (same-step autoreset): the final observation of a finished episode is in
    info['final_obs'] and the returned observation already starts the next episode. `entry` maps stacked
    observations to what the replay keeps (newest frame, or features); `forced` marks actions that were not
    the policy's (FrameReplay.forced)."""
    done = terminated | truncated
    off_track = np.where(info.get("_off_track", False), info.get("off_track", False), False)  # a reset's info has none
    if done.any():
        off_track = np.where(done, info["final_info"]["off_track"], off_track)
    finals = np.stack([info["final_obs"][i] if done[i] else next_obs[i] for i in range(len(actions))])
    stored = entry(finals)
    restarts = entry(next_obs[done]) if done.any() else []
    for i in range(len(actions)):
        online.add(i, actions[i], reward[i], stored[i], bool(terminated[i]), bool(off_track[i]),
                   forced is not None and bool(forced[i]))
    for i, restart in zip(np.flatnonzero(done), restarts):
        online.start(i, restart)
    return done


def warm_up_actor(learner: SACLearner, demo_buffer: FrameReplay | None, critic_demos: FrameReplay, config: RLConfig,
                  rng: np.random.Generator, log, disable_bar: bool = False) -> None:
    """`actor_warmup_steps` BC-only actor steps on the demos and the critic's laps (half each), then the warmed actor
    becomes the frozen BC policy: the reference of the KL cost and of the BC term's anchor knows the ways back.
    With the encoder frozen it reads the stored features of the unshifted frames: reading the frames with train_bc's
    random shifts instead lost (README, Results: the weak bar missed on one demo set of four)."""
    optimizer = torch.optim.Adam(learner.model.actor.parameters(), lr=BCConfig.lr)  # the warm-up is behaviour cloning
    for _ in tqdm(range(config.actor_warmup_steps), desc="actor warm-up", unit="step", disable=disable_bar):
        batch = sample_mixed(demo_buffer, None, config.batch_size, 0.5, rng, config.gamma, config.n_step,
                             critic_demos, 0.5)
        loss = learner.imitate(batch, optimizer)
    log("train/actor_warmup_bc_loss", loss)
    learner.model.bc_actor.load_state_dict(learner.model.actor.state_dict())


def load_bc_start(model: ActorCritic, bc_state: dict) -> None:
    """A BC run's weights into a fine-tuning model; the frozen BC actor starts as a copy of its actor."""
    keys = model.load_state_dict(with_zero_dashboard_weights(bc_state, model), strict=False)
    unknown = [k for k in keys.missing_keys if not k.startswith("bc_actor.")] + keys.unexpected_keys
    if unknown:
        raise UserError(f"the BC checkpoint does not match the fine-tuning networks ({', '.join(unknown[:3])})")
    if model.bc_actor is not None:
        model.bc_actor.load_state_dict(model.actor.state_dict())
    model.sync_targets(1.0)


def with_zero_dashboard_weights(bc_state: dict, model: ActorCritic) -> dict:
    """The BC run's first actor and critic layers widened with zero weights for the dashboard inputs
    (`dashboard_inputs`), which come after the encoder features and before the critic's action inputs: the
    fine-tuning run starts as exactly its BC run's networks."""
    own, features = model.state_dict(), model.encoder.feature_dim
    extra = model.encoder.output_dim - features
    widened = {}
    for key, value in bc_state.items():
        if extra and key in own and value.dim() >= 2 and own[key].shape[1] == value.shape[1] + extra:
            zeros = value.new_zeros(value.shape[0], extra, *value.shape[2:])
            value = torch.cat([value[:, :features], zeros, value[:, features:]], dim=1)
        widened[key] = value
    return widened


@torch.no_grad()
def default_target_entropy(model: ActorCritic, demo_buffer: FrameReplay | None, device: torch.device) -> float:
    """-|A| (SAC's usual target), or for a BC start the BC policy's own mean entropy on demo states, so the
    temperature keeps exploration at the level the imitation already has instead of forcing it wider."""
    if demo_buffer is None:
        return SCRATCH_TARGET_ENTROPY
    batch = demo_buffer.sample(1024, np.random.default_rng(0))
    with torch.random.fork_rng(devices=[]):  # the same sample on every rank, whatever its seed
        torch.manual_seed(0)
        _, log_prob = model.actor.sample(model.encoder(torch.as_tensor(batch["obs"], device=device)))
    return round(float(-log_prob.mean()), 2)


def train_rl(path: Path, config: RLConfig, env_config: EnvConfig, model_config: ModelConfig, ctx: DistContext,
             init_model: dict | None = None, resume_state: dict | None = None) -> SACLearner:
    """Collect with `num_envs` environments per rank and learn; rank 0 logs, evaluates and checkpoints."""
    device, main_rank = ctx.device, ctx.is_main
    rank_seed = config.seed + 1000 * ctx.rank  # ranks explore differently
    torch.manual_seed(rank_seed)
    rng = np.random.default_rng(rank_seed)
    demo_buffer, demos_show_recoveries = None, False
    if config.dataset:
        episodes = demos.load_named_dataset(config.dataset, skip_bad=True)
        demo_buffer = demo_replay(episodes, env_config, config.gamma)
        demos_show_recoveries = not demos.lacks_recoveries(episodes)
        del episodes  # the replay holds what it needs; the raw frames are freed
    critic_demos = None
    if config.critic_dataset:
        critic_demos = demo_replay(demos.load_named_dataset(config.critic_dataset, skip_bad=True), env_config,
                                   config.gamma, executed=True)
    if config.bc_prior_kl is None:  # --bc_prior_kl auto
        config.bc_prior_kl = demos_show_recoveries
        if main_rank:
            print("KL cost to the BC policy: "
                  f"{'on' if config.bc_prior_kl else 'off (the demonstrations show no recovery)'}")
    from_clean_laps = init_model is not None and not config.bc_prior_kl and not config.critic_dataset
    resolve_pace(config, from_clean_laps)
    if config.attempts is None:
        config.attempts = auto_attempts(config, from_clean_laps)
    resolve_trials(config)
    if config.skipped_tile_penalty is None:  # --skipped_tile_penalty auto
        config.skipped_tile_penalty = SKIPPED_TILE_PENALTY if from_clean_laps else 0.0
    env_config.skipped_tile_penalty = config.skipped_tile_penalty
    if main_rank:
        print(f"actor learning rate: {config.actor_lr:g}{', falling linearly to 0' if config.actor_lr_decay else ''} "
              f"over {config.total_steps:,} steps")
        print(f"skipped-tile penalty: {config.skipped_tile_penalty:g}")
    if config.kl_on_road_only is None:  # --kl_on_road_only auto: shown the ways back, the actor may follow them,
        # unless it imitates them too: then its reference knows them, and the KL cost everywhere keeps it near them
        config.kl_on_road_only = (bool(config.critic_dataset) and config.bc_prior_kl
                                  and not config.imitate_critic_dataset)
    if config.train_shove is None:  # --train_shove auto
        config.train_shove = RECOVERY_TRAIN_SHOVE if config.critic_dataset else 0.0
    if config.train_shove_share is None:  # --train_shove_share auto
        config.train_shove_share = 1.0 if config.bc_prior_kl else BONUS_SHOVE_SHARE
    if config.cut_returns_at_shoves is None:  # --cut_returns_at_shoves auto
        config.cut_returns_at_shoves = not config.bc_prior_kl
    if main_rank and config.critic_dataset:
        print(f"robust recipe: training shoves {config.train_shove:g} in {config.train_shove_share:.0%} of the episodes"
              f"{', returns cut at them' if config.cut_returns_at_shoves else ''}, {env_config.offtrack_limit} "
              "frames off the road allowed, the KL cost "
              f"{'on the road only' if config.kl_on_road_only else 'everywhere' if config.bc_prior_kl else 'off'}"
              + (", the laps imitated" if config.imitate_critic_dataset else "")
              + (f" after {config.actor_warmup_steps} warm-up steps"
                 if config.actor_warmup_steps and resume_state is None else ""))
    if config.bc_weight_floor is None:  # --bc_weight_floor auto
        config.bc_weight_floor = KL_BC_WEIGHT_FLOOR if config.bc_prior_kl else BONUS_BC_WEIGHT_FLOOR
        if main_rank:
            print(f"lambda's floor: {config.bc_weight_floor:g} x --bc_weight")
    if main_rank:
        print(f"stall limit: {env_config.stall_limit} frames without a new tile, charged {env_config.stall_cost:g}"
              if env_config.stall_limit else "stall limit: off")
    if model_config.spread_limit is None:  # --spread_limit auto: SAC's entropy bonus was measured with the old clamp
        model_config.spread_limit = KL_SPREAD_LIMIT if config.bc_prior_kl else OLD_SPREAD_LIMIT
    if model_config.policy_action is None:  # --policy_action auto: the spread stays near BC's only under the KL cost
        model_config.policy_action = "mean" if config.bc_prior_kl else "expected"
        if main_rank:
            print(f"driven action: {'tanh(mean)' if config.bc_prior_kl else 'the average of the squashed samples'}")
    model = ActorCritic(env_config.obs_shape, model_config).to(device)
    if init_model is not None:
        load_bc_start(model, init_model)
    step = 0
    if resume_state is None:  # a new run: save the settings that depended on the data
        if config.target_entropy is None and not config.bc_prior_kl:  # the KL cost has no entropy target
            config.target_entropy = default_target_entropy(model, demo_buffer if init_model is not None else None,
                                                           device)
        for flag, value in (("--kl_limit", config.kl_limit), ("--kl_on_road_only", config.kl_on_road_only)):
            if main_rank and not config.bc_prior_kl and value:
                print(f"warning: {flag} acts on the KL cost, which is off: it changes nothing "
                      "(--bc_prior_kl 1 turns it on)")
        if main_rank:
            save_config(path, {**load_config(path), "train": asdict(config), "env": asdict(env_config),
                               "model": asdict(model_config)})
    learner = SACLearner(model, config, device, ctx)
    bc_weight = AdaptiveBCWeight(config)
    best = no_validation()  # step 0's validation is the BC start's
    shoves = (TrainingShoves(config.num_envs, config.train_shove, env_config.action_repeat, config.train_shove_share)
              if config.train_shove else None)
    if resume_state is not None:
        learner.load_state_dict(resume_state)
        if "bc_weight" in resume_state:  # runs saved before the adaptive weight lack both
            bc_weight.load_state_dict(resume_state["bc_weight"])
            best.update({"policy_raw": resume_state["best_validation"]["raw"], **resume_state["best_validation"]})
        if shoves is not None and "training_shoves" in resume_state:
            shoves.load_state_dict(resume_state["training_shoves"])
        step = resume_state["step"]
        if ctx.rank == 0:  # exact continuation of the saved random streams (rank 0's; others reseed)
            rng = rng_from_state(resume_state["numpy_rng"])
            torch.set_rng_state(resume_state["torch_rng"])
        else:
            rng = np.random.default_rng([rank_seed, step])
        if main_rank:
            print(f"resuming {path.name} at step {step} ({learner.updates} updates)")

    # With the encoder fixed, every stored observation is encoded once, at collection (online) or here
    # (demos); an update is then a few small MLP steps instead of two CNN passes.
    cache_features = learner.cached_features
    channels = env_config.frame_shape[0]

    @torch.no_grad()
    def replay_entry(stacked_obs: np.ndarray) -> np.ndarray:
        """What the replay stores for these observations: encoder features, or their newest frame."""
        if not cache_features:
            return stacked_obs[:, -channels:]
        return model.encoder(torch.as_tensor(stacked_obs, device=device)).float().cpu().numpy()

    if demo_buffer is not None and cache_features:
        demo_buffer = encode_replay(demo_buffer, replay_entry)
    if critic_demos is not None and cache_features:
        critic_demos = encode_replay(critic_demos, replay_entry)
    capacity = max(config.buffer_size // config.num_envs, 64)
    online = (FrameReplay(capacity, config.num_envs, (model.encoder.output_dim,), 1, dtype=np.float32) if cache_features
              else FrameReplay(capacity, config.num_envs, env_config.frame_shape, env_config.frame_stack))
    steps_per_iteration = config.num_envs * ctx.world_size
    run_id = path.name if path.parent == LOG_ROOT else path  # an attempt's folder (attempt_K) is named by its path
    if main_rank:
        temperature = (f"target entropy {config.target_entropy}" if not config.bc_prior_kl
                       else f"KL cost, temperature {config.init_temperature} rising while KL > {config.kl_limit} nats"
                       if config.kl_limit else f"temperature fixed at {config.init_temperature} (KL cost)")
        print(f"run {run_id}: {'BC-SAC from ' + config.bc_run if config.bc_run else 'SAC from scratch'}, "
              f"BC selection {'on' if model_config.bc_selection else 'off'}, {temperature}, "
              f"{'cached features' if cache_features else 'encoder trained'}, "
              f"world size {ctx.world_size} x {config.num_envs} envs on {device}, effective batch "
              f"{config.batch_size * ctx.world_size}, demos: {len(demo_buffer) if demo_buffer else 0} transitions"
              + (f", critic-only demos: {len(critic_demos)} transitions" if critic_demos else ""))
        print(f"TensorBoard: tensorboard --logdir {path.parent}")

    writer = SummaryWriter(str(path)) if main_rank else None
    log = (lambda tag, value: writer.add_scalar(tag, value, step)) if main_rank else (lambda tag, value: None)
    if resume_state is None and config.actor_warmup_steps:
        warm_up_actor(learner, demo_buffer, critic_demos, config, rng, log, disable_bar=not main_rank)
    envs = make_vec_env(config.num_envs, env_config)
    # Training tracks only (seeds below TRAIN_SEED_LIMIT); each rank and each resume starts new ones.
    first_seed = (config.seed * 1000 + ctx.rank * config.num_envs + step) % (TRAIN_SEED_LIMIT - config.num_envs)
    obs, _ = envs.reset(seed=first_seed)
    for i, entry in enumerate(replay_entry(obs)):
        online.start(i, entry)
    tracker = EpisodeTracker(config.num_envs, config.gamma)
    agent = Agent(model, env_config, device)
    collected_since_start = 0  # steps this rank collected in this process (the buffer starts empty on resume)
    update_debt = 0.0
    metrics: dict[str, float] = {}
    every_eval, every_checkpoint, every_log = (Every(config.eval_every, step), Every(config.checkpoint_every, step),
                                               Every(1000, step))
    timer = {"start": time.time(), "env": 0.0, "learn": 0.0, "frames": 0, "updates": 0}
    random_start = init_model is None and resume_state is None

    def collect() -> None:
        """One step in every environment, stored in the replay; finished episodes logged."""
        nonlocal obs
        if random_start and step < config.learning_starts:
            actions = rng.uniform([-1, 0, 0], [1, 1, 1], size=(config.num_envs, 3)).astype(np.float32)
            tracker.note_start_values(np.full(config.num_envs, np.nan))  # random actions: no prediction
        else:
            with torch.no_grad():
                features = model.encoder(torch.as_tensor(obs, device=device))
                actions, rl_wins = model.select(features, model.actor.sample(features)[0])
                tracker.note_start_values(model.critic(features, actions).min(0).values.cpu().numpy()
                                          / model.reward_scale)
            metrics["diag/rl_action_wins_acting"] = rl_wins.float().mean().item()
            actions = actions.cpu().numpy()
        if shoves is not None:
            actions = shoves.apply(actions, rng)
        next_obs, reward, terminated, truncated, info = envs.step(actions)
        forced = shoves.active if shoves is not None and config.cut_returns_at_shoves else None
        done = record_step(online, actions, reward, next_obs, terminated, truncated, info, replay_entry, forced)
        if shoves is not None:
            shoves.end_episodes(done, rng)
        for episode in tracker.add(reward, info, done):
            for name, value in episode.items():
                log(f"train/episode_{name}", value)
            bc_weight.add_episode(episode["raw_return"], actor_training=step >= config.actor_start)
        obs = next_obs

    def learn() -> None:
        """The updates owed so far (every rank does as many, so all-reduces pair up)."""
        nonlocal update_debt
        train_actor = step >= config.actor_start
        learner.set_actor_lr(actor_lr_at(config, step))
        while update_debt >= 1:
            batch = sample_mixed(demo_buffer, online, config.batch_size, config.demo_ratio, rng, config.gamma,
                                 config.n_step, critic_demos, config.critic_demo_ratio)
            metrics.update(learner.update(batch, bc_weight.value(step), train_actor))
            update_debt -= 1
            timer["updates"] += 1

    def write_logs() -> None:
        for k, v in metrics.items():
            log(k if k.startswith("diag/") else f"train/{k}", v)
        log("train/bc_weight", bc_weight.value(step))
        log("train/actor_lr", learner.actor_optimizer.param_groups[0]["lr"])
        log("speed/env_frames_per_s", timer["frames"] / max(timer["env"], 1e-9))
        log("speed/updates_per_s", timer["updates"] / max(timer["learn"], 1e-9))
        log("speed/steps_per_s_overall", collected_since_start * ctx.world_size / (time.time() - timer["start"]))
        bar.set_postfix(upd=learner.updates, alpha=f"{learner.alpha.item():.3f}")

    def checkpoint(name: str = "latest_step", copies: tuple[str, ...] = ()) -> None:
        if main_rank:
            state = {**learner.state_dict(), "step": step, "numpy_rng": rng_state(rng),
                     "torch_rng": torch.get_rng_state(), "bc_weight": bc_weight.state_dict(),
                     "best_validation": dict(best)}
            if shoves is not None:
                state["training_shoves"] = shoves.state_dict()
            save_checkpoint(path, name, state, copies)

    def evaluate_now() -> None:
        if not main_rank:
            return  # the other ranks wait for rank 0 at their next gradient all-reduce
        summary = validate_on_tracks(agent, config.eval_episodes, config.num_envs, writer, step, clip=config.eval_video)
        is_policy = note_validation(best, summary["raw"]["mean"], step, config.validation_tie)
        # Every validated state stays testable (test --checkpoint step_N); the policy's is also `best`.
        checkpoint(f"step_{step}", copies=("best",) if is_policy else ())
        tqdm.write(f"step {step}: eval raw {summary['raw']['mean']:.0f} ± {summary['raw']['std']:.0f} "
                   f"(min {summary['raw']['min']:.0f}, laps {summary['laps_completed']}/{summary['episodes']}), "
                   f"penalized {summary['penalized']['mean']:.0f}, off-track frames "
                   f"{summary['offtrack_frames']['mean']:.0f}")

    bar = tqdm(total=config.total_steps, initial=step, desc="train_rl", unit="step", disable=not main_rank)
    try:
        if config.eval_every and step == 0:
            evaluate_now()
        while step < config.total_steps:
            t0 = time.time()
            collect()
            step += steps_per_iteration
            collected_since_start += config.num_envs
            bar.update(steps_per_iteration)
            timer["env"] += time.time() - t0
            timer["frames"] += config.num_envs * env_config.action_repeat
            if step >= config.learning_starts:  # as many updates per step as an uninterrupted run
                update_debt += config.updates_per_step * config.num_envs
            # A resumed run refills its (unsaved) buffer first, then pays the updates owed meanwhile.
            if collected_since_start * ctx.world_size >= config.learning_starts:
                t0 = time.time()
                learn()
                timer["learn"] += time.time() - t0
            if every_log(step) and timer["updates"]:
                write_logs()
            if every_eval(step):
                evaluate_now()
            if every_checkpoint(step):
                checkpoint()
    except KeyboardInterrupt:
        tqdm.write(f"interrupted at step {step}: writing a final checkpoint")
        raise  # main exits 130 after the `finally` below has saved it
    finally:
        bar.close()
        checkpoint()
        try:
            envs.close()
        except (OSError, EOFError):  # workers already gone (SIGTERM to the process group): keep the interrupt
            envs.closed = True  # nothing left to close; spares the garbage collector a second failing try
    if config.eval_every and step > every_eval.last and step >= config.total_steps:
        evaluate_now()
    if main_rank and config.final_policy == "best" and 0 <= best["step"] < step:
        # The run's policy (what `test` and Agent.load drive) is the best validated one; resuming still
        # continues from latest_step.
        set_latest(path, "best")
        print(f"policy: the step-{best['step']} checkpoint (validation raw {best['policy_raw']:.1f}; the best periodic "
              f"evaluation {best['raw']:.1f}{'; step 0 is the BC start' if best['step'] == 0 else ''}); the last "
              "state is latest_step")
    elif main_rank and config.final_policy == "best" and best["step"] == step:
        print(f"policy: the last state (validation raw {best['policy_raw']:.1f}; the best periodic evaluation "
              f"{best['raw']:.1f})")
    if writer:
        log_hparams(writer)
        writer.close()
        print(f"done: {step} steps, {learner.updates} updates. Test with  python main.py test --resume_run_id {run_id}")
    distributed.barrier(ctx)
    return learner
