#!/usr/bin/env bash
# Megatron-Core r0.8.0's published H100 weak-scaling table (../shared/reference/megatron-core-h100-scaling.csv,
# copied below) simulated on dgx-h100 with the stated splits, microbatch 1, no recompute, and the software profile
# `megatron-core-2024` (src/config/profiles.rs: cuDNN fused attention, sequence parallelism with its collectives
# overlapped, the distributed optimizer with fp32 gradients, fused accumulation, overlapped gradient reduce and
# parameter gather; with t = 1 the sequence-parallel switches change nothing), representative runs. Prints the
# simulated MFU beside the published one.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CLUSTERSIM_BIN:-target/release/clustersim}
# case, layers, hidden, heads, vocab, seq, gpus, t, p, d, batch, published MFU
rows="meg-weak-1.7B 24 2048 16 131072 4096 48 1 1 48 192 0.41
meg-weak-7.1B 30 4096 32 131072 4096 96 2 1 48 192 0.47
meg-weak-16B 32 6144 48 131072 4096 192 4 1 48 192 0.49
meg-weak-32B 48 7168 56 131072 4096 384 8 1 48 192 0.46
meg-weak-70B 84 8192 64 131072 4096 768 8 2 48 384 0.42
meg-weak-119B 92 10240 80 131072 4096 1536 8 4 48 768 0.43
meg-weak-177B 96 12288 96 131072 4096 2304 8 6 48 1152 0.44
meg-weak-314B 96 16384 128 131072 4096 3072 8 8 48 1536 0.48
meg-weak-462B 112 18432 144 131072 4096 6144 8 16 48 3072 0.47"
echo "case,gpus,published_mfu,simulated_mfu,error"
while read -r name l h a v s g t p d b mfu; do
  nodes=$(( g / 8 > 8 ? g / 8 : 8 ))
  sim=$("$bin" run --hardware dgx-h100 --no-output --representative --format json \
    --set "hardware.nodes=$nodes" --set "workload.model.layers=$l" --set "workload.model.hidden=$h" \
    --set "workload.model.heads=$a" --set "workload.model.vocab=$v" --set "workload.model.seq_len=$s" \
    --set "workload.parallel.tensor=$t" --set "workload.parallel.pipeline=$p" --set "workload.parallel.data=$d" \
    --set "workload.batch.global=$b" --set workload.batch.micro=1 --set workload.recompute=none \
    --set workload.software=megatron-core-2024 --set "workload.gpus=~" | python3 -c 'import sys, json; print(json.load(sys.stdin)["mfu"])')
  python3 -c "print(f'$name,$g,$mfu,{$sim:.3f},{($sim / $mfu - 1) * 100:+.1f}%')"
done <<< "$rows"
