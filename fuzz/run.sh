#!/usr/bin/env bash
# Fuzz every target for SECONDS each (default 60): seeds from fuzz/corpus/<target>, new inputs
# into target/fuzz-corpus/<target> (not committed). Needs cargo-fuzz (`cargo install
# cargo-fuzz`); RUSTC_BOOTSTRAP lets its sanitizer flags build on a stable toolchain. Exits
# non-zero on the first crash (libFuzzer saves the input under fuzz/artifacts/). Optimised
# (-O) with debug assertions and overflow checks on (-a), so an arithmetic overflow on a
# file-supplied size is a crash here, not a silent wrap.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
targets="${FUZZ_TARGETS:-load_graph load_graph_resealed texmex open_mapped load_segments facade}"
for t in $targets; do
  mkdir -p "../target/fuzz-corpus/$t"
  echo "==> $t for $secs s"
  cargo fuzz run -O -a "$t" "../target/fuzz-corpus/$t" "corpus/$t" -- -max_total_time="$secs" -max_len=8192 \
    > "../target/fuzz-corpus/$t.log" 2>&1 || { tail -40 "../target/fuzz-corpus/$t.log"; exit 1; }
  grep -E "^Done" "../target/fuzz-corpus/$t.log"
done
