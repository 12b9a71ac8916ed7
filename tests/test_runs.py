"""Run directories: checkpoints load as plain data only and resolve inside the run."""
import pickle

import numpy as np
import pytest
import torch

from errors import UserError
from runs import checkpoint_path, load_checkpoint, rng_from_state, rng_state, save_checkpoint


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
