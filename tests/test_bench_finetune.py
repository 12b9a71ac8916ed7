"""bench/finetune.py's bookkeeping: which flags of a variant belong to its BC runs."""
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import finetune  # noqa: E402


def test_bc_time_flags_go_to_train_bc_and_name_their_own_bc_runs(monkeypatch):
    bc, rl = finetune.bc_time_flags(["--critic_layer_norm", 1, "--bc_weight", 10, "--num_qs", 5,
                                     "--bc_dashboard_inputs", 1])
    assert bc == {"--num_qs": 5, "--critic_layer_norm": 1, "--bc_dashboard_inputs": 1, "--weight_average": 0}
    assert rl == ["--bc_weight", 10]
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    trained = []
    monkeypatch.setattr(finetune, "finished", lambda run_id: False)
    monkeypatch.setattr(finetune, "cli", lambda *argv: trained.append(argv))
    assert finetune.bc_run("weak", 1, bc) == "ft_bc_weak_1_e100_q5_ln1_dash1"
    # train_bc gets every BC-time flag under its own name (the bench's --bc_dashboard_inputs is its --dashboard_inputs).
    assert trained[-1][0] == "train_bc" and trained[-1][-8:] == (
        "--num_qs", 5, "--critic_layer_norm", 1, "--dashboard_inputs", 1, "--weight_average", 0)
    monkeypatch.setattr(finetune, "finished", lambda run_id: True)  # nothing to train
    # Variants that leave the flags alone share the baseline BC runs, trained with the flags explicit.
    assert finetune.bc_time_flags(["--bc_weight", 10])[0] == {"--num_qs": 2, "--critic_layer_norm": 0,
                                                              "--bc_dashboard_inputs": 0, "--weight_average": 0}
    assert finetune.bc_run("weak", 1) == "ft_bc_weak_1_e100"
    assert finetune.rl_run_id(finetune.DEFAULT, "weak", 1) == "ft_critic_ln_meanq_driveexp_dash_floor30_weak_1_e100"
    assert finetune.rl_run_id(finetune.FLOOR_10, "weak", 1) == "ft_critic_ln_meanq_driveexp_dash_weak_1_e100"
    assert finetune.rl_run_id(finetune.NO_DASHBOARD, "weak", 1) == "ft_critic_ln_meanq_driveexp_weak_1_e100"
    # The default is train_rl's defaults; every other row keeps the inputs, actor loss and driven action it was
    # measured with.
    assert not {"--mean_action_q", "--policy_action", "--dashboard_inputs", "--bc_weight_floor", "--validation_tie",
                "--spread_limit", "--actor_lr"} & set(finetune.VARIANTS[finetune.ACTOR_LR_AUTO][1])
    assert "--spread_limit" not in finetune.VARIANTS[finetune.SPREAD_1][1]
    for label, (keys, flags) in finetune.VARIANTS.items():
        setting = lambda name: [flags[i + 1] for i, flag in enumerate(flags) if flag == name]  # noqa: E731
        # train_rl's --stall_limit auto turns the stall limit on when fine-tuning: rows measured without it say 0.
        stall_limits = setting("--stall_limit")
        stalled = label in (*finetune.TIED, finetune.STALL_ON_DEFAULTS, finetune.STALL, finetune.STALL_EXPECTED)
        assert stall_limits == [100 if stalled else 0]
        older_flags = flags if stalled else flags[:-2]
        # Rows before 2026-12-03's third session: the action they drove, strictly the best validation.
        driven = "expected" if label in finetune.DRIVE_EXPECTED else "mean"
        assert (older_flags[-4:] == ["--policy_action", driven, "--validation_tie", 0]) == (label not in finetune.TIED)
        assert ("--mean_action_q" in flags) == (label not in finetune.WITH_MEAN_ACTION_Q)
        assert (label in finetune.WITH_DASHBOARD) != ("--dashboard_inputs" in flags)
        floors = setting("--bc_weight_floor")
        assert floors == ([] if label in finetune.FLOOR_FOLLOWS_START else [0.5] if label == finetune.FLOOR_50_TIED else
                          [0.3] if label in finetune.WITH_FLOOR_30 else [0.1])
        old_limit = any(flags[i:i + 2] == ["--spread_limit", finetune.OLD_SPREAD_LIMIT] for i in range(len(flags)))
        # Rows measured before --actor_lr, --actor_lr_decay and --skipped_tile_penalty auto name their rate, decay and
        # penalty; their run keys say which (_actorlr3e4, _decay, _skipN), so flags and keys cannot disagree.
        key = " ".join(keys.values()) if isinstance(keys, dict) else keys
        penalty = re.search(r"_skip(\d+)", key)
        if label in (finetune.ACTOR_LR_AUTO, *finetune.AUTO_BUDGET):
            assert setting("--actor_lr") == []
        else:
            assert setting("--actor_lr") == [3e-4 if "_actorlr3e4" in key else 1e-4]
        if label not in finetune.AUTO_BUDGET:
            assert setting("--actor_lr_decay") == [1 if "_decay" in key else 0]
        if label not in finetune.TODAYS_PENALTY:
            assert setting("--skipped_tile_penalty") == [int(penalty.group(1)) if penalty else 0]
        # Every row before --attempts auto trained once; its key names it on clean laps (_attempts2); only today's
        # rows leave it auto.
        assert setting("--attempts") == ([] if label in finetune.TODAYS_ATTEMPTS else [1])
        assert ("_attempts2" in key) == (label in finetune.TODAYS_ATTEMPTS and finetune.measured_from(label, "weak"))
        # Every row before --brake_trial auto drove the policy as trained; today's DART runs are named _brake09, the
        # walk on to 0.8 _brake08.
        brake_trial = {**{trial: [] for trial in finetune.BRAKE_TRIALS}, finetune.BRAKE_WALK_08: [0.8]}
        assert setting("--brake_trial") == brake_trial.get(label, [1])
        assert ("_brake09" in key) == (label in finetune.BRAKE_TRIALS)
        assert ("_brake08" in key) == (label == finetune.BRAKE_WALK_08)
        # Every row before --gas_trial auto drove the policy's gas as trained; today's DART runs are named _gas11.
        assert setting("--gas_trial") == ([] if label in finetune.GAS_TRIALS else [1])
        assert ("_gas11" in key) == (label in finetune.GAS_TRIALS)
        # Every row before --steer_trial auto drove the policy's steering as trained; today's DART runs: _steer11.
        assert setting("--steer_trial") == ([] if label in finetune.STEER_TRIALS else [1])
        assert ("_steer11" in key) == (label in finetune.STEER_TRIALS)
        # Only the deadzone trial's row released light brakes (named _dead01); train_rl's default is no such trial.
        assert setting("--deadzone_trial") == ([0.1] if label == finetune.DEADZONE_TRIAL else [])
        assert ("_dead01" in key) == (label == finetune.DEADZONE_TRIAL)
        # Every row before --eval_episodes auto validated on 10 tracks unless it said 20 or 30; today's DART runs
        # validate on 30 (_val30), as do the rows that say 30.
        assert setting("--eval_episodes") in ([[]] if label in finetune.WIDE_VALIDATIONS else [[10], [20], [30]])
        assert ("_val30" in key) == (label in finetune.WIDE_VALIDATIONS or setting("--eval_episodes") == [30])
        for name in ("n_step", "stall_penalty"):  # named in the key as _nstep5, _stallpenalty400
            value = re.search(rf"_{name.replace('_', '')}(\d+)", key)
            assert setting(f"--{name}") == ([int(value.group(1))] if value else [])
        assert (label in finetune.SPREAD_LIMITED) != old_limit


def test_auto_actor_lr_shares_the_runs_of_the_rate_it_resolves_to(monkeypatch):
    """--actor_lr auto trains as the 3e-4 row on clean laps (SAC's bonus) and as the previous default (1e-4) on DART
    laps (the KL cost): today's default reuses their runs."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    for start, rate_row in (("strong", finetune.FLOOR_AUTO), ("recovery", finetune.FLOOR_AUTO),
                            ("weak", finetune.ACTOR_LR_3E4)):
        assert finetune.rl_run_id(finetune.ACTOR_LR_AUTO, start, 1) == finetune.rl_run_id(rate_row, start, 1)
    assert finetune.rl_run_id(finetune.ACTOR_LR_AUTO, "weak", 1) != finetune.rl_run_id(finetune.FLOOR_AUTO, "weak", 1)
    without_rate = lambda flags: [f for i, f in enumerate(flags) if "--actor_lr" not in flags[i - 1:i + 1]]
    flags = lambda label: without_rate(finetune.VARIANTS[label][1])
    assert flags(finetune.ACTOR_LR_AUTO) == flags(finetune.FLOOR_AUTO) == flags(finetune.ACTOR_LR_3E4)


def test_auto_budget_shares_the_runs_of_the_setting_it_resolves_to_and_passes_no_budget(monkeypatch, tmp_path):
    """--actor_lr_decay auto and --total_steps auto train as the decaying 30,000-step row on clean laps and as the
    previous default on DART laps; the bench leaves today's default its auto budget and gives older rows theirs."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    for start, pace_row in (("strong", finetune.FLOOR_AUTO), ("recovery", finetune.FLOOR_AUTO),
                            ("weak", finetune.ACTOR_LR_DECAY_30K)):
        assert finetune.rl_run_id(finetune.BUDGET_AUTO, start, 1) == finetune.rl_run_id(pace_row, start, 1)
    pace_flags = ("--actor_lr", "--actor_lr_decay", "--total_steps")
    without_pace = lambda flags: [f for i, f in enumerate(flags) if not set(pace_flags) & set(flags[i - 1:i + 1])]
    flags = lambda label: without_pace(finetune.VARIANTS[label][1])
    assert flags(finetune.BUDGET_AUTO) == flags(finetune.FLOOR_AUTO) == flags(finetune.ACTOR_LR_DECAY_30K)
    # --skipped_tile_penalty auto: the skipped-tile row on clean laps, no penalty on DART laps.
    for start, tiles_row in (("strong", finetune.FLOOR_AUTO), ("recovery", finetune.FLOOR_AUTO),
                             ("weak", finetune.SKIPPED_TILES)):
        assert finetune.rl_run_id(finetune.TILES_AUTO, start, 1) == finetune.rl_run_id(tiles_row, start, 1)
    commands = []
    monkeypatch.setattr(finetune, "LOG_ROOT", tmp_path)
    monkeypatch.setattr(finetune, "bc_run", lambda start, k, bc_values: "bc")
    def train_rl(*argv):
        commands.append(list(argv))
        (tmp_path / argv[argv.index("--run_id") + 1]).mkdir()  # where the bench writes the wall time

    monkeypatch.setattr(finetune, "cli", train_rl)
    budget = lambda: commands[-1][commands[-1].index("--total_steps") + 1] if "--total_steps" in commands[-1] else None
    for k, (variant, given, expected) in enumerate(((finetune.BUDGET_AUTO, None, None),
                                                    (finetune.ACTOR_LR_AUTO, None, 15_000),
                                                    (finetune.BUDGET_AUTO, 5_000, 5_000))):
        finetune.rl_run(variant, "weak", k, given)
        assert budget() == expected
    finetune.rl_run(finetune.STEER_TRIAL, "weak", 3, None)
    assert budget() is None and "--skipped_tile_penalty" not in commands[-1]  # today's default: every pace auto
    assert not {"--attempts", "--brake_trial", "--gas_trial", "--steer_trial", "--deadzone_trial",
                "--eval_episodes"} & set(commands[-1])
    # --brake_trial, --gas_trial, --steer_trial and --eval_episodes auto: no trial and 10 validation tracks on clean
    # laps (the previous default's runs), runs of their own on DART laps.
    for trial in (finetune.BRAKE_TRIAL, finetune.GAS_TRIAL, finetune.VALIDATION_30, finetune.STEER_TRIAL):
        assert finetune.rl_run_id(trial, "weak", 1) == finetune.rl_run_id(finetune.ATTEMPTS_AUTO, "weak", 1)
    for start in ("strong", "recovery"):
        assert finetune.rl_run_id(finetune.BRAKE_TRIAL, start, 1) != finetune.rl_run_id(finetune.TILES_AUTO, start, 1)
        assert finetune.rl_run_id(finetune.GAS_TRIAL, start, 1) != finetune.rl_run_id(finetune.BRAKE_TRIAL, start, 1)
        assert finetune.rl_run_id(finetune.VALIDATION_30, start, 1) != finetune.rl_run_id(finetune.GAS_TRIAL, start, 1)
        assert finetune.rl_run_id(finetune.STEER_TRIAL, start, 1) != finetune.rl_run_id(finetune.VALIDATION_30, start,
                                                                                         1)
    assert finetune.rl_run_id(finetune.BRAKE_WALK_08, "strong", 1) != finetune.rl_run_id(finetune.BRAKE_TRIAL,
                                                                                          "strong", 1)
    deadzone, gas = (finetune.rl_run_id(trial, "strong", 1) for trial in (finetune.DEADZONE_TRIAL, finetune.GAS_TRIAL))
    assert deadzone != gas
    # --attempts auto: one fine-tuning on DART laps, the previous default's runs; two on clean laps, runs of their own.
    for start in ("strong", "recovery"):
        assert finetune.rl_run_id(finetune.ATTEMPTS_AUTO, start, 1) == finetune.rl_run_id(finetune.TILES_AUTO, start, 1)
    assert finetune.rl_run_id(finetune.ATTEMPTS_AUTO, "weak", 1) != finetune.rl_run_id(finetune.TILES_AUTO, "weak", 1)
    finetune.rl_run(finetune.ACTOR_LR_DECAY_30K, "weak", 1, None)
    budgets = [value for flag, value in zip(commands[-1], commands[-1][1:]) if flag == "--total_steps"]
    assert budgets[-1] == 30_000  # the row's own budget comes last and wins


def test_auto_floor_shares_the_runs_of_the_floor_it_resolves_to(monkeypatch):
    """--bc_weight_floor auto trains as the floor-50 row on DART laps (the KL cost on), as the floor-30 row on clean
    laps: the default's row reuses their runs, and theirs name their floor."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    for start, floor_row in (("strong", finetune.FLOOR_50_TIED), ("recovery", finetune.FLOOR_50_TIED),
                             ("weak", finetune.TIED_TO_TRAINED)):
        assert finetune.rl_run_id(finetune.FLOOR_AUTO, start, 1) == finetune.rl_run_id(floor_row, start, 1)
    assert finetune.rl_run_id(finetune.FLOOR_AUTO, "weak", 1) != finetune.rl_run_id(finetune.FLOOR_50_TIED, "weak", 1)
    rl_flags = lambda label: finetune.bc_time_flags(finetune.VARIANTS[label][1], "strong")[1]
    # Apart from the floor each row leaves to auto or names, the three train alike.
    without_floor = lambda flags: [f for i, f in enumerate(flags) if "--bc_weight_floor" not in flags[i - 1:i + 1]]
    assert (without_floor(rl_flags(finetune.FLOOR_AUTO)) == without_floor(rl_flags(finetune.FLOOR_50_TIED))
            == without_floor(rl_flags(finetune.TIED_TO_TRAINED)))


def test_auto_dashboard_follows_train_bc_per_start(monkeypatch):
    """--bc_dashboard_inputs auto: the BC runs train_bc's auto would make, on for DART laps, off for clean laps."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    flags = ["--bc_dashboard_inputs", "auto", "--weight_average", 0.9, "--bc_prior_kl", 1]
    strong, rl = finetune.bc_time_flags(flags, "strong")
    assert rl == ["--bc_prior_kl", 1]
    assert finetune.bc_run_id("strong", 0, strong) == "ft_bc_strong_0_e100_dash1_avg0.9"
    assert finetune.bc_run_id("weak", 0, finetune.bc_time_flags(flags, "weak")[0]) == "ft_bc_weak_0_e100_avg0.9"


def test_bc_row_falls_back_to_the_layer_norm_bc_runs(monkeypatch):
    """A fresh checkout that trained only the default's BC runs (LayerNorm critics) still tabulates its starts."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    present = {"ft_bc_weak_0_e100", "ft_bc_weak_1_e100_ln1"}
    monkeypatch.setattr(finetune, "finished", lambda run_id: run_id in present)
    assert finetune.bc_starts("weak") == ["ft_bc_weak_0_e100", "ft_bc_weak_1_e100_ln1"]
    assert finetune.bc_starts("strong") == []


def test_rows_keep_their_place_and_new_rows_follow_the_bc_rows(tmp_path):
    earlier = tmp_path / "earlier.json"
    bc = finetune.BC_DASHBOARD_START
    earlier.write_text(f'{{"weak | {bc}": {{"v": 0}}, "weak | old row": {{"v": 1}}, "weak | default": {{"v": 2}}, '
                       '"strong | old": {"v": 3}}')
    merged = finetune.with_earlier_rows({("weak", "default"): {"v": 9}, ("weak", "new"): {"v": 8}}, earlier)
    assert list(merged) == [("strong", "old"), ("weak", bc), ("weak", "new"), ("weak", "old row"), ("weak", "default")]
    assert merged[("weak", "default")] == {"v": 9}


def test_a_row_whose_runs_now_test_otherwise_keeps_its_earlier_version(tmp_path, capsys):
    """BC starts retrained on another machine keep their ids: the README's row must not silently take their numbers."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"strong | bc": {"runs": ["a", "b"], "raw_per_seed": [924.1, 923.3]}, '
                       '"strong | v": {"runs": ["c"], "raw_per_seed": [920.0]}}')
    now = {("strong", "bc"): {"runs": ["a", "b"], "raw_per_seed": [917.1, 923.3]},
           ("strong", "v"): {"runs": ["c", "d"], "raw_per_seed": [920.0, 922.0]}}
    merged = finetune.with_earlier_rows(now, earlier)
    assert merged[("strong", "bc")]["raw_per_seed"] == [924.1, 923.3]
    assert merged[("strong", "v")]["runs"] == ["c", "d"]  # its run tests as before: a new seed joins it
    assert "kept the earlier row 'strong | bc': its runs test otherwise here" in capsys.readouterr().out
    assert finetune.with_earlier_rows(now, earlier, replace=True)[("strong", "bc")]["raw_per_seed"] == [917.1, 923.3]


def test_a_row_measured_from_other_starts_goes_beside_the_earlier_one(tmp_path):
    """The same variant trained from this machine's BC starts: both measurements stay, the new one labelled."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"weak | bc": {"runs": ["a"], "raw_per_seed": [300.0]}, '
                       '"weak | v": {"runs": ["c"], "raw_per_seed": [920.0]}, "weak | w": {"runs": ["e"]}}')
    now = {("weak", "bc"): {"runs": ["a"], "raw_per_seed": [250.0]},
           ("weak", "v"): {"runs": ["c"], "raw_per_seed": [890.0]}}
    merged = finetune.with_earlier_rows(now, earlier, beside={("weak", "v"): "here"})
    assert list(merged) == [("weak", "bc"), ("weak", "v"), ("weak", "v, here"), ("weak", "w")]
    assert merged[("weak", "v")]["raw_per_seed"] == [920.0] and merged[("weak", "v, here")]["raw_per_seed"] == [890.0]
    assert merged[("weak", "bc")]["raw_per_seed"] == [300.0]  # not named in `beside`: kept only
    (tmp_path / "again.json").write_text(json.dumps({" | ".join(k): r for k, r in merged.items()}))
    now[("weak", "v")]["raw_per_seed"] = [891.0]  # measured again: the row beside is updated, not doubled
    again = finetune.with_earlier_rows(now, tmp_path / "again.json", beside={("weak", "v"): "here"})
    assert list(again) == list(merged) and again[("weak", "v, here")]["raw_per_seed"] == [891.0]


def test_a_row_measured_from_fewer_runs_keeps_its_earlier_version(tmp_path, capsys):
    """A checkout with 2 of the 4 demo sets an earlier machine measured must not shrink that row."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"strong | bc": {"runs": ["a", "b", "c", "d"]}, "strong | v": {"runs": ["a"]}}')
    merged = finetune.with_earlier_rows({("strong", "bc"): {"runs": ["a", "b"]}, ("strong", "v"): {"runs": ["a", "b"]}},
                                        earlier)
    assert merged[("strong", "bc")] == {"runs": ["a", "b", "c", "d"]}
    assert merged[("strong", "v")] == {"runs": ["a", "b"]}  # more runs now: replaced
    assert "kept the earlier row 'strong | bc': 4 runs there, 2 here" in capsys.readouterr().out


def test_a_row_measured_from_fewer_demo_sets_goes_beside_the_earlier_one_when_asked(tmp_path, capsys):
    """Another machine's 5 demo sets stay in their row; this checkout's 2 sets get a row of their own."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"weak | v": {"runs": ["a", "b", "c", "d", "e"]}}')
    merged = finetune.with_earlier_rows({("weak", "v"): {"runs": ["b", "d"]}}, earlier,
                                        beside={("weak", "v"): "sets 1, 3"})
    assert merged == {("weak", "v"): {"runs": ["a", "b", "c", "d", "e"]},
                      ("weak", "v, sets 1, 3"): {"runs": ["b", "d"]}}
    assert "5 runs there, 2 here; these numbers go in as 'v, sets 1, 3'" in capsys.readouterr().out


def test_plot_has_a_panel_per_start_with_its_rows(tmp_path, monkeypatch):
    """Every start gets its panel (the recovery start's rows were dropped when the plot had two)."""
    import matplotlib.figure

    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    curve = {"steps": [0, 5000], "raw": [900.0, 910.0]}
    finetune.plot({("recovery", "a variant"): {"runs": ["r0", "r1"], "curve": curve}}, tmp_path / "curves.png")
    axes = saved[0].axes
    assert [ax.get_title() for ax in axes] == [f"{start} BC start" for start in finetune.STARTS]
    assert [len(ax.lines) for ax in axes][-1] == 2  # the recovery row's curve and the 900 line


def test_unknown_variant_is_a_short_error_and_list_prints_every_label(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--variants", "nonsense"])
    with pytest.raises(SystemExit) as exit_info:
        finetune.main()
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no variant labelled 'nonsense'" in error and len(error) < 600
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--list"])
    finetune.main()
    assert capsys.readouterr().out.splitlines() == list(finetune.VARIANTS)


def test_validation_choice_replays_train_rls_rule_per_tie():
    import validation_choice

    steps, returns = [0, 5000, 10000, 15000], [918.17, 918.21, 918.69, 918.07]  # a strong run of 2026-12-03
    assert validation_choice.chosen_step(steps, returns, 0.0) == 10000  # strictly the best
    assert validation_choice.chosen_step(steps, returns, 0.005) == 15000  # the most trained of the tied


def test_validation_choice_validates_the_kept_checkpoints_on_more_tracks(monkeypatch, tmp_path, capsys):
    """--episodes N: each kept checkpoint is validated on N validation tracks, the rule replayed on those returns, and
    both choices tested on the held-out tracks."""
    import validation_choice
    from env import TEST_SEED_START, VALIDATION_SEED_START

    run = tmp_path / "run"  # named by its directory, as `test` takes a run
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    for step in (0, 5000, 10000):  # step 15000's checkpoint is gone: not validated again
        (run / "checkpoints" / f"step_{step}.pt").touch()
    monkeypatch.setattr(validation_choice, "eval_curve", lambda run_id: ([0, 5000, 10000, 15000], [300, 800, 790, 700]))
    longer = {0: 310.0, 5000: 700.0, 10000: 880.0}
    calls = []

    def tested(run_id, episodes, checkpoint=None, seed=TEST_SEED_START):
        calls.append((episodes, checkpoint, seed))
        step = int(checkpoint.removeprefix("step_"))
        raw = longer[step] if seed == VALIDATION_SEED_START else 900.0 + step / 1000
        return {"raw": {"mean": raw, "min": raw - 100}, "laps_completed": step // 1000}

    monkeypatch.setattr(validation_choice, "tested", tested)
    monkeypatch.setattr(sys, "argv", ["validation_choice.py", str(run), "--episodes", "30", "--test_episodes", "20"])
    validation_choice.main()
    assert calls == [(30, "step_0", VALIDATION_SEED_START), (30, "step_5000", VALIDATION_SEED_START),
                     (30, "step_10000", VALIDATION_SEED_START), (20, "step_5000", TEST_SEED_START),
                     (20, "step_10000", TEST_SEED_START)]
    row = capsys.readouterr().out.splitlines()[-1]
    assert row == (f"| {run} | 0: 310.0, 5000: 700.0, 10000: 880.0 | step 5000: 905.0 (5/20, min 805) "
                   "| step 10000: 910.0 (10/20, min 810) |")


@pytest.fixture
def bench_calls(monkeypatch, tmp_path) -> list[tuple]:
    """The commands rl_run would run, recorded instead (train_rl only makes its run folder); every BC start exists."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    monkeypatch.setattr(finetune, "LOG_ROOT", tmp_path)
    monkeypatch.setattr(finetune, "finished", lambda run_id: True)
    calls = []

    def cli(*argv):
        calls.append(argv)
        if argv[0] == "train_rl":
            (tmp_path / argv[argv.index("--run_id") + 1]).mkdir()

    monkeypatch.setattr(finetune, "cli", cli)
    return calls


def test_critic_recoveries_row_gives_each_demo_set_its_own_recovery_laps(monkeypatch, bench_calls):
    """The row's critic sees the recovery laps of the tracks its BC start learnt from (recorded when missing: the
    start's own laps with the test's shoves), and a row keyed by start exists for those starts alone."""
    calls = bench_calls
    for start, k, dataset, seed, noise in (("strong", 1, "ft_recovery_1", 201_000, 0.05),
                                           ("weak", 0, "ft_weak_recovery_0", 300_000, 0)):
        calls.clear()
        finetune.rl_run(finetune.CRITIC_RECOVERIES, start, k, 100)
        expert, train = calls
        assert expert[:5] == ("expert", "--dataset", dataset, "--seed", seed)
        assert (expert[expert.index("--noise") + 1] == noise
                and expert[expert.index("--shove") + 1] == finetune.TEST_SHOVE)
        assert train[train.index("--critic_dataset") + 1] == dataset
    assert finetune.measured_from(finetune.CRITIC_RECOVERIES_FREE, "strong")
    assert not finetune.measured_from(finetune.CRITIC_RECOVERIES_FREE, "weak")
    assert finetune.measured_from(finetune.FLOOR_AUTO, "weak")
    # Asked for a start it does not apply to, the bench says so before anything trains.
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--starts", "strong", "weak", "--variants",
                                      finetune.CRITIC_RECOVERIES_FREE])
    calls.clear()
    with pytest.raises(SystemExit, match="not defined for --starts weak"):
        finetune.main()
    assert calls == []


def test_first_seed_trains_the_later_demo_sets_only(monkeypatch, tmp_path):
    trained = []
    monkeypatch.setattr(finetune, "rl_run", lambda variant, start, k, total_steps, seed: trained.append((start, k)))
    monkeypatch.setattr(finetune, "rl_finished", lambda run_id: False)  # nothing to tabulate
    monkeypatch.setattr(finetune, "bc_starts", lambda start, candidates=(): [])
    monkeypatch.setattr(finetune, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--seeds", "4", "--first_seed", "2", "--starts", "weak",
                                      "--variants", finetune.FLOOR_AUTO])
    finetune.main()
    assert trained == [("weak", 2), ("weak", 3)]
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--seeds", "2", "--first_seed", "2"])  # nothing would train
    with pytest.raises(SystemExit) as exit_info:
        finetune.main()
    assert exit_info.value.code == 2 and trained == [("weak", 2), ("weak", 3)]
    # Demo sets the table would not look for are refused before anything trains.
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--seeds", str(finetune.MAX_SEEDS + 1),
                                      "--first_seed", str(finetune.MAX_SEEDS)])
    with pytest.raises(SystemExit) as exit_info:
        finetune.main()
    assert exit_info.value.code == 2 and trained == [("weak", 2), ("weak", 3)]
    # Without --variants: every variant defined for the start (some rows are keyed by start), none refused.
    trained.clear()
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--seeds", "1", "--starts", "strong"])
    finetune.main()
    assert len(trained) == sum(finetune.measured_from(variant, "strong") for variant in finetune.VARIANTS)
    assert len(trained) < len(finetune.VARIANTS)


def test_training_seeds_fine_tune_each_demo_set_with_more_seeds_and_the_table_holds_them(monkeypatch, tmp_path):
    """--training_seeds 2: demo set k is fine-tuned with seeds k and k + 100 (a suffixed run id, train_rl's --seed),
    and the row holds both runs; a run of seed k keeps the id it had before the flag."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    monkeypatch.setattr(finetune, "LOG_ROOT", tmp_path)
    monkeypatch.setattr(finetune, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(finetune, "bc_run", lambda start, k, bc_values: "bc")
    monkeypatch.setattr(finetune, "bc_starts", lambda start, candidates=(): [])
    monkeypatch.setattr(finetune, "plot", lambda table, out: None)
    seeds = {}

    def cli(*argv):
        run_id = argv[argv.index("--run_id") + 1]
        seeds[run_id] = argv[argv.index("--seed") + 1]
        (tmp_path / run_id).mkdir()

    monkeypatch.setattr(finetune, "cli", cli)
    rows = []
    monkeypatch.setattr(finetune, "row", lambda run_ids, *args: rows.append(run_ids) or {"runs": run_ids})
    monkeypatch.setattr(finetune, "markdown", lambda table, episodes: "")
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--seeds", "4", "--first_seed", "3", "--training_seeds", "2",
                                      "--starts", "weak", "--variants", finetune.N_STEP_5])
    finetune.main()
    base = finetune.rl_run_id(finetune.N_STEP_5, "weak", 3)
    assert base == f"ft_{finetune.VARIANTS[finetune.N_STEP_5][0]['weak']}_weak_3_e100"
    assert seeds == {base: 3, f"{base}_seed103": 103}
    assert [base, f"{base}_seed103"] in rows
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--training_seeds", "0"])
    with pytest.raises(SystemExit) as exit_info:
        finetune.main()
    assert exit_info.value.code == 2


def test_curves_of_a_run_with_attempts_are_those_of_the_attempt_it_kept(monkeypatch, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    monkeypatch.setattr(finetune, "LOG_ROOT", tmp_path)
    for run_id, policy in (("kept_first", "best.pt"), ("kept_second", "attempt_2.pt")):
        for folder, score in ((tmp_path / run_id, 100.0), (tmp_path / run_id / "attempt_2", 200.0)):
            with SummaryWriter(str(folder)) as writer:
                writer.add_scalar("eval/raw_return", score, 5000)
        (tmp_path / run_id / "checkpoints").mkdir()
        (tmp_path / run_id / "checkpoints" / "latest").write_text(policy)
    assert finetune.eval_curve("kept_first") == ([5000], [100.0])
    assert finetune.eval_curve("kept_second") == ([5000], [200.0])


def test_only_plot_draws_the_finished_runs_curves_and_tests_nothing(monkeypatch, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    monkeypatch.setattr(finetune, "LOG_ROOT", tmp_path)
    monkeypatch.setattr(finetune, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(finetune, "row", lambda *args, **kwargs: pytest.fail("--only_plot tests nothing"))
    plotted = []
    monkeypatch.setattr(finetune, "plot", lambda table, out: plotted.append((table, out)))
    monkeypatch.setattr(sys, "argv", ["finetune.py", "--only_plot"])
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)  # the run id below needs it before main() sets it
    run_id = finetune.rl_run_id(finetune.N_STEP_5, "weak", 5)  # a run no other row or test shares
    with SummaryWriter(str(tmp_path / run_id)) as writer:
        writer.add_scalar("eval/raw_return", 700.0, 0)
        writer.add_scalar("eval/raw_return", 900.0, 5000)
    (tmp_path / run_id / "wall_time_s").write_text("60")
    finetune.main()
    (table, out), = plotted
    assert table == {("weak", finetune.N_STEP_5): {"runs": [run_id],
                                                   "curve": {"steps": [0, 5000], "raw": [700.0, 900.0]}}}
    assert out == tmp_path / "results" / "finetune_bc100_curves.png" and not (tmp_path / "results").exists()


def test_rows_sharing_their_runs_are_one_curve_under_todays_default():
    curve = {"steps": [0], "raw": [900.0]}
    curves = {("strong", "an older default"): {"runs": ["a"], "curve": curve},
              ("strong", "today's default: x"): {"runs": ["a"], "curve": curve},
              ("strong", "a variant"): {"runs": ["b"], "curve": curve},
              ("weak", "an older default"): {"runs": ["a"], "curve": curve}}
    assert list(finetune.distinct_curves(curves)) == [
        ("strong", "today's default: x (the same runs as 1 other row)"), ("strong", "a variant"),
        ("weak", "an older default")]


def finished_source(monkeypatch, tmp_path, variant: str, k: int, train: dict, seed: int | None = None) -> Path:
    """A finished run of `variant` on strong demo set k, in a logs/ of its own: its config's train settings and a
    wall time of 1000 s, for copy_with_trials_rerun to copy."""
    monkeypatch.setattr(finetune, "BC_EPOCHS", 100)
    monkeypatch.setattr(finetune, "LOG_ROOT", tmp_path)
    source = tmp_path / finetune.rl_run_id(variant, "strong", k, seed)
    source.mkdir()
    (source / "config.json").write_text(json.dumps({"train": train}))
    (source / "wall_time_s").write_text("1000")
    return source


def test_a_copy_with_its_trials_rerun_resumes_the_copy_and_leaves_the_source(monkeypatch, tmp_path):
    """copy_with_trials_rerun: the source run copied under the variant's id (its test results left behind), a trial
    its config lacks set auto, resumed by train_rl; once done it is reused, and a missing source is an error."""
    source = finished_source(monkeypatch, tmp_path, finetune.VALIDATION_30, 11, {"brake_trial": 0.9, "gas_trial": 1.1})
    (source / "test_results").mkdir()
    (source / "test_results" / "latest_seed1000000_n50.json").write_text("{}")
    resumed = []

    def train_rl(*argv):  # the copy has no wall time until its resume returned
        resumed.append((list(argv), (tmp_path / argv[-1] / "wall_time_s").exists()))

    monkeypatch.setattr(finetune, "cli", train_rl)
    run_id = finetune.copy_with_trials_rerun(finetune.STEER_TRIAL, finetune.VALIDATION_30, "strong", 11)
    assert run_id == finetune.rl_run_id(finetune.STEER_TRIAL, "strong", 11) and "_steer11_" in run_id
    assert resumed == [(["train_rl", "--resume_run_id", run_id], False)]
    copy = tmp_path / run_id
    assert json.loads((copy / "config.json").read_text())["train"] == {"brake_trial": 0.9, "gas_trial": 1.1,
                                                                       "steer_trial": None}
    assert not (copy / "test_results").exists() and (copy / "wall_time_s").read_text() == "1000"
    assert (source / "test_results" / "latest_seed1000000_n50.json").exists()
    assert finetune.copy_with_trials_rerun(finetune.STEER_TRIAL, finetune.VALIDATION_30, "strong", 11) == run_id
    assert len(resumed) == 1  # finished: not resumed again
    with pytest.raises(SystemExit, match="no finished run to copy"):
        finetune.copy_with_trials_rerun(finetune.STEER_TRIAL, finetune.VALIDATION_30, "strong", 12)


def test_a_copy_takes_the_trials_its_variant_gives(monkeypatch, tmp_path):
    """The robust recipe's runs copied as the row driven as trained: the copy's trials are the row's (1: no walk),
    not the source's, so the resume leaves the policy's brake, gas and steering as trained."""
    finished_source(monkeypatch, tmp_path, finetune.ROBUST_TODAY, 14,
                    {"brake_trial": 0.9, "gas_trial": 1.1, "steer_trial": 1.1, "eval_episodes": 30}, seed=114)
    monkeypatch.setattr(finetune, "cli", lambda *argv: None)
    run_id = finetune.copy_with_trials_rerun(finetune.ROBUST_UNWALKED, finetune.ROBUST_TODAY, "strong", 14, 114)
    assert run_id.endswith("_unwalked_strong_14_e100_seed114")
    assert json.loads((tmp_path / run_id / "config.json").read_text())["train"] == {
        "brake_trial": 1, "gas_trial": 1, "steer_trial": 1, "eval_episodes": 30}


def test_own_recoveries_row_gives_the_critic_the_bc_starts_own_shoved_laps(monkeypatch, bench_calls):
    """The row records its BC start driving that start's demo tracks with the test's shoves, and its critic (not its
    actor) gets those laps."""
    recorded = []
    monkeypatch.setattr(finetune.policy_laps, "record_policy_laps", lambda *args: recorded.append(args))
    finetune.rl_run(finetune.OWN_RECOVERIES, "strong", 3, None)
    (bc_run, dataset, first_seed, episodes, shove), = recorded
    train, = bench_calls  # the laps are recorded in-process: train_rl is the only command
    assert bc_run == train[train.index("--resume_run_id") + 1] and dataset == f"{bc_run}_own_recovery"
    assert (first_seed, episodes) == (203_000, 20) and shove == finetune.TEST_SHOVE
    assert train[train.index("--critic_dataset") + 1] == dataset
    assert train[train.index("--imitate_critic_dataset") + 1] == 0


def test_robust_recipe_row_leaves_the_recovery_laps_settings_at_auto(bench_calls):
    """Today's robust-recipe row records the autopilot's recovery laps of the demo tracks and fine-tunes at train_rl's
    auto settings for them (imitated, warmed actor): not the 0s that rows measured before those settings pin."""
    finetune.rl_run(finetune.ROBUST_TODAY, "strong", 3, None)
    expert, train = bench_calls
    assert expert[:3] == ("expert", "--dataset", "ft_recovery_3") and "--shove" in expert
    assert train[train.index("--critic_dataset") + 1] == "ft_recovery_3"
    assert train[train.index("--imitate_critic_dataset") + 1] == "auto"
    assert train[train.index("--actor_warmup_steps") + 1] == "auto"
    for pinned in ("--steer_trial", "--gas_trial", "--brake_trial", "--eval_episodes", "--attempts"):
        assert pinned not in train  # today's trials and validations
