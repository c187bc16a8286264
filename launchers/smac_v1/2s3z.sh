#!/usr/bin/env bash
# InSPO Table 4, SMAC v1 map 2s3z (CFCQL datasets). Usage: 2s3z.sh [SEEDS=0-4] [WORKERS=1]
exec "$(dirname "$0")/cfcql_map.sh" 2s3z "$@"
