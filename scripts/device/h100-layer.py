#!/usr/bin/env python3
"""One GPT layer and one output layer, forward and backward, timed on a lent H100 (PyTorch eager).

A check one level above the kernel microbenchmarks (h100-microbench.py): a plain PyTorch GPT layer
(LayerNorm, QKV, cuDNN causal attention, projection, residual, LayerNorm, MLP with tanh GeLU,
residual; bf16, batch 1, no dropout, no tensor parallelism) and the output layer with its fp32 cross
entropy, as Megatron-Core runs them at t = 1 (without Transformer Engine's fused LayerNorm-Linear).
Reports wall time per layer forward and forward+backward (eager, back to back), and the GPU-busy time
of the same step from the profiler, so that host-bound steps show.
Writes $OUT/h100-layer.csv (case,hidden,seq,vocab,metric,value).
"""
import os
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
CSV = open(os.path.join(OUT, "h100-layer.csv"), "w")
CSV.write("case,hidden,seq,vocab,metric,value\n")


def row(case, h, s, v, metric, value):
    CSV.write(f"{case},{h},{s},{v},{metric},{value:.6g}\n")
    CSV.flush()
    print(f"{case:10s} h={h:<6} s={s:<5} V={v:<7} {metric:16s} {value:.4g}", flush=True)


class Layer(torch.nn.Module):
    def __init__(self, h, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = torch.nn.LayerNorm(h)
        self.qkv = torch.nn.Linear(h, 3 * h)
        self.proj = torch.nn.Linear(h, h)
        self.ln2 = torch.nn.LayerNorm(h)
        self.fc1 = torch.nn.Linear(h, 4 * h)
        self.fc2 = torch.nn.Linear(4 * h, h)

    def forward(self, x):  # x: [s, b, h] as Megatron lays it out
        s, b, h = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(s, b, self.heads, 3 * h // self.heads).chunk(3, dim=-1)
        q, k, v = (t.permute(1, 2, 0, 3) for t in (q, k, v))
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(o.permute(2, 0, 1, 3).reshape(s, b, h))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


def timed(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / reps
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        gpu = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
        busy = sum(e.self_device_time_total for e in gpu) * 1e-6
        kernels = sum(e.count for e in gpu)
    except Exception as exc:
        print(f"profiler: {exc!r}", flush=True)
        busy, kernels = -1e-3, -1
    return wall, busy, kernels


def layer_case(h, heads, s=4096, layers=4):
    stack = torch.nn.Sequential(*[Layer(h, heads) for _ in range(layers)]).cuda().to(torch.bfloat16)
    x = torch.randn(s, 1, h, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn_like(x)

    def forward():
        with torch.no_grad():
            stack(x)

    def step():
        stack(x).backward(g)

    for name, fn in (("fwd", forward), ("fwd_bwd", step)):
        wall, busy, kernels = timed(fn, 10)
        row("layer", h, s, 0, f"{name}_ms_per_layer", wall / layers * 1e3)
        row("layer", h, s, 0, f"{name}_gpu_ms_per_layer", busy / layers * 1e3)
        row("layer", h, s, 0, f"{name}_kernels_per_layer", kernels / layers)


def logits_case(h, v, s=4096):
    w = torch.randn(v, h, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    x = torch.randn(s, h, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    labels = torch.randint(0, v, (s,), device="cuda")

    def step():
        loss = F.cross_entropy((x @ w.t()).float(), labels)
        loss.backward()

    wall, busy, kernels = timed(step, 10)
    row("logits", h, s, v, "fwd_bwd_ms", wall * 1e3)
    row("logits", h, s, v, "fwd_bwd_gpu_ms", busy * 1e3)
    row("logits", h, s, v, "kernels", kernels)


if __name__ == "__main__":
    for h, heads in ((2048, 16), (4096, 32), (6144, 48)):
        try:
            layer_case(h, heads)
        except Exception as exc:
            print(f"layer h={h} failed: {exc!r}", flush=True)
    for h in (2048, 4096):
        try:
            logits_case(h, 131072)
        except Exception as exc:
            print(f"logits h={h} failed: {exc!r}", flush=True)
    print(open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0], os.cpu_count(), flush=True)
