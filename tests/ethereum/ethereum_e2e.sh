#!/usr/bin/env bash
# The Ethereum ledger end to end (docs/ledger.md), real parts only: anvil (a
# real Ethereum node, npm @foundry-rs/anvil) on a free loopback port, the
# RentalMarket contract deployed by `cce-plane init --ledger ethereum`, a
# real `cce-plane serve`, `cce`, and npm ethers as an independent wallet.
#
#  1. The plane starts with the contract (operator: anvil key 0; two
#     confirmations, polled every second); the provider registers a dataset
#     and the operator registers it on chain (payout: key 1).
#  2. alice (key 2) links her wallet with --key-file; bob links key 3 with
#     the hardware-wallet flow (the message signed by ethers); bob cannot
#     link alice's address.
#  3. Refusals that send nothing: more days than the contract allows, a key
#     whose address is not linked to the user, no --key-file, --rpc of a node
#     on another chain; a job without a rental.
#  4. bob pays one wei too little, straight to the contract: the transaction
#     reverts and grants nothing.
#  5. alice rents with `cce rent`: a job submitted while the transaction has
#     one confirmation is refused, and accepted once it has two and the plane
#     indexed it. bob's job is still refused (alice's payment is not his).
#     `cce rentals` shows the transaction.
#  6. A reorganisation (evm_snapshot before the rent, evm_revert and new
#     blocks after it was indexed) drops the rental: a new job is refused and
#     the audit log shows ledger.reorg.
#  7. alice rents again; the operator deactivates the dataset on chain and
#     `cce rent` refuses to pay for it; the plane pointed at another chain id
#     refuses to start, naming both ids.
#  8. bob pays in full but anvil is killed before the second confirmation:
#     bob gets nothing, alice's indexed rental still covers her job, and
#     `cce rent` says the node cannot be reached.
#
# usage: ethereum_e2e.sh SOURCE_DIR BIN_DIR
# Needs node, node_modules (anvil, ethers: make deps), curl and python3: a
# missing one is a failure, never a skip. No root needed.
set -euo pipefail

ROOT=$(cd "$1" && pwd)
BIN=$(cd "$2" && pwd)
WORK=$(mktemp -d /tmp/cce-eth-e2e-XXXXXX)
ANVIL="$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
TOOL="$ROOT/tests/ethereum/eth_tool.mjs"
ANVIL_PID=
RENT_PID=
T0=$(date +%s)
say() { printf '\n== [%3ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() {
  echo "ethereum_e2e: FAILED: $*" >&2
  [ -f "$WORK/plane.log" ] && { echo "--- plane.log (last 30 lines)" >&2; tail -n 30 "$WORK/plane.log" >&2; }
  exit 1
}
cleanup() {
  for pid in "$RENT_PID" "${OTHER_PID:-}"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  done
  local_plane_stop 2>/dev/null || true
  if [ -n "$ANVIL_PID" ] && kill -0 "$ANVIL_PID" 2>/dev/null; then
    kill "$ANVIL_PID" 2>/dev/null || true
    wait "$ANVIL_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=../../scripts/lib/local-plane.sh
. "$ROOT/scripts/lib/local-plane.sh"

say "prerequisites"
for b in cce cce-plane; do
  [ -x "$BIN/$b" ] || die "$BIN/$b is missing: build the tree first"
done
[ -x "$ANVIL" ] || die "$ANVIL is missing: make deps (npm @foundry-rs/anvil)"
command -v node >/dev/null || die "node is missing (Makefile DEB_PACKAGES nodejs)"
[ -d "$ROOT/node_modules/ethers" ] || die "node_modules/ethers is missing: make deps"
command -v curl >/dev/null || die "curl is missing"

export HOME="$WORK/home"
mkdir -p "$HOME"
unset CCE_PLANE_URL CCE_TOKEN CCE_CA_FILE

# Anvil's well-known development keys (mnemonic "test test ... junk"), in
# 0600 files as `cce` and `cce-plane` require.
KEYS=(ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
      59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
      5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
      7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6)
ADDRS=(0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
       0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC 0x90F79bf6EB2c4f870365E785982E1f101E93b906)
for i in 0 1 2 3; do (umask 077; echo "0x${KEYS[$i]}" > "$WORK/key$i"); done

ANVIL_PORT=$(free_port)
RPC="http://127.0.0.1:$ANVIL_PORT"
"$ANVIL" --host 127.0.0.1 --port "$ANVIL_PORT" --chain-id 31337 --silent > "$WORK/anvil.log" 2>&1 &
ANVIL_PID=$!
rpc() {  # rpc METHOD PARAMS_JSON -> the result (JSON)
  curl -fsS -X POST -H 'Content-Type: application/json' \
    --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "$RPC" |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d["result"]) if "result" in d else sys.exit("rpc error: %s" % d))'
}
for _ in $(seq 1 100); do rpc eth_chainId '[]' > /dev/null 2>&1 && break; sleep 0.1; done
[ "$(rpc eth_chainId '[]')" = '"0x7a69"' ] || die "anvil did not come up on $RPC: $(cat "$WORK/anvil.log")"

say "1. the plane deploys its contract on anvil (operator: key 0, 2 confirmations)"
DATA="$WORK/plane"
PORT=$(free_port)
URL="https://127.0.0.1:$PORT"
"$BIN/cce-plane" init --data-dir "$DATA" --listen "127.0.0.1:$PORT" --simulated-tee \
  --ledger ethereum --rpc "$RPC" --key-file "$WORK/key0" --confirmations 2 \
  --output json > "$WORK/init.json" 2> "$WORK/init.err" ||
  { cat "$WORK/init.err" >&2; die "cce-plane init --ledger ethereum failed"; }
cat "$WORK/init.err"
OP_TOKEN=$(json_field token < "$WORK/init.json")
CA=$(json_field ca_file < "$WORK/init.json")
grep -q '^  backend: ethereum$' "$DATA/plane.yaml" || die "plane.yaml has no 'ledger: backend: ethereum'"
# Index every second, not every 5 s (the default), to keep the test short.
/usr/bin/python3 - "$DATA/plane.yaml" <<'EOF'
import re, sys
p = sys.argv[1]
s = open(p).read()
s, n = re.subn(r"(?m)^  poll_seconds: \d+$", "  poll_seconds: 1", s)
if n != 1 or not re.search(r"(?m)^  confirmations: 2\b", s):
    sys.exit("plane.yaml: expected one 'poll_seconds' and 'confirmations: 2' in the ledger section")
open(p, "w").write(s)
EOF
local_plane_serve || die "the plane did not start"
ledger() { curl -fsS --cacert "$CA" -H "Authorization: Bearer $OP_TOKEN" "$URL/api/v1/ledger"; }
ledger > "$WORK/ledger.json"
cat "$WORK/ledger.json"; echo
[ "$(json_field backend < "$WORK/ledger.json")" = ethereum ] || die "GET /api/v1/ledger: backend is not ethereum"
[ "$(json_field chain_id < "$WORK/ledger.json")" = 31337 ] || die "GET /api/v1/ledger: chain_id is not 31337"
CONTRACT=$(json_field contract < "$WORK/ledger.json")

PROVIDER=$(local_plane_user hospital provider)
ALICE=$(local_plane_user alice consumer)
BOB=$(local_plane_user bob consumer)
"$BIN/cce" login --plane "$URL" --token "$PROVIDER" --ca "$CA" > /dev/null
mkdir -p "$WORK/src"
claims_csv 20 > "$WORK/src/claims.csv"
export CCE_TOKEN="$PROVIDER"
provider_register claims "$WORK/src" > /dev/null
PRICE=10000000000000000  # 0.01 ETH per day
"$BIN/cce-plane" ledger register-dataset claims --price-wei "$PRICE" --max-days 30 \
  --payout "${ADDRS[1]}" --key-file "$WORK/key0" --data-dir "$DATA" > "$WORK/register.out" 2>&1 ||
  { cat "$WORK/register.out"; die "cce-plane ledger register-dataset failed"; }
cat "$WORK/register.out"
DATASET_ID=$(curl -fsS --cacert "$CA" -H "Authorization: Bearer $ALICE" \
  "$URL/api/v1/ledger/datasets/claims" | json_field chain_dataset_id)
echo "claims on chain: $DATASET_ID"

# An image for alice's jobs (one small layer), pushed once.
/usr/bin/python3 - "$WORK/app-oci" <<'EOF'
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    data = b"hello from the image\n"
    info = tarfile.TarInfo("etc/motd"); info.size = len(data); info.mtime = 0
    t.addfile(info, io.BytesIO(data))
layer = buf.getvalue()
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                     "rootfs": {"type": "layers",
                                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}]}).encode()
desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest),
        "platform": {"os": "linux", "architecture": "amd64"},
        "annotations": {"org.opencontainers.image.ref.name": "team/stats:1.0"}}
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(f"{out}/index.json", "w").write(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [desc]}))
EOF
cat > "$WORK/job.yaml" <<'EOF'
apiVersion: cce4long/v1
kind: PrivacyJob
metadata: {name: cohort-stats}
spec:
  image: team/stats:1.0
  command: [/bin/true]
  datasets:
    - {name: claims, mountPath: /data/claims}
  resources: {cpus: 1, memoryMiB: 256, timeoutSeconds: 600, outputMaxMiB: 1}
EOF
CCE_TOKEN="$ALICE" "$BIN/cce" image push "$WORK/app-oci" > /dev/null || die "alice could not push her image"

# Commands expected to be refused get short timeouts: if a check were lost,
# the transaction would be sent and the test fail in seconds, not hang.
# job_refused WHO WHY / job_accepted WHO WHY: a job submit as WHO's token.
job_refused() {
  if CCE_TOKEN="$1" "$BIN/cce" job submit -f "$WORK/job.yaml" > "$WORK/job.out" 2>&1; then
    die "$2: the job was accepted ($(cat "$WORK/job.out"))"
  fi
  grep -q "does not cover" "$WORK/job.out" || die "$2: refused, but not for the rental: $(cat "$WORK/job.out")"
  echo "refused as expected ($2)"
}
job_accepted() {
  CCE_TOKEN="$1" "$BIN/cce" job submit -f "$WORK/job.yaml" > "$WORK/job.out" 2>&1 ||
    die "$2: the job was refused: $(cat "$WORK/job.out")"
  echo "accepted as expected ($2): $(cat "$WORK/job.out")"
}

say "2. wallets: alice links key 2 (--key-file), bob key 3 (hardware-wallet flow)"
export CCE_TOKEN="$ALICE"
"$BIN/cce" wallet link --key-file "$WORK/key2" > "$WORK/link.out" || die "alice's wallet link failed"
cat "$WORK/link.out"
[ "$(cat "$WORK/link.out")" = "linked ${ADDRS[2]} to alice" ] || die "unexpected wallet link output"
"$BIN/cce" wallet list | tee "$WORK/wallets.out"
grep -qE "^${ADDRS[2]} +alice " "$WORK/wallets.out" || die "cce wallet list does not show alice's address"

export CCE_TOKEN="$BOB"
mkfifo "$WORK/sig.fifo"
"$BIN/cce" wallet link --address "${ADDRS[3]}" --message-out "$WORK/message.txt" \
  --signature-file "$WORK/sig.fifo" > "$WORK/bob-link.out" 2> "$WORK/bob-link.err" &
LINK_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/message.txt" ] && break; sleep 0.1; done
[ -s "$WORK/message.txt" ] || { cat "$WORK/bob-link.err" >&2; die "cce wallet link --address wrote no message"; }
cat "$WORK/bob-link.err"
grep -q "^user: bob$" "$WORK/message.txt" || die "the link message does not name bob"
node "$TOOL" sign "$WORK/key3" "$WORK/message.txt" > "$WORK/sig.fifo" || die "ethers could not sign"
wait "$LINK_PID" || { cat "$WORK/bob-link.err" >&2; die "bob's hardware-wallet link failed"; }
cat "$WORK/bob-link.out"
grep -q "^linked ${ADDRS[3]} to bob$" "$WORK/bob-link.out" || die "unexpected output of bob's link"
if "$BIN/cce" wallet link --key-file "$WORK/key2" > "$WORK/steal.out" 2>&1; then
  die "bob linked alice's address"
fi
cat "$WORK/steal.out"
grep -q "already linked" "$WORK/steal.out" || die "the refusal does not say the address is taken"

say "3. refusals that send nothing"
export CCE_TOKEN="$ALICE"
NONCE_BEFORE=$(rpc eth_getTransactionCount "[\"${ADDRS[2]}\",\"latest\"]")
if "$BIN/cce" rent claims --timeout 15s --index-timeout 5s --days 31 --key-file "$WORK/key2" > "$WORK/toolong.out" 2>&1; then
  die "a rental longer than the contract's maxDays was sent"
fi
cat "$WORK/toolong.out"
grep -q "at most 30 days" "$WORK/toolong.out" || die "the refusal does not name maxDays"
if "$BIN/cce" rent claims --timeout 15s --index-timeout 5s --days 1 --key-file "$WORK/key1" > "$WORK/unlinked.out" 2>&1; then
  die "cce rent paid from an address not linked to alice"
fi
cat "$WORK/unlinked.out"
grep -q "is not linked to you (alice)" "$WORK/unlinked.out" || die "the refusal does not say the address is not linked"
KEY1_NONCE=$(rpc eth_getTransactionCount "[\"${ADDRS[1]}\",\"latest\"]")
[ "$KEY1_NONCE" = '"0x0"' ] || die "a refused rent sent a transaction from key 1 ($KEY1_NONCE)"
if "$BIN/cce" rent claims --days 1 > "$WORK/nokey.out" 2>&1; then die "cce rent without --key-file worked"; fi
grep -q -- "--key-file" "$WORK/nokey.out" || die "the refusal does not ask for --key-file: $(cat "$WORK/nokey.out")"
# A node of another chain (a second anvil, chain id 5) given with --rpc.
OTHER_PORT=$(free_port)
"$ANVIL" --host 127.0.0.1 --port "$OTHER_PORT" --chain-id 5 --silent > "$WORK/anvil5.log" 2>&1 &
OTHER_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -X POST -H 'Content-Type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
    "http://127.0.0.1:$OTHER_PORT" > /dev/null 2>&1 && break
  sleep 0.1
done
if "$BIN/cce" rent claims --timeout 15s --index-timeout 5s --days 1 --key-file "$WORK/key2" --rpc "http://127.0.0.1:$OTHER_PORT" \
     > "$WORK/otherchain.out" 2>&1; then
  die "cce rent paid through a node of another chain"
fi
kill "$OTHER_PID"; wait "$OTHER_PID" 2>/dev/null || true; OTHER_PID=
cat "$WORK/otherchain.out"
grep -q "chain 5, but the plane's ledger is on chain 31337: nothing was sent" "$WORK/otherchain.out" ||
  die "the refusal does not name both chains"
[ "$(rpc eth_getTransactionCount "[\"${ADDRS[2]}\",\"latest\"]")" = "$NONCE_BEFORE" ] ||
  die "a refused rent sent a transaction"
job_refused "$ALICE" "alice has no rental yet"

say "4. bob underpays by one wei, straight to the contract"
node "$TOOL" rent "$RPC" "$CONTRACT" "$DATASET_ID" 1 "$((PRICE - 1))" "$WORK/key3" > "$WORK/under.out" ||
  die "the underpaying transaction could not be sent"
cat "$WORK/under.out"
grep -q "^status 0 " "$WORK/under.out" || die "an underpaying rent did not revert"
rpc anvil_mine '["0x3"]' > /dev/null
sleep 2
job_refused "$BOB" "bob's payment reverted"

say "5. alice rents: refused at one confirmation, accepted at two"
SNAP=$(rpc evm_snapshot '[]')
"$BIN/cce" rent claims --days 1 --key-file "$WORK/key2" --output json > "$WORK/rent.json" 2> "$WORK/rent.err" &
RENT_PID=$!
for _ in $(seq 1 150); do grep -q "mined in block" "$WORK/rent.err" && break; sleep 0.1; done
grep -q "mined in block" "$WORK/rent.err" || { cat "$WORK/rent.err" >&2; die "cce rent: the transaction was not mined"; }
cat "$WORK/rent.err"
grep -q "0.01 ETH" "$WORK/rent.err" || die "cce rent did not show the cost in ETH"
sleep 2.5  # two of the plane's sync rounds with the rental at one confirmation
job_refused "$ALICE" "the rental has 1 of 2 confirmations"
rpc anvil_mine '["0x1"]' > /dev/null
wait "$RENT_PID" || { RENT_PID=; cat "$WORK/rent.err" >&2; die "cce rent failed"; }
RENT_PID=
tail -n 2 "$WORK/rent.err"; cat "$WORK/rent.json"
TX=$(json_field tx_hash < "$WORK/rent.json")
BLOCK=$(json_field block < "$WORK/rent.json")
[ "$(json_field amount_wei < "$WORK/rent.json")" = "$PRICE" ] || die "the rental paid another amount than the contract's price"
[ "$(json_field payer < "$WORK/rent.json")" = "$(echo "${ADDRS[2]}" | tr 'A-F' 'a-f')" ] || die "wrong payer"
job_accepted "$ALICE" "2 confirmations, indexed"
job_refused "$BOB" "alice's payment grants bob nothing"
"$BIN/cce" rentals | tee "$WORK/rentals.out"
head -n 1 "$WORK/rentals.out" | grep -q "TX" || die "cce rentals has no header row with TX"
grep -qE "$TX +$BLOCK +${ADDRS[2]}" "$WORK/rentals.out" || die "cce rentals does not show the transaction, block and payer"

say "6. a reorganisation drops the rental"
[ "$(rpc evm_revert "[$SNAP]")" = true ] || die "evm_revert failed"
rpc anvil_mine '["0x4"]' > /dev/null
reorged=
for _ in $(seq 1 30); do
  if CCE_TOKEN="$OP_TOKEN" "$BIN/cce" audit list > "$WORK/audit.out" 2>&1 &&
     grep -q "ledger.reorg" "$WORK/audit.out"; then reorged=1; break; fi
  sleep 0.5
done
[ -n "$reorged" ] || die "no ledger.reorg in the audit log after the reorganisation"
grep "ledger.reorg" "$WORK/audit.out"
grep "ledger.reorg" "$WORK/audit.out" | grep -q "$TX" || die "the ledger.reorg entry does not name $TX"
job_refused "$ALICE" "the rental's block left the chain"
if "$BIN/cce" rentals | grep -q "$TX"; then die "cce rentals still lists the dropped rental"; fi

say "7. alice rents again; a plane pointed at another chain refuses to start"
"$BIN/cce" rent claims --days 1 --key-file "$WORK/key2" > "$WORK/rent2.out" 2> "$WORK/rent2.err" &
RENT_PID=$!
for _ in $(seq 1 150); do grep -q "mined in block" "$WORK/rent2.err" && break; sleep 0.1; done
rpc anvil_mine '["0x1"]' > /dev/null
wait "$RENT_PID" || { RENT_PID=; cat "$WORK/rent2.err" >&2; die "the second cce rent failed"; }
RENT_PID=
cat "$WORK/rent2.out"
grep -q "^rented claims until .*Z$" "$WORK/rent2.out" || die "cce rent's text output has no end"
grep -q "^  transaction 0x[0-9a-f]\{64\} in block [0-9]* (chain 31337)$" "$WORK/rent2.out" ||
  die "cce rent's text output has no transaction and block"
job_accepted "$ALICE" "the new rental"
# The operator deactivates the dataset on chain: `cce rent` reads that from
# the contract and sends nothing; registering it again re-activates it.
node "$TOOL" deactivate "$RPC" "$CONTRACT" "$DATASET_ID" "$WORK/key0" | grep -q "^status 1 " ||
  die "the operator could not deactivate the dataset"
NONCE_BEFORE=$(rpc eth_getTransactionCount "[\"${ADDRS[2]}\",\"latest\"]")
if "$BIN/cce" rent claims --timeout 15s --index-timeout 5s --days 1 --key-file "$WORK/key2" \
     > "$WORK/inactive.out" 2>&1; then
  die "cce rent paid for a deactivated dataset"
fi
cat "$WORK/inactive.out"
grep -q "is deactivated on the contract" "$WORK/inactive.out" || die "the refusal does not say the dataset is deactivated"
[ "$(rpc eth_getTransactionCount "[\"${ADDRS[2]}\",\"latest\"]")" = "$NONCE_BEFORE" ] ||
  die "a rent of a deactivated dataset sent a transaction"
"$BIN/cce-plane" ledger register-dataset claims --price-wei "$PRICE" --max-days 30 \
  --payout "${ADDRS[1]}" --key-file "$WORK/key0" --data-dir "$DATA" > "$WORK/register2.out" 2>&1 ||
  { cat "$WORK/register2.out"; die "registering the dataset again failed"; }
local_plane_stop
sed -i 's/^  chain_id: 31337$/  chain_id: 5/' "$DATA/plane.yaml"
grep -q '^  chain_id: 5$' "$DATA/plane.yaml" || die "plane.yaml: no chain_id line to change"
if timeout 20 "$BIN/cce-plane" serve --data-dir "$DATA" > "$WORK/wrong-chain.log" 2>&1; then
  die "the plane started against a node of another chain"
fi
cat "$WORK/wrong-chain.log"
if ! grep -q "chain 5\b" "$WORK/wrong-chain.log" || ! grep -q "chain 31337" "$WORK/wrong-chain.log"; then
  die "the refusal does not name both chain ids"
fi
sed -i 's/^  chain_id: 5$/  chain_id: 31337/' "$DATA/plane.yaml"
local_plane_serve || die "the plane did not restart"
job_accepted "$ALICE" "after the restart, from the index"

say "8. the node goes down: nothing new is granted, the indexed rental still covers"
export CCE_TOKEN="$BOB"
node "$TOOL" rent "$RPC" "$CONTRACT" "$DATASET_ID" 1 "$PRICE" "$WORK/key3" > "$WORK/bob-rent.out" ||
  die "bob's rent could not be sent"
cat "$WORK/bob-rent.out"
grep -q "^status 1 " "$WORK/bob-rent.out" || die "bob's full payment reverted"
kill "$ANVIL_PID"; wait "$ANVIL_PID" 2>/dev/null || true; ANVIL_PID=
down=
for _ in $(seq 1 30); do
  ledger > "$WORK/ledger.json" 2>/dev/null || true
  if /usr/bin/python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("last_sync_error") else 1)' \
       "$WORK/ledger.json" 2>/dev/null; then down=1; break; fi
  sleep 0.5
done
[ -n "$down" ] || die "GET /api/v1/ledger shows no last_sync_error with the node down"
echo "last_sync_error: $(json_field last_sync_error < "$WORK/ledger.json")"
job_refused "$BOB" "bob's rental never reached 2 confirmations"
job_accepted "$ALICE" "the indexed rental covers with the node down"
if "$BIN/cce" rent claims --timeout 15s --index-timeout 5s --days 1 --key-file "$WORK/key3" > "$WORK/down.out" 2>&1; then
  die "cce rent worked with the node down"
fi
cat "$WORK/down.out"
grep -q "127.0.0.1:$ANVIL_PORT" "$WORK/down.out" || die "cce rent's error does not name the node"

say "passed in $(($(date +%s) - T0)) s"
