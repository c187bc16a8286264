#!/usr/bin/env bash
# SMAX stand-in, map 2s3z (locally built datasets). Usage: 2s3z.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/smax_map.sh" 2s3z "$@"
