#!/usr/bin/env bash
# `make test`'s fuzz step (docs/fuzzing.md): builds every libFuzzer target in
# build-fuzz/ (clang + ASan + UBSan, only what the targets link), replays each
# target's seed corpus and fuzzes it for FUZZ_SMOKE_SECONDS (default 5). Fails if a
# target crashes or breaks an invariant, and fails (never skips) without clang.
exec "$(dirname "$0")/fuzz.sh" --smoke "$@"
