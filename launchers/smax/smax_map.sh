#!/usr/bin/env bash
# InSPO Table 4's datasets on one map of the SMAX stand-in (JaxMARL, CPU jax; not StarCraft II):
# build Expert, Medium, Medium-Replay and Mixed locally, then sweep BC and InSPO (and any other
# registered Table 4 system named in SYSTEMS) over them. Results carry a win_rate metric.
# Needs the smax extra: pip install 'og-marl-inspo[smax]' (Python >= 3.11).
# Usage: launchers/smax/smax_map.sh MAP [SEEDS=0-4] [WORKERS=1]   (env: SYSTEMS=bc,inspo)
set -euo pipefail
MAP=$1
SEEDS=${2:-0-4}
WORKERS=${3:-1}
SYSTEMS=${SYSTEMS:-bc,inspo}
# One build writes all four (they share the stand-in learner's checkpoints); Mixed is written last.
if ! og-marl-inspo datasets info --source inspo --env smax --scenario "$MAP" --dataset Mixed \
        >/dev/null 2>&1; then
    og-marl-inspo datasets build --source inspo --env smax --scenario "$MAP"
fi
# Each system runs with its SMAC v1 settings (GRU torso, greedy evaluation, sequences of 20),
# then its SMAX ones where its systems/ file has them (InSPO: alpha for SMAX's reward scale).
SYSTEMS_DIR="$(cd "$(dirname "$0")/../../systems" && pwd)"
for SYSTEM in ${SYSTEMS//,/ }; do
    og-marl-inspo sweep --systems "$SYSTEM" --source inspo --env smax --scenarios "$MAP" \
        --datasets Medium,Medium-Replay,Expert,Mixed --seeds "$SEEDS" --workers "$WORKERS" \
        --config "$SYSTEMS_DIR/$SYSTEM.py:smac_v1/smax/$MAP" --no-progress
done
og-marl-inspo table --source inspo --env smax --metric win_rate
