#!/usr/bin/env bash
# Checks that two clustersim binaries produce byte-identical outputs for every command whose results the
# repository keeps (results/), plus a trace export / run --trace round trip and the example traces.
# usage: scripts/same-output.sh OLD_BINARY NEW_BINARY [WORK_DIR]
# Prints one line per case ("same" or "DIFFERENT") and exits 1 if any case differs.
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2")
work=${3:-$(mktemp -d)}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

# One case: a name and a command line; {out} is replaced by the case's output folder.
cases=(
  "run-default|run --out {out} --timeline all"
  "run-json|run --format json --no-output"
  "run-interleaved|run --set workload.schedule=interleaved --set workload.parallel.interleave=2 --set workload.recompute=selective --out {out}"
  "collective-8|collective --gpus 8 --sizes 8:8GiB --out {out}"
  "collective-64|collective --gpus 64 --sizes 8:8GiB --out {out}"
  "collective-64-ring|collective --gpus 64 --sizes 8:8GiB --set hardware.network.algorithm=ring --out {out}"
  "collective-ops|collective --op reduce-scatter --gpus 16 --sizes 1KiB:1GiB --out {out}"
  "plan-175b|plan --workload gpt-175b --gpus 1024 --tokens 300e9 --out {out}"
  "train-175b|train --workload gpt-175b --tokens 300e9 --out {out}"
  "validate|validate --out {out}"
  "trace-export|trace export --set workload.parallel.tensor=2 --set workload.parallel.pipeline=4 --set workload.parallel.data=8 --set workload.schedule=interleaved --set workload.parallel.interleave=2 --out {out}/t.jsonl"
  "trace-moe|run --trace workloads/traces/moe-layer.yaml --out {out}"
  "trace-dlrm|run --trace workloads/traces/dlrm.yaml --out {out}"
  "trace-decode|run --trace workloads/traces/inference-decode.jsonl --out {out}"
)
failed=0
for c in "${cases[@]}"; do
  name=${c%%|*}; args=${c#*|}
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    out="$work/$side/$name"; rm -rf "$out"; mkdir -p "$out"
    # shellcheck disable=SC2086
    "$bin" ${args//\{out\}/$out} > "$out.stdout" 2>&1 || echo "exit $?" >> "$out.stdout"
  done
  # The round trip: the new binary runs the trace each side exported.
  if [ "$name" = trace-export ]; then
    for side in old new; do
      bin=$old; [ "$side" = new ] && bin=$new
      "$bin" run --trace "$work/$side/$name/t.jsonl" --out "$work/$side/$name/run" --timeline all > /dev/null
    done
  fi
  # stdout carries wall times; the JSON report case has none and is compared too.
  if diff -r "$work/old/$name" "$work/new/$name" > /dev/null && \
     { [ "$name" != run-json ] || cmp -s "$work/old/$name.stdout" "$work/new/$name.stdout"; }; then
    echo "same       $name ($(find "$work/new/$name" -type f | wc -l) files)"
  else
    echo "DIFFERENT  $name"; failed=1
  fi
done
# The sweeps the repository ships, each in its own folder.
for spec in workloads/sweeps/*.yaml; do
  name=sweep-$(basename "$spec" .yaml)
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    out="$work/$side/$name"; rm -rf "$out"; mkdir -p "$out"
    "$bin" sweep "$spec" --out "$out" > "$out.stdout" 2>&1
  done
  if diff -r "$work/old/$name" "$work/new/$name" > /dev/null; then
    echo "same       $name ($(find "$work/new/$name" -type f | wc -l) files)"
  else
    echo "DIFFERENT  $name"; failed=1
  fi
done
exit $failed
