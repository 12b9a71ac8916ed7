"""Run directories: checkpoints load as plain data only and resolve inside the run; failed writes leave no
temporary file; new runs need plain names."""
import pickle

import numpy as np
import pytest
import torch

from errors import UserError
from runs import (LOG_ROOT, atomic_write_text, checkpoint_path, load_checkpoint, rng_from_state, rng_state, run_dir,
                  save_checkpoint, save_config)


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
    with pytest.raises(OSError, match="No space"):
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
    assert run_dir(str(tmp_path / "somewhere" / "run")) == tmp_path / "somewhere" / "run"  # existing runs: a path is fine
