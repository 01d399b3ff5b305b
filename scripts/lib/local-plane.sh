# Shared by scripts/demo.sh and bench/job/run.sh (source it): a throwaway
# plane with a simulated TEE and the `local` provisioner, and the provider /
# consumer steps around it. Callers set BIN (the binaries), ROOT (the source
# tree) and WORK (a scratch directory they remove), and may define `run`
# (print-and-run) before sourcing; the default runs quietly.

declare -F run >/dev/null || run() { "$@"; }
json_field() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts the plane in $WORK/plane; sets DATA, PORT, URL, CA, OP_TOKEN, PLANE_PID.
# Runs plane_yaml_hook PLANE_YAML first when the caller defines it.
local_plane_start() {
  DATA="$WORK/plane"
  PORT=$(free_port)
  URL="https://127.0.0.1:$PORT"
  run "$BIN/cce-plane" init --data-dir "$DATA" --listen "127.0.0.1:$PORT" --simulated-tee \
    --output json > "$WORK/init.json"
  OP_TOKEN=$(json_field token < "$WORK/init.json")
  CA=$(json_field ca_file < "$WORK/init.json")
  sed -i 's/^  backend: none$/  backend: local/' "$DATA/plane.yaml"
  grep -q '^  backend: local$' "$DATA/plane.yaml" || { echo "plane.yaml: no provisioner backend line" >&2; return 1; }
  # A caller's last word on plane.yaml (function plane_yaml_hook FILE).
  if declare -F plane_yaml_hook >/dev/null; then plane_yaml_hook "$DATA/plane.yaml" || return 1; fi
  local_plane_serve
}

# (Re)starts `cce-plane serve` on the plane made by local_plane_start and
# waits until it answers; sets PLANE_PID. The log is appended to plane.log.
local_plane_serve() {
  "$BIN/cce-plane" serve --data-dir "$DATA" >> "$WORK/plane.log" 2>&1 &
  PLANE_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS --cacert "$CA" "$URL/healthz" > /dev/null 2>&1 && return 0
    kill -0 "$PLANE_PID" 2>/dev/null || { echo "the plane exited:" >&2; tail -n 20 "$WORK/plane.log" >&2; return 1; }
    sleep 0.1
  done
  echo "the plane did not come up" >&2
  return 1
}

local_plane_stop() {
  if [ -n "${PLANE_PID:-}" ] && kill -0 "$PLANE_PID" 2>/dev/null; then
    kill -TERM "$PLANE_PID" 2>/dev/null || true
    wait "$PLANE_PID" 2>/dev/null || true
  fi
}

# user NAME ROLE -> prints the new user's token
local_plane_user() {
  "$BIN/cce-plane" user add --data-dir "$DATA" --role "$2" "$1" --output json | json_field token
}

# The synthetic claims CSV (deterministic): claims_csv ROWS > FILE
claims_csv() {
  echo "patient_id,age,zip,diagnosis,cost"
  for i in $(seq 1 "$1"); do
    echo "P$((100000 + i)),$((20 + i % 60)),$((10000 + (i * 37) % 900)),ICD-$((i % 97)),$((i * 13 % 5000)).00"
  done
}

# As the logged-in provider: provider_register NAME SRC_DIR (encrypts into
# DATA/datasets/NAME, the plane's default dataset root, and registers it).
provider_register() {
  mkdir -p "$DATA/datasets"
  run "$BIN/cce" key generate --out "$WORK/$1.key"
  run "$BIN/cce" dataset encrypt --key "$WORK/$1.key" "$2" "$DATA/datasets/$1"
  run "$BIN/cce" dataset register "$1" --key "$WORK/$1.key" --location "file://$DATA/datasets/$1"
}

# The example algorithm image (examples/algorithm), built once into CACHE.
example_image() {
  /usr/bin/python3 "$ROOT/examples/algorithm/build-image.py" --out "$CACHE/claims-stats-oci" \
    --ref demo/claims-stats:1 --cache "$CACHE" \
    --add "$ROOT/examples/algorithm/analyze.sh:/app/analyze.sh" --cmd /app/analyze.sh
}
