#!/usr/bin/env bash
# The test command: everything on this host, then the cgroup tests on a pure cgroup v2 kernel.
# Needs root and the Debian packages .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked --workspace

# The cgroup-dependent suites again, inside a VM whose only hierarchy is cgroup v2 (this
# host may well be v1 or hybrid). They drive the binaries at their absolute paths, which
# tests/vm/run.sh reproduces inside the VM (util-linux's setpriv too: busybox's lacks
# --bounding-set).
for suite in rocker:limits rocker:errors rocker:security rocker-runtime:lifecycle; do
  package=${suite%%:*} name=${suite#*:}
  bin=$(cargo test --locked -p "$package" --test "$name" --no-run 2>&1 \
    | sed -n "s#.*Executable tests/$name.rs (\(.*\))#\1#p")
  [ -x "$bin" ] || { echo "scripts/test.sh: no test binary for $suite" >&2; exit 1; }
  echo "== $suite on cgroup v2 (qemu) =="
  ROCKER_VM_ENV="RUST_BACKTRACE" RUST_BACKTRACE=1 \
    tests/vm/run.sh --mem 1G --file "$PWD/target/debug/rocker" --file "$PWD/target/debug/rocker-runtime" \
    --file "$(command -v setpriv)" \
    -- "$PWD/$bin" --test-threads=1
done
