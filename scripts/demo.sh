#!/usr/bin/env bash
# The `make demo` tour: a Privacy Mode job end to end on this machine, real
# parts only (docs/agent.md). A plane (simulated TEE, `local` provisioner) is
# started in the background; a provider encrypts and registers a synthetic
# dataset; a consumer rents it, pushes the example algorithm image (built here
# from Debian's busybox-static, cached under build/), and submits
# examples/job.yaml. The local provisioner starts cce-agent in a fresh network
# and mount namespace; the agent attests (SIMULATED TEE), mounts the dataset
# with cce-decryptfs, runs the algorithm in the sandbox (runc, seccomp,
# Landlock, cgroups) and submits the signed output. The Output Gate scans it
# (copies of the dataset, encodings, covert channels, small cells) and
# releases it; the consumer downloads it. Then a leaking job
# (examples/leaky-job.yaml) copies the dataset: the gate holds its output, a
# reviewer sees the findings and rejects it, the consumer sees why, and the
# audit trail shows every decision. Then Explore Mode: the provider
# desensitizes the dataset (`cce dataset sample`) and publishes the sample;
# the consumer starts a Jupyter session that sees only the sample, a
# headless browser runs a notebook there that shows it and submits the same
# analysis as a Privacy Mode job with the cce4long SDK. Then the DecryptFS tamper tour
# (scripts/demo-decryptfs.sh). Exits non-zero if a step misbehaves; it also
# runs as a test.
set -euo pipefail

BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CCE_DEMO_CACHE:-$ROOT/build/example-image-cache}
WORK=$(mktemp -d /tmp/cce-demo-XXXXXX)
DATA="$WORK/plane"
PLANE_PID=
cleanup() {
  local_plane_stop
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints the command as a user types it (build/bin on PATH: `cce ...`, not
# /abs/path/build/bin/cce), then runs it. What is shown is what ran.
run() { local shown=("$@"); shown[0]=${shown[0]#"$BIN/"}; printf '$ %s\n' "${shown[*]}" >&2; "$@"; }
# shellcheck source=lib/local-plane.sh
. "$ROOT/scripts/lib/local-plane.sh"
die() { echo "demo: FAILED: $*" >&2; [ -f "$WORK/plane.log" ] && tail -n 40 "$WORK/plane.log" >&2; exit 1; }

export HOME="$WORK/home"   # the cce client's login lives here, not in your home
mkdir -p "$HOME"
unset CCE_PLANE_URL CCE_TOKEN CCE_CA_FILE

step "1. Start a plane (SIMULATED TEE: no TDX on this machine) with the local provisioner"
# Script jobs from Explore notebooks run on a curated base the operator
# publishes (step 10): plane.yaml names it.
plane_yaml_hook() {
  sed -i 's|^  script_bases: \[\]$|  script_bases:\n    - {name: python-data, image: "library/python-data:3.11", command: ["/usr/bin/python3"]}|' "$1"
  grep -q 'name: python-data' "$1" || { echo "plane.yaml: no 'script_bases: []' line" >&2; return 1; }
}
local_plane_start || die "the plane did not start"
echo "plane up at $URL (log: plane.log)"
# `user add` prints the new user's token alone: captured, never shown.
printf '$ PROVIDER=$(cce-plane user add --data-dir %s --role provider hospital)\n' "$DATA" >&2
PROVIDER=$("$BIN/cce-plane" user add --data-dir "$DATA" --role provider hospital)
printf '$ CONSUMER=$(cce-plane user add --data-dir %s --role consumer analyst)\n' "$DATA" >&2
CONSUMER=$("$BIN/cce-plane" user add --data-dir "$DATA" --role consumer analyst)

step "2. Provider: a synthetic claims dataset (deterministic), encrypted and registered"
SRC="$WORK/claims"
mkdir -p "$SRC/2026"
claims_csv 20000 > "$SRC/2026/claims.csv"
run head -n 3 "$SRC/2026/claims.csv"
# --token - reads the token from stdin: it stays out of argv and the shell history.
printf '$ cce login --plane %s --token - --ca %s <<< "$PROVIDER"\n' "$URL" "$CA" >&2
"$BIN/cce" login --plane "$URL" --token - --ca "$CA" <<< "$PROVIDER"
printf '$ export CCE_TOKEN="$PROVIDER"   # CCE_TOKEN overrides the saved token: how the demo switches users\n' >&2
export CCE_TOKEN="$PROVIDER"
provider_register hospital-claims "$SRC"

step "3. Consumer: rent the dataset, push the algorithm image, submit the job"
printf '$ export CCE_TOKEN="$CONSUMER"\n' >&2
export CCE_TOKEN="$CONSUMER"
run "$BIN/cce" dataset list
run "$BIN/cce" rent hospital-claims --days 1
example_image
run "$BIN/cce" image push "$CACHE/claims-stats-oci"
run cat "$ROOT/examples/job.yaml"
printf '$ JOB=$(cce job submit -f %s)\n' "$ROOT/examples/job.yaml" >&2
JOB=$("$BIN/cce" job submit -f "$ROOT/examples/job.yaml")
echo "job $JOB submitted"

step "4. The plane provisions a sandboxed VM stand-in; the agent attests, mounts, runs, submits"
if ! run "$BIN/cce" job status "$JOB" --watch --interval 1; then
  die "job $JOB did not finish"
fi
"$BIN/cce" job status "$JOB" --output json > "$WORK/job.json"
STATE=$(json_field state < "$WORK/job.json")
[ "$STATE" = RELEASED ] || die "job $JOB ended $STATE, expected RELEASED (an aggregate with no cell under 10)"
echo
echo "The agent's steps (from the plane's log):"
grep -o '"step":"[a-z_]*"' "$DATA/logs/jobs/$JOB.log" 2>/dev/null | sed 's/"step":/  /' | tr -d '"' | tr '\n' ' ' || true
echo
echo "The Output Gate scanned the signed output (plane log):"
grep '"event":"gate.scan"' "$WORK/plane.log" | grep "$JOB" | head -n 1 || die "no gate.scan for $JOB"

step "5. Consumer: download the released output (its digest checked against the plane's record)"
run "$BIN/cce" job download "$JOB" --out "$WORK/out"
mkdir -p "$WORK/out/x"
tar -xf "$WORK/out/output.bundle" -C "$WORK/out/x"
run head -n 5 "$WORK/out/x/files/summary.csv"

step "6. A leaking algorithm: the same image, but it copies the dataset to /output"
run cat "$ROOT/examples/leaky-job.yaml"
printf '$ LEAK=$(cce job submit -f %s)\n' "$ROOT/examples/leaky-job.yaml" >&2
LEAK=$("$BIN/cce" job submit -f "$ROOT/examples/leaky-job.yaml")
run "$BIN/cce" job status "$LEAK" --watch --interval 1 || die "job $LEAK did not finish"
STATE=$("$BIN/cce" job status "$LEAK" --output json | json_field state)
[ "$STATE" = HELD ] || die "the leaking job $LEAK ended $STATE, expected HELD"
echo "HELD: the consumer sees the verdict but not the findings, and cannot download:"
if "$BIN/cce" job download "$LEAK" --out "$WORK/leak" 2>"$WORK/download.err"; then
  die "a HELD output was downloadable"
fi
printf '$ cce job download %s --out %s   (refused)\n' "$LEAK" "$WORK/leak"
cat "$WORK/download.err"

step "7. Reviewer: the queue, the findings with their locations, a decision"
printf '$ REVIEWER=$(cce-plane user add --data-dir %s --role reviewer compliance)\n' "$DATA" >&2
REVIEWER=$("$BIN/cce-plane" user add --data-dir "$DATA" --role reviewer compliance)
printf '$ export CCE_TOKEN="$REVIEWER"\n' >&2
export CCE_TOKEN="$REVIEWER"
run "$BIN/cce" review list
run "$BIN/cce" review show "$LEAK" | head -n 16
run "$BIN/cce" review reject "$LEAK" --reason "export.csv is a verbatim copy of the claims dataset"

step "8. Consumer: the decision and its reason"
export CCE_TOKEN="$CONSUMER"
run "$BIN/cce" job status "$LEAK"
STATE=$("$BIN/cce" job status "$LEAK" --output json | json_field state)
[ "$STATE" = REJECTED ] || die "job $LEAK is $STATE after the rejection"

step "9. The audit trail: every decision, hash-chained and verified on this client"
export CCE_TOKEN="$REVIEWER"
"$BIN/cce" audit list --job "$LEAK" > "$WORK/audit.txt" || die "audit list failed"
grep -E "gate.verdict|review|job.review|output.submit" "$WORK/audit.txt" || die "no gate or review decision in the audit log"
export CCE_TOKEN="$OP_TOKEN"   # verifying both chains is the operator's
run "$BIN/cce" audit verify

step "10. Explore Mode: a desensitized sample, a notebook in the browser, the same script as a job"
BUILD=$(cd "$BIN/.." && pwd)
echo "The python-data base image, from Debian's packages (first run: a few minutes; cached in $BUILD):"
/usr/bin/python3 "$ROOT/scripts/build-python-data-image.py" --out "$BUILD/python-data-oci" \
  --cache "$BUILD/python-data-cache" > "$WORK/base-image.log" 2>&1 ||
  { tail -n 20 "$WORK/base-image.log" >&2; die "cannot build the python-data image"; }
export CCE_TOKEN="$OP_TOKEN"
run "$BIN/cce" image push "$BUILD/python-data-oci" --name library/python-data:3.11
export CCE_TOKEN="$PROVIDER"
cp "$ROOT/examples/sample-policy.yaml" "$WORK/sample-policy.yaml"
(umask 077; openssl rand -hex 32 > "$WORK/sample.key")
run "$BIN/cce" dataset sample "$SRC" --policy "$WORK/sample-policy.yaml" --out "$WORK/sample"
run "$BIN/cce" dataset publish-sample hospital-claims "$WORK/sample"
export CCE_TOKEN="$CONSUMER"
printf '$ cce explore start --datasets hospital-claims --idle-timeout 30m --output json > %s\n' "$WORK/session.json" >&2
"$BIN/cce" explore start --datasets hospital-claims --idle-timeout 30m --output json > "$WORK/session.json" ||
  die "explore start failed"
SESSION=$(json_field id < "$WORK/session.json")
echo "started Explore session $SESSION: Jupyter in a runc sandbox that sees only the sample"
echo "A headless Chromium opens the one-time login URL and runs a notebook (tests/explore/notebook.mjs):"
CCE_NOTEBOOK_UPLOADS="$ROOT/examples/explore/analysis.py=analysis.py" \
  node "$ROOT/tests/explore/notebook.mjs" "$ROOT" "$CA" "$(json_field login_url < "$WORK/session.json")" JOB \
  'import cce4long
df = cce4long.sample("hospital-claims")   # the desensitized sample, read-only at /data/hospital-claims
df.head()' \
  'job = cce4long.submit(script="analysis.py", datasets=["hospital-claims"], base="python-data")
job.wait(progress=False)
print("JOB", job.id, job.state)' > "$WORK/notebook.out" 2> "$WORK/notebook.err" ||
  { cat "$WORK/notebook.out" "$WORK/notebook.err"; die "the notebook failed"; }
cat "$WORK/notebook.out"
SJOB=$(sed -n 's/^JOB \([^ ]*\) .*/\1/p' "$WORK/notebook.out")
run "$BIN/cce" job status "$SJOB"
[ "$("$BIN/cce" job status "$SJOB" --output json | json_field state)" = RELEASED ] ||
  die "the notebook's job $SJOB was not RELEASED"
run "$BIN/cce" explore list
echo "(a session left idle past its timeout is stopped by the plane; this one is stopped now)"
run "$BIN/cce" explore stop "$SESSION"

step "11. DecryptFS on its own: tampering reads as an I/O error"
"$ROOT/scripts/demo-decryptfs.sh" "$BIN"
echo
echo "demo: OK"
