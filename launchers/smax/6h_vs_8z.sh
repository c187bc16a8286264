#!/usr/bin/env bash
# SMAX stand-in, map 6h_vs_8z (locally built datasets). Usage: 6h_vs_8z.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/smax_map.sh" 6h_vs_8z "$@"
