"""`train_bc`: behaviour-cloning pre-training of the actor and both critics on demonstrations.

Actor loss: mean squared error between the actor's deterministic (squashed-mean) action and the expert's
action; the actor's standard deviation is fitted separately (likelihood around the detached mean, small
weight) so that RL starts with exploration noise matched to the imitation error. Critic loss: both Q heads
regress the Monte-Carlo discounted return of the demonstration, computed with the same penalized reward RL
optimises, so fine-tuning starts from a critic that already ranks on-road driving above leaving the road.
The encoder learns from the actor loss, and from the critic's only at `critic_weight` (returns are in the
hundreds and would swamp the actor), with random-shift augmentation.
Validation is split by episode.
"""
from __future__ import annotations

import argparse
import copy
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter
from tqdm import trange

import demos
import distributed
from agent import Agent
from distributed import DistContext
from env import FINE_TUNING_STALL_LIMIT, EnvConfig
from errors import UserError
from evaluate import validate_on_tracks
from networks import ACTION_NAMES, ENCODERS, ActorCritic, Encoder, ModelConfig, polyak_update
from replay_buffer import MAX_BATCH_SIZE, FrameReplay, demo_replay
from runs import (checkpoint_path, claim_run, load_checkpoint, load_config, log_hparams, new_run_id, rng_from_state,
                  rng_state, run_dir, save_checkpoint, save_config)

STD_LOSS_WEIGHT = 0.01  # the spread fit is a side task; keep it from steering the encoder


@dataclass
class BCConfig:
    dataset: str = "expert"
    max_episodes: int = 0  # use only the first N episodes (0 = all)
    epochs: int = 100  # validation loss still falls at 25; 100 doubled a DART start's laps (README)
    batch_size: int = 128
    lr: float = 3e-4
    val_fraction: float = 0.1
    gamma: float = 0.99
    critic_weight: float = 0.0  # share of the critic's gradient reaching the encoder
    augment_pad: int = 4
    # The policy saved, validated and fine-tuned is a running average of the end-of-epoch weights (each epoch
    # the older ones decay by this factor; 0 = the last epoch's weights alone). Single epochs' weights drive very
    # differently on unseen tracks (one BC run's last epoch: 716.5 on 50 held-out tracks; the average of the
    # same training: 924.8; bench/finetune.py).
    weight_average: float = 0.9
    eval_every: int = 10  # epochs between held-out evaluations (0 = never)
    # Every epoch is checkpointed (resume needs the last), but only every Nth epoch's file is kept beside the
    # best and the last: a checkpoint is 8-22 MB, 100 of them were 0.75-2.2 GB per run.
    checkpoint_every: int = 10
    eval_episodes: int = 4
    eval_video: bool = True  # each evaluation also puts a clip of one episode in TensorBoard
    seed: int = 0
    skip_bad: bool = False
    device: str = "cpu"


def auto_bool(text: str) -> bool | None:
    """argparse type of the auto|0|1 flags (train_bc's and train_rl's): None for auto, decided from the data."""
    if text not in ("auto", "0", "1"):
        raise argparse.ArgumentTypeError(f"choose from auto, 0, 1 (got {text!r})")
    return None if text == "auto" else text == "1"


def auto_or(kind: type, words: str):
    """argparse type of the auto|value flags (--stall_limit, --spread_limit): None for auto (the command decides
    from the data or the loss), else `kind(text)`; `words` names the value in the error."""
    def parse(text: str):
        if text == "auto":
            return None
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"choose auto or {words} (got {text!r})") from None
    return parse


def add_env_and_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Observation and network flags shared by train_bc and train_rl (from scratch)."""
    env, model = EnvConfig(), ModelConfig()
    parser.add_argument("--action_repeat", type=int, default=env.action_repeat,
                        help="physics frames per agent decision")
    parser.add_argument("--frame_stack", type=int, default=env.frame_stack, help="frames per observation")
    parser.add_argument("--color", action="store_true", help="RGB observations instead of grayscale")
    parser.add_argument("--obs_size", type=int, default=env.obs_size, help="observation side, a divisor of 96")
    parser.add_argument("--offtrack_penalty", type=float, default=None,
                        help=f"reward penalty per off-track frame (default {env.offtrack_penalty}; "
                             "fine-tuning: the BC run's)")
    parser.add_argument("--offtrack_limit", type=int, default=None,
                        help="consecutive off-track frames ending an episode, 0 = never "
                             f"(default {env.offtrack_limit}; fine-tuning: the BC run's)")
    parser.add_argument("--stall_limit", type=auto_or(int, "an integer"), default=None, metavar="{auto,N}",
                        help="frames without a newly visited tile ending a training episode at the cost of leaving "
                             f"the road, 0 = never (auto, the default: {env.stall_limit}; fine-tuning: the BC run's if "
                             f"it set one, else {FINE_TUNING_STALL_LIMIT})")
    parser.add_argument("--stall_penalty", type=float, default=None,
                        help="what a stall costs the training reward (default: the cost of leaving the road, "
                             "--offtrack_penalty x --offtrack_limit; fine-tuning: the BC run's)")
    parser.add_argument("--encoder", choices=sorted(ENCODERS), default=model.encoder, help="CNN encoder")
    parser.add_argument("--feature_dim", type=int, default=model.feature_dim, help="encoder output size")
    parser.add_argument("--hidden_dim", type=int, default=model.hidden_dim, help="actor/critic MLP width")
    parser.add_argument("--num_qs", type=int, default=model.num_qs, help="critic ensemble size")
    parser.add_argument("--critic_layer_norm", type=int, choices=(0, 1), default=1,
                        help="1: LayerNorm before each hidden ReLU of the critics (as in RLPD), which bounds how far "
                             "their values extrapolate to actions the data lacks; fine-tuning keeps the BC run's")


def override_reward(env_config: EnvConfig, args: argparse.Namespace) -> EnvConfig:
    """The off-track penalty and limit and the stall limit and penalty given on the command line, else those of
    `env_config`."""
    for name in ("offtrack_penalty", "offtrack_limit", "stall_limit", "stall_penalty"):
        if getattr(args, name) is not None:
            setattr(env_config, name, getattr(args, name))
    try:
        env_config.validate()
    except ValueError as error:
        raise UserError(f"--{error}") from None
    return env_config


def env_and_model_configs(args: argparse.Namespace) -> tuple[EnvConfig, ModelConfig]:
    env_config = override_reward(EnvConfig(action_repeat=args.action_repeat, frame_stack=args.frame_stack,
                                           grayscale=not args.color, obs_size=args.obs_size), args)
    model_config = ModelConfig(encoder=args.encoder, feature_dim=args.feature_dim, hidden_dim=args.hidden_dim,
                               num_qs=args.num_qs, critic_layer_norm=bool(args.critic_layer_norm))
    if min(model_config.feature_dim, model_config.hidden_dim, model_config.num_qs) < 1:
        raise UserError("--feature_dim, --hidden_dim and --num_qs must be >= 1")
    try:
        Encoder(env_config.obs_shape, model_config)
    except RuntimeError:
        raise UserError(f"--encoder {args.encoder} does not fit --obs_size {args.obs_size}; "
                        "use a larger --obs_size") from None
    return env_config, model_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c = BCConfig()
    parser.add_argument("--dataset", default=c.dataset,
                        help="demonstrations: data/<dataset>/, a directory path, or minari:<id>")
    parser.add_argument("--run_id", default=None, help="name of the new run (default: bc_<timestamp>)")
    parser.add_argument("--resume_run_id", default=None,
                        help="continue this BC run (its settings; --epochs may extend it)")
    parser.add_argument("--max_episodes", type=int, default=c.max_episodes,
                        help="use only the first N episodes (0 = all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"passes over the training transitions (default {c.epochs}; "
                             "with --resume_run_id: the run's own, or more to extend it)")
    parser.add_argument("--batch_size", type=int, default=c.batch_size, help="transitions per update")
    parser.add_argument("--lr", type=float, default=c.lr, help="Adam learning rate")
    parser.add_argument("--val_fraction", type=float, default=c.val_fraction,
                        help="fraction of episodes held out for validation")
    parser.add_argument("--gamma", type=float, default=c.gamma, help="discount of the critics' Monte-Carlo targets")
    parser.add_argument("--critic_weight", type=float, default=c.critic_weight,
                        help="share of the critic loss gradient that trains the shared encoder "
                             "(0 = actor-only encoder)")
    parser.add_argument("--augment_pad", type=int, default=c.augment_pad,
                        help="random-shift augmentation in pixels (0 = off)")
    parser.add_argument("--weight_average", type=float, default=c.weight_average,
                        help="the run's policy is this running average of its end-of-epoch weights: each epoch the "
                             "older ones decay by this factor (about 1/(1-x) epochs averaged; "
                             "0 = the last epoch's weights)")
    parser.add_argument("--eval_every", type=int, default=c.eval_every,
                        help="epochs between held-out evaluations (0 = never)")
    parser.add_argument("--checkpoint_every", type=int, default=c.checkpoint_every,
                        help="keep checkpoints/epoch_N.pt of every Nth epoch "
                             "(the last epoch's and best.pt are always kept)")
    parser.add_argument("--eval_episodes", type=int, default=c.eval_episodes, help="tracks per evaluation")
    parser.add_argument("--eval_video", type=int, choices=(0, 1), default=int(c.eval_video),
                        help="1: each evaluation also shows the first 8 s of one validation episode as a clip in "
                             "TensorBoard's Images tab (about 1 MB each)")
    parser.add_argument("--dashboard_inputs", type=auto_bool, default=None, metavar="{auto,0,1}",
                        help="1: the actor and critics also see the dashboard strip of each frame (speed, ABS, "
                             "steering, gyroscope bars) as pixels beside the encoder features; auto: 1 unless the "
                             "demonstrations show no recovery "
                             "(clean laps: their clone drove far worse with it, README)")
    parser.add_argument("--seed", type=int, default=c.seed, help="random seed")
    parser.add_argument("--skip_bad", action="store_true", help="skip unreadable demo files instead of stopping")
    parser.add_argument("--device", default=c.device, help="torch device: cpu, cuda, auto")
    add_env_and_model_arguments(parser)


def split_episodes(episodes: list, val_fraction: float, seed: int) -> tuple[list, list]:
    """Validation split by whole episodes (never frames of one lap on both sides)."""
    order = np.random.default_rng(seed).permutation(len(episodes))
    n_val = int(round(val_fraction * len(episodes))) if len(episodes) > 1 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(episodes) > 1 else 0), len(episodes) - 1)
    return [episodes[i] for i in order[n_val:]], [episodes[i] for i in order[:n_val]]


def bc_losses(model: ActorCritic, nets, batch: dict, device: torch.device, augment_pad: int,
              critic_weight: float) -> dict[str, torch.Tensor]:
    """Actor MSE, spread likelihood and critic Monte-Carlo regression; `nets` are the (maybe DDP) parts. Also
    returns the policy's (detached) pre-tanh mean and log std, which `validate` reports on."""
    obs = torch.as_tensor(batch["obs"], device=device)
    action = torch.as_tensor(batch["action"], device=device)
    target = torch.as_tensor(batch["mc_return"], device=device) * model.reward_scale
    features = nets.encoder(obs, augment_pad)
    mean, log_std = nets.actor(features)
    actor_loss = F.mse_loss(model.actor.squash(mean), action)
    # Calibrate the policy's spread: Gaussian likelihood of the expert's pre-tanh action around the
    # (detached) mean, so SAC later explores about as widely as the imitation is uncertain.
    unit = ((action - model.actor.action_bias) / model.actor.action_scale).clamp(-0.99, 0.99)
    std_loss = (((torch.atanh(unit) - mean.detach()) / log_std.exp()) ** 2 / 2 + log_std).sum(-1).mean()
    # The critic heads learn at full rate; the encoder only gets `critic_weight` of their gradient
    # (value + critic_weight * (value - value.detach()) has that gradient and that value).
    critic_features = features.detach() + critic_weight * (features - features.detach())
    q = nets.critic(critic_features, action)  # (num_qs, B): every member regresses the same returns
    critic_loss = ((q - target) ** 2).mean(1).sum()
    return {"actor_loss": actor_loss, "std_loss": std_loss, "critic_loss": critic_loss, "q_mean": q.detach().mean(),
            "mean": mean.detach(), "log_std": log_std.detach()}


def run(args: argparse.Namespace) -> int:
    with distributed.process_group(args.device) as ctx:
        if args.resume_run_id:
            path = run_dir(args.resume_run_id)
            saved = load_config(path)
            if saved.get("kind") != "bc":
                raise UserError(f"run id {args.resume_run_id!r} is a {saved.get('kind')} run; "
                                "--resume_run_id of train_bc needs a BC run")
            config = BCConfig(**{**saved["train"],
                                 "epochs": saved["train"]["epochs"] if args.epochs is None else args.epochs})
            env_config, model_config = EnvConfig(**saved["env"]), ModelConfig(**saved["model"])
        else:
            config = BCConfig(**{k: getattr(args, k) for k in asdict(BCConfig()) if k != "epochs"})
            config.epochs = config.epochs if args.epochs is None else args.epochs
            config.eval_video = bool(config.eval_video)
            env_config, model_config = env_and_model_configs(args)
            model_config.dashboard_inputs = args.dashboard_inputs  # None (auto) until the data is loaded
            run_id = distributed.broadcast_object(args.run_id or new_run_id("bc"), ctx)
            path = run_dir(run_id, must_exist=False)
            if (path / "config.json").exists():
                raise UserError(f"--run_id {run_id}: {path} already exists; pick another id or --resume_run_id it")
        for name in ("epochs", "batch_size", "eval_episodes", "checkpoint_every"):
            if getattr(config, name) < 1:
                raise UserError(f"--{name} must be >= 1, got {getattr(config, name)}")
        if config.batch_size > MAX_BATCH_SIZE:
            raise UserError(f"--batch_size must be <= {MAX_BATCH_SIZE}, got {config.batch_size}")
        if config.max_episodes < 0:
            raise UserError(f"--max_episodes must be >= 0, got {config.max_episodes}")
        if not 0 <= config.val_fraction < 1:
            raise UserError(f"--val_fraction must be in [0, 1), got {config.val_fraction}")
        # Written as `not (valid)` so that nan, which fails every comparison, is refused too.
        if not 0 < config.lr < math.inf:
            raise UserError(f"--lr must be a finite number > 0, got {config.lr}")
        if not 0 < config.gamma <= 1:
            raise UserError(f"--gamma must be in (0, 1], got {config.gamma}")
        if not 0 <= config.critic_weight < math.inf:
            raise UserError(f"--critic_weight must be a finite number >= 0, got {config.critic_weight}")
        if not 0 <= config.weight_average < 1:
            raise UserError(f"--weight_average must be in [0, 1), got {config.weight_average}")
        if config.augment_pad < 0:
            raise UserError(f"--augment_pad must be >= 0, got {config.augment_pad}")
        distributed.barrier(ctx)  # every rank has checked the path before rank 0 creates it
        with claim_run(path, new=not args.resume_run_id) if ctx.is_main else nullcontext():
            train_bc(path, config, env_config, model_config, ctx)
    return 0


def train_bc(path: Path, config: BCConfig, env_config: EnvConfig, model_config: ModelConfig,
             ctx: DistContext | None = None) -> ActorCritic:
    """Train on the dataset; under torchrun every rank samples its own batches and DDP averages gradients."""
    ctx = ctx or DistContext()
    device, main_rank = ctx.device, ctx.is_main
    rank_seed = config.seed + 1000 * ctx.rank
    torch.manual_seed(config.seed)  # identical initial weights (DDP also broadcasts rank 0's)
    rng = np.random.default_rng(rank_seed)
    episodes = demos.load_named_dataset(config.dataset, skip_bad=config.skip_bad)
    if config.max_episodes:
        episodes = episodes[: config.max_episodes]
    no_recoveries = demos.lacks_recoveries(episodes)
    if main_rank and no_recoveries:
        demos.warn_no_recoveries(episodes)
    if model_config.dashboard_inputs is None:  # --dashboard_inputs auto
        model_config = replace(model_config, dashboard_inputs=not no_recoveries)
        if main_rank:
            print("dashboard inputs: "
                  f"{'on' if model_config.dashboard_inputs else 'off (no recovery in the demonstrations)'}")
    train_eps, val_eps = split_episodes(episodes, config.val_fraction, config.seed)
    train_data = demo_replay(train_eps, env_config, config.gamma)
    val_data = demo_replay(val_eps, env_config, config.gamma) if val_eps else None
    n_train, n_val = len(train_eps), len(val_eps)
    del episodes, train_eps, val_eps  # raw 96x96x3 frames are no longer needed

    model = ActorCritic(env_config.obs_shape, model_config).to(device)
    optimizer = torch.optim.Adam([*model.encoder.parameters(), *model.actor.parameters(), *model.critic.parameters()],
                                 lr=config.lr, fused=True)
    averaged = copy.deepcopy(model)  # what the run saves and drives (BCConfig.weight_average)
    start_epoch, best_val = 0, math.inf
    nets = distributed.wrap(model, ctx)
    torch.manual_seed(rank_seed)  # ranks augment differently
    if (path / "checkpoints" / "latest").exists():  # resuming: weights, optimiser, counters, random streams
        state = load_checkpoint(checkpoint_path(path), device)
        model.load_state_dict(state.get("trained_model", state["model"]))  # runs before weight averaging saved one
        averaged.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, best_val = state["epoch"], state["best_val"]
        if main_rank:
            rng = rng_from_state(state["numpy_rng"])
            torch.set_rng_state(state["torch_rng"])
        else:
            rng = np.random.default_rng([rank_seed, start_epoch])
    writer = None
    if main_rank:
        save_config(path, {"kind": "bc", "world_size": ctx.world_size, "train": asdict(config),
                           "env": asdict(env_config), "model": asdict(model_config)})
        print(f"run {path.name}: {n_train} train / {n_val} val episodes, {len(train_data)} transitions, "
              f"world size {ctx.world_size} on {device} (effective batch {config.batch_size * ctx.world_size})")
        print(f"TensorBoard: tensorboard --logdir {path.parent}")
        writer = SummaryWriter(str(path))
    updates_per_epoch = max(1, len(train_data) // (config.batch_size * ctx.world_size))
    agent = Agent(averaged, env_config, device)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            model.train()
            sums: dict[str, float] = {}
            started = time.time()
            bar = trange(updates_per_epoch, desc=f"epoch {epoch}/{config.epochs}", leave=False, disable=not main_rank)
            for _ in bar:
                batch = train_data.sample(config.batch_size, rng, config.gamma)
                losses = bc_losses(model, nets, batch, device, config.augment_pad, config.critic_weight)
                loss = losses["actor_loss"] + STD_LOSS_WEIGHT * losses["std_loss"] + losses["critic_loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                for k in ("actor_loss", "std_loss", "critic_loss", "q_mean"):  # the scalars
                    sums[k] = sums.get(k, 0.0) + losses[k].item()
                bar.set_postfix(actor=f"{losses['actor_loss'].item():.4f}")
            polyak_update(averaged, model, 1.0 if epoch == 1 else 1.0 - config.weight_average)
            if main_rank:
                best_val = end_of_epoch(path, writer, averaged, model, optimizer, agent, val_data, config, epoch,
                                        updates_per_epoch, sums, time.time() - started, best_val, rng)
            distributed.barrier(ctx)
        if writer:
            log_hparams(writer)
    except KeyboardInterrupt:
        if main_rank:
            print(f"interrupted: checkpoints up to epoch {epoch - 1} are in {path / 'checkpoints'}")
        raise
    finally:
        if writer:
            writer.close()
    if main_rank:
        print(f"done: test with  python main.py test --resume_run_id {path.name}")
    return averaged


def end_of_epoch(path, writer, model, trained_model, optimizer, agent, val_data, config: BCConfig, epoch: int,
                 updates: int, sums: dict, seconds: float, best_val: float, rng) -> float:
    """Rank 0: log the epoch, validate, checkpoint (each epoch + best), evaluate on held-out tracks; `model` is
    the weight average (what is saved as the run's policy), `trained_model` the weights the optimiser moves.
    Returns the best validation actor loss so far."""
    step = epoch * updates
    for k, v in sums.items():
        writer.add_scalar(f"train/{k}", v / updates, step)
    writer.add_scalar("train/updates_per_s", updates / seconds, step)
    line = f"epoch {epoch}: actor {sums['actor_loss'] / updates:.4f} critic {sums['critic_loss'] / updates:.2f}"
    val_actor = sums["actor_loss"] / updates
    if val_data is not None:
        val = validate(model, val_data, config, agent.device)
        for k, v in val.items():
            writer.add_scalar(f"val/{k}", v, step)
        val_actor = val["actor_loss"]
        line += f" | val actor {val_actor:.4f} critic {val['critic_loss']:.2f}"
    model.sync_targets(1.0)  # RL starts from target critics equal to the pre-trained ones
    state = {"model": model.state_dict(), "trained_model": trained_model.state_dict(),
             "optimizer": optimizer.state_dict(), "epoch": epoch,
             "best_val": min(best_val, val_actor), "numpy_rng": rng_state(rng), "torch_rng": torch.get_rng_state()}
    save_checkpoint(path, f"epoch_{epoch}", state, copies=("best",) if val_actor < best_val else ())
    if (epoch - 1) % config.checkpoint_every:  # the previous epoch's file, now that this one is on disk
        (path / "checkpoints" / f"epoch_{epoch - 1}.pt").unlink(missing_ok=True)
    if config.eval_every and epoch % config.eval_every == 0:
        summary = validate_on_tracks(agent, config.eval_episodes, 2, writer, step, clip=config.eval_video)
        line += f" | eval raw {summary['raw']['mean']:.0f} penalized {summary['penalized']['mean']:.0f}"
    print(line)
    return min(best_val, val_actor)


@torch.no_grad()
def validate(model: ActorCritic, data: FrameReplay, config: BCConfig, device: torch.device, batches: int = 8
             ) -> dict[str, float]:
    """Losses on held-out episodes (fixed sample, no augmentation), and per action the policy's spread and how
    far its average action E[tanh(u)] (what fine-tuning drives) lies from tanh(mean) (what BC drives)."""
    model.eval()
    rng = np.random.default_rng(12345)
    metrics: dict[str, float] = {}

    def add(name: str, value: torch.Tensor) -> None:
        metrics[name] = metrics.get(name, 0.0) + value.item() / batches

    for _ in range(batches):
        batch = data.sample(config.batch_size, rng, config.gamma)
        losses = bc_losses(model, model, batch, device, 0, config.critic_weight)
        add("actor_loss", losses["actor_loss"])
        add("critic_loss", losses["critic_loss"])
        mean, log_std = losses["mean"], losses["log_std"]
        offset = model.actor.expected_from(mean, log_std) - model.actor.squash(mean)
        for i, name in enumerate(ACTION_NAMES):
            add(f"spread_{name}", log_std[:, i].exp().mean())
            add(f"average_minus_mean_{name}", offset[:, i].mean())
    return metrics
