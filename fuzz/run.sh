#!/usr/bin/env bash
# Fuzzes every target for SECONDS each (default 600): the YAML loader and
# validator, the plan-file reader, the plugin JSON boundary and the
# condition compiler. A crash input is kept in fuzz/artifacts/TARGET/;
# copy it to fuzz/regressions/TARGET/ so `cargo test` replays it forever
# (runner/tests/fuzz_regressions.rs).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). This machine's toolchain
# is stable, so the nightly-only flags are unlocked with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
export RUSTC_BOOTSTRAP=1
for target in yaml plan_file plugin_json condition; do
  mkdir -p "corpus/$target"
  # Seed each corpus with the regression inputs and the shipped examples.
  cp -n regressions/"$target"/* "corpus/$target/" 2>/dev/null || true
  case "$target" in
    yaml) cp -n ../jobs/*.yaml ../jobs/*/*.yaml ../connectors/systems/*.yaml "corpus/$target/" 2>/dev/null || true ;;
  esac
  echo "== $target for ${seconds}s"
  cargo fuzz run "$target" --sanitizer none -- -max_total_time="$seconds" -max_len=65536 2>&1 | tail -n 5
done
