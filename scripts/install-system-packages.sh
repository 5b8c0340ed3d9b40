#!/usr/bin/env bash
# System packages Swiftlet needs on Debian/Ubuntu (run as root or with sudo available).
#   python3        the Python runtime of lambdas (the system interpreter at /usr/bin/python3)
#   zlib1g-dev     gzip for registry uploads (.tar.gz)
#   libsqlite3-dev benchmark results (GRDB over the system SQLite)
#   gnuplot-nox    plots
#   wrk, nginx     the throughput benchmarks' reference client and server
set -euo pipefail
packages=(python3 zlib1g-dev libsqlite3-dev gnuplot-nox wrk nginx procps iproute2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
