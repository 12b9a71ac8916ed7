"""main.py makes torch's idle OpenMP threads spin only briefly (see bench/two_processes.py), before torch loads,
unless the user chose a spin count."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = "import main, os, sys; print('torch' in sys.modules, os.environ['GOMP_SPINCOUNT'])"


def probe(**env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"} | env
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_brief_spin_is_set_before_torch_loads():
    assert probe() == "False 2000"


def test_the_users_spin_count_wins():
    assert probe(GOMP_SPINCOUNT="300000") == "False 300000"
