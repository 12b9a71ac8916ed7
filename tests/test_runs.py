"""Run directories: checkpoints load as plain data only and resolve inside the run; Ctrl-C waits until a checkpoint
is written; failed writes leave no temporary file, killed writers' files are removed by the next claim; new runs
need plain names; one training per run at a time; a failed new run leaves nothing; config.json is checked."""
import errno
import os
import pickle
import re
import signal
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from atomic_files import atomic_write_text, create_temp, remove_stale_temp_files
from errors import UserError
from runs import (LOG_ROOT, checkpoint_path, claim_run, load_checkpoint, load_config, rng_from_state, rng_state,
                  run_dir, save_checkpoint, save_config)

ROOT = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_crafted_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    file = tmp_path / "evil.pt"
    with open(file, "wb") as f:
        pickle.dump({"model": {}, "x": Payload(marker)}, f)
    with pytest.raises(UserError, match="evil.pt"):
        load_checkpoint(file)
    assert not marker.exists()


def test_checkpoint_with_generator_state_round_trips(tmp_path):
    rng = np.random.default_rng(5)
    rng.random(3)
    save_checkpoint(tmp_path, "latest_step", {"model": {"w": torch.ones(2)}, "numpy_rng": rng_state(rng)})
    state = load_checkpoint(checkpoint_path(tmp_path))
    assert rng_from_state(state["numpy_rng"]).random() == rng.random()


def test_checkpoint_copies_are_the_same_bytes_and_latest_names_the_written_one(tmp_path):
    save_checkpoint(tmp_path, "step_20", {"model": {"w": torch.arange(3.0)}}, copies=("best",))
    folder = tmp_path / "checkpoints"
    assert (folder / "best.pt").read_bytes() == (folder / "step_20.pt").read_bytes()
    assert (folder / "latest").read_text() == "step_20.pt"
    save_checkpoint(tmp_path, "step_40", {"model": {"w": torch.zeros(3)}})  # no copy: best stays step 20's
    assert load_checkpoint(folder / "best.pt")["model"]["w"].tolist() == [0.0, 1.0, 2.0]
    # `test --checkpoint latest` names the policy, as the default does (it once loaded the pointer file itself)
    assert checkpoint_path(tmp_path, "latest") == checkpoint_path(tmp_path) == folder / "step_40.pt"


class InterruptedWhilePickled:
    """Ctrl-C in the middle of torch.save. Before the fix the checkpoint was lost (and where the interrupt hit
    torch's zip writer, it surfaced as a RuntimeError: exit 1 and a traceback instead of a clean stop)."""

    def __reduce__(self):
        signal.raise_signal(signal.SIGINT)
        return (OrderedDict, ())  # saved as an empty mapping, which a checkpoint may hold


def test_ctrl_c_during_a_checkpoint_write_waits_until_the_whole_checkpoint_is_written(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "step_20", {"model": {"w": torch.ones(2)}, "extra": InterruptedWhilePickled()},
                        copies=("best",))
    folder = tmp_path / "checkpoints"
    assert (folder / "latest").read_text() == "step_20.pt"
    assert (folder / "best.pt").read_bytes() == (folder / "step_20.pt").read_bytes()
    assert load_checkpoint(folder / "step_20.pt")["model"]["w"].tolist() == [1.0, 1.0]


def test_checkpoint_names_resolve_only_inside_the_run(tmp_path, monkeypatch):
    run = tmp_path / "run"
    save_checkpoint(run, "best", {"model": {}})
    monkeypatch.chdir(tmp_path)
    (tmp_path / "best.pt").write_bytes(b"a stranger's file")  # same name in the working directory
    assert checkpoint_path(run, "best") == run / "checkpoints" / "best.pt"
    for bad in ("../best.pt", str(tmp_path / "best.pt"), ".."):
        with pytest.raises(UserError, match="not a path"):
            checkpoint_path(run, bad)
    (run / "checkpoints" / "latest").write_text("/etc/passwd")
    with pytest.raises(UserError, match="not a path"):
        checkpoint_path(run)


def test_failed_checkpoint_write_leaves_no_temp_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "latest_step", {"model": {"w": torch.ones(2)}})
    with pytest.raises(Exception):
        save_checkpoint(tmp_path, "latest_step", {"model": {}, "f": lambda: 0})  # a lambda cannot be pickled

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(UserError, match="best.pt: cannot write \\(No space"):
        save_checkpoint(tmp_path, "best", {"model": {}})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "latest_step.pt"]
    assert load_checkpoint(checkpoint_path(tmp_path))["model"]["w"].tolist() == [1.0, 1.0]


def test_failed_text_write_leaves_no_temp_file(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_text(target, "{}")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "\ud800")  # a lone surrogate cannot be encoded
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"] and target.read_text() == "{}"


@pytest.mark.parametrize("name", ["../../tmp/x", "/tmp/x", "..", ".hidden", "a\nb", "a/b", ""])
def test_a_new_run_needs_a_plain_name(name):
    with pytest.raises(UserError, match="--run_id") as info:
        run_dir(name, must_exist=False)
    assert "\n" not in str(info.value)


def test_run_names_and_existing_run_paths(tmp_path):
    assert run_dir("bc_s0.v2-a", must_exist=False) == LOG_ROOT / "bc_s0.v2-a"
    save_config(tmp_path / "somewhere" / "run", {"kind": "bc"})
    # existing runs: a path is fine
    assert run_dir(str(tmp_path / "somewhere" / "run")) == tmp_path / "somewhere" / "run"
    with pytest.raises(UserError, match=r"run id 'logs/gone': no run at logs/gone \(expected logs/gone/config.json\)"):
        run_dir("logs/gone")  # a missing path is named as given, not looked for under logs/logs/


def test_a_run_is_claimed_by_one_training_at_a_time(tmp_path):
    run = tmp_path / "busy"
    with claim_run(run, new=True):
        with pytest.raises(UserError, match=rf"run id 'busy' is being trained by process {os.getpid()} ") as info:
            with claim_run(run, new=False):  # a second open of the lock file conflicts even in one process
                pass
        assert "\n" not in str(info.value)
        save_checkpoint(run, "epoch_1", {"model": {}})
    with claim_run(run, new=False):  # released at the end of the block
        pass


def test_a_claim_ends_with_its_process_even_on_kill_9_and_its_temp_files_go(tmp_path):
    run = tmp_path / "killed"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_AND_WRITE, str(run)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "writing"
        with pytest.raises(UserError, match=f"being trained by process {holder.pid} "):
            with claim_run(run, new=False):
                pass
        live_temp = [p.name for p in (run / "checkpoints").iterdir()]
        assert len(live_temp) == 1 and str(holder.pid) in live_temp[0]  # a live writer's file is left alone
        remove_stale_temp_files(run / "checkpoints")
        assert [p.name for p in (run / "checkpoints").iterdir()] == live_temp
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    with claim_run(run, new=False):
        assert list((run / "checkpoints").iterdir()) == []  # the killed writer's temporary file is gone


HOLD_AND_WRITE = """
import sys, time
from pathlib import Path
from atomic_files import create_temp
from runs import claim_run
run = Path(sys.argv[1])
with claim_run(run, new=True):
    (run / "checkpoints").mkdir()
    create_temp(run / "checkpoints" / "best.pt")  # a checkpoint being written
    print("writing", flush=True)
    time.sleep(60)
"""


def test_only_dead_local_writers_temp_files_are_removed(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(ended.stdout)
    fd, own = create_temp(tmp_path / "config.json")
    os.close(fd)
    host = own.name.rsplit(".", 2)[-2].rsplit("-", 1)[0]  # names end in .<host>-<pid>.tmp
    dead = tmp_path / f".best.pt.x1y2.{host}-{dead_pid}.tmp"
    elsewhere = tmp_path / f".best.pt.x1y2.otherhost-{dead_pid}.tmp"  # another host's pids are not ours to judge
    user_file = tmp_path / "notes.tmp"
    for path in (dead, elsewhere, user_file):
        path.write_text("")
    remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([own.name, elsewhere.name, user_file.name])


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_nothing(tmp_path):
    run = tmp_path / "failed"
    with pytest.raises(UserError, match="no dataset"):
        with claim_run(run, new=True):
            save_config(run, {"kind": "bc"})
            raise UserError("no dataset")
    assert not run.exists()
    with pytest.raises(KeyboardInterrupt):
        with claim_run(run, new=True):
            save_checkpoint(run, "epoch_1", {"model": {}})
            raise KeyboardInterrupt
    assert (run / "checkpoints" / "epoch_1.pt").exists()  # a checkpoint is kept: the run can resume
    with pytest.raises(UserError):
        with claim_run(run, new=False):  # a failed resume never removes the run
            (run / "checkpoints" / "latest").unlink()
            raise UserError("bad resume")
    assert (run / "checkpoints" / "epoch_1.pt").exists()


def test_full_or_read_only_disk_is_refused_when_the_run_is_claimed(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "statvfs", lambda path: SimpleNamespace(f_bavail=10, f_frsize=4096))
    with pytest.raises(UserError, match=r"only 0\.0 MiB free"):
        with claim_run(tmp_path / "full", new=True):
            raise AssertionError("must not start")
    assert not (tmp_path / "full").exists()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(UserError, match="cannot write the run directory \\(Read-only file system\\)"):
        with claim_run(tmp_path / "ro", new=True):
            raise AssertionError("must not start")


@pytest.mark.parametrize("text, expected", [
    ('{"kind": "bc"}', '"train" must be a JSON object'),
    ("[1, 2]", "not a run config"),
    ('{"kind": ["bc"]}', "not a run config"),
    ('{"kind": "bc", "train": {"epochs": "ten"}, "env": {}, "model": {}}', "train.epochs must be int, got \"ten\""),
    ('{"kind": "rl", "train": {}, "env": {"grayscale": 1}, "model": {}}', "env.grayscale must be bool"),
    ('{"kind": "rl", "train": {"target_entropy": "high"}, "env": {}, "model": {}}',
     "train.target_entropy must be float | None"),
    ('{"kind": "bc", "train": {}, "env": {}, "model": null}', '"model" must be a JSON object'),
    ("\xff\xfe", "cannot read run config"),
])
def test_malformed_config_is_a_one_line_error_naming_the_file(tmp_path, text, expected):
    (tmp_path / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(UserError, match=re.escape(expected)) as info:
        load_config(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value) and "\n" not in str(info.value)


def test_config_of_another_version_loads_with_defaults_and_a_warning(tmp_path, capsys):
    save_config(tmp_path, {"kind": "bc", "train": {"epochs": 3, "removed_ablation": 1}, "env": {},
                           "model": {"num_qs": 4}})
    config = load_config(tmp_path)
    assert config["train"]["epochs"] == 3 and "removed_ablation" not in config["train"]
    assert config["train"]["lr"] == 3e-4 and config["model"]["num_qs"] == 4 and config["env"]["frame_stack"] == 3
    err = capsys.readouterr().err
    assert "ignored (unknown to this version): removed_ablation" in err
    # A run saved before the brake and gas trials drives as trained: those settings default without a word.
    assert "model settings missing (defaults used): " in err  # the others still say so
    assert "brake_scale" not in err and "gas_scale" not in err and config["model"]["gas_scale"] == 1.0
    assert "brake_deadzone" not in err and config["model"]["brake_deadzone"] == 0.0
