#!/bin/bash
# Profiles one side of key releases: runs attest_bench and records `perf`
# (Debian: linux-perf) on the plane's process only (default) or on the
# clients' (the bench's own process: the simulated agents), only during the
# measured window (attest_bench prints "releasing (plane pid N)" to stderr
# just before it). Then prints the inclusive shares of that side's path.
#
#   bench/attest/profile.sh [--bin-dir DIR] [--releases N] [--out FILE] [--side plane|client]
#                           [--brief]
# --brief prints only the bench's summary lines (not its rounds) before the
# shares: what `make bench` runs for both sides after attest_bench.
set -euo pipefail
bin_dir=build/bin
releases=600
out=
side=plane
brief=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --releases) releases=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --side) side=$2; shift 2 ;;
    --brief) brief=1; shift ;;
    *) echo "profile.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case "$side" in plane|client) ;; *) echo "profile.sh: --side: expected plane or client, got '$side'" >&2; exit 2 ;; esac
out=${out:-/tmp/attest-$side.perf.data}
command -v perf >/dev/null || { echo "profile.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$bin_dir/attest_bench" --releases "$releases" --clients 8 >"$log" 2>&1 &
bench=$!
pid=
for _ in $(seq 1 1200); do
  pid=$(grep -o "plane pid [0-9]*" "$log" | awk '{print $3}' || true)
  [ -n "$pid" ] && break
  kill -0 "$bench" 2>/dev/null || break
  sleep 0.1
done
[ -n "$pid" ] || { cat "$log" >&2; echo "profile.sh: the bench never reached its window" >&2; exit 1; }
[ "$side" = client ] && pid=$bench
perf record -F 1999 --call-graph dwarf,16384 -o "$out" -p "$pid" >/dev/null 2>&1 &
rec=$!
status=0
wait "$bench" || status=$?
kill -INT "$rec" 2>/dev/null || true
wait "$rec" || true
if [ "$brief" = 1 ]; then
  echo "profile.sh: where the ${side}'s CPU goes in key releases (perf record -p on the $side process during $releases releases; inclusive shares of its CPU samples; perf itself slows the run):"
  grep -E '^  (releases/s|plane CPU ms|client CPU ms|this machine)' "$log" || true
else
  grep -vE '^\{"event"' "$log" | grep -v '^$' || true
fi
if [ "$side" = client ]; then
  # The agents' path: connect (TLS context, handshake, the server's
  # certificate parsed and verified), the quote, the JWE, libcurl itself.
  perf report -i "$out" --children --sort sym -g none --percentage relative 2>/dev/null |
    grep -E '\] (cce::agent::AttestTee|cce::agent::ReleaseDatasetKeys|cce::http::Client::Send|cce::http::Client::Create|curl_easy_perform|SSL_CTX_new_ex|SSL_do_handshake|ASN1_item_d2i_ex|X509_verify_cert|EVP_DigestVerifyFinal|EVP_DigestSign|cce::crypto::JweDecrypt|cce::crypto::EphemeralKey::Generate|cce::crypto::EcdhPrivateKey::DeriveSharedSecret|cce::attest::SimulatedQuoter::Quote|curl_easy_cleanup|finish_task_switch|SSL_read|SSL_write)' |
    cut -c1-120
  exit "$status"
fi
perf report -i "$out" --children --sort sym -g none --percentage relative 2>/dev/null |
  grep -E 'KeyBroker::|KbsNonceTable::|SqliteStore::ApplyBatch|JweEncrypt|DeriveSharedSecret|EcdhPrivateKey::Generate|BeginHandshake|CheckCoverage|RentalRowIsSigned|Ed25519Verify|FromJwk|VerifyQuote|VerifyJobCredential|VerifyKbsSession|do_fsync|finish_task_switch|Logger::Log|AuditLog::Record' |
  cut -c1-120
exit "$status"
