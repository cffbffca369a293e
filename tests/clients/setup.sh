#!/bin/sh
# Installs what crates/runtime/tests/client_containerd.rs needs (see tests/clients/containerd.md).
# Idempotent; run as root on Debian 12 (bookworm):
#   containerd      containerd 1.6 (the daemon, `ctr`, and containerd-shim-runc-v2)
#   busybox-static  the static /bin/busybox the test images are built from
#   tar, coreutils  the image layer (tar) and digests (sha256sum); essential, listed for clarity
#   runc            a dependency of containerd; the tests check that it is NOT what the shim runs
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
need_packages containerd busybox-static tar coreutils
# Debian's package also starts the system containerd.service (socket /run/containerd/containerd.sock).
# The tests never use it: they run a private daemon with its own socket, root and state dirs.
containerd --version
ctr --version
