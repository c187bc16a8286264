#!/usr/bin/env bash
# SMAX stand-in, map 3s_vs_5z (locally built datasets). Usage: 3s_vs_5z.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/smax_map.sh" 3s_vs_5z "$@"
