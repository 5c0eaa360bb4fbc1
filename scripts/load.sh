#!/usr/bin/env bash
# The load benchmark (benches/load/README.md): builds the relay and the benchmark in
# release mode, then runs every system side by side and prints one table.
#
#   scripts/load.sh                 # 3 rounds × 10 s per case (about 5 minutes)
#   scripts/load.sh --quick         # 3 rounds × 3 s, to check that it runs
#   scripts/load.sh --help          # every option (rounds, duration, CPUs, --soak, …)
#
# Needs: taskset (util-linux), redis-server, and nginx (else a built-in sink is used).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p switchboard -p switchboard-load
exec target/release/switchboard-load run --relay target/release/switchboard "$@"
