#!/usr/bin/env bash
# Cold-cache read benchmark: the plaintext on the underlying disk, the same
# bytes through cce-decryptfs, and through gocryptfs as the baseline, all in one
# run on one machine; plus `cce dataset encrypt` throughput and the decryptfs
# daemon's peak RSS. README.md beside this file says what is measured and how
# to read the ratios. Needs root (drop_caches, FUSE mounts).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
readonly SCRIPT_DIR REPO_ROOT

SIZE_MIB=1024
RUNTIME_S=20
ENCRYPT_RUNS=3
REPEAT=3
BIN_DIR=$REPO_ROOT/build/bin
WORK_DIR=/var/tmp/cce-bench-decryptfs

# Targets. The read targets are cce relative to gocryptfs measured in the same run.
readonly TARGET_SEQ=1.5 TARGET_RAND1=1.0 TARGET_RAND4=1.3
readonly TARGET_ENCRYPT_MBPS=1000 TARGET_RSS_MIB=64
# While random reads run, the page cache is emptied this often (seconds).
# fio's --invalidate only empties it when a job starts; without this, pages
# read earlier in the run are served from memory and the later part of the run
# measures RAM, not the file system (see README, "Why the evictor").
readonly EVICT_INTERVAL_S=0.1
readonly DATA_NAME=data.bin

usage() {
  cat <<EOF
Usage: bench/decryptfs/run.sh [options]

Cold-cache sequential and 4 KiB random read throughput of plain disk,
cce-decryptfs and gocryptfs on the same file, 'cce dataset encrypt'
throughput, and cce-decryptfs peak RSS. Runs as root.

Options:
  --size-mib N       size of the test file in MiB (default $SIZE_MIB)
  --runtime S        seconds per random-read fio run (default $RUNTIME_S)
  --repeat N         rounds of each fio measurement, interleaved across
                     plain/cce/gocryptfs; the median is reported (default $REPEAT)
  --encrypt-runs N   cold runs of 'cce dataset encrypt' (default $ENCRYPT_RUNS)
  --bin-dir DIR      where cce and cce-decryptfs are (default build/bin)
  --work-dir DIR     scratch and results; must be on a real disk, not tmpfs
                     (default $WORK_DIR)
  --help             this text

Progress goes to stderr; figures, PASS/MISS per target and a final JSON line
go to stdout. The JSON is also written to WORK_DIR/results/latest.json.
Needs: fio hyperfine gocryptfs fuse3 time (apt-get install -y fio hyperfine
gocryptfs fuse3 time).
EOF
}

die() {
  echo "run.sh: error: $*" >&2
  exit 1
}

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --help | -h) usage; exit 0 ;;
    --size-mib) need_value "$@"; SIZE_MIB=$2; shift 2 ;;
    --size-mib=*) SIZE_MIB=${1#*=}; shift ;;
    --runtime) need_value "$@"; RUNTIME_S=$2; shift 2 ;;
    --runtime=*) RUNTIME_S=${1#*=}; shift ;;
    --repeat) need_value "$@"; REPEAT=$2; shift 2 ;;
    --repeat=*) REPEAT=${1#*=}; shift ;;
    --encrypt-runs) need_value "$@"; ENCRYPT_RUNS=$2; shift 2 ;;
    --encrypt-runs=*) ENCRYPT_RUNS=${1#*=}; shift ;;
    --bin-dir) need_value "$@"; BIN_DIR=$2; shift 2 ;;
    --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
    --work-dir) need_value "$@"; WORK_DIR=$2; shift 2 ;;
    --work-dir=*) WORK_DIR=${1#*=}; shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ $SIZE_MIB =~ ^[1-9][0-9]*$ ]] || die "--size-mib: '$SIZE_MIB' is not a positive integer"
[[ $RUNTIME_S =~ ^[1-9][0-9]*$ ]] || die "--runtime: '$RUNTIME_S' is not a positive integer"
[[ $ENCRYPT_RUNS =~ ^[1-9][0-9]*$ ]] || die "--encrypt-runs: '$ENCRYPT_RUNS' is not a positive integer"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat: '$REPEAT' is not a positive integer"
readonly SIZE_MIB RUNTIME_S ENCRYPT_RUNS REPEAT
readonly TOTAL_STEPS=$((5 + 9 * REPEAT))
readonly SIZE_BYTES=$((SIZE_MIB * 1024 * 1024))
if ((SIZE_MIB % 1024 == 0)); then SIZE_LABEL="$((SIZE_MIB / 1024))GiB"; else SIZE_LABEL="${SIZE_MIB}MiB"; fi
readonly SIZE_LABEL

# ---- preflight ----

[[ $(id -u) -eq 0 ]] || die "must run as root (drop_caches and FUSE mounts need it)"
for tool in fio hyperfine gocryptfs fusermount3 flock cmp findmnt mountpoint; do
  command -v "$tool" >/dev/null ||
    die "'$tool' not found; install with: apt-get install -y fio hyperfine gocryptfs fuse3 time"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found; install with: apt-get install -y time"
[[ -c /dev/fuse ]] || die "/dev/fuse missing (no FUSE in this kernel or container)"
[[ -w /proc/sys/vm/drop_caches ]] || die "/proc/sys/vm/drop_caches is not writable"
abs_bin_dir=$(cd "$BIN_DIR" 2>/dev/null && pwd) || die "--bin-dir '$BIN_DIR' does not exist (build first: make build)"
BIN_DIR=$abs_bin_dir
readonly BIN_DIR CCE=$BIN_DIR/cce DECRYPTFS=$BIN_DIR/cce-decryptfs
[[ -x $CCE ]] || die "$CCE not found or not executable (build first: make build)"
[[ -x $DECRYPTFS ]] || die "$DECRYPTFS not found or not executable (build first: make build)"

mkdir -p "$WORK_DIR"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
readonly WORK_DIR
# /proc/self/mounts escapes whitespace; keeping paths plain keeps the mount checks simple.
[[ $WORK_DIR =~ ^[A-Za-z0-9_./+-]+$ ]] || die "--work-dir '$WORK_DIR': use a path without spaces or special characters"
# statfs says what really holds the directory (findmnt may list stacked mounts).
case $(stat -f -c %T "$WORK_DIR") in
  tmpfs | ramfs | fuseblk | fuse | overlayfs | nfs | smb2 | cifs | v9fs | virtiofs)
    die "--work-dir '$WORK_DIR' is on $(stat -f -c %T "$WORK_DIR"); put it on a local disk file system (ext4, xfs, btrfs)" ;;
esac
FS_TYPE=$(findmnt -n -o FSTYPE -T "$WORK_DIR" | tail -n 1)
FS_SOURCE=$(findmnt -n -o SOURCE -T "$WORK_DIR" | tail -n 1)
readonly FS_TYPE FS_SOURCE

# Block-device counters of the disk under WORK_DIR: how many bytes each
# measurement really read from the device (read amplification, cache hits).
DEV_STAT=
if [[ $FS_SOURCE == /dev/* ]]; then
  dev_name=$(basename "$(readlink -f "$FS_SOURCE")")
  [[ -r /sys/class/block/$dev_name/stat ]] && DEV_STAT=/sys/class/block/$dev_name/stat
fi
readonly DEV_STAT

exec 9>"$WORK_DIR/.lock"
flock -n 9 || die "another run holds $WORK_DIR/.lock"

readonly DATA_DIR=$WORK_DIR/data
readonly PLAIN_DIR=$DATA_DIR/plain PLAIN_FILE=$DATA_DIR/plain/$DATA_NAME
readonly CCE_KEY=$DATA_DIR/cce.key CCE_ENC=$DATA_DIR/cce-enc CCE_MNT=$DATA_DIR/cce-mnt
readonly GC_PASS=$DATA_DIR/gocryptfs.pass GC_CIPHER=$DATA_DIR/gc-cipher GC_MNT=$DATA_DIR/gc-mnt
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
readonly RUN_ID RESULTS_DIR=$WORK_DIR/results
readonly LOG_DIR=$RESULTS_DIR/$RUN_ID

avail_mib=$(df --output=avail -BM "$WORK_DIR" | tail -1 | tr -dc 0-9)
need_mib=$((SIZE_MIB * 3 + SIZE_MIB / 8 + 512)) # plaintext + two ciphertext copies + slack
((avail_mib >= need_mib)) || die "$WORK_DIR has ${avail_mib} MiB free, needs about ${need_mib} MiB"

# ---- process and mount bookkeeping; cleanup runs on any exit ----

declare -A MOUNT_PID=() # mountpoint -> pid of the FUSE daemon we started (foreground mode)
EVICTOR_PID=
STEP=0

progress() {
  STEP=$((STEP + 1))
  printf '[%d/%d] %s\n' "$STEP" "$TOTAL_STEPS" "$*" >&2
}

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

# Alive and not a zombie (kill -0 succeeds on zombies, which our children
# are until reaped).
proc_alive() {
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}

wait_gone() { # pid seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    proc_alive "$1" || return 0
    sleep 0.1
  done
  return 1
}

# Unmounts and waits for the daemon; escalates to lazy unmount and signals.
# Returns the daemon's exit status (non-zero if it had to be killed).
stop_fuse() {
  local mnt=$1 pid=${MOUNT_PID[$1]:-} rc=0
  if is_mounted "$mnt"; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || rc=1
  fi
  if [[ -n $pid ]]; then
    if ! wait_gone "$pid" 10; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
      rc=1
    fi
    wait "$pid" 2>/dev/null || rc=$?
  fi
  unset "MOUNT_PID[$mnt]"
  return "$rc"
}

stop_evictor() {
  [[ -n $EVICTOR_PID ]] || return 0
  kill "$EVICTOR_PID" 2>/dev/null || true
  wait "$EVICTOR_PID" 2>/dev/null || true
  EVICTOR_PID=
}

cleanup() {
  local rc=$? mnt
  set +e
  trap - EXIT INT TERM
  stop_evictor
  for mnt in "${!MOUNT_PID[@]}"; do stop_fuse "$mnt"; done
  for mnt in "$CCE_MNT" "$GC_MNT"; do # left over from a run that was SIGKILLed
    is_mounted "$mnt" && { fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"; }
  done
  rm -rf --one-file-system "$DATA_DIR"
  ((rc == 0)) || echo "run.sh: failed (exit $rc); logs in $LOG_DIR" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a FUSE daemon in the foreground mode as our child (so we own its pid)
# and waits until the mount is there. Sets FUSE_PID.
start_fuse() { # mountpoint log cmd...
  local mnt=$1 log=$2 i
  shift 2
  "$@" >"$log" 2>&1 &
  FUSE_PID=$!
  MOUNT_PID[$mnt]=$FUSE_PID
  for ((i = 0; i < 300; i++)); do
    is_mounted "$mnt" && return 0
    if ! proc_alive "$FUSE_PID"; then
      tail -n 20 "$log" >&2 || true
      die "$1 exited before mounting $mnt (log: $log)"
    fi
    sleep 0.1
  done
  tail -n 20 "$log" >&2 || true
  die "$1 did not mount $mnt within 30 s (log: $log)"
}

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# Evicts the given files' cached pages every EVICT_INTERVAL_S (dd with
# iflag=nocache and count=0 is posix_fadvise(POSIX_FADV_DONTNEED) on the whole
# file). Targeted rather than drop_caches so other processes on the machine,
# and our own tools, keep their cache.
start_evictor() { # files...
  (
    trap - EXIT INT TERM
    while :; do
      for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true; done
      sleep "$EVICT_INTERVAL_S"
    done
  ) &
  EVICTOR_PID=$!
}

dev_sectors_read() { # 512-byte sectors read from the device so far
  if [[ -n $DEV_STAT ]]; then awk '{ print $3 }' "$DEV_STAT"; else echo 0; fi
}

cpu_ticks() { # user+system clock ticks of a process, all threads
  [[ -n $1 ]] || { echo 0; return; }
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }

# Floating point via awk: calc EXPR [DECIMALS]
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
# ratio A B -> A/B with 2 decimals, 0 if B is 0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "0" }'; }
verdict() { # value op target
  awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? (v >= t) : (v <= t); print ok ? "PASS" : "MISS" }'
}
json_bool() { if [[ $1 == PASS ]]; then echo true; else echo false; fi; }

# fio results, keyed "<workload>_<target>": per-round samples (space
# separated) and sums over the rounds.
declare -A MBPS_SAMPLES=() IOPS_SAMPLES=() DEV_KIB=() OPS=() CPU_TICKS=()

# measure KEY ROUND DAEMON_PID EVICT(0|1) fio-args...
# Cold cache before each run; records device reads and daemon CPU around it.
# With EVICT=1 the files in EVICT_FILES are kept out of the page cache while
# fio runs.
measure() {
  local key=$1 round=$2 pid=$3 evict=$4 out s0 s1 c0 c1 line bs=4096
  shift 4
  [[ $1 == --rw=read ]] && bs=1048576
  out=$LOG_DIR/fio-$key-r$round.txt
  drop_caches
  s0=$(dev_sectors_read)
  c0=$(cpu_ticks "$pid")
  if ((evict)); then start_evictor "${EVICT_FILES[@]}"; fi
  if ! fio --name="$key" --readonly --ioengine=psync --invalidate=1 --size="$SIZE_BYTES" \
    --output-format=terse --terse-version=3 "$@" >"$out" 2>"$out.err"; then
    stop_evictor
    cat "$out.err" >&2
    die "fio $key failed (log: $out)"
  fi
  stop_evictor
  s1=$(dev_sectors_read)
  c1=$(cpu_ticks "$pid")
  # terse v3: 5 error, 6 read KiB total, 7 read bandwidth KiB/s, 8 read IOPS
  line=$(grep '^3;' "$out" | tail -n 1)
  [[ -n $line ]] || die "no fio result in $out"
  IFS=';' read -r -a f <<<"$line"
  [[ ${f[4]} == 0 ]] || die "fio $key reported error ${f[4]} (log: $out)"
  MBPS_SAMPLES[$key]+=" $(calc "${f[6]} * 1024 / 1000000" 1)"
  IOPS_SAMPLES[$key]+=" ${f[7]}"
  OPS[$key]=$((${OPS[$key]:-0} + f[5] * 1024 / bs))
  DEV_KIB[$key]=$((${DEV_KIB[$key]:-0} + (s1 - s0) / 2))
  CPU_TICKS[$key]=$((${CPU_TICKS[$key]:-0} + c1 - c0))
}

median() { # values... -> median
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
CLK_TCK=$(getconf CLK_TCK)
readonly CLK_TCK

seq_args() { echo "--rw=read --bs=1M --numjobs=1"; }
rand_args() { # jobs
  echo "--rw=randread --bs=4k --fadvise_hint=random --norandommap --time_based" \
    "--runtime=$RUNTIME_S --numjobs=$1 --group_reporting"
}

# ---- setup ----

mkdir -p "$LOG_DIR"
for mnt in "$CCE_MNT" "$GC_MNT"; do # left over from a run that was SIGKILLed
  if is_mounted "$mnt"; then fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"; fi
done
rm -rf --one-file-system "$DATA_DIR"
mkdir -p "$PLAIN_DIR" "$CCE_MNT" "$GC_CIPHER" "$GC_MNT"

loadavg_1m() { cut -d' ' -f1 /proc/loadavg; }
LOAD_START=$(loadavg_1m)
if awk -v l="$LOAD_START" 'BEGIN { exit !(l > 0.5) }'; then
  echo "run.sh: warning: load average is $LOAD_START; other work on this machine skews the figures" >&2
fi
echo "decryptfs bench: ${SIZE_LABEL} file, ${RUNTIME_S}s random runs, work dir $WORK_DIR ($FS_TYPE on $FS_SOURCE)" >&2

progress "writing ${SIZE_MIB} MiB of random plaintext"
head -c "$SIZE_BYTES" /dev/urandom >"$PLAIN_FILE"
sync

progress "cce dataset encrypt, $ENCRYPT_RUNS cold-cache runs (hyperfine)"
"$CCE" key generate --out "$CCE_KEY" >"$LOG_DIR/key-generate.log" 2>&1 ||
  { cat "$LOG_DIR/key-generate.log" >&2; die "cce key generate failed"; }
encrypt_cmd="$(printf '%q ' /usr/bin/time -f %M -a -o "$LOG_DIR/encrypt-maxrss-kib.txt" \
  "$CCE" dataset encrypt --key "$CCE_KEY" --output json "$PLAIN_DIR" "$CCE_ENC")"
encrypt_cmd+="> $(printf '%q' "$LOG_DIR/encrypt-summary.json")"
if ! hyperfine --style basic --runs "$ENCRYPT_RUNS" --command-name "cce dataset encrypt" \
  --prepare "rm -rf $(printf '%q' "$CCE_ENC") && sync && echo 3 > /proc/sys/vm/drop_caches" \
  --export-csv "$LOG_DIR/encrypt.csv" --export-json "$LOG_DIR/encrypt.json" \
  "$encrypt_cmd" >"$LOG_DIR/hyperfine.txt" 2>&1; then
  tail -n 20 "$LOG_DIR/hyperfine.txt" >&2
  die "cce dataset encrypt failed (log: $LOG_DIR/hyperfine.txt)"
fi
# CSV: command,mean,stddev,median,user,system,min,max (seconds)
read -r ENC_MEAN ENC_USER ENC_SYS ENC_MIN ENC_MAX < <(awk -F, 'NR == 2 { print $(NF-6), $(NF-3), $(NF-2), $(NF-1), $NF }' "$LOG_DIR/encrypt.csv")
ENC_MBPS=$(calc "$SIZE_BYTES / $ENC_MEAN / 1000000" 1)
ENC_RSS_MIB=$(calc "$(sort -n "$LOG_DIR/encrypt-maxrss-kib.txt" | tail -n 1) / 1024" 1)

progress "gocryptfs: init, copy plaintext in, remount read-only"
head -c 32 /dev/urandom | base64 -w0 >"$GC_PASS"
gocryptfs -init -q -passfile "$GC_PASS" "$GC_CIPHER" >"$LOG_DIR/gocryptfs-init.log" 2>&1 ||
  { cat "$LOG_DIR/gocryptfs-init.log" >&2; die "gocryptfs -init failed"; }
start_fuse "$GC_MNT" "$LOG_DIR/gocryptfs-write.log" gocryptfs -fg -q -passfile "$GC_PASS" "$GC_CIPHER" "$GC_MNT"
cp "$PLAIN_FILE" "$GC_MNT/$DATA_NAME"
stop_fuse "$GC_MNT" || die "gocryptfs did not unmount cleanly after the copy (log: $LOG_DIR/gocryptfs-write.log)"
start_fuse "$GC_MNT" "$LOG_DIR/gocryptfs.log" gocryptfs -fg -q -ro -passfile "$GC_PASS" "$GC_CIPHER" "$GC_MNT"
GC_PID=$FUSE_PID
[[ $(stat -c %s "$GC_MNT/$DATA_NAME") == "$SIZE_BYTES" ]] || die "gocryptfs view of $DATA_NAME has the wrong size"

progress "mounting cce-decryptfs"
start_fuse "$CCE_MNT" "$LOG_DIR/cce-decryptfs.log" "$DECRYPTFS" --key-file "$CCE_KEY" --foreground "$CCE_ENC" "$CCE_MNT"
CCE_PID=$FUSE_PID
[[ -f $CCE_MNT/$DATA_NAME ]] || die "cce-decryptfs view has no $DATA_NAME (has: $(find "$CCE_MNT" -mindepth 1 -maxdepth 2 | head -5 | tr '\n' ' '))"
[[ $(stat -c %s "$CCE_MNT/$DATA_NAME") == "$SIZE_BYTES" ]] || die "cce-decryptfs view of $DATA_NAME has the wrong size"

# ---- measurements ----

declare -A FILE_OF=([plain]=$PLAIN_FILE [cce]=$CCE_MNT/$DATA_NAME [gocryptfs]=$GC_MNT/$DATA_NAME)
declare -A PID_OF=([plain]="" [cce]=$CCE_PID [gocryptfs]=$GC_PID)
# What a target's random reads must not find in the page cache: the file read
# and the files its daemon reads from.
evict_list() {
  case $1 in
    plain) echo "$PLAIN_FILE" ;;
    cce) echo "$CCE_MNT/$DATA_NAME"; find "$CCE_ENC" -type f ;;
    gocryptfs) echo "$GC_MNT/$DATA_NAME"; find "$GC_CIPHER" -type f ;;
  esac
}
readonly TARGETS=(plain cce gocryptfs)

# Rounds interleave the targets so that drift (other load, disk state) hits
# all three alike; the median of the rounds is reported.
for ((round = 1; round <= REPEAT; round++)); do
  for t in "${TARGETS[@]}"; do
    progress "fio seq read ${SIZE_LABEL} bs=1M on $t (round $round/$REPEAT)"
    # shellcheck disable=SC2046 # word splitting of the fio options is intended
    measure "seq_$t" "$round" "${PID_OF[$t]}" 0 $(seq_args) --filename="${FILE_OF[$t]}"
  done
done
for jobs in 1 4; do
  plural=s
  ((jobs > 1)) || plural=
  for ((round = 1; round <= REPEAT; round++)); do
    for t in "${TARGETS[@]}"; do
      progress "fio randread 4k $jobs job$plural ${RUNTIME_S}s on $t (round $round/$REPEAT)"
      mapfile -t EVICT_FILES < <(evict_list "$t")
      # shellcheck disable=SC2046
      measure "rand${jobs}_$t" "$round" "${PID_OF[$t]}" 1 $(rand_args "$jobs") --filename="${FILE_OF[$t]}"
    done
  done
done

progress "peak RSS, verifying both plaintext views, unmounting"
CCE_HWM_MIB=$(calc "$(vm_hwm_kib "$CCE_PID") / 1024" 1)
CCE_THREADS=$(threads_of "$CCE_PID")
GC_HWM_MIB=$(calc "$(vm_hwm_kib "$GC_PID") / 1024" 1)
fuse_ra_kb() { cat "/sys/class/bdi/$(mountpoint -d "$1")/read_ahead_kb" 2>/dev/null || echo 0; }
CCE_RA_KB=$(fuse_ra_kb "$CCE_MNT")
GC_RA_KB=$(fuse_ra_kb "$GC_MNT")
CCE_MOUNT_OPTS=$(findmnt -n -o OPTIONS --mountpoint "$CCE_MNT" | tr -d '\042\134' || echo "?")
cmp -s "$PLAIN_FILE" "$CCE_MNT/$DATA_NAME" || die "cce-decryptfs returned different bytes than the plaintext"
cmp -s "$PLAIN_FILE" "$GC_MNT/$DATA_NAME" || die "gocryptfs returned different bytes than the plaintext"
CCE_EXIT=0
stop_fuse "$CCE_MNT" || CCE_EXIT=$?
stop_fuse "$GC_MNT" || true
((CCE_EXIT == 0)) || echo "run.sh: warning: cce-decryptfs exited with status $CCE_EXIT on unmount" >&2

# ---- report ----

LOAD_END=$(loadavg_1m)
declare -A MBPS=() IOPS=() CPU_S=()
for key in "${!MBPS_SAMPLES[@]}"; do
  # shellcheck disable=SC2086 # the samples are a space-separated list
  MBPS[$key]=$(calc "$(median ${MBPS_SAMPLES[$key]})" 1)
  # shellcheck disable=SC2086
  IOPS[$key]=$(calc "$(median ${IOPS_SAMPLES[$key]})" 0)
  CPU_S[$key]=$(calc "${CPU_TICKS[$key]} / $CLK_TCK" 2)
done
for v in ENC_MEAN ENC_MIN ENC_MAX ENC_USER ENC_SYS; do printf -v "$v" '%s' "$(calc "${!v}" 3)"; done

RATIO_SEQ=$(ratio "${MBPS[seq_cce]}" "${MBPS[seq_gocryptfs]}")
RATIO_RAND1=$(ratio "${IOPS[rand1_cce]}" "${IOPS[rand1_gocryptfs]}")
RATIO_RAND4=$(ratio "${IOPS[rand4_cce]}" "${IOPS[rand4_gocryptfs]}")
V_SEQ=$(verdict "$RATIO_SEQ" ">=" "$TARGET_SEQ")
V_RAND1=$(verdict "$RATIO_RAND1" ">=" "$TARGET_RAND1")
V_RAND4=$(verdict "$RATIO_RAND4" ">=" "$TARGET_RAND4")
V_ENC=$(verdict "$ENC_MBPS" ">=" "$TARGET_ENCRYPT_MBPS")
V_RSS=$(verdict "$CCE_HWM_MIB" "<=" "$TARGET_RSS_MIB")

# Diagnostics per key, over all rounds. Device figures are "null" when the
# device counters are unavailable.
seq_amp() { # disk bytes read per plaintext byte
  if [[ -n $DEV_STAT ]]; then calc "${DEV_KIB[$1]} / (${OPS[$1]} * 1024)" 2; else echo null; fi
}
rand_kib() { # disk KiB read per 4 KiB read
  if [[ -n $DEV_STAT ]]; then calc "${DEV_KIB[$1]} / ${OPS[$1]}" 1; else echo null; fi
}
cpu_ms_per_mib() { calc "${CPU_S[$1]} * 1000 / ${OPS[$1]}" 2; }
cpu_us_per_read() { calc "${CPU_S[$1]} * 1000000 / ${OPS[$1]}" 1; }

# "<what>: plain A, cce B, gocryptfs C" from a function or array applied to PREFIX<target>
line3() { # label fn prefix [unit]
  echo "$1: plain $($2 "${3}plain")${4:-}, cce $($2 "${3}cce")${4:-}, gocryptfs $($2 "${3}gocryptfs")${4:-}"
}
json3() { # fn prefix
  printf '{"plain":%s,"cce":%s,"gocryptfs":%s}' "$($1 "${2}plain")" "$($1 "${2}cce")" "$($1 "${2}gocryptfs")"
}
json2() { # fn prefix (daemons only)
  printf '{"cce":%s,"gocryptfs":%s}' "$($1 "${2}cce")" "$($1 "${2}gocryptfs")"
}
mbps_of() { echo "${MBPS[$1]}"; }
iops_of() { echo "${IOPS[$1]}"; }
samples_of() { # key -> JSON array of the per-round samples
  local kind=$1 key=$2 v out=
  if [[ $kind == mbps ]]; then v=${MBPS_SAMPLES[$key]}; else v=${IOPS_SAMPLES[$key]}; fi
  for x in $v; do out+=${out:+,}$x; done
  echo "[$out]"
}
mbps_samples() { samples_of mbps "$1"; }
iops_samples() { samples_of iops "$1"; }
spaced() { samples_of "$@" | tr -d '[]' | tr , ' '; }
seq_spread() { spaced mbps "$1"; }
rand_spread() { spaced iops "$1"; }

echo "$(line3 "seq read ${SIZE_LABEL}" mbps_of seq_ " MB/s"), cce/gocryptfs = $RATIO_SEQ (target >= $TARGET_SEQ) $V_SEQ"
echo "$(line3 "rand 4k 1 job" iops_of rand1_ " IOPS"), cce/gocryptfs = $RATIO_RAND1 (target >= $TARGET_RAND1) $V_RAND1"
echo "$(line3 "rand 4k 4 jobs" iops_of rand4_ " IOPS"), cce/gocryptfs = $RATIO_RAND4 (target >= $TARGET_RAND4) $V_RAND4"
echo "encrypt: $ENC_MBPS MB/s (target >= $TARGET_ENCRYPT_MBPS) $V_ENC"
echo "decryptfs peak RSS: $CCE_HWM_MIB MiB (target <= $TARGET_RSS_MIB) $V_RSS"
echo "details (medians of $REPEAT rounds; MB = 10^6 bytes):"
echo "  cce/plain: seq $(ratio "${MBPS[seq_cce]}" "${MBPS[seq_plain]}"), rand 1 job $(ratio "${IOPS[rand1_cce]}" "${IOPS[rand1_plain]}"), rand 4 jobs $(ratio "${IOPS[rand4_cce]}" "${IOPS[rand4_plain]}")"
echo "  $(line3 "rounds, seq MB/s" seq_spread seq_)"
echo "  $(line3 "rounds, rand 1 job IOPS" rand_spread rand1_)"
echo "  $(line3 "rounds, rand 4 jobs IOPS" rand_spread rand4_)"
echo "  $(line3 "disk bytes read per plaintext byte, seq" seq_amp seq_)"
echo "  $(line3 "disk KiB read per 4 KiB read, rand 1 job" rand_kib rand1_)"
echo "  $(line3 "disk KiB read per 4 KiB read, rand 4 jobs" rand_kib rand4_)"
echo "  daemon CPU, seq: cce $(cpu_ms_per_mib seq_cce) ms/MiB, gocryptfs $(cpu_ms_per_mib seq_gocryptfs) ms/MiB"
for j in 1 4; do
  echo "  daemon CPU per 4 KiB read, rand $j: cce $(cpu_us_per_read "rand${j}_cce") us, gocryptfs $(cpu_us_per_read "rand${j}_gocryptfs") us"
done
echo "  encrypt: mean ${ENC_MEAN}s (min ${ENC_MIN}s, max ${ENC_MAX}s) over $ENCRYPT_RUNS runs, user ${ENC_USER}s sys ${ENC_SYS}s, peak RSS ${ENC_RSS_MIB} MiB"
echo "  cce-decryptfs: $CCE_THREADS threads, FUSE read_ahead_kb $CCE_RA_KB, mount options $CCE_MOUNT_OPTS"
echo "  gocryptfs: peak RSS $GC_HWM_MIB MiB, FUSE read_ahead_kb $GC_RA_KB"
echo "  machine: $(nproc) CPUs, 1-min load average $LOAD_START at start, $LOAD_END at end"

check() { # name value op target verdict
  printf '{"name":"%s","value":%s,"op":"%s","target":%s,"pass":%s}' "$1" "$2" "$3" "$4" "$(json_bool "$5")"
}
JSON=$(
  printf '{"benchmark":"decryptfs","run_id":"%s",' "$RUN_ID"
  printf '"host":{"kernel":"%s","cpus":%s,"fs_type":"%s","device":"%s","loadavg_1m_start":%s,"loadavg_1m_end":%s},' \
    "$(uname -r)" "$(nproc)" "$FS_TYPE" "$FS_SOURCE" "$LOAD_START" "$LOAD_END"
  printf '"params":{"size_mib":%s,"runtime_s":%s,"repeat":%s,"encrypt_runs":%s,"evict_interval_s":%s},' \
    "$SIZE_MIB" "$RUNTIME_S" "$REPEAT" "$ENCRYPT_RUNS" "$EVICT_INTERVAL_S"
  printf '"seq_read_mbps":%s,' "$(json3 mbps_of seq_)"
  printf '"rand4k_1job_iops":%s,' "$(json3 iops_of rand1_)"
  printf '"rand4k_4jobs_iops":%s,' "$(json3 iops_of rand4_)"
  printf '"encrypt_mbps":%s,' "$ENC_MBPS"
  printf '"decryptfs_peak_rss_mib":%s,' "$CCE_HWM_MIB"
  printf '"checks":[%s,%s,%s,%s,%s],' \
    "$(check seq_read_cce_over_gocryptfs "$RATIO_SEQ" ">=" "$TARGET_SEQ" "$V_SEQ")" \
    "$(check rand4k_1job_cce_over_gocryptfs "$RATIO_RAND1" ">=" "$TARGET_RAND1" "$V_RAND1")" \
    "$(check rand4k_4jobs_cce_over_gocryptfs "$RATIO_RAND4" ">=" "$TARGET_RAND4" "$V_RAND4")" \
    "$(check encrypt_mbps "$ENC_MBPS" ">=" "$TARGET_ENCRYPT_MBPS" "$V_ENC")" \
    "$(check decryptfs_peak_rss_mib "$CCE_HWM_MIB" "<=" "$TARGET_RSS_MIB" "$V_RSS")"
  printf '"samples":{"seq_read_mbps":%s,"rand4k_1job_iops":%s,"rand4k_4jobs_iops":%s},' \
    "$(json3 mbps_samples seq_)" "$(json3 iops_samples rand1_)" "$(json3 iops_samples rand4_)"
  printf '"diagnostics":{'
  printf '"disk_bytes_per_plaintext_byte_seq":%s,' "$(json3 seq_amp seq_)"
  printf '"disk_kib_per_4k_read":{"rand1":%s,"rand4":%s},' "$(json3 rand_kib rand1_)" "$(json3 rand_kib rand4_)"
  printf '"daemon_cpu_ms_per_mib_seq":%s,' "$(json2 cpu_ms_per_mib seq_)"
  printf '"daemon_cpu_us_per_4k_read":{"rand1":%s,"rand4":%s},' "$(json2 cpu_us_per_read rand1_)" "$(json2 cpu_us_per_read rand4_)"
  printf '"encrypt":{"mean_s":%s,"min_s":%s,"max_s":%s,"user_s":%s,"sys_s":%s,"peak_rss_mib":%s},' \
    "$ENC_MEAN" "$ENC_MIN" "$ENC_MAX" "$ENC_USER" "$ENC_SYS" "$ENC_RSS_MIB"
  printf '"gocryptfs_peak_rss_mib":%s,"decryptfs_threads":%s,' "$GC_HWM_MIB" "$CCE_THREADS"
  printf '"fuse_read_ahead_kb":{"cce":%s,"gocryptfs":%s},"decryptfs_mount_options":"%s"}}' \
    "$CCE_RA_KB" "$GC_RA_KB" "$CCE_MOUNT_OPTS"
)
echo "$JSON" >"$LOG_DIR/results.json"
cp "$LOG_DIR/results.json" "$RESULTS_DIR/latest.json"
echo "results: $RESULTS_DIR/latest.json (logs: $LOG_DIR)" >&2
echo "$JSON"
