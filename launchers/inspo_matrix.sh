#!/usr/bin/env bash
# InSPO matrix games (Tables 1-2): build the vaults, sweep every registered InSPO-table system.
# Usage: launchers/inspo_matrix.sh [SEEDS=0-4] [WORKERS=1]
set -euo pipefail
SEEDS=${1:-0-4}
WORKERS=${2:-1}
og-marl-inspo datasets build --source inspo --env matrix --scenario xor
og-marl-inspo datasets build --source inspo --env matrix --scenario m_ne
og-marl-inspo sweep --systems bc --source inspo --env matrix --scenarios xor --datasets A,B,C \
    --seeds "$SEEDS" --workers "$WORKERS" --no-progress
og-marl-inspo sweep --systems bc --source inspo --env matrix --scenarios m_ne \
    --datasets Balanced,Imbalanced --seeds "$SEEDS" --workers "$WORKERS" --no-progress
og-marl-inspo table --source inspo --env matrix
