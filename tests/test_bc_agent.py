"""BC training, checkpoints, Agent on a stock env, `test` results, and clear errors for bad runs/datasets."""
import json
from contextlib import ExitStack
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import main
import rl
from agent import Agent
from bc import BCConfig, bc_losses, train_bc, validate
from distributed import DistContext
from env import FINE_TUNING_STALL_LIMIT, EnvConfig
from networks import OLD_SPREAD_LIMIT, ActorCritic, ModelConfig
from replay_buffer import demo_replay
from runs import checkpoint_path
import demos
import evaluate

from flags import TINY


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory holding a tiny autopilot dataset (2 episodes x 80 frames) and a 2-epoch BC run."""
    path = tmp_path_factory.mktemp("bc")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        assert main.main(["expert", "--dataset", "tiny", "--episodes", "2", "--max_frames", "80"]) == 0
        assert main.main(["train_bc", "--dataset", "tiny", "--run_id", "bc", "--epochs", "2", "--batch_size", "32",
                          "--eval_every", "0", "--val_fraction", "0.5", "--checkpoint_every", "1"] + TINY) == 0
    return path


def test_bc_loss_falls_and_actor_reproduces_actions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main.main(["expert", "--dataset", "one", "--episodes", "1", "--max_frames", "60"]) == 0
    env_config = EnvConfig(obs_size=48, frame_stack=2)
    model_config = ModelConfig(encoder="small", feature_dim=16, hidden_dim=32)
    data = demo_replay(demos.load_dataset("data/one"), env_config, 0.99)
    batch = data.sample(64, np.random.default_rng(0))

    def actor_error(model: ActorCritic) -> float:
        with torch.no_grad():
            return bc_losses(model, model, batch, torch.device("cpu"), 0, 0.0)["actor_loss"].item()

    torch.manual_seed(0)
    before = actor_error(ActorCritic(env_config.obs_shape, model_config))
    config = BCConfig(dataset="one", epochs=120, batch_size=16, val_fraction=0.0, eval_every=0, augment_pad=0, lr=1e-3)
    model = train_bc(tmp_path / "logs" / "fit", config, env_config, model_config)
    after = actor_error(model)
    assert after < 0.4 * before


def test_validation_reports_the_spread_and_what_it_does_to_the_average_action(workdir):
    """A saturated brake mean (no brake) with a wide spread: the average action that fine-tuning drives brakes."""
    env_config = EnvConfig(obs_size=48, frame_stack=2)
    model = ActorCritic(env_config.obs_shape, ModelConfig(encoder="small", feature_dim=16, hidden_dim=32))
    data = demo_replay(demos.load_dataset(str(workdir / "data" / "tiny")), env_config, 0.99)
    last = model.actor.net[-1]
    for log_std, braking in ((np.log(4.0), True), (-5.0, False)):
        with torch.no_grad():  # outputs: pre-tanh means (steer, gas, brake), then their log-stds
            last.weight.zero_()
            last.bias.copy_(torch.tensor([0.0, 0.0, -6.0, -5.0, -5.0, log_std]))
        val = validate(model, data, BCConfig(batch_size=16), torch.device("cpu"), batches=2)
        assert val["spread_brake"] == pytest.approx(np.exp(log_std), rel=1e-4)
        assert (val["average_minus_mean_brake"] > 0.05) == braking
        assert abs(val["average_minus_mean_steer"]) < 1e-4 and val["actor_loss"] > 0


def test_dashboard_inputs_follow_the_data_unless_set(workdir, tmp_path, monkeypatch, capsys):
    """--dashboard_inputs auto (the default): on for DART laps (the workdir's run), off for clean laps."""
    assert json.loads((workdir / "logs" / "bc" / "config.json").read_text())["model"]["dashboard_inputs"] is True
    monkeypatch.chdir(tmp_path)
    assert main.main(["expert", "--dataset", "clean", "--episodes", "1", "--max_frames", "40", "--noise", "0"]) == 0
    tiny_bc = ["train_bc", "--dataset", "clean", "--epochs", "1", "--batch_size", "16", "--eval_every", "0",
               "--val_fraction", "0"] + TINY
    capsys.readouterr()
    assert main.main([*tiny_bc, "--run_id", "auto"]) == 0
    assert "dashboard inputs: off" in capsys.readouterr().out
    assert main.main([*tiny_bc, "--run_id", "forced", "--dashboard_inputs", "1"]) == 0
    for run_id, expected in (("auto", False), ("forced", True)):
        config = json.loads((tmp_path / "logs" / run_id / "config.json").read_text())
        assert config["model"]["dashboard_inputs"] is expected


def test_checkpoints_and_config_round_trip(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    run = workdir / "logs" / "bc"
    names = sorted(p.stem for p in (run / "checkpoints").glob("*.pt"))
    assert names == ["best", "epoch_1", "epoch_2"]
    agent = Agent.load("logs/bc")
    state = torch.load(run / "checkpoints" / "epoch_2.pt", weights_only=True)
    for key, value in agent.model.state_dict().items():
        assert torch.equal(value, state["model"][key])
    assert agent.env_config.obs_size == 48 and agent.env_config.frame_stack == 2
    assert list(run.glob("events.out.tfevents.*"))


def test_only_every_nth_epoch_checkpoint_is_kept_beside_the_last_and_best(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    bc_args = ["train_bc", "--dataset", "tiny", "--batch_size", "32", "--eval_every", "0",
               "--val_fraction", "0.5"] + TINY
    assert main.main([*bc_args, "--run_id", "every2", "--epochs", "3", "--checkpoint_every", "2"]) == 0
    checkpoints = workdir / "logs" / "every2" / "checkpoints"
    assert sorted(p.stem for p in checkpoints.glob("*.pt")) == ["best", "epoch_2", "epoch_3"]
    assert main.main(["train_bc", "--resume_run_id", "every2", "--epochs", "4"]) == 0  # resumes from epoch_3
    assert sorted(p.stem for p in checkpoints.glob("*.pt")) == ["best", "epoch_2", "epoch_4"]
    assert (checkpoints / "latest").read_text().strip() == "epoch_4.pt"


def test_resume_bc_run_continues_epochs(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    assert main.main(["train_bc", "--resume_run_id", "bc", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "epoch 3:" in out and "epoch 1:" not in out
    assert (workdir / "logs" / "bc" / "checkpoints" / "epoch_3.pt").exists()
    # The saved policy is the running average of the end-of-epoch weights (--weight_average 0.9 by default),
    # across the resume too; the optimiser's own weights are kept beside it.
    epochs = [torch.load(workdir / "logs" / "bc" / "checkpoints" / f"epoch_{e}.pt", weights_only=True)
              for e in (1, 2, 3)]
    key = "actor.net.0.weight"
    trained = [state["trained_model"][key] for state in epochs]
    assert not torch.allclose(trained[1], trained[2])
    assert torch.equal(epochs[0]["model"][key], trained[0])
    expected = 0.9 * (0.9 * trained[0] + 0.1 * trained[1]) + 0.1 * trained[2]
    assert torch.allclose(epochs[2]["model"][key], expected, atol=1e-6)


def test_agent_drives_stock_car_racing(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    agent = Agent.load("logs/bc")
    env = gym.make("CarRacing-v3")
    frame, _ = env.reset(seed=1_000_000)
    agent.reset()
    actions = []
    for _ in range(6):
        action = agent.act(frame)
        assert action.shape == (3,) and env.action_space.contains(action.astype(np.float32))
        actions.append(action)
        frame, *_ = env.step(action)
    env.close()
    repeat = agent.env_config.action_repeat
    assert np.array_equal(actions[0], actions[repeat - 1])  # one decision per action_repeat frames


def test_test_command_writes_results(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    assert main.main(["test", "--resume_run_id", "bc", "--episodes", "2", "--num_envs", "2", "--seed", "1000000"]) == 0
    out = capsys.readouterr().out
    assert "raw return" in out and "penalized return" in out and "laps completed" in out
    import json

    result = json.loads((workdir / "logs" / "bc" / "test_results" / "latest_seed1000000_n2.json").read_text())
    assert [e["seed"] for e in result["episodes"]] == [1_000_000, 1_000_001]
    assert all(e["frames"] <= 1000 and e["penalized_return"] <= e["raw_return"] + 1e-6 for e in result["episodes"])
    # Another action than the run's own: results kept apart, and Agent.load really drives it.
    assert main.main(["test", "--resume_run_id", "bc", "--episodes", "2", "--seed", "1000000",
                      "--policy_action", "expected"]) == 0
    other = json.loads((workdir / "logs" / "bc" / "test_results" / "latest_seed1000000_n2_expected.json").read_text())
    assert [e["seed"] for e in other["episodes"]] == [1_000_000, 1_000_001]
    own, expected = Agent.load(workdir / "logs" / "bc"), Agent.load(workdir / "logs" / "bc", policy_action="expected")
    obs = np.random.default_rng(0).integers(0, 256, (4, *own.env_config.obs_shape), np.uint8)
    assert not np.allclose(own.decide(obs), expected.decide(obs))


def one_line_error(capsys, argv) -> str:
    assert main.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    return err


def test_clear_errors(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    assert "nope" in one_line_error(capsys, ["test", "--resume_run_id", "nope"])
    assert "missing" in one_line_error(capsys, ["train_bc", "--dataset", "missing", "--run_id", "x"] + TINY)
    assert "--run_id" in one_line_error(capsys, ["train_bc", "--dataset", "tiny", "--run_id", "bc"])
    assert "--weight_average" in one_line_error(capsys, ["train_bc", "--dataset", "tiny", "--weight_average", "1"])
    # train_bc reads the dashboard by default; fine-tuning it without would drop trained inputs.
    assert "--dashboard_inputs 0" in one_line_error(capsys, ["train_rl", "--resume_run_id", "bc",
                                                             "--dashboard_inputs", "0"])
    bad = workdir / "logs" / "bc" / "checkpoints" / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    assert "broken.pt" in one_line_error(capsys, ["test", "--resume_run_id", "bc", "--checkpoint", "broken"])
    assert "epoch_9" in one_line_error(capsys, ["test", "--resume_run_id", "bc", "--checkpoint", "epoch_9"])
    config_file = workdir / "logs" / "bc" / "config.json"
    good = config_file.read_text()
    config = json.loads(good)
    config["model"]["policy_action"] = "bogus"
    config_file.write_text(json.dumps(config))
    assert "policy_action" in one_line_error(capsys, ["test", "--resume_run_id", "bc"])
    config_file.write_text(good)


RL_TINY = ["--total_steps", "40", "--learning_starts", "20", "--batch_size", "16", "--num_envs", "1",
           "--eval_every", "0", "--checkpoint_every", "20", "--critic_warmup_steps", "10"]


def test_train_rl_fine_tunes_bc_run_then_resumes(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "rl"] + RL_TINY) == 0
    import json

    config = json.loads((workdir / "logs" / "rl" / "config.json").read_text())
    assert config["train"]["bc_run"] == "bc" and config["train"]["dataset"] == "tiny"
    assert config["env"]["obs_size"] == 48 and config["model"]["encoder"] == "small"  # the BC run's
    assert config["model"]["critic_layer_norm"] is True  # train_bc's default, kept by the fine-tuning
    assert config["model"]["policy_action"] == "mean"  # --policy_action auto with the KL cost; Agent.load drives it
    assert config["model"]["spread_limit"] == 1.0  # --spread_limit auto with the KL cost (both actors)
    assert config["train"]["target_entropy"] is None  # the KL cost has no entropy target
    assert config["train"]["bc_prior_kl"] is True  # --bc_prior_kl auto on DART laps
    assert config["train"]["bc_weight_floor"] == 0.5  # --bc_weight_floor auto with the KL cost
    assert config["train"]["actor_lr"] == 1e-4  # --actor_lr auto with the KL cost
    assert config["env"]["stall_limit"] == FINE_TUNING_STALL_LIMIT  # --stall_limit auto when fine-tuning
    first = torch.load(workdir / "logs" / "rl" / "checkpoints" / "latest_step.pt", weights_only=True)
    assert first["step"] == 40 and first["updates"] > 0
    capsys.readouterr()
    assert main.main(["train_rl", "--resume_run_id", "rl", "--total_steps", "60", "--bc_weight", "3",
                      "--dashboard_inputs", "0"]) == 0
    out = capsys.readouterr().out
    assert "resuming rl at step 40" in out
    assert "ignoring --bc_weight, --dashboard_inputs" in out  # a resume keeps its saved settings and says so
    second = torch.load(workdir / "logs" / "rl" / "checkpoints" / "latest_step.pt", weights_only=True)
    assert second["step"] == 60 and second["updates"] >= first["updates"]
    # A run saved before --bc_prior_kl and --bc_weight_floor existed trained with SAC's entropy bonus and lambda's
    # floor at a tenth, and resumes so (not as the auto of today's defaults).
    saved = json.loads((workdir / "logs" / "rl" / "config.json").read_text())
    for key in ("bc_prior_kl", "bc_weight_floor", "train_shove_share", "cut_returns_at_shoves",
                "imitate_critic_dataset", "actor_warmup_steps", "actor_lr_decay", "skipped_tile_penalty",
                "brake_trial", "gas_trial", "steer_trial"):
        del saved["train"][key]
    del saved["env"]["skipped_tile_penalty"]
    (workdir / "logs" / "rl" / "config.json").write_text(json.dumps(saved))
    with ExitStack() as claim:
        config = rl.resolve_run(main.build_parser().parse_args(["train_rl", "--resume_run_id", "rl"]), DistContext(),
                                claim)[1]
    assert config.bc_prior_kl is False and config.bc_weight_floor == 0.1
    assert config.train_shove_share == 1.0 and config.cut_returns_at_shoves is False  # every episode shoved, no cut
    assert config.imitate_critic_dataset is False and config.actor_warmup_steps == 0 and config.actor_lr_decay is False
    assert config.skipped_tile_penalty == 0.0 and config.brake_trial == config.gas_trial == config.steer_trial == 1.0
    assert ("missing (as before they existed): bc_prior_kl False, bc_weight_floor 0.1, train_shove_share 1.0, "
            "cut_returns_at_shoves False, imitate_critic_dataset False, actor_warmup_steps 0, actor_lr_decay False, "
            "skipped_tile_penalty 0.0, brake_trial 1.0, gas_trial 1.0, steer_trial 1.0") in capsys.readouterr().err


def test_kl_cost_off_for_clean_laps_and_stall_limit_on_unless_set(tmp_path, monkeypatch, capsys):
    """--bc_prior_kl auto: a clone of laps without recoveries is no prior to stay near; --stall_limit auto:
    its training episodes end when the car stops making progress; --stall_limit 0 turns that off."""
    monkeypatch.chdir(tmp_path)
    assert main.main(["expert", "--dataset", "clean", "--episodes", "1", "--max_frames", "80", "--noise", "0"]) == 0
    assert main.main(["train_bc", "--dataset", "clean", "--run_id", "bc", "--epochs", "1", "--batch_size", "16",
                      "--eval_every", "0", "--val_fraction", "0"] + TINY) == 0
    capsys.readouterr()
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "auto", "--kl_limit", "1",
                      "--stall_limit", "auto"] + RL_TINY) == 0  # auto is also the default (the DART test above)
    out = capsys.readouterr().out
    assert "KL cost to the BC policy: off" in out and "warning: --kl_limit acts on the KL cost, which is off" in out
    assert "stall limit: 100 frames without a new tile" in out
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "forced", "--bc_prior_kl", "1",
                      "--stall_limit", "0"] + RL_TINY) == 0
    for run_id, expected in (("auto", False), ("forced", True)):
        config = json.loads((tmp_path / "logs" / run_id / "config.json").read_text())
        assert config["train"]["bc_prior_kl"] is expected
        assert config["train"]["bc_weight_floor"] == (0.5 if expected else 0.3)  # --bc_weight_floor auto
        assert config["train"]["actor_lr"] == (1e-4 if expected else 3e-4)  # --actor_lr auto
        assert config["train"]["actor_lr_decay"] is (not expected)  # --actor_lr_decay auto
        # --skipped_tile_penalty auto: charged fine-tuning clean laps; the training env's reward is what applies it.
        assert config["train"]["skipped_tile_penalty"] == config["env"]["skipped_tile_penalty"] == (
            0.0 if expected else rl.SKIPPED_TILE_PENALTY)
        last = torch.load(tmp_path / "logs" / run_id / "checkpoints" / "latest_step.pt", weights_only=True)
        assert last["actor_optimizer"]["param_groups"][0]["lr"] == (1e-4 if expected else 0.0)  # fallen to 0 by the end
        # Training shoves (when on): in every episode with the KL cost, in half of them, returns cut, with SAC's bonus.
        assert config["train"]["train_shove_share"] == (1.0 if expected else 0.5)
        assert config["train"]["cut_returns_at_shoves"] is (not expected)
        assert config["env"]["stall_limit"] == (0 if expected else FINE_TUNING_STALL_LIMIT)
        # SAC's entropy bonus targets the BC policy's own entropy; the KL cost has no target.
        assert (config["train"]["target_entropy"] is None) is expected
        # --spread_limit auto: 1 with the KL cost, the old clamp with SAC's entropy bonus (as it was measured).
        assert config["model"]["spread_limit"] == (1.0 if expected else OLD_SPREAD_LIMIT)
        agent = Agent.load(tmp_path / "logs" / run_id)
        assert agent.model.actor.max_log_std == pytest.approx(np.log(config["model"]["spread_limit"]))
        # --policy_action auto: tanh(mean) with the KL cost, the average of the samples with SAC's bonus.
        assert config["model"]["policy_action"] == agent.model.policy_action == ("mean" if expected else "expected")
    # --actor_lr auto: the faster actor was measured on clean laps alone, not with recovery laps for the critic.
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "laps", "--critic_dataset", "clean",
                      "--actor_warmup_steps", "0"] + RL_TINY) == 0
    laps = json.loads((tmp_path / "logs" / "laps" / "config.json").read_text())["train"]
    assert laps["actor_lr"] == 1e-4 and laps["actor_lr_decay"] is False and laps["skipped_tile_penalty"] == 0.0


def test_train_rl_resume_performs_as_many_updates_as_a_straight_run(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    straight = RL_TINY[:]
    straight[straight.index("--total_steps") + 1] = "60"
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "straight"] + straight) == 0
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "split"] + RL_TINY) == 0  # 40 steps
    assert main.main(["train_rl", "--resume_run_id", "split", "--total_steps", "60"]) == 0  # refills 20, then 20 more

    def updates(run_id: str) -> int:
        return torch.load(workdir / "logs" / run_id / "checkpoints" / "latest_step.pt", weights_only=True)["updates"]

    assert updates("split") == updates("straight") == 60 - 20 + 1  # steps 20..60, one update each


def test_train_rl_collects_with_training_shoves_and_checkpoints_them(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "shoved", "--train_shove", "1",
                      "--bc_prior_kl", "1", "--cut_returns_at_shoves", "1"] + RL_TINY) == 0  # (the cut: its path runs)
    state = torch.load(workdir / "logs" / "shoved" / "checkpoints" / "latest_step.pt", weights_only=True)
    assert state["training_shoves"]["hold"] and max(state["training_shoves"]["hold"]) < 16  # pushing at the end
    assert abs(state["training_shoves"]["push"][0][0]) == 1.0
    saved = json.loads((workdir / "logs" / "shoved" / "config.json").read_text())
    assert saved["train"]["train_shove"] == 1.0 and saved["train"]["bc_prior_kl"] is True
    assert saved["train"]["cut_returns_at_shoves"] is True and saved["train"]["train_shove_share"] == 1.0  # given; auto
    # Without laps for the critic the robust recipe's auto settings stay off.
    assert saved["train"]["kl_on_road_only"] is False and saved["env"]["offtrack_limit"] == EnvConfig().offtrack_limit
    assert saved["train"]["imitate_critic_dataset"] is False and saved["train"]["actor_warmup_steps"] == 0


def test_train_rl_keeps_critic_only_demonstrations_apart(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(rl, "RECOVERY_ACTOR_WARMUP_STEPS", 10)  # the auto warm-up, short
    warmed_on, warm_up_actor = [], rl.warm_up_actor
    monkeypatch.setattr(rl, "warm_up_actor", lambda learner, demos, laps, *rest, **kw:
                        warmed_on.append((demos.frames.ndim, laps.frames.ndim))
                        or warm_up_actor(learner, demos, laps, *rest, **kw))
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "critic_demos", "--critic_dataset", "tiny",
                      "--critic_demo_ratio", "0.5", "--bc_prior_kl", "1"] + RL_TINY) == 0
    # The warm-up reads the frames' stored features (streams x slots x features; frames would have 5 dimensions):
    # reading the frames with random shifts lost (README, Results).
    assert warmed_on == [(3, 3)]
    out = capsys.readouterr().out
    demos_count = int(out.split(", demos: ")[1].split(" transitions")[0])
    assert f"critic-only demos: {demos_count} transitions" in out  # the same laps, loaded a second time
    saved = json.loads((workdir / "logs" / "critic_demos" / "config.json").read_text())
    assert saved["train"]["critic_dataset"] == "tiny" and saved["train"]["critic_demo_ratio"] == 0.5
    # Given laps for the critic, the auto settings are the robust recipe: training shoves, 2 s off the road, the laps
    # imitated after the actor's warm-up on them, and then the KL cost everywhere (its reference knows the ways back).
    assert saved["train"]["train_shove"] == rl.RECOVERY_TRAIN_SHOVE
    assert saved["env"]["offtrack_limit"] == rl.RECOVERY_OFFTRACK_LIMIT
    assert saved["train"]["imitate_critic_dataset"] is True and saved["train"]["actor_warmup_steps"] == 10
    assert saved["train"]["kl_on_road_only"] is False and "the laps imitated after 10 warm-up steps" in out
    assert main.main(["train_rl", "--resume_run_id", "critic_demos", "--total_steps", "60"]) == 0
    out = capsys.readouterr().out
    assert "the laps imitated" in out and "warm-up steps" not in out  # a resume continues; it does not warm up again
    # Flags given still win; not imitating the laps, no warm-up, and the KL cost on the road only.
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "critic_demos_plain", "--critic_dataset", "tiny",
                      "--bc_prior_kl", "1", "--train_shove", "0", "--imitate_critic_dataset", "0",
                      "--offtrack_limit", "20"]
                     + RL_TINY) == 0
    saved = json.loads((workdir / "logs" / "critic_demos_plain" / "config.json").read_text())
    assert saved["train"]["train_shove"] == 0 and saved["env"]["offtrack_limit"] == 20
    assert saved["train"]["imitate_critic_dataset"] is False and saved["train"]["actor_warmup_steps"] == 0
    assert saved["train"]["kl_on_road_only"] is True
    capsys.readouterr()
    assert "missing" in one_line_error(capsys, ["train_rl", "--resume_run_id", "bc", "--critic_dataset", "missing"])
    assert "--critic_demo_ratio" in one_line_error(capsys, ["train_rl", "--resume_run_id", "bc", "--critic_dataset",
                                                            "tiny", "--critic_demo_ratio", "0.9"])


def test_train_rl_ends_on_the_best_validated_policy(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    flags = [f for f in RL_TINY if f not in ("--eval_every", "0")]
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "rl_best", "--eval_every", "20",
                      "--eval_episodes", "1"] + flags) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("policy: ")]
    folder = workdir / "logs" / "rl_best" / "checkpoints"
    best = torch.load(folder / "best.pt", weights_only=True)["best_validation"]
    last = torch.load(folder / "latest_step.pt", weights_only=True)
    assert last["step"] == 40 and best["step"] in (0, 20, 40)
    assert last["best_validation"]["raw"] >= best["raw"]  # the last state knows the best score so far
    expected = "best.pt" if best["step"] < 40 else "latest_step.pt"  # the run's policy: best validated
    assert (folder / "latest").read_text().strip() == expected
    assert len(said) == 1 and ("last state" in said[0]) == (best["step"] == 40)  # the run says which it ends on
    # Every validated state is kept, so any of them can be tested (test --checkpoint step_N).
    assert {"step_0.pt", "step_20.pt", "step_40.pt"} <= {p.name for p in folder.glob("*.pt")}
    chosen = torch.load(folder / f"step_{best['step']}.pt", weights_only=True)["model"]
    assert all(torch.equal(chosen[k], v) for k, v in torch.load(folder / expected, weights_only=True)["model"].items())
    assert main.main(["train_rl", "--resume_run_id", "rl_best", "--total_steps", "60", "--eval_every", "0"]) == 0
    assert "resuming rl_best at step 40" in capsys.readouterr().out  # resume continues the last state, not best


def test_attempts_train_beside_the_run_and_it_ends_on_the_best_validated(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    flags = [f for f in RL_TINY if f not in ("--eval_every", "0")] + ["--eval_every", "20", "--eval_episodes", "1"]
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "tries", "--attempts", "2", "--seed", "3"]
                     + flags) == 0
    out = capsys.readouterr().out
    run = workdir / "logs" / "tries"
    second = run / "attempt_2"
    saved = json.loads((second / "config.json").read_text())["train"]
    assert saved["seed"] == 3 + rl.ATTEMPT_SEED_STRIDE and saved["attempts"] == 1 and saved["bc_run"] == "bc"
    assert json.loads((run / "config.json").read_text())["train"]["attempts"] == 2
    assert f"Test with  python main.py test --resume_run_id {Path('logs', 'tries', 'attempt_2')}" in out
    scores = [torch.load(folder / "checkpoints" / "latest_step.pt", weights_only=True)["best_validation"]["policy_raw"]
              for folder in (run, second)]
    chosen = 2 if scores[1] > scores[0] else 1
    assert f"the run's policy is attempt {chosen}'s" in out
    winner = (second if chosen == 2 else run) / "checkpoints"
    policy = torch.load(checkpoint_path(run), weights_only=True)["model"]
    own = torch.load(winner / (winner / "latest").read_text().strip(), weights_only=True)["model"]
    assert all(torch.equal(policy[k], v) for k, v in own.items())
    assert main.main(["test", "--resume_run_id", str(second), "--episodes", "1"]) == 0  # each attempt is a run
    # A resume with a larger budget continues both attempts, and chooses again.
    assert main.main(["train_rl", "--resume_run_id", "tries", "--total_steps", "60"]) == 0
    for folder in (run, second):
        assert torch.load(folder / "checkpoints" / "latest_step.pt", weights_only=True)["step"] == 60
    assert "the run's policy is attempt" in capsys.readouterr().out
    assert "--eval_every > 0" in one_line_error(capsys, ["train_rl", "--resume_run_id", "bc", "--attempts", "2"]
                                                + RL_TINY)


def test_the_trials_walk_the_deadzone_wider_the_brake_lighter_the_gas_heavier_then_the_steering_sharper_while_rising(
        workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    tried = []
    periodic = evaluate.validate

    def validations(score):
        """Fake validations returning score(brake, gas, steer): the trials' (recording the settings tried), and the
        periodic ones' (real drives with that return), which the trials take as the policy's as trained."""
        def raw(agent):
            return score(agent.brake_scale, agent.gas_scale, agent.steer_scale) - abs(agent.brake_deadzone - 0.05)

        def validate_trial(agent, episodes, num_envs):
            tried.append((agent.brake_deadzone, agent.brake_scale, agent.gas_scale, agent.steer_scale))
            return {"raw": {"mean": raw(agent)}}

        def validate_periodic(agent, episodes, num_envs, recorder=None):
            summary = periodic(agent, episodes, num_envs, recorder)
            return {**summary, "raw": {**summary["raw"], "mean": raw(agent)}}
        monkeypatch.setattr(rl, "validate", validate_trial)
        monkeypatch.setattr(evaluate, "validate", validate_periodic)

    validations(lambda brake, gas, steer: 901 + brake - gas - steer)  # 899.95 as trained, as every fake below
    flags = [f for f in RL_TINY if f not in ("--eval_every", "0")] + ["--eval_every", "20", "--eval_episodes", "1"]
    assert rl.RLConfig().deadzone_trial == 0  # off unless asked for
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "brake", "--deadzone_trial", "0.1"] + flags) == 0
    run = workdir / "logs" / "brake"
    config = json.loads((run / "config.json").read_text())
    # auto on DART laps, validations choosing
    assert config["train"]["brake_trial"] == rl.LIGHTEST_BRAKE and config["train"]["gas_trial"] == rl.HEAVIEST_GAS
    assert config["train"]["steer_trial"] == rl.SHARPEST_STEER
    assert config["train"]["deadzone_trial"] == 0.1
    assert [config["model"][key] for key in ModelConfig.DRIVING_SETTINGS] == [rl.DEADZONE_STEP, 1.0, 1.0, 1.0]
    assert "drives with brake_deadzone 0.05, brake_scale 1, gas_scale 1, steer_scale 1 (" in capsys.readouterr().out
    # The deadzone's walk peaks at its first step; the others' first steps validated lower: each ends there, each
    # from what the walk before it kept. The policy as trained is not validated again: its periodic validation said.
    assert tried == [(0.05, 1.0, 1.0, 1.0), (0.1, 1.0, 1.0, 1.0), (0.05, 1 - rl.BRAKE_STEP, 1.0, 1.0),
                     (0.05, 1.0, 1 + rl.GAS_STEP, 1.0), (0.05, 1.0, 1.0, 1 + rl.STEER_STEP)]
    # The validation peaks at brake 0.95, gas 1.05 and steering 1.05: the walks keep them, having tried the steps
    # past them (a resume trials again).
    tried.clear()
    validations(lambda brake, gas, steer: 900.15 - abs(brake - 0.95) - abs(gas - 1.05) - abs(steer - 1.05))
    assert main.main(["train_rl", "--resume_run_id", "brake"]) == 0
    model = json.loads((run / "config.json").read_text())["model"]
    assert (model["brake_scale"], model["gas_scale"], model["steer_scale"]) == (0.95, 1.05, 1.05)
    assert tried == [(0.05, 1.0, 1.0, 1.0), (0.1, 1.0, 1.0, 1.0), (0.05, 0.95, 1.0, 1.0), (0.05, 0.9, 1.0, 1.0),
                     (0.05, 0.95, 1.05, 1.0), (0.05, 0.95, 1.1, 1.0), (0.05, 0.95, 1.05, 1.05),
                     (0.05, 0.95, 1.05, 1.1)]
    verdicts = EventAccumulator(str(run), size_guidance={"tensors": 0}).Reload().Tensors("action_trials/text_summary")
    verdict = b"drives with brake_deadzone 0.05, brake_scale 0.95, gas_scale 1.05, steer_scale 1.05"
    assert any(verdict in t.tensor_proto.string_val[0] for t in verdicts)  # also in TensorBoard
    # Braking less, gassing more and steering sharper validate higher all the way: the last steps are kept, and the
    # run's policy (not its other checkpoints) drives them.
    validations(lambda brake, gas, steer: 899 - brake + gas + steer)
    assert main.main(["train_rl", "--resume_run_id", "brake"]) == 0
    model = json.loads((run / "config.json").read_text())["model"]
    assert (model["brake_scale"], model["gas_scale"], model["steer_scale"]) == (
        rl.LIGHTEST_BRAKE, rl.HEAVIEST_GAS, rl.SHARPEST_STEER)
    policy = Agent.load(run, brake_deadzone=0.0)
    as_trained = Agent.load(run, **ModelConfig.as_trained())
    assert (policy.brake_scale, policy.gas_scale, policy.steer_scale) == (
        rl.LIGHTEST_BRAKE, rl.HEAVIEST_GAS, rl.SHARPEST_STEER)
    assert Agent.load(run).brake_deadzone == rl.DEADZONE_STEP
    step_0 = Agent.load(run, checkpoint="step_0")
    assert [getattr(step_0, key) for key in ModelConfig.DRIVING_SETTINGS] == [0.0, 1.0, 1.0, 1.0]
    obs = np.random.default_rng(0).integers(0, 256, (8, *policy.env_config.obs_shape), np.uint8)
    faster, own = policy.decide(obs), as_trained.decide(obs)
    assert np.abs(own[:, 2]).max() > 1e-3 and 1e-3 < own[:, 1].max() < 1 / rl.HEAVIEST_GAS
    np.testing.assert_allclose(faster[:, 2], rl.LIGHTEST_BRAKE * own[:, 2], rtol=1e-6)
    np.testing.assert_allclose(faster[:, 1], rl.HEAVIEST_GAS * own[:, 1], rtol=1e-6)
    np.testing.assert_allclose(faster[:, 0], np.clip(rl.SHARPEST_STEER * own[:, 0], -1, 1), rtol=1e-6)
    assert np.abs(faster[:, 0]).max() > np.abs(own[:, 0]).max() > 1e-3
    # The deadzone releases the brakes below it and leaves the rest (to the brake scale)
    middle = float(np.median(own[:, 2]))
    released = Agent.load(run, **{**ModelConfig.as_trained(), "brake_deadzone": middle}).decide(obs)
    np.testing.assert_array_equal(released[:, 2], np.where(own[:, 2] < middle, 0.0, own[:, 2]))
    assert 0 < (released[:, 2] == 0).sum() < len(obs)
    np.testing.assert_array_equal(released[:, :2], own[:, :2])
    assert Agent.load(run, gas_scale=1.5).decide(np.repeat(obs, 8, axis=0))[:, 1].max() <= 1  # capped at full gas
    assert np.abs(Agent.load(run, steer_scale=2).decide(obs)[:, 0]).max() <= 1  # clipped to full lock
    # test drives the run's scales; other scales' results are kept apart
    assert main.main(["test", "--resume_run_id", "brake", "--episodes", "1"]) == 0
    assert main.main(["test", "--resume_run_id", "brake", "--episodes", "1", "--brake_scale", "1"]) == 0
    assert main.main(["test", "--resume_run_id", "brake", "--episodes", "1", "--gas_scale", "1"]) == 0
    assert main.main(["test", "--resume_run_id", "brake", "--episodes", "1", "--brake_deadzone", "0"]) == 0
    assert main.main(["test", "--resume_run_id", "brake", "--episodes", "1", "--steer_scale", "1"]) == 0
    results = {p.name for p in (run / "test_results").glob("*.json")}
    assert {"latest_seed1000000_n1.json", "latest_seed1000000_n1_brake1.json", "latest_seed1000000_n1_gas1.json",
            "latest_seed1000000_n1_brake_deadzone0.json", "latest_seed1000000_n1_steer1.json"} <= results
    capsys.readouterr()
    assert "--brake_scale" in one_line_error(capsys, ["test", "--resume_run_id", "brake", "--brake_scale", "2"])
    assert "--gas_scale" in one_line_error(capsys, ["test", "--resume_run_id", "brake", "--gas_scale", "0.5"])
    assert "--brake_deadzone" in one_line_error(capsys, ["test", "--resume_run_id", "brake", "--brake_deadzone", "1"])
    assert "--steer_scale" in one_line_error(capsys, ["test", "--resume_run_id", "brake", "--steer_scale", "0.9"])
    for flag, bad in (("--brake_trial", "0"), ("--brake_trial", "1.5"), ("--gas_trial", "0.9"), ("--gas_trial", "3"),
                      ("--deadzone_trial", "1"), ("--deadzone_trial", "-0.1"), ("--steer_trial", "0.9"),
                      ("--steer_trial", "3")):
        assert flag in one_line_error(capsys, ["train_rl", "--resume_run_id", "bc", flag, bad] + RL_TINY)
    # Without the deadzone trial its verdict names only the settings that walked.
    saved = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**saved, "train": {**saved["train"], "deadzone_trial": 0.0}}))
    assert main.main(["train_rl", "--resume_run_id", "brake"]) == 0
    assert ("drives with brake_scale 0.9, gas_scale 1.1, steer_scale 1.1 (config.json model.brake_scale, "
            "model.gas_scale, model.steer_scale)" in capsys.readouterr().out)
    # Without periodic validations the trials validate the policy as trained first.
    tried.clear()
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "unvalidated", "--brake_trial", "0.95",
                      "--gas_trial", "1"] + RL_TINY) == 0
    assert tried == [(0.0, 1.0, 1.0, 1.0), (0.0, 0.95, 1.0, 1.0)]


def test_the_brake_trial_steps_end_on_the_lightest_scale_asked_for():
    assert rl.trial_scales(0.8, rl.BRAKE_STEP) == [0.95, 0.9, 0.85, 0.8]
    assert rl.trial_scales(0.87, rl.BRAKE_STEP) == [0.95, 0.9, 0.87]
    assert rl.trial_scales(0.97, rl.BRAKE_STEP) == [0.97]
    assert rl.trial_scales(1.1, rl.GAS_STEP) == [1.05, 1.1] and rl.trial_scales(1.12, rl.GAS_STEP) == [1.05, 1.1, 1.12]
    assert rl.trial_scales(1.0, rl.BRAKE_STEP) == rl.trial_scales(1.0, rl.GAS_STEP) == []  # no trial
    assert rl.trial_scales(0.1, rl.DEADZONE_STEP, start=0.0) == [0.05, 0.1]  # from no deadzone
    assert rl.trial_scales(0.12, rl.DEADZONE_STEP, start=0.0) == [0.05, 0.1, 0.12]
    assert rl.trial_scales(0.0, rl.DEADZONE_STEP, start=0.0) == []


def test_a_run_stopped_inside_its_second_attempt_resumes_there_and_then_chooses(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    validate = rl.validate_on_tracks

    def ctrl_c_in_the_second_attempt(agent, episodes, num_envs, writer, step, **kwargs):
        if "attempt_2" in str(writer.log_dir) and step == 20:  # Ctrl-C mid-validation, once
            monkeypatch.setattr(rl, "validate_on_tracks", validate)
            raise KeyboardInterrupt
        return validate(agent, episodes, num_envs, writer, step, **kwargs)

    monkeypatch.setattr(rl, "validate_on_tracks", ctrl_c_in_the_second_attempt)
    flags = [f for f in RL_TINY if f not in ("--eval_every", "0")] + ["--eval_every", "20", "--eval_episodes", "1"]
    assert main.main(["train_rl", "--resume_run_id", "bc", "--run_id", "cut", "--attempts", "2"] + flags) == 130
    assert "the run's policy is attempt" not in capsys.readouterr().out  # no choice before every attempt is done
    run, second = workdir / "logs" / "cut", workdir / "logs" / "cut" / "attempt_2"
    first_done = torch.load(run / "checkpoints" / "latest_step.pt", weights_only=True)
    assert torch.load(second / "checkpoints" / "latest_step.pt", weights_only=True)["step"] == 20
    assert main.main(["train_rl", "--resume_run_id", "cut"]) == 0
    out = capsys.readouterr().out
    first = torch.load(run / "checkpoints" / "latest_step.pt", weights_only=True)
    assert first["step"] == first_done["step"] == 40  # the finished attempt is not trained again
    assert all(torch.equal(first["model"][k], v) for k, v in first_done["model"].items())
    assert torch.load(second / "checkpoints" / "latest_step.pt", weights_only=True)["step"] == 40
    assert "attempt 2 of 2" in out and "resuming attempt_2 at step 20" in out, out
    assert "the run's policy is attempt" in out


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])  # Ctrl-C, and what schedulers send
def test_interrupt_writes_final_checkpoint(workdir, tmp_path, signal_name):
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    shutil.copytree(workdir / "logs" / "bc", tmp_path / "logs" / "bc")
    shutil.copytree(workdir / "data", tmp_path / "data")
    root = Path(__file__).resolve().parents[1]
    args = [sys.executable, str(root / "main.py"), "train_rl", "--resume_run_id", "bc", "--run_id", "stop"] + RL_TINY
    args[args.index("--total_steps") + 1] = "100000"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    # A suite started in the background of a non-interactive shell inherits SIGINT ignored; Ctrl-C is the default.
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=restore_sigint)
    latest = tmp_path / "logs" / "stop" / "checkpoints" / "latest"
    deadline = time.time() + 240
    while not latest.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    if not latest.exists():
        process.kill()
        pytest.fail(f"no checkpoint within 240 s: {process.communicate()[1][-2000:]}")
    process.send_signal(getattr(signal, signal_name))
    _, err = process.communicate(timeout=300)  # generous: a loaded machine once needed more than 120 s
    assert process.returncode == 130, err[-2000:]
    state = torch.load(tmp_path / "logs" / "stop" / "checkpoints" / "latest_step.pt", weights_only=True)
    assert 20 <= state["step"] < 100000 and "interrupted" in err


def test_frozen_features_bench_clones_a_new_actor_on_the_bc_runs_fixed_encoder(workdir, monkeypatch):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import frozen_features

    monkeypatch.chdir(workdir)
    run_id = frozen_features.train_head("bc", "tiny")
    head, bc = Agent.load(workdir / "logs" / run_id).model, Agent.load(workdir / "logs" / "bc").model
    assert all(torch.equal(a, b) for a, b in zip(head.encoder.state_dict().values(), bc.encoder.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(head.actor.state_dict().values(), bc.actor.state_dict().values()))
    data = demo_replay(demos.load_dataset(str(workdir / "data" / "tiny")), EnvConfig(obs_size=48, frame_stack=2), 0.99)
    batch = data.sample(64, np.random.default_rng(0))
    torch.manual_seed(0)  # the head's starting actor
    untrained = ActorCritic((2, 48, 48),
                            ModelConfig(**json.loads((workdir / "logs" / "bc" / "config.json").read_text())["model"]))
    untrained.encoder.load_state_dict(bc.encoder.state_dict())

    def actor_error(model: ActorCritic) -> float:
        with torch.no_grad():
            return bc_losses(model, model, batch, torch.device("cpu"), 0, 0.0)["actor_loss"].item()

    assert actor_error(head) < actor_error(untrained)  # the new actor learnt the laps
    assert frozen_features.train_head("bc", "tiny") == run_id  # trained once, then read back
