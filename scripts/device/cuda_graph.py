"""CUDA-graph capture shared by the device scripts (h100-microbench.py, sustained-gemm.py)."""
import torch


def capture(fn, reps, warmups=3):
    """A CUDA graph of `reps` back-to-back calls of fn, after `warmups` calls on a side stream (so
    that lazy initialisation and allocator growth happen outside the capture)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(warmups):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            fn()
    return graph
