#!/usr/bin/env bash
# The release build: static-pie binaries (glibc and libseccomp linked in). A runtime starts a
# process per container operation, and a dynamic Rust binary spends ~0.4 ms of each in the
# loader and ~1 MiB of RSS on shared libraries (bench/README.md has the figures). Static-pie
# keeps ASLR. Prints the directory holding the binaries. Arguments go to cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
target=$(rustc -vV | sed -n 's/^host: //p')
flags="-C target-feature=+crt-static"
# Relative relocations packed (DT_RELR): a static-pie relocates itself at every start, and
# ~10,000 24-byte RELA entries (240 KiB) become a 3 KiB bitmap; `run` 4-5% faster
# (bench/README.md). The static glibc applies them from 2.36 on; older ones would not.
if printf '%s\n' 2.36 "$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)" | sort -CV; then
    flags+=" -C link-arg=-Wl,-z,pack-relative-relocs"
fi
# --target keeps the flags off build scripts and proc-macros, which cannot be static.
RUSTFLAGS="${RUSTFLAGS:-} $flags" \
  LIBSECCOMP_LINK_TYPE=static LIBSECCOMP_LIB_PATH="/usr/lib/$(gcc -print-multiarch)" \
  cargo build --quiet --release --locked --target "$target" "$@"
echo "$PWD/target/$target/release"
