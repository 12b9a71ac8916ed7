#!/usr/bin/env bash
# The main job: autopilot demos (and the same tracks driven again with the robustness test's shoves) -> behaviour
# cloning -> BC-SAC fine-tuning that is shown the ways back (critic and actor) -> both tested on held-out tracks, with
# and without shoves.
# Budget knobs (environment variables): EPISODES, RECOVERY_EPISODES (default: EPISODES; 0 fine-tunes at train_rl's
# defaults, without recovery laps), BC_EPOCHS, RL_STEPS (default: train_bc's and train_rl's), TEST_EPISODES.
set -euo pipefail
cd "$(dirname "$0")"
[ -n "${DISPLAY:-}" ] || export SDL_VIDEODRIVER=dummy  # headless machines
EPISODES=${EPISODES:-20}
RECOVERY_EPISODES=${RECOVERY_EPISODES:-$EPISODES}
BC_BUDGET=()
[ -z "${BC_EPOCHS:-}" ] || BC_BUDGET=(--epochs "$BC_EPOCHS")
TEST_EPISODES=${TEST_EPISODES:-20}
SHOVE=0.01
STAMP=$(date +%Y%m%d_%H%M%S)
RL_BUDGET=()
[ -z "${RL_STEPS:-}" ] || RL_BUDGET=(--total_steps "$RL_STEPS")

python main.py expert --dataset autopilot --episodes "$EPISODES" --noise 0.05 --skip_existing
RECOVERY=()
if [ "$RECOVERY_EPISODES" -gt 0 ]; then
  # The robust recipe (README, Results: RL fine-tuning): given recovery laps, train_rl's auto settings show them to
  # the critic and the actor (warmed up on both lap sets first; the warmed actor is the policy the KL cost charges
  # against) and add the test's shoves during training.
  python main.py expert --dataset autopilot_recovery --episodes "$RECOVERY_EPISODES" --noise 0.05 --shove "$SHOVE" \
    --skip_existing
  RECOVERY=(--critic_dataset autopilot_recovery)
fi
python main.py train_bc --dataset autopilot "${BC_BUDGET[@]}" --run_id "bc_$STAMP"
python main.py train_rl --resume_run_id "bc_$STAMP" --run_id "bcsac_$STAMP" "${RL_BUDGET[@]}" "${RECOVERY[@]}"
for run in "bc_$STAMP" "bcsac_$STAMP"; do
  echo "== $run on $TEST_EPISODES held-out tracks, then with the robustness test's shoves"
  python main.py test --resume_run_id "$run" --episodes "$TEST_EPISODES"
  python main.py test --resume_run_id "$run" --episodes "$TEST_EPISODES" --shove "$SHOVE"
done
echo "== side by side"
python evaluate.py "logs/bc_$STAMP" "logs/bcsac_$STAMP" --episodes "$TEST_EPISODES" --shove "$SHOVE"
