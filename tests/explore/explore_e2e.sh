#!/usr/bin/env bash
# Explore Mode end to end (docs/explore.md), real parts only: a plane with
# the `local` Explore backend (Jupyter Notebook in runc) and the `local`
# provisioner; real headless Chromium through the plane's proxy.
#
#  1. A provider desensitizes the claims dataset (`cce dataset sample`) and
#     publishes the sample; an operator publishes the python-data base.
#  2. A consumer without a rental is refused a session.
#  3. The renter starts two sessions, A and B. In A, Chromium opens the
#     login URL, and a notebook loads the sample with the SDK and shows its
#     head, tries to read the plane's data directory and the ciphertext
#     (both invisible), and submits the uploaded analysis.py as a Privacy
#     Mode job with cce4long.submit, which runs on the real data and is
#     RELEASED.
#  4. The plane restarts: both sessions are found again and B's cookie
#     still works through the proxy.
#  5. B is kept busy; A is left idle: the culler stops A ("idle") and not B.
#  6. B is stopped by its owner; its container is gone.
#
# usage: explore_e2e.sh SOURCE_DIR BIN_DIR BUILD_DIR
# Needs root, /dev/fuse, runc, python3-notebook, /usr/bin/chromium and
# node_modules/playwright-core: a missing one is a failure, never a skip.
set -euo pipefail

ROOT=$(cd "$1" && pwd)
BIN=$(cd "$2" && pwd)
BUILD=$(cd "$3" && pwd)
WORK=$(mktemp -d /tmp/cce-explore-XXXXXX)
chmod 0755 "$WORK"
PLANE_PID=
COOKIES="$WORK/b.cookies"
say() { printf '\n== %s\n' "$*"; }
die() {
  echo "explore_e2e: FAILED: $*" >&2
  [ -f "$WORK/plane.log" ] && tail -n 40 "$WORK/plane.log" >&2
  exit 1
}
cleanup() {
  if [ -n "${CONSUMER:-}" ] && [ -n "${PLANE_PID:-}" ]; then
    for id in ${A:-} ${B:-}; do CCE_TOKEN="$CONSUMER" "$BIN/cce" explore stop "$id" >/dev/null 2>&1 || true; done
  fi
  local_plane_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=../../scripts/lib/local-plane.sh
. "$ROOT/scripts/lib/local-plane.sh"

say "prerequisites"
[ "$(id -u)" = 0 ] || die "must run as root (runc, namespaces, mounts); CI runs it as root"
for b in cce cce-plane cce-agent cce-decryptfs cce-sandbox-init; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: build the tree first"
done
[ -e /dev/fuse ] || die "/dev/fuse is missing"
command -v runc >/dev/null || die "runc is missing (Makefile DEB_PACKAGES)"
/usr/bin/python3 -c 'import notebook' 2>/dev/null || die "python3-notebook is missing (Makefile DEB_PACKAGES)"
[ -x /usr/bin/chromium ] || die "/usr/bin/chromium is missing (Makefile DEB_PACKAGES)"
[ -f "$ROOT/node_modules/playwright-core/index.mjs" ] || die "node_modules/playwright-core is missing: make deps"
[ -d "$BUILD/share/cce4long/python/cce4long" ] || die "$BUILD/share/cce4long/python is missing: build target cce_python_sdk"

say "the python-data base image (cached in the build directory)"
/usr/bin/python3 "$ROOT/scripts/build-python-data-image.py" --out "$BUILD/python-data-oci" \
  --cache "$BUILD/python-data-cache" > "$WORK/base-image.log" 2>&1 ||
  { tail -n 20 "$WORK/base-image.log" >&2; die "cannot build the python-data image"; }

export HOME="$WORK/home"
mkdir -p "$HOME"
unset CCE_PLANE_URL CCE_TOKEN CCE_CA_FILE
plane_yaml_hook() {
  /usr/bin/python3 - "$1" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s, n1 = re.subn(r"(?m)^  cull_interval_seconds: \d+$", "  cull_interval_seconds: 2", s)
s, n2 = re.subn(r"(?m)^  script_bases: \[\]$",
                '  script_bases:\n    - {name: python-data, image: "library/python-data:3.11", '
                'command: ["/usr/bin/python3"]}', s)
if n1 != 1 or n2 != 1:
    sys.exit(f"plane.yaml: expected one cull_interval_seconds and one 'script_bases: []' line ({n1}, {n2})")
open(p, "w").write(s)
EOF
}
local_plane_start || die "the plane did not start"
PROVIDER=$(local_plane_user hospital provider)
CONSUMER=$(local_plane_user analyst consumer)
OUTSIDER=$(local_plane_user visitor consumer)
"$BIN/cce" login --plane "$URL" --token "$PROVIDER" --ca "$CA" > /dev/null

say "1. provider: desensitize and publish the sample; operator: the python-data base"
SRC="$WORK/claims"
mkdir -p "$SRC/2026"
claims_csv 3000 > "$SRC/2026/claims.csv"
export CCE_TOKEN="$PROVIDER"
provider_register hospital-claims "$SRC" > /dev/null
cp "$ROOT/examples/sample-policy.yaml" "$WORK/sample-policy.yaml"
(umask 077; openssl rand -hex 32 > "$WORK/sample.key")
"$BIN/cce" dataset sample "$SRC" --policy "$WORK/sample-policy.yaml" --out "$WORK/sample" \
  --report "$WORK/sample-report.json" > "$WORK/sample.out" || die "cce dataset sample failed"
cat "$WORK/sample.out"
"$BIN/cce" dataset publish-sample hospital-claims "$WORK/sample" || die "publish-sample failed"
CCE_TOKEN="$OP_TOKEN" "$BIN/cce" image push "$BUILD/python-data-oci" --name library/python-data:3.11 \
  > /dev/null || die "the operator could not push the base image"

say "2. a consumer without a rental is refused a session"
if CCE_TOKEN="$OUTSIDER" "$BIN/cce" explore start --datasets hospital-claims > "$WORK/refused.out" 2>&1; then
  die "a consumer without a rental got a session: $(cat "$WORK/refused.out")"
fi
cat "$WORK/refused.out"
grep -qi "rent" "$WORK/refused.out" || die "the refusal does not say the rental is missing"

say "3. the renter: two sessions; in A a notebook reads the sample and submits the analysis"
export CCE_TOKEN="$CONSUMER"
"$BIN/cce" rent hospital-claims --days 1 > /dev/null
"$BIN/cce" explore start --datasets hospital-claims --idle-timeout 60s --output json > "$WORK/a.json" ||
  die "explore start (A) failed"
A=$(json_field id < "$WORK/a.json")
A_URL=$(json_field login_url < "$WORK/a.json")
"$BIN/cce" explore start --datasets hospital-claims --idle-timeout 60s --output json > "$WORK/b.json" ||
  die "explore start (B) failed"
B=$(json_field id < "$WORK/b.json")
B_URL=$(json_field login_url < "$WORK/b.json")
echo "sessions: A=$A B=$B"
"$BIN/cce" explore list

# B's browser: log in with curl and keep the cookie (checked again after the restart).
curl -sS --cacert "$CA" -c "$COOKIES" -o /dev/null -w '%{http_code}\n' "$B_URL" > "$WORK/b-login.code"
[ "$(cat "$WORK/b-login.code")" = 303 ] || die "B's login answered $(cat "$WORK/b-login.code"), expected 303"
if curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "$B_URL" | grep -q 303; then
  die "a login code worked twice"
fi
[ "$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "$URL/explore/$B/api/status")" = 401 ] ||
  die "the proxy answered without the session cookie"

CELL_SAMPLE='import cce4long
df = cce4long.sample("hospital-claims")
print("SAMPLE", df.shape, list(df.columns))
df.head()'
CELL_HIDDEN="import os
for p in ['$DATA', '$DATA/datasets/hospital-claims', '$DATA/plane.db', '$DATA/keys', '$SRC']:
    try:
        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(1)
        print('READABLE', p)
    except OSError as e:
        print('HIDDEN', p, type(e).__name__)"
CELL_SUBMIT='job = cce4long.submit(script="analysis.py", datasets=["hospital-claims"], base="python-data")
job.wait(timeout=240, progress=False)
print("JOB", job.id, job.state)'
CCE_NOTEBOOK_UPLOADS="$ROOT/examples/explore/analysis.py=analysis.py" \
  node "$ROOT/tests/explore/notebook.mjs" "$ROOT" "$CA" "$A_URL" "SAMPLE" \
  "$CELL_SAMPLE" "$CELL_HIDDEN" "$CELL_SUBMIT" > "$WORK/notebook.out" ||
  { cat "$WORK/notebook.out"; die "the notebook in session A failed"; }
cat "$WORK/notebook.out"
grep -q "SAMPLE (" "$WORK/notebook.out" || die "the sample was not loaded"
grep -q "diagnosis" "$WORK/notebook.out" || die "the sample's head does not show the diagnosis column"
if grep -q "READABLE" "$WORK/notebook.out"; then die "the session can read the plane's files"; fi
[ "$(grep -c '^HIDDEN' "$WORK/notebook.out")" = 5 ] || die "the hiding probe did not run on all 5 paths"
JOB=$(sed -n 's/^JOB \([^ ]*\) .*/\1/p' "$WORK/notebook.out")
[ -n "$JOB" ] || die "the notebook did not submit a job"
STATE=$("$BIN/cce" job status "$JOB" --output json | json_field state)
[ "$STATE" = RELEASED ] || die "the SDK's job $JOB ended $STATE, expected RELEASED"
"$BIN/cce" job download "$JOB" --out "$WORK/out" > /dev/null || die "cannot download the job's output"
mkdir -p "$WORK/out/x" && tar -xf "$WORK/out/output.bundle" -C "$WORK/out/x"
head -n 3 "$WORK/out/x/files/summary.csv"
grep -q "^diagnosis,claims,mean_cost" "$WORK/out/x/files/summary.csv" || die "summary.csv is not the analysis' output"

say "4. the plane restarts: the sessions are found again"
local_plane_stop
local_plane_serve || die "the plane did not restart"
for id in "$A" "$B"; do
  st=$("$BIN/cce" explore list --output json | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    doc = json.loads(line)
    for s in doc.get("sessions", [doc]):
        if s.get("id") == sys.argv[1]:
            print(s["state"])' "$id")
  [ "$st" = RUNNING ] || die "session $id is '$st' after the restart, expected RUNNING"
done
[ "$(curl -sS --cacert "$CA" -b "$COOKIES" -o /dev/null -w '%{http_code}' "$URL/explore/$B/api/status")" = 200 ] ||
  die "B's cookie no longer reaches its Jupyter after the restart"

say "5. A is left idle and B kept busy: the culler stops A only"
culled=
for _ in $(seq 1 90); do
  curl -sS --cacert "$CA" -b "$COOKIES" -o /dev/null "$URL/explore/$B/api/contents" || true
  "$BIN/cce" explore list --output json > "$WORK/list.json"
  if /usr/bin/python3 - "$A" "$WORK/list.json" <<'EOF'
import json, sys
# JSON Lines: one session per line (docs/cli.md, "Output").
for s in (json.loads(line) for line in open(sys.argv[2]) if line.strip()):
    if s["id"] == sys.argv[1] and s["state"] == "STOPPED":
        print("A stopped:", s.get("stop_reason"))
        sys.exit(0 if "idle" in (s.get("stop_reason") or "") else 2)
sys.exit(1)
EOF
  then culled=1; break; fi
  sleep 2
done
[ -n "$culled" ] || { cat "$WORK/list.json"; die "A was not culled within 180 s"; }
BSTATE=$(/usr/bin/python3 -c '
import json, sys
sessions = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]  # JSON Lines
print([s["state"] for s in sessions if s["id"] == sys.argv[1]][0])' "$B" "$WORK/list.json")
[ "$BSTATE" = RUNNING ] || die "the busy session B is $BSTATE, expected RUNNING"
runc --root /run/cce/explore/runc state "$A" > /dev/null 2>&1 && die "A's container is still there"

say "6. the owner stops B"
"$BIN/cce" explore stop "$B" || die "explore stop failed"
runc --root /run/cce/explore/runc state "$B" > /dev/null 2>&1 && die "B's container is still there"
B=
A=
"$BIN/cce" audit list > /dev/null 2>&1 || true
echo
echo "explore_e2e: OK"
