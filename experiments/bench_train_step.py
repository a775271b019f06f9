"""``sslt bench`` entry: the batched training step (experiments.engine.train) on the self_prediction default's MLP
pretext (6 seeds, batch 256, 30 -> 64 -> 12, one standardised (6, 30000, .) sample), single thread.

Printed: the float32 peak, measured as the best of 5 sgemm of 2048^3 at 1 thread (torch.mm, 2 n^3 FLOPs each);
the step's achieved GFLOP/s with FLOPs counted from the layer shapes (forward 2 S B (d_in W + W d_out);
backward 2 S B (W d_out + d_out W + d_in W): dW2, dh and dW1, no input gradient); the same matmuls alone
(baddbmm + 4 bmm on the step's shapes), the ceiling of these shapes; and the reference step (foreach Adam,
``adam_step_reference``) against the fused-Adam step (``train(..., fused_adam=True)``): times, ratio, and the
largest final-parameter and final-loss differences.
"""
from __future__ import annotations

import time

import torch

from experiments import objectives
from experiments.encoders import encode, init_encoder
from experiments.engine.train import gather_rows, train

S, N, D_IN, WIDTH, D_OUT, BATCH = 6, 30000, 30, 64, 12, 256   # experiments/configs/self_prediction.toml, default
STEPS = 300


def _problem():
    gen = torch.Generator().manual_seed(0)
    xs, ts = torch.randn(S, N, D_IN, generator=gen), torch.randn(S, N, D_OUT, generator=gen)
    ts = ts + xs[..., :D_OUT].tanh()   # a target that depends on the input, as psi* does
    idx = torch.randint(N, (S, STEPS, BATCH), generator=gen)
    return xs, ts, idx


def _train(problem, fused: bool):
    xs, ts, idx = problem
    params = init_encoder("mlp", D_IN, D_OUT, S, [torch.Generator().manual_seed(1 + s) for s in range(S)], width=WIDTH)
    params["b2"] = torch.zeros(S, 1, D_OUT)
    losses = []

    def loss_fn(p, step):
        xb, tb = gather_rows(xs, idx[:, step]), gather_rows(ts, idx[:, step])
        loss = objectives.mse(encode({k: p[k] for k in ("W1", "b1", "W2")}, xb) + p["b2"], tb)
        losses.append(loss.detach())
        return loss
    out = train(params, loss_fn, STEPS, 3e-3, [STEPS], fused_adam=fused)[-1][1]
    return out, losses[-1]


def step_flops() -> int:
    forward = 2 * S * BATCH * (D_IN * WIDTH + WIDTH * D_OUT)
    backward = 2 * S * BATCH * (WIDTH * D_OUT + D_OUT * WIDTH + D_IN * WIDTH)
    return forward + backward


def sgemm_peak(n: int = 2048, repeats: int = 5) -> float:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def matmuls_alone(repeats: int = 200) -> float:
    """Seconds of the step's five matmuls on its shapes, without the rest of the step (best of 3 loops)."""
    gen = torch.Generator().manual_seed(0)
    x, W1, b1 = torch.randn(S, BATCH, D_IN, generator=gen), torch.randn(S, D_IN, WIDTH), torch.randn(S, 1, WIDTH)
    W2, g = torch.randn(S, WIDTH, D_OUT, generator=gen), torch.randn(S, BATCH, D_OUT, generator=gen)

    def loop():
        for _ in range(repeats):
            h = torch.baddbmm(b1, x, W1)
            torch.bmm(h, W2)
            torch.bmm(h.transpose(1, 2), g)
            gh = torch.bmm(g, W2.transpose(1, 2))
            torch.bmm(x.transpose(1, 2), gh)
    return min(_timed(loop) for _ in range(3)) / repeats


def benchmark(repeats: int = 2) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        problem = _problem()
        t_ref, t_new = [], []
        for _ in range(repeats):   # interleaved, best of each: the machine's load moves both alike
            t0 = time.perf_counter()
            ref, loss_ref = _train(problem, fused=False)
            t_ref.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            new, loss_new = _train(problem, fused=True)
            t_new.append(time.perf_counter() - t0)
        mm = matmuls_alone()
        peak = sgemm_peak()
    finally:
        torch.set_num_threads(threads)
    fl = step_flops()
    rel = max(float((ref[k] - new[k]).abs().max() / ref[k].abs().max()) for k in ref)
    return {"ref_step_s": min(t_ref) / STEPS, "new_step_s": min(t_new) / STEPS, "matmul_s": mm, "flops": fl,
            "peak": peak, "max_rel_param_diff": rel,
            "max_rel_loss_diff": float(((loss_ref - loss_new).abs() / loss_ref.abs()).max())}


def lines() -> list[str]:
    r = benchmark()
    gf = lambda s: r["flops"] / s / 1e9   # noqa: E731
    return [f"training step, self_prediction default MLP (S={S}, B={BATCH}, {D_IN}->{WIDTH}->{D_OUT}), 1 thread, "
            f"{r['flops'] / 1e6:.1f} MFLOP/step from the layer shapes",
            f"   fp32 peak: best of 5 torch.mm 2048^3 at 1 thread = {r['peak']:.1f} GFLOP/s",
            f"   the step's matmuls alone {r['matmul_s'] * 1e6:.0f} us = {gf(r['matmul_s']):.1f} GFLOP/s "
            f"({100 * gf(r['matmul_s']) / r['peak']:.0f}% of peak): the ceiling of these shapes",
            f"   reference step (foreach Adam) {r['ref_step_s'] * 1e6:.0f} us = {gf(r['ref_step_s']):.1f} GFLOP/s "
            f"({100 * gf(r['ref_step_s']) / r['peak']:.0f}% of peak)",
            f"   fused-Adam step (opt-in)      {r['new_step_s'] * 1e6:.0f} us = {gf(r['new_step_s']):.1f} GFLOP/s "
            f"({100 * gf(r['new_step_s']) / r['peak']:.0f}% of peak): {r['ref_step_s'] / r['new_step_s']:.2f} x",
            f"   after {STEPS} steps: max relative param diff {r['max_rel_param_diff']:.1e}, loss diff "
            f"{r['max_rel_loss_diff']:.1e} (not bitwise: why it is opt-in)"]


if __name__ == "__main__":
    print("\n".join(lines()))
