#!/usr/bin/env bash
# InSPO Table 4, SMAC v1 map 3s_vs_5z: download the CFCQL vaults (OG-MARL's published zip), then sweep
# BC (and InSPO when it is registered) over Medium, Medium-Replay, Expert and Mixed.
# Evaluation needs StarCraft II 4.10 under SC2PATH and smac from github oxwhirl/smac
# (not the registry package named smac). Results carry a win_rate metric.
# Usage: launchers/smac_v1/3s_vs_5z.sh [SEEDS=0-4] [WORKERS=1]   (env: SYSTEMS=bc,inspo to choose)
set -euo pipefail
SEEDS=${1:-0-4}
WORKERS=${2:-1}
if [ -z "${SYSTEMS:-}" ]; then
    SYSTEMS=bc
    if og-marl-inspo systems | grep -x inspo >/dev/null; then SYSTEMS=bc,inspo; fi
fi
og-marl-inspo datasets download --source cfcql --env smac_v1 --scenario 3s_vs_5z
og-marl-inspo sweep --systems "$SYSTEMS" --source cfcql --env smac_v1 --scenarios 3s_vs_5z \
    --datasets Medium,Medium-Replay,Expert,Mixed --seeds "$SEEDS" --workers "$WORKERS" --no-progress
og-marl-inspo table --source cfcql --env smac_v1
