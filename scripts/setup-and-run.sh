#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine with Swift 6: install system packages, build a release binary,
# and run the main job: the elasticity experiment (100 clients x 200 ms spin x 60 s) on the real platform and on
# the modeled container autoscaler, ending in a comparison table, rows in Results/results.sqlite and plots.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-system-packages.sh
swift build -c release --product swiftlet
exec .build/release/swiftlet bench elasticity "$@"
