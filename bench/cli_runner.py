"""Benchmarks drive the public CLI in-process, exactly as a user would type it."""
import json
import sys

import main
from runs import LOG_ROOT


def cli(*argv) -> None:
    print("$ python main.py " + " ".join(map(str, argv)), flush=True)
    code = main.main([str(a) for a in argv])
    if code:
        sys.exit(code)


def test_summary(run_id: str, episodes: int) -> dict:
    """`test` a run on `episodes` held-out tracks (default seeds) and return its summary table."""
    cli("test", "--resume_run_id", run_id, "--episodes", episodes)
    result = LOG_ROOT / run_id / "test_results" / f"latest_seed1000000_n{episodes}.json"
    return {"run_id": run_id, **json.loads(result.read_text())["summary"]}
