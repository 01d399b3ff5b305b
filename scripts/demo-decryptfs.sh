#!/usr/bin/env bash
# The DecryptFS tour (part of `make demo`): make a sample dataset, encrypt it, mount it with
# cce-decryptfs, read a file through the mount, tamper one ciphertext byte and
# watch it turn into an I/O error, then unmount. Exits non-zero if any step
# does not behave as shown (it also runs as a test).
set -euo pipefail

BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
WORK=$(mktemp -d /tmp/cce-demo-XXXXXX)
MNT="$WORK/mnt"
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. A provider's plaintext dataset"
mkdir -p "$WORK/claims/2026"
{
  echo "patient_id,age,zip,diagnosis,cost"
  for i in $(seq 1 20000); do
    echo "P$((100000 + i)),$((20 + i % 60)),$((10000 + (i * 37) % 900)),ICD-$((i % 97)),$((i * 13 % 5000)).00"
  done
} > "$WORK/claims/2026/claims.csv"
echo "Hospital claims sample, synthetic." > "$WORK/claims/README.txt"
run ls -lR "$WORK/claims"

step "2. Generate a dataset key and encrypt"
run "$BIN/cce" key generate --out "$WORK/claims.key"
run "$BIN/cce" dataset encrypt --key "$WORK/claims.key" "$WORK/claims" "$WORK/claims.enc"
echo "The encrypted dataset: random object names, no plaintext names or sizes beyond lengths:"
run ls -l "$WORK/claims.enc" "$WORK/claims.enc/objects"
run "$BIN/cce" dataset verify --key "$WORK/claims.key" "$WORK/claims.enc"

step "3. Mount with cce-decryptfs (key passed on a file descriptor, never in argv/env)"
mkdir -p "$MNT"
run "$BIN/cce-decryptfs" --key-fd 3 "$WORK/claims.enc" "$MNT" 3<"$WORK/claims.key"
run ls -lR "$MNT"
run head -n 3 "$MNT/2026/claims.csv"
run cmp "$MNT/2026/claims.csv" "$WORK/claims/2026/claims.csv"
echo "identical to the plaintext"
run fusermount3 -u "$MNT"

step "4. Flip one ciphertext byte in the middle of the biggest object"
obj=$(ls -S "$WORK/claims.enc/objects" | head -n 1)
obj="$WORK/claims.enc/objects/$obj"
offset=$((68 + 65552 + 1000))  # header, segment 0, then 1000 bytes into segment 1
printf '$ flip byte %d of %s\n' "$offset" "${obj#"$WORK"/}"
byte=$(xxd -s "$offset" -l 1 -p "$obj")
printf '%02x' $((0x$byte ^ 0x01)) | xxd -r -p | dd of="$obj" bs=1 seek="$offset" conv=notrunc status=none

step "5. The tampered range reads as an I/O error; the rest stays readable"
run "$BIN/cce-decryptfs" --key-file "$WORK/claims.key" "$WORK/claims.enc" "$MNT"
run head -c 200 "$MNT/2026/claims.csv" | head -n 2
if cat "$MNT/2026/claims.csv" > /dev/null 2>"$WORK/cat.err"; then
  echo "demo: FAILED: reading a tampered file succeeded" >&2
  exit 1
fi
printf '$ cat %s > /dev/null\n' "$MNT/2026/claims.csv"
cat "$WORK/cat.err"
grep -q "Input/output error" "$WORK/cat.err"
if "$BIN/cce" dataset verify --key "$WORK/claims.key" "$WORK/claims.enc" 2>"$WORK/verify.err"; then
  echo "demo: FAILED: verify accepted a tampered dataset" >&2
  exit 1
fi
printf '$ cce dataset verify ...   (exit %s)\n' 3
cat "$WORK/verify.err"

step "6. Unmount"
run fusermount3 -u "$MNT"
echo
echo "decryptfs tour: OK"
