# shellcheck shell=sh
# Sourced (POSIX sh) by the client tests' setup scripts: tests/clients/setup.sh (containerd),
# tests/clients/podman/setup.sh and tests/clients/docker/setup.sh. Run as root on Debian 12
# (bookworm).

export DEBIAN_FRONTEND=noninteractive
apt_updated=""

# apt_update: `apt-get update`, once per script.
apt_update() {
    [ -n "$apt_updated" ] && return 0
    apt-get update
    apt_updated=1
}

# need_packages PACKAGE...: installs those of the packages that are not installed yet
# (--no-install-recommends); does nothing, and asks no mirror, when all are.
need_packages() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    apt_update
    # shellcheck disable=SC2086 # one word a package
    apt-get install -y --no-install-recommends $missing
}
