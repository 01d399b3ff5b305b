#!/usr/bin/env bash
# ctest gate_corpus: generates the corpus into the build tree, checks CASES.md
# is current, and runs every case through `cce gate scan`.
set -euo pipefail
SRC="$1"; BIN="$2"; OUT="$3"
PY=/usr/bin/python3
for m in numpy pandas matplotlib PIL openpyxl; do
  "$PY" -c "import $m" 2>/dev/null || { echo "gate_corpus: $PY lacks module $m (make deps installs it)" >&2; exit 1; }
done
listed=$(tail -n +5 "$SRC/tests/gate-corpus/CASES.md")
if [ "$listed" != "$("$PY" "$SRC/tests/gate-corpus/generate.py" --list)" ]; then
  echo "gate_corpus: tests/gate-corpus/CASES.md is stale: regenerate it (see its header)" >&2
  exit 1
fi
rm -rf "$OUT"
MPLCONFIGDIR="$OUT.mpl" "$PY" "$SRC/tests/gate-corpus/generate.py" "$OUT"
exec "$PY" "$SRC/tests/gate-corpus/run_corpus.py" --cce "$BIN/cce" --corpus "$OUT" --json "$OUT/figures.json"
