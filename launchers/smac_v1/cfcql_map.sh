#!/usr/bin/env bash
# InSPO Table 4 on one SMAC v1 map: download the CFCQL vaults (OG-MARL's published zip), then sweep
# BC (and InSPO when it is registered) over Medium, Medium-Replay, Expert and Mixed.
# Evaluation needs StarCraft II 4.10 under SC2PATH and smac from github oxwhirl/smac
# (not the registry package named smac). Results carry a win_rate metric.
# Usage: launchers/smac_v1/cfcql_map.sh MAP [SEEDS=0-4] [WORKERS=1]   (env: SYSTEMS=bc,inspo)
set -euo pipefail
MAP=$1
SEEDS=${2:-0-4}
WORKERS=${3:-1}
if [ -z "${SYSTEMS:-}" ]; then
    SYSTEMS=bc
    if og-marl-inspo systems | grep -x inspo >/dev/null; then SYSTEMS=bc,inspo; fi
fi
og-marl-inspo datasets download --source cfcql --env smac_v1 --scenario "$MAP"
og-marl-inspo sweep --systems "$SYSTEMS" --source cfcql --env smac_v1 --scenarios "$MAP" \
    --datasets Medium,Medium-Replay,Expert,Mixed --seeds "$SEEDS" --workers "$WORKERS" --no-progress
og-marl-inspo table --source cfcql --env smac_v1 --metric win_rate
