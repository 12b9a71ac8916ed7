"""`train_rl`: SAC fine-tuning of a BC run with the BC-SAC actor objective, or SAC from scratch.

One algorithm, top to bottom: flags -> config, vector environments, replay (demonstrations + online
data sampled at `demo_ratio`), the learner (`update_critic`, `update_actor`, `update`), the loop with
evaluation, TensorBoard and checkpoints.

Actor loss (Lu et al. 2022, "Imitation Is Not Enough"):
    E[alpha * log pi(a|s) - min Q(s, a)] / |Q|  +  bc_weight * E_demo[(mu(s) - a_expert)^2]
|Q| is the batch's mean absolute Q (detached, at least 1), as in TD3+BC, so `bc_weight` does not depend
on the reward scale. bc_weight = 0 is plain SAC fine-tuning. The critics learn from demo and online data with
n-step TD targets on the penalized reward; the encoder is trained by the critic loss only (the actor
reads detached features), and the next observation is encoded once by the target encoder.

Resuming (`--resume_run_id` of an RL run) restores weights, optimisers, temperature, step counters and
random-number states exactly; the replay buffer is not saved (it would be GBs): it is rebuilt from the
run's demonstrations plus fresh collection, and updates restart once it holds `learning_starts` steps.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

import demos
import distributed
from agent import Agent
from bc import add_env_and_model_arguments, env_and_model_configs, override_reward
from distributed import DistContext
from env import TRAIN_SEED_LIMIT, EnvConfig, make_vec_env
from errors import UserError
from evaluate import validate_on_tracks
from networks import ActorCritic, ModelConfig, random_shift
from replay_buffer import FrameReplay, demo_replay, sample_mixed
from runs import checkpoint_path, load_checkpoint, load_config, new_run_id, run_dir, save_checkpoint, save_config


SCRATCH_TARGET_ENTROPY = -3.0  # -|A|, SAC's usual target


@dataclass
class RLConfig:
    total_steps: int = 30_000  # agent steps summed over environments and ranks (each = action_repeat frames)
    learning_starts: int = 1_000  # steps collected before the first update
    batch_size: int = 256
    num_envs: int = 2
    updates_per_step: float = 0.5  # gradient updates per collected step (per rank)
    eval_every: int = 5_000  # steps between held-out evaluations (0 = never)
    eval_episodes: int = 6
    checkpoint_every: int = 5_000
    bc_weight: float = 10.0  # lambda of the BC term (0 = plain SAC); 1.0 drifted down, 0 collapsed (README)
    bc_decay_steps: int = 0  # linearly decay lambda to 0 over this many steps (0 = constant)
    demo_ratio: float = 0.25  # share of each batch drawn from demonstrations
    critic_warmup_steps: int = 2_000  # steps (after learning_starts) training critics only, actor frozen
    gamma: float = 0.99
    n_step: int = 3
    tau: float = 0.01  # Polyak rate of the target encoder and critics
    actor_lr: float = 1e-4  # slower than the critic: the BC actor should move only where the critic is sure
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_temperature: float = 0.05
    target_entropy: float | None = None  # None: -|A| from scratch, the BC policy's own entropy when fine-tuning
    train_encoder: bool | None = None  # None: trained from scratch, frozen when fine-tuning a BC run
    augment_pad: int = 4
    bf16: bool = False  # bfloat16 autocast of the forward passes (for CUDA; runs on CPU too, usually slower)
    buffer_size: int = 100_000  # online transitions kept (frames stored once, uint8)
    seed: int = 0
    device: str = "cpu"
    bc_run: str = ""  # the BC run this fine-tunes ('' = SAC from scratch)
    dataset: str = ""  # demonstrations kept in the replay buffer ('' = none)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    c = RLConfig()
    parser.add_argument("--resume_run_id", default=None,
                        help="a BC run to fine-tune, or an RL run to continue exactly; omit for SAC from scratch")
    parser.add_argument("--run_id", default=None, help="name of the new run (default: rl_<timestamp>)")
    parser.add_argument("--total_steps", type=int, default=c.total_steps, help="environment steps (agent decisions, all envs)")
    parser.add_argument("--learning_starts", type=int, default=c.learning_starts, help="steps collected before updates begin")
    parser.add_argument("--batch_size", type=int, default=c.batch_size, help="transitions per update")
    parser.add_argument("--num_envs", type=int, default=c.num_envs, help="parallel environment processes")
    parser.add_argument("--updates_per_step", type=float, default=c.updates_per_step, help="gradient updates per environment step")
    parser.add_argument("--eval_every", type=int, default=c.eval_every, help="steps between held-out evaluations (0 = none)")
    parser.add_argument("--eval_episodes", type=int, default=c.eval_episodes, help="tracks per periodic evaluation")
    parser.add_argument("--checkpoint_every", type=int, default=c.checkpoint_every, help="steps between checkpoints")
    parser.add_argument("--bc_weight", type=float, default=c.bc_weight, help="lambda of the BC loss in the actor objective (0 = plain SAC)")
    parser.add_argument("--bc_decay_steps", type=int, default=c.bc_decay_steps, help="linearly decay lambda to 0 over this many steps (0 = constant)")
    parser.add_argument("--demo_ratio", type=float, default=c.demo_ratio, help="share of each batch from demonstrations")
    parser.add_argument("--critic_warmup_steps", type=int, default=c.critic_warmup_steps, help="steps training the critics only, actor frozen")
    parser.add_argument("--gamma", type=float, default=c.gamma, help="discount")
    parser.add_argument("--n_step", type=int, default=c.n_step, help="n-step TD targets")
    parser.add_argument("--tau", type=float, default=c.tau, help="Polyak rate of the targets")
    parser.add_argument("--actor_lr", type=float, default=c.actor_lr, help="actor learning rate")
    parser.add_argument("--critic_lr", type=float, default=c.critic_lr, help="critic (and encoder) learning rate")
    parser.add_argument("--init_temperature", type=float, default=c.init_temperature, help="initial entropy temperature alpha")
    parser.add_argument("--target_entropy", type=float, default=c.target_entropy,
                        help="entropy target of the temperature (default: -3 from scratch; the BC policy's entropy on its demos when fine-tuning)")
    parser.add_argument("--augment_pad", type=int, default=c.augment_pad, help="random-shift augmentation in pixels (0 = off)")
    parser.add_argument("--train_encoder", type=int, choices=(0, 1), default=None,
                        help="1: the critic loss trains the encoder; 0: keep it fixed (default: 1 from scratch, 0 when "
                             "fine-tuning, since critic updates drift the BC features away from the actor)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast of forward passes (for CUDA GPUs)")
    parser.add_argument("--buffer_size", type=int, default=c.buffer_size, help="online transitions kept")
    parser.add_argument("--dataset", default=None, help="demonstrations to keep in the buffer (default: the BC run's; none from scratch)")
    parser.add_argument("--seed", type=int, default=c.seed, help="random seed")
    parser.add_argument("--device", default=c.device, help="torch device: cpu, cuda, auto")
    add_env_and_model_arguments(parser)


class SACLearner:
    """The networks, their optimisers and the temperature; `update` does one gradient step of each.

    `nets` are the trained parts as called during updates: DDP wrappers under torchrun (gradients are
    averaged over ranks), the plain modules otherwise.
    """

    def __init__(self, model: ActorCritic, config: RLConfig, device: torch.device, ctx: DistContext | None = None):
        self.model, self.config, self.device = model, config, device
        self.ctx = ctx or DistContext(device=device)
        if config.train_encoder is False:  # keep the BC features the actor was trained on (see RLConfig.train_encoder)
            model.encoder.requires_grad_(False)
        trained = [p for p in [*model.encoder.parameters(), *model.critic.parameters()] if p.requires_grad]
        self.critic_optimizer = torch.optim.Adam(trained, lr=config.critic_lr)
        self.nets = distributed.wrap(model, self.ctx)
        self.actor_optimizer = torch.optim.Adam(model.actor.parameters(), lr=config.actor_lr)
        self.target_entropy = SCRATCH_TARGET_ENTROPY if config.target_entropy is None else config.target_entropy
        self.log_alpha = torch.tensor(np.log(config.init_temperature), device=device, requires_grad=True)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)
        self.updates = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    def update_critic(self, obs, action, reward, discount, next_obs) -> tuple[dict, torch.Tensor]:
        """Clipped double-Q soft TD step; returns metrics and the (encoder-trained) features of obs."""
        model, nets = self.model, self.nets
        with torch.no_grad():
            next_features = model.target_encoder(next_obs)
            next_action, next_log_prob = model.actor.sample_from(*nets.actor(next_features))
            target_q1, target_q2 = model.target_critic(next_features, next_action)
            target = reward + discount * (torch.min(target_q1, target_q2) - self.alpha * next_log_prob)
        features = nets.encoder(obs)
        q1, q2 = nets.critic(features, action)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_optimizer.step()
        return {"critic_loss": loss.item(), "q": q1.mean().item(), "target_q": target.mean().item()}, features.detach()

    def update_actor(self, features, demo_action, is_demo, bc_weight: float) -> dict:
        """SAC actor loss / |Q| + bc_weight * BC loss on the demo part; then the temperature step."""
        model, nets = self.model, self.nets
        mean, log_std = nets.actor(features)  # one forward serves both terms (DDP wants one per backward)
        action, log_prob = model.actor.sample_from(mean, log_std)
        q1, q2 = nets.critic(features, action)
        q = torch.min(q1, q2)
        sac_loss = (self.alpha * log_prob - q).mean()
        bc_loss = torch.zeros((), device=self.device)
        if bc_weight > 0 and is_demo.any():
            bc_loss = F.mse_loss(model.actor.squash(mean[is_demo]), demo_action[is_demo])
        # Dividing the SAC term by |Q| (at least 1) makes bc_weight independent of the reward scale.
        loss = sac_loss / q.abs().mean().detach().clamp(min=1.0) + bc_weight * bc_loss
        self.actor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.actor_optimizer.step()
        # Critic parameters got gradients from this loss too; the critic step clears them before use.
        alpha_loss = -(self.log_alpha * (log_prob.detach() + self.target_entropy)).mean()
        self.alpha_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        distributed.average(self.log_alpha.grad, self.ctx)  # the temperature is not a DDP module
        self.alpha_optimizer.step()
        return {"actor_loss": sac_loss.item(), "bc_loss": bc_loss.item(), "entropy": -log_prob.mean().item(),
                "alpha": self.alpha.item(), "alpha_loss": alpha_loss.item()}

    def update(self, batch: dict, bc_weight: float, train_actor: bool = True) -> dict:
        """One learner step on a numpy batch from `sample_mixed`."""
        as_tensor = lambda key: torch.as_tensor(batch[key], device=self.device)
        pad = self.config.augment_pad
        obs, next_obs = random_shift(as_tensor("obs"), pad), random_shift(as_tensor("next_obs"), pad)
        action = as_tensor("action")
        reward = as_tensor("reward") * self.model.reward_scale
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            metrics, features = self.update_critic(obs, action, reward, as_tensor("discount"), next_obs)
            if train_actor:
                metrics.update(self.update_actor(features, action, as_tensor("is_demo"), bc_weight))
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


def bc_weight_at(config: RLConfig, step: int) -> float:
    if config.bc_decay_steps <= 0:
        return config.bc_weight
    return config.bc_weight * max(0.0, 1.0 - step / config.bc_decay_steps)


def run(args: argparse.Namespace) -> int:
    """Resolve what to start from (scratch, a BC run, or an RL run to continue), then train."""
    ctx = distributed.setup(args.device)
    try:
        path, config, env_config, model_config, init_model, resume_state = resolve_run(args, ctx)
        train_rl(path, config, env_config, model_config, ctx, init_model=init_model, resume_state=resume_state)
    finally:
        distributed.cleanup(ctx)
    return 0


def resolve_run(args: argparse.Namespace, ctx: DistContext):
    """Settings and starting weights of this run; rank 0 writes config.json (all ranks agree on the path)."""
    resume_state = init_model = None
    if args.resume_run_id and load_config(run_dir(args.resume_run_id)).get("kind") == "rl":
        path = run_dir(args.resume_run_id)
        saved = load_config(path)
        config = RLConfig(**{**saved["train"], "total_steps": max(args.total_steps, saved["train"]["total_steps"])})
        env_config, model_config = EnvConfig(**saved["env"]), ModelConfig(**saved["model"])
        resume_state = load_checkpoint(checkpoint_path(path), "cpu")
    else:
        config = RLConfig(**{k: getattr(args, k) for k in asdict(RLConfig()) if hasattr(args, k) and k != "dataset"})
        if args.resume_run_id:  # fine-tune a BC run: its observation settings, networks and demonstrations
            bc_path = run_dir(args.resume_run_id)
            saved = load_config(bc_path)
            if saved.get("kind") != "bc":
                raise UserError(f"--resume_run_id {args.resume_run_id}: not a BC or RL run (kind {saved.get('kind')!r})")
            env_config = override_reward(EnvConfig(**saved["env"]), args)
            model_config = ModelConfig(**saved["model"])
            init_model = load_checkpoint(checkpoint_path(bc_path), "cpu")["model"]
            config = replace(config, bc_run=bc_path.name, dataset=args.dataset or saved["train"]["dataset"])
            config.train_encoder = bool(config.train_encoder) if config.train_encoder is not None else False
        else:
            env_config, model_config = env_and_model_configs(args)
            config = replace(config, dataset=args.dataset or "", bc_weight=args.bc_weight if args.dataset else 0.0)
            config.train_encoder = bool(config.train_encoder) if config.train_encoder is not None else True
        run_id = distributed.broadcast_object(args.run_id or new_run_id("rl"), ctx)
        path = run_dir(run_id, must_exist=False)
        if (path / "config.json").exists():
            raise UserError(f"--run_id {run_id}: {path} already exists; pick another id or --resume_run_id it")
    validate_config(config)
    distributed.barrier(ctx)  # every rank has checked the path before rank 0 creates it
    if ctx.is_main:
        save_config(path, {"kind": "rl", "world_size": ctx.world_size, "train": asdict(config),
                           "env": asdict(env_config), "model": asdict(model_config)})
    return path, config, env_config, model_config, init_model, resume_state


def validate_config(config: RLConfig) -> None:
    for name in ("total_steps", "batch_size", "num_envs", "eval_episodes", "checkpoint_every", "buffer_size", "n_step"):
        if getattr(config, name) < 1:
            raise UserError(f"--{name} must be >= 1, got {getattr(config, name)}")
    for name in ("learning_starts", "eval_every", "bc_weight", "bc_decay_steps", "critic_warmup_steps", "updates_per_step"):
        if getattr(config, name) < 0:
            raise UserError(f"--{name} must be >= 0, got {getattr(config, name)}")
    if not 0 <= config.demo_ratio <= 1:
        raise UserError(f"--demo_ratio must be in [0, 1], got {config.demo_ratio}")
    if not 0 < config.gamma <= 1 or not 0 < config.tau <= 1:
        raise UserError("--gamma and --tau must be in (0, 1]")
    if config.init_temperature <= 0:
        raise UserError(f"--init_temperature must be > 0, got {config.init_temperature}")


class EpisodeTracker:
    """Raw and penalized returns of the training episodes, per environment."""

    def __init__(self, num_envs: int):
        self.raw, self.penalized = np.zeros(num_envs), np.zeros(num_envs)

    def add(self, reward: np.ndarray, info: dict, done: np.ndarray) -> list[tuple[float, float]]:
        # Same-step autoreset: a finished env's step info is in info['final_info'], its info is the reset's.
        raw = np.where(info.get("_raw_reward", False), info.get("raw_reward", 0.0), 0.0)
        if done.any():
            raw = np.where(done, info["final_info"]["raw_reward"], raw)
        self.raw += raw
        self.penalized += reward
        finished = [(self.raw[i], self.penalized[i]) for i in np.flatnonzero(done)]
        self.raw[done], self.penalized[done] = 0.0, 0.0
        return finished


def record_step(online: FrameReplay, actions, reward, next_obs, terminated, truncated, info) -> np.ndarray:
    """Store one vector-env step (same-step autoreset): the final frame of a finished episode is in
    info['final_obs'] and the returned observation already starts the next episode."""
    channels = online.frames.shape[2]
    done = terminated | truncated
    for i in range(len(actions)):
        final = info["final_obs"][i] if done[i] else next_obs[i]
        online.add(i, actions[i], reward[i], final[-channels:], bool(terminated[i]))
        if done[i]:
            online.start(i, next_obs[i, -channels:])
    return done


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
    model = ActorCritic(env_config.obs_shape, model_config).to(device)
    if init_model is not None:
        model.load_state_dict(init_model)
        model.sync_targets(1.0)
    demo_buffer = None
    if config.dataset:
        demo_buffer = demo_replay(demos.load_dataset(demos.dataset_dir(config.dataset), skip_bad=True), env_config, config.gamma)
    step = 0
    if config.target_entropy is None:
        config.target_entropy = default_target_entropy(model, demo_buffer if init_model is not None else None, device)
        if main_rank:
            save_config(path, {**load_config(path), "train": asdict(config)})
    learner = SACLearner(model, config, device, ctx)
    if resume_state is not None:
        learner.load_state_dict(resume_state)
        step = resume_state["step"]
        if ctx.rank == 0:  # exact continuation of the saved random streams (rank 0's; others reseed)
            rng = resume_state["numpy_rng"]
            torch.set_rng_state(resume_state["torch_rng"])
        else:
            rng = np.random.default_rng([rank_seed, step])
        if main_rank:
            print(f"resuming {path.name} at step {step} ({learner.updates} updates)")

    online = FrameReplay(max(config.buffer_size // config.num_envs, 64), config.num_envs, env_config.frame_shape,
                         env_config.frame_stack)
    steps_per_iteration = config.num_envs * ctx.world_size
    if main_rank:
        print(f"run {path.name}: {'BC-SAC from ' + config.bc_run if config.bc_run else 'SAC from scratch'}, "
              f"target entropy {config.target_entropy}, "
              f"world size {ctx.world_size} x {config.num_envs} envs on {device}, effective batch "
              f"{config.batch_size * ctx.world_size}, demos: {len(demo_buffer) if demo_buffer else 0} transitions")
        print(f"TensorBoard: tensorboard --logdir {path.parent}")

    writer = SummaryWriter(str(path)) if main_rank else None
    log = (lambda tag, value: writer.add_scalar(tag, value, step)) if main_rank else (lambda tag, value: None)
    envs = make_vec_env(config.num_envs, env_config)
    # Training tracks only (seeds below TRAIN_SEED_LIMIT); each rank and each resume starts new ones.
    first_seed = (config.seed * 1000 + ctx.rank * config.num_envs + step) % (TRAIN_SEED_LIMIT - config.num_envs)
    obs, _ = envs.reset(seed=first_seed)
    channels = env_config.frame_shape[0]
    for i in range(config.num_envs):
        online.start(i, obs[i, -channels:])
    tracker = EpisodeTracker(config.num_envs)
    agent = Agent(model, env_config, device)
    collected_since_start = 0  # steps this rank collected in this process (the buffer starts empty on resume)
    update_debt = 0.0
    last_eval = last_checkpoint = last_log = step
    timer = {"start": time.time(), "env": 0.0, "learn": 0.0, "frames": 0, "updates": 0}

    def checkpoint(name: str = "latest_step") -> None:
        if main_rank:
            state = {**learner.state_dict(), "step": step, "numpy_rng": rng, "torch_rng": torch.get_rng_state()}
            save_checkpoint(path, name, state)

    def evaluate_now() -> None:
        if not main_rank:
            return  # the other ranks wait for rank 0 at their next gradient all-reduce
        summary = validate_on_tracks(agent, config.eval_episodes, config.num_envs, writer, step)
        tqdm.write(f"step {step}: eval raw {summary['raw']['mean']:.0f} ± {summary['raw']['std']:.0f}, "
                   f"penalized {summary['penalized']['mean']:.0f}, off-track frames {summary['offtrack_frames']['mean']:.0f}")

    bar = tqdm(total=config.total_steps, initial=step, desc="train_rl", unit="step", disable=not main_rank)
    try:
        if config.eval_every and step == 0:
            evaluate_now()
        while step < config.total_steps:
            # ---- collect one step in every environment
            t0 = time.time()
            if init_model is None and resume_state is None and step < config.learning_starts:
                actions = rng.uniform([-1, 0, 0], [1, 1, 1], size=(config.num_envs, 3)).astype(np.float32)
            else:
                with torch.no_grad():
                    features = model.encoder(torch.as_tensor(obs, device=device))
                    actions = model.actor.sample(features)[0].cpu().numpy()
            next_obs, reward, terminated, truncated, info = envs.step(actions)
            done = record_step(online, actions, reward, next_obs, terminated, truncated, info)
            for raw, penalized in tracker.add(reward, info, done):
                log("train/episode_raw_return", raw)
                log("train/episode_penalized_return", penalized)
            obs = next_obs
            step += steps_per_iteration
            collected_since_start += config.num_envs
            bar.update(steps_per_iteration)
            timer["env"] += time.time() - t0
            timer["frames"] += config.num_envs * env_config.action_repeat

            # ---- learn (every rank does the same number of updates, so the all-reduces pair up)
            if collected_since_start * ctx.world_size >= config.learning_starts:
                t0 = time.time()
                update_debt += config.updates_per_step * config.num_envs
                train_actor = step >= config.learning_starts + config.critic_warmup_steps
                while update_debt >= 1:
                    batch = sample_mixed(demo_buffer, online, config.batch_size, config.demo_ratio, rng, config.gamma, config.n_step)
                    metrics = learner.update(batch, bc_weight_at(config, step), train_actor)
                    update_debt -= 1
                    timer["updates"] += 1
                timer["learn"] += time.time() - t0
            if step - last_log >= 1000 and timer["updates"]:
                last_log = step
                for k, v in metrics.items():
                    log(f"train/{k}", v)
                log("train/bc_weight", bc_weight_at(config, step))
                log("speed/env_frames_per_s", timer["frames"] / max(timer["env"], 1e-9))
                log("speed/updates_per_s", timer["updates"] / max(timer["learn"], 1e-9))
                log("speed/steps_per_s_overall", collected_since_start * ctx.world_size / (time.time() - timer["start"]))
                bar.set_postfix(upd=learner.updates, alpha=f"{learner.alpha.item():.3f}")

            if config.eval_every and step - last_eval >= config.eval_every:
                last_eval = step
                evaluate_now()
            if step - last_checkpoint >= config.checkpoint_every:
                last_checkpoint = step
                checkpoint()
    except KeyboardInterrupt:
        tqdm.write(f"interrupted at step {step}: writing a final checkpoint")
        raise  # main exits 130 after the `finally` below has saved it
    finally:
        bar.close()
        checkpoint()
        envs.close()
    if config.eval_every and step > last_eval and step >= config.total_steps:
        evaluate_now()
    if writer:
        writer.close()
        print(f"done: {step} steps, {learner.updates} updates. Test with  python main.py test --resume_run_id {path.name}")
    distributed.barrier(ctx)
    return learner
