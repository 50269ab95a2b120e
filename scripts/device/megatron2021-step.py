#!/usr/bin/env python3
"""Megatron-LM 2021's training step on one GPU, kernel by kernel, timed on a lent H100 (PyTorch eager).

Figure 7 of the SC'21 paper runs one A100 with a GPT of 4 layers, hidden 4096, 128 heads (head dim 32),
sequence 2048, vocab 51200, full activation recomputation, batch = microbatch 1..16. This script runs the
same step as Megatron-LM v2 (2021) wrote it, in fp16: unfused attention (baddbmm scores, masked softmax,
dropout 0.1 on the probabilities, bmm with V), bias-GeLU, bias-dropout-add, each layer checkpointed,
the tied output layer with the fp32 cross entropy, then the local DDP's flatten / divide / copy back and
the fp16 optimizer (fp32 main gradients, unscale with the inf check, L2 norm and clipping, Adam on fp32
master weights, copy back to fp16, zero the fp16 gradients). The point is the device level, not 2021's
A100: what each kernel class (GEMMs, batched attention GEMMs of head dim 32, softmax, dropout, LayerNorm,
optimizer passes) costs on a real GPU against the bytes it streams, to set beside clustersim's prediction of
the same kernels on the lent GPU's preset (README, "The A100's streaming rate").

Ran once on a lent H200 and once on a lent H100 (2026-11-28; workloads/reference/megatron2021-step-h200.csv and
-h100.csv, with the per-kernel rates
read from its printed kernel list). Run it with the device tool: `python3 scripts/device/megatron2021-step.py`
(about a minute on an H100 or H200).

Writes $OUT/megatron2021-step.csv (case,micro,metric,value): per iteration wall time, GPU-busy time and
the GPU time of each kernel class from the profiler.
"""
import math
import os
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
CSV = open(os.path.join(OUT, "megatron2021-step.csv"), "w")
CSV.write("case,micro,metric,value\n")
DT = torch.float16


def row(case, b, metric, value):
    CSV.write(f"{case},{b},{metric},{value:.6g}\n")
    CSV.flush()
    print(f"{case:8s} b={b:<3} {metric:28s} {value:.5g}", flush=True)


class Layer(torch.nn.Module):
    """Megatron-LM v2's ParallelTransformerLayer at t = 1 (fp16, [s, b, h] layout)."""

    def __init__(self, h, heads):
        super().__init__()
        self.h, self.heads = h, heads
        self.ln1 = torch.nn.LayerNorm(h)
        self.qkv = torch.nn.Linear(h, 3 * h)
        self.proj = torch.nn.Linear(h, h, bias=False)
        self.proj_bias = torch.nn.Parameter(torch.zeros(h))
        self.ln2 = torch.nn.LayerNorm(h)
        self.fc1 = torch.nn.Linear(h, 4 * h, bias=False)
        self.fc1_bias = torch.nn.Parameter(torch.zeros(4 * h))
        self.fc2 = torch.nn.Linear(4 * h, h, bias=False)
        self.fc2_bias = torch.nn.Parameter(torch.zeros(h))

    def attention(self, x):
        s, b, h = x.shape
        a, d = self.heads, h // self.heads
        q, k, v = self.qkv(x).view(s, b, a, 3 * d).split(d, dim=-1)
        q = q.reshape(s, b * a, d).transpose(0, 1)  # [b a, s, d]
        k = k.reshape(s, b * a, d).transpose(0, 1)
        v = v.reshape(s, b * a, d).transpose(0, 1)
        scores = torch.empty(b * a, s, s, dtype=x.dtype, device=x.device)
        scores = torch.baddbmm(scores, q, k.transpose(1, 2), beta=0.0, alpha=1.0 / math.sqrt(d))
        mask = torch.ones(s, s, dtype=torch.bool, device=x.device).triu_(1)
        probs = torch.softmax(scores.masked_fill_(mask, -10000.0), dim=-1)
        probs = F.dropout(probs, 0.1, self.training)
        ctx = torch.bmm(probs, v)  # [b a, s, d]
        return ctx.transpose(0, 1).reshape(s, b, h)

    def forward(self, x):
        y = self.attention(self.ln1(x))
        x = x + F.dropout(self.proj(y) + self.proj_bias, 0.1, self.training)
        z = F.gelu(self.fc1(self.ln2(x)) + self.fc1_bias, approximate="tanh")
        return x + F.dropout(self.fc2(z) + self.fc2_bias, 0.1, self.training)


class Gpt(torch.nn.Module):
    def __init__(self, layers, h, heads, s, vocab):
        super().__init__()
        self.word = torch.nn.Embedding(vocab, h)
        self.pos = torch.nn.Embedding(s, h)
        self.layers = torch.nn.ModuleList(Layer(h, heads) for _ in range(layers))
        self.ln = torch.nn.LayerNorm(h)

    def forward(self, tokens, labels):
        b, s = tokens.shape
        x = self.word(tokens) + self.pos(torch.arange(s, device=tokens.device))
        x = F.dropout(x.transpose(0, 1).contiguous(), 0.1, self.training)
        for layer in self.layers:
            x = checkpoint(layer, x, use_reentrant=False)
        logits = F.linear(self.ln(x), self.word.weight)  # tied output layer, [s, b, V] fp16
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), labels.t().reshape(-1))


def optimizer_step(model_params, main_params, adam, scale):
    """Megatron-LM v2's local DDP (one replica) and FP16OptimizerWithFP16Params.step()."""
    grads = [p.grad for p in model_params]
    flat = torch._utils._flatten_dense_tensors(grads)  # local DDP: flatten, divide, (all-reduce), copy back
    flat.div_(1.0)
    for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
        g.copy_(synced)
    for m, p in zip(main_params, model_params):  # _copy_model_grads_to_main_grads
        m.grad = p.grad.float()
    main_grads = [m.grad for m in main_params]
    found_inf = torch.zeros(1, device="cuda")
    torch._amp_foreach_non_finite_check_and_unscale_(main_grads, found_inf, torch.full((1,), 1.0 / scale, device="cuda"))
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(main_grads)))  # clip_grad_norm_fp32
    torch._foreach_mul_(main_grads, torch.clamp(1.0 / (norm + 1e-6), max=1.0))
    adam.step()
    torch._foreach_copy_([p.data for p in model_params], [m.data for m in main_params])
    for p in model_params:
        p.grad = None


CLASSES = (
    ("gemm", ("gemm", "cutlass", "nvjet", "xmma", "sm90", "sm80", "cublas", "gemv", "splitk")),
    ("softmax", ("softmax",)),
    ("dropout", ("dropout", "philox", "bernoulli")),
    ("layernorm", ("layer_norm", "layernorm")),
    ("optimizer", ("multi_tensor", "foreach", "adam", "non_finite", "norm")),
    ("copy_cast", ("copy", "cat", "convert")),
)


def kernel_class(name):
    low = name.lower()
    for cls, keys in CLASSES:
        if any(k in low for k in keys):
            return cls
    return "other"


def fig7_case(b, layers=4, h=4096, heads=128, s=2048, vocab=51200, reps=3):
    torch.manual_seed(0)
    model = Gpt(layers, h, heads, s, vocab).cuda().to(DT)
    model_params = [p for p in model.parameters()]
    main_params = [p.detach().clone().float().requires_grad_(True) for p in model_params]
    adam = torch.optim.Adam(main_params, lr=1e-5, fused=True)
    tokens = torch.randint(0, vocab, (b, s), device="cuda")
    labels = torch.randint(0, vocab, (b, s), device="cuda")
    scale = 4096.0

    def fwd_bwd():
        loss = model(tokens, labels)
        (loss * scale).backward()

    def step():
        fwd_bwd()
        optimizer_step(model_params, main_params, adam, scale)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    fb, opt = 0.0, 0.0
    for _ in range(reps):  # forward + backward, then the optimizer, each timed alone
        t0 = time.perf_counter()
        fwd_bwd()
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        optimizer_step(model_params, main_params, adam, scale)
        torch.cuda.synchronize()
        fb, opt = fb + t1 - t0, opt + time.perf_counter() - t1
    t0 = time.perf_counter()
    for _ in range(reps):  # whole steps back to back
        step()
    torch.cuda.synchronize()
    row("fig7", b, "fwd_bwd_wall_ms", fb / reps * 1e3)
    row("fig7", b, "optimizer_wall_ms", opt / reps * 1e3)
    row("fig7", b, "step_wall_ms", (time.perf_counter() - t0) / reps * 1e3)
    row("fig7", b, "params", sum(p.numel() for p in model_params))
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    totals, counts = {}, {}
    for e in prof.key_averages():
        if e.device_type.name != "CUDA" or e.self_device_time_total <= 0:
            continue
        cls = kernel_class(e.key)
        totals[cls] = totals.get(cls, 0.0) + e.self_device_time_total * 1e-3
        counts[cls] = counts.get(cls, 0) + e.count
    for cls in sorted(totals):
        row("fig7", b, f"gpu_ms_{cls}", totals[cls])
        row("fig7", b, f"kernels_{cls}", counts[cls])
    row("fig7", b, "gpu_ms_total", sum(totals.values()))
    if b == 1:
        top = sorted(
            (e for e in prof.key_averages() if e.device_type.name == "CUDA"),
            key=lambda e: -e.self_device_time_total,
        )[:30]
        for e in top:
            print(f"  {e.self_device_time_total * 1e-3:9.3f} ms {e.count:5d}x  {kernel_class(e.key):9s} {e.key[:90]}", flush=True)
    del model, adam, main_params, model_params
    torch.cuda.empty_cache()


if __name__ == "__main__":
    print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(), flush=True)
    for b in (1, 2, 4, 8):
        try:
            fig7_case(b)
        except Exception as exc:
            print(f"fig7 b={b} failed: {exc!r}", flush=True)
            torch.cuda.empty_cache()
