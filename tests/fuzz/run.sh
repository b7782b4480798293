#!/usr/bin/env bash
# Builds the libFuzzer targets (clang 14, ASan + UBSan; the `fuzz` preset's
# settings) and fuzzes each one for a bounded time. Any crash, leak, timeout
# or broken invariant fails the run (exit 1), naming the saved input and the
# command that replays it.
#
#   tests/fuzz/run.sh [TARGET...]      default: every target
#
# Targets: pop3_session proxy sasl dot_stuffer (tests/fuzz/*_fuzz.cc).
#
# Environment:
#   POPGATE_FUZZ_SECONDS    fuzzing time per target, seconds (default 60)
#   POPGATE_FUZZ_BUILD_DIR  build directory (default build-fuzz in the checkout)
#   POPGATE_FUZZ_WORK_DIR   where new inputs and crash files go (default
#                           $POPGATE_FUZZ_BUILD_DIR/fuzz-runs); the committed
#                           corpora in tests/fuzz/corpus/ are only read
#
# A crash input is kept as <work dir>/<target>/crash-<sha1>. Replay it with
#   build-fuzz/tests/fuzz/fuzz_<target> <file>
# (or fuzz_<target>_replay <file> in a g++ build). Once the bug is fixed, copy
# the file into tests/fuzz/corpus/<target>/ so every build replays it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
all_targets=(pop3_session proxy sasl dot_stuffer)
seconds=${POPGATE_FUZZ_SECONDS:-60}
dir=${POPGATE_FUZZ_BUILD_DIR:-$repo/build-fuzz}
case $dir in /*) ;; *) dir=$repo/$dir ;; esac
work=${POPGATE_FUZZ_WORK_DIR:-$dir/fuzz-runs}

# Per input: 25 s before libFuzzer calls it a hang, 2 GiB before it calls it
# a memory blow-up. Every target handles one input in milliseconds.
readonly kInputTimeoutSeconds=25
readonly kRssLimitMb=2048

say() { printf 'fuzz: %s\n' "$*" >&2; }

[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] ||
  { say "POPGATE_FUZZ_SECONDS must be a positive number of seconds"; exit 2; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -d "$repo/tests/fuzz/corpus/$t" ] || { say "unknown target '$t' (${all_targets[*]})"; exit 2; }
done
command -v clang++-14 >/dev/null ||
  { say "clang++-14 not found: apt-get install clang-14 libclang-rt-14-dev"; exit 2; }

if [ ! -f "$dir/CMakeCache.txt" ]; then
  # What CMakePresets.json's `fuzz` preset sets, for any build directory.
  cmake -S "$repo" -B "$dir" -G Ninja \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g" \
    -DPOPGATE_WERROR=ON -DPOPGATE_SANITIZE=address,undefined -DPOPGATE_FUZZ=ON \
    -DPOPGATE_BUILD_BENCH=OFF >/dev/null
fi
cmake --build "$dir" --target popgate_fuzzers

failed=()
for t in "${targets[@]}"; do
  bin="$dir/tests/fuzz/fuzz_$t"
  out="$work/$t"
  mkdir -p "$out/corpus"
  dict=()
  [ -f "$repo/tests/fuzz/$t.dict" ] && dict=(-dict="$repo/tests/fuzz/$t.dict")
  say "$t: ${seconds} s"
  # New inputs go to $out/corpus (first directory); the seeds are read only.
  if ! "$bin" -max_total_time="$seconds" -timeout="$kInputTimeoutSeconds" \
      -rss_limit_mb="$kRssLimitMb" -print_final_stats=1 -artifact_prefix="$out/" \
      "${dict[@]}" "$out/corpus" "$repo/tests/fuzz/corpus/$t" >"$out/log" 2>&1; then
    failed+=("$t")
    tail -n 60 "$out/log" >&2
    say "$t FAILED; input(s) kept:"
    find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
      -o -name 'oom-*' \) -printf '  %p\n' >&2
    say "replay: $bin <file>"
    continue
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$out/log" |
    sed "s/^/fuzz: $t: /" >&2 || true
  say "$t: no crash"
done

if [ ${#failed[@]} -gt 0 ]; then
  say "failed: ${failed[*]} (logs under $work)"
  exit 1
fi
say "${#targets[@]} passed, 0 failed"
