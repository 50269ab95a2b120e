#!/usr/bin/env python3
"""Device microbenchmarks for the dgx-h100 preset, run once on a lent H100 (PyTorch + CUDA).

Measures what the compute model needs, each as the device reports it:
  * BF16 and FP8 (e4m3, torch._scaled_mm) GEMM rates for the A100 reference shapes and
    Megatron-style transformer shapes (captured in a CUDA graph, so launch gaps are not counted);
  * HBM streaming (copy, read-only reduction, a + b) and a few memory-bound layer kernels;
  * fused attention (scaled_dot_product_attention with the FlashAttention-2 and cuDNN backends);
  * launch costs: PyTorch eager dispatch per op (host), CUDA's own launch (a C++ loop built with
    nvcc), and the GPU-side gap between back-to-back tiny kernels (a CUDA graph).

Writes $OUT/h100-microbench.csv (section,name,m,n,k,dtype,metric,value) and a JSON of the
environment. Each section is guarded: one failing section does not lose the others.
Usage (on the device machine): python3 scripts/device/h100-microbench.py
"""
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from cuda_graph import capture

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
CSV = open(os.path.join(OUT, "h100-microbench.csv"), "w")
CSV.write("section,name,m,n,k,dtype,metric,value\n")
START = time.time()
DEADLINE = START + float(os.environ.get("BUDGET_S", "330"))


def row(section, name, m, n, k, dtype, metric, value):
    CSV.write(f"{section},{name},{m},{n},{k},{dtype},{metric},{value:.6g}\n")
    CSV.flush()
    print(f"{section:9s} {name:28s} {m:>7} {n:>7} {k:>7} {dtype:5s} {metric:14s} {value:.4g}", flush=True)


def out_of_time():
    return time.time() > DEADLINE


def graph_seconds(fn, reps=20, replays=5):
    """Seconds per call of fn, captured reps times in a CUDA graph; best of `replays` replays."""
    graph = capture(fn, reps)
    graph.replay()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(replays):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        graph.replay()
        e.record()
        e.synchronize()
        best = min(best, s.elapsed_time(e) / 1e3 / reps)
    del graph
    return best


def eager_seconds(fn, reps=20, replays=5):
    """Seconds per call of fn launched back to back (no graph); best of `replays` batches."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(replays):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        for _ in range(reps):
            fn()
        e.record()
        e.synchronize()
        best = min(best, s.elapsed_time(e) / 1e3 / reps)
    return best


def section(name):
    def wrap(f):
        def run():
            if out_of_time():
                print(f"skipped {name}: out of time", flush=True)
                return
            t0 = time.time()
            try:
                f()
            except Exception as exc:  # keep the other sections
                print(f"section {name} failed: {exc!r}", flush=True)
            print(f"-- {name}: {time.time() - t0:.1f} s", flush=True)
        run.__name__ = f.__name__
        return run
    return wrap


def gemm_shapes():
    shapes = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192),
              (16384, 16384, 16384), (1024, 2145, 1024), (6144, 12288, 12288), (802816, 192, 768)]
    # Megatron layer GEMMs, forward, 4096 tokens (microbatch 1 x sequence 4096): QKV, projection,
    # MLP up and down, for hidden sizes of the Megatron-Core table and tensor-parallel sizes.
    for h in (4096, 6144, 8192, 12288, 16384):
        for t in (1, 2, 4, 8):
            shapes += [(4096, 3 * h // t, h), (4096, h, h // t), (4096, 4 * h // t, h), (4096, h, 4 * h // t)]
    seen, unique = set(), []
    for s in shapes:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


@section("gemm-bf16")
def gemm_bf16():
    for m, n, k in gemm_shapes():
        if out_of_time():
            return
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        c = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
        flops = 2.0 * m * n * k
        reps = max(3, min(50, int(2e12 / flops * 20)))
        sec = graph_seconds(lambda: torch.matmul(a, b, out=c), reps=reps)
        row("gemm", "matmul", m, n, k, "bf16", "tflops", flops / sec / 1e12)
        del a, b, c


@section("gemm-fp8")
def gemm_fp8():
    one = torch.tensor(1.0, device="cuda", dtype=torch.float32)
    for m, n, k in gemm_shapes():
        if out_of_time():
            return
        if m % 16 or n % 16 or k % 16:
            continue
        a = (torch.randn(m, k, device="cuda") * 0.5).to(torch.float8_e4m3fn)
        b = (torch.randn(n, k, device="cuda") * 0.5).to(torch.float8_e4m3fn).t()
        flops = 2.0 * m * n * k
        reps = max(3, min(50, int(4e12 / flops * 20)))
        sec = graph_seconds(lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
                            reps=reps)
        row("gemm", "scaled_mm", m, n, k, "fp8", "tflops", flops / sec / 1e12)
        del a, b


@section("hbm")
def hbm():
    for mib in (1, 4, 16, 64, 256, 1024, 4096):
        elems = mib * 2**20 // 2
        a = torch.randn(elems, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(elems, device="cuda", dtype=torch.bfloat16)
        c = torch.empty_like(a)
        acc = torch.empty((), device="cuda", dtype=torch.float32)
        nbytes = elems * 2
        reps = max(5, min(200, int(4096 / mib)))
        sec = graph_seconds(lambda: c.copy_(a), reps=reps)
        row("hbm", "copy", nbytes, 0, 0, "bf16", "GB/s", 2 * nbytes / sec / 1e9)
        row("hbm", "copy", nbytes, 0, 0, "bf16", "us", sec * 1e6)
        sec = graph_seconds(lambda: acc.copy_(torch.sum(a, dtype=torch.float32)), reps=reps)
        row("hbm", "sum", nbytes, 0, 0, "bf16", "GB/s", nbytes / sec / 1e9)
        sec = graph_seconds(lambda: torch.add(a, b, out=c), reps=reps)
        row("hbm", "add", nbytes, 0, 0, "bf16", "GB/s", 3 * nbytes / sec / 1e9)
        row("hbm", "add", nbytes, 0, 0, "bf16", "us", sec * 1e6)
        del a, b, c


@section("layers")
def layers():
    # Memory-bound layer kernels at b s = 4096 tokens: bytes moved = read + write of the activations.
    for h in (4096, 8192, 16384):
        x = torch.randn(4096, h, device="cuda", dtype=torch.bfloat16)
        w = torch.ones(h, device="cuda", dtype=torch.bfloat16)
        nbytes = x.numel() * 2
        sec = graph_seconds(lambda: F.layer_norm(x, (h,), w, w))
        row("layer", "layer_norm", 4096, h, 0, "bf16", "GB/s", 2 * nbytes / sec / 1e9)
        sec = graph_seconds(lambda: F.rms_norm(x, (h,), w))
        row("layer", "rms_norm", 4096, h, 0, "bf16", "GB/s", 2 * nbytes / sec / 1e9)
        y = torch.randn(4096, 4 * h, device="cuda", dtype=torch.bfloat16)
        sec = graph_seconds(lambda: F.gelu(y, approximate="tanh"))
        row("layer", "gelu", 4096, 4 * h, 0, "bf16", "GB/s", 2 * y.numel() * 2 / sec / 1e9)
        del x, y


@section("attention")
def attention():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backends = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]
    for heads, seq in ((32, 4096), (64, 4096), (16, 8192), (32, 2048)):
        d = 128
        q, k, v = (torch.randn(1, heads, seq, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                   for _ in range(3))
        grad = torch.randn(1, heads, seq, d, device="cuda", dtype=torch.bfloat16)
        model_flops = 4.0 * heads * seq * seq * d  # forward, counted without the causal half
        for name, backend in backends:
            for causal in (True, False):
                try:
                    with sdpa_kernel([backend]):
                        fwd = eager_seconds(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))

                        def step():
                            o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                            o.backward(grad)
                        both = eager_seconds(step, reps=10)
                except Exception as exc:
                    print(f"attention {name} causal={causal}: {exc!r}", flush=True)
                    continue
                tag = f"{name}-{'causal' if causal else 'full'}"
                row("attention", tag, heads, seq, d, "bf16", "fwd_model_tflops", model_flops / fwd / 1e12)
                row("attention", tag, heads, seq, d, "bf16", "bwd_model_tflops",
                    2.5 * model_flops / max(both - fwd, 1e-9) / 1e12)
                row("attention", tag, heads, seq, d, "bf16", "fwd_us", fwd * 1e6)
                row("attention", tag, heads, seq, d, "bf16", "fwd_bwd_us", both * 1e6)
        del q, k, v, grad


@section("launch")
def launch():
    x = torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    for label, n in (("add_", 20000),):
        for _ in range(1000):
            x.add_(1)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            x.add_(1)
        host = (time.perf_counter() - t0) / n
        torch.cuda.synchronize()
        row("launch", "torch-eager-" + label, n, 0, 0, "fp32", "host_us_per_op", host * 1e6)
    # a Linear layer's forward in eager mode: the per-module dispatch of a framework
    lin = torch.nn.Linear(256, 256, device="cuda", dtype=torch.bfloat16)
    inp = torch.randn(8, 256, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        for _ in range(500):
            lin(inp)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5000):
            lin(inp)
        host = (time.perf_counter() - t0) / 5000
        torch.cuda.synchronize()
    row("launch", "torch-eager-linear", 5000, 0, 0, "bf16", "host_us_per_op", host * 1e6)
    sec = graph_seconds(lambda: x.add_(1), reps=1000, replays=5)
    row("launch", "graph-tiny-kernel", 1000, 0, 0, "fp32", "gpu_us_per_kernel", sec * 1e6)


CUDA_SRC = r"""
#include <cstdio>
#include <chrono>
#include <cuda_runtime.h>
__global__ void empty() {}
int main() {
  const int n = 100000;
  cudaEvent_t s, e; cudaEventCreate(&s); cudaEventCreate(&e);
  for (int i = 0; i < 1000; ++i) empty<<<1, 1>>>();
  cudaDeviceSynchronize();
  auto t0 = std::chrono::steady_clock::now();
  cudaEventRecord(s);
  for (int i = 0; i < n; ++i) empty<<<1, 1>>>();
  cudaEventRecord(e);
  auto t1 = std::chrono::steady_clock::now();
  cudaEventSynchronize(e);
  float ms = 0; cudaEventElapsedTime(&ms, s, e);
  double host = std::chrono::duration<double>(t1 - t0).count();
  printf("host_us_per_launch %.4f\ngpu_us_per_kernel %.4f\n", host / n * 1e6, ms * 1e3 / n);
  // launch and wait each time: the round trip a kernel pays when the GPU is idle
  auto t2 = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) { empty<<<1, 1>>>(); cudaStreamSynchronize(0); }
  auto t3 = std::chrono::steady_clock::now();
  printf("sync_round_trip_us %.4f\n", std::chrono::duration<double>(t3 - t2).count() / 2000 * 1e6);
  return 0;
}
"""


@section("launch-cuda")
def launch_cuda():
    src, exe = "/tmp/launch.cu", "/tmp/launch"
    with open(src, "w") as f:
        f.write(CUDA_SRC)
    subprocess.run(["nvcc", "-O2", "-arch=sm_90", src, "-o", exe], check=True, timeout=180)
    out = subprocess.run([exe], check=True, timeout=60, capture_output=True, text=True).stdout
    for line in out.split("\n"):
        if line.strip():
            metric, value = line.split()
            row("launch", "cuda-empty-kernel", 100000, 0, 0, "none", metric, float(value))


def smi():
    try:
        q = "name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,driver_version"
        return subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv"], capture_output=True,
                              text=True, timeout=30).stdout
    except Exception as exc:
        return repr(exc)


def main():
    props = torch.cuda.get_device_properties(0)
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "device": props.name, "sms": props.multi_processor_count, "memory_bytes": props.total_memory,
           "python": sys.version, "smi_before": smi()}
    print(json.dumps(env, indent=1), flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    only = os.environ.get("SECTIONS")
    for run in (launch, launch_cuda, gemm_bf16, gemm_fp8, attention, hbm, layers):
        if not only or run.__name__ in only.split(","):
            run()
    env["smi_after"] = smi()
    env["seconds"] = time.time() - START
    with open(os.path.join(OUT, "h100-microbench-env.json"), "w") as f:
        json.dump(env, f, indent=1)
    print(env["smi_after"], f"total {env['seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
