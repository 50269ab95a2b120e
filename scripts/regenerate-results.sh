#!/usr/bin/env bash
# Regenerates every file under results/ with the commands that make them (README's figures and tables).
# usage: scripts/regenerate-results.sh   (from anywhere; builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
bin=target/release/clustersim
$bin run --out results/gpt-5.9b > /dev/null
$bin collective --gpus 8 --sizes 8:8GiB --out results/collective/all-reduce-8 > /dev/null
$bin collective --gpus 64 --sizes 8:8GiB --out results/collective/all-reduce-64 > /dev/null
$bin collective --gpus 64 --sizes 8:8GiB --set hardware.network.algorithm=ring --out results/collective/all-reduce-64-ring > /dev/null
$bin collective --op all-gather --gpus 8 --sizes 8:8GiB --out results/collective/all-gather-8 > /dev/null
$bin collective --op reduce-scatter --gpus 8 --sizes 8:8GiB --out results/collective/reduce-scatter-8 > /dev/null
$bin plan --workload gpt-175b --gpus 1024 --tokens 300e9 --out results/plan-gpt-175b-1024 > /dev/null
$bin train --workload gpt-175b --tokens 300e9 --out results/train-gpt-175b > /dev/null
for spec in workloads/sweeps/whatif-*.yaml; do
    $bin sweep "$spec" > /dev/null
done
for spec in workloads/clusters/*.yaml; do
    $bin cluster "$spec" --out "results/clusters/$(basename "$spec" .yaml)" > /dev/null
done
$bin validate --out results/megatron
