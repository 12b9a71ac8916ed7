"""bench/human_dart.py's table: per-seed numbers from `test` summaries, one markdown row per (noise, laps)."""
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "human_dart.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("human_dart", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary(raw: float, low: float, laps: int) -> dict:
    """The parts of a `test` summary the table reads."""
    return {"raw": {"mean": raw, "min": low}, "penalized": {"mean": raw - 10}, "offtrack_frames": {"mean": 2.0},
            "laps_completed": laps}


def test_names_keep_noise_levels_and_sets_apart(bench):
    assert bench.dataset_name(0.05, 1) == "hd_noise0.05_1" and bench.dataset_name(0.0, 1) == "hd_noise0_1"
    assert bench.run_id(0.05, 1, 3) != bench.run_id(0.05, 1, 5) != bench.run_id(0.0, 1, 5)


def test_row_and_markdown_report_every_seed(bench):
    row = bench.row(["a", "b"], [summary(900.0, 700.0, 48), summary(800.0, 300.0, 40)], [(910.0, 10), (905.5, 9)])
    assert row["raw_per_seed"] == [900.0, 800.0] and row["laps_per_seed"] == [48, 40] and row["runs"] == ["a", "b"]
    table = bench.markdown({(0.05, 10): row}, 50).splitlines()
    assert len(table) == 3 and table[0].count("|") == table[2].count("|") == 11
    assert table[2].startswith("| 0.05 | 10 | 2 | 850.0 ± 50.0 | 900.0, 800.0 | 700, 300 | 48/50, 40/50 |")
    assert "907.8 ± 2.2, 10/10, 9/10" in table[2]


def test_demo_quality_is_plain_json(bench, monkeypatch):
    """Episodes report lap completion as numpy bools; the table's JSON must still serialise their count."""
    import json
    from types import SimpleNamespace

    import numpy as np

    laps = [np.bool_(True), np.bool_(False), np.bool_(True)]
    monkeypatch.setattr(bench.demos, "episode_paths", lambda _: list(range(3)))
    monkeypatch.setattr(bench.demos, "load_episode",
                        lambda i: SimpleNamespace(raw_return=np.float64(900 + i), lap_complete=laps[i]))
    assert json.loads(json.dumps(bench.demo_quality("any", 3))) == [901.0, 2]


def test_a_control_run_keeps_the_earlier_rows(bench, tmp_path):
    earlier = tmp_path / "human_dart.json"
    earlier.write_text('{"noise 0.05 | 3 laps": {"v": 1}, "noise 0.05 | 10 laps": {"v": 2}, '
                       '"noise 0 | 10 laps": {"v": 3}}')
    merged = bench.with_earlier_rows({(0.0, 10): {"v": 9}}, earlier)
    assert list(merged) == [(0.05, 3), (0.05, 10), (0.0, 10)]
    assert merged[(0.0, 10)] == {"v": 9}
