"""`test --shove`: deterministic pushes, the same for every policy, how excursions/recoveries are counted, and how
they are shown beside the plain results."""
import json

import numpy as np
import pytest

import main
from evaluate import RECOVERY_FRAMES, SHOVE_HOLD_FRAMES, Shoves, side_by_side, summarize
from test_bc_agent import workdir  # noqa: F401  (the tiny BC run fixture)


def shove_pattern(track_seed: int, policy_action: np.ndarray, steps: int = 400) -> list[bool]:
    shoves = Shoves(track_seed, probability=0.05, action_repeat=2)
    return [not np.array_equal(shoves.apply(policy_action), policy_action) for _ in range(steps)]


def test_shoves_depend_on_the_track_only():
    calm, wild = np.array([0.0, 0.5, 0.0], np.float32), np.array([0.3, 1.0, 0.0], np.float32)
    assert shove_pattern(7, calm) == shove_pattern(7, wild)  # whatever the policy does
    assert shove_pattern(7, calm) != shove_pattern(8, calm)
    pattern = shove_pattern(7, calm)
    first = pattern.index(True)
    assert pattern[first:first + SHOVE_HOLD_FRAMES // 2] == [True] * (SHOVE_HOLD_FRAMES // 2)  # held for 16 frames


def shoved_at_start() -> Shoves:
    shoves = Shoves(0, probability=1.0, action_repeat=2)
    assert shoves.apply(np.zeros(3, np.float32))[0] in (-1.0, 1.0)  # a full steer, no gas
    return shoves


def test_recovery_counted_only_when_back_on_road_in_time():
    quick = shoved_at_start()
    quick.observe([False] * 5 + [True] * 30 + [False] * 10)
    assert quick.result() == {"shoves": 1, "excursions": 1, "recoveries": 1}
    lost = shoved_at_start()
    lost.observe([False] * 5 + [True] * (RECOVERY_FRAMES + 50) + [False] * 10)
    assert lost.result() == {"shoves": 1, "excursions": 1, "recoveries": 0}
    unrelated = shoved_at_start()
    unrelated.observe([False] * 300 + [True] * 10 + [False])  # long after the shove: not its excursion
    assert unrelated.result()["excursions"] == 0


def test_test_command_reports_shoves(workdir, monkeypatch, capsys):  # noqa: F811
    monkeypatch.chdir(workdir)
    assert main.main(["test", "--resume_run_id", "bc", "--episodes", "1", "--num_envs", "1", "--shove", "0.05"]) == 0
    assert "shoves:" in capsys.readouterr().out
    result = json.loads((workdir / "logs" / "bc" / "test_results" / "latest_seed1000000_n1_shove0.05.json").read_text())
    assert result["summary"]["shoves"] > 10 and result["episodes"][0]["excursions"] <= result["summary"]["shoves"]
    assert main.main(["test", "--resume_run_id", "bc", "--shove", "2"]) == 2


def test_side_by_side_adds_the_shoved_results(tmp_path, capsys):
    """`evaluate.py RUN RUN --shove P` (pipeline.sh's last table): each run's return with shoves and its
    recoveries under the plain results; a missing test is named in one line."""
    def write(run: str, name: str, raw: float, recoveries: int | None = None):
        episode = {"raw_return": raw, "penalized_return": raw, "offtrack_frames": 0, "lap_complete": True}
        if recoveries is not None:
            episode.update(shoves=9, excursions=5, recoveries=recoveries)
        (tmp_path / run / "test_results").mkdir(parents=True, exist_ok=True)
        (tmp_path / run / "test_results" / name).write_text(json.dumps({"summary": summarize([episode])}))

    for run, recoveries in (("bc", 1), ("bcsac", 4)):
        write(run, "latest_seed1000000_n3.json", 900.0)
        write(run, "latest_seed1000000_n3_shove0.01.json", 100.0 * recoveries, recoveries)
    runs = [str(tmp_path / "bc"), str(tmp_path / "bcsac")]
    side_by_side([*runs, "--episodes", "3", "--shove", "0.01"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].split()[:4] == ["with", "shoves", "0.01", "100.0"] and "400.0" in lines[-2]
    assert lines[-1].split() == ["recovered", "1", "of", "5", "excursions", "4", "of", "5", "excursions"]
    side_by_side([*runs, "--episodes", "3"])
    assert "recovered" not in capsys.readouterr().out
    with pytest.raises(SystemExit, match="n3_shove0.05.json not found: test bc with --episodes 3 --shove 0.05 first"):
        side_by_side([*runs, "--episodes", "3", "--shove", "0.05"])
