"""Bad numbers and names on the command line, malformed run configs, a run being trained elsewhere, a buffer
larger than the RAM and a full or read-only disk are one-line errors (exit 2) before the work starts; a new run
that fails leaves no directory; a train_rl whose environment workers died with it (SIGTERM to the process group)
still ends as an interrupt (exit 130)."""
import errno
import os
import tempfile
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest

import main

from flags import TINY


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def no_training(monkeypatch):
    """Should a bad flag get through, the test fails at once instead of training."""
    import bc
    import rl

    def refuse(*args, **kwargs):
        raise AssertionError("bad flags must be refused before training starts")

    monkeypatch.setattr(bc, "train_bc", refuse)
    monkeypatch.setattr(rl, "train_rl", refuse)


def one_line_error(capsys, argv) -> str:
    assert main.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    return err


BAD_NAMES = ["../../tmp/x", "/tmp/x", "..", ".hidden", "a\nb"]


@pytest.mark.parametrize("flags", [
    ["--lr", "nan"], ["--lr", "inf"], ["--lr", "0"], ["--gamma", "5"], ["--gamma", "nan"], ["--gamma", "0"],
    ["--augment_pad", "-1"], ["--checkpoint_every", "0"], ["--critic_weight", "nan"], ["--offtrack_penalty", "nan"],
    ["--batch_size", str(10**12)],
    *(["--run_id", name] for name in BAD_NAMES),
])
def test_train_bc_refuses_bad_values(capsys, workdir, no_training, flags):
    assert flags[0] in one_line_error(capsys, ["train_bc", "--dataset", "none", *TINY, *flags])
    assert not (workdir / "logs").exists()


@pytest.mark.parametrize("flags", [
    ["--updates_per_step", "inf"], ["--updates_per_step", "1001"], ["--actor_lr", "nan"], ["--critic_lr", "0"],
    ["--tau", "nan"], ["--init_temperature", "nan"], ["--target_entropy", "inf"], ["--augment_pad", "-1"],
    ["--bc_weight", "nan", "--dataset", "none"], ["--demo_ratio", "nan"], ["--offtrack_penalty", "inf"],
    ["--batch_size", str(10**12)], ["--num_envs", "100000"], ["--spread_limit", "0"], ["--spread_limit", "nan"],
    ["--stall_limit", "-3"], ["--stall_penalty", "-1"],
    *(["--run_id", name] for name in BAD_NAMES),
])
def test_train_rl_refuses_bad_values(capsys, workdir, no_training, flags):
    assert flags[0] in one_line_error(capsys, ["train_rl", "--buffer_size", "1000", *TINY, *flags])
    assert not (workdir / "logs").exists()


def test_test_refuses_a_negative_seed(capsys):
    assert "--seed" in one_line_error(capsys, ["test", "--resume_run_id", "nope", "--seed", "-1"])


def test_test_refuses_a_huge_number_of_environment_processes(capsys):
    assert "--num_envs" in one_line_error(capsys, ["test", "--resume_run_id", "nope", "--num_envs", "100000"])


def test_a_replay_buffer_larger_than_the_ram_is_refused_before_allocating(capsys, workdir):
    err = one_line_error(capsys, ["train_rl", "--run_id", "huge", "--buffer_size", str(10**12), *TINY])
    assert "--buffer_size" in err and "GiB of RAM" in err
    assert not (workdir / "logs" / "huge").exists()


@pytest.mark.parametrize("command", [["train_bc"], ["train_rl", "--buffer_size", "1000"]])
def test_a_run_failing_before_its_first_checkpoint_leaves_no_directory(capsys, workdir, command):
    argv = [*command, "--run_id", "again", "--dataset", "missing", *TINY]
    for _ in range(2):  # the id stays free: the second try fails the same way, not with "already exists"
        assert "data/missing does not exist" in one_line_error(capsys, argv)
        assert not (workdir / "logs" / "again").exists()


def test_a_run_being_trained_cannot_be_trained_by_a_second_process(capsys, workdir, no_training):
    from runs import claim_run, save_config

    bc_run, rl_run = workdir / "logs" / "bc_busy", workdir / "logs" / "rl_busy"
    with claim_run(bc_run, new=True), claim_run(rl_run, new=True):  # as if two trainings were running
        save_config(bc_run, bc_config())
        for argv in (["train_bc", "--resume_run_id", "bc_busy"], ["train_rl", "--run_id", "rl_busy", *TINY]):
            err = one_line_error(capsys, argv)
            assert "_busy' is being trained by process" in err and str(os.getpid()) in err


def bc_config() -> dict:
    """config.json of a BC run with the default settings."""
    from bc import BCConfig
    from env import EnvConfig
    from networks import ModelConfig

    return {"kind": "bc", "train": asdict(BCConfig()), "env": asdict(EnvConfig()), "model": asdict(ModelConfig())}


@pytest.fixture
def untrained_run(workdir):
    from runs import save_config

    save_config(workdir / "logs" / "r", bc_config())
    return workdir / "logs" / "r"


def test_test_checks_that_results_can_be_written_before_evaluating(capsys, monkeypatch, untrained_run):
    import evaluate

    monkeypatch.setattr(evaluate, "evaluate", lambda *args, **kwargs: pytest.fail("evaluated before checking the disk"))
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=0, f_frsize=4096))
    assert "test_results: only 0.0 MiB free" in one_line_error(capsys, ["test", "--resume_run_id", "r"])

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    err = one_line_error(capsys, ["test", "--resume_run_id", "r"])
    assert "test_results: cannot write here (Read-only file system)" in err


@pytest.mark.parametrize("command", [["test"], ["train_bc"], ["train_rl"]])
def test_a_malformed_run_config_is_a_one_line_error_naming_it(capsys, untrained_run, command):
    (untrained_run / "config.json").write_text('{"kind": "bc"}')
    assert "logs/r/config.json: \"train\" must be" in one_line_error(capsys, [*command, "--resume_run_id", "r"])


class DeadWorkers:
    """The vector env after SIGTERM reached the whole process group: the workers are gone, the step is
    interrupted (main turns SIGTERM into KeyboardInterrupt), and close() meets a broken pipe."""

    closed = False

    def __init__(self, num_envs, env_config, **kwargs):
        self.obs = np.zeros((num_envs, *env_config.obs_shape), np.uint8)

    def reset(self, seed=None, options=None):
        return self.obs, {}

    def step(self, actions):
        raise KeyboardInterrupt

    def close(self, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")


def test_train_rl_interrupted_with_its_workers_exits_130_with_a_checkpoint(capsys, workdir, monkeypatch):
    import rl

    monkeypatch.setattr(rl, "make_vec_env", DeadWorkers)
    argv = ["train_rl", "--run_id", "stopped", "--num_envs", "1", "--eval_every", "0", "--buffer_size", "1000", *TINY]
    assert main.main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    assert (workdir / "logs" / "stopped" / "checkpoints" / "latest_step.pt").exists()


def test_bc_epochs_zero_is_refused_not_replaced_by_the_default(capsys, no_training):
    assert "--epochs" in one_line_error(capsys, ["train_bc", "--dataset", "d", "--epochs", "0"] + TINY)


@pytest.mark.parametrize("command", sorted(main.COMMANDS))
def test_help_shows_real_defaults_and_never_none(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")  # one flag per line, so the checks below see whole help texts
    with pytest.raises(SystemExit):
        main.main([command, "--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: False)" not in text and "--help" in text
    if command in ("train_bc", "train_rl"):
        assert "(default 10.0; fine-tuning: the BC run's)\n" in text  # --offtrack_penalty: its own words only
        assert "random seed (default: 0)" in text  # a real default is still shown
