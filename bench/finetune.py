"""Fine-tuning ablation: train_rl's default against the variants tried beside it, from strong and weak BC starts.

    python bench/finetune.py                     # everything below, resumable (finished steps are skipped)
    python bench/finetune.py --only_table        # rebuild the table and the plot from finished runs
    python bench/finetune.py --only_plot         # only the plot (no test runs, the results file untouched)
    python bench/finetune.py --bc_epochs 25      # the same from BC starts trained 25 epochs (the earlier default)

Starts: BC from 20 autopilot laps with DART noise 0.05 ("strong") and from 10 clean laps ("weak"), each
from `--seeds` different demo sets (track seeds apart); training seed k fine-tunes demo set k (and with
`--training_seeds N`, seeds k + 100, ..., k + 100 (N - 1) too, in run ids ending _seed<S>). Every policy
is tested on the same `--test_episodes` held-out tracks (1,000,000 ...); the BC starts and the default
also with `--shove`. Writes bench/results/finetune_bc<epochs>.json, .md (the README table) and
finetune_bc<epochs>_curves.png (periodic validation return vs environment steps of the runs in this checkout's
logs/; of a run with --attempts, the attempt it kept); run ids end in _e<epochs>.
Rows of the earlier results file that this invocation does not measure (their runs are gone from a fresh
checkout's logs/) are kept as they were, in their order; so are rows whose runs now test otherwise (BC starts
retrained under the same ids) unless --replace_rows; --beside TEXT adds the new numbers of such --variants rows next
to them, labelled '<row>, TEXT'.
"""
from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.append(str(Path(__file__).resolve().parent))  # after the root: bench/expert.py must not shadow expert.py

from cli_runner import cli, tested  # noqa: E402
import policy_laps  # noqa: E402
from networks import OLD_SPREAD_LIMIT, ModelConfig  # noqa: E402
from rl import TRIAL_FLAGS, RLConfig  # noqa: E402
from runs import LOG_ROOT  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TEST_SHOVE = 0.01  # shove probability of the robustness test, and of the laps recorded with its shoves
STARTS = {  # name -> expert flags (episodes, noise, shoves) and the first track seed of demo set k
    "strong": (["--episodes", 20, "--noise", 0.05], lambda k: 200_000 + 1000 * k),
    "weak": (["--episodes", 10, "--noise", 0], lambda k: 300_000 + 1000 * k),
    # The strong start's laps (the same tracks and noise) with the test's shoves: recovery demos.
    "recovery": (["--episodes", 20, "--noise", 0.05, "--shove", TEST_SHOVE], lambda k: 200_000 + 1000 * k),
}
BC_START = "BC (the start)"


def dart_laps(start: str) -> bool:
    """Whether a start's laps carry the autopilot's noise, and with it recoveries: train_bc's --dashboard_inputs auto
    and train_rl's --bc_prior_kl auto turn on for them."""
    expert_flags = STARTS[start][0]
    return expert_flags[expert_flags.index("--noise") + 1] > 0


# label -> (run-id key, flags). DEFAULT is train_rl's defaults from the plain BC starts; BC_DASHBOARD and
# BC_AVERAGED the same from BC runs at train_bc's defaults since 2026-12-02 (--dashboard_inputs auto: on for
# the strong start's DART laps, off for the weak start's clean laps); the others were tried beside them.
PLAIN = ["--bc_selection", 0, "--bc_anchor_all", 0, "--learn_std", 1, "--adaptive_bc_weight", 0]
SELECT_ANCHOR = ["--bc_selection", 1, "--bc_anchor_all", 1, "--learn_std", 0, "--adaptive_bc_weight", 1,
                 "--bc_weight", 100]
DEFAULT = ("default from BC runs without the dashboard or weight average (the BC defaults until 2026-12-02): BC-SAC "
           "with adaptive lambda from 100 down to 30 at most (demo rows, learnt spread), critics with LayerNorm, actor "
           "loss also on tanh(mean), driving the average of the policy's samples, the dashboard strip as actor and "
           "critic inputs")
# The default until 2026-12-01 (sixth session): the actor and critics saw the frozen BC features alone, which
# hardly encode the speed (bench/speed_probe.py), so the critic valued standing still above gas
# (bench/standstill.py). Every row below was measured so: each variant's flags get --dashboard_inputs 0.
NO_DASHBOARD = "the default without the dashboard inputs (the default until 2026-12-01, sixth session)"
# The default until 2026-12-01 (seventh session): lambda's floor at bc_weight / 10. With the dashboard the
# training episodes soon beat the BC start's, lambda fell to that floor and the policy drifted from BC's while
# the critic valued the drift more and more (TensorBoard diag/): validation fell by 150 points or more by the
# last checkpoint on 4 of 6 runs. Every row below was measured so: each variant's flags get --bc_weight_floor 0.1.
FLOOR_10 = ("the default with lambda's floor at 10 (--bc_weight_floor 0.1, "
            "the default until 2026-12-01, seventh session)")
# Shoved, the default lost more return than its BC start: an unrecovered excursion is the rest of the episode
# lost on the grass. A good policy rarely leaves the road by itself, so the replay holds no way back, and
# training episodes end 20 off-track frames in. Training shoves put those states in the replay; 100 frames
# (2 s, the test's recovery window) leave time to drive back. Tried twice on 2026-11-30 without the dashboard
# (README): the penalties of the shoved episodes let lambda fall to its floor of 10 and the actor drift.
SHOVE_TRAINED = ("default with training shoves (--train_shove 0.02) and 2 s off the road before an "
                 "episode ends (--offtrack_limit 100)")
# BC's own actor and critics can read the dashboard too (train_bc --dashboard_inputs 1): the imitation then
# knows the speed the teacher chose its gas and brake at, and fine-tuning starts from it unwidened. Its policy
# is the running average of its end-of-epoch weights (train_bc --weight_average 0.9).
BC_DASHBOARD_START = ("BC reading the dashboard, weights averaged (train_bc's defaults since 2026-12-02 for DART "
                      "laps; clean laps get no dashboard)")
BC_DASHBOARD = ("SAC's entropy bonus from BC runs that also read the dashboard and average their weights (train_bc's "
                "defaults since 2026-12-02 on DART laps; train_rl's default for them until 2026-12-02, second session)")
# The same weight average on BC runs that leave the dashboard out (what train_bc does with clean laps).
BC_AVERAGED = ("default from BC runs that average their weights without the dashboard (train_bc's defaults since "
               "2026-12-02 on clean laps: --dashboard_inputs auto = 0, --weight_average 0.9), with SAC's entropy bonus "
               "(--bc_prior_kl auto = 0 on clean laps)")
BC_AVERAGED_START = "BC averaging its weights, no dashboard (train_bc's defaults since 2026-12-02 on clean laps)"
# Right after the actor starts, SAC's entropy bonus widened the BC policy's steering spread many-fold within a
# few hundred updates (Adam moves it at full rate whatever the temperature) and pulled the saturated brake mean
# into tanh's slope, whose Jacobian term pays entropy: the training episodes crashed for about 2,000 steps from
# every start (column "training episodes after the actor starts"). Charging KL to the frozen BC policy instead
# leaves nothing to gain there.
KL_PRIOR = ("default for DART laps since 2026-12-02, second session: the temperature charges KL(policy || frozen BC "
            "policy) instead of rewarding entropy (--bc_prior_kl auto = 1), from train_bc's defaults; forced on for "
            "clean laps (auto = 0 there)")
# Training shoves on the defaults of their day: the shoves put the ways back to the road in the replay, and from DART
# laps the KL cost, unlike SAC's bonus (SHOVE_TRAINED), was to keep the policy near BC's while their penalties move
# lambda. It did not: the critic overvalued the shoved states and the policy drifted (README, Reading).
SHOVES_ON_DEFAULTS = ("the default of its day with training shoves (--train_shove 0.02 --offtrack_limit 100; "
                      "--bc_prior_kl auto: the KL cost from DART laps, SAC's entropy bonus from clean ones)")
# The KL cost's price is fixed, and the actor loss divides the critic's pull by |Q|: where the critic errs far
# from the demos (shoved states: 9.6 nats) nothing stops the drift. A limit on the batch's mean KL raises the
# temperature only while the policy is further than 1 nat from BC's (runs without shoves logged 0.2-0.8), at 10x
# SAC's temperature rate: x10 in ~800 updates. Alone it hardly engaged; with shoves it held the validation.
# The default since 2026-12-02, sixth session: the policy's spread (and the frozen BC policy's it is charged
# against) limited to 1 in pre-tanh units (train_rl --spread_limit auto with the KL cost). BC's brake mean sits far
# below a bound with a spread of about 4: the average action the fine-tuned policy drives braked a little from the
# start, and the KL cost let the critic move that mean cheaply; from a recovery start the car crawled (validation
# 912 -> -10, README).
# Every row below was measured without it: each variant's flags get the old limit (see VARIANTS).
SPREAD_1 = ("the default until 2026-12-03, without the stall limit: on DART laps the KL cost (--bc_prior_kl auto) "
            "with the policy's spread limited to 1 (train_rl --spread_limit 1, since 2026-12-02, sixth session)")
# On clean laps auto keeps SAC's entropy bonus and the old limit e^2: does the limit of 1 help there too?
SPREAD_1_SAC = ("the default of its day with the spread limited to 1 under SAC's entropy bonus too "
                "(--spread_limit 1; clean laps)")
# From clean laps the default's validation was still climbing at 15,000 steps on one demo set (491 -> 849 over the last
# 5,000) and its best checkpoint was chosen on 10 tracks: twice the budget, still within the hour, and 20 tracks.
DEFAULT_30K_VAL20 = ("the default of its day at 30,000 steps, validation on 20 tracks "
                     "(--total_steps 30000 --eval_episodes 20)")
# Demo set 1's default run ends 7 of its 10 unfinished test laps "stuck" (bench/failures.py): the car overshoots a
# sharp corner, brakes to a standstill and holds the brake, where the frozen BC policy would not brake at all
# (bench/standstill.py). Standing still costs -0.1 a frame, leaving the road -200: the stall limit prices both alike.
# train_rl's default since 2026-12-03 (--stall_limit auto): first for clean laps, then, as no training episode from
# DART laps stalled (the runs were the same step for step), for every fine-tuning. Every other row was measured
# without it.
STALL_ON_DEFAULTS = ("the default until 2026-12-03's third session: training episodes end after 100 frames without a "
                     "new tile (--stall_limit auto, since 2026-12-03)")
# train_rl's defaults since 2026-12-03 (third session), two changes measured together on the same training (the runs of
# the row above, seed for seed, train identically: both act only on validation and test):
# - with the KL cost the run drives tanh(mean) (--policy_action auto): the spread stays near BC's, and tanh(mean) is
#   the action both actor terms shape and the one BC drives; the average of the squashed samples gives less gas
#   (the row above's runs tested driving tanh(mean): 924.3 and 924.8 against 923.8 and 924.3);
# - of checkpoints whose validation is within 0.5 % of the best, the most trained is the policy (--validation_tie):
#   driving tanh(mean), demo set 0's validations were 918.84, 918.83 and 918.80 at steps 0, 5,000 and 10,000, and
#   strictly the best was the BC start itself, whose test tail the fine-tuning had removed (742 -> 909).
# Every other row was measured before them: each variant's flags get --validation_tie 0 and its --policy_action.
TIED_TO_TRAINED = ("the default until 2026-12-03's sixth session: with the KL cost it drives tanh(mean) "
                   "(--policy_action auto), and its policy is the most trained checkpoint validated within 0.5 % "
                   "of the best (--validation_tie 0.005); lambda's floor at 30 on every start")
# Training shoves on the defaults of 2026-12-03's fourth session: the control of the self-imitation of their recoveries
# (fourth session: the flags --imitate_recoveries and --recovery_exploration lost and are gone, last at commit 8426379)
# and of a steering offset held through each training excursion (fifth session: --off_road_steer lost and is gone,
# last at commit 49619b3).
SHOVES_TIED = ("the default of 2026-12-03's fourth and fifth sessions (lambda's floor at 30) with training shoves "
               "(--train_shove 0.02 --offtrack_limit 100)")
# With lambda's floor at 30, lambda reached it at step 13,000 on strong demo set 0 and the periodic validation fell at
# 15,000 (661, or 894 with training shoves; the run's policy, the tied checkpoint at 10,000, tested 924.3). At 50 every
# validation held on 3 strong demo sets, but weak demo set 2 fell from 923.7 to 857.7 (31 laps): not on every start.
FLOOR_50_TIED = "lambda's floor at 50 on every start (--bc_weight_floor 0.5; 2026-12-03, fifth session)"
# train_rl's default from 2026-12-03's sixth session to 2026-12-05's sixth (--bc_weight_floor auto): lambda's floor at
# 50 with the KL cost, at 30 with SAC's entropy bonus. --bc_prior_kl auto turns the KL cost on for laps that show
# recoveries (the strong and recovery starts' DART laps), so this row trains as the floor-50 row there and as the
# floor-30 row on clean laps, and shares their runs (see FLOOR_KEYS).
FLOOR_AUTO = ("the default until 2026-12-05's sixth session, the actor at 1e-4 on every start: lambda's floor follows "
              "the start (--bc_weight_floor auto: 50 with the KL cost, on DART laps; 30 with SAC's entropy bonus, on "
              "clean laps)")
# At 50 the strong runs' validation stayed at the BC start's (919) from the first step to the last: does twice the
# budget, still within the hour, let the policy move further (the strong bar is 925)?
FLOOR_AUTO_30K = "the default until 2026-12-05's sixth session at 30,000 steps (--total_steps 30000)"
# The critics that saw the car off the road ranked the autopilot's ways back below the policy's own action
# (bench/critic_recoveries.py): they had never tried them. Here the critic is shown them: the recovery laps of the
# same demo tracks (the `recovery` start's laps) join its TD batches alone, valued at least at their own return,
# beside the training shoves' excursions (the policy's own tries off the road). Strong start only (its tracks).
RECOVERY_LAPS = "<recovery laps>"  # stands for the recovery laps of the run's demo set, recorded by rl_run when missing
OWN_RECOVERY_LAPS = "<own recovery laps>"  # the same tracks and shoves driven by the BC start itself (rl_run records)
CRITIC_RECOVERIES = ("the default until 2026-12-05's sixth session with training shoves and the autopilot's recovery "
                     "laps in the critic's batches only (--train_shove 0.02 --offtrack_limit 100 --critic_dataset "
                     "<recovery laps of the demo tracks>)")
# That critic ranked the ways back above the policy's own action on recovery laps of unseen tracks (bench/
# critic_recoveries.py), yet the actor hardly moved toward them. Also imitating the recorded actions the critic valued
# higher (a Q-filter, `--q_filter 1`, 2026-12-03, seventh session; strong demo set 0, one seed each, stopped) collapsed
# the validation: on every critic-only row 919 -> 381 at step 5,000 (614 at 15,000), off the road only 919 -> 517
# (856 at 10,000); the KL to the BC policy rose to 170-350 nats. Deleted (last at commit ad5f9a8).
# So let the actor follow its critic off the road: there the KL cost to the BC policy, which only extrapolates, is not
# charged (on the default of 2026-12-02's fifth session, without laps for the critic, that lost: 921.3 +- 1.8).
CRITIC_RECOVERIES_FREE = ("the default until 2026-12-05's sixth session with training shoves, the autopilot's recovery "
                          "laps in the critic's batches and the KL cost on the road only (--train_shove 0.02 "
                          "--offtrack_limit 100 --critic_dataset <recovery laps of the demo tracks> --kl_on_road_only "
                          "1)")
# On clean laps (SAC's entropy bonus, no KL cost: the actor already follows its critic off the road) the recovery
# laps are the demo tracks driven again, as carefully, with the test's shoves; with and without training shoves (which
# alone cost the weak start much: 692.0 +- 34.2 on the default of 2026-12-02, second session). Measured 2026-12-04
# (weak sets 0 and 1): 917.7 +- 4.5 with training shoves, 912.5 +- 6.2 without, 180 of 278 shoved excursions recovered
# against 27 of 124: the laps buy the return, the training shoves the recoveries.
CRITIC_RECOVERIES_ONLY = ("the default until 2026-12-05's sixth session with the autopilot's recovery laps in the "
                          "critic's batches only, no training shoves (--critic_dataset <recovery laps of the demo "
                          "tracks>)")
# Weak demo sets 2 and 3 drove safely but too slowly to finish 26 and 27 of 50 laps; their validations still
# climbed at step 15,000 (689 -> 846 on set 2): does twice the budget, still within the hour, let them finish?
CRITIC_RECOVERIES_30K = ("the robust recipe (training shoves, recovery laps for the critic) at 30,000 steps "
                         "(--train_shove 0.02 --offtrack_limit 100 --critic_dataset <recovery laps of the demo tracks> "
                         "--total_steps 30000)")
# There (set 2, TensorBoard) nearly every training episode ended in a stall: a shove every 50 steps on average
# leaves a weak policy little whole-lap driving to learn speed from. At the test's rate, half of it?
CRITIC_RECOVERIES_SHOVE01 = ("the robust recipe with training shoves at the test's rate (--train_shove 0.01 "
                             "--offtrack_limit 100 --critic_dataset <recovery laps of the demo tracks>)")
# Why caution? An n-step target that spans a shove charges the policy's action before it with the shove's cost: the
# faster the car, the dearer a push, so the critic learns that slowness pays. Stop the targets before a shove
# (bootstrap from the state it interrupted): shoves still show what coming back is worth, but no longer tax speed.
CRITIC_RECOVERIES_CUT = ("the robust recipe with n-step targets cut before training shoves (--train_shove 0.02 "
                         "--offtrack_limit 100 --critic_dataset <recovery laps of the demo tracks> "
                         "--cut_returns_at_shoves 1)")
# With the cut, weak sets 2 and 3 finished 43 and 40 laps (26 and 27 without it); their misses are brief excursions
# and slow laps that ran out of time. Half the training episodes without shoves drive whole laps: more of the
# track's later tiles at speed in the replay.
CRITIC_RECOVERIES_CUT_HALF = ("the robust recipe with n-step targets cut before training shoves, and half the "
                              "training episodes unshoved (--train_shove 0.02 --offtrack_limit 100 --critic_dataset "
                              "<recovery laps of the demo tracks> --cut_returns_at_shoves 1 --train_shove_share 0.5)")
# Under the robust recipe (2 s off the road at 10 a frame) a stall or a lost car costs 1,000 points: weak training
# episodes returned -1,400 to -2,000 penalized at raw 90-400 (TensorBoard), so the critic priced any risk far above
# speed. At 2 a frame either costs 200, as at the default's 20 frames at 10.
CRITIC_RECOVERIES_PENALTY_2 = ("the robust recipe's auto settings at 2 penalty points per off-track frame "
                               "(--train_shove 0.02 --offtrack_limit 100 --critic_dataset <recovery laps of the demo "
                               "tracks> --offtrack_penalty 2)")
# The cut alone lost and the cut with half the episodes unshoved won: is the cut needed at all?
CRITIC_RECOVERIES_HALF = ("the robust recipe with half the training episodes unshoved, n-step targets not cut "
                          "(--train_shove 0.02 --offtrack_limit 100 --critic_dataset "
                          "<recovery laps of the demo tracks> --train_shove_share 0.5 --cut_returns_at_shoves 0)")
# Weak set 3 at these settings finished 39 laps at 15,000 steps (40 with another seed); its validation was still
# rising. At 30,000 steps (train_rl alone, seed 3) it finished 46: is the longer budget safe for the other sets?
CRITIC_RECOVERIES_CUT_HALF_30K = ("the robust recipe's auto settings on clean laps (half the training episodes "
                                  "unshoved, n-step targets cut) at 30,000 steps (--train_shove 0.02 --offtrack_limit "
                                  "100 --critic_dataset <recovery laps of the demo tracks> --train_shove_share 0.5 "
                                  "--cut_returns_at_shoves 1 --total_steps 30000)")
# With the recovery laps for the critic alone the actor came back from 69 % of the shoves' excursions at best (strong)
# and lost 0.74 of BC's return to them: the critic ranks the ways back, the actor follows it only partly. BC trained on
# such laps came back from 84 % (the recovery start). Here the BC term imitates them too, with the actions the
# autopilot meant (the critic learns from the executed ones), on train_rl's defaults otherwise: no training shoves, the
# KL cost everywhere. Two probes on the robust recipe (strong demo set 0, one seed each, stopped; 2026-12-04, sixth
# session): with its auto settings (training shoves, the KL cost on the road only) the validation fell from 919 to 643
# by step 5,000 (230 off-track frames); with the recovery laps as --dataset instead (critic and BC term both on the
# meant actions), to 680 and 502 by 10,000. Measured (sets 0 and 1): 3.3 times BC's recoveries, 0.61 of its loss to
# shoves, but set 0 lost laps without shoves (43 of 50). Imitating only the rows off the road (set 0, one seed, stopped)
# was worse: validations 515, 866 and 794; its policy stayed the BC start.
IMITATED_RECOVERIES = ("the default until 2026-12-05's sixth session with the autopilot's recovery laps for the critic "
                       "and the BC term (--critic_dataset <recovery laps of the demo tracks> --imitate_critic_dataset "
                       "1 --train_shove 0 --offtrack_limit 20 --kl_on_road_only 0)")
# The imitated laps' road driving pulled set 0's own (validation 919 -> 777, 43 laps at the end): a tenth of each batch
# from them instead of a quarter. Measured (4 sets): 924.0 +- 0.5, 50/50 laps each; sets 0 and 1 recovered 224 of 280
# shoved excursions (3.2 times their BC starts'), but on sets 2 and 3 the validations fell (918 -> 742 and 919 -> 725
# at step 5,000) and were not back by 15,000 (867, 574): their policy stayed the BC start. 2.1 times BC's count over
# the 4 sets, 0.84 of its loss to shoves. There (set 2, TensorBoard) the KL to the BC policy on the policy's own states
# rose to 5-11 nats once the actor started, and the soft TD target's charge for it (0.09-0.18 a step at temperature
# 0.05) came to 40-80 % of the reward: with the KL cost left to the actor alone (`--kl_in_target 0`, 2026-12-04,
# seventh session) the critic's values held but the policy still moved against them, and only set 2 kept a trained
# policy (913.9, 47 laps; 124 of 159 recovered): 4 sets 920.0 +- 4.7, 227 of 408 recovered (1.6 times BC's count),
# 0.89 of its loss. Lost; the flag was deleted (last at commit f47aa92). Weak sets 0 and 1: 850.1 and 900.3 (40 and 47
# laps), 61 of 149 recovered: below the robust recipe's auto settings there.
IMITATED_RECOVERIES_TENTH = ("the default until 2026-12-05's sixth session with the autopilot's recovery laps for the "
                             "critic and the BC term, a tenth of each batch (--critic_dataset <recovery laps of the "
                             "demo tracks> --imitate_critic_dataset 1 --critic_demo_ratio 0.1 --train_shove 0 "
                             "--offtrack_limit 20 --kl_on_road_only 0)")
# The dip above is the KL cost's: the frozen BC policy it charges against never learnt the ways back, so imitating them
# costs 5-11 nats a step and the soft target ranks them below it. Here BC-only actor steps on both lap sets (5,000,
# about 25 s with cached features) come first, and the warmed actor becomes the frozen BC policy: the reference knows
# the ways back, so the KL cost everywhere keeps the policy near them. With the robust recipe's training shoves.
# Probe (strong set 3, where the tenth-share row kept its BC start; one seed): validations 916 (the warmed start, 9
# off-track frames) -> 824 -> 917 (none) -> 895; its policy step 10,000: 923.0, 50/50 laps; with shoves 562.8, 128 of
# 158 recovered. Measured (4 strong sets, 2026-12-05): 922.0 +- 2.1 (48-50 laps), 504 of 629 recovered (3.5 times the BC
# starts' count), 0.48 of their loss to shoves: both robustness bars met; pipeline.sh's recipe since, train_rl's auto
# settings given --critic_dataset since the second session. The warmed starts
# alone (step_0): 887.7, 454 of 569 recovered, with shoves 434.8 against 568.0 after RL. Weak (4 sets, the auto settings
# there: half the episodes shoved, returns cut): 918.6 +- 5.0, 48-49 laps each (the weak bar met on every set), 513 of
# 634 recovered against the BC starts' 110 of 255.
IMITATED_WARM = ("the robust recipe's auto settings with the recovery laps imitated too, from an actor warmed up on "
                 "both lap sets that then is the KL cost's reference (--train_shove 0.02 --offtrack_limit 100 "
                 "--critic_dataset <recovery laps of the demo tracks> --imitate_critic_dataset 1 "
                 "--actor_warmup_steps 5000 --kl_on_road_only 0)")
# Tried and lost (2026-12-05, second session): the warm-up ending on a running average of its weights, one snapshot per
# pass over both lap sets, as train_bc's policy is (a single epoch's weights drive unseen tracks far worse). Probe,
# strong set 0 (step_0, 50 held-out tracks): the warmed start 920.2 (49 laps; the last-step warm-up 858.2, 45), with
# shoves 606.6, 138 of 161 recovered. 4 strong sets: warmed-start validations 913, 737, 881, 912 (set 1 stayed below
# 97 % of BC's until step 15,000, set 2 fell to 881 at 15,000); tests 923.6, 919.6, 923.6, 923.5 = 922.6 +- 1.7 (50,
# 49, 50, 50 laps), with shoves 509.3 +- 56.2 (every set below the last-step warm-up's), 477 of 606 recovered (3.4
# times BC's count), 0.56 of BC's loss to the shoves: the loss bar (0.5) missed, which the last-step warm-up meets.
# The code is gone (last at commit 0addf25); its row stays in the results, labelled "the robust recipe's auto settings
# with the recovery laps imitated too, from an actor warmed up on both lap sets, its weights averaged like train_bc's,
# ... (code of 2026-12-05's second session, last at commit 0addf25)".
# Tried and lost (2026-12-05, third session): the warm-up drawing a quarter of each batch from the recovery laps instead
# of half (--actor_warmup_share 0.25). Probe, strong set 0 (step_0, 50 held-out tracks): the warmed start 867.5 (47
# laps; half: 858.2, 45), with shoves 541.8, 123 of 153 recovered. 4 strong sets: warmed-start validations 824, 491,
# 898, 915 (half: 804, 862, 867, 916); tests 923.7, 922.8, 918.2, 923.9 = 922.2 +- 2.3 (50, 50, 47, 50 laps), with
# shoves 556.8 +- 16.9, 478 of 617 recovered (3.4 times BC's count), 0.50 of BC's loss: a tie on the road, a little
# less robust than half. The flag is gone (last at commit d7b6de4); its row stays in the results, labelled "... from
# an actor warmed up on batches a quarter from the recovery laps ... (code of 2026-12-05's third session, last at
# commit d7b6de4)".
# Tried and lost (2026-12-05, fourth and fifth sessions): the warm-up reading the frames with train_bc's random shifts,
# before the buffers are encoded, instead of their stored features (fixed points seen 16 to 40 times; the warmed starts
# validated 804, 862, 867 and 916 on the strong sets, the BC starts' 917-919). 4 strong sets: warmed starts 869, 918,
# 532, 917; tests 922.9 +- 0.6 (50, 50, 48, 50 laps; min 907, 908, 879, 909), 511 of 632 recovered, 0.49 of BC's loss: a
# little better on the road, as robust. 4 weak sets: 914.8 +- 9.5 (924.0, 899.3, 915.0, 921.0; 50, 37, 47, 47 laps), 478
# of 617 recovered: the weak bar missed on set 1, which the stored features meet on every set. The code is gone (last at
# commit a9a793d); its rows stay, labelled "the robust recipe with its actor warm-up on the frames shifted as train_bc
# shifts them, not on their stored features (code of 2026-12-05's fourth session, last at commit a9a793d; ...)".
# Tried and lost (2026-12-05, fourth session): the warm-up's learning rate falling linearly to 0
# (--actor_warmup_decay 1), so that it ends on settled weights rather than one step's of a noisy walk (shifted,
# the warmed starts validated 869, 918, 532 and 917). Strong sets 0 and 1 (the bench stopped after 2 seeds for
# time): warmed starts 895 and 701, tests 923.6 and 923.8 (50/50 each; shifted there: 923.3, 922.8), with shoves
# 569.7 and 481.0 (shifted: 655.3, 490.0), 248 of 303 recovered, a loss to the shoves 0.54 of those BC starts'
# (shifted: 0.47). The flag is gone (last at commit 3912c67); its row stays in the results, labelled "... its
# learning rate falling linearly to 0 (... ; code of 2026-12-05's fourth session, last at commit 3912c67)".
# From clean laps the fine-tuned policy still stopped on the road or ran out of time on demo sets 4 and 5, where its
# critic ranked full gas above the policy's own action (bench/standstill.py): does the actor follow the critic too
# slowly? Weak, 6 sets (2026-12-05, sixth session): 886.6 +- 34.6 (878.7, 904.7, 905.3, 893.5, 815.0, 922.3; 44, 44,
# 46, 45, 32, 50 laps) against 856.4 +- 81.9 at 1e-4: adopted for clean laps (ACTOR_LR_AUTO). Strong, sets 0 and 1:
# 924.0 and 923.8 against 924.4 and 924.4 at 1e-4, so DART laps keep 1e-4.
ACTOR_LR_3E4 = "the default of 2026-12-05 with the actor learning 3 times faster (--actor_lr 3e-4)"
# train_rl's default since 2026-12-05's sixth session (--actor_lr auto): 3e-4 under SAC's bonus without recovery laps
# (clean laps), 1e-4 otherwise; so this row trains as the row above on clean laps and as the previous default on DART
# laps, and shares their runs.
ACTOR_LR_AUTO = ("the default until 2026-12-05's seventh session: the actor learns 3 times faster from clean laps "
                 "(--actor_lr auto: 3e-4 under SAC's bonus without recovery laps, 1e-4 otherwise; 15,000 steps); "
                 "lambda's floor follows the start (--bc_weight_floor auto: 50 with the KL cost, on DART laps; 30 with "
                 "SAC's entropy bonus, on clean laps)")
# Tried and lost (2026-12-05, sixth session): a standing car's gas sat at a saturated mean (-2.64 at 1e-4: tanh's slope
# 0.02), where the critic's preference for more gas barely reaches the actor, so the critic's gradient on tanh(mean)
# was passed straight through tanh (--straight_through_mean 1, with the actor at 3e-4). Weak set 4 (one seed):
# validations 172 -> 103 -> -82 -> -85, the car standing still (0 frames off the road); tested 280.2, 0 laps, against
# 815.0 (32 laps) without it. The flag is gone (last at commit 5836009); its row stays in the results, labelled
# "... (--straight_through_mean 1; clean laps only, the actor at 3e-4; code of 2026-12-05's sixth session, last at
# commit 5836009)".
# The actor at 3e-4 validated best early and drifted after (sets 0 and 2: 885 -> 682, 912 -> 768), and lost to 1e-4 on
# sets 0, 2 and 3: does its rate falling to 0 by the budget's end keep the early gains and stop the drift?
ACTOR_LR_DECAY = ("the default of 2026-12-05's sixth session with the actor's learning rate falling linearly to 0 "
                  "from its first step to the last (--actor_lr 3e-4 --actor_lr_decay 1; clean laps only)")
# The same over twice the budget: the fast rate for longer, still settled by the end (15 of the hour's 60 minutes).
ACTOR_LR_DECAY_30K = ("the default of 2026-12-05's sixth session at 30,000 steps with the actor's learning rate "
                      "falling linearly to 0 from its first step to the last (--actor_lr 3e-4 --actor_lr_decay 1 "
                      "--total_steps 30000; clean laps only)")
# Every 30,000-step run still validated best at its last step (2026-12-05, seventh session): more steps at the fast
# rate, settled by the end (22 of the hour's 60 minutes)?
ACTOR_LR_DECAY_45K = ("the default of 2026-12-05's seventh session from clean laps at 45,000 steps (--actor_lr 3e-4 "
                      "--actor_lr_decay 1 --total_steps 45000; clean laps only)")
# Most laps the 30,000-step runs missed look like corner cuts (the two replayed had left 3 and 5 road tiles behind; a
# lap needs every tile) that ran out the 1000 frames on a second lap, not slow driving: the training reward charges
# such a skip what it costs the test.
SKIPPED_TILES = ("the default of 2026-12-05's seventh session from clean laps with the skipped-tile penalty "
                 "(--skipped_tile_penalty 25: each time the car leaves road tiles behind unvisited, the training "
                 "reward loses 25; clean laps only)")
# The penalty left sets 2 and 4 short of laps (38 and 42, most misses off the road) while 45,000 steps without it
# finished all 50 on set 5: both together (23 of the hour's 60 minutes)? Lost (2026-12-05, ninth session, weak sets 2
# and 4 from BC starts trained again on another machine): 920.6 and 799.7 (45 and 31 laps, 29 min a run) against today's
# default from the same starts 907.3 and 855.0 (47 and 34 laps, 19 min a run).
SKIPPED_TILES_45K = ("the default of 2026-12-05's eighth session from clean laps at 45,000 steps (--actor_lr 3e-4 "
                     "--actor_lr_decay 1 --total_steps 45000 --skipped_tile_penalty 25; clean laps only)")
# On the ninth session's BC starts today's default still lost 10 of set 4's 16 missed laps to tiles left behind:
# does a penalty 4 times as high take them (the same 19 minutes a run)? Lost (2026-12-06, one seed, set 4, stopped
# there): 625.0, 18 laps (4 lost to skipped tiles), against 855.0 and 34 (10); the car crawled for the first 10,000
# steps (validation -58 at step 5,000 with 3 frames off the road) and validated 541 at the end, against 758.
SKIPPED_TILES_100 = ("today's default from clean laps with the skipped-tile penalty at 100 instead of 25 (--actor_lr "
                     "3e-4 --actor_lr_decay 1 --total_steps 30000 --skipped_tile_penalty 100; clean laps only)")
# Between the two: 50. Lost (2026-12-06, one seed, set 4): the car stood at the start from step 5,000 to 20,000
# (validations -43 to -39, 0 to 4 frames off the road); stopped at step 25,000, not tested.
SKIPPED_TILES_50 = ("today's default from clean laps with the skipped-tile penalty at 50 instead of 25 (--actor_lr "
                    "3e-4 --actor_lr_decay 1 --total_steps 30000 --skipped_tile_penalty 50; clean laps only)")
# A slow start's run-to-run spread is its learning speed: set 4's second seed still climbed at the last validation
# (467, 303, 688, 747 over the last 15,000 steps) where the first had peaked at 818 by step 20,000. TD targets over 5
# steps instead of 3 carry a tile's reward, or a cut's penalty, back to the action that earned it in fewer updates.
# Lost (2026-12-06, weak set 4, training seeds 4 and 104, the ninth session's BC start; set 2 not run): 613.2 and
# 853.9 (15 and 38 laps, min 62 and 11) against today's default's 855.0 and 756.4 (34 and 22) from the same start.
N_STEP_5 = ("today's default from clean laps with 5-step TD targets instead of 3 (--actor_lr 3e-4 --actor_lr_decay 1 "
            "--total_steps 30000 --skipped_tile_penalty 25 --n_step 5; clean laps only)")
# The slow runs stall: on weak set 4 half to four fifths of the second seed's training episodes ended at the stall
# limit after step 5,000 (TensorBoard train/episode_stalled), a tenth to half of the first's. A stall costs what
# leaving the road does (200), but 100 frames (50 steps) after the car stopped, so the critic discounts it to 0.99^50
# = 0.6 of that: stopping before a corner looks cheaper than trying it. At 400 waiting costs more than leaving the road.
# Measured (2026-12-06, second session; the ninth session's BC starts, training seeds 2 and 102 on set 2, 4 and 104
# on set 4): 888.8, 917.9, 851.2, 854.0 (46, 44, 36, 32 laps) = 878.0 +- 27.4, 158 laps of 200, against today's
# default's 907.3, 898.1, 855.0, 756.4 (47, 43, 34, 22) = 854.2 +- 59.8, 146 laps; 3 stuck test laps against 12, more
# off the road (27 against 21); with shoves 68 of 254 excursions recovered against 105 of 274. Not adopted (2 demo
# sets; the weak bar still missed; robustness lower): kept as the flag --stall_penalty. Then set 3 (2026-12-06, third
# session; its BC start trained here, seeds 3 and 103): 916.7 and 815.7 (46 and 32 laps) against the default's 917.2
# and 901.5 (48 and 39): lost there. Over the 3 sets, 6 runs each: 874.0 +- 37.2, 236 laps of 300, against 872.6 +-
# 55.5, 233; with shoves 126 of 402 recovered against 160 of 433. A wash: set 4's gain is set 3's loss.
STALL_PRICE_400 = ("today's default from clean laps with a stall charged 400 instead of leaving the road's 200 "
                   "(--actor_lr 3e-4 --actor_lr_decay 1 --total_steps 30000 --skipped_tile_penalty 25 --stall_penalty "
                   "400; clean laps only)")
# train_rl's default in 2026-12-05's seventh session (--actor_lr_decay auto, --total_steps auto): on clean laps the
# 30,000-step decaying row, on DART laps the previous default; it shares their runs.
BUDGET_AUTO = ("the default until 2026-12-05's eighth session: from clean laps the actor learns 3 times faster, over "
               "twice the budget, its rate falling linearly to 0 (--actor_lr auto --actor_lr_decay auto --total_steps "
               "auto: 3e-4 falling over 30,000 steps under SAC's bonus without recovery laps; 1e-4 over 15,000 "
               "otherwise); lambda's floor follows the start (--bc_weight_floor auto: 50 with the KL cost, on DART "
               "laps; 30 with SAC's entropy bonus, on clean laps)")
# train_rl's default from 2026-12-05's eighth session to 2026-12-06's fourth (--skipped_tile_penalty auto): on clean
# laps the skipped-tile row, on DART laps the previous default (no penalty there); it shares their runs.
TILES_AUTO = ("the default until 2026-12-06's fourth session: from clean laps the actor learns 3 times faster, over "
              "twice the budget, its rate falling linearly to 0, and the training reward charges 25 for road tiles "
              "left behind unvisited "
              "(--actor_lr auto --actor_lr_decay auto --total_steps auto --skipped_tile_penalty auto: 3e-4 falling "
              "over 30,000 steps and the penalty under SAC's bonus without recovery laps; 1e-4 over 15,000 and no "
              "penalty otherwise); lambda's floor follows the start (--bc_weight_floor auto: 50 with the KL cost, on "
              "DART laps; 30 with SAC's entropy bonus, on clean laps)")
# train_rl's default since 2026-12-06's fourth session (--attempts auto): from clean laps two fine-tunings of the
# start, with training seeds k and k + 100, the better validated kept; on DART laps one (the previous default's runs).
# Why: one start's fine-tunings spread by up to 100 points between seeds, and of 8 pairs on 4 demo sets the better
# validated tested better on average by 18 points and 14 laps of 200 (bench/attempt_choice.py).
ATTEMPTS_AUTO = ("the default until 2026-12-06's sixth session: the default until 2026-12-06's fourth session, "
                 "and from clean laps two fine-tunings (training seeds k and k + 100) of which the run keeps the "
                 "better validated (--attempts auto: 2 under SAC's bonus without recovery laps, else 1)")
# train_rl's default since 2026-12-06's sixth session (--brake_trial auto): on DART laps the run's policy validated
# again with a lighter brake after training, and driven so where that validates higher; clean laps the previous
# default's runs. Why: the strong policies tested braking 10 % less gained 0.6 to 5 points without a lap lost, a
# gain the critic does not resolve (bench/brake_headroom.py). Its runs tried 0.9 alone (the sixth session's trial);
# the walk through 0.95 chooses the same on each of them (their validations at 0.95 lay between, or below both).
BRAKE_TRIAL = ("the default until 2026-12-06's eighth session: the default until 2026-12-06's sixth session, and on "
               "DART laps a brake trial: after "
               "training the run's policy validated again with the brake of every action lighter, 5 % a step down to "
               "10 %, while each step validates higher, and driven at the last step that did (--brake_trial auto: "
               "down to 0.9 under the KL cost, else 1)")
# The same walk on to 20 % lighter (2026-12-06's seventh session): the 4 runs of the row above whose validations
# rose at every step to 0.8 (strong sets 5 and 7, seeds k and k + 100), their trial rerun by a resume; sets 4 and 6
# stop where today's default does. Lost: 2 of the 4 lost a test lap their validations did not show.
BRAKE_WALK_08 = ("the default until 2026-12-06's eighth session with the brake trial walking on to 20 % lighter "
                 "(--brake_trial 0.8), the runs whose validations rose at every step")
# train_rl's default since 2026-12-06's eighth session (--gas_trial auto): after the brake trial the same walk with the
# gas of every action heavier, up to 10 %; clean laps the previous default's runs. Why: the policies copy the calm
# autopilot's gas, which eases off before its target speed, and 10 % more gained 0.2 to 0.6 points on the 50 test
# tracks on each of 5 policies (set 9's two runs and its BC start, the main job's BC-SAC and BC; test --gas_scale 1.1)
# without a lap lost; 20 % lost validation laps on both of set 9's runs.
GAS_TRIAL = ("the default until 2026-12-07's second session: the default until 2026-12-06's eighth session, and on "
             "DART laps after the brake trial a gas trial: the same walk with the gas of every action heavier, 5 % a "
             "step up to 10 % (--gas_trial auto: up to 1.1 under the KL cost, else 1)")
# 2026-12-07's first session: before the brake trial the same walk releasing the policy's lightest brakes, those
# below 0.05, then 0.1 (the autopilot brakes 0.1 or more or not at all; tanh never reaches the bound, so its clones
# dab lighter brakes where it coasted). The runs: copies of today's default's on strong sets 11 and 12, their trials
# rerun by a resume. Not adopted: 3 of 4 gained 0.1 to 0.4, the fourth, whose fine-tuning already lost 3 test laps,
# lost one more.
DEADZONE_TRIAL = ("the default until 2026-12-07's second session with a deadzone trial before the brake trial: the "
                  "same walk releasing every brake lighter than 0.05, then 0.1 (--deadzone_trial 0.1)")
# train_rl's default from 2026-12-07's second session to its third (--eval_episodes auto): the run's policy and its
# trials chosen on 30 validation tracks instead of 10 where the trials walk (each validation 3 times longer), after
# set 12's seed 112 validated 919.7 on 10 and lost 3 of 50 test laps; clean laps the previous default's runs.
VALIDATION_30 = ("the default until 2026-12-07's third session: the default until 2026-12-07's second session, "
                 "with the run's policy and its trials chosen on 30 validation tracks instead of 10 (--eval_episodes "
                 "auto: 30 under the KL cost, else 10)")
# train_rl's default since 2026-12-07's third session (--steer_trial auto): after the gas trial the same walk with
# the steering of every action sharper, up to 10 %; clean laps the previous default's runs. Why: on 3 strong runs
# their 30 validation tracks rose about 0.15 for every 5 % up to 20 % after the brake and gas walks, and at 20 % one
# of the 6 runs on sets 11 to 13 lost a test lap. The runs on sets 11 to 13: copies of the previous default's, their
# trials rerun by a resume (`copy_with_trials_rerun`; the trials come after training and do not change it).
STEER_TRIAL = ("today's default: the default until 2026-12-07's third session, and on DART laps after the gas "
               "trial a steering trial: the same walk with the steering of every action sharper, 5 % a step up to "
               "10 % (--steer_trial auto: up to 1.1 under the KL cost, else 1)")
# Today's default with the skipped-tile penalty on DART laps too (until now only clean laps had it): both runs of strong
# set 16 lost their one missed test lap (track 1,000,005) to tiles left behind unvisited, where their BC start finished
# it (925.9); as trained, without the trials, they skip the same tiles, so fine-tuning learned the corner cut.
SKIP_PENALTY_DART = ("today's default with the skipped-tile penalty on DART laps too: each time the car leaves road "
                     "tiles behind unvisited, the training reward loses 25 (--skipped_tile_penalty 25)")
# Today's default with the BC start's own shoved laps as the critic's laps: the robust recipe's critic half (the
# critic's laps, training shoves, the KL cost on the road only; no imitation, no warm-up) for a user without an
# autopilot. With the autopilot's recovery laps that half recovered 2.31 times as often as the BC starts (2026-12-03,
# seventh session); the BC start's own laps hold its ways back and its failures, each valued by what followed.
OWN_RECOVERIES = ("today's default with the BC start's own laps on the demo tracks, driven with the test's shoves, "
                  "as the critic's laps (bench/policy_laps.py; --critic_dataset <them> --imitate_critic_dataset 0: "
                  "training shoves 0.02, 100 frames off the road allowed, the KL cost on the road only)")
# The robust recipe (train_rl given the autopilot's recovery laps, at its auto settings: pipeline.sh's) measured again
# on today's code: its rows above (IMITATED_WARM) predate the trials and the 30 validation tracks. Measured (2026-12-07,
# sixth session; strong sets 14 to 16, seeds k and k + 100): 924.0 +- 1.1, 298 laps of 300 (today's default from the
# same starts and seeds 924.7 +- 0.4, 298 laps), 712 of 913 excursions recovered (2.7 times the BC starts' count per
# run), 0.54 of their loss to the shoves; the warmed start validated below 97 % of its BC start's on 3 of the 6 runs,
# a fourth run's last state at 96.9 %. With set 17 (seventh session): 924.1 +- 1.0 over 8 runs, 398 laps of 400, 3.1
# times the count, 0.53 of the loss.
ROBUST_TODAY = ("today's default given the autopilot's recovery laps, the robust recipe (pipeline.sh's; "
                "--critic_dataset <recovery laps of the demo tracks> at its auto settings: --train_shove 0.02 "
                "--offtrack_limit 100 --imitate_critic_dataset 1 --actor_warmup_steps 5000 --kl_on_road_only 0), "
                "with the trials and 30 validation tracks")
# The robust recipe's runs driven as trained: copies of ROBUST_TODAY's, their trials rerun at 1 (no walk). The brake,
# gas and steering walks make a policy faster on the validation tracks; the question is what they cost under shoves
# (before the trials the recipe lost 0.48 of its BC starts' return to them, with them 0.54). Measured (2026-12-07,
# seventh session; the 8 runs of sets 14 to 17): 923.5 +- 0.7 against 924.1 +- 1.0 with the walks, 3.2 times the BC
# starts' recoveries and 0.51 of their loss against 3.1 and 0.53: the walks cost nothing measurable, they stay.
ROBUST_UNWALKED = ("the robust recipe on today's code driven as trained: its runs, the brake, gas and steering trials "
                   "left out (--brake_trial 1 --gas_trial 1 --steer_trial 1 --eval_episodes 30)")
# The robust recipe with a fifth of its actor warm-up: the warmed actor spoils the road driving (its step 0 validated
# 727 to 910 where the BC starts validated 921), and on set 14's seed 114 1,000 warm-up steps validated 894.5 where
# 5,000 validated 726.7 (train_rl --total_steps 2); the question is what a shorter warm-up does to the recoveries and
# the road at the end. Measured (2026-12-07, seventh session; sets 14 and 15, seed k): 911.4 (44 laps) and 922.0 (48)
# against 924.6 and 925.1, step 0 767.1 and 622.1: lost.
ROBUST_WARM_1K = ("the robust recipe on today's code with 1,000 actor warm-up steps instead of 5,000 "
                  "(--actor_warmup_steps 1000)")
# Tried and lost (2026-12-07, eighth session): the KL cost's reference split, the BC start itself on the road (a second
# frozen actor) and the warmed actor off it (--road_reference 1), since the warm-up spoils the road driving and the KL
# cost everywhere toward the warmed actor holds the fine-tuning near it. Strong sets 14 and 16, seeds k and k + 100:
# 924.0, 925.0, 900.0, 915.0 (50, 50, 45, 46 laps) against 924.6, 923.4, 924.5, 921.8 (50, 49, 50, 49) from the same
# starts and seeds; 2.6 times the BC starts' recoveries and 0.60 of their loss against 2.8 and 0.51. Set 16's BC start
# is the weak one (842.4): its warmed actor drove the road better than it (step 0 833 and 894 against 850), and a road
# reference held there lost laps. The code is gone (last at commit 5028d1b); its row stays, labelled "... off it
# (--road_reference 1; code of 2026-12-07's eighth session, last at commit 5028d1b)".
# rows measured with --eval_episodes auto
WIDE_VALIDATIONS = (VALIDATION_30, STEER_TRIAL, SKIP_PENALTY_DART, OWN_RECOVERIES, ROBUST_TODAY, ROBUST_WARM_1K)
TODAYS_TRIALS_OFF = (ROBUST_UNWALKED,)  # today's settings but the trials (at 1) and so the validations (30, said)
AUTO_BUDGET = (BUDGET_AUTO, TILES_AUTO, ATTEMPTS_AUTO, BRAKE_TRIAL, BRAKE_WALK_08,
               GAS_TRIAL, DEADZONE_TRIAL, *WIDE_VALIDATIONS, *TODAYS_TRIALS_OFF)  # rows measured at --total_steps auto
# measured with --skipped_tile_penalty auto
TODAYS_PENALTY = (TILES_AUTO, ATTEMPTS_AUTO, BRAKE_TRIAL, BRAKE_WALK_08, GAS_TRIAL, DEADZONE_TRIAL, *WIDE_VALIDATIONS,
                  *TODAYS_TRIALS_OFF)
# rows measured with --attempts auto (BRAKE_WALK_08's DART laps: 1)
TODAYS_ATTEMPTS = (ATTEMPTS_AUTO, BRAKE_TRIAL, GAS_TRIAL, DEADZONE_TRIAL, *WIDE_VALIDATIONS, *TODAYS_TRIALS_OFF)
# rows measured with --brake_trial auto
BRAKE_TRIALS = (BRAKE_TRIAL, GAS_TRIAL, DEADZONE_TRIAL, *WIDE_VALIDATIONS)
GAS_TRIALS = (GAS_TRIAL, DEADZONE_TRIAL, *WIDE_VALIDATIONS)  # rows measured with --gas_trial auto
# rows measured with --steer_trial auto
STEER_TRIALS = (STEER_TRIAL, SKIP_PENALTY_DART, OWN_RECOVERIES, ROBUST_TODAY, ROBUST_WARM_1K)
SHOVES_FLOOR_AUTO = ("the default until 2026-12-05's sixth session with training shoves (--train_shove 0.02 "
                     "--offtrack_limit 100): the control of the recovery laps in the critic's batches")
FLOOR_FOLLOWS_START = (FLOOR_AUTO, FLOOR_AUTO_30K, CRITIC_RECOVERIES, CRITIC_RECOVERIES_FREE, CRITIC_RECOVERIES_ONLY,
                       CRITIC_RECOVERIES_30K, CRITIC_RECOVERIES_SHOVE01, CRITIC_RECOVERIES_CUT,
                       CRITIC_RECOVERIES_CUT_HALF, CRITIC_RECOVERIES_PENALTY_2, CRITIC_RECOVERIES_HALF,
                       CRITIC_RECOVERIES_CUT_HALF_30K, IMITATED_RECOVERIES, IMITATED_RECOVERIES_TENTH,
                       IMITATED_WARM, SHOVES_FLOOR_AUTO, ACTOR_LR_3E4, ACTOR_LR_AUTO, ACTOR_LR_DECAY,
                       ACTOR_LR_DECAY_30K, ACTOR_LR_DECAY_45K, SKIPPED_TILES, SKIPPED_TILES_45K, SKIPPED_TILES_100,
                       SKIPPED_TILES_50, N_STEP_5, STALL_PRICE_400,
                       *AUTO_BUDGET)  # measured with --bc_weight_floor auto
KL_LIMIT = "the default of its day with the KL limited to 1 nat (--kl_limit 1 --alpha_lr 0.003; --bc_prior_kl auto)"
KL_LIMIT_SHOVES = ("the default of its day with the KL limited to 1 nat and training shoves (--kl_limit 1 "
                   "--alpha_lr 0.003 --train_shove 0.02 --offtrack_limit 100; --bc_prior_kl auto)")
# With the spread held, can lambda let go further? Its floor at 10 let the policy drift before (SAC's bonus on).
KL_FLOOR_10 = "the KL cost with lambda's floor at 10 (--bc_prior_kl 1 --bc_weight_floor 0.1)"
# The KL's price is its temperature (fixed): a fifth of it lets the critic move the policy further.
KL_COOL = "the KL cost at temperature 0.01 (--bc_prior_kl 1 --init_temperature 0.01)"
# The default until 2026-12-01 (fourth session): validation and test drove tanh(mean). Every row below was
# measured with it, so each variant's flags get --policy_action mean (see VARIANTS).
MEAN_DRIVEN = ("the default's training, validation and test driving tanh(mean) "
               "(the default until 2026-12-01, fourth session)")
# The default until 2026-12-01 (evening): SAC's actor loss on sampled actions only. Every row below was measured
# with it, so each variant's flags get --mean_action_q 0 (see VARIANTS).
SAMPLES_ONLY = "critics with LayerNorm, actor loss on sampled actions only (the default until 2026-12-01 evening)"
# The default until 2026-11-30 (evening). The rows below it, the last one aside, fine-tune BC runs whose
# critics have no LayerNorm (bc_run's baseline), as they did when they were measured.
NO_LAYER_NORM = "critics without LayerNorm (the default before 2026-11-30 evening)"
CANDIDATE = "constant lambda 100, initial temperature 0.001, 30,000 steps, validation on 20 tracks"
COOL_LONG = "initial temperature 0.001, 60,000 steps, validation on 20 tracks"
LONG_30K = ["--total_steps", 30_000, "--eval_episodes", 20]
COOL_30K = ["--init_temperature", 0.001, *LONG_30K]
COOL_60K = ["--init_temperature", 0.001, "--total_steps", 60_000, "--eval_episodes", 20]
# Training episodes end after --offtrack_limit consecutive off-track frames (20 = 0.4 s by default): too
# short to ever drive back, so recovery is never experienced. 100 frames = 2 s, the shove test's window.
OFFTRACK_100 = "off-track limit 100 frames in training (2 s to get back; default 20)"
# The default's LayerNorm critics (RLPD) at twice the budget, for the weak start that still climbed at the end.
CRITIC_LN_30K = "critics with LayerNorm, 30,000 steps, validation on 20 tracks"
# RLPD's other ingredient beside LayerNorm critics: more gradient updates per collected step.
CRITIC_LN_UTD2 = "critics with LayerNorm, 2 updates per step"
# WSRL / PIRLNav: the critics first learn the policy's own rollouts (5,000 steps instead of 2,000) before the
# actor moves.
CRITIC_LN_WARMUP = "critics with LayerNorm, critic warm-up 5,000 steps"
# At temperature 0.05 the soft TD target's -alpha log pi (log pi about +10 for the narrow BC policy) drags
# the critics' values down once online data arrives (TensorBoard: train/episode_predicted_q_s0 dips early).
CRITIC_LN_COOL = "critics with LayerNorm, initial temperature 0.001"
# The off-track limit of 100 frames lost at a penalty of 10 a frame: the shoved and off-road episodes were
# dominated by their penalties. At 1 a frame, 2 s off the road cost less than the tiles still ahead.
SOFT_OFFTRACK = "critics with LayerNorm, off-track limit 100 frames and penalty 1 in training"
# RLPD's symmetric sampling: half of each batch from the demonstrations instead of a quarter.
CRITIC_LN_DEMO50 = "critics with LayerNorm, half of each batch from demonstrations"
# A car stopped at a hairpin (bench/failures.py: "stuck") costs -0.1 a frame, leaving the road -10: the critic
# valued gas there below standing still. Ending such episodes at the cost of leaving the road removes the harbour.
STALL = "training episodes end after 100 frames without a new tile, at the cost of leaving the road"
# The same stall limit on the default, which drives the average action: its weak runs still stopped on the
# road (bench/failures.py: 3 to 13 of 50 held-out tracks "stuck", no frame off the road).
STALL_EXPECTED = ("default with training episodes ending after 100 frames without a new tile, "
                  "at the cost of leaving the road")
# The default at twice its budget (about 15 minutes alone on the 2 cores, within the hour): its weak runs
# were still climbing at 15,000 steps.
DEFAULT_30K = "default at 30,000 steps"
# Run-id keys of today's defaults by lambda's floor, 50 (True: DART laps, the KL cost) or 30 (False: clean laps).
# The flags of the rows on today's defaults (and of the stall row they grew from), each row adding its own.
# The test's shoves during training, with 2 s off the road before a training episode ends.
# (every episode shoved, returns summed through the shoves:
# train_rl's auto on every start until 2026-12-04's fourth session)
TRAINING_SHOVES = ["--train_shove", 0.02, "--offtrack_limit", 100, "--train_shove_share", 1,
                   "--cut_returns_at_shoves", 0]
STALLED_TIED_FLAGS = ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                      "--bc_prior_kl", "auto", "--stall_limit", 100]
FLOOR_KEYS = {True: "critic_ln_meanq_driveauto_dash_floor50_bcauto_klauto_spread1_stall100_tie",
              False: "critic_ln_meanq_driveauto_dash_floor30_bcauto_klauto_spread1_stall100_tie"}


def attempts_keys(dart_suffix: str) -> dict[str, str]:
    """Run keys of a default since --attempts auto: from clean laps the attempts' runs (what later defaults changed
    walks only under the KL cost), from DART laps the floor's key plus `dart_suffix` (the trials and validations
    that changed them)."""
    return {start: FLOOR_KEYS[True] + dart_suffix if dart_laps(start)
            else f"{FLOOR_KEYS[False]}_actorlr3e4_decay_30k_skip25_attempts2" for start in STARTS}


def penalized_clean_laps(total_steps: int, penalty: int, **train_rl_flags) -> tuple[dict, list]:
    """A weak-start row at 3e-4 falling to 0 over `total_steps`, charging `penalty` for road tiles left behind, with
    train_rl's other flags as given (n_step=5: --n_step 5, named in the run key as _nstep5)."""
    key = "".join(f"_{name.replace('_', '')}{value}" for name, value in train_rl_flags.items())
    flags = [item for name, value in train_rl_flags.items() for item in (f"--{name}", value)]
    return ({"weak": f"{FLOOR_KEYS[False]}_actorlr3e4_decay_{total_steps // 1000}k_skip{penalty}{key}"},
            [*STALLED_TIED_FLAGS, "--actor_lr", 3e-4, "--actor_lr_decay", 1, "--total_steps", total_steps,
             "--skipped_tile_penalty", penalty, *flags])


VARIANTS = {
    # A fine-tuned policy's spread stays wide where the critic is unsure (the gas, often); there tanh(mean)
    # and the average of its samples are different drivers (README: Design notes, Reading).
    DEFAULT: ("critic_ln_meanq_driveexp_dash_floor30", ["--critic_layer_norm", 1]),
    BC_DASHBOARD: ("critic_ln_meanq_driveexp_dash_floor30_bcdashavg",
                   ["--critic_layer_norm", 1, "--bc_dashboard_inputs", 1, "--weight_average", 0.9]),
    BC_AVERAGED: ("critic_ln_meanq_driveexp_dash_floor30_bcavg", ["--critic_layer_norm", 1, "--weight_average", 0.9]),
    KL_PRIOR: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_kl",
               ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                "--bc_prior_kl", 1]),
    SPREAD_1: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_spread1",
               ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                "--bc_prior_kl", "auto"]),
    SPREAD_1_SAC: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_spread1sac",
                   ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                    "--bc_prior_kl", "auto", "--spread_limit", 1]),
    DEFAULT_30K_VAL20: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_30k_val20",
                        ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                         "--bc_prior_kl", "auto", "--total_steps", 30_000, "--eval_episodes", 20]),
    FLOOR_AUTO: ({start: FLOOR_KEYS[dart_laps(start)] for start in STARTS}, STALLED_TIED_FLAGS),
    ACTOR_LR_AUTO: ({start: FLOOR_KEYS[dart_laps(start)] + ("" if dart_laps(start) else "_actorlr3e4")
                     for start in STARTS}, STALLED_TIED_FLAGS),
    BUDGET_AUTO: ({start: FLOOR_KEYS[dart_laps(start)] + ("" if dart_laps(start) else "_actorlr3e4_decay_30k")
                   for start in STARTS}, STALLED_TIED_FLAGS),
    TILES_AUTO: ({start: FLOOR_KEYS[dart_laps(start)] + ("" if dart_laps(start) else "_actorlr3e4_decay_30k_skip25")
                  for start in STARTS}, STALLED_TIED_FLAGS),
    ATTEMPTS_AUTO: (attempts_keys(""), STALLED_TIED_FLAGS),
    BRAKE_TRIAL: (attempts_keys("_brake09"), STALLED_TIED_FLAGS),
    BRAKE_WALK_08: ({"strong": f"{FLOOR_KEYS[True]}_brake08"}, [*STALLED_TIED_FLAGS, "--brake_trial", 0.8]),
    GAS_TRIAL: (attempts_keys("_brake09_gas11"), STALLED_TIED_FLAGS),
    DEADZONE_TRIAL: ({"strong": f"{FLOOR_KEYS[True]}_dead01_brake09_gas11"},
                     [*STALLED_TIED_FLAGS, "--deadzone_trial", 0.1]),
    VALIDATION_30: (attempts_keys("_brake09_gas11_val30"), STALLED_TIED_FLAGS),
    STEER_TRIAL: (attempts_keys("_brake09_gas11_val30_steer11"), STALLED_TIED_FLAGS),
    SKIP_PENALTY_DART: ({"strong": f"{FLOOR_KEYS[True]}_brake09_gas11_val30_steer11_skip25"},
                        [*STALLED_TIED_FLAGS, "--skipped_tile_penalty", 25]),
    OWN_RECOVERIES: ({"strong": f"{FLOOR_KEYS[True]}_brake09_gas11_val30_steer11_ownrec"},
                     [*STALLED_TIED_FLAGS, "--critic_dataset", OWN_RECOVERY_LAPS, "--imitate_critic_dataset", 0]),
    ROBUST_TODAY: ({"strong": f"{FLOOR_KEYS[True]}_brake09_gas11_val30_steer11_criticrec_imitated_warm5k"},
                   [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--imitate_critic_dataset", "auto",
                    "--actor_warmup_steps", "auto"]),
    ROBUST_UNWALKED: ({"strong": f"{FLOOR_KEYS[True]}_val30_criticrec_imitated_warm5k_unwalked"},
                      [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--imitate_critic_dataset", "auto",
                       "--actor_warmup_steps", "auto", "--eval_episodes", 30]),  # the trials at 1: not listed above
    ROBUST_WARM_1K: ({"strong": f"{FLOOR_KEYS[True]}_brake09_gas11_val30_steer11_criticrec_imitated_warm1k"},
                     [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--imitate_critic_dataset", "auto",
                      "--actor_warmup_steps", 1000]),
    ACTOR_LR_3E4: ({start: f"{FLOOR_KEYS[dart_laps(start)]}_actorlr3e4" for start in STARTS},
                   [*STALLED_TIED_FLAGS, "--actor_lr", 3e-4]),
    ACTOR_LR_DECAY: ({"weak": f"{FLOOR_KEYS[False]}_actorlr3e4_decay"},
                     [*STALLED_TIED_FLAGS, "--actor_lr", 3e-4, "--actor_lr_decay", 1]),
    ACTOR_LR_DECAY_30K: ({"weak": f"{FLOOR_KEYS[False]}_actorlr3e4_decay_30k"},
                         [*STALLED_TIED_FLAGS, "--actor_lr", 3e-4, "--actor_lr_decay", 1, "--total_steps", 30_000]),
    ACTOR_LR_DECAY_45K: ({"weak": f"{FLOOR_KEYS[False]}_actorlr3e4_decay_45k"},
                         [*STALLED_TIED_FLAGS, "--actor_lr", 3e-4, "--actor_lr_decay", 1, "--total_steps", 45_000]),
    SKIPPED_TILES: penalized_clean_laps(30_000, 25),
    SKIPPED_TILES_45K: penalized_clean_laps(45_000, 25),
    SKIPPED_TILES_100: penalized_clean_laps(30_000, 100),
    SKIPPED_TILES_50: penalized_clean_laps(30_000, 50),
    N_STEP_5: penalized_clean_laps(30_000, 25, n_step=5),
    STALL_PRICE_400: penalized_clean_laps(30_000, 25, stall_penalty=400),
    FLOOR_AUTO_30K: ({start: f"{FLOOR_KEYS[dart_laps(start)]}_30k" for start in STARTS},
                     [*STALLED_TIED_FLAGS, "--total_steps", 30_000]),
    CRITIC_RECOVERIES: ({start: f"{FLOOR_KEYS[dart_laps(start)]}_shove02_off100_criticrec"
                         for start in ("strong", "weak")},
                        [*STALLED_TIED_FLAGS, *TRAINING_SHOVES,
                         "--critic_dataset", RECOVERY_LAPS, "--kl_on_road_only", 0]),
    CRITIC_RECOVERIES_FREE: ({"strong": f"{FLOOR_KEYS[True]}_shove02_off100_criticrec_klroad"},
                             [*STALLED_TIED_FLAGS, *TRAINING_SHOVES,
                              "--critic_dataset", RECOVERY_LAPS, "--kl_on_road_only", 1]),
    CRITIC_RECOVERIES_30K: ({"weak": f"{FLOOR_KEYS[False]}_shove02_off100_criticrec_30k"},
                            [*STALLED_TIED_FLAGS, *TRAINING_SHOVES, "--critic_dataset", RECOVERY_LAPS,
                             "--total_steps", 30_000]),
    CRITIC_RECOVERIES_SHOVE01: ({"weak": f"{FLOOR_KEYS[False]}_shove01_off100_criticrec"},
                                [*STALLED_TIED_FLAGS, "--train_shove", 0.01, "--offtrack_limit", 100,
                                 "--train_shove_share", 1, "--cut_returns_at_shoves", 0,
                                 "--critic_dataset", RECOVERY_LAPS]),
    CRITIC_RECOVERIES_CUT: ({"strong": f"{FLOOR_KEYS[True]}_shove02_off100_criticrec_klroad_cut",
                             "weak": f"{FLOOR_KEYS[False]}_shove02_off100_criticrec_cut"},
                            [*STALLED_TIED_FLAGS, *TRAINING_SHOVES, "--critic_dataset", RECOVERY_LAPS,
                             "--cut_returns_at_shoves", 1]),
    CRITIC_RECOVERIES_CUT_HALF: ({"strong": f"{FLOOR_KEYS[True]}_shove02half_off100_criticrec_klroad_cut",
                                  "weak": f"{FLOOR_KEYS[False]}_shove02half_off100_criticrec_cut"},
                                 [*STALLED_TIED_FLAGS, *TRAINING_SHOVES, "--critic_dataset", RECOVERY_LAPS,
                                  "--cut_returns_at_shoves", 1, "--train_shove_share", 0.5]),
    # its auto, spelt out
    CRITIC_RECOVERIES_PENALTY_2: ({"weak": f"{FLOOR_KEYS[False]}_shove02half_off100pen2_criticrec_cut"},
                                  [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--train_shove", 0.02,
                                   "--offtrack_limit", 100, "--train_shove_share", 0.5, "--cut_returns_at_shoves", 1,
                                   "--offtrack_penalty", 2]),
    CRITIC_RECOVERIES_HALF: ({"strong": f"{FLOOR_KEYS[True]}_shove02half_off100_criticrec_klroad",
                              "weak": f"{FLOOR_KEYS[False]}_shove02half_off100_criticrec"},
                             [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--train_shove", 0.02,
                              "--offtrack_limit", 100, "--train_shove_share", 0.5, "--cut_returns_at_shoves", 0]),
    CRITIC_RECOVERIES_CUT_HALF_30K: ({"weak": f"{FLOOR_KEYS[False]}_shove02half_off100_criticrec_cut_30k"},
                                     [*STALLED_TIED_FLAGS, *TRAINING_SHOVES, "--critic_dataset", RECOVERY_LAPS,
                                      "--cut_returns_at_shoves", 1, "--train_shove_share", 0.5,
                                      "--total_steps", 30_000]),
    IMITATED_RECOVERIES: ({start: f"{FLOOR_KEYS[dart_laps(start)]}_criticrec_imitated"
                           for start in ("strong", "weak")},
                          [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--imitate_critic_dataset", 1,
                           "--train_shove", 0, "--offtrack_limit", 20, "--kl_on_road_only", 0]),
    IMITATED_RECOVERIES_TENTH: ({start: f"{FLOOR_KEYS[dart_laps(start)]}_criticrec10_imitated"
                                 for start in ("strong", "weak")},
                                [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--imitate_critic_dataset", 1,
                                 "--critic_demo_ratio", 0.1, "--train_shove", 0, "--offtrack_limit", 20,
                                 "--kl_on_road_only", 0]),
    IMITATED_WARM: ({"strong": f"{FLOOR_KEYS[True]}_shove02_off100_criticrec_imitated_warm5k",  # all shoved, no cut
                     "weak": f"{FLOOR_KEYS[False]}_shove02half_off100_criticrec_cut_imitated_warm5k"},
                    [*STALLED_TIED_FLAGS, "--train_shove", 0.02, "--offtrack_limit", 100, "--critic_dataset",
                     RECOVERY_LAPS, "--imitate_critic_dataset", 1, "--actor_warmup_steps", 5000,
                     "--kl_on_road_only", 0]),
    CRITIC_RECOVERIES_ONLY: ({"weak": f"{FLOOR_KEYS[False]}_criticrec"},
                             [*STALLED_TIED_FLAGS, "--critic_dataset", RECOVERY_LAPS, "--train_shove", 0,
                              "--offtrack_limit", 20]),
    SHOVES_FLOOR_AUTO: ({start: f"{FLOOR_KEYS[dart_laps(start)]}_shove02_off100" for start in STARTS},
                        [*STALLED_TIED_FLAGS, *TRAINING_SHOVES]),
    TIED_TO_TRAINED: (FLOOR_KEYS[False], STALLED_TIED_FLAGS),
    SHOVES_TIED: ("critic_ln_meanq_driveauto_dash_floor30_bcauto_klauto_spread1_stall100_tie_shove02_off100",
                  [*STALLED_TIED_FLAGS, *TRAINING_SHOVES]),
    FLOOR_50_TIED: (FLOOR_KEYS[True], [*STALLED_TIED_FLAGS, "--bc_weight_floor", 0.5]),
    STALL_ON_DEFAULTS: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_spread1_stall100", STALLED_TIED_FLAGS),
    KL_COOL: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_kl_t001",
              ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9, "--bc_prior_kl", 1,
               "--init_temperature", 0.01]),
    SHOVES_ON_DEFAULTS: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_shove02_off100",
                         ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                          "--bc_prior_kl", "auto", *TRAINING_SHOVES]),
    KL_LIMIT: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_kllim1",
               ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                "--bc_prior_kl", "auto", "--kl_limit", 1, "--alpha_lr", 0.003]),
    KL_LIMIT_SHOVES: ("critic_ln_meanq_driveexp_dash_floor30_bcauto_klauto_kllim1_shove02_off100",
                      ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                       "--bc_prior_kl", "auto", "--kl_limit", 1, "--alpha_lr", 0.003, *TRAINING_SHOVES]),
    KL_FLOOR_10: ("critic_ln_meanq_driveexp_dash_bcauto_kl",
                  ["--critic_layer_norm", 1, "--bc_dashboard_inputs", "auto", "--weight_average", 0.9,
                   "--bc_prior_kl", 1]),
    FLOOR_10: ("critic_ln_meanq_driveexp_dash", ["--critic_layer_norm", 1]),
    SHOVE_TRAINED: ("critic_ln_meanq_driveexp_dash_floor30_shove02_off100",
                    ["--critic_layer_norm", 1, *TRAINING_SHOVES]),
    NO_DASHBOARD: ("critic_ln_meanq_driveexp", ["--critic_layer_norm", 1]),
    MEAN_DRIVEN: ("critic_ln_meanq", ["--critic_layer_norm", 1]),
    SAMPLES_ONLY: ("critic_ln", ["--critic_layer_norm", 1]),
    NO_LAYER_NORM: ("plain_adaptive", []),
    "BC selection + anchor on all states + adaptive lambda + BC spread": ("recipe", SELECT_ANCHOR),
    "plain BC-SAC (lambda 10 on demo rows, learnt spread)": ("previous_BC-SAC", PLAIN + ["--bc_weight", 10]),
    "constant lambda 100 (demo rows, learnt spread)": ("lambda100", PLAIN + ["--bc_weight", 100]),
    "lambda=0": ("lambda0", PLAIN + ["--bc_weight", 0]),
    "initial temperature 0.001, 30,000 steps, validation on 20 tracks": ("cool_30k", COOL_30K),
    "30,000 steps, validation on 20 tracks (temperature 0.05)": ("long_30k", LONG_30K),
    COOL_LONG: ("cool_60k", COOL_60K),
    CANDIDATE: ("cool_30k_lambda100", ["--adaptive_bc_weight", 0, "--bc_weight", 100, *COOL_30K]),
    OFFTRACK_100: ("offtrack100", ["--offtrack_limit", 100]),
    CRITIC_LN_30K: ("critic_ln_30k", ["--critic_layer_norm", 1, *LONG_30K]),
    CRITIC_LN_UTD2: ("critic_ln_utd2", ["--critic_layer_norm", 1, "--updates_per_step", 2]),
    CRITIC_LN_WARMUP: ("critic_ln_warmup5k", ["--critic_layer_norm", 1, "--critic_warmup_steps", 5000]),
    CRITIC_LN_COOL: ("critic_ln_cool", ["--critic_layer_norm", 1, "--init_temperature", 0.001]),
    SOFT_OFFTRACK: ("critic_ln_offtrack100_pen1",
                    ["--critic_layer_norm", 1, "--offtrack_limit", 100, "--offtrack_penalty", 1]),
    CRITIC_LN_DEMO50: ("critic_ln_demo50", ["--critic_layer_norm", 1, "--demo_ratio", 0.5]),
    STALL: ("critic_ln_meanq_stall100", ["--critic_layer_norm", 1, "--stall_limit", 100]),
    STALL_EXPECTED: ("critic_ln_meanq_driveexp_stall100", ["--critic_layer_norm", 1, "--stall_limit", 100]),
    DEFAULT_30K: ("critic_ln_meanq_driveexp_30k", ["--critic_layer_norm", 1, "--total_steps", 30_000]),
}
# A row measured with a newer default had every older one too, so each tuple extends the next newer default's: a new
# row on today's defaults is listed once, in TIED.
# measured with --policy_action auto and --validation_tie 0.005
TIED = (*FLOOR_FOLLOWS_START, TIED_TO_TRAINED, SHOVES_TIED, FLOOR_50_TIED)
# measured with lambda's floor at 30 (train_rl's default until 2026-12-03, sixth session) or above
WITH_FLOOR_30 = (*TIED, DEFAULT, SPREAD_1, DEFAULT_30K_VAL20, STALL_ON_DEFAULTS, SPREAD_1_SAC, BC_DASHBOARD,
                 BC_AVERAGED, KL_PRIOR, SHOVES_ON_DEFAULTS, KL_LIMIT, KL_LIMIT_SHOVES, KL_COOL, SHOVE_TRAINED)
WITH_DASHBOARD = (*WITH_FLOOR_30, KL_FLOOR_10, FLOOR_10)  # measured with the dashboard inputs (train_rl's default)
# measured driving the average action (train_rl's --policy_action default until 2026-12-03, third session)
DRIVE_EXPECTED = (*WITH_DASHBOARD, NO_DASHBOARD, STALL_EXPECTED, DEFAULT_30K)
WITH_MEAN_ACTION_Q = (*DRIVE_EXPECTED, MEAN_DRIVEN, STALL)  # measured with the actor loss also on tanh(mean)
# measured with the policy's spread limited to 1 (--spread_limit auto with the KL cost, or 1)
SPREAD_LIMITED = (*TIED, SPREAD_1, DEFAULT_30K_VAL20, STALL_ON_DEFAULTS, SPREAD_1_SAC)
VARIANTS = {label: (key, [*flags, *([] if label in (ACTOR_LR_AUTO, *AUTO_BUDGET) or "--actor_lr" in flags else
                                ["--actor_lr", 1e-4]),
                          *([] if label in AUTO_BUDGET or "--actor_lr_decay" in flags else ["--actor_lr_decay", 0]),
                          *([] if label in TODAYS_PENALTY or "--skipped_tile_penalty" in flags else
                            ["--skipped_tile_penalty", 0]),
                          *([] if label in TODAYS_ATTEMPTS else ["--attempts", 1]),  # one fine-tuning until then
                          *([] if label in BRAKE_TRIALS or "--brake_trial" in flags else ["--brake_trial", 1]),
                          *([] if label in GAS_TRIALS else ["--gas_trial", 1]),
                          *([] if label in STEER_TRIALS else ["--steer_trial", 1]),
                          *([] if label in WIDE_VALIDATIONS or "--eval_episodes" in flags else
                            ["--eval_episodes", 10]),
                          *([] if label in SPREAD_LIMITED else ["--spread_limit", OLD_SPREAD_LIMIT]),
                          *([] if label in FLOOR_FOLLOWS_START or "--bc_weight_floor" in flags else
                            ["--bc_weight_floor", 0.3 if label in WITH_FLOOR_30 else 0.1]),
                          *([] if label in WITH_DASHBOARD else ["--dashboard_inputs", 0]),
                          *([] if label in WITH_MEAN_ACTION_Q else ["--mean_action_q", 0]),
                          *([] if label in TIED else
                            ["--policy_action", "expected" if label in DRIVE_EXPECTED else "mean",
                             "--validation_tie", 0]),
                          *([] if "--stall_limit" in flags else ["--stall_limit", 0]),
                          # rows with recovery laps measured before --critic_dataset's auto settings imitated them
                          *(["--imitate_critic_dataset", 0] if "--critic_dataset" in flags and
                            "--imitate_critic_dataset" not in flags else []),
                          *(["--actor_warmup_steps", 0] if "--imitate_critic_dataset" in flags and
                            "--actor_warmup_steps" not in flags else [])])
            for label, (key, flags) in VARIANTS.items()}
SHOVED = (BC_START, BC_DASHBOARD_START, BC_AVERAGED_START, *TIED, DEFAULT, SPREAD_1, DEFAULT_30K_VAL20,
          STALL_ON_DEFAULTS, SPREAD_1_SAC, BC_DASHBOARD, KL_PRIOR, SHOVES_ON_DEFAULTS, KL_LIMIT, KL_LIMIT_SHOVES,
          FLOOR_10, SHOVE_TRAINED, NO_DASHBOARD, SAMPLES_ONLY, CANDIDATE, COOL_LONG, OFFTRACK_100, NO_LAYER_NORM,
          SOFT_OFFTRACK)  # rows also tested with shoves
# Checkpoint each row tests: the run's policy at train_rl's default (--final_policy best); the plain BC-SAC
# runs here were trained with --final_policy last, so their best one is named.
ROW_CHECKPOINT = {"plain BC-SAC (lambda 10 on demo rows, learnt spread)": "best"}
# The same runs tested at their other checkpoint.
OTHER_CHECKPOINT = {DEFAULT: ("latest_step",
                              "default from BC runs without the dashboard or weight average, its last state"),
                    FLOOR_10: ("latest_step", "lambda's floor at 10, its last state"),
                    DEFAULT_30K: ("latest_step", "default at 30,000 steps, its last state"),
                    SAMPLES_ONLY: ("latest_step", "actor loss on sampled actions only, its last state"),
                    NO_LAYER_NORM: ("latest_step", "critics without LayerNorm, its last state"),
                    "BC selection + anchor on all states + adaptive lambda + BC spread":
                        ("latest_step", "selection + anchor, its last state"),
                    "plain BC-SAC (lambda 10 on demo rows, learnt spread)": ("latest_step",
                                                                             "plain BC-SAC, its last state")}
MAX_SEEDS = 20  # demo sets the table looks for (0 .. MAX_SEEDS - 1)
MAX_TRAINING_SEEDS = 5  # training seeds per demo set (training_seed)
BC_EPOCHS = 0  # train_bc --epochs of every BC start: set once by main(), part of every run id


def finished(run_id: str) -> bool:
    return (LOG_ROOT / run_id / "checkpoints" / "latest").exists()


# Flags of a variant that belong to its BC run -> (train_bc's flag, run-id tag, the baseline value). The BC
# starts have the baseline unless a variant sets a flag; then it fine-tunes its own BC runs, trained with
# it (ids tagged). The ensemble size is train_bc's; LayerNorm is off, unlike train_bc's default: the BC
# runs most rows were measured from (BC's critic loss does not reach the actor or encoder, so their
# policies are the same either way). --bc_dashboard_inputs is train_bc's --dashboard_inputs (a variant's
# own --dashboard_inputs is train_rl's); off in the BC runs most rows were measured from, as was the weight
# average (0: the last epoch's weights).
BC_TIME_FLAGS = {"--num_qs": ("--num_qs", "q", ModelConfig().num_qs),
                 "--critic_layer_norm": ("--critic_layer_norm", "ln", 0),
                 "--bc_dashboard_inputs": ("--dashboard_inputs", "dash", 0),
                 "--weight_average": ("--weight_average", "avg", 0)}


def bc_time_flags(flags: list, start: str = "") -> tuple[dict, list]:
    """A variant's flags split into (the value of every BC-time flag, train_rl's flags). `--bc_dashboard_inputs
    auto` is train_bc's auto for this start: on for DART laps (noise > 0), off for clean ones."""
    bc, rl = {}, list(flags)
    for flag, (_, _, baseline) in BC_TIME_FLAGS.items():
        bc[flag] = baseline
        if flag in rl:
            at = rl.index(flag)
            bc[flag] = rl[at + 1]
            del rl[at:at + 2]
    if bc["--bc_dashboard_inputs"] == "auto":
        bc["--bc_dashboard_inputs"] = int(dart_laps(start))
    return bc, rl


def bc_run_id(start: str, k: int, bc_values: dict) -> str:
    suffix = "".join(f"_{tag}{bc_values[flag]}" for flag, (_, tag, baseline) in BC_TIME_FLAGS.items()
                     if bc_values[flag] != baseline)
    return f"ft_bc_{start}_{k}_e{BC_EPOCHS}{suffix}"


def bc_run(start: str, k: int, bc_values: dict | None = None) -> str:
    """BC on demo set k of this start, trained once per set of BC-time flags (default: the baselines)."""
    bc_values = bc_values or bc_time_flags([])[0]
    run_id, dataset = bc_run_id(start, k, bc_values), f"ft_{start}_{k}"
    if not finished(run_id):
        flags, first_seed = STARTS[start]
        cli("expert", "--dataset", dataset, "--seed", first_seed(k), "--skip_existing", *flags)
        cli("train_bc", "--dataset", dataset, "--run_id", run_id, "--seed", k, "--epochs", BC_EPOCHS,
            *[arg for flag, (name, _, _) in BC_TIME_FLAGS.items() for arg in (name, bc_values[flag])])
    return run_id


# BC rows -> the BC runs tried for each demo set, first finished one tabulated. The plain starts: the baseline
# one, else the one with LayerNorm critics (its actor and encoder are the baseline's: BC's critic loss does not
# reach them), so a checkout that trained only the default's BC runs still has its BC row.
BC_ROWS = {
    BC_START: ([], ["--critic_layer_norm", 1]),
    BC_DASHBOARD_START: (["--critic_layer_norm", 1, "--bc_dashboard_inputs", 1, "--weight_average", 0.9],),
    "BC reading the dashboard, the last epoch's weights": (["--critic_layer_norm", 1, "--bc_dashboard_inputs", 1],),
    BC_AVERAGED_START: (["--critic_layer_norm", 1, "--weight_average", 0.9],),
}


def bc_starts(start: str, candidates: tuple = BC_ROWS[BC_START]) -> list[str]:
    """One finished BC run per demo set, the first of `candidates` (variant flags) that finished."""
    runs = []
    for k in range(MAX_SEEDS):
        run_ids = [bc_run_id(start, k, bc_time_flags(flags)[0]) for flags in candidates]
        runs += [r for r in run_ids if finished(r)][:1]
    return runs


def measured_from(variant: str, start: str) -> bool:
    """Whether a variant is defined for a start: one keyed by start (a dict) names the starts it applies to."""
    key = VARIANTS[variant][0]
    return not isinstance(key, dict) or start in key


def training_seed(k: int, j: int) -> int:
    """Demo set k's j-th training seed: k itself first (the runs measured before --training_seeds), then k + 100 j."""
    return k + 100 * j


def rl_run_id(variant: str, start: str, k: int, seed: int | None = None) -> str:
    """Demo set k fine-tuned with training seed k (the default) or `seed`, named by a suffix."""
    key = VARIANTS[variant][0]
    suffix = "" if seed in (None, k) else f"_seed{seed}"
    return f"ft_{key[start] if isinstance(key, dict) else key}_{start}_{k}_e{BC_EPOCHS}{suffix}"


def rl_finished(run_id: str) -> bool:
    return (LOG_ROOT / run_id / "wall_time_s").exists()  # written once train_rl returned


def finished_runs(variant: str, start: str) -> list[str]:
    """The variant's finished runs from this start in this checkout's logs/, every demo set and training seed."""
    return [run_id for k, j in itertools.product(range(MAX_SEEDS), range(MAX_TRAINING_SEEDS))
            if rl_finished(run_id := rl_run_id(variant, start, k, training_seed(k, j)))]


def recovery_laps(start: str, k: int) -> str:
    """Demo set k of a start driven again with the robustness test's shoves, recorded once (for the strong start
    these are the `recovery` start's laps)."""
    flags, first_seed = STARTS[start]
    dataset = f"ft_recovery_{k}" if start == "strong" else f"ft_{start}_recovery_{k}"
    cli("expert", "--dataset", dataset, "--seed", first_seed(k), "--skip_existing", *flags, "--shove", TEST_SHOVE)
    return dataset


def own_recovery_laps(start: str, k: int, bc_run_id: str) -> str:
    """The BC run's own laps on demo set k's tracks with the robustness test's shoves, recorded once."""
    dataset = f"{bc_run_id}_own_recovery"
    flags, first_seed = STARTS[start]
    episodes = flags[flags.index("--episodes") + 1]  # the demo set's tracks
    print(f"$ python bench/policy_laps.py {bc_run_id} --dataset {dataset} --seed {first_seed(k)} --episodes {episodes} "
          f"--shove {TEST_SHOVE}", flush=True)
    policy_laps.record_policy_laps(bc_run_id, dataset, first_seed(k), episodes, TEST_SHOVE)
    return dataset


FIXED_BUDGET = 15_000  # train_rl's --total_steps for every start until 2026-12-05's seventh session (then auto)


def rl_run(variant: str, start: str, k: int, total_steps: int | None, seed: int | None = None) -> str:
    """Fine-tune demo set k's BC start as the variant says, with training seed `seed` (None: k); `total_steps` None:
    the budget the row was measured with (train_rl's auto for today's default, FIXED_BUDGET before; a row's own
    --total_steps wins)."""
    seed = k if seed is None else seed
    run_id = rl_run_id(variant, start, k, seed)
    total_steps = total_steps or (None if variant in AUTO_BUDGET else FIXED_BUDGET)
    bc_flags, flags = bc_time_flags(VARIANTS[variant][1], start)
    if (LOG_ROOT / run_id).exists() and not rl_finished(run_id):
        raise SystemExit(f"{LOG_ROOT / run_id} is an unfinished run (interrupted?): delete it and rerun")
    if not rl_finished(run_id):
        start_run = bc_run(start, k, bc_flags)  # trained first if missing: not part of the RL wall time
        laps = {RECOVERY_LAPS: lambda: recovery_laps(start, k),
                OWN_RECOVERY_LAPS: lambda: own_recovery_laps(start, k, start_run)}
        flags = [laps[flag]() if flag in laps else flag for flag in flags]
        started = time.time()
        cli("train_rl", "--resume_run_id", start_run, "--run_id", run_id, "--seed", seed,
            *(["--total_steps", total_steps] if total_steps else []), *flags)
        (LOG_ROOT / run_id / "wall_time_s").write_text(f"{time.time() - started:.0f}")
    return run_id


def copy_with_trials_rerun(variant: str, source: str, start: str, k: int, seed: int | None = None) -> str:
    """`source`'s finished run of demo set k copied as `variant`'s and resumed, which reruns train_rl's trials (a
    trial the variant's flags give takes their value, one the source's config.json lacks resolves auto). The trials
    come after training and leave it as it was, so the copy is the run `variant` would train; its wall time stays the
    source's, without the trials' rerun."""
    seed = k if seed is None else seed
    run_id, source_id = rl_run_id(variant, start, k, seed), rl_run_id(source, start, k, seed)
    if not rl_finished(run_id):
        if not rl_finished(source_id):
            raise SystemExit(f"{LOG_ROOT / source_id}: no finished run to copy")
        shutil.rmtree(LOG_ROOT / run_id, ignore_errors=True)  # a copy interrupted before its trials ended
        shutil.copytree(LOG_ROOT / source_id, LOG_ROOT / run_id, ignore=shutil.ignore_patterns("test_results",
                                                                                               "wall_time_s"))
        config = json.loads((LOG_ROOT / run_id / "config.json").read_text())
        defaults = RLConfig()
        auto = [flag for flag in TRIAL_FLAGS.values() if getattr(defaults, flag) is None]
        flags = VARIANTS[variant][1]
        given = {flag: flags[flags.index(f"--{flag}") + 1] for flag in TRIAL_FLAGS.values() if f"--{flag}" in flags}
        config["train"].update({flag: None for flag in auto if flag not in config["train"]} | given)
        (LOG_ROOT / run_id / "config.json").write_text(json.dumps(config, indent=2))
        cli("train_rl", "--resume_run_id", run_id)
        shutil.copy(LOG_ROOT / source_id / "wall_time_s", LOG_ROOT / run_id / "wall_time_s")
    return run_id


def row(run_ids: list[str], episodes: int, shove: float, checkpoint: str | None = None) -> dict:
    """Mean ± std across seeds of the per-seed test means, plus the per-seed numbers."""
    tests = [tested(r, episodes, checkpoint=checkpoint) for r in run_ids]
    per_seed = {key: [t[key]["mean"] for t in tests] for key in ("raw", "penalized", "offtrack_frames")}
    out = {"runs": run_ids, **{f"{k}_per_seed": v for k, v in per_seed.items()},
           "min_per_seed": [t["raw"]["min"] for t in tests], "laps_per_seed": [t["laps_completed"] for t in tests]}
    if all(rl_finished(r) for r in run_ids):
        out["actor_start_raw_per_seed"] = [actor_start_return(r) for r in run_ids]
    walls = [LOG_ROOT / r / "wall_time_s" for r in run_ids]
    out["wall_time_s"] = [float(w.read_text()) for w in walls if w.exists()]
    if shove:
        shoved = [tested(r, episodes, shove, checkpoint) for r in run_ids]
        out["shoved_raw_per_seed"] = [s["raw"]["mean"] for s in shoved]
        out["excursions"] = [s["excursions"] for s in shoved]
        out["recoveries"] = [s["recoveries"] for s in shoved]
    return out


ACTOR_START_WINDOW = 2_000  # steps


def actor_start_return(run_id: str) -> float:
    """Mean raw return of the training episodes that ended within ACTOR_START_WINDOW steps of the actor's first
    update: where SAC's entropy bonus crashed the BC policy (NaN if none ended there)."""
    train = json.loads((LOG_ROOT / run_id / "config.json").read_text())["train"]
    start = train["learning_starts"] + train["critic_warmup_steps"]
    steps, raw = eval_curve(run_id, "train/episode_raw_return")
    window = [v for s, v in zip(steps, raw) if start <= s < start + ACTOR_START_WINDOW]
    return float(np.mean(window)) if window else float("nan")


def mean_curve(run_ids: list[str]) -> dict | None:
    """Validation return vs steps, mean over the seeds; kept in the results so the plot survives the logs."""
    curves = [eval_curve(r) for r in run_ids]
    n = min(len(steps) for steps, _ in curves)
    return {"steps": curves[0][0][:n], "raw": np.mean([raw[:n] for _, raw in curves], axis=0).tolist()} if n else None


def measured_alike(earlier: dict, now: dict) -> bool:
    """Whether the runs the two rows share test as they did: `test` is deterministic, so a run id whose result
    moved names other weights (BC starts trained again on another machine under the same ids)."""
    before = dict(zip(earlier.get("runs", []), earlier.get("raw_per_seed", [])))
    return all(abs(before[r] - v) < 0.05
               for r, v in zip(now.get("runs", []), now.get("raw_per_seed", [])) if r in before)


def with_earlier_rows(table: dict, earlier: Path, replace: bool = False, beside: dict | None = None) -> dict:
    """The rows of an earlier results file (a fresh checkout keeps the results, not the runs) in that file's
    order, updated by the rows measured now; rows new to it go after their start's leading BC rows. A row
    keeps its earlier version where this checkout holds fewer of its runs (e.g. 2 of another machine's 4 demo
    sets) or, unless `replace`, where its runs test otherwise than they did (same ids, other weights); either way a
    row named in `beside` (key -> label suffix) also goes in as a row of its own, right after the earlier one."""
    old = {tuple(k.split(" | ", 1)): r for k, r in json.loads(earlier.read_text()).items()} if earlier.exists() else {}
    runs = lambda r: len(r.get("runs", []))
    kept, added = {}, {}
    for key, r in table.items():
        if key not in old:
            continue
        if runs(old[key]) > runs(r):
            kept[key] = f"{runs(old[key])} runs there, {runs(r)} here"
        elif not replace and not measured_alike(old[key], r):
            kept[key] = "its runs test otherwise here (other weights under the same ids; --replace_rows takes these)"
        if key in kept and key in (beside or {}):
            added[key] = (key[0], f"{key[1]}, {beside[key]}")
            kept[key] += f"; these numbers go in as '{added[key][1]}'"
    for (start, policy), why in kept.items():
        print(f"kept the earlier row '{start} | {policy}': {why}")
    merged = {**old, **{key: r for key, r in table.items() if key not in kept},
              **{label: table[key] for key, label in added.items()}}
    ordered = []
    for start in STARTS:
        earlier_keys = [key for key in old if key[0] == start and key not in added.values()]
        earlier_keys = [k for key in earlier_keys for k in (key, *([added[key]] if key in added else []))]
        lead = next((i for i, key in enumerate(earlier_keys) if key[1] not in BC_ROWS), len(earlier_keys))
        new_keys = [key for key in table if key[0] == start and key not in old]
        ordered += earlier_keys[:lead] + new_keys + earlier_keys[lead:]
    return {key: merged[key] for key in ordered}


def markdown(table: dict, episodes: int) -> str:
    pm = lambda v: f"{np.mean(v):.1f} ± {np.std(v):.1f}"
    lines = ["| start | policy | seeds | raw return | per-seed mean | min | laps | off-track frames | "
             "with shoves: raw / recovered excursions | training episodes after the actor starts | wall time |",
             "|" + "---|" * 11]
    for (start, policy), r in table.items():
        shove = (f"{pm(r['shoved_raw_per_seed'])} / {sum(r['recoveries'])} of {sum(r['excursions'])}"
                 if "recoveries" in r else "—")
        wall = f"{np.mean(r['wall_time_s']) / 60:.1f} min" if r["wall_time_s"] else "—"
        actor_start = pm(r["actor_start_raw_per_seed"]) if r.get("actor_start_raw_per_seed") else "—"
        lines.append(f"| {start} | {policy} | {len(r['runs'])} | {pm(r['raw_per_seed'])} | "
                     f"{', '.join(f'{v:.1f}' for v in r['raw_per_seed'])} | "
                     f"{', '.join(f'{v:.0f}' for v in r['min_per_seed'])} | "
                     f"{', '.join(f'{v}/{episodes}' for v in r['laps_per_seed'])} | "
                     f"{pm(r['offtrack_frames_per_seed'])} | {shove} | {actor_start} | {wall} |")
    return "\n".join(lines)


def kept_attempt(run_id: str) -> str:
    """The run's folder, or that of the attempt whose policy the run kept (train_rl --attempts points `latest` at a
    copy of the policy of attempt K, checkpoints/attempt_K.pt, when K is not the run itself)."""
    latest = LOG_ROOT / run_id / "checkpoints" / "latest"
    policy = latest.read_text().strip() if latest.exists() else ""
    return f"{run_id}/{policy.removesuffix('.pt')}" if policy.startswith("attempt_") else run_id


@functools.cache  # a run's curve and its training episodes come from one reading of its event files
def run_events(run_id: str):
    """The TensorBoard scalars of the run's kept policy's training (its own, or its kept attempt's)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(LOG_ROOT / kept_attempt(run_id)), size_guidance={"scalars": 0})
    events.Reload()
    return events


def eval_curve(run_id: str, tag: str = "eval/raw_return") -> tuple[list[int], list[float]]:
    events = run_events(run_id)
    scalars = events.Scalars(tag) if tag in events.Tags()["scalars"] else []
    return [s.step for s in scalars], [s.value for s in scalars]


def distinct_curves(curves: dict) -> dict:
    """Rows of one start holding the same runs (variants whose auto settings resolve alike there share them) as one
    curve: under today's default's label where it is one of them, else the first's, saying how many rows it is."""
    by_runs: dict[tuple, list] = {}
    for key, r in curves.items():
        by_runs.setdefault((key[0], tuple(r["runs"])), []).append(key)
    distinct = {}
    for keys in by_runs.values():
        start, label = next((key for key in keys if key[1].startswith("today's default:")), keys[0])
        n = len(keys) - 1
        others = f" (the same runs as {n} other row{'s' * (n > 1)})" if n else ""
        distinct[(start, label + others)] = curves[keys[0]]
    return distinct


def plot(table: dict, out: Path) -> None:
    """Validation return vs steps, mean over the seeds of each (start, variant) row that has a curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(STARTS), figsize=(6 * len(STARTS), 4.5), sharey=True)  # one panel per start
    for ax, start in zip(axes, STARTS):
        rows = [(policy, r) for (row_start, policy), r in table.items() if row_start == start and "curve" in r]
        for policy, r in rows:
            label = textwrap.fill(f"{policy} ({len(r['runs'])} seeds)", 48)  # long labels: wrapped, not cut
            ax.plot(r["curve"]["steps"], r["curve"]["raw"], marker="o", label=label)
        ax.set_title(f"{start} BC start")
        ax.set_xlabel("environment steps")
        ax.axhline(900, color="gray", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3)
        if rows:  # below the panel: inside it the long labels hid the curves
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
        else:
            ax.text(0.5, 0.5, "no fine-tuning runs of this start in logs/", ha="center", transform=ax.transAxes)
    axes[0].set_ylabel("raw return, validation tracks (mean over seeds)")
    fig.savefig(out, dpi=110, bbox_inches="tight")  # "tight" makes room for the legends
    print(f"written {out}")


def variant_label(text: str) -> str:
    """--variants' type: a row's label, or a one-line error (argparse's choices would list all ~50 labels)."""
    if text not in VARIANTS:
        raise argparse.ArgumentTypeError(f"no variant labelled {text!r} (--list prints the labels)")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2,
                        help="demo sets per start and variant (demo set k is fine-tuned with training seed k)")
    parser.add_argument("--training_seeds", type=int, default=1,
                        help=f"training seeds per demo set, at most {MAX_TRAINING_SEEDS}: "
                             "k, then k + 100, k + 200, ... "
                             "(one demo set's runs differ by 100 points on the weak start: 2 tell an effect from luck)")
    parser.add_argument("--first_seed", type=int, default=0,
                        help="train from this demo set on (the table still holds every finished run)")
    parser.add_argument("--bc_epochs", type=int, default=None,
                        help="train_bc epochs of the starts (default: train_bc's)")
    parser.add_argument("--total_steps", type=int, default=None,
                        help="train_rl budget (default: each row's own, train_rl's auto for today's default)")
    parser.add_argument("--test_episodes", type=int, default=50)
    parser.add_argument("--shove", type=float, default=TEST_SHOVE, help="shove probability of the robustness test")
    parser.add_argument("--variants", nargs="+", default=None, type=variant_label, metavar="LABEL",
                        help="rows to measure, by their label in the table "
                             "(default: every variant defined for the start)")
    parser.add_argument("--list", action="store_true", help="print the variants' labels and exit")
    parser.add_argument("--starts", nargs="+", default=list(STARTS), choices=list(STARTS))
    parser.add_argument("--only_table", action="store_true", help="train nothing: tabulate and plot the finished runs")
    parser.add_argument("--only_plot", action="store_true",
                        help="train and test nothing, leave the results file as it is: plot the finished runs' curves")
    parser.add_argument("--replace_rows", action="store_true",
                        help="rows whose runs test otherwise than the results file says (retrained under the same "
                             "ids) take the new numbers (default: the file's are kept, and named)")
    parser.add_argument("--beside", default="", metavar="TEXT",
                        help="where the results file keeps its own version of a --variants row (its runs test "
                             "otherwise here, e.g. trained from other BC starts, or it holds more runs, e.g. other "
                             "demo sets), add this checkout's numbers beside it, labelled '<row>, TEXT' (e.g. 'from "
                             "the BC starts of the machine of <date>')")
    args = parser.parse_args()
    if args.list:
        print("\n".join(VARIANTS))
        return
    if not 1 <= args.training_seeds <= MAX_TRAINING_SEEDS:
        parser.error(f"--training_seeds must be in [1, {MAX_TRAINING_SEEDS}], got {args.training_seeds}")
    if not 1 <= args.seeds <= MAX_SEEDS:  # the table looks for demo sets 0 .. MAX_SEEDS - 1 only
        parser.error(f"--seeds must be in [1, {MAX_SEEDS}], got {args.seeds}")
    if not 0 <= args.first_seed < args.seeds:
        parser.error(f"--first_seed must be in [0, --seeds), got {args.first_seed} with --seeds {args.seeds}")
    from bc import BCConfig

    global BC_EPOCHS
    BC_EPOCHS = args.bc_epochs or BCConfig().epochs
    for start, variant in itertools.product(args.starts, args.variants or ()):  # before anything trains
        if not measured_from(variant, start):
            raise SystemExit(f"error: --variants {variant!r} is not defined for --starts {start}")
    name = f"finetune_bc{BC_EPOCHS}"
    if args.only_plot:
        curves = {}
        for start, variant in itertools.product(STARTS, VARIANTS):
            if measured_from(variant, start) and (run_ids := finished_runs(variant, start)):
                if curve := mean_curve(run_ids):
                    curves[(start, variant)] = {"runs": run_ids, "curve": curve}
        plot(distinct_curves(curves), RESULTS / f"{name}_curves.png")
        return
    if not args.only_table:
        for start in args.starts:
            variants = args.variants or [variant for variant in VARIANTS if measured_from(variant, start)]
            for k, j in itertools.product(range(args.first_seed, args.seeds), range(args.training_seeds)):
                for variant in variants:
                    rl_run(variant, start, k, args.total_steps, training_seed(k, j))
    # The table holds every finished run, whichever invocation trained it.
    RESULTS.mkdir(exist_ok=True)
    table = {}
    for start in STARTS:
        for label, candidates in BC_ROWS.items():
            if bcs := bc_starts(start, candidates):
                table[(start, label)] = row(bcs, args.test_episodes, args.shove if label in SHOVED else 0.0)
        for variant in (v for v in VARIANTS if measured_from(v, start)):
            if run_ids := finished_runs(variant, start):
                table[(start, variant)] = row(run_ids, args.test_episodes, args.shove if variant in SHOVED else 0.0,
                                              ROW_CHECKPOINT.get(variant))
                if curve := mean_curve(run_ids):  # only the variants' own rows are plotted
                    table[(start, variant)]["curve"] = curve
            if run_ids and variant in OTHER_CHECKPOINT:
                checkpoint, label = OTHER_CHECKPOINT[variant]
                table[(start, label)] = row(run_ids, args.test_episodes, 0.0, checkpoint=checkpoint)
    beside = {(start, v): args.beside for start in args.starts for v in args.variants or ()} if args.beside else {}
    measured, table = table, with_earlier_rows(table, RESULTS / f"{name}.json", args.replace_rows, beside)
    (RESULTS / f"{name}.json").write_text(json.dumps({f"{s} | {p}": r for (s, p), r in table.items()}, indent=2))
    (RESULTS / f"{name}.md").write_text(markdown(table, args.test_episodes) + "\n")
    print(markdown(table, args.test_episodes))
    # the runs on this checkout; earlier plots are kept under their dates
    plot(distinct_curves({key: r for key, r in measured.items() if "curve" in r}), RESULTS / f"{name}_curves.png")


if __name__ == "__main__":
    main()
