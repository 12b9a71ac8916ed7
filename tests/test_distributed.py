"""torchrun + DDP on CPU (gloo, 2 processes): identical weights, checkpoint usable single-process, failures end
the job; leaving the process group."""
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import distributed

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def run(cmd: list[str], tmp_path: Path, timeout: int, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "SDL_VIDEODRIVER": "dummy", "OMP_NUM_THREADS": "1", "OUT": str(tmp_path), **env}
    return subprocess.run(cmd, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("train_encoder", ["1", "0"])
def test_ranks_end_with_identical_weights(tmp_path, train_encoder):
    result = run(TORCHRUN + [str(ROOT / "tests" / "ddp_worker.py")], tmp_path, timeout=300, TRAIN_ENCODER=train_encoder)
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert torch.equal(rank0["weights"], rank1["weights"])
    assert torch.equal(rank0["alpha"], rank1["alpha"])


def test_failing_rank_brings_job_down(tmp_path):
    result = run(TORCHRUN + [str(ROOT / "tests" / "ddp_worker.py")], tmp_path, timeout=300, FAIL_RANK="1",
                 BCSAC_COLLECTIVE_TIMEOUT_MIN="1")
    assert result.returncode != 0
    assert "failing on purpose" in result.stdout + result.stderr


def test_torchrun_train_rl_then_single_process_test(tmp_path):
    tiny = ["--encoder", "small", "--feature_dim", "16", "--hidden_dim", "32", "--obs_size", "48", "--num_envs", "1"]
    # Two attempts: every rank trains both (the second in the run's attempt_2/ folder), rank 0 chooses.
    result = run(TORCHRUN + [str(ROOT / "main.py"), "train_rl", "--run_id", "ddp", "--total_steps", "60",
                             "--learning_starts", "20", "--batch_size", "16", "--eval_every", "30",
                             "--eval_episodes", "1", "--attempts", "2"] + tiny,
                 tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    for folder in (tmp_path / "logs" / "ddp", tmp_path / "logs" / "ddp" / "attempt_2"):
        assert json.loads((folder / "config.json").read_text())["world_size"] == 2
        assert torch.load(folder / "checkpoints" / "latest_step.pt", weights_only=True)["step"] == 60
    assert "world size 2" in result.stdout and "the run's policy is attempt" in result.stdout
    test = run([sys.executable, str(ROOT / "main.py"), "test", "--resume_run_id", "ddp", "--episodes", "1"], tmp_path,
               timeout=300)
    assert test.returncode == 0, test.stderr[-3000:]
    assert "raw return" in test.stdout
    assert list((tmp_path / "logs" / "ddp" / "test_results").glob("*.json"))


@pytest.mark.parametrize("fails", [False, True])
def test_process_group_meets_before_leaving_only_on_success(monkeypatch, fails):
    calls = []
    monkeypatch.setattr(distributed, "setup", lambda device: distributed.DistContext(rank=1, world_size=2))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    with pytest.raises(RuntimeError) if fails else contextlib.nullcontext():
        with distributed.process_group("cpu") as ctx:
            assert ctx.world_size == 2
            if fails:  # a failed rank must not wait for peers that will never arrive
                raise RuntimeError("rank failed")
    assert calls == (["destroy"] if fails else ["barrier", "destroy"])
