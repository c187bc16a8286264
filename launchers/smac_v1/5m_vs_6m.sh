#!/usr/bin/env bash
# InSPO Table 4, SMAC v1 map 5m_vs_6m (CFCQL datasets). Usage: 5m_vs_6m.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/cfcql_map.sh" 5m_vs_6m "$@"
