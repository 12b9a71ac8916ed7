"""bench/training_episodes.py: a run's training episodes averaged window by window, from its TensorBoard log."""
import sys
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import training_episodes  # noqa: E402


def test_each_window_averages_the_episodes_that_ended_in_it(tmp_path, monkeypatch, capsys):
    run = tmp_path / "logs" / "bcsac"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    writer = SummaryWriter(str(run))
    for step, stalled in ((100, 1.0), (2_000, 0.0), (3_500, 1.0), (9_100, 0.0)):
        writer.add_scalar("train/episode_stalled", stalled, step)
    writer.close()
    monkeypatch.setattr(sys, "argv", ["training_episodes.py", str(run), "--window", "3000", "--quantities", "stalled"])
    training_episodes.main()
    out = capsys.readouterr().out
    assert "| 0–3,000 | 3,000–6,000 | 6,000–9,000 | 9,000–12,000 |" in out
    assert "| bcsac | 0.50 (2) | 1.00 (1) | — | 0.00 (1) |" in out  # an empty window is a dash, not a zero

    monkeypatch.setattr(sys, "argv", ["training_episodes.py", str(run), "--quantities", "raw_return"])
    with pytest.raises(SystemExit, match="run bcsac logged no train/episode_raw_return"):
        training_episodes.main()
