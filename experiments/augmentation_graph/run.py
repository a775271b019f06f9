"""One augmentation-graph cell: build the exact graph, train every encoder class on the same pairs (seeds batched
along the model axis), evaluate every checkpoint exactly, pick checkpoints at a matched loss, and record the
exact theory terms.

Randomness: the cluster coordinates come from the data spec's hash; training pairs (one stream per seed, shared
by every class), initialisations (per class and seed), the evaluation batches and Lemma 4.1's permutation come
from (cell id, seed, stream).

Rows (long): ``encoder_class``, ``seed``, ``step``, ``metric``, ``i`` (an index for list-valued terms, else 0),
``value``, plus the cell's ``family``, ``objective``, ``overlap`` and ``d``. Theory rows have encoder_class
"exact" and seed -1.

The ``linear_fullbatch`` class (the fullbatch study, hypercube cell) is not trained by SGD on sampled pairs but by
exact gradient descent on the population loss, from the ``linear`` class's initialisation; its checkpoints are
geometric in the step and every one is probed (role ``path``), so Corollary 4.2(b) can be read along the descent.
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import torch

from analysis.probes import fit_logistic_probes, probe_logits
from experiments import objectives
from experiments.augmentation_graph.config import FULLBATCH, Cell
from experiments.encoders import encode, init_encoder
from experiments.engine.config import config_hash, to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.schedule import checkpoint_steps
from experiments.engine.timing import stage
from experiments.engine.train import gather_rows, train
from synthetic_data.augmentation_graph import build_model, perfect_features
from theory import augmentation_graph as th


# ------------------------------------------------------------------------------------------- encoders
def _init(kind: str, cell: Cell, cell_id: str, n_inputs: int, in_dim: int, device: str) -> dict:
    gens = [torch_generator(cell_id, s, f"init-{kind}") for s in cell.seeds]
    if kind == "lookup":
        E = torch.stack([torch.randn(n_inputs, cell.out_dim, generator=g, dtype=torch.float64) for g in gens])
        return {"E": (cell.encoder.lookup_scale * E).to(device=device, dtype=torch.float32).contiguous()}
    enc_kind = "linear" if kind == "linear" else "mlp"
    return init_encoder(enc_kind, in_dim, cell.out_dim, len(gens), gens, width=cell.encoder.width, device=device)


def _features(kind: str, params: dict, X: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Features of inputs idx (G, B) -> (G, B, d); the lookup table is a batched embedding over the finite set."""
    if kind == "lookup":
        return gather_rows(params["E"], idx)
    return encode(params, gather_rows(X.expand(idx.shape[0], *X.shape[1:]), idx))


def _all_features(kind: str, params: dict, X: torch.Tensor) -> np.ndarray:
    """Features of every input, (G, N, d) float64."""
    with torch.no_grad():
        if kind == "lookup":
            f = params["E"]
        else:
            G = next(iter(params.values())).shape[0]
            f = encode(params, X.expand(G, *X.shape[1:]))
    return f.double().cpu().numpy()


def _lr(kind: str, cell: Cell) -> float:
    tr = cell.train
    return {"linear": tr.lr_linear, "mlp": tr.lr_mlp, "mlp_wd": tr.lr_mlp, "lookup": tr.lr_lookup}[kind]


# ------------------------------------------------------------------------------------------- probes
def _probe_errors(feats: np.ndarray, joint: np.ndarray, C: float, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Exact-law logistic probes: each input appears once per class with weight N P(x, y); feats (P, N, d).
    Returns the exact error P(probe(x) != y) and the convergence flag, each (P,)."""
    P, N, d = feats.shape
    K = joint.shape[1]
    X = torch.as_tensor(np.repeat(feats, K, axis=1), dtype=torch.float64, device=device)        # (P, N K, d)
    y = torch.as_tensor(np.tile(np.arange(K), N), device=device).expand(P, -1).contiguous()
    w = torch.as_tensor(N * joint.reshape(-1), dtype=torch.float64, device=device).expand(P, -1).contiguous()
    fit = fit_logistic_probes(X, y, w, K, C=C, max_iter=500)
    with torch.no_grad():
        logits = probe_logits(fit, torch.as_tensor(feats, dtype=torch.float64, device=device))
    pred = logits.argmax(-1).cpu().numpy()
    err = np.array([th.error_of(pred[p], joint) for p in range(P)])
    return err, fit.converged.cpu().numpy().astype(np.float64)


def _subspace_angle(f: np.ndarray, w: np.ndarray, U_top: np.ndarray) -> float:
    """Largest principal angle (degrees) between span(D^{1/2} f) and the top eigenspace of Ā (ties included);
    90 when f has lost a direction."""
    F = np.sqrt(w)[:, None] * f
    u, s, _ = np.linalg.svd(F, full_matrices=False)
    if s.size == 0 or s[-1] <= 1e-8 * max(s[0], 1e-300):
        return 90.0
    sv = np.linalg.svd(U_top.T @ u, compute_uv=False)
    return float(np.degrees(np.arccos(np.clip(sv.min(), 0.0, 1.0))))


# ------------------------------------------------------------------------------------------- the cell
def run(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    """Train every encoder class of the cell on the same augmentation pairs, and set each beside the exact theory.

    The augmentation graph is finite, so its eigenvalues, the spectral minimum and the exact minimiser's error
    are computed, not estimated (SE 0); the trained encoders are measured at every checkpoint so that
    ``analysis.augmentation_graph`` can pick checkpoints at a matched loss.
    """
    model = build_model(cell.data, numpy_rng(config_hash(cell.data), 0, "cluster-coordinates"))
    N, D = model.X.shape
    d = cell.out_dim
    base = {"family": cell.data.family, "objective": cell.objective,
            "overlap": cell.data.overlap if cell.data.family == "clusters" else float("nan"), "d": d}
    rows: list[dict] = []

    def add(cls, seed, step, metric, value, i=0):
        rows.append({**base, "encoder_class": cls, "seed": seed, "step": step, "metric": metric, "i": i,
                     "value": float(value)})

    with stage("theory"):
        exact = _theory(cell, cell_id, model, d, device)
    for metric, value in exact["scalars"].items():
        add("exact", -1, 0, metric, value)
    for metric, values in exact["lists"].items():
        for i, v in enumerate(values):
            add("exact", -1, 0, metric, v, i)

    W64 = torch.as_tensor(model.W, dtype=torch.float64)
    X = torch.as_tensor(model.X, dtype=torch.float32, device=device)[None]
    steps = checkpoint_steps(cell.train.steps, cell.train.n_checkpoints)
    pair_idx = []
    for s in cell.seeds:
        a, b = model.sample_pairs(cell.train.steps * cell.train.batch_size, numpy_rng(cell_id, s, "pairs"))
        pair_idx.append(np.stack([a, b]).reshape(2, cell.train.steps, cell.train.batch_size))
    pairs = torch.as_tensor(np.stack(pair_idx), device=device)          # (G, 2, steps, B)
    eval_pairs = None
    if cell.objective == "ntxent":
        a, b = model.sample_pairs(cell.eval.ntxent_batches * cell.train.batch_size, numpy_rng(cell_id, 0, "eval-pairs"))
        eval_pairs = (torch.as_tensor(a, device=device).reshape(cell.eval.ntxent_batches, -1),
                      torch.as_tensor(b, device=device).reshape(cell.eval.ntxent_batches, -1))

    curves: dict[str, list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for kind in cell.classes:
        if kind == FULLBATCH:
            continue
        params = _init(kind, cell, cell_id, N, D, device)

        def loss_fn(p, step, kind=kind):
            z1 = _features(kind, p, X, pairs[:, 0, step])
            z2 = _features(kind, p, X, pairs[:, 1, step])
            if cell.objective == "ntxent":
                return objectives.ntxent(z1, z2, cell.train.temperature)
            return objectives.spectral(z1, z2)

        lr = torch.full((len(cell.seeds),), _lr(kind, cell), device=device)
        wd = cell.train.weight_decay if kind == "mlp_wd" else 0.0
        ckpts = train(params, loss_fn, cell.train.steps, lr, steps, context=to_json(cell), weight_decay=wd)
        curve = []
        for step, p in ckpts:
            f = _all_features(kind, p, X)                                     # (G, N, d)
            spec = spectral_loss(f, W64)
            obj = spec if cell.objective == "spectral" else _ntxent_eval(kind, p, X, eval_pairs, cell)
            curve.append((step, f, spec, obj))
            for g, s in enumerate(cell.seeds):
                add(kind, s, step, "spectral_loss", spec[g])
                if cell.objective == "ntxent":
                    add(kind, s, step, "ntxent_loss", obj[g])
        curves[kind] = curve

    _matched(cell, model, curves, exact, add, device)
    if FULLBATCH in cell.classes:
        _fullbatch(cell, cell_id, model, exact, add, W64, device)
    return pd.DataFrame(rows)


def spectral_loss(f: np.ndarray, W64: torch.Tensor) -> np.ndarray:
    return th.spectral_loss_torch(torch.as_tensor(f, dtype=torch.float64), W64).numpy()


def _ntxent_eval(kind, params, X, eval_pairs, cell) -> np.ndarray:
    a, b = eval_pairs
    G = len(cell.seeds)
    vals = []
    with torch.no_grad():
        for j in range(a.shape[0]):
            ia, ib = a[j].expand(G, -1).contiguous(), b[j].expand(G, -1).contiguous()
            z1, z2 = _features(kind, params, X, ia), _features(kind, params, X, ib)
            vals.append(objectives.ntxent(z1.double(), z2.double(), cell.train.temperature))
    return torch.stack(vals).mean(0).cpu().numpy()


def _matched(cell, model, curves, exact, add, device) -> None:
    """Per seed, the target is the largest over classes of the best loss it reached; each class's matched
    checkpoint is its first one within match_tol of that target. Measured there and at the last checkpoint."""
    G = len(cell.seeds)
    best = np.stack([np.min(np.stack([c[3] for c in curve]), axis=0) for curve in curves.values()])   # (K, G)
    target = best.max(0)
    tol = cell.eval.match_tol * np.abs(target)
    picks = []    # (kind, g, role, step, f)
    for kind, curve in curves.items():
        objs = np.stack([c[3] for c in curve])                       # (T, G)
        for g in range(G):
            ok = np.nonzero(objs[:, g] <= target[g] + tol[g])[0]
            t = int(ok[0]) if len(ok) else len(curve) - 1
            picks.append((kind, g, "matched", curve[t][0], curve[t][1][g], objs[t, g]))
            picks.append((kind, g, "final", curve[-1][0], curve[-1][1][g], objs[-1, g]))
    _measure(cell, model, exact, picks, {"target": target}, add, device)


def _measure(cell, model, exact, picks, extra: dict, add, device) -> None:
    """Probe, LS head, alignment/uniformity, subspace angle and exact loss at each pick (kind, g, role, step, f,
    objective); ``extra`` maps a metric name to one value per seed."""
    with stage("probes"):
        feats = np.stack([p[4] for p in picks])
        err, conv = _probe_errors(feats, model.joint, cell.eval.probe_C, device)
    U_top = exact["U_top"]
    for (kind, g, role, step, f, obj), e, c in zip(picks, err, conv):
        s = cell.seeds[g]
        align, unif = th.alignment_uniformity(f, model.W)
        ls = th.error_of(th.ls_head_prediction(f, model.w, model.joint), model.joint)
        vals = {"probe_error": e, "probe_converged": c, "ls_head_error": ls, "align": align, "uniform": unif,
                "angle": _subspace_angle(f, model.w, U_top), "objective_loss": obj,
                "spectral": th.spectral_loss(f, model.W), **{k: v[g] for k, v in extra.items()}}
        for metric, v in vals.items():
            add(kind, s, step, f"{role}_{metric}", v)


def _geometric_steps(max_steps: int) -> set[int]:
    """0, 1, 2, 4, 8, ...: the full-batch path's checkpoints (each one is probed), plus the last step."""
    return {0} | {2 ** k for k in range(max_steps.bit_length() + 1) if 2 ** k <= max_steps}


def _fullbatch(cell, cell_id, model, exact, add, W64, device) -> None:
    """Exact gradient descent on L(B) = −2 tr(BᵀΣ₊B) + ‖BᵀΣB‖²_F, the population spectral loss of f(x) = Bᵀx
    (gradient −4Σ₊B + 4ΣB(BᵀΣB)), float64, all seeds at once, from the linear class's initialisation, until every
    seed has L − min_lin L < tol (or max_steps). The gap is read against the closed-form linear minimum."""
    spec = cell.fullbatch
    X, W, w = model.X, model.W, model.w
    S = (X * w[:, None]).T @ X
    Sp = X.T @ W @ X
    S, Sp = 0.5 * (S + S.T), 0.5 * (Sp + Sp.T)
    gens = [torch_generator(cell_id, s, "init-linear") for s in cell.seeds]
    B = init_encoder("linear", X.shape[1], cell.out_dim, len(gens), gens)["W"].double().numpy()   # (G, D, d)
    lmin = exact["scalars"]["linear_min"]

    def loss(B):
        P = np.einsum("gai,ab,gbj->gij", B, S, B)
        return -2.0 * np.einsum("gai,ab,gbi->g", B, Sp, B) + np.sum(P * P, axis=(1, 2)), P

    path, step, keep = [], 0, _geometric_steps(spec.max_steps)
    with stage("train"):
        L, P = loss(B)
        while True:
            done = bool(np.all(L - lmin < spec.tol)) or step >= spec.max_steps
            if step in keep or done:
                path.append((step, B.copy()))
            if done:
                break
            B = B - spec.lr * (-4.0 * np.einsum("ab,gbi->gai", Sp, B) + 4.0 * np.einsum("ab,gbj,gji->gai", S, B, P))
            step += 1
            L, P = loss(B)
    converged = (L - lmin < spec.tol).astype(np.float64)
    picks = []
    for t, Bt in path:
        f = np.einsum("na,gai->gni", X, Bt)
        spec_loss = spectral_loss(f, W64)
        for g, s in enumerate(cell.seeds):
            add(FULLBATCH, s, t, "spectral_loss", spec_loss[g])
            picks.append((FULLBATCH, g, "path", t, f[g], spec_loss[g]))
    final_step, final_B = path[-1]
    f = np.einsum("na,gai->gni", X, final_B)
    picks += [(FULLBATCH, g, "final", final_step, f[g], th.spectral_loss(f[g], model.W))
              for g in range(len(cell.seeds))]
    _measure(cell, model, exact, picks, {"gd_converged": converged}, add, device)


def _theory(cell: Cell, cell_id: str, model, d: int, device: str) -> dict:
    gam, U = th.spectrum(model.W)
    N = model.n_inputs
    fstar = th.closed_form_minimiser(model.W, d)
    a = th.alpha(model.joint)
    py = model.joint.sum(0)
    m = max(1, d // 2)
    rho, source = th.rho_terms(model.W, gam, m)
    T_eigs = np.sort(np.linalg.eigvalsh(th.linear_T(model.X, model.W)))[::-1]
    top = gam >= gam[d - 1] - 1e-9
    ls = th.tie_aware_errors(th.ls_head_scores(fstar, model.w, model.joint), model.joint)
    probe_err, probe_conv = _probe_errors(fstar[None], model.joint, cell.eval.probe_C, device)
    # the largest mass two distinct natural points put on one input (0: disjoint augmentations)
    Am = model.A
    shared = float(np.max((Am.sum(0) - Am.max(0)))) if Am.shape[0] > 1 else 0.0
    scalars = {"alpha": a, "majority_error": 1.0 - float(py.max()), "lambda_next": 1.0 - float(gam[d]),
               "gamma_d": float(gam[d - 1]), "rho": rho, "rho_exact": float(source == "exact"), "m": m,
               "spectral_min": th.spectral_minimum(gam, d), "linear_min": th.linear_minimum(T_eigs, d),
               "fstar_loss": th.spectral_loss(fstar, model.W), "fstar_ls_error": ls["uniform"],
               "fstar_ls_error_min": ls["min"], "fstar_ls_error_max": ls["max"], "fstar_ls_tied": ls["tied_mass"],
               "n_classes": cell.data.n_classes,
               "fstar_probe_error": probe_err[0], "fstar_probe_converged": probe_conv[0],
               "n_inputs": N, "n_natural": model.A.shape[0], "n_components_eig1": int(np.sum(gam > 1 - 1e-9)),
               "max_overlap": shared, "label_dim": cell.data.label_dim if cell.data.family == "hypercube" else 0}
    lists = {"gamma": gam[:d + 1], "T_eig": T_eigs[:d]}
    if cell.data.family == "hypercube":
        g_perfect = perfect_features(cell.data, d)
        f_perfect = g_perfect[model.natural_of]
        perm = numpy_rng(cell_id, 0, "lemma-4-1-permutation").permutation(model.A.shape[0])
        f_perm = th.permuted_features(f_perfect, model.A, model.natural_of, perm)
        f_lin = model.X @ th.linear_minimiser(model.X, model.W, d)
        errs, convs = _probe_errors(np.stack([f_perfect, f_perm, f_lin]), model.joint, cell.eval.probe_C, device)
        for name, f, e, c in (("perfect", f_perfect, errs[0], convs[0]), ("permuted", f_perm, errs[1], convs[1]),
                              ("linear_opt", f_lin, errs[2], convs[2])):
            al, un = th.alignment_uniformity(f, model.W)
            scalars.update({f"{name}_loss": th.spectral_loss(f, model.W), f"{name}_probe_error": e,
                            f"{name}_probe_converged": c, f"{name}_align": al, f"{name}_uniform": un})
    return {"scalars": scalars, "lists": lists, "U_top": U[:, top]}
