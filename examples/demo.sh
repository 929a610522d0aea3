#!/usr/bin/env bash
# `make demo`: the whole job, offline, against the local sandbox (no account, no network).
# For every example: validate, plan as text and as a pull-request comment, then start a
# sandbox seeded to match the example's state, apply, plan again (now no changes), and show
# and verify the audit ledger. The examples themselves are never modified: each runs on a
# copy of its state in a temporary directory.
set -uo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
sandbox_pid=""
cleanup() {
    [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
# A throwaway key that only this demo's sandboxes accept; it is never written anywhere.
export FYNO_API_KEY="demo-key-$$-$RANDOM"
# Every state, journal, ledger key and saved plan of the demo is encrypted at rest with a
# throwaway key, as a team would with its key in the CI's secret store.
DEMO_STATE_KEY=$(python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export DEMO_STATE_KEY RECONCILER_ENCRYPTION_KEY=env:DEMO_STATE_KEY
status=0
step() { printf '\n--- %s ---\n' "$*"; }
fail() { echo "DEMO FAILED: $*"; status=1; }

start_sandbox() {  # seed file -> exports FYNO_BASE_URL
    reconciler sandbox --port 0 --seed "$1" > "$work/sandbox.out" 2>&1 &
    sandbox_pid=$!
    for _ in $(seq 300); do  # up to 30 s: a busy CI runner starts Python slowly
        grep -q "listening on" "$work/sandbox.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "listening on" "$work/sandbox.out" 2>/dev/null \
        || fail "the sandbox did not start: $(cat "$work/sandbox.out")"
    FYNO_BASE_URL=$(sed -n 's/.*listening on //p' "$work/sandbox.out")
    export FYNO_BASE_URL
    echo "sandbox: $FYNO_BASE_URL"
}

written_elsewhere() {  # profile, channel JSON: a PATCH as the dashboard or an app SDK makes
    python - "$1" "$2" <<'PY'
import os, sys, urllib.request  # the key stays in the environment, off any command line
request = urllib.request.Request(
    os.environ["FYNO_BASE_URL"] + f"/FYDEMO0001/live/profiles/{sys.argv[1]}/channel",
    method="PATCH", data=sys.argv[2].encode(),
    headers={"Authorization": "Bearer " + os.environ["FYNO_API_KEY"],
             "Content-Type": "application/json"})
urllib.request.urlopen(request).read()
PY
}

stop_sandbox() {
    kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
    sandbox_pid=""
}

for dir in examples/*/; do
    [ -f "$dir/state.json" ] || continue  # adopt-existing, below, starts without a state
    name=$(basename "$dir")
    printf '\n=================== %s ===================\n' "$name"
    sed -n '1p' "$dir/README.md"
    state_dir="$work/$name/state"
    mkdir -p "$state_dir"
    state="$state_dir/FYDEMO0001-live.json"
    cp "$dir/state.json" "$state"
    force=()
    [ "$name" = mass-delete ] && force=(--force)

    step "state encrypt (the example's state is in clear; the demo runs with a key)"
    reconciler state encrypt --state "$state" || fail "$name: state encrypt"

    step validate
    reconciler validate "$dir" || fail "$name: validate"

    step "plan (text)"
    reconciler plan "$dir" --state "$state" --no-color
    code=$?
    if [ "$name" = mass-delete ]; then
        # The safety rail must refuse this one: exit 1 is the expected outcome.
        [ "$code" -eq 1 ] && echo "(refused by the safety rail, as intended; --force below)" \
            || fail "$name: the safety rail did not refuse"
    else
        [ "$code" -eq 0 ] || fail "$name: plan"
    fi

    step "plan (markdown, for a pull-request comment)"
    reconciler plan "$dir" --state "$state" --format markdown "${force[@]}" \
        || fail "$name: plan --format markdown"

    step "apply against the sandbox"
    start_sandbox "$dir/state.json"
    reconciler apply "$dir" --state "$state" --auto-approve "${force[@]}" \
        || fail "$name: apply"

    step "plan --detailed-exitcode (0: nothing left to do)"
    reconciler plan "$dir" --state "$state" --detailed-exitcode --no-color
    code=$?
    [ "$code" -eq 0 ] || fail "$name: plan after apply exited $code"

    step "audit"
    reconciler audit --state-dir "$state_dir" || fail "$name: audit"
    if [ "$name" = offboarding ]; then
        step "audit erase u-3002 u-3003 (offboarded: their values gone for good)"
        reconciler audit erase u-3002 u-3003 --state "$state" || fail "$name: audit erase"
        reconciler audit --state-dir "$state_dir" --profile u-3002 \
            || fail "$name: audit --profile after erase"
    fi
    step "audit verify"
    reconciler audit verify --state-dir "$state_dir" || fail "$name: audit verify"
    stop_sandbox
done

adopt() {  # example, what its plan shows -> dir, state_dir, state; imported and applied
    dir="examples/$1"
    printf '\n=================== %s ===================\n' "$1"
    sed -n '1p' "$dir/README.md"
    state_dir="$work/$1/state"
    mkdir -p "$state_dir"
    state="$state_dir/FYDEMO0001-live.json"
    start_sandbox "$dir/server.json"
    step "import"
    reconciler import "$dir" --state "$state" || fail "$1: import"
    step "plan ($2)"
    reconciler plan "$dir" --state "$state" --no-color || fail "$1: plan"
    step "apply"
    reconciler apply "$dir" --state "$state" --auto-approve || fail "$1: apply"
}

# Adoption: import what a live workspace holds, apply, then catch a change made elsewhere.
adopt adopt-existing "only what the configuration changes"
step "a change behind the tool's back, then refresh --detailed-exitcode (2: drift)"
written_elsewhere u-5003 '{"channel": {"whatsapp": "+919800000999"}}'
reconciler refresh "$dir" --state "$state" --detailed-exitcode --no-color
code=$?
[ "$code" -eq 2 ] || fail "adopt-existing: refresh exited $code, expected 2 (drift)"
step "plan (the drift, undone)"
reconciler plan "$dir" --state "$state" --no-color || fail "adopt-existing: plan after drift"
reconciler audit verify --state-dir "$state_dir" || fail "adopt-existing: audit verify"
stop_sandbox

# A workspace shared with the app: the app's tokens survive; a token it registers later is
# unmanaged, not drift.
adopt app-tokens "adds the support device, deletes the leaked token, keeps the app's tokens"
step "the app registers a new device, then refresh --detailed-exitcode (0: unmanaged, no drift)"
written_elsewhere u-7002 '{"channel": {"push": [{"token": "fcm_token:bob-new-phone"}]}}'
reconciler refresh "$dir" --state "$state" --detailed-exitcode --no-color \
    || fail "app-tokens: refresh called the app's token drift"
step "state show u-7002 (who wrote what)"
reconciler state show u-7002 --state "$state" || fail "app-tokens: state show"
reconciler plan "$dir" --state "$state" --detailed-exitcode --no-color \
    || fail "app-tokens: the plan after the app's token is not empty"
stop_sandbox

echo
[ "$status" -eq 0 ] && echo "Demo complete: every example planned, applied and verified." \
    || echo "Demo finished with failures."
exit $status
