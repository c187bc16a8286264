#!/usr/bin/env bash
# CPA matrix games (Table 1, XOR and Permutation rows), greedy evaluation as CPA's table.
# Usage: launchers/cpa_matrix.sh [SEEDS=0-4] [WORKERS=1]
set -euo pipefail
SEEDS=${1:-0-4}
WORKERS=${2:-1}
og-marl-inspo datasets build --source cpa --env matrix --scenario xor
og-marl-inspo datasets build --source cpa --env matrix --scenario permutation
og-marl-inspo sweep --systems bc --source cpa --env matrix --scenarios xor \
    --datasets AB+BA,AA+AB+BA,Complete --seeds "$SEEDS" --workers "$WORKERS" --no-progress \
    --config.system.eval_mode=greedy
og-marl-inspo sweep --systems bc --source cpa --env matrix --scenarios permutation \
    --datasets Good,Medium,Poor --seeds "$SEEDS" --workers "$WORKERS" --no-progress \
    --config.system.eval_mode=greedy
og-marl-inspo table --source cpa --env matrix
