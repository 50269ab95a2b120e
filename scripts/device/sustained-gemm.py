#!/usr/bin/env python3
"""Does a GEMM keep its rate when it runs for seconds, as training runs it? Timed on a lent H100/H200.

The GEMM tables (gemm-h100.csv, gemm-h200.csv) take the best of short CUDA-graph replays, a few
milliseconds of work. Training keeps the tensor cores busy for seconds, and an SXM board at its power
limit (700 W) lowers the SM clock. This script runs the same GEMM back to back for SECONDS seconds and
reports the rate and the SM clock (NVML) in windows of about a second, for BF16 and FP8 8192^3 and a
Llama-3-70B shape, each after a few seconds of idling.
Writes $OUT/sustained-gemm.csv (name,dtype,window,seconds,tflops,sm_mhz,power_w).

With `--table FILE` (a gemm-*.csv of workloads/reference) it then times every `shape` row of that table the way
training runs it: the GPU is kept busy for 3 s first, then each shape is replayed (CUDA graph) back to back for
HOLD_S seconds with no idle gap between shapes, and the rate of the last third of that time is reported.
Writes $OUT/sustained-table.csv (m,n,k,dtype,tflops,sm_mhz,power_w).

With `--attention` it times the fused attention cases of device-h100.csv (PyTorch's scaled_dot_product_attention,
FlashAttention-2 and cuDNN backends, causal, head dim 128) the same way: forward and backward back to back for
HOLD_S x 6 seconds after 3 s of GEMMs, the mean of the last third reported.
Writes $OUT/sustained-attention.csv (name,heads,seq,d,fwd_bwd_us,sm_mhz,power_w).
With `--no-windows` the first part (the 1 s windows) is skipped.
"""
import csv
import sys
import os
import time

import torch

from cuda_graph import capture

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
CSV = open(os.path.join(OUT, "sustained-gemm.csv"), "w")
CSV.write("name,dtype,window,seconds,tflops,sm_mhz,power_w\n")
SECONDS = float(os.environ.get("SECONDS_EACH", "12"))


def power_w():
    try:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetPowerUsage(pynvml.nvmlDeviceGetHandleByIndex(0)) / 1000.0
    except Exception:  # noqa: BLE001
        return 0.0


def sustained(name, dtype, fn, flops):
    fn()
    torch.cuda.synchronize()
    time.sleep(3)  # idle: the clock recovers
    per_window = 1
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(10):
        fn()
    e.record()
    torch.cuda.synchronize()
    per_window = max(1, int(1000.0 / (s.elapsed_time(e) / 10)))  # calls in about a second
    start = time.time()
    window = 0
    while time.time() - start < SECONDS:
        s.record()
        for _ in range(per_window):
            fn()
        e.record()
        time.sleep(0.5)
        mhz, watts = torch.cuda.clock_rate(), power_w()
        torch.cuda.synchronize()
        secs = s.elapsed_time(e) * 1e-3
        tflops = flops * per_window / secs / 1e12
        CSV.write(f"{name},{dtype},{window},{secs:.4f},{tflops:.1f},{mhz},{watts:.0f}\n")
        CSV.flush()
        print(f"{name:18s} {dtype:5s} window {window:2d}  {tflops:6.1f} TFLOP/s  SM {mhz} MHz  {watts:.0f} W", flush=True)
        window += 1


def held(step, hold):
    """Runs `step` back to back for `hold` seconds; returns (seconds per step over the last third, the
    SM clock and board power read in it)."""
    t0 = time.time()
    while time.time() - t0 < hold * 2 / 3:
        step()
        torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    count = 0
    s.record()
    t1 = time.time()
    while time.time() - t1 < hold / 3:
        step()
        count += 1
    e.record()
    mhz, watts = torch.cuda.clock_rate(), power_w()
    torch.cuda.synchronize()
    return s.elapsed_time(e) * 1e-3 / count, mhz, watts


def preheat(seconds=3.0):
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    start = time.time()
    while time.time() - start < seconds:  # busy, as training keeps it
        torch.matmul(a, a)
    torch.cuda.synchronize()


def table(path):
    hold = float(os.environ.get("HOLD_S", "0.45"))
    out = open(os.path.join(OUT, "sustained-table.csv"), "w")
    out.write("m,n,k,dtype,tflops,sm_mhz,power_w\n")
    shapes = [r for r in csv.reader(line for line in open(path) if not line.startswith("#")) if r[1] == "shape"]
    preheat()
    one = torch.ones((), device="cuda")
    for _, _, m, n, k, dtype, _ in shapes:
        m, n, k = int(m), int(n), int(k)
        if dtype == "bf16":
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            y = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
            z = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
            fn = lambda: torch.matmul(x, y, out=z)
        else:
            x = (torch.randn(m, k, device="cuda") * 0.5).to(torch.float8_e4m3fn)
            y = (torch.randn(n, k, device="cuda") * 0.5).to(torch.float8_e4m3fn).t()
            fn = lambda: torch._scaled_mm(x, y, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        flops = 2.0 * m * n * k
        reps = max(3, min(200, int(2e-3 * 700e12 / flops)))  # a graph of about 2 ms
        graph = capture(fn, reps, warmups=2)
        seconds, mhz, watts = held(graph.replay, hold)
        tflops = flops * reps / seconds / 1e12
        out.write(f"{m},{n},{k},{dtype},{tflops:.1f},{mhz},{watts:.0f}\n")
        out.flush()
        print(f"table {m:>6} {n:>6} {k:>6} {dtype:5s} {tflops:7.1f} TFLOP/s  SM {mhz} MHz  {watts:.0f} W", flush=True)
        del graph


def attention():
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    hold = 6 * float(os.environ.get("HOLD_S", "0.45"))
    out = open(os.path.join(OUT, "sustained-attention.csv"), "w")
    out.write("name,heads,seq,d,fwd_bwd_us,sm_mhz,power_w\n")
    preheat()
    for heads, seq in ((32, 4096), (16, 8192)):
        d = 128
        q, k, v = (torch.randn(1, heads, seq, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                   for _ in range(3))
        grad = torch.randn(1, heads, seq, d, device="cuda", dtype=torch.bfloat16)
        for name, backend in (("flash-causal", SDPBackend.FLASH_ATTENTION), ("cudnn-causal", SDPBackend.CUDNN_ATTENTION)):
            with sdpa_kernel([backend]):
                def step():
                    F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(grad)
                seconds, mhz, watts = held(step, hold)
                us = seconds * 1e6
                out.write(f"{name},{heads},{seq},{d},{us:.1f},{mhz},{watts:.0f}\n")
                out.flush()
                print(f"attention {name:13s} heads {heads} seq {seq}: {us:8.1f} us fwd+bwd  SM {mhz} MHz  {watts:.0f} W",
                      flush=True)


def main():
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    if "--attention" in sys.argv:
        attention()
    if "--no-windows" in sys.argv:
        return
    for m, n, k in ((8192, 8192, 8192), (8192, 14336, 8192)):
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        sustained(f"{m}x{n}x{k}", "bf16", lambda: torch.matmul(a, b), 2.0 * m * n * k)
    m = n = k = 8192
    a8 = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
    b8 = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()
    one = torch.ones((), device="cuda")
    fp8 = lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    sustained(f"{m}x{n}x{k}", "fp8", fp8, 2.0 * m * n * k)
    if "--table" in sys.argv:
        table(sys.argv[sys.argv.index("--table") + 1])


if __name__ == "__main__":
    main()
