"""Do a BC run's fixed features hold what a recovery needs? New actors on the strong BC runs' frozen encoders.

    python bench/frozen_features.py [--seeds 2]            # resumable: finished heads and tests are read back
    python bench/frozen_features.py --bc_run RUN --dataset NAME   # one head: RUN's encoder, NAME's laps

BC-SAC fine-tuning keeps the BC encoder fixed (README, Design notes), so whatever the critic and actor learn off the
road they learn on features trained to imitate laps that hardly leave it. For each strong demo set k of
bench/finetune.py (its BC run at train_bc's defaults, trained if missing) this clones, into a freshly initialised
actor reading that BC run's encoder, fixed, with train_bc's batch size, learning rate, epochs, augmentation and
weight average (on all the laps: train_bc held one in ten out for validation), (a) the same laps and (b) the recovery
laps: the same tracks recorded with the robustness test's shoves (`expert --noise 0.05 --shove 0.01`: the autopilot
drives back; recorded if missing). Every policy is tested on the same held-out tracks with and without shoves. If (b)
recovers about as often as BC trained end to end on recovery laps, the fixed features are enough and the
fine-tuning's failure to recover is in the actions it learns; if it recovers about as rarely as (a), the features are
the limit. Writes bench/results/frozen_features.md/.json; each head is a BC run, logs/<BC run>_head_<dataset>, that
`test` and Agent.load read.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import trange

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.append(str(Path(__file__).resolve().parent))  # after the root: bench/expert.py must not shadow expert.py

import demos  # noqa: E402
import finetune  # noqa: E402
from bc import BCConfig  # noqa: E402
from cli_runner import cli, tested  # noqa: E402
from env import EnvConfig  # noqa: E402
from errors import UserError  # noqa: E402
from networks import ActorCritic, ModelConfig, polyak_update  # noqa: E402
from replay_buffer import demo_replay  # noqa: E402
from runs import checkpoint_path, load_checkpoint, load_config, run_dir, save_checkpoint, save_config  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SHOVE = 0.01  # the robustness test of the README


def head_run_id(bc_run: str, dataset: str) -> str:
    return f"{bc_run}_head_{Path(dataset).name}"


def train_head(bc_run: str, dataset: str, seed: int = 0) -> str:
    """A fresh actor on BC_RUN's fixed encoder cloned from DATASET's laps (once); returns its run id."""
    run_id = head_run_id(bc_run, dataset)
    if finetune.finished(run_id):
        return run_id
    source = run_dir(bc_run)
    saved = load_config(source)
    config = BCConfig(**{**saved["train"], "dataset": dataset})
    env_config, model_config = EnvConfig(**saved["env"]), ModelConfig(**saved["model"])
    torch.manual_seed(seed)
    model = ActorCritic(env_config.obs_shape, model_config)
    fresh_actor = copy.deepcopy(model.actor.state_dict())
    model.load_state_dict(load_checkpoint(checkpoint_path(source))["model"])
    model.actor.load_state_dict(fresh_actor)  # the encoder (and critics) stay BC_RUN's
    model.encoder.requires_grad_(False)
    data = demo_replay(demos.load_named_dataset(dataset), env_config, config.gamma)
    optimizer = torch.optim.Adam(model.actor.parameters(), lr=config.lr)
    averaged = copy.deepcopy(model)
    rng = np.random.default_rng(seed)
    updates_per_epoch = max(1, len(data) // config.batch_size)
    for epoch in trange(1, config.epochs + 1, desc="epochs"):
        for _ in range(updates_per_epoch):
            batch = data.sample(config.batch_size, rng, config.gamma)
            with torch.no_grad():
                features = model.encoder(torch.as_tensor(batch["obs"]), config.augment_pad)
            mean, _ = model.actor(features)
            loss = F.mse_loss(model.actor.squash(mean), torch.as_tensor(batch["action"]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        polyak_update(averaged, model, 1.0 if epoch == 1 else 1.0 - config.weight_average)
    path = run_dir(run_id, must_exist=False)
    save_config(path, {**saved, "train": asdict(config)})
    save_checkpoint(path, "head", {"model": averaged.state_dict(), "epoch": config.epochs})
    print(f"{run_id}: actor loss {loss.item():.4f}")
    return run_id


def strong_sets(seeds: int) -> list[tuple[str, str, str]]:
    """Per strong demo set k: its BC run (train_bc's defaults), its laps and its recovery laps (made if missing)."""
    finetune.BC_EPOCHS = BCConfig().epochs  # bench/finetune.py's starts at train_bc's default epochs
    bc_flags = finetune.bc_time_flags(finetune.VARIANTS[finetune.ACTOR_LR_AUTO][1], "strong")[0]
    sets = []
    for k in range(seeds):
        bc_run = finetune.bc_run("strong", k, bc_flags)
        flags, first_seed = finetune.STARTS["recovery"]
        cli("expert", "--dataset", f"ft_recovery_{k}", "--seed", first_seed(k), "--skip_existing", *flags)
        sets.append((bc_run, f"ft_strong_{k}", f"ft_recovery_{k}"))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="strong demo sets (bench/finetune.py's, 0 ...)")
    parser.add_argument("--test_episodes", type=int, default=50, help="held-out tracks per test")
    parser.add_argument("--bc_run", default=None, help="one head only: the BC run whose encoder is kept")
    parser.add_argument("--dataset", default=None, help="one head only: the demonstrations it clones")
    args = parser.parse_args()
    if args.bc_run or args.dataset:
        if not (args.bc_run and args.dataset):
            parser.error("--bc_run and --dataset go together")
        print(f"test with  python main.py test --resume_run_id {train_head(args.bc_run, args.dataset)} --shove {SHOVE}")
        return
    rows = {"BC trained end to end on the laps (the strong start)": [],
            "new actor on BC's fixed features, the same laps": [],
            "new actor on BC's fixed features, the recovery laps": []}
    for bc_run, laps, recovery_laps in strong_sets(args.seeds):
        for runs, run_id in zip(rows.values(), (bc_run, train_head(bc_run, laps), train_head(bc_run, recovery_laps))):
            runs.append(run_id)
    table = {}
    for label, run_ids in rows.items():
        plain = [tested(r, args.test_episodes) for r in run_ids]
        shoved = [tested(r, args.test_episodes, SHOVE) for r in run_ids]
        table[label] = {"runs": run_ids, "raw_per_set": [t["raw"]["mean"] for t in plain],
                        "laps_per_set": [t["laps_completed"] for t in plain],
                        "shoved_raw_per_set": [t["raw"]["mean"] for t in shoved],
                        "excursions": [t["excursions"] for t in shoved],
                        "recoveries": [t["recoveries"] for t in shoved]}
    lines = ["| policy | demo sets | raw return per set | laps | with shoves: raw per set | recovered excursions |",
             "|---|---|---|---|---|---|"]
    for label, r in table.items():
        per_set = lambda values: ", ".join(f"{v:.1f}" for v in values)
        recovered, excursions = sum(r["recoveries"]), sum(r["excursions"])
        lines.append(f"| {label} | {len(r['runs'])} | {per_set(r['raw_per_set'])} | "
                     f"{', '.join(f'{n}/{args.test_episodes}' for n in r['laps_per_set'])} | "
                     f"{per_set(r['shoved_raw_per_set'])} | {recovered} of {excursions} "
                     f"({100 * recovered / excursions:.0f} %) |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "frozen_features.json").write_text(json.dumps(table, indent=1))
    (RESULTS / "frozen_features.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except UserError as error:  # a missing run or dataset: one line, as the CLI says it
        sys.exit(f"error: {error}")
