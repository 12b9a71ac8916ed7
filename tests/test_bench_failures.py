"""bench/failures.py: each unfinished test episode lands in the class that says what went wrong."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import failures  # noqa: E402


def episode(lap: bool, offtrack: int, raw: float, skipped: int = 0) -> dict:
    return {"lap_complete": lap, "offtrack_frames": offtrack, "raw_return": raw, "tiles_skipped": skipped}


def test_unfinished_episodes_are_told_apart_by_road_and_progress():
    assert failures.failure_class(episode(True, 30, 880.0)) == "finished"  # a lap is a lap, excursions or not
    assert failures.failure_class(episode(False, 20, 890.0)) == "left the road"
    assert failures.failure_class(episode(False, 19, 890.0)) == "too slow"
    assert failures.failure_class(episode(False, 0, 424.0)) == "stuck"
    assert failures.failure_class(episode(False, 3, 893.0, skipped=2)) == "skipped tiles"  # a corner cut
    assert failures.failure_class(episode(False, 25, 893.0, skipped=2)) == "left the road"


def test_a_run_named_by_its_directory_reads_the_results_test_wrote(tmp_path, monkeypatch, capsys):
    """`bench/failures.py logs/RUN` (the path `test` also takes) reads the run's saved results instead of testing it
    again and then looking for them under logs/logs/RUN; a run that does not exist is a one-line error."""
    import cli_runner
    monkeypatch.chdir(tmp_path)
    run = Path("logs") / "bcsac"
    (run / "test_results").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    saved = [episode(True, 0, 920.0), episode(False, 3, 893.0, skipped=2)]
    (run / "test_results" / "latest_seed1000000_n2.json").write_text(json.dumps({"episodes": saved}))
    monkeypatch.setattr(cli_runner, "cli", lambda *argv: pytest.fail(f"tested again: {argv}"))
    assert cli_runner.episodes_of(str(run), 2) == saved
    with pytest.raises(SystemExit) as exit_:
        cli_runner.episodes_of("logs/no_such_run", 2)
    assert exit_.value.code == 2 and "run id 'logs/no_such_run': no run at logs/no_such_run " in capsys.readouterr().err


def test_a_validated_step_that_became_the_runs_policy_reads_the_runs_own_test(tmp_path, monkeypatch):
    """`bench/validation_choice.py` names the chosen step's checkpoint; when its bytes are the run's policy (`best`
    is a copy) the run's saved test is read back instead of testing the same weights again."""
    import cli_runner
    monkeypatch.chdir(tmp_path)
    run = Path("logs") / "bcsac"
    (run / "test_results").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "latest").write_text("best.pt")
    for name, weights in (("best", b"w20"), ("step_20000", b"w20"), ("step_30000", b"w30")):
        (run / "checkpoints" / f"{name}.pt").write_bytes(weights)
    summary = {"raw": {"mean": 900.0}}
    (run / "test_results" / "latest_seed1000000_n2.json").write_text(json.dumps({"summary": summary}))
    monkeypatch.setattr(cli_runner, "cli", lambda *argv: pytest.fail(f"tested again: {argv}"))
    assert cli_runner.tested("bcsac", 2, checkpoint="step_20000") == summary
    with pytest.raises(pytest.fail.Exception, match="step_30000"):  # other weights: tested
        cli_runner.tested("bcsac", 2, checkpoint="step_30000")


def test_a_missing_run_is_named_before_any_table_or_test(tmp_path, monkeypatch, capsys):
    """The table's header is not printed, and no run tested, when one of the runs named does not exist."""
    import cli_runner
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs" / "here").mkdir(parents=True)
    (tmp_path / "logs" / "here" / "config.json").write_text("{}")
    monkeypatch.setattr(cli_runner, "cli", lambda *argv: pytest.fail(f"tested: {argv}"))
    monkeypatch.setattr(sys, "argv", ["failures.py", "here", "logs/gone"])
    with pytest.raises(SystemExit) as exit_:
        failures.main()
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == "" and err.count("\n") == 1 and "logs/gone" in err
