#!/usr/bin/env bash
# SMAX stand-in, map 5m_vs_6m (locally built datasets). Usage: 5m_vs_6m.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/smax_map.sh" 5m_vs_6m "$@"
