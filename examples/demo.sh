#!/usr/bin/env bash
# `make demo`: validate and plan every example, as text and as a pull-request comment.
# Runs offline: plans never write the example states.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
for dir in examples/*/; do
    [ -f "$dir/state.json" ] || continue
    name=$(basename "$dir")
    printf '\n=== %s ===\n' "$name"
    sed -n '1p' "$dir/README.md"
    reconciler validate "$dir" || status=1
    printf '\n--- plan (text) ---\n'
    reconciler plan "$dir" --state "$dir/state.json" --no-color
    code=$?
    if [ "$name" = mass-delete ]; then
        # The safety rail must refuse this one: exit 1 is the expected outcome.
        [ "$code" -eq 1 ] && echo "(refused by the safety rail, as intended)" || status=1
        printf '\n--- plan --force (markdown) ---\n'
        reconciler plan "$dir" --state "$dir/state.json" --force --format markdown || status=1
        continue
    fi
    [ "$code" -eq 0 ] || status=1
    printf '\n--- plan (markdown) ---\n'
    reconciler plan "$dir" --state "$dir/state.json" --format markdown || status=1
done
exit $status
