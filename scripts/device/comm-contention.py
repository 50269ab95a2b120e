#!/usr/bin/env python3
"""What a communication kernel that holds k SMs costs the GEMMs and streaming kernels beside it, on one lent GPU.

NCCL runs one persistent thread block per channel for the whole collective; Transformer Engine's userbuffers
run a few blocks. clustersim (src/sim/sm_share.rs) assumes a GEMM beside such a kernel runs its waves over the
SMs left (sms - k) and a streaming kernel keeps its HBM time. This script checks both on the device, with a
stand-in for the communication kernel: k blocks of 512 threads (NCCL's Simple-protocol block) with 48 KiB of
shared memory each, so no GEMM block fits beside one, that either
  * sleep (they hold the SMs and move nothing: the SM effect alone), or
  * copy a 1 GiB buffer round and round (they hold the SMs and stream HBM: the SM and the bandwidth effect).
The stand-in starts first and outlasts the timed kernels (checked: its end event is after theirs).

For each case it times, on the main stream, `reps` back-to-back kernels (about 40 ms of them) alone and
beside the stand-in, in ROUNDS rounds (the spread between rounds is the noise): BF16 GEMMs of five shapes
(square, and Llama-3-70B's at tensor parallel 4 with 8192 tokens), one FP8 GEMM (torch._scaled_mm), and a
streaming a + b over 1 GiB tensors. Where PyTorch has it, the GEMMs are timed again with cuBLAS told to
leave k SMs free (torch._C._set_sm_carveout_experimental), with and without the stand-in holding them.
The SM clock is read (NVML) while the timed kernels run.

Writes $OUT/comm-contention.csv (kernel,m,n,k,dtype,holder,blocks,carveout,ms_per_kernel,holder_sms,holder_gbps);
a negative ms_per_kernel marks a case the holder did not cover to the end.
Usage (on the device machine): python3 scripts/device/comm-contention.py
"""
import os
import time

import cupy as cp
import torch

OUT = os.environ.get("OUT", "/tmp/out")
os.makedirs(OUT, exist_ok=True)
CSV = open(os.path.join(OUT, "comm-contention.csv"), "w")
CSV.write("kernel,m,n,k,dtype,holder,blocks,carveout,round,ms_per_kernel,holder_sms,holder_gbps,sm_mhz\n")
DEADLINE = time.time() + float(os.environ.get("BUDGET_S", "150"))

SOURCE = r"""
extern "C" __global__ void hold(const float4* __restrict__ src, float4* __restrict__ dst, long long n4,
                                long long cycles, int copy, int* sm_of_block, unsigned long long* moved) {
    extern __shared__ float4 scratch[];
    long long start = clock64();
    unsigned int sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    if (threadIdx.x == 0) sm_of_block[blockIdx.x] = (int)sm;
    long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long stride = (long long)gridDim.x * blockDim.x;
    unsigned long long passes = 0;
    while (clock64() - start < cycles) {
        if (copy) {
            for (long long j = first; j < n4; j += stride) dst[j] = src[j];
            passes++;
        } else {
            __nanosleep(2000);
        }
    }
    scratch[threadIdx.x % 64] = make_float4(0.f, 0.f, 0.f, (float)passes);
    if (threadIdx.x == 0 && blockIdx.x == 0) moved[0] = passes;
}
"""
HOLD = cp.RawModule(code=SOURCE).get_function("hold")
SMEM = 48 * 1024
THREADS = 512
ROUNDS = 3
BUF = 1 << 30  # bytes the copying holder streams per pass (read; as much written)


def row(kernel, m, n, k, dtype, holder, blocks, carveout, rnd, result):
    ms, (holder_sms, holder_gbps, mhz) = result
    CSV.write(f"{kernel},{m},{n},{k},{dtype},{holder},{blocks},{carveout},{rnd},{ms:.6g},{holder_sms},"
              f"{holder_gbps:.6g},{mhz}\n")
    CSV.flush()
    print(f"{kernel:7s} {m:>6} {n:>6} {k:>6} {dtype:5s} {holder:5s} k={blocks:<3} carve={carveout:<3} r{rnd} "
          f"{ms:8.4f} ms  holder on {holder_sms} SMs, {holder_gbps:7.1f} GB/s, SM {mhz} MHz", flush=True)


def gemm_fns():
    fns = []
    for m, n, k in ((8192, 8192, 8192), (8192, 14336, 8192), (8192, 2560, 8192), (8192, 8192, 7168), (4096, 4096, 4096)):
        a = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(k, n, device="cuda", dtype=torch.bfloat16)
        fns.append(("gemm", m, n, k, "bf16", lambda a=a, b=b: torch.matmul(a, b)))
    try:
        m = n = k = 8192
        a = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
        b = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()
        one = torch.ones((), device="cuda")
        fn = lambda a=a, b=b, one=one: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        fn()
        fns.append(("gemm", m, n, k, "fp8", fn))
    except Exception as exc:  # noqa: BLE001
        print(f"fp8 GEMM unavailable: {exc!r}", flush=True)
    x = torch.randn(BUF // 2, device="cuda", dtype=torch.bfloat16)
    y = torch.randn(BUF // 2, device="cuda", dtype=torch.bfloat16)
    z = torch.empty_like(x)
    fns.append(("add", BUF // 2, 0, 0, "bf16", lambda: torch.add(x, y, out=z)))
    return fns


def timed(fn, reps, holder=None):
    """ms per call of fn over reps back-to-back calls on the main stream; holder: (blocks, copy)."""
    main = torch.cuda.current_stream()
    side = torch.cuda.Stream()
    fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    info = (0, 0.0)
    if holder is not None:
        blocks, copy, cycles = holder
        sm_of_block = cp.zeros(blocks, dtype=cp.int32)
        moved = cp.zeros(1, dtype=cp.uint64)
        hs, he = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with cp.cuda.ExternalStream(side.cuda_stream):
            hs.record(side)
            HOLD((blocks,), (THREADS,), (SRC, DST, cp.int64(BUF // 16), cp.int64(cycles), cp.int32(copy),
                                          sm_of_block, moved), shared_mem=SMEM)
            he.record(side)
        torch.cuda._sleep(200_000)  # on the main stream: let the holder's blocks land first
    s.record(main)
    for _ in range(reps):
        fn()
    e.record(main)
    time.sleep(0.01)
    try:
        mhz = torch.cuda.clock_rate()  # the SM clock while the timed kernels run (NVML)
    except Exception:  # noqa: BLE001
        mhz = 0
    torch.cuda.synchronize()
    ms = s.elapsed_time(e) / reps
    if holder is not None:
        held_ms = hs.elapsed_time(he)
        if hs.elapsed_time(e) > held_ms:  # kept, and flagged: the holder did not cover the timed kernels
            print(f"  holder ended {hs.elapsed_time(e) - held_ms:.3f} ms before the timed kernels", flush=True)
            ms = -ms
        passes = int(moved.get()[0])
        gbps = 2 * BUF * passes / (held_ms * 1e-3) / 1e9 if copy else 0.0
        info = (len(set(sm_of_block.get().tolist())), gbps)
    return ms, (info[0], info[1], mhz)


def main():
    global SRC, DST
    print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(),
          torch.cuda.get_device_properties(0).multi_processor_count, "SMs", flush=True)
    src = cp.random.random(BUF // 4, dtype=cp.float32)
    dst = cp.empty_like(src)
    SRC, DST = src, dst
    clock_khz = cp.cuda.Device(0).attributes["ClockRate"]
    carve = getattr(torch._C, "_set_sm_carveout_experimental", None)
    timed(lambda: torch.cuda._sleep(100_000), 2, (8, 1, int(5 * clock_khz)))  # compiles and loads the holder
    for kernel, m, n, k, dtype, fn in gemm_fns():
        alone, _ = timed(fn, 3)
        reps = max(5, int(40.0 / max(alone, 1e-3)))  # about 40 ms of kernels
        cycles = int((reps * alone * 1.5 + 20) * clock_khz)  # outlasts the timed kernels, at the top clock
        for rnd in range(ROUNDS):
            row(kernel, m, n, k, dtype, "none", 0, 0, rnd, timed(fn, reps))
            for copy, holder in ((0, "sleep"), (1, "copy")):
                for blocks in (1, 2, 4, 8, 16, 24, 32, 66):
                    if time.time() > DEADLINE:
                        print("out of time", flush=True)
                        return
                    row(kernel, m, n, k, dtype, holder, blocks, 0, rnd, timed(fn, reps, (blocks, copy, cycles)))
            if carve is not None and kernel == "gemm":
                for blocks in (16, 32):  # cuBLAS told to leave SMs free, nothing holding them
                    try:
                        carve(blocks)
                        row(kernel, m, n, k, dtype, "none", 0, blocks, rnd, timed(fn, reps))
                        row(kernel, m, n, k, dtype, "sleep", blocks, blocks, rnd, timed(fn, reps, (blocks, 0, cycles)))
                    except Exception as exc:  # noqa: BLE001
                        print(f"carveout failed: {exc!r}", flush=True)
                        carve = None
                        break
                    finally:
                        if carve is not None:
                            carve(None)
    # The copying holder alone: the HBM rate k blocks of it reach with nothing beside them.
    for blocks in (1, 2, 4, 8, 16, 24, 32, 66, 132):
        result = timed(lambda: torch.cuda._sleep(1_000_000), 20, (blocks, 1, int(40 * clock_khz)))
        row("idle", 0, 0, 0, "-", "copy", blocks, 0, 0, (0.0, result[1]))


if __name__ == "__main__":
    main()
