#!/usr/bin/env bash
# Fill cpa-table1 with every registered system it names (5 seeds), printed beside the paper's values.
# Usage: launchers/cpa_table1.sh [SEEDS=5] [WORKERS=1]
set -euo pipefail
og-marl-inspo reproduce cpa-table1 --seeds "${1:-5}" --workers "${2:-1}" --no-progress
