#!/bin/sh
# Installs what crates/runtime/tests/client_podman.rs needs. Idempotent; run as root on
# Debian 12 (bookworm). --no-install-recommends keeps out buildah, dbus-user-session,
# fuse-overlayfs, slirp4netns, uidmap and netavark, none of which the test uses.
#   podman          podman 4.3 (pulls conmon, containers-common, containernetworking-plugins,
#                   iptables; crun is already a dependency of podman; no service is started)
#   busybox-static  the static /bin/busybox the test image is built from
#   bsdutils        script(1): a real terminal for the `-t` scenario
#   tar             the image tarball given to `podman import`
# `apt-get -s install --no-install-recommends podman` on bookworm installs only the packages
# above (plus security updates of login/passwd) and removes nothing.
set -eu
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_packages podman conmon busybox-static bsdutils tar
podman --version
conmon --version | head -n 1
