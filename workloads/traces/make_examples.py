#!/usr/bin/env python3
"""Writes the example traces of this folder (python3 make_examples.py). Sizes are illustrative,
chosen to exercise the format: they are not measurements."""
import json

def yaml_list(name, items):
    return [f"{name}:"] + [f"  - {json.dumps(i)}" for i in items]

def write_yaml(path, header, ops, groups, tasks):
    lines = [f"# {header.pop('comment')}"] + [f"{k}: {json.dumps(v)}" for k, v in header.items()]
    lines += yaml_list("ops", ops) + yaml_list("groups", groups) + yaml_list("tasks", tasks)
    open(path, "w").write("\n".join(lines) + "\n")

class Trace:
    def __init__(self):
        self.tasks, self.next_id = [], 0
    def task(self, rank, **kw):
        t = {"id": self.next_id, "rank": rank, **kw}
        self.next_id += 1
        self.tasks.append(t)
        return t["id"]

def moe():
    # One mixture-of-experts transformer layer, forward and backward, on 16 GPUs (2 nodes),
    # expert parallel: one expert per GPU, top-1 routing, 4096 tokens per GPU, hidden 4096.
    n, tokens, h = 16, 4096, 4096
    a2a = tokens * h * 2  # every GPU sends its tokens' activations to the experts (16-bit)
    ops = [
        {"id": 0, "name": "attention", "kernels": [{"gemm": [1, tokens, 3 * h, h]}, {"gemm": [32, 2048, 2048, 128]},
                                                    {"stream": 32 * 2048 * 2048 * 4}, {"gemm": [32, 2048, 128, 2048]}, {"gemm": [1, tokens, h, h]}]},
        {"id": 1, "name": "router", "kernels": [{"gemm": [1, tokens, n, h]}, {"stream": tokens * h * 4}]},
        {"id": 2, "name": "expert", "kernels": [{"gemm": [1, tokens, 4 * h, h]}, {"stream": tokens * 4 * h * 4}, {"gemm": [1, tokens, h, 4 * h]}]},
        {"id": 3, "name": "expert backward", "kernels": [{"gemm": [1, tokens, 4 * h, h]}, {"gemm": [1, 4 * h, h, tokens]},
                                                          {"stream": tokens * 4 * h * 6}, {"gemm": [1, tokens, h, 4 * h]}, {"gemm": [1, h, 4 * h, tokens]}]},
        {"id": 4, "name": "attention backward", "kernels": [{"gemm": [1, tokens, h, 3 * h]}, {"gemm": [1, h, 3 * h, tokens]}, {"gemm": [64, 2048, 2048, 128]},
                                                             {"stream": 32 * 2048 * 2048 * 6}, {"gemm": [64, 2048, 128, 2048]}, {"gemm": [2, tokens, h, h]}]},
    ]
    groups = [{"id": 0, "ranks": list(range(n))}]
    t, coll = Trace(), 0
    def all_to_all(phase, deps):
        nonlocal coll
        ids = [t.task(r, collective={"id": coll, "op": "all-to-all", "group": 0, "bytes": a2a}, phase=phase, deps=[deps[r]]) for r in range(n)]
        coll += 1
        return ids
    last = [t.task(r, op=0, phase="forward") for r in range(n)]
    last = [t.task(r, op=1, phase="forward", deps=[last[r]]) for r in range(n)]
    last = all_to_all("forward", last)  # dispatch
    last = [t.task(r, op=2, phase="forward", deps=[last[r]]) for r in range(n)]
    last = all_to_all("forward", last)  # combine
    last = all_to_all("backward", last)  # gradients to the experts
    last = [t.task(r, op=3, phase="backward", deps=[last[r]]) for r in range(n)]
    last = all_to_all("backward", last)  # gradients back
    [t.task(r, op=4, phase="backward", deps=[last[r]]) for r in range(n)]
    for task in t.tasks:  # deps on the same stream are implied by order; keep the file short
        task.pop("deps", None)
    write_yaml("moe-layer.yaml", {"comment": "Mixture-of-experts layer, expert-parallel all-to-all over 16 GPUs (2 nodes); made by make_examples.py",
                                  "format": "clustersim-trace", "version": 1, "name": "moe-layer", "ranks": n}, ops, groups, t.tasks)

def dlrm():
    # A DLRM-style training step on 8 GPUs: model-parallel embedding tables exchanged by all-to-all,
    # data-parallel MLPs whose gradients are all-reduced on the data-parallel stream.
    n, batch = 8, 8192
    emb_bytes = batch * 26 * 128 * 2  # 26 sparse features, dim 128, 16-bit, per GPU's batch
    ops = [
        {"id": 0, "name": "embedding lookup", "kernels": [{"stream": 4 * emb_bytes}]},
        {"id": 1, "name": "bottom mlp", "kernels": [{"gemm": [1, batch, 512, 13]}, {"gemm": [1, batch, 256, 512]}, {"gemm": [1, batch, 128, 256]}]},
        {"id": 2, "name": "interaction + top mlp", "kernels": [{"gemm": [batch, 27, 27, 128]}, {"gemm": [1, batch, 1024, 479]},
                                                                {"gemm": [1, batch, 1024, 1024]}, {"gemm": [1, batch, 512, 1024]}, {"gemm": [1, batch, 1, 512]}]},
        {"id": 3, "name": "top mlp backward", "kernels": [{"gemm": [2, batch, 1024, 1024]}, {"gemm": [2, batch, 479, 1024]}, {"gemm": [2, 1024, 512, batch]}]},
        {"id": 4, "name": "bottom mlp backward", "kernels": [{"gemm": [2, batch, 512, 256]}, {"gemm": [2, 512, 256, batch]}]},
        {"id": 5, "name": "embedding update", "kernels": [{"stream": 8 * emb_bytes}]},
        {"id": 6, "name": "mlp optimizer", "kernels": [{"stream": 3_000_000 * 16}]},
    ]
    groups = [{"id": 0, "ranks": list(range(n))}]
    t = Trace()
    for r in range(n):
        t.task(r, op=0, phase="forward")
    for r in range(n):
        t.task(r, collective={"id": 0, "op": "all-to-all", "group": 0, "bytes": emb_bytes}, phase="forward")
    for r in range(n):
        t.task(r, op=1, phase="forward")
        t.task(r, op=2, phase="forward")
        t.task(r, op=3, phase="backward")
    reduce_ids = [t.task(r, stream="data-parallel", collective={"id": 1, "op": "all-reduce", "group": 0, "bytes": 3_000_000 * 2},
                         phase="grad-reduce") for r in range(n)]
    for r in range(n):
        t.task(r, collective={"id": 2, "op": "all-to-all", "group": 0, "bytes": emb_bytes}, phase="backward")
        t.task(r, op=4, phase="backward")
        t.task(r, op=5, phase="backward")
        t.task(r, op=6, phase="optimizer", deps=[reduce_ids[r]])
    # the MLP gradient all-reduce waits for the top-MLP backward of its rank
    for r in range(n):
        top_bwd = [x["id"] for x in t.tasks if x["rank"] == r and x.get("op") == 3][0]
        t.tasks[reduce_ids[r]]["deps"] = [top_bwd]
    write_yaml("dlrm.yaml", {"comment": "DLRM-style step: embedding all-to-all plus data-parallel MLPs on 8 GPUs; made by make_examples.py",
                             "format": "clustersim-trace", "version": 1, "name": "dlrm", "ranks": n}, ops, groups, t.tasks)

def decode():
    # Autoregressive decoding of 8 tokens for a batch of 16 sequences with a 7B-like model
    # (32 layers, hidden 4096) tensor-parallel over 8 GPUs: every layer streams its weight shard
    # and KV cache from HBM and all-reduces a tiny activation twice.
    n, layers, h, batch, context, steps = 8, 32, 4096, 16, 2048, 8
    attn_bytes = (4 * h * h // n) * 2 + batch * context * 2 * h // n * 2
    mlp_bytes = (8 * h * h // n) * 2
    ops = [
        {"id": 0, "name": "attention", "kernels": [{"stream": attn_bytes}, {"gemm": [1, batch, 3 * h // n, h]}]},
        {"id": 1, "name": "mlp", "kernels": [{"stream": mlp_bytes}, {"gemm": [1, batch, 4 * h // n, h]}]},
        {"id": 2, "name": "sample", "kernels": [{"gemm": [1, batch, 32000 // n, h]}, {"stream": batch * 32000 * 4}]},
    ]
    groups = [{"id": 0, "ranks": list(range(n))}]
    lines = [json.dumps({"format": "clustersim-trace", "version": 1, "name": "inference-decode", "ranks": n})]
    lines += [json.dumps({"type": "op", **o}) for o in ops] + [json.dumps({"type": "group", **g}) for g in groups]
    tid, coll = 0, 0
    for step in range(steps):
        for layer in range(layers):
            for op in (0, 1):
                for r in range(n):
                    lines.append(json.dumps({"type": "task", "id": tid, "rank": r, "op": op, "phase": "forward", "microbatch": step, "layer": layer}))
                    tid += 1
                for r in range(n):
                    lines.append(json.dumps({"type": "task", "id": tid, "rank": r, "collective": {"id": coll, "op": "all-reduce", "group": 0, "bytes": batch * h * 2},
                                             "phase": "forward", "microbatch": step, "layer": layer}))
                    tid += 1
                coll += 1
        for r in range(n):
            lines.append(json.dumps({"type": "task", "id": tid, "rank": r, "op": 2, "phase": "forward", "microbatch": step}))
            tid += 1
    open("inference-decode.jsonl", "w").write("\n".join(lines) + "\n")

moe()
dlrm()
decode()
