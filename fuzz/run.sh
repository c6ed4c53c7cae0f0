#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a fixed time on the committed corpus, one after another.
#   fuzz/run.sh [seconds per target, default 30] [target...]
# New inputs go to a scratch corpus, so the committed one is only read; a crash (or a leak, timeout
# or out-of-memory) leaves its input in fuzz/artifacts/<target>/ and fails the run. Output goes to
# fuzz/target/run-<target>.log; the terminal gets one line per target (the log's tail on failure).
# Stable Rust is enough: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags. No sanitizer (the
# library's one unsafe block, a setsockopt on a live socket, is out of the targets' reach); debug
# assertions and overflow checks are on.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(pgoutput binlog_events binlog_rows mysql_json spill_read)

mkdir -p target
RUSTC_BOOTSTRAP=1 cargo fuzz build -s none -a >target/build.log 2>&1 || {
  tail -n 40 target/build.log >&2
  echo "fuzz: build failed" >&2
  exit 1
}
for t in "${targets[@]}"; do
  scratch="target/corpus-$t"
  rm -rf "$scratch"
  mkdir -p "$scratch" "artifacts/$t" "corpus/$t"
  log="target/run-$t.log"
  if RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a "$t" "$scratch" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    echo "fuzz $t: ${secs}s, ${runs:-?} executions, no crash"
  else
    tail -n 60 "$log" >&2
    echo "fuzz $t: FAILED; the input is in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
