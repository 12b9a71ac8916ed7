#!/usr/bin/env bash
# The main job: autopilot demos -> behaviour cloning -> BC-SAC fine-tuning -> both tested on held-out tracks.
# Budget knobs (environment variables): EPISODES, BC_EPOCHS, RL_STEPS (default: train_bc's and train_rl's), TEST_EPISODES.
set -euo pipefail
cd "$(dirname "$0")"
[ -n "${DISPLAY:-}" ] || export SDL_VIDEODRIVER=dummy  # headless machines
EPISODES=${EPISODES:-20}
BC_BUDGET=()
[ -z "${BC_EPOCHS:-}" ] || BC_BUDGET=(--epochs "$BC_EPOCHS")
TEST_EPISODES=${TEST_EPISODES:-20}
STAMP=$(date +%Y%m%d_%H%M%S)
RL_BUDGET=()
[ -z "${RL_STEPS:-}" ] || RL_BUDGET=(--total_steps "$RL_STEPS")

python main.py expert --dataset autopilot --episodes "$EPISODES" --noise 0.05 --skip_existing
python main.py train_bc --dataset autopilot "${BC_BUDGET[@]}" --run_id "bc_$STAMP"
python main.py train_rl --resume_run_id "bc_$STAMP" --run_id "bcsac_$STAMP" "${RL_BUDGET[@]}"
echo "== BC policy on $TEST_EPISODES held-out tracks"
python main.py test --resume_run_id "bc_$STAMP" --episodes "$TEST_EPISODES"
echo "== BC-SAC policy on $TEST_EPISODES held-out tracks"
python main.py test --resume_run_id "bcsac_$STAMP" --episodes "$TEST_EPISODES"
echo "== side by side"
python evaluate.py "logs/bc_$STAMP" "logs/bcsac_$STAMP" --episodes "$TEST_EPISODES"
