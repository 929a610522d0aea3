#!/usr/bin/env bash
# The reconciler's CI steps, in one script that any CI service (or a laptop) can run:
#
#   ci.sh plan         validate, save the plan, write the pull-request comment    exit 0 | 1
#   ci.sh apply        apply the reviewed plan; re-plan only when it is stale     exit 0 | 1
#   ci.sh drift        refresh the state from the server, write the drift report  exit 0 | 2 | 1
#   ci.sh state-fetch  check out the state branch into the state directory        exit 0 | 1
#   ci.sh state-push   commit the state directory and push it, fast-forward only  exit 0 | 1
#   ci.sh erase ID...  erase profiles for good: state-fetch, state rm --erase or
#                      audit erase, state-push                                    exit 0 | 1
#   ci.sh fmt          check that the YAML is in reconciler fmt's layout (a diff
#                      of what to change, values masked)                         exit 0 | 1
#   ci.sh rotate       re-encrypt the state branch under a new key (the old one
#                      as RECONCILER_ENCRYPTION_FALLBACK): state-fetch, state
#                      encrypt, state-push                                        exit 0 | 1
#
# State in PostgreSQL: with RECONCILER_BACKEND (a postgresql:// URL, from the secret store) the
# state, its lock and the audit ledger live in that database, and there is no state branch:
# `state-fetch` and `state-push` only say so, every other step works on the database as it
# works on files, and each waits up to RECONCILER_LOCK_TIMEOUT seconds for the lock another
# job (or a person at a terminal) holds, instead of failing (`reconciler --lock-timeout`).
#
# Several workspace/version pairs: the files under RECONCILER_PROFILES may declare several
# (`workspace:` and `version:` at the top of each file; here profiles/live/ and profiles/test/,
# the live and the test version of one workspace). Every step handles them all at once: one
# plan and one comment with a section per pair, one saved plan applied whole (refused whole,
# and re-planned, when any pair's state changed), one drift report, one state branch holding
# every pair's state file beside the one audit.jsonl. Each pair has its own state file
# (`state/<workspace>-<version>.json`) and lock.
#
# It posts nothing and needs no CI service: the workflow files post comment.md and drift.md.
# FYNO_API_KEY (apply, drift) comes from the environment, i.e. the CI's secret store.
# `plan` needs no Fyno key: it reads only the YAML and the recorded state.
# Encryption at rest is reconciler's own setting: with RECONCILER_ENCRYPTION_KEY (e.g.
# env:RECONCILER_STATE_KEY, the variable holding the key, from the secret store) every step
# reads and writes the state, the ledger's data keys and plan.json sealed, and needs that
# key, `plan` included. `state-fetch` seals a state branch still in clear (the migration).
#
# Environment (defaults in brackets):
#   RECONCILER_PROFILES     the desired-state YAML: a directory (subdirectories included) or a
#                           file [profiles]
#   RECONCILER_OUT          where plan.json, comment.md, drift.md and *.env go [reconciler-out]
#   RECONCILER_PLAN         the saved plan [$RECONCILER_OUT/plan.json]
#   RECONCILER_STATE        the state file, when the files declare one pair only [reconciler's
#                           default: state/<workspace>-<version>.json, one per pair, in the
#                           state/ directory of the repository's top]; not with RECONCILER_BACKEND
#   RECONCILER_STATE_DIR    the state directory (state files, audit.jsonl, audit.keys) [dir of
#                           the above, else state: where reconciler looks by default when run
#                           from the repository's top; change it only with RECONCILER_STATE]
#   RECONCILER_STATE_BRANCH the branch holding the state directory [reconciler-state]
#   RECONCILER_STATE_REMOTE the remote (name or URL) of that branch [origin]
#   RECONCILER_PLAN_ARGS    extra options of `plan`, e.g. "--max-delete-percent 50" []
#   RECONCILER_COMMIT       the commit named in the comment [git rev-parse HEAD]
#   RECONCILER_BACKEND      postgresql://user@host/db: state, lock and ledger in PostgreSQL
#                           [none: files, on the state branch]; its password comes from
#                           PGPASSWORD or ~/.pgpass, never the URL (reconciler refuses one there)
#   RECONCILER_LOCK_TIMEOUT with RECONCILER_BACKEND: seconds to wait for the lock [600]
#   RECONCILER_ENCRYPTION_KEY       the key provider, e.g. env:RECONCILER_STATE_KEY [none: clear]
#   RECONCILER_ENCRYPTION_FALLBACK  the old key's provider while rotating [none]
#   RECONCILER              the command to run [reconciler]
#   PYTHON                  a Python 3 for reading JSON [python3]
# Outputs: `changes=true|false` (plan) and `drift=true|false` (drift) are written to
# $RECONCILER_OUT/plan.env or drift.env (a GitLab dotenv report) and to $GITHUB_OUTPUT if set.
set -euo pipefail
shopt -s inherit_errexit

PROFILES=${RECONCILER_PROFILES:-profiles}
OUT=${RECONCILER_OUT:-reconciler-out}
PLAN=${RECONCILER_PLAN:-$OUT/plan.json}
STATE=${RECONCILER_STATE:-}
if [[ -n $STATE ]]; then
    STATE_DIR=${RECONCILER_STATE_DIR:-$(dirname "$STATE")}
else
    STATE_DIR=${RECONCILER_STATE_DIR:-state}
fi
BACKEND=${RECONCILER_BACKEND:-}
STATE_BRANCH=${RECONCILER_STATE_BRANCH:-reconciler-state}
STATE_REMOTE=${RECONCILER_STATE_REMOTE:-origin}
PYTHON=${PYTHON:-python3}
read -ra RECONCILER_CMD <<< "${RECONCILER:-reconciler}"
read -ra plan_args <<< "${RECONCILER_PLAN_ARGS:-}"
state_args=()
[[ -n $STATE ]] && state_args=(--state "$STATE")
# In a database, its lock lets one job at a time write the state: one that finds it taken
# waits. (An apply that waited while another wrote finds its plan stale, and plans again.)
lock_args=()
[[ -n $BACKEND ]] && lock_args=(--lock-timeout "${RECONCILER_LOCK_TIMEOUT:-600}")

PLAN_MARKER='<!-- reconciler-plan -->'
DRIFT_MARKER='<!-- reconciler-drift -->'
COMMENT_LIMIT=65000  # GitHub refuses comments over 65,536 characters; GitLab notes fit too

# `command`: not this function. The lock's options go before the command name.
reconciler() { command "${RECONCILER_CMD[@]}" "${lock_args[@]}" "$@"; }
say() { printf 'ci.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

if [[ -n $BACKEND && -n $STATE ]]; then
    die "RECONCILER_STATE names a file and RECONCILER_BACKEND a database: set one of the two"
fi

commit_id() {
    if [[ -n ${RECONCILER_COMMIT:-} ]]; then
        printf '%s' "$RECONCILER_COMMIT"
    else
        git rev-parse HEAD 2>/dev/null || printf 'unknown'
    fi
}

set_output() {  # FILE NAME VALUE
    printf '%s=%s\n' "$2" "$3" > "$OUT/$1"
    if [[ -n ${GITHUB_OUTPUT:-} ]]; then
        printf '%s=%s\n' "$2" "$3" >> "$GITHUB_OUTPUT"
    fi
}

json_field() {  # FIELD: one top-level field of the JSON document on stdin, printed as text
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]] or "")' "$1"
}

# A saved plan is sealed when a key is configured: `show` opens it (and checks its checksum).
plan_field() {  # PLAN-FILE FIELD
    local shown
    shown=$(reconciler show "$1" --format json) || return
    json_field "$2" <<< "$shown"
}

# HEAD-FILE BODY-FILE FOOT-FILE TARGET: head + body + foot in at most COMMENT_LIMIT characters.
# The body (reconciler's markdown, already cut to 65,000) is cut further, after a whole
# <details> section, when head and foot leave it less room.
write_comment() {
    "$PYTHON" - "$@" "$COMMENT_LIMIT" <<'PY'
import sys
head, body, foot = (open(name, encoding="utf-8").read() for name in sys.argv[1:4])
target, limit = sys.argv[4], int(sys.argv[5])
note = ("\n_The rest was cut to fit in one comment: "
        "see the whole plan in the `plan.json` artifact (`reconciler show plan.json`)._\n\n")
if len(head) + len(body) + len(foot) > limit:
    room = limit - len(head) - len(foot) - len(note)
    end = body.rfind("</details>\n", 0, room - len("</details>\n"))
    body = (body[:end + len("</details>\n")] if end >= 0 else "") + note
with open(target, "w", encoding="utf-8") as out:
    out.write(head + body + foot)
PY
}

# The text of a failure, as a comment, so that the pull request shows why the check failed.
error_comment() {  # MARKER TITLE LOG-FILE TARGET
    {
        printf '%s\n### %s\n\n```text\n' "$1" "$2"
        tail -c 20000 "$3"
        printf '\n```\n'
    } > "$4"
}

cmd_plan() {
    mkdir -p "$OUT"
    # A previous run's plan must never be mistaken for this one.
    rm -f "$PLAN" "$OUT/comment.md" "$OUT/plan.md" "$OUT/plan.env"
    local log="$OUT/plan.log" code=0
    reconciler validate "$PROFILES" > "$log" 2>&1 || code=$?
    if [[ $code -eq 0 ]]; then
        reconciler plan "$PROFILES" "${state_args[@]}" --out "$PLAN" --detailed-exitcode \
            --no-color "${plan_args[@]}" >> "$log" 2>&1 || code=$?
    fi
    cat "$log"
    local changes
    case $code in
        0) changes=false ;;
        2) changes=true ;;
        *)
            error_comment "$PLAN_MARKER" "Reconciler plan failed at $(commit_id)" "$log" \
                "$OUT/comment.md"
            die "plan failed (exit $code); the reason is in $OUT/comment.md"
            ;;
    esac
    reconciler show "$PLAN" --format markdown > "$OUT/plan.md"
    local plan_id
    plan_id=$(plan_field "$PLAN" plan_id)
    printf '%s\n' "$PLAN_MARKER" > "$OUT/comment.head"
    {
        # shellcheck disable=SC2016  # markdown backticks, not a command substitution
        printf -- '\n---\n<sub>Plan `%s` for commit `%s`. ' "$plan_id" "$(commit_id)"
        printf 'On merge, the pipeline applies exactly this plan; if the state or the '
        printf 'configuration changed meanwhile, it says so and plans again.</sub>\n'
    } > "$OUT/comment.foot"
    write_comment "$OUT/comment.head" "$OUT/plan.md" "$OUT/comment.foot" "$OUT/comment.md"
    rm -f "$OUT/comment.head" "$OUT/comment.foot"
    set_output plan.env changes "$changes"
    say "plan $plan_id saved to $PLAN; changes pending: $changes; comment in $OUT/comment.md"
}

# Why PLAN cannot be applied to the configuration at hand; nothing when the configuration of
# every pair it plans has its digest, and it plans every pair the configuration declares.
# (reconciler apply checks each pair's state lineage and serial itself, under the locks.)
config_mismatch() {
    local shown reviewed now log="$OUT/show.log"
    if ! shown=$(reconciler show "$PLAN" --format json 2> "$log"); then
        # Sealed under a key this job does not have: made before the key was rotated.
        grep -q 'none of the configured keys' "$log" || die "cannot read $PLAN: $(cat "$log")"
        printf 'it was encrypted with a key that is no longer configured (made before a key '
        printf 'rotation?)'
        return 0
    fi
    reviewed=$(pair_fields workspace version config_digest <<< "$shown")
    # The digest does not depend on the safety rail: never let it refuse this look.
    now=$(reconciler plan "$PROFILES" "${state_args[@]}" --format json --max-delete-percent 100 \
        | pair_fields workspace version config_digest)
    [[ $reviewed == "$now" ]] && return 0
    "$PYTHON" - "$reviewed" "$now" <<'PY'
import sys
reviewed, now = ({tuple(line.split()[:2]): line.split()[2] for line in text.splitlines() if line}
                 for text in sys.argv[1:3])
reasons = []
for pair in sorted(reviewed.keys() | now.keys()):
    name = f"{pair[0]} ({pair[1]})"
    if pair not in now:
        reasons.append(f"it plans {name}, which the configuration at this commit no longer "
                       "declares")
    elif pair not in reviewed:
        reasons.append(f"it plans nothing for {name}, which the configuration at this commit "
                       "declares")
    elif reviewed[pair] != now[pair]:
        reasons.append(f"it was reviewed for another configuration of {name} (digest "
                       f"{reviewed[pair]}), and the configuration at this commit is {now[pair]}")
print("; ".join(reasons), end="")
PY
}

replan_and_apply() {
    local fresh="$OUT/replan.json"
    reconciler plan "$PROFILES" "${state_args[@]}" --out "$fresh" --no-color "${plan_args[@]}"
    reconciler show "$fresh" --format markdown > "$OUT/applied.md"
    reconciler apply "$fresh" "${state_args[@]}" --no-color
}

cmd_apply() {
    mkdir -p "$OUT"
    rm -f "$OUT/applied.md" "$OUT/replan.json"
    # Read-only: a wrong URL, key, workspace or version stops here, saying what to fix.
    reconciler doctor "$PROFILES" "${state_args[@]}" --no-color \
        || die "reconciler doctor found a problem with the set-up: nothing was applied"
    # No separate validate: every plan below reports every problem of the configuration.
    if [[ ! -f $PLAN ]]; then
        say "NO REVIEWED PLAN: $PLAN does not exist (a push without a pull request?)."
        say "Planning now and applying that plan."
        replan_and_apply
    else
        local reason
        reason=$(config_mismatch)
        if [[ -n $reason ]]; then
            say "STALE PLAN: refusing $PLAN: $reason."
            say "Re-planning against the current state and configuration, and applying the new plan."
            replan_and_apply
        else
            local log="$OUT/apply.log" code=0
            reconciler apply "$PLAN" "${state_args[@]}" --no-color 2>&1 | tee "$log" \
                || code=${PIPESTATUS[0]}
            if [[ $code -ne 0 ]]; then
                # PlanStaleError: another apply (or a refresh) changed the state since.
                if ! grep -Eq 'is stale|computed against another state' "$log"; then
                    die "apply failed (exit $code): no re-plan, the state records what was done"
                fi
                say "STALE PLAN: reconciler apply refused $PLAN because the state changed since it was reviewed."
                say "Re-planning against the current state and applying the new plan."
                replan_and_apply
            else
                cp "$PLAN" "$OUT/applied.json"
                reconciler show "$PLAN" --format markdown > "$OUT/applied.md"
            fi
        fi
    fi
    # Prints the ledger's head: kept in the CI log, it anchors the hash chain.
    reconciler audit verify --state-dir "$STATE_DIR"
}

cmd_drift() {
    mkdir -p "$OUT"
    rm -f "$OUT/drift.md" "$OUT/drift.env"
    local code=0
    reconciler refresh "$PROFILES" "${state_args[@]}" --detailed-exitcode --format markdown \
        > "$OUT/drift.body" || code=$?
    if [[ $code -ne 0 && $code -ne 2 ]]; then
        rm -f "$OUT/drift.body"
        die "refresh failed (exit $code)"
    fi
    printf '%s\n' "$DRIFT_MARKER" > "$OUT/drift.head"
    {
        # shellcheck disable=SC2016  # markdown backticks, not a command substitution
        printf -- '\n---\n<sub>Found by `ci.sh drift` at %s, configuration at commit `%s`.' \
            "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(commit_id)"
        if [[ $code -eq 2 ]]; then
            printf ' The state now records what the server holds: the next apply restores what '
            printf 'the configuration declares, unless the configuration is changed to match.'
        fi
        printf '</sub>\n'
    } > "$OUT/drift.foot"
    write_comment "$OUT/drift.head" "$OUT/drift.body" "$OUT/drift.foot" "$OUT/drift.md"
    rm -f "$OUT/drift.head" "$OUT/drift.body" "$OUT/drift.foot"
    if [[ $code -eq 2 ]]; then
        set_output drift.env drift true
        say "drift found: the report is in $OUT/drift.md"
        exit 2
    fi
    set_output drift.env drift false
    say "no drift"
}

# The state files of the state directory: RECONCILER_STATE, else every <workspace>-<version>.json.
state_files() {
    if [[ -n $STATE ]]; then
        [[ -f $STATE ]] && printf '%s\n' "$STATE"
    else
        local file
        for file in "$STATE_DIR"/*.json; do
            [[ -f $file ]] && printf '%s\n' "$file"
        done
    fi
    return 0
}

# With a key configured, reconciler refuses a state in clear, so that no run writes beside a
# copy thought encrypted. Here the copy is the state branch itself, still in clear because the
# key is new: seal it (state, backup, the ledger's data keys), and the next state-push commits
# it sealed. The branch's earlier commits stay as they were.
seal_clear_state() {
    [[ -n ${RECONCILER_ENCRYPTION_KEY:-} ]] || return 0
    local file
    while IFS= read -r file; do
        [[ $(head -c 24 "$file") == '{"reconciler_encrypted":' ]] && continue
        say "$file is in clear and RECONCILER_ENCRYPTION_KEY is set: encrypting the state branch (first run with a key)"
        reconciler state encrypt --state "$file"
    done < <(state_files)
}

# The given fields of each workspace/version pair of the plan document (JSON) on stdin, one
# line per pair, separated by spaces: a plan of one pair is its own only pair.
pair_fields() {  # FIELD...
    "$PYTHON" -c 'import json, sys
document = json.load(sys.stdin)
for pair in document.get("pairs") or [document]:
    print(" ".join(str(pair[field]) for field in sys.argv[1:]))' "$@"
}

# The workspace/version pairs the configuration declares, "WORKSPACE VERSION" a line (from a
# plan against the recorded states, which it only reads).
config_pairs() {
    reconciler plan "$PROFILES" "${state_args[@]}" --format json --max-delete-percent 100 \
        | pair_fields workspace version
}

# The plan of one pair of the configuration (or of `--target ID`s) against no state, as JSON:
# always on the file backend, with a state file that does not exist, never the recorded state.
plan_from_nothing() {  # WORKSPACE VERSION [--target ID]...
    local nowhere="$OUT/no-state.json"
    rm -f "$nowhere"
    (
        unset RECONCILER_BACKEND
        reconciler plan "$PROFILES" --workspace "$1" --version "$2" --state "$nowhere" "${@:3}" \
            --format json --max-delete-percent 100
    )
}

# The state file of one pair: RECONCILER_STATE, else the default one in the state directory.
pair_state_file() {  # WORKSPACE VERSION
    printf '%s' "${STATE:-$STATE_DIR/$1-$2.json}"
}

# Where the state commands find the state of one pair, WORKSPACE and VERSION: in `at`, its
# file (none in a database, which finds it by FYNO_WSID and FYNO_VERSION: each state command
# is given them, for that command only, as the configuration's files state their own pairs).
state_at() {  # WORKSPACE VERSION
    at=()
    [[ -n $BACKEND ]] || at=(--state "$(pair_state_file "$1" "$2")")
}

cmd_state_fetch() {
    if [[ -n $BACKEND ]]; then
        say "RECONCILER_BACKEND is set: the state and the audit ledger are in the database, no state branch to fetch"
        return 0
    fi
    if [[ -e $STATE_DIR/.git ]]; then
        say "$STATE_DIR is already a checkout of the state branch"
        seal_clear_state
        return 0
    fi
    local code=0
    git ls-remote --exit-code --heads "$STATE_REMOTE" "$STATE_BRANCH" > /dev/null || code=$?
    if [[ $code -eq 0 ]]; then
        git fetch --quiet --depth=1 "$STATE_REMOTE" "refs/heads/$STATE_BRANCH"
        git worktree add --quiet --detach "$STATE_DIR" FETCH_HEAD
        say "state branch $STATE_BRANCH checked out in $STATE_DIR"
        seal_clear_state
    elif [[ $code -eq 2 ]]; then  # no such branch: the first apply creates it
        git worktree add --quiet --detach "$STATE_DIR"
        git -C "$STATE_DIR" switch --quiet --orphan "$STATE_BRANCH"
        say "no branch $STATE_BRANCH yet: $STATE_DIR starts empty; state-push creates it"
    else
        die "cannot reach $STATE_REMOTE to read the state branch (git exit $code)"
    fi
}

cmd_state_push() {  # [WHAT: the commit message's subject]
    local what=${1:-state after commit $(commit_id)}
    if [[ -n $BACKEND ]]; then
        say "RECONCILER_BACKEND is set: every change was committed to the database as it was made, no state branch to push"
        return 0
    fi
    [[ -e $STATE_DIR/.git ]] || die "$STATE_DIR is not a checkout of the state branch: run ci.sh state-fetch first"
    # The lock file is a process's, never shared; everything else (state, backup, a journal
    # left by a killed apply, audit.jsonl) is what the next run must find.
    [[ -f $STATE_DIR/.gitignore ]] || printf '*.lock\n' > "$STATE_DIR/.gitignore"
    git -C "$STATE_DIR" add --all
    if ! git -C "$STATE_DIR" diff --cached --quiet; then
        GIT_AUTHOR_NAME=${GIT_AUTHOR_NAME:-reconciler-ci} \
        GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL:-reconciler-ci@localhost} \
        GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-reconciler-ci} \
        GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-reconciler-ci@localhost} \
            git -C "$STATE_DIR" commit --quiet --message "reconciler-ci: $what"
    elif ! git -C "$STATE_DIR" rev-parse --quiet --verify HEAD > /dev/null; then
        say "no state yet: nothing to push"
        return 0
    fi
    # Pushed even when nothing changed here: a commit whose push was rejected earlier must
    # not pass for saved.
    # Never --force: a rejected push means someone else moved the branch, and overwriting it
    # would lose their record.
    if ! git -C "$STATE_DIR" push --quiet "$STATE_REMOTE" "HEAD:refs/heads/$STATE_BRANCH"; then
        die "the state branch $STATE_BRANCH moved since state-fetch (were two applies run at once?); nothing was overwritten: this job's state is in $STATE_DIR, reconcile by hand"
    fi
    say "state pushed to $STATE_BRANCH"
}

# A person's request to be forgotten, on the state branch: their values leave the state, its
# backup and (their data keys destroyed) the ledger, whose records stay and still verify.
cmd_erase() {  # ID...
    [[ $# -gt 0 ]] || die "usage: ci.sh erase ID... (the distinct_ids to erase)"
    local id
    for id in "$@"; do
        [[ -n $id && $id != -* ]] || die "not a distinct_id: '$id'; nothing was erased"
    done
    cmd_state_fetch
    mkdir -p "$OUT"
    # A person is forgotten in every workspace/version pair the configuration declares: the
    # same distinct_id may name a profile in each. For each pair, one plan for these ids
    # alone, against no state, says which ids the configuration still declares with channel
    # data (they get calls): the next apply would record those again.
    local listing
    listing=$(config_pairs) || die "the configuration could not be planned (see above): nothing was erased"
    local -a pairs targets=()
    mapfile -t pairs <<< "$listing"
    for id in "$@"; do
        targets+=(--target "$id")
    done
    local pair workspace version plan declared
    local -a still_declared=()
    for pair in "${pairs[@]}"; do
        read -r workspace version <<< "$pair"
        plan=$(plan_from_nothing "$workspace" "$version" "${targets[@]}")
        declared=$("$PYTHON" -c 'import json, sys
print(" ".join(sorted({call["distinct_id"] for call in json.load(sys.stdin)["calls"]})))' \
            <<< "$plan")
        [[ -z $declared ]] || still_declared+=("$declared in $workspace ($version)")
    done
    if [[ ${#still_declared[@]} -gt 0 ]]; then
        declared=$(printf '%s, ' "${still_declared[@]}")
        die "still declared in $PROFILES: ${declared%, }. Remove them there first (a pull request; its apply deletes their channel data on the server), then erase; nothing was erased"
    fi

    # Which pairs have a state, and which of the ids each still records: all read before
    # anything is erased.
    local listed name rest log="$OUT/erase.log"
    local -a at
    local -a erasing=() still_of=() gone_of=()
    local -A recorded
    for pair in "${pairs[@]}"; do
        read -r workspace version <<< "$pair"
        if [[ -z $BACKEND && ! -f $(pair_state_file "$workspace" "$version") ]]; then
            say "no state of $workspace ($version) at $(pair_state_file "$workspace" "$version") (nothing applied to it yet?): nothing to erase there"
            continue
        fi
        state_at "$workspace" "$version"
        if ! listed=$(FYNO_WSID=$workspace FYNO_VERSION=$version reconciler state list "${at[@]}" \
                2> "$log"); then
            cat "$log" >&2
            # In a database: no state of this pair yet. Anything else stops the erasure.
            grep -q 'no state' "$log" || die "the state of $workspace ($version) could not be listed (see above): nothing was erased"
            say "no state of $workspace ($version) (nothing applied to it yet?): nothing to erase there"
            continue
        fi
        recorded=()
        while read -r name rest; do  # "ID" or "ID (missing on the server)"
            [[ -n $name ]] && recorded[$name]=1
        done <<< "$listed"
        local still="" gone=""
        for id in "$@"; do
            if [[ -n ${recorded[$id]:-} ]]; then still+=" $id"; else gone+=" $id"; fi
        done
        erasing+=("$pair")
        still_of+=("${still# }")
        gone_of+=("${gone# }")
    done
    [[ ${#erasing[@]} -gt 0 ]] || die "no state of any pair the configuration declares (nothing applied yet?): nothing was erased"

    local code=0 index
    local -a still_ids gone_ids
    for index in "${!erasing[@]}"; do
        read -r workspace version <<< "${erasing[$index]}"
        read -ra still_ids <<< "${still_of[$index]}"
        read -ra gone_ids <<< "${gone_of[$index]}"
        state_at "$workspace" "$version"
        if [[ ${#still_ids[@]} -gt 0 ]]; then
            say "still recorded in the state of $workspace ($version): ${still_ids[*]}. Forgetting them first: their channel data stays on the server (state rm makes no call); delete it there if it must go too"
            FYNO_WSID=$workspace FYNO_VERSION=$version \
                reconciler state rm --erase "${still_ids[@]}" "${at[@]}" || code=$?
        fi
        # Also the ids this pair never knew: the erasure is recorded in every pair.
        if [[ $code -eq 0 && ${#gone_ids[@]} -gt 0 ]]; then
            FYNO_WSID=$workspace FYNO_VERSION=$version \
                reconciler audit erase "${gone_ids[@]}" "${at[@]}" || code=$?
        fi
        [[ $code -eq 0 ]] || break
    done
    # Prints the ledger's head: the chain still verifies, and the CI log anchors it.
    reconciler audit verify --state-dir "$STATE_DIR" || code=1
    # Pushed even after a failure: the state records what was done.
    cmd_state_push "erased $*"
    if [[ -n $BACKEND ]]; then
        [[ $code -eq 0 ]] || die "erase failed (exit $code); the database records what was done"
        say "erased $* from the database. Its backups (and any copy of its tables) still hold their data keys, encrypted with the current key: finish with ci.sh rotate and the old key destroyed (README.md, \"Erasure\")"
        return 0
    fi
    [[ $code -eq 0 ]] || die "erase failed (exit $code); the state branch records what was done"
    say "erased $* from the head of $STATE_BRANCH. Its earlier commits still hold their values, encrypted with the key of their time: finish with ci.sh rotate and the old key destroyed (README.md, \"Erasure\")"
}

cmd_fmt() {
    # Only the layout: a plan does not depend on it, so this runs after `plan` and its
    # comment, and fails the job without hiding the plan from the review.
    reconciler fmt --check --diff --no-color "$PROFILES" \
        || die "the YAML is not in the canonical layout (see above): run \`reconciler fmt $PROFILES\` and commit the result"
}

# Key rotation: everything the head of the state branch holds is read with the old key
# (RECONCILER_ENCRYPTION_FALLBACK) and written again with the new one. Once the old key is
# destroyed, the branch's earlier commits, and plans made before, can no longer be read.
cmd_rotate() {
    [[ -n ${RECONCILER_ENCRYPTION_KEY:-} && -n ${RECONCILER_ENCRYPTION_FALLBACK:-} ]] \
        || die "rotate needs the new key as RECONCILER_ENCRYPTION_KEY and the old one as RECONCILER_ENCRYPTION_FALLBACK"
    cmd_state_fetch
    local file code=0
    if [[ -n $BACKEND ]]; then
        # The state (its rows) of every pair the configuration declares, and every data key
        # of the database's ledger.
        local listing workspace version
        listing=$(config_pairs) || die "the configuration could not be planned (see above): nothing was re-encrypted"
        while read -r workspace version; do
            [[ -n $workspace ]] || continue
            FYNO_WSID=$workspace FYNO_VERSION=$version reconciler state encrypt || code=$?
        done <<< "$listing"
    else
        local -a files
        mapfile -t files < <(state_files)
        [[ ${#files[@]} -gt 0 ]] || die "no state in $STATE_DIR: nothing to re-encrypt"
        for file in "${files[@]}"; do
            reconciler state encrypt --state "$file" || code=$?
        done
    fi
    reconciler audit verify --state-dir "$STATE_DIR" || code=1
    cmd_state_push "re-encrypted under a new key"
    [[ $code -eq 0 ]] || die "rotate failed (exit $code): keep the old key until it succeeds"
    if [[ -n $BACKEND ]]; then
        say "the database holds the state and the ledger's data keys encrypted with the new key only. Destroy the old key now (delete it from the secret store): then no backup of the database taken before, and no plan made before, can be read"
        return 0
    fi
    say "the head of $STATE_BRANCH is encrypted with the new key only. Destroy the old key now (delete it from the secret store): then no earlier commit of $STATE_BRANCH, and no plan made before, can be read"
}

case ${1:-} in
    plan) cmd_plan ;;
    apply) cmd_apply ;;
    drift) cmd_drift ;;
    state-fetch) cmd_state_fetch ;;
    state-push) cmd_state_push ;;
    erase) cmd_erase "${@:2}" ;;
    fmt) cmd_fmt ;;
    rotate) cmd_rotate ;;
    *) die "usage: ci.sh plan|apply|drift|state-fetch|state-push|erase ID...|rotate|fmt (see the top of this file)" ;;
esac
