"""bench/speed_table.py: the README's speed table from the benches' results, and a clear error without them."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import speed_table  # noqa: E402


def write_results(folder: Path, bf16: bool) -> None:
    (folder / "env_speed.json").write_text(json.dumps(
        {"stock_fps": 74.0, "fast_fps": 270.0, "ratio": 3.65,
         "agent_steps_per_s": {"1": 230.0, "2": 200.0, "4": 190.0}}))
    (folder / "two_processes.json").write_text(json.dumps(
        {"train_rl_4000_steps": {"brief spin": {"alone": {"train_rl_s": 40.0}}}}))
    for size, ours in ((48, 12.0), (96, 3.0)):
        speed = {"ours": ours, "frozen": 50.0, "sb3": 4.0, **({"bf16": 2 * ours} if bf16 else {})}
        (folder / f"learner_speed_obs{size}.json").write_text(json.dumps(
            {"median_updates_per_s": speed, "threads": 1, "ratio_vs_sb3": ours / 4, "ratio_frozen_vs_sb3": 12.5,
             "ratio_bf16_vs_sb3": 2 * ours / 4 if bf16 else None}))


def test_table_rows_carry_each_bench_number_and_ratio(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(speed_table, "RESULTS", tmp_path)
    write_results(tmp_path, bf16=True)
    speed_table.main()
    lines = capsys.readouterr().out.splitlines()
    assert "| 74 | 270 (3.65×) |" in lines[2]
    assert "3×48×48" in lines[4] and "| 4.00 | 12.0 (3.0×) | 24.0 (6.0×) | 50 (12×) |" in lines[4]
    assert "3×96×96" in lines[5] and "3.0 (0.8×)" in lines[5]
    assert lines[6].endswith("| 100 |")  # 4,000 steps in 40 s


def test_bf16_column_says_so_where_the_bench_could_not_measure_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(speed_table, "RESULTS", tmp_path)
    write_results(tmp_path, bf16=False)
    speed_table.main()
    assert "not measured" in capsys.readouterr().out.splitlines()[4]


def test_missing_results_name_the_file_and_the_bench_to_run(tmp_path, monkeypatch):
    monkeypatch.setattr(speed_table, "RESULTS", tmp_path)
    with pytest.raises(SystemExit, match="env_speed.json is missing"):
        speed_table.main()
