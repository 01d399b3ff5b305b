# shellcheck shell=bash
# Pure helpers of bench/decryptfs/run.sh: arithmetic, option and header
# parsing, the small-file size distribution. No root, no mounts, no global
# state beyond what a function documents, so selftest/check.sh can test them
# on their own. Sourced, not run.

# Floating point via awk: calc EXPR [DECIMALS]
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

# ratio A B -> A/B with 2 decimals; 0 if B is not positive.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "0" }'; }

# verdict VALUE OP TARGET -> PASS or MISS (OP is >= or <=).
verdict() {
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "PASS" : "MISS" }'
}

json_bool() { if [[ $1 == PASS ]]; then echo true; else echo false; fi; }

# median VALUES... -> the median (mean of the middle two for an even count).
median() {
  (($# > 0)) || { echo 0; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# max_of A B -> the larger of two numbers, printed as given.
max_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; }

# vs_best CCE GC_128 GC_1024 -> "BEST BEST_RA_KB RATIO": gocryptfs's better
# figure of its two read-ahead runs (128 KiB on a tie), which read-ahead
# that was, and cce over it (2 decimals). The fairness rule of README.md.
vs_best() {
  local best=$2 ra=128
  if awk -v a="$2" -v b="$3" 'BEGIN { exit !(b > a) }'; then best=$3 ra=1024; fi
  echo "$best $ra $(ratio "$1" "$best")"
}

# JSON string literal of $1 (quotes, backslashes and control characters escaped).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  printf '"%s"' "$(printf '%s' "$s" | tr -d '\000-\037')"
}

# The measurements --only may name, in run order.
readonly BENCH_MEASURES=(seq rand1 rand4 small walk encrypt)

# parse_only LIST -> the selected measures, one per line, in run order.
# LIST is comma-separated names from BENCH_MEASURES, or "all". Fails with a
# message naming the bad entry (an empty entry, an unknown name).
parse_only() {
  local list=$1 item m found
  local -A want=()
  [[ -n $list ]] || { echo "--only: empty list (choose from: ${BENCH_MEASURES[*]})" >&2; return 1; }
  if [[ $list == all ]]; then
    printf '%s\n' "${BENCH_MEASURES[@]}"
    return 0
  fi
  local IFS=,
  # shellcheck disable=SC2086 # split on commas
  set -- $list
  unset IFS
  [[ $list != *, ]] || { echo "--only '$list': empty entry at the end" >&2; return 1; }
  for item in "$@"; do
    [[ -n $item ]] || { echo "--only '$list': empty entry" >&2; return 1; }
    found=0
    for m in "${BENCH_MEASURES[@]}"; do [[ $item == "$m" ]] && found=1; done
    ((found)) || { echo "--only '$list': unknown measure '$item' (choose from: ${BENCH_MEASURES[*]})" >&2; return 1; }
    want[$item]=1
  done
  for m in "${BENCH_MEASURES[@]}"; do [[ -n ${want[$m]:-} ]] && echo "$m"; done
  return 0
}

# small_file_sizes COUNT SEED -> COUNT sizes in bytes, one per line, uniform
# in [4096, 65536]. Park-Miller minimal standard generator (x = 16807 x mod
# 2^31-1) in exact double arithmetic, so every awk on every machine gives
# the same sizes for the same seed (awk's own rand() differs between mawk
# and gawk). SEED must be in [1, 2^31-2].
small_file_sizes() {
  awk -v n="$1" -v seed="$2" 'BEGIN {
    m = 2147483647; x = seed % m; if (x <= 0) x += m - 1
    for (i = 0; i < n; i++) {
      x = (16807 * x) % m
      printf "%d\n", 4096 + int(x / m * 61441)
    }
  }'
}

# small_file_path INDEX -> relative path of small file INDEX: 100 files per
# directory, dNN/fNNNNN.bin.
small_file_path() { printf 'd%03d/f%05d.bin' $(($1 / 100)) "$1"; }

# header_info FILE -> "VERSION BLOCK_SIZE" from a cce4long object header:
# magic "CCE4DSF\n" at bytes 0..7, version at byte 8, block (segment)
# exponent at byte 10 (docs/format.md §3.1). Fails, with a message naming
# the file and byte, for a short file, another magic or an exponent outside
# 9..30.
header_info() {
  local file=$1 bytes
  bytes=$(od -An -v -tu1 -N11 "$file" 2>/dev/null | tr -s ' \n' ' ') || true
  # shellcheck disable=SC2206 # split into numbers
  local b=($bytes)
  ((${#b[@]} == 11)) || { echo "$file: shorter than an 11-byte header start" >&2; return 1; }
  local magic=(67 67 69 52 68 83 70 10) i # "CCE4DSF\n"
  for i in 0 1 2 3 4 5 6 7; do
    ((b[i] == magic[i])) || { echo "$file: byte $i is ${b[i]}, not the cce4long magic (not a cce object)" >&2; return 1; }
  done
  ((b[10] >= 9 && b[10] <= 30)) || { echo "$file: byte 10 (block exponent) is ${b[10]}, outside 9..30" >&2; return 1; }
  echo "${b[8]} $((1 << b[10]))"
}

# perf_split: reads `perf report -q --stdio --sort dso,sym` lines
# ("  33.24%  [kernel.kallsyms]  [k] iowrite16") on stdin and prints where a
# FUSE daemon's CPU went, as percentages of its samples, in this order:
#   kick    kernel: the virtio doorbell write that starts a disk read (in a VM
#           a trap to the hypervisor: iowrite16, vp_notify, virtqueue_notify)
#   sched   kernel: finish_task_switch (a thread woken: the FUSE request
#           handed over, the disk read completed)
#   kernel  the rest of the kernel (FUSE device, block layer, file system)
#   crypto  OpenSSL's libcrypto (decryption and authentication)
#   fuse    libfuse
#   libc    glibc (allocation, locks, the syscall stubs)
#   own     everything else: the daemon's own code, libstdc++
perf_split() {
  awk '
    /^#/ || NF < 4 { next }
    {
      p = $1; sub(/%$/, "", p); dso = $2; sym = $4
      if (dso ~ /kernel/) {
        if (sym ~ /^(iowrite16|vp_notify|virtqueue_notify)/) kick += p
        else if (sym ~ /^finish_task_switch/) sched += p
        else kernel += p
      } else if (dso ~ /^libcrypto/) crypto += p
      else if (dso ~ /^libfuse/) fuse += p
      else if (dso ~ /^libc[.-]/) libc += p
      else own += p
    }
    END { printf "%.1f %.1f %.1f %.1f %.1f %.1f %.1f\n", kick, sched, kernel, crypto, fuse, libc, own }'
}
