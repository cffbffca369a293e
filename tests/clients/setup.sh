#!/bin/sh
# Installs what crates/runtime/tests/client_containerd.rs needs (see tests/clients/containerd.md).
# Idempotent; run as root on Debian 12 (bookworm):
#   containerd      containerd 1.6 (the daemon, `ctr`, and containerd-shim-runc-v2)
#   busybox-static  the static /bin/busybox the test images are built from
#   tar, coreutils  the image layer (tar) and digests (sha256sum); essential, listed for clarity
#   runc            a dependency of containerd; the tests check that it is NOT what the shim runs
set -eu
packages="containerd busybox-static tar coreutils"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi
# Debian's package also starts the system containerd.service (socket /run/containerd/containerd.sock).
# The tests never use it: they run a private daemon with its own socket, root and state dirs.
containerd --version
ctr --version
