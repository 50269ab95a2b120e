#!/usr/bin/env bash
# NVIDIA's published DGX H100 pre-training throughput (workloads/reference/nemo-h100.csv: NeMo 24.07 / 25.02 and
# Megatron-Bridge 25.11 / 26.04 rows) and Llama 3 405B's (workloads/reference/llama3-h100.csv: Dubey et al. 2024,
# Table 4), simulated on dgx-h100 by the sweeps workloads/sweeps/nemo-h100.yaml and llama3-405b-h100.yaml (the same
# runs `clustersim validate` compares as figures nemo-h100 and llama3-405b). Prints every published row: published,
# simulated, error, or why it is not run; then checks each page's "Model TFLOP / sec / GPU" basis by recomputing
# FLOPs per token from the shapes (TFLOP/s / tokens/s, against the full-square and the causal-halved attention count).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CLUSTERSIM_BIN:-target/release/clustersim}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" sweep workloads/sweeps/nemo-h100.yaml --out "$out" > /dev/null
"$bin" sweep workloads/sweeps/llama3-405b-h100.yaml --out "$out" > /dev/null
python3 - "$out" <<'PY'
import csv, sys, os
out = sys.argv[1]

def table(path):
    with open(path) as f:
        return list(csv.DictReader(l for l in f if not l.startswith("#") and l.strip()))

def find(sim, ref, keys):
    for r in sim:
        if all(float(r[k]) == float(ref[c]) for k, c in keys):
            return r
    return None

keys = [("workload.model.layers", "layers"), ("workload.model.hidden", "hidden"), ("workload.parallel.tensor", "tensor"),
        ("workload.parallel.pipeline", "pipeline"), ("workload.parallel.data", "data"), ("workload.batch.global", "global_batch"),
        ("workload.batch.micro", "microbatch"), ("workload.model.seq_len", "seq_len")]
sim = table(os.path.join(out, "nemo-h100.csv"))
errs = []
print("model,release,gpus,precision,t,p,cp,vp,gbs,mbs,published_tok_s_gpu,simulated_tok_s_gpu,error")
for ref in table("workloads/reference/nemo-h100.csv"):
    head = f"{ref['model']},{ref['release']},{ref['gpus']},{ref['precision']},{ref['tensor']},{ref['pipeline']},{ref['cp']},{ref['vp']},{ref['global_batch']},{ref['microbatch']},{ref['tokens_per_s_per_gpu']}"
    if ref["run"] != "yes":
        print(f"{head},not run,{ref['run']}")
        continue
    r = find(sim, ref, keys)
    if r is None or not r["tokens_per_s"]:
        print(f"{head},failed,{r['error'] if r else 'no such point'}")
        continue
    s = float(r["tokens_per_s"]) / float(ref["gpus"])
    e = (s / float(ref["tokens_per_s_per_gpu"]) - 1) * 100
    errs.append(abs(e))
    print(f"{head},{s:.0f},{e:+.1f}%")
print(f"mean absolute error {sum(errs) / len(errs):.1f}% over {len(errs)} rows")

sim = table(os.path.join(out, "llama3-405b.csv"))
lkeys = [("workload.parallel.data", "data")]
print("\nllama3-405b,gpus,t,p,cp,d,published_mfu,published_tflops,simulated_mfu,simulated_model_tflops,error")
for ref in table("workloads/reference/llama3-h100.csv"):
    head = f"405B,{ref['gpus']},{ref['tensor']},{ref['pipeline']},{ref['cp']},{ref['data']},{ref['mfu']},{ref['tflops_per_gpu']}"
    r = find(sim, ref, lkeys) if ref["run"] == "yes" else None
    if r is None or not r["mfu"]:
        print(f"{head},not run,,{ref['run'] if ref['run'] != 'yes' else (r['error'] if r else 'no such point')}")
        continue
    m = float(r["mfu"])
    print(f"{head},{m:.3f},{m * 989.4:.0f},{(m / float(ref['mfu']) - 1) * 100:+.1f}%")

# The FLOP basis of each page, reproduced: FLOPs per token = 6 x (matrix weights + output layer) + attention, the
# attention term 12 l s h (whole square) or 6 l s h (causal half); shapes as the sweep runs them.
shapes = {"GPT3-5B": (24, 4096, 32, 32, 16384, 2, 51200), "GPT3-20B": (44, 6144, 48, 48, 24576, 2, 51200),
          "GPT3-175B": (96, 12288, 96, 96, 49152, 2, 51200), "LLAMA2-7B": (32, 4096, 32, 32, 11008, 3, 32000),
          "LLAMA2-13B": (40, 5120, 40, 40, 13824, 3, 32000), "LLAMA2-70B": (80, 8192, 64, 8, 28672, 3, 32000),
          "Nemotron-8B": (32, 4096, 32, 32, 16384, 2, 256000), "Nemotron-22B": (40, 6144, 48, 48, 24576, 2, 256000),
          "Nemotron-340B": (96, 18432, 96, 8, 73728, 2, 256000), "LLAMA3-8B": (32, 4096, 32, 8, 14336, 3, 128256),
          "LLAMA3-70B": (80, 8192, 64, 8, 28672, 3, 128256), "LLAMA3.1-405B": (126, 16384, 128, 8, 53248, 3, 128256)}
print("\nmodel,release,implied_gflop_per_token,full_square,causal_half,stated_basis")
for ref in table("workloads/reference/nemo-h100.csv"):
    l, h, a, kv, f, mats, v = shapes[ref["model"]]
    s = float(ref["seq_len"])
    linear = 6 * (l * (2 * h * h + 2 * h * h * kv / a + mats * h * f) + h * v)
    implied = float(ref["tflops_per_gpu"]) * 1e12 / float(ref["tokens_per_s_per_gpu"])
    full, causal = linear + 12 * l * s * h, linear + 6 * l * s * h
    pct = lambda x: f"{(x / implied - 1) * 100:+.2f}%"
    print(f"{ref['model']},{ref['release']},{implied / 1e9:.2f},{pct(full)},{pct(causal)},{ref['flop_basis']}")
PY
