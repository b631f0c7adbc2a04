#!/usr/bin/env bash
# The bash peer of bench:apply: one mkdir process per directory, in order (which satisfies every
# chain of the workload). Usage: bash mkdir-loop.sh <root> <count>
set -e
root=$1
count=$2
for ((i = 0; i < count; i++)); do mkdir "$root/v$i"; done
