#!/bin/sh
# Installs what the real-client integration tests need (crates/runtime/tests/client_*.rs).
# Idempotent; run as root on Debian 12 (bookworm):
#   containerd      containerd 1.6 (the daemon, `ctr`, and containerd-shim-runc-v2)
#   busybox-static  the static /bin/busybox the test images are built from
#   tar, coreutils  the image layer (tar) and digests (sha256sum); essential, listed for clarity
#   runc            pulled in by containerd (Depends); the tests check it is NOT the one called
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
