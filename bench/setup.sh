#!/usr/bin/env bash
# Installs what bench/lifecycle.sh and bench/pull.sh need (Debian 12). Run as root.
set -euo pipefail
apt-get update
apt-get install -y hyperfine runc crun time busybox-static python3 podman skopeo umoci docker-registry
