#!/usr/bin/env bash
# InSPO Table 4, SMAC v1 map 6h_vs_8z (CFCQL datasets). Usage: 6h_vs_8z.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/cfcql_map.sh" 6h_vs_8z "$@"
