"""bench/checkpoint_average.py: the averaged checkpoint holds the mean of the named steps' weights, leaves the run's
policy alone, and is tested beside it."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import checkpoint_average  # noqa: E402


def test_the_average_of_the_named_steps_is_tested_beside_the_runs_policy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = Path("logs") / "bcsac"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    for step, weight in ((10, 1.0), (20, 3.0)):
        model = {"w": torch.full((2,), weight), "count": torch.tensor(step)}  # an integer buffer is not averaged
        torch.save({"model": model, "step": step}, run / "checkpoints" / f"step_{step}.pt")
    (run / "checkpoints" / "latest").write_text("step_10.pt")
    tests = []

    def tested(run_id, episodes, checkpoint=None):
        tests.append(checkpoint)
        return {"raw": {"mean": 900.0 if checkpoint is None else 910.0, "min": 800.0}, "laps_completed": episodes}

    monkeypatch.setattr(checkpoint_average, "tested", tested)
    monkeypatch.setattr(sys, "argv", ["checkpoint_average.py", "bcsac", "--steps", "10", "20", "--test_episodes", "2"])
    checkpoint_average.main()
    average = torch.load(run / "checkpoints" / "average_10_20.pt", weights_only=True)
    assert average["model"]["w"].tolist() == [2.0, 2.0] and average["model"]["count"].item() == 20
    assert average["step"] == 20 and (run / "checkpoints" / "latest").read_text() == "step_10.pt"
    assert tests == [None, "average_10_20"]
    out = capsys.readouterr().out
    assert "| bcsac | 900.0 (2/2, min 800) | 910.0 (2/2, min 800) |" in out and "the average: 910.0 over 1 runs" in out
    monkeypatch.setattr(sys, "argv", ["checkpoint_average.py", "bcsac", "--steps", "10", "30"])
    with pytest.raises(SystemExit) as exit_:
        checkpoint_average.main()
    assert exit_.value.code == 2 and "checkpoint 'step_30' not found" in capsys.readouterr().err
