"""The robustness bars' two ratios: fine-tuned rows of a bench/finetune.py results file against their BC starts' row.

    python bench/robustness_ratios.py --start_row "demo sets 14 to 17"
    python bench/robustness_ratios.py bench/results/finetune_bc25.json --start_row "strong | BC (the start)"

The bars (BC-SAC recovers at least twice as many off-road excursions as its BC start and loses at most half as much
return to the shoves) compare `test --shove` numbers of fine-tuned runs with those of the BC runs they started
from. The results file does not say which BC row that is: BC runs retrained on another machine keep their ids, so
several BC rows can hold the same demo sets. `--start_row` names it: a whole key ("<start> | <label>") or text
found in exactly one BC row's key. Every fine-tuned row tested with shoves that shares a demo set with it (a run's
demo set is the `_<start>_<k>_e<epochs>` of its id) is compared on the demo sets they share: recovered excursions
per run as a multiple of the BC runs' per run, and the mean return lost to the shoves (raw without minus raw with)
as a share of the BC runs' mean loss. Reads the results file only; nothing is tested.
"""
from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "finetune_bc100.json"
DEMO_SET = re.compile(r"_(strong|weak)_(\d+)_e\d+")


class StartRowError(ValueError):
    """--start_row matches no BC row tested with shoves, or more than one."""


def demo_set(run_id: str) -> tuple[str, int] | None:
    match = DEMO_SET.search(run_id)
    return (match[1], int(match[2])) if match else None


def is_bc_row(row: dict) -> bool:
    return all(run_id.startswith("ft_bc_") for run_id in row["runs"])


def shoved(row: dict, demo_sets: set) -> dict:
    """A row's shove numbers over its runs on `demo_sets`."""
    at = [i for i, run_id in enumerate(row["runs"]) if demo_set(run_id) in demo_sets]
    return {"runs": len(at), "recoveries": sum(row["recoveries"][i] for i in at),
            "excursions": sum(row["excursions"][i] for i in at),
            "loss": float(np.mean([row["raw_per_seed"][i] - row["shoved_raw_per_seed"][i] for i in at]))}


def ratio(row: float, bc: float) -> float:
    """row / bc, where BC's 0 (starts that recovered nothing, or lost nothing) gives inf, or nan for 0 / 0."""
    if bc:
        return row / bc
    return math.copysign(math.inf, row) if row else math.nan


def start_row(table: dict, text: str) -> str:
    """The label of the BC row tested with shoves that `text` is, else of the one whose label holds it."""
    found = [label for label, row in table.items() if text in label and is_bc_row(row) and "recoveries" in row]
    if text in found:  # a label that others extend ("<label>, demo sets ...") is named by all of it
        return text
    if len(found) != 1:
        raise StartRowError(f"--start_row {text!r} matches {len(found)} BC rows tested with shoves, not 1"
                            + (f", ending: {'; '.join('...' + label[-50:] for label in found)}" if found else ""))
    return found[0]


def ratios(table: dict, bc_label: str) -> list[dict]:
    """Every fine-tuned row tested with shoves that shares a demo set with the BC row, in the file's order."""
    bc_row, out = table[bc_label], []
    bc_sets = {demo_set(run_id) for run_id in bc_row["runs"]}
    for label, row in table.items():
        if is_bc_row(row) or "recoveries" not in row:
            continue
        shared = bc_sets & {demo_set(run_id) for run_id in row["runs"]} - {None}
        if shared:
            mine, bc = shoved(row, shared), shoved(bc_row, shared)
            out.append({"row": label, "demo_sets": sorted(k for _, k in shared), "all_runs": len(row["runs"]),
                        "row_shoved": mine, "bc_shoved": bc,
                        "count_ratio": ratio(mine["recoveries"] / mine["runs"], bc["recoveries"] / bc["runs"]),
                        "loss_share": ratio(mine["loss"], bc["loss"])})
    return out


def markdown(bc_label: str, entries: list[dict]) -> str:
    lines = [f"Against '{bc_label}':", "",
             "| start | policy | demo sets (runs) | recovered | BC starts' recovered | times BC's per run | "
             "loss to the shoves | BC's loss | share of BC's |", "|" + "---|" * 9]
    for e in entries:
        start, policy = e["row"].split(" | ", 1)
        mine, bc = e["row_shoved"], e["bc_shoved"]
        runs = f"{mine['runs']}" if mine["runs"] == e["all_runs"] else f"{mine['runs']} of {e['all_runs']}"
        lines.append(f"| {start} | {policy} | {', '.join(map(str, e['demo_sets']))} ({runs}) | "
                     f"{mine['recoveries']} of {mine['excursions']} | {bc['recoveries']} of {bc['excursions']} | "
                     f"{e['count_ratio']:.2f} | {mine['loss']:.1f} | {bc['loss']:.1f} | {e['loss_share']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=RESULTS,
                        help="a bench/finetune.py results file (default: %(default)s)")
    parser.add_argument("--start_row", required=True, metavar="TEXT",
                        help="the BC starts' row: its key in the results file, or text in no other BC row's key")
    args = parser.parse_args()
    try:
        table = json.loads(args.results.read_text())
        bc_label = start_row(table, args.start_row)
        entries = ratios(table, bc_label)
    except FileNotFoundError:
        raise SystemExit(f"error: {args.results}: no such results file") from None
    except StartRowError as error:
        raise SystemExit(f"error: {args.results}: {error}") from None
    except (AttributeError, KeyError, TypeError, ValueError) as error:  # ValueError: undecodable or not JSON too
        raise SystemExit(f"error: {args.results}: not a bench/finetune.py results file "
                         f"({type(error).__name__}: {error})") from None
    print(markdown(bc_label, entries))


if __name__ == "__main__":
    main()
