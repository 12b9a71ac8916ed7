"""bench/attempt_choice.py: of each group of runs it keeps the one whose policy validated best, as --attempts does."""
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import attempt_choice  # noqa: E402


def fake_run(name: str, validation: float, test_raw: float, laps: int) -> None:
    """A finished fine-tuning run as the bench reads it: its policy's validation and its saved 2-track test."""
    run = Path("logs") / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "test_results").mkdir()
    (run / "config.json").write_text("{}")
    best = {"raw": validation, "step": 20, "policy_raw": validation}
    torch.save({"model": {}, "best_validation": best}, run / "checkpoints" / "latest_step.pt")
    (run / "checkpoints" / "best.pt").write_bytes(b"the policy")  # the run's own: the saved test is read back
    (run / "checkpoints" / "latest").write_text("best.pt")
    summary = {"raw": {"mean": test_raw, "min": test_raw - 10}, "laps_completed": laps}
    (run / "test_results" / "latest_seed1000000_n2.json").write_text(json.dumps({"summary": summary}))


def test_each_group_keeps_its_best_validated_run(tmp_path, monkeypatch, capsys):
    import cli_runner
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_runner, "cli", lambda *argv: pytest.fail(f"tested again: {argv}"))
    for name, validation, test_raw, laps in (("a4", 818.0, 855.0, 1), ("a104", 747.0, 756.0, 0),
                                             ("b2", 700.0, 880.0, 1), ("b102", 910.0, 900.0, 2)):
        fake_run(name, validation, test_raw, laps)
    monkeypatch.setattr(sys, "argv", ["attempt_choice.py", "--group", "a4", "a104", "--group", "b2", "b102",
                                      "--test_episodes", "2"])
    attempt_choice.main()
    out = capsys.readouterr().out
    assert "| a4 | 855.0 (1/2, min 845) |" in out and "| b102 | 900.0 (2/2, min 890) |" in out
    assert "chosen: 877.5 +- 22.5 over 2 runs, 3 laps of 4, min 845" in out
    assert "every run: 847.8 +- 55.3 over 4 runs, 4 laps of 8, min 746" in out


def test_a_policy_driven_with_a_lighter_brake_is_not_its_checkpoint_as_trained(tmp_path, monkeypatch):
    """`best` holds the policy's bytes, but where train_rl's brake trial lightened the policy's brake, testing
    `best` (driven as trained) is another test, run rather than read back from the policy's."""
    import cli_runner
    monkeypatch.chdir(tmp_path)
    fake_run("lighter", 919.0, 925.0, 2)
    config = Path("logs", "lighter", "config.json")
    config.write_text(json.dumps({"model": {"brake_scale": 0.9}}))
    ran = []

    def cli(*argv):
        ran.append(argv)
        summary = {"raw": {"mean": 924.0, "min": 910.0}, "laps_completed": 2}
        Path("logs", "lighter", "test_results", "best_seed1000000_n2.json").write_text(json.dumps({"summary": summary}))

    monkeypatch.setattr(cli_runner, "cli", cli)
    assert cli_runner.tested("lighter", 2, checkpoint="best")["raw"]["mean"] == 924.0 and len(ran) == 1
    assert cli_runner.tested("lighter", 2, checkpoint="latest")["raw"]["mean"] == 925.0 and len(ran) == 1
    config.write_text(json.dumps({"model": {"brake_scale": 1.0}}))  # braking as trained: the same test
    assert cli_runner.tested("lighter", 2, checkpoint="best")["raw"]["mean"] == 925.0 and len(ran) == 1
    config.write_text(json.dumps({"model": {"brake_scale": 1.0, "gas_scale": 1.1}}))  # the gas trial's: another
    assert cli_runner.tested("lighter", 2, checkpoint="best")["raw"]["mean"] == 924.0  # best's own results
    ran.clear()
    config.write_text(json.dumps({"model": {"brake_deadzone": 0.1}}))  # the deadzone trial's: another too
    Path("logs", "lighter", "test_results", "best_seed1000000_n2.json").unlink()
    assert cli_runner.tested("lighter", 2, checkpoint="best")["raw"]["mean"] == 924.0 and len(ran) == 1


def test_a_group_of_one_run_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["attempt_choice.py", "--group", "a4"])
    with pytest.raises(SystemExit) as exit_:
        attempt_choice.main()
    assert exit_.value.code == 2 and "each --group needs at least 2 runs" in capsys.readouterr().err


def test_a_run_that_ends_on_its_second_attempt_is_scored_by_its_own_first_policy(tmp_path, monkeypatch):
    """Grouped with its attempt_2 folder, a run of --attempts 2 whose policy became attempt 2's is tested on its
    own validated policy (best.pt), not on the one it ends on."""
    import cli_runner
    monkeypatch.chdir(tmp_path)
    fake_run("tries", 800.0, 850.0, 1)
    (Path("logs") / "tries" / "checkpoints" / "attempt_2.pt").write_bytes(b"attempt 2's policy")
    (Path("logs") / "tries" / "checkpoints" / "latest").write_text("attempt_2.pt")

    def test_command(*argv):
        raise RuntimeError(" ".join(map(str, argv)))  # stops before reading results the fake test never wrote

    monkeypatch.setattr(cli_runner, "cli", test_command)
    with pytest.raises(RuntimeError, match="test --resume_run_id tries --episodes 2 --checkpoint best$"):
        cli_runner.tested("tries", 2, checkpoint="best")
