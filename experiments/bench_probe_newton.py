"""``sslt bench`` entry ``probe_newton``: the language default's probe calls, the L-BFGS reference against Newton.

The workload is the real one, rebuilt in this process: the default profile's world (HMM, the 10^4 enumerated
contexts, every task) and its logit-noise reference cell's points (3 seeds x 7 levels, features p, d = 10); on
them every population probe (C = ``eval.population_C``, 1e5) and, on each seed's last point, the probe curves of
features p (d = 10) and raw one-hots (d = 44) over the profile's n grid (C = ``eval.probe_C``). A trained cell's
probes have the same shapes (21 points, d = 8 for f and Phi p), so they are not trained here.

Reference: the calls as they were on main (each population row twice, hard labels, and
``fit_logistic_probes_reference``). New: ``fit_binary_probes`` on soft targets and ``fit_logistic_probes`` (Newton
for K = 2). Printed: CPU seconds of each (single thread, best of ``repeats``), the ratio, and the largest difference
of every number the rows take (losses, errors, converged flags) against the tolerance of ``fit_logistic_probes``.
"""
from __future__ import annotations

import time

import numpy as np
import torch

import experiments.language.eval as ev
from analysis.probes import fit_logistic_probes_reference
from experiments.engine import chapters, runner
from experiments.language.run import _mask, _reference_points
from theory import language as th

# The tolerances of ``fit_logistic_probes`` (its docstring) on the numbers a row holds.
LOSS_TOL = 1e-5
ERROR_TOL = 0.0  # the 0-1 error of a curve: identical unless a margin sits within the coefficient difference of 0


def population_reference(task, feats: np.ndarray, C: float):
    """``eval.population_probes`` as it was on main: every fit row twice, hard labels, the L-BFGS reference."""
    P = feats.shape[0]
    wf = task.w_fit()
    Xf = feats[:, task.fit]
    mu, sd = ev._standardise(Xf, wf)
    Xs = (Xf - mu[:, None]) / sd[:, None]
    q = task.q[task.fit]
    wt = np.concatenate([wf * q, wf * (1 - q)])
    keep = wt > 0
    X = np.concatenate([Xs, Xs], axis=1)[:, keep]
    y = np.concatenate([np.ones(len(q)), np.zeros(len(q))]).astype(np.int64)[keep]
    fit = fit_logistic_probes_reference(torch.as_tensor(X), torch.as_tensor(y).expand(P, -1),
                                        torch.as_tensor(wt[keep]).expand(P, -1), 2, C=C)
    coef, icpt = ev._binary(fit)
    Xe = (feats[:, task.ev] - mu[:, None]) / sd[:, None]
    loss, _ = ev._expected(task, Xe, coef, icpt)
    ref = th.expected_logistic_loss(task.p_star[task.ev] @ task.v + task.b, task.q[task.ev])
    we = task.w_ev()
    return (np.array([th.mean_se(l_, we)[0] for l_ in loss]), np.array([th.mean_se(l_ - ref, we)[1] for l_ in loss]),
            fit.converged.numpy().astype(bool))


def _curves(task, X, ns, labelled, C, reference: bool):
    """``eval.probe_curves``, with its fit swapped for the reference when asked (the only difference on main)."""
    saved = ev.fit_logistic_probes
    if reference:
        ev.fit_logistic_probes = fit_logistic_probes_reference
    try:
        return ev.probe_curves(task, X, ns, labelled, C)
    finally:
        ev.fit_logistic_probes = saved


def workload(profile: str = "default"):
    """(population calls [(task, feats, C)], curve calls [(task, feats, ns, labelled, C)]) of the profile."""
    cfg = chapters.load_config("language", profile)
    cell = next(c for _, c in runner.plan("language", cfg) if c.kind == "ref" and c.model == "noise"
                and c.target == "next")
    world = ev.World(cell)
    points = _reference_points(cell, world)
    pop = [(t, np.stack([pt.per_task[name]["p"] for pt in points]), cell.eval.population_C)
           for name, t in world.tasks.items()]
    ns = list(cell.eval.probe_n)
    last = [max((i for i, pt in enumerate(points) if pt.key["seed"] == s), key=lambda i: points[i].key["level"])
            for s in cell.seeds]
    curves = []
    for name, t in world.tasks.items():
        draws = [ev.labelled_sample(t, ns[-1], np.random.default_rng(1000 + s)) for s in cell.seeds]
        labelled = (np.stack([r for r, _ in draws]), np.stack([y for _, y in draws]))
        p = np.stack([points[i].per_task[name]["p"] for i in last])
        raw = ev.one_hot(_mask(t.contexts, world), world.V + 1)
        for X in (p, np.broadcast_to(raw, (len(last),) + raw.shape)):
            curves.append((t, X, ns, labelled, cell.eval.probe_C))
    return pop, curves


def _timed(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def benchmark(profile: str = "default", repeats: int = 2) -> dict:
    """CPU seconds (single thread, best of ``repeats``) of the reference and the new probe calls, and the largest
    differences: population loss and SE, curve loss and error (absolute), and converged flags that differ."""
    pop, curves = workload(profile)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = {"ref_pop_s": 0.0, "new_pop_s": 0.0, "ref_curve_s": 0.0, "new_curve_s": 0.0, "d_loss": 0.0,
               "d_se": 0.0, "d_curve_loss": 0.0, "d_curve_err": 0.0, "converged_differ": 0, "ref_not_converged": 0,
               "pop_calls": len(pop), "curve_calls": len(curves)}
        for t, X, C in pop:
            tr, (lr, sr, cr) = _timed(lambda: population_reference(t, X, C), repeats)
            tn, (ln, sn, cn) = _timed(lambda: ev.population_probes(t, X, C), repeats)
            res["ref_pop_s"] += tr
            res["new_pop_s"] += tn
            res["d_loss"] = max(res["d_loss"], float(np.abs(lr - ln).max()))
            res["d_se"] = max(res["d_se"], float(np.abs(sr - sn).max()))
            res["converged_differ"] += int((cr != cn).sum())
            res["ref_not_converged"] += int((~cr).sum())
        for t, X, ns, lab, C in curves:
            tr, (lr, er) = _timed(lambda: _curves(t, X, ns, lab, C, True), repeats)
            tn, (ln, en) = _timed(lambda: _curves(t, X, ns, lab, C, False), repeats)
            res["ref_curve_s"] += tr
            res["new_curve_s"] += tn
            res["d_curve_loss"] = max(res["d_curve_loss"], float(np.abs(lr - ln).max()))
            res["d_curve_err"] = max(res["d_curve_err"], float(np.abs(er - en).max()))
    finally:
        torch.set_num_threads(threads)
    res["ref_s"] = res["ref_pop_s"] + res["ref_curve_s"]
    res["new_s"] = res["new_pop_s"] + res["new_curve_s"]
    res["ratio"] = res["ref_s"] / res["new_s"]
    return res


def lines() -> list[str]:
    r = benchmark()
    w = 62
    out = [f"{'language default probe calls (1 thread, CPU s)':<{w}}{'reference':>12}{'new':>10}{'ratio':>9}"]
    for name, a, b in (("population probes, " + str(r["pop_calls"]) + " calls", r["ref_pop_s"], r["new_pop_s"]),
                       ("probe curves, " + str(r["curve_calls"]) + " calls", r["ref_curve_s"], r["new_curve_s"]),
                       ("all", r["ref_s"], r["new_s"])):
        out.append(f"{'   ' + name:<{w}}{a:>11.2f}s{b:>9.2f}s{a / b:>8.1f}x")
    out.append(f"{'   max |population loss diff| (tolerance ' + format(LOSS_TOL, '.0e') + ')':<{w}}{r['d_loss']:>31.2e}")
    out.append(f"{'   max |population SE diff|':<{w}}{r['d_se']:>31.2e}")
    out.append(f"{'   max |curve loss diff| (tolerance ' + format(LOSS_TOL, '.0e') + ')':<{w}}{r['d_curve_loss']:>31.2e}")
    out.append(f"{'   max |curve error diff| (tolerance ' + format(ERROR_TOL, '.0e') + ', see docstring)':<{w}}"
               f"{r['d_curve_err']:>31.2e}")
    out.append(f"{'   converged flags that differ (of reference non-converged ' + str(r['ref_not_converged']) + ')':<{w}}"
               f"{r['converged_differ']:>31d}")
    return out


if __name__ == "__main__":
    print("\n".join(lines()))
