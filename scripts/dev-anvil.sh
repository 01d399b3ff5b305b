#!/usr/bin/env bash
# Development only: a local Ethereum node for a plane with `ledger: ethereum`
# (docs/ledger.md, "Try it on a local node"). Starts anvil (npm
# @foundry-rs/anvil, installed by `make deps`) on 127.0.0.1, writes the keys
# of its first three well-known dev accounts into DIR as 0600 key files
# (operator.key, provider.key, consumer.key: never use them anywhere else),
# and prints the commands that make a plane on it. Runs until interrupted.
#
# A block every --block-time seconds (default 2), like a real chain, so
# rentals get their confirmations without anyone mining by hand.
#
#   scripts/dev-anvil.sh [--port 8545] [--dir ./anvil-dev] [--block-time 2]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT=8545
DIR=./anvil-dev
BLOCK_TIME=2
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --block-time) BLOCK_TIME="$2"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "dev-anvil: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$PORT" in ''|*[!0-9]*) echo "dev-anvil: --port: expected a number, got '$PORT'" >&2; exit 2 ;; esac
case "$BLOCK_TIME" in ''|*[!0-9]*|0) echo "dev-anvil: --block-time: expected whole seconds >= 1, got '$BLOCK_TIME'" >&2; exit 2 ;; esac
ANVIL="$ROOT/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
[ -x "$ANVIL" ] || { echo "dev-anvil: $ANVIL is missing: run 'make deps' (or npm ci)" >&2; exit 1; }
mkdir -p "$DIR"
umask 077
write_key() { [ -e "$DIR/$1" ] || printf '%s\n' "$2" > "$DIR/$1"; chmod 600 "$DIR/$1"; }
write_key operator.key 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
write_key provider.key 0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
write_key consumer.key 0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
cat <<MSG
dev-anvil: anvil on http://127.0.0.1:$PORT (chain id 31337, a block every ${BLOCK_TIME}s), dev keys in $DIR
  operator  0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266  $DIR/operator.key
  provider  0x70997970C51812dc3A010C7d01b50e0d17dc79C8  $DIR/provider.key
  consumer  0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC  $DIR/consumer.key
A plane on it:
  cce-plane init --data-dir PLANE --ledger ethereum --rpc http://127.0.0.1:$PORT \\
      --key-file $DIR/operator.key --confirmations 2
MSG
exec "$ANVIL" --host 127.0.0.1 --port "$PORT" --chain-id 31337 --block-time "$BLOCK_TIME"
