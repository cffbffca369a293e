#!/usr/bin/env bash
# The release build: static-pie binaries (glibc and libseccomp linked in). A runtime starts a
# process per container operation, and a dynamic Rust binary spends ~0.4 ms of each in the
# loader and ~1 MiB of RSS on shared libraries (bench/README.md has the figures). Static-pie
# keeps ASLR. Prints the directory holding the binaries. Arguments go to cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps the flags off build scripts and proc-macros, which cannot be static.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="/usr/lib/$(gcc -print-multiarch)" \
  cargo build --quiet --release --locked --target "$target" "$@"
echo "$PWD/target/$target/release"
