"""Micro-benchmarks that ``sslt bench`` runs after the chapter profiles (entry point ``sslt.benchmarks``).

Batched seed training against a per-seed loop (ratio and the largest parameter difference), batched probes
against a scikit-learn loop (ratio and the largest accuracy difference), and the achieved GFLOP/s of a training
step beside a float32 matmul peak measured in the same run.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from experiments import objectives
from experiments.encoders import encode, init_encoder
from experiments.bench_probes import benchmark as probe_benchmark
from experiments.engine.train import gather_rows, train
from synthetic_data.contrastive import DataSpec, build_model

# The benchmark's training problem: a small MLP encoder on the logistic loss with k negatives.
IN_DIM, WIDTH, OUT_DIM, BATCH, K, STEPS = 32, 64, 16, 64, 4, 100


def _problem(n_models: int):
    model = build_model(DataSpec(n_classes=10, dim=IN_DIM), np.random.default_rng(0))
    rngs = [np.random.default_rng(1000 + g) for g in range(n_models)]
    tuples = [model.sample_tuples(BATCH * 4, K, r) for r in rngs]
    data = {key: torch.as_tensor(np.stack([t[key] for t in tuples])) for key in ("x", "pos", "neg")}
    idx = torch.as_tensor(np.stack([r.integers(0, BATCH * 4, size=(STEPS, BATCH)) for r in rngs]))
    gens = [torch.Generator().manual_seed(2000 + g) for g in range(n_models)]
    return data, idx, gens


def _train(data, idx, gens, lo: int, hi: int):
    """Train models lo..hi-1 of the problem as one batch; returns their final parameters."""
    params = init_encoder("mlp", IN_DIM, OUT_DIM, hi - lo, gens[lo:hi], width=WIDTH)
    d = {k: v[lo:hi] for k, v in data.items()}

    def loss_fn(p, step):
        b = idx[lo:hi, step]
        x, pos, neg = (gather_rows(d[key], b) for key in ("x", "pos", "neg"))
        G = hi - lo
        z = encode(p, torch.cat([x, pos, neg.reshape(G, -1, IN_DIM)], 1))
        return objectives.logistic(z[:, :BATCH], z[:, BATCH:2 * BATCH], z[:, 2 * BATCH:].reshape(G, BATCH, K, -1))
    return train(params, loss_fn, STEPS, 1e-3, [STEPS])[-1][1]


def batched_vs_loop(n_models: int) -> dict:
    data, idx, gens = _problem(n_models)
    t0 = time.perf_counter()
    batched = _train(data, idx, _fresh(gens), 0, n_models)
    t_batched = time.perf_counter() - t0
    gens = _fresh(gens)
    t0 = time.perf_counter()
    looped = [_train(data, idx, gens, g, g + 1) for g in range(n_models)]
    t_loop = time.perf_counter() - t0
    diff = max(float((batched[k][g] - looped[g][k][0]).abs().max()) for k in batched for g in range(n_models))
    return {"models": n_models, "batched_s": t_batched, "loop_s": t_loop, "ratio": t_loop / t_batched,
            "max_param_diff": diff}


def _fresh(gens):
    return [torch.Generator().manual_seed(2000 + g) for g in range(len(gens))]


def train_step_gflops(n_models: int = 32) -> float:
    """Achieved GFLOP/s of the batched training step: forward FLOPs counted exactly, backward as 2x forward."""
    data, idx, gens = _problem(n_models)
    t0 = time.perf_counter()
    _train(data, idx, gens, 0, n_models)
    elapsed = time.perf_counter() - t0
    points = BATCH * (K + 2)
    forward = 2 * points * (IN_DIM * WIDTH + WIDTH * OUT_DIM) + 2 * BATCH * K * OUT_DIM
    return 3 * forward * n_models * STEPS / elapsed / 1e9


def matmul_peak_gflops(n: int = 1024, repeats: int = 10) -> float:
    gen = torch.Generator().manual_seed(0)  # no global RNG state, even in the benchmark
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def lines() -> list[str]:
    threads = torch.get_num_threads()
    out = [f"torch {torch.__version__}, {threads} torch threads", f"{'measure':<62}{'value':>24}"]
    # 1 thread is how a sweep worker runs; all threads is what the machine offers one process.
    for n_threads in (1, threads):
        torch.set_num_threads(n_threads)
        for n in (8, 32):
            r = batched_vs_loop(n)
            out.append(f"{f'batched training, {n} seeds, {n_threads} thread(s): loop / batched':<62}{r['ratio']:>22.1f} x")
            out.append(f"{'   (batched ' + format(r['batched_s'], '.2f') + ' s, loop ' + format(r['loop_s'], '.2f') + ' s) max |param diff|':<62}"
                         f"{r['max_param_diff']:>24.2e}")
    probe_runs = {}
    for n_threads in (1, threads):
        p = probe_runs[n_threads] = probe_benchmark(threads=n_threads)
        out.append(f"{'batched probes vs sklearn lbfgs, ' + str(p['n_cells']) + ' cells, ' + str(n_threads) + ' thread(s)':<62}"
                     f"{p['speedup']:>22.1f} x")
        out.append(f"{'   (batched ' + format(p['torch_s'], '.2f') + ' s, sklearn ' + format(p['sklearn_s'], '.2f') + ' s) max |acc diff|':<62}"
                     f"{p['max_acc_diff_points']:>17.3f} points")
    # sklearn's threads can slow it down on a small machine: compare the fastest of each side as well.
    best_sk = min(r["sklearn_s"] for r in probe_runs.values())
    best_torch = min(r["torch_s"] for r in probe_runs.values())
    out.append(f"{'batched probes, fastest sklearn / fastest batched':<62}{best_sk / best_torch:>22.1f} x")
    torch.set_num_threads(1)
    step, peak = train_step_gflops(), matmul_peak_gflops()
    out.append(f"{'training step, 32 models, 1 thread':<62}{step:>16.2f} GFLOP/s")
    out.append(f"{'fp32 matmul peak (1024^3, 1 thread)':<62}{peak:>16.2f} GFLOP/s")
    torch.set_num_threads(threads)
    out.append(f"{'fp32 matmul peak (1024^3, ' + str(threads) + ' threads)':<62}{matmul_peak_gflops():>16.2f} GFLOP/s")
    return out
