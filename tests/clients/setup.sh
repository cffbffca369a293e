#!/bin/sh
# Installs what crates/runtime/tests/client_containerd.rs and client_cri.rs need (see
# tests/clients/containerd.md). Idempotent; run as root on Debian 12 (bookworm):
#   containerd         containerd 1.6 (the daemon with its CRI plugin, `ctr`, and
#                      containerd-shim-runc-v2)
#   busybox-static     the static /bin/busybox the test images are built from
#   tar, coreutils     the image layer (tar) and digests (sha256sum); essential, listed for clarity
#   protobuf-compiler  `protoc`, which the build script of the k8s-cri crate (client_cri.rs's
#                      CRI client, a dev-dependency of rocker-runtime) runs: without it no test
#                      of rocker-runtime builds
#   runc               a dependency of containerd; the tests check that it is NOT what the shim runs
#   containernetworking-plugins  the CNI plugins (bridge, host-local, loopback) client_cri.rs
#                      gives a pod its own network with
#   iproute2           `ip`: the test checks the host's routes and deletes its bridge
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
need_packages containerd busybox-static tar coreutils protobuf-compiler containernetworking-plugins iproute2
# Debian's package also starts the system containerd.service (socket /run/containerd/containerd.sock).
# The tests never use it: they run a private daemon with its own socket, root and state dirs.
containerd --version
ctr --version
protoc --version
test -x /usr/lib/cni/bridge && test -x /usr/lib/cni/host-local && test -x /usr/lib/cni/loopback
