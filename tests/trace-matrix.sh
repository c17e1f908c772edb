#!/bin/sh
# Runs a quick matrix of swim-sim scenarios (N = 100, a few at N = 1000) and prints one JSON
# line per run without the wall-clock keys, so that two builds can be compared with diff:
# a pure refactor must print the same lines (same results, same trace_digest).
# Usage: tests/trace-matrix.sh [SWIM_SIM_BINARY] > before.jsonl
set -eu
sim=${1:-target/release/swim-sim}
run() { nice -n 10 "$sim" "$@" --json | tail -1 | sed -E 's/"(wall_s|cpu_s|peak_rss_mib|phase_wall_s|phase_cpu_s)":[^,]*,//g'; }
for impl in swim foca foca-lan foca-newlan; do
  for scenario in join detect update partition churn stall; do
    run $scenario --nodes 100 --seed 1 --impl $impl
  done
  for seed in 2 3 4 5; do run detect --nodes 100 --seed $seed --impl $impl; done
  run loss --nodes 100 --duration 120 --impl $impl
  run loss --nodes 100 --duration 60 --loss 0.2 --impl $impl
  run stress --nodes 50 --duration 120 --impl $impl
  run stress --nodes 50 --duration 120 --impl $impl --lifeguard off
done
for scenario in join detect update partition; do run $scenario --nodes 1000 --seed 1; done
run loss --nodes 1000 --duration 60
