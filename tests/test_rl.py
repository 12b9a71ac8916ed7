"""SAC / BC-SAC learner: finite losses, temperature, BC anchoring, exact resume, collection, CLI errors."""
from dataclasses import replace

import numpy as np
import pytest
import torch

import main
import rl
from env import EnvConfig, make_vec_env
from networks import ActorCritic, ModelConfig
from replay_buffer import FrameReplay
from replay_buffer import demo_replay, encode_replay
from rl import (EpisodeTracker, RLConfig, SACLearner, actor_lr_at, auto_attempts, choose_attempt, gaussian_kl,
                load_bc_start, no_validation,
                note_validation, record_step, resolve_pace, resolve_trials, to_batch)

TINY = ModelConfig(encoder="small", feature_dim=16, hidden_dim=32)
OBS_SHAPE = (2, 48, 48)


def make_batch(rng: np.random.Generator, n: int = 16, demo: bool = True) -> dict:
    return {
        "obs": rng.integers(0, 256, (n, *OBS_SHAPE), dtype=np.uint8),
        "next_obs": rng.integers(0, 256, (n, *OBS_SHAPE), dtype=np.uint8),
        "action": np.tile(np.array([[0.5, 0.8, 0.2]], np.float32), (n, 1)),
        "bc_action": np.tile(np.array([[0.5, 0.8, 0.2]], np.float32), (n, 1)),
        "reward": rng.normal(size=n).astype(np.float32),
        "discount": np.full(n, 0.99, np.float32),
        "is_demo": np.full(n, demo),
        "off_track": np.zeros(n, bool),
        "critic_only": np.zeros(n, bool),
        "mc_return": np.zeros(n, np.float32),
    }


def make_learner(seed: int = 0, **overrides) -> SACLearner:
    torch.manual_seed(seed)
    config = replace(RLConfig(), augment_pad=2, **overrides)
    return SACLearner(ActorCritic(OBS_SHAPE, TINY), config, torch.device("cpu"))


def test_update_losses_finite_and_targets_move():
    learner = make_learner()
    before = [p.clone() for p in learner.model.target_critic.parameters()]
    metrics = learner.update(make_batch(np.random.default_rng(0)), bc_weight=1.0)
    assert set(metrics) >= {"critic_loss", "actor_loss", "bc_loss", "entropy", "alpha", "q"}
    assert all(np.isfinite(v) for v in metrics.values())
    after = list(learner.model.target_critic.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))  # Polyak step happened


@pytest.mark.parametrize("target_entropy, direction", [(-50.0, -1), (50.0, 1)])
def test_temperature_moves_toward_target_entropy(target_entropy, direction):
    learner = make_learner(target_entropy=target_entropy)
    alpha0 = learner.alpha.item()
    rng = np.random.default_rng(0)
    for _ in range(5):
        learner.update(make_batch(rng), bc_weight=0.0)
    assert np.sign(learner.alpha.item() - alpha0) == direction


def test_td_target_includes_the_entropy_bonus():
    """Soft Q: a hotter temperature changes what the critics regress toward."""
    targets = []
    for temperature in (0.01, 5.0):
        learner = make_learner(init_temperature=temperature)
        metrics = learner.update(make_batch(np.random.default_rng(0)), bc_weight=0.0, train_actor=False)
        targets.append(metrics["target_q"])
    assert targets[0] != targets[1]


def test_critic_only_rows_teach_the_critic_from_their_own_return_and_leave_the_bc_term_alone():
    """--critic_dataset rows: the TD target is at least their Monte-Carlo return (a way back is worth what it earned,
    not what the policy's next action would make of it), and the BC term never pulls the actor toward them."""
    rng = np.random.default_rng(0)
    batch = make_batch(rng, n=8, demo=False)
    batch["critic_only"][:4] = True
    batch["mc_return"][:] = 1e4  # far above any bootstrapped target: the floor decides the critic-only rows
    learner = make_learner(init_temperature=1e-3)
    metrics = learner.update(batch, bc_weight=0.0, train_actor=False)
    torch_batch = to_batch(batch, torch.device("cpu"), learner.model.reward_scale)
    floored = 1e4 * learner.model.reward_scale
    assert metrics["target_q"] > floored / 2 - 1 and metrics["target_q"] < floored / 2 + 100
    assert "diag/td_error_critic_demo" in metrics and "diag/td_error_demo" not in metrics
    # The BC term sees no demo row in this batch: zero, whatever the critic-only rows' actions.
    assert learner.bc_loss(learner.encode(torch_batch.obs), torch.zeros(8, 3), torch_batch).item() == 0.0


@pytest.mark.parametrize("imitate, imitated", [(True, [0, 1, 2, 3]), (False, [])])
def test_imitate_critic_dataset_pulls_the_actor_toward_the_meant_action_on_critic_only_rows(imitate, imitated):
    """--imitate_critic_dataset 1: the BC term covers the recovery laps' rows too, with the action the driver meant
    (bc_action), not the shove's override the critic learns from (action); online rows never."""
    rng = np.random.default_rng(0)
    batch = to_batch(make_batch(rng, n=8, demo=False), torch.device("cpu"), 1.0)
    meant = torch.as_tensor(rng.uniform(-0.9, 0.9, (8, 3)), dtype=torch.float32)
    batch = batch._replace(critic_only=torch.arange(8) < 4, action=torch.tensor([[1.0, 0.0, 0.0]]).repeat(8, 1),
                           bc_action=meant)
    learner = make_learner(imitate_critic_dataset=imitate)
    features = learner.encode(batch.obs)
    mean = torch.zeros(8, 3)
    squashed = learner.model.actor.squash(mean)
    expected = ((squashed[imitated] - meant[imitated]) ** 2).mean().item() if imitated else 0.0
    assert learner.bc_loss(features, mean, batch).item() == pytest.approx(expected)


def test_actor_warmup_clones_the_meant_actions_of_both_datasets_and_becomes_the_kl_reference():
    """--actor_warmup_steps: BC-only steps on the demos and the recovery laps (the actions meant, not a shove's
    override), after which the frozen BC policy is the warmed actor: no KL cost for being where the warm-up led."""
    from test_replay_buffer import FakeEpisode
    from rl import warm_up_actor

    config = EnvConfig(action_repeat=2, frame_stack=2)
    meant = np.float32([-0.6, 0.2, 0.4])
    laps, recovery = FakeEpisode(T=20), FakeEpisode(T=20)
    laps.actions[:] = recovery.actions[:] = meant
    recovery.executed_actions = np.tile(np.float32([0.9, 0.0, 0.0]), (20, 1))  # a shove's override throughout
    demos, critic_demos = demo_replay([laps], config, 0.99), demo_replay([recovery], config, 0.99, executed=True)
    torch.manual_seed(0)
    rl_config = replace(RLConfig(), augment_pad=0, batch_size=32, imitate_critic_dataset=True, actor_warmup_steps=300)
    learner = SACLearner(ActorCritic(OBS_SHAPE, replace(TINY, bc_actor=True)), rl_config, torch.device("cpu"))
    frames = torch.as_tensor(critic_demos.sample(8, np.random.default_rng(0))["obs"])
    action = lambda actor: actor.squash(actor(learner.model.encoder(frames))[0]).detach()
    before = action(learner.model.actor)
    warm_up_actor(learner, demos, critic_demos, rl_config, np.random.default_rng(0), log=lambda tag, value: None)
    after = action(learner.model.actor)
    target = torch.as_tensor(meant)
    assert (after - target).abs().max() < 0.1 < (before - target).abs().max()
    assert torch.equal(action(learner.model.bc_actor), after)


def test_diagnostics_say_how_often_the_critic_prefers_a_critic_only_way_back():
    rng = np.random.default_rng(0)
    batch = to_batch(make_batch(rng, n=8, demo=False), torch.device("cpu"), 1.0)
    batch = batch._replace(critic_only=torch.arange(8) < 6, off_track=torch.arange(8) % 3 > 0,
                           action=torch.as_tensor(rng.uniform(-1, 1, (8, 3)), dtype=torch.float32))
    learner = make_learner()
    features = learner.encode(batch.obs)
    with torch.no_grad():
        own = learner.model.actor.squash(learner.model.actor(features)[0])
        q = lambda action: learner.model.critic(features, action).min(0).values
        ways_back = batch.critic_only & batch.off_track  # rows 1, 2, 4, 5: critic-only and off the road
        preferred = (q(batch.action) > q(own))[ways_back].float().mean().item()
    assert 0 < preferred < 1  # an untrained critic prefers the recorded action on some rows, not all
    assert learner.bc_diagnostics(features, batch)["diag/critic_demo_action_preferred"] == preferred


def test_bc_weight_keeps_actor_on_demo_actions():
    rng = np.random.default_rng(0)
    batch = make_batch(rng, n=8)
    batch["obs"][:] = batch["obs"][0]  # one state, one expert action

    def demo_error(bc_weight: float) -> float:
        learner = make_learner(seed=1, actor_lr=1e-3)
        for _ in range(100):
            learner.update(batch, bc_weight=bc_weight)
        with torch.no_grad():
            action = learner.model.act(torch.as_tensor(batch["obs"][:1]))
        return float(((action - torch.as_tensor(batch["action"][:1])) ** 2).mean())

    with_bc, without_bc = demo_error(10.0), demo_error(0.0)
    assert with_bc < 0.01
    assert with_bc < without_bc


def test_actor_lr_decay_falls_linearly_from_the_actors_first_step_to_zero_at_the_budget():
    config = RLConfig(actor_lr=3e-4, learning_starts=1_000, critic_warmup_steps=2_000, total_steps=15_000)
    assert actor_lr_at(config, 14_000) == 3e-4  # constant unless --actor_lr_decay 1
    config.actor_lr_decay = True
    first = 3_000  # the actor's first step: after learning_starts and the critic warm-up
    assert actor_lr_at(config, 0) == actor_lr_at(config, first) == 3e-4
    assert actor_lr_at(config, 9_000) == pytest.approx(1.5e-4)
    assert actor_lr_at(config, 15_000) == 0.0 and actor_lr_at(config, 20_000) == 0.0  # a longer resume stays at 0
    learner = make_learner()
    learner.set_actor_lr(1e-5)
    assert [group["lr"] for group in learner.actor_optimizer.param_groups] == [1e-5]


@pytest.mark.parametrize("from_clean_laps, expected", [(True, (3e-4, True, 30_000)), (False, (1e-4, False, 15_000))])
def test_auto_pace_gives_a_weak_start_a_faster_decaying_actor_and_twice_the_budget(from_clean_laps, expected):
    config = RLConfig()  # --actor_lr, --actor_lr_decay and --total_steps auto
    resolve_pace(config, from_clean_laps)
    assert (config.actor_lr, config.actor_lr_decay, config.total_steps) == expected
    given = RLConfig(actor_lr=5e-5, actor_lr_decay=False, total_steps=1_000)
    resolve_pace(given, from_clean_laps)
    assert (given.actor_lr, given.actor_lr_decay, given.total_steps) == (5e-5, False, 1_000)  # given flags stay


@pytest.mark.parametrize("from_clean_laps, eval_every, final_policy, expected",
                         [(True, 5_000, "best", 2), (False, 5_000, "best", 1), (True, 0, "best", 1),
                          (True, 5_000, "last", 1)])
def test_auto_attempts_try_clean_laps_twice_where_validations_can_choose(from_clean_laps, eval_every, final_policy,
                                                                          expected):
    config = RLConfig(eval_every=eval_every, final_policy=final_policy)
    assert auto_attempts(config, from_clean_laps) == expected


@pytest.mark.parametrize("bc_prior_kl, eval_every, expected",
                         [(True, 5_000, (rl.LIGHTEST_BRAKE, rl.HEAVIEST_GAS, rl.SHARPEST_STEER,
                                          rl.WIDE_VALIDATION_EPISODES)),
                          (False, 5_000, (1.0, 1.0, 1.0, rl.NARROW_VALIDATION_EPISODES)),
                          (True, 0, (1.0, 1.0, 1.0, rl.NARROW_VALIDATION_EPISODES))])
def test_auto_trials_walk_under_the_kl_cost_and_validate_on_the_wider_set_of_tracks(bc_prior_kl, eval_every, expected):
    config = RLConfig(bc_prior_kl=bc_prior_kl, eval_every=eval_every)  # the four flags auto
    resolve_trials(config)
    assert (config.brake_trial, config.gas_trial, config.steer_trial, config.eval_episodes) == expected
    given = RLConfig(bc_prior_kl=bc_prior_kl, eval_every=eval_every, brake_trial=0.95, gas_trial=1.05,
                     steer_trial=1.1, eval_episodes=3)
    resolve_trials(given)
    assert (given.brake_trial, given.gas_trial, given.steer_trial, given.eval_episodes) == (0.95, 1.05, 1.1, 3)


@pytest.mark.parametrize("scores, chosen", [((700.0, 910.0), 2), ((910.0, 700.0), 1), ((800.0, 800.0), 1)])
def test_the_run_ends_on_the_attempt_whose_policy_validated_best(tmp_path, scores, chosen):
    from runs import checkpoint_path, save_checkpoint, set_latest

    run, second = tmp_path / "run", tmp_path / "run" / "attempt_2"
    for folder, score, weight in ((run, scores[0], 1.0), (second, scores[1], 2.0)):
        best = {"raw": score, "step": 20, "policy_raw": score}
        save_checkpoint(folder, "step_20", {"model": {"w": torch.full((2,), weight)}, "best_validation": best},
                        copies=("best",))
        save_checkpoint(folder, "latest_step", {"model": {"w": torch.zeros(2)}, "best_validation": best})
        set_latest(folder, "best")  # as train_rl leaves a run: its policy is the best validated checkpoint
    assert choose_attempt(run, 2) == chosen
    policy = torch.load(checkpoint_path(run), weights_only=True)["model"]["w"]  # what test and Agent.load drive
    assert policy.tolist() == [float(chosen)] * 2
    assert (run / "checkpoints" / "latest_step.pt").exists()  # resuming still continues the run's own last state


def test_resume_from_state_dict_continues_exactly(tmp_path):
    rng_a = np.random.default_rng(0)
    batches = [make_batch(rng_a) for _ in range(6)]
    uninterrupted = make_learner()
    torch.manual_seed(123)
    for b in batches:
        uninterrupted.update(b, 1.0)

    first = make_learner()
    torch.manual_seed(123)
    for b in batches[:3]:
        first.update(b, 1.0)
    torch.save({**first.state_dict(), "torch_rng": torch.get_rng_state()}, tmp_path / "ck.pt")
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    resumed = make_learner(seed=99)  # different init: everything must come from the checkpoint
    resumed.load_state_dict(state)
    torch.set_rng_state(state["torch_rng"])
    for b in batches[3:]:
        resumed.update(b, 1.0)
    assert resumed.updates == uninterrupted.updates == 6
    assert resumed.alpha.item() == uninterrupted.alpha.item()
    for a, b in zip(resumed.model.state_dict().values(), uninterrupted.model.state_dict().values()):
        assert torch.equal(a, b)


def test_vector_collection_stores_final_frames_and_restarts():
    config = EnvConfig(action_repeat=2, frame_stack=2, obs_size=24, max_frames=6)  # 3 steps per episode
    envs = make_vec_env(2, config, asynchronous=False)
    obs, _ = envs.reset(seed=5)
    buffer = FrameReplay(50, 2, (1, 24, 24), frame_stack=2)
    for i in range(2):
        buffer.start(i, obs[i, -1:])
    finals, tracker, step_rewards = [], EpisodeTracker(2, gamma=0.9), []
    for _ in range(4):
        actions = np.tile(np.array([[0.0, 0.5, 0.0]], np.float32), (2, 1))
        next_obs, reward, terminated, truncated, info = envs.step(actions)
        tracker.note_start_values(np.array([7.0, 8.0]))
        done = record_step(buffer, actions, reward, next_obs, terminated, truncated, info, lambda o: o[:, -1:])
        step_rewards.append(reward[0])
        finished = tracker.add(reward, info, done)
        if done[0]:
            assert finished[0]["penalized_return"] == pytest.approx(sum(step_rewards))  # the whole episode
            discounted = sum(r * 0.9 ** k for k, r in enumerate(step_rewards))
            assert finished[0]["discounted_return_s0"] == pytest.approx(discounted)
            assert finished[0]["predicted_q_s0"] == 7.0  # the value noted at the episode's first step
            finals.append(info["final_obs"][0][-1:].copy())
            assert buffer.episode_pos[0, (buffer.written[0] - 1) % 50] == 0  # new episode started
        obs = next_obs
    envs.close()
    assert len(finals) == 1 and buffer.written[0] == 1 + 3 + 1 + 1  # start, 3 steps, restart, 1 step
    assert np.array_equal(buffer.frames[0, 3], finals[0])  # the truncated episode's last frame
    assert not buffer.terminated[0, 3]  # time-limit truncation still bootstraps
    assert np.allclose(buffer.actions[0, 1], [0.0, 0.5, 0.0])


def test_record_step_stores_whether_each_frame_is_off_the_road_and_each_action_forced():
    """Env 0 steps off the road; env 1's episode ends off it (its step info is in final_info, the reset's has no
    off_track) and restarts on the road."""
    buffer = FrameReplay(10, 2, (1, 2, 2), frame_stack=1)
    for i in range(2):
        buffer.start(i, np.zeros((1, 2, 2), np.uint8))
    next_obs = np.ones((2, 1, 2, 2), np.uint8)
    info = {"off_track": np.array([True, False]), "_off_track": np.array([True, False]),
            "final_info": {"off_track": np.array([False, True])}, "final_obs": [None, next_obs[1]]}
    record_step(buffer, np.zeros((2, 3), np.float32), np.zeros(2), next_obs, np.array([False, True]),
                np.array([False, False]), info, lambda o: o, forced=np.array([False, True]))
    assert buffer.off_track[0, 1] and buffer.off_track[1, 1] and not buffer.off_track[1, 2]
    assert buffer.forced[1, 1] and not buffer.forced[0, 1]  # env 1's action was a shove's


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main.main(list(argv))
    return code, capsys.readouterr().err


def test_cli_errors_are_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = run_cli(capsys, "train_rl", "--resume_run_id", "no_such_run")
    assert code == 2 and "no_such_run" in err and len(err.strip().splitlines()) == 1
    code, err = run_cli(capsys, "train_rl", "--batch_size", "0")
    assert code == 2 and "--batch_size" in err
    code, err = run_cli(capsys, "train_rl", "--demo_ratio", "1.5")
    assert code == 2 and "--demo_ratio" in err
    code, err = run_cli(capsys, "train_rl", "--bc_weight_floor", "2")
    assert code == 2 and "--bc_weight_floor must be in [0, 1], got 2.0" in err
    code, err = run_cli(capsys, "train_rl", "--imitate_critic_dataset", "1")
    assert code == 2 and "--imitate_critic_dataset 1 needs --critic_dataset" in err
    code, err = run_cli(capsys, "train_rl", "--actor_warmup_steps", "100")
    assert code == 2 and "--actor_warmup_steps needs --imitate_critic_dataset 1" in err
    code, err = run_cli(capsys, "train_rl", "--actor_warmup_steps", "100", "--critic_dataset", "laps",
                        "--imitate_critic_dataset", "1")
    assert code == 2 and "--actor_warmup_steps needs a BC run to fine-tune" in err
    with pytest.raises(SystemExit) as exit_info:
        main.main(["train_rl", "--bc_weight_floor", "high"])
    assert (exit_info.value.code == 2
            and "--bc_weight_floor: choose auto or a share in [0, 1] (got 'high')" in capsys.readouterr().err)
    with pytest.raises(SystemExit) as exit_info:  # argparse's own error: usage line, then the reason
        main.main(["train_rl", "--bc_prior_kl", "yes"])
    assert exit_info.value.code == 2 and "--bc_prior_kl: choose from auto, 0, 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main.main(["train_rl", "--stall_limit", "soon"])
    assert (exit_info.value.code == 2
            and "--stall_limit: choose auto or an integer (got 'soon')" in capsys.readouterr().err)
    with pytest.raises(SystemExit) as exit_info:
        main.main(["train_rl", "--policy_action", "fast"])
    assert (exit_info.value.code == 2
            and "--policy_action: choose auto or one of mean, expected (got 'fast')" in capsys.readouterr().err)


def feature_batch(rng: np.random.Generator, n: int = 16, demo: bool = True) -> dict:
    """A batch as the replay holds it when the encoder is fixed: features, not frames."""
    batch = make_batch(rng, n, demo)
    batch["obs"] = rng.uniform(-1, 1, (n, TINY.feature_dim)).astype(np.float32)
    batch["next_obs"] = rng.uniform(-1, 1, (n, TINY.feature_dim)).astype(np.float32)
    return batch


def test_frozen_encoder_stays_fixed_while_heads_learn():
    learner = make_learner(train_encoder=False)
    encoder_before = [p.clone() for p in learner.model.encoder.parameters()]
    critic_before = [p.clone() for p in learner.model.critic.parameters()]
    learner.update(feature_batch(np.random.default_rng(0)), bc_weight=1.0)
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, learner.model.encoder.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, learner.model.critic.parameters()))


@pytest.mark.parametrize("policy_action", ["mean", "expected"])
def test_mean_action_q_values_tanh_mean_beside_the_samples_whichever_action_is_driven(policy_action):
    learner = make_learner(train_encoder=False, mean_action_q=True, init_temperature=1e-8)
    learner.model.policy_action = policy_action
    learner.nets.critic = lambda features, action: 10 * action[:, 1].expand(2, -1)  # Q = 10 * gas, every member
    batch = to_batch(feature_batch(np.random.default_rng(0), demo=False), torch.device("cpu"), 0.1)
    actor = learner.model.actor
    torch.manual_seed(3)
    with torch.no_grad():
        mean, log_std = actor(batch.obs)
        sampled_gas = actor.sample_from(mean, log_std)[0][:, 1]
        squashed_gas, expected_gas = actor.squash(mean)[:, 1], actor.expected_from(mean, log_std)[:, 1]
    torch.manual_seed(3)
    loss = learner.update_actor(batch.obs, batch, bc_weight=0.0)["actor_loss"]
    assert loss == pytest.approx(-10 * (sampled_gas.mean() + squashed_gas.mean()).item() / 2, rel=1e-4)
    # The three gas values differ, so the loss tells which action was valued.
    assert min(abs(sampled_gas.mean() - squashed_gas.mean()), abs(expected_gas.mean() - squashed_gas.mean())) > 1e-3


def test_bf16_autocast_update_runs_and_is_finite():
    learner = make_learner(bf16=True)
    metrics = learner.update(make_batch(np.random.default_rng(0)), bc_weight=1.0)
    assert all(np.isfinite(v) for v in metrics.values())
    assert all(p.dtype == torch.float32 for p in learner.model.parameters())  # weights stay fp32


def fine_tuning_model(seed: int = 0, selection: bool = True) -> ActorCritic:
    """A 'BC run' (random weights) loaded for fine-tuning: the frozen BC actor starts as its actor."""
    torch.manual_seed(seed)
    bc_state = ActorCritic(OBS_SHAPE, TINY).state_dict()
    model = ActorCritic(OBS_SHAPE, replace(TINY, bc_actor=True, bc_selection=selection))
    load_bc_start(model, bc_state)
    return model


def test_bc_start_copies_actor_into_frozen_bc_actor():
    model = fine_tuning_model()
    for a, b in zip(model.actor.state_dict().values(), model.bc_actor.state_dict().values()):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in model.bc_actor.parameters())


def test_bc_selection_executes_the_higher_q_proposal():
    model = fine_tuning_model()
    with torch.no_grad():
        for p in model.actor.parameters():
            p.add_(torch.randn_like(p))  # RL proposals now differ from BC's
    features = torch.randn(64, TINY.feature_dim)
    rl_action = model.actor.deterministic(features)
    bc_action = model.bc_actor.deterministic(features)
    chosen, rl_wins = model.select(features, rl_action)
    q_rl, q_bc = model.critic(features, rl_action).min(0).values, model.critic(features, bc_action).min(0).values
    assert 0 < rl_wins.sum() < 64  # both kinds of rows occur
    assert torch.equal(rl_wins, q_rl >= q_bc)
    assert torch.equal(chosen, torch.where(rl_wins[:, None], rl_action, bc_action))
    assert torch.equal(model.policy(features), chosen)  # what collection and Agent execute
    without = fine_tuning_model(selection=False)
    without.load_state_dict(model.state_dict())
    assert torch.equal(without.policy(features), rl_action)


def test_anchor_pulls_actor_toward_bc_policy_on_online_states():
    rng = np.random.default_rng(0)
    batch = feature_batch(rng, n=32, demo=False)  # the policy's own states only: no demo rows

    def distance_to_bc(anchor_all: bool) -> float:
        model = fine_tuning_model(seed=3, selection=False)
        learner = SACLearner(model, replace(RLConfig(), train_encoder=False, actor_lr=1e-3, bc_anchor_all=anchor_all),
                             torch.device("cpu"))
        for _ in range(60):
            learner.update(batch, bc_weight=10.0)
        features = torch.as_tensor(batch["obs"])
        with torch.no_grad():
            return float((model.actor.deterministic(features)
                          - model.bc_actor.deterministic(features)).norm(dim=-1).mean())

    assert distance_to_bc(True) < 0.5 * distance_to_bc(False)


def test_gaussian_kl_matches_torch_distributions():
    mean, log_std, ref_mean, ref_log_std = torch.randn(4, 8, 3).unbind(0)
    expected = torch.distributions.kl_divergence(torch.distributions.Normal(mean, log_std.exp()),
                                                 torch.distributions.Normal(ref_mean, ref_log_std.exp())).sum(-1)
    torch.testing.assert_close(gaussian_kl(mean, log_std, ref_mean, ref_log_std), expected)
    assert torch.equal(gaussian_kl(mean, log_std, mean, log_std), torch.zeros(8))


def test_bc_prior_kl_keeps_the_bc_spread_that_the_entropy_bonus_widens():
    """At the BC start the entropy bonus alone widens the policy (the collapse right after the actor starts);
    the KL cost to the frozen BC policy is at its minimum there, so the spread stays put."""
    batch = feature_batch(np.random.default_rng(0), n=64, demo=False)
    features = torch.as_tensor(batch["obs"])

    def spread_change(prior_kl: bool) -> float:
        model = fine_tuning_model(seed=3, selection=False)
        with torch.no_grad():
            model.critic.net[-1].weight.zero_()  # a critic indifferent to the action: only the regulariser acts
            for actor in (model.actor, model.bc_actor):  # narrow, as BC's steering is
                actor.net[-1].bias[3:] = -3.0
        learner = SACLearner(model, replace(RLConfig(), train_encoder=False, actor_lr=1e-3, init_temperature=1.0,
                                            critic_lr=1e-9, bc_prior_kl=prior_kl), torch.device("cpu"))
        for _ in range(30):
            learner.update(batch, bc_weight=0.0)
        with torch.no_grad():
            return float((model.actor(features)[1] - model.bc_actor(features)[1]).mean())

    assert spread_change(False) > 0.2  # SAC's bonus: wider
    assert abs(spread_change(True)) < 0.05


def test_kl_on_road_only_frees_the_policy_off_the_road():
    """--kl_on_road_only: the KL cost pulls a policy that left the BC policy back on road states, not off the road."""
    batch = feature_batch(np.random.default_rng(0), n=64, demo=False)
    features = torch.as_tensor(batch["obs"])

    def pulled_back(off_track: bool) -> float:
        model = fine_tuning_model(seed=3, selection=False)
        with torch.no_grad():
            model.critic.net[-1].weight.zero_()  # a critic indifferent to the action: only the KL cost acts
            model.actor.net[-1].bias[:3] += 0.5  # the policy's mean away from the BC policy's
        learner = SACLearner(model, replace(RLConfig(), train_encoder=False, actor_lr=1e-3, init_temperature=1.0,
                                            critic_lr=1e-9, bc_prior_kl=True, kl_on_road_only=True),
                             torch.device("cpu"))
        gap = lambda: float((model.actor(features)[0] - model.bc_actor(features)[0]).abs().mean())
        with torch.no_grad():
            before = gap()
        for _ in range(10):
            learner.update({**batch, "off_track": np.full(64, off_track)}, bc_weight=0.0)
        with torch.no_grad():
            return before - gap()

    on_road = pulled_back(False)
    assert on_road > 0.01
    assert abs(pulled_back(True)) < on_road / 20  # what is left: Adam's scaling of the near-zero critic's gradient


@pytest.mark.parametrize("shift, rises", [(0.0, False), (1.0, True)])
def test_kl_limit_raises_the_temperature_only_while_the_policy_exceeds_it(shift, rises):
    """With --kl_limit the temperature rises while the policy is further from the BC policy than the limit
    (here: means shifted by about a BC standard deviation) and stays at its initial value while it is nearer (at the
    start: KL 0)."""
    model = fine_tuning_model(selection=False)
    with torch.no_grad():
        model.actor.net[-1].bias[:3] += shift * model.bc_actor.net[-1].bias[3:].exp()
    learner = SACLearner(model, replace(RLConfig(), train_encoder=False, bc_prior_kl=True, kl_limit=0.5,
                                        actor_lr=1e-9), torch.device("cpu"))
    batch = feature_batch(np.random.default_rng(0), n=32, demo=False)
    for _ in range(5):
        metrics = learner.update(batch, bc_weight=0.0)
    assert (metrics["kl_to_bc"] > 0.5) == rises
    if rises:
        assert learner.alpha.item() > RLConfig().init_temperature * 1.001
        model.actor.load_state_dict(model.bc_actor.state_dict())  # back at the BC policy: KL 0
        for _ in range(50):
            learner.update(batch, bc_weight=0.0)
        assert learner.alpha.item() == pytest.approx(RLConfig().init_temperature)  # back down, and not below
    else:
        assert learner.alpha.item() == pytest.approx(RLConfig().init_temperature)


def test_kl_cost_without_a_limit_keeps_the_temperature():
    learner = SACLearner(fine_tuning_model(selection=False), replace(RLConfig(), train_encoder=False, bc_prior_kl=True),
                         torch.device("cpu"))
    for _ in range(3):
        learner.update(feature_batch(np.random.default_rng(0), n=32, demo=False), bc_weight=0.0)
    assert learner.alpha.item() == pytest.approx(RLConfig().init_temperature)


def test_bc_diagnostics_measure_the_policy_against_the_frozen_bc_policy():
    model = fine_tuning_model(selection=False)
    learner = SACLearner(model, replace(RLConfig(), train_encoder=False), torch.device("cpu"))
    raw = feature_batch(np.random.default_rng(0), n=32, demo=False)
    batch = to_batch(raw, torch.device("cpu"), 1.0)
    at_start = learner.bc_diagnostics(batch.obs, batch)
    assert at_start["diag/kl_to_bc"] == 0 and at_start["diag/action_distance_to_bc"] == 0
    with torch.no_grad():
        model.actor.net[-1].bias[3] += 0.5  # the steering's log std
    widened = learner.bc_diagnostics(batch.obs, batch)
    assert widened["diag/log_std_minus_bc_steer"] == pytest.approx(0.5, abs=1e-5)
    assert widened["diag/log_std_minus_bc_gas"] == widened["diag/log_std_minus_bc_brake"] == 0
    assert widened["diag/kl_to_bc"] > 0 and widened["diag/off_track_share"] == 0
    assert "diag/kl_to_bc_off_track" not in widened  # no row off the road
    raw["off_track"][:8] = True
    shoved = learner.bc_diagnostics(batch.obs, to_batch(raw, torch.device("cpu"), 1.0))
    assert shoved["diag/off_track_share"] == 0.25 and shoved["diag/kl_to_bc_off_track"] > 0


def test_feature_cache_matches_encoder_on_every_stack():
    from test_replay_buffer import FakeEpisode

    episodes = [FakeEpisode(T=9), FakeEpisode(T=7)]
    for ep in episodes:  # distinct frames, so every stack encodes differently
        ep.observations[:] = np.random.default_rng(len(ep.actions)).integers(0, 256, ep.observations.shape)
    config = EnvConfig(action_repeat=2, frame_stack=2)
    frames = demo_replay(episodes, config, gamma=0.9)
    model = ActorCritic(config.obs_shape, TINY)
    encode = lambda stacks: model.encoder(torch.as_tensor(stacks)).detach().numpy()
    features = encode_replay(frames, encode, batch_size=5)
    streams, t = np.array([0, 1, 2, 3]), np.array([1, 2, 3, 2])
    assert np.allclose(features.stack(streams, t), encode(frames.stack(streams, t)), atol=1e-6)
    batch = features.sample(8, np.random.default_rng(0), gamma=0.9, n_step=2)
    assert batch["obs"].shape == (8, TINY.feature_dim) and batch["next_obs"].dtype == np.float32


def test_adaptive_bc_weight_rises_below_the_bc_start_and_falls_above():
    from rl import AdaptiveBCWeight

    control = AdaptiveBCWeight(replace(RLConfig(), bc_weight=100.0, adaptive_bc_weight=True, bc_weight_floor=0.1))
    for raw in np.array([900.0, 880.0, 920.0]):  # the BC policy's episodes (numpy floats, as the tracker gives)
        control.add_episode(raw, actor_training=False)
    assert all(type(r) is float for r in control.state_dict()["reference"])  # checkpoints load weights_only
    assert control.value(0) == 100.0  # starts stiff
    for _ in range(AdaptiveBCWeight.window + 200):
        control.add_episode(930.0, actor_training=True)  # better than the start
    assert control.value(0) == 10.0  # shrank to its bound: room to improve
    for _ in range(AdaptiveBCWeight.window - 1):
        control.add_episode(400.0, actor_training=True)  # fine-tuning made it worse
    assert control.value(0) > 10.0  # pulled back toward BC once the recent mean fell below the reference
    for _ in range(100):
        control.add_episode(400.0, actor_training=True)
    assert control.value(0) == 100.0
    floored = AdaptiveBCWeight(replace(RLConfig(), bc_weight=100.0, bc_weight_floor=0.3))  # auto's without the KL cost
    floored.add_episode(900.0, actor_training=False)
    for _ in range(200):
        floored.add_episode(930.0, actor_training=True)
    assert floored.value(0) == 30.0  # --bc_weight_floor: the share of bc_weight it keeps
    constant = AdaptiveBCWeight(replace(RLConfig(), bc_weight=10.0, adaptive_bc_weight=False))
    constant.add_episode(900.0, actor_training=False)
    for _ in range(20):
        constant.add_episode(100.0, actor_training=True)
    assert constant.value(0) == 10.0



def test_dashboard_inputs_start_as_the_bc_run_and_carry_the_speed_bar():
    torch.manual_seed(0)
    bc_model = ActorCritic(OBS_SHAPE, TINY)
    model = ActorCritic(OBS_SHAPE, replace(TINY, bc_actor=True, dashboard_inputs=True))
    load_bc_start(model, bc_model.state_dict())
    obs = torch.randint(0, 256, (8, *OBS_SHAPE), dtype=torch.uint8)
    features = model.encoder(obs)
    # The dashboard is the bottom 6 of 48 rows of each of the 2 frames, after the CNN's features.
    assert features.shape == (8, TINY.feature_dim + 2 * 6 * 48)
    assert torch.equal(features[:, TINY.feature_dim:], obs[:, :, 42:].flatten(1).float() / 255)
    with torch.no_grad():  # zero weights for the new inputs: the same actions and values as the BC run
        bc_features = bc_model.encoder(obs)
        assert torch.allclose(model.actor(features)[0], bc_model.actor(bc_features)[0], atol=1e-6)
        action = torch.rand(8, 3)
        assert torch.allclose(model.critic(features, action), bc_model.critic(bc_features, action), atol=1e-5)
        assert torch.allclose(model.target_critic(features, action), bc_model.critic(bc_features, action), atol=1e-5)
    # Two observations that differ only in the dashboard (a speed bar) get different values once trained.
    learner = SACLearner(model, replace(RLConfig(), train_encoder=False, critic_lr=1e-2), torch.device("cpu"))
    still, moving = obs[:1].clone(), obs[:1].clone()
    still[:, :, 42:] = 0
    moving[:, :, 42:, 3] = 255
    with torch.no_grad():
        pair = model.encoder(torch.cat([still, moving])).numpy()
    batch = {"obs": np.tile(pair, (8, 1)), "next_obs": np.tile(pair, (8, 1)), "action": np.zeros((16, 3), np.float32),
             "bc_action": np.zeros((16, 3), np.float32),
             "reward": np.tile([0.0, 10.0], 8).astype(np.float32), "discount": np.zeros(16, np.float32),
             "is_demo": np.zeros(16, bool), "off_track": np.zeros(16, bool), "critic_only": np.zeros(16, bool),
             "mc_return": np.zeros(16, np.float32)}
    for _ in range(100):
        learner.update(batch, bc_weight=0.0)
    with torch.no_grad():
        q_still, q_moving = model.critic(torch.as_tensor(pair), torch.zeros(2, 3)).min(0).values
    assert q_moving - q_still > 0.5


def test_augmentation_shifts_the_cnn_input_but_never_the_dashboard():
    torch.manual_seed(0)
    model = ActorCritic(OBS_SHAPE, replace(TINY, dashboard_inputs=True))
    learner = SACLearner(model, replace(RLConfig(), train_encoder=True, augment_pad=4), torch.device("cpu"))
    obs = torch.randint(0, 256, (64, *OBS_SHAPE), dtype=torch.uint8)
    with torch.no_grad():
        plain, shifted = model.encoder(obs), learner.encode(obs)
    cnn = slice(0, TINY.feature_dim)
    assert not torch.allclose(plain[:, cnn], shifted[:, cnn])  # the image part is augmented
    assert torch.equal(plain[:, TINY.feature_dim:], shifted[:, TINY.feature_dim:])  # the speed bar is what it reads


def test_a_share_of_training_episodes_meets_no_shoves():
    from rl import TrainingShoves

    shoves = TrainingShoves(1000, probability=1.0, action_repeat=2, share=0.3)
    rng = np.random.default_rng(0)
    policy = np.zeros((1000, 3), np.float32)
    assert shoves.apply(policy, rng)[:, 0].all()  # the first episodes all meet them
    shoves.hold[:] = 0
    shoves.end_episodes(np.ones(1000, bool), rng)
    shoved = shoves.apply(policy, rng)[:, 0] != 0
    assert 0.25 < shoved.mean() < 0.35  # then about `share` of the new episodes
    assert np.array_equal(shoved, shoves.on)
    saved = shoves.state_dict()
    restored = TrainingShoves(1000, probability=1.0, action_repeat=2, share=0.3)
    restored.load_state_dict(saved)
    assert np.array_equal(restored.on, shoves.on)  # a resumed run keeps which episodes are shoved


def test_training_shoves_hold_a_full_steer_without_gas_then_give_the_policy_back():
    from evaluate import SHOVE_HOLD_FRAMES
    from rl import TrainingShoves

    policy = np.tile(np.array([[0.1, 0.7, 0.0]], np.float32), (3, 1))
    shoves = TrainingShoves(3, probability=1.0, action_repeat=2)
    rng = np.random.default_rng(0)
    first = shoves.apply(policy, rng)
    assert np.array_equal(np.abs(first[:, 0]), [1, 1, 1]) and not first[:, 1:].any()  # full steer, no gas or brake
    assert shoves.active.all()  # what the replay marks forced
    shoves.probability = 0.0
    held = [shoves.apply(policy, rng) for _ in range(SHOVE_HOLD_FRAMES // 2 - 1)]
    assert all(np.array_equal(h, first) for h in held)  # one side for the whole shove
    assert np.array_equal(shoves.apply(policy, rng), policy)  # then the policy drives again
    assert not shoves.active.any()
    shoves.probability = 1.0
    shoves.apply(policy, rng)
    shoves.end_episodes(np.array([True, False, False]), rng)
    shoves.probability = 0.0
    assert np.array_equal(shoves.apply(policy, rng)[0], policy[0])  # a new track starts unshoved
    restored = TrainingShoves(3, probability=0.0, action_repeat=2)
    restored.load_state_dict(shoves.state_dict())  # mid-shove state survives a checkpoint
    assert np.array_equal(restored.apply(policy, rng), shoves.apply(policy, rng))


def test_policy_is_the_most_trained_checkpoint_tied_with_the_best_validation():
    """Validations within the tie share of the best count as equal; the latest of them is the policy."""
    best = no_validation()
    chosen = [note_validation(best, raw, step, tie=0.005) for step, raw in
              ((0, 918.84), (5000, 918.83), (10000, 918.80), (15000, 660.9))]  # a run of 2026-12-03 (drive mean)
    assert chosen == [True, True, True, False] and best == {"raw": 918.84, "step": 10000, "policy_raw": 918.80}
    assert note_validation(best, 930.0, 20000, tie=0.005)  # a clearly better one wins
    assert not note_validation(best, 925.0, 25000, tie=0.005)  # 5 below 930 is more than 0.5 %
    assert best["step"] == 20000
    strict = no_validation()
    assert [note_validation(strict, raw, step, tie=0.0) for step, raw in ((0, 918.84), (5000, 918.83))] == [True, False]
