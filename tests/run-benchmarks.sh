#!/bin/sh
# Runs the swim-sim matrix recorded in docs/BENCHMARKS.md; one JSON line per run on stdout.
# Usage: tests/run-benchmarks.sh [N...]   (default: 100 1000)
set -eu
[ -n "${SWIM_SIM:-}" ] || cargo build --release -p swim-tests --bin swim-sim >&2
sim=${SWIM_SIM:-target/release/swim-sim}
sizes=${*:-100 1000}
for n in $sizes; do
  for impl in swim foca; do
    for scenario in join update partition churn; do
      $sim $scenario --nodes "$n" --seed 1 --impl $impl --json | tail -1
    done
    for seed in 1 2 3 4 5 6 7 8 9 10; do
      $sim detect --nodes "$n" --seed $seed --impl $impl --json | tail -1
    done
    $sim loss --nodes "$n" --seed 1 --loss 0.05 --impl $impl --json | tail -1
  done
done
