"""bench/robustness_ratios.py: the robustness bars' ratios of a results file's rows against their BC starts."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import robustness_ratios  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "robustness_ratios.py"


def shoved_row(runs: list[str], raw: list[float], shoved_raw: list[float], recoveries: list[int]) -> dict:
    return {"runs": runs, "raw_per_seed": raw, "shoved_raw_per_seed": shoved_raw, "recoveries": recoveries,
            "excursions": [2 * r for r in recoveries]}


TABLE = {
    "strong | BC": shoved_row(["ft_bc_strong_0_e100_ln1", "ft_bc_strong_1_e100_ln1"], [900.0, 920.0], [100.0, 120.0],
                              [10, 30]),
    # Sets 0 to 2, two seeds on set 0: set 2 has no BC start in the BC row, so its run is left out of the comparison.
    "strong | robust": shoved_row(["ft_x_strong_0_e100", "ft_x_strong_0_e100_seed100", "ft_x_strong_1_e100",
                                   "ft_x_strong_2_e100"], [920.0, 922.0, 924.0, 900.0], [520.0, 522.0, 524.0, 0.0],
                                  [60, 40, 80, 1000]),
    "strong | no shoves": {"runs": ["ft_y_strong_0_e100"], "raw_per_seed": [925.0]},
    # The same ids retrained on another machine: a second BC row holding set 1, whose label extends the first's.
    "strong | BC, set 1 again": shoved_row(["ft_bc_strong_1_e100_ln1"], [910.0], [310.0], [20]),
    "strong | from set 1 again": shoved_row(["ft_z_strong_1_e100"], [921.0], [621.0], [20]),
    "strong | other sets": shoved_row(["ft_z_strong_5_e100"], [921.0], [621.0], [20]),
    "weak | BC": shoved_row(["ft_bc_weak_0_e100"], [300.0], [200.0], [5]),
}


def test_rows_sharing_demo_sets_with_the_named_bc_row_are_compared_on_those_sets():
    bc_label = robustness_ratios.start_row(TABLE, "strong | BC")  # all of a label that another extends
    entries = {e["row"]: e for e in robustness_ratios.ratios(TABLE, bc_label)}
    # BC rows, rows without shoves, rows on other demo sets or from the other start are not compared.
    assert bc_label == "strong | BC" and list(entries) == ["strong | robust", "strong | from set 1 again"]
    robust = entries["strong | robust"]
    assert robust["demo_sets"] == [0, 1] and robust["bc_shoved"]["runs"] == 2
    # 180 recoveries over 3 runs against the BC starts' 40 over 2; a loss of 400 against BC's 800.
    assert robust["row_shoved"] == {"runs": 3, "recoveries": 180, "excursions": 360, "loss": 400.0}
    assert robust["count_ratio"] == pytest.approx(3.0) and robust["loss_share"] == pytest.approx(0.5)
    again = robustness_ratios.ratios(TABLE, robustness_ratios.start_row(TABLE, "set 1 again"))
    assert [e["row"] for e in again] == ["strong | robust", "strong | from set 1 again"]
    assert again[1]["demo_sets"] == [1] and again[1]["count_ratio"] == 1.0 and again[1]["loss_share"] == 0.5


def test_bc_starts_that_recovered_nothing_give_an_unbounded_ratio_not_a_crash():
    table = {"strong | BC": shoved_row(["ft_bc_strong_0_e1"], [900.0], [100.0], [0]),
             "strong | v": shoved_row(["ft_v_strong_0_e1"], [920.0], [520.0], [3]),
             "strong | w": shoved_row(["ft_w_strong_0_e1"], [920.0], [520.0], [0])}
    v, w = robustness_ratios.ratios(table, "strong | BC")
    assert v["count_ratio"] == float("inf") and v["loss_share"] == pytest.approx(0.5)
    assert w["count_ratio"] != w["count_ratio"]  # nan: neither recovered any
    assert "| inf | 400.0 | 800.0 | 0.50 |" in robustness_ratios.markdown("strong | BC", [v, w])


def test_a_start_row_text_that_names_no_bc_row_or_several_is_refused():
    for text in ("robust", "no such row", "BC"):  # a fine-tuned row; nothing; both strong BC rows and weak's
        with pytest.raises(robustness_ratios.StartRowError, match="matches [03] BC rows"):
            robustness_ratios.start_row(TABLE, text)


def test_the_command_prints_the_comparison_naming_the_bc_row(tmp_path):
    results = tmp_path / "finetune_bc7.json"
    results.write_text(json.dumps(TABLE))
    done = subprocess.run([sys.executable, SCRIPT, results, "--start_row", "strong | BC"], check=True,
                          capture_output=True, text=True)
    assert done.stdout.startswith("Against 'strong | BC':")
    assert "| strong | robust | 0, 1 (3 of 4) | 180 of 360 | 40 of 80 | 3.00 | 400.0 | 800.0 | 0.50 |" in done.stdout


# Rows with recovery counts but no returns or excursions.
FOREIGN_ROWS = json.dumps({"strong | BC": {"runs": ["ft_bc_strong_0_e1"], "recoveries": [1]},
                           "strong | v": {"runs": ["ft_strong_0_e1"], "recoveries": [2]}})


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]", FOREIGN_ROWS])
def test_a_missing_or_foreign_results_file_is_a_one_line_error(tmp_path, content):
    results = tmp_path / "results.json"
    if content is not None:
        results.write_text(content)
    done = subprocess.run([sys.executable, SCRIPT, results, "--start_row", "BC"], capture_output=True, text=True)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and str(results) in done.stderr
