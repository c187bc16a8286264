#!/usr/bin/env bash
# InSPO Table 4, SMAC v1 map 3s_vs_5z (CFCQL datasets). Usage: 3s_vs_5z.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/cfcql_map.sh" 3s_vs_5z "$@"
