#!/usr/bin/env bash
# Installs what the test suite starts for itself: Debian's redis-server, the
# PostgreSQL 15 binaries, Chromium (for the dashboard's browser test), and
# Podman (with runc and a static busybox, for the docker driver's engine and
# its local image). Idempotent: installs only what is missing, with one
# apt-get update; needs root (or sudo) only then.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# redis-cli joins the test Redis Cluster (`--cluster create`).
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v podman >/dev/null 2>&1 || need+=(podman)
# crun fails on hybrid cgroups; runc works.
command -v runc >/dev/null 2>&1 || need+=(runc)
# /bin/busybox and its applets become the test image `local/tiny` (nothing is
# pulled); it must be the static build, as the image has no libc.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" ||
  need+=(busybox-static)
# The dashboard test drives Debian's Chromium through Playwright (no download).
[ -x /usr/bin/chromium ] || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]} from Debian"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
