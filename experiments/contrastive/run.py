"""One contrastive cell: sample, train every seed and variant as one batched model, evaluate every checkpoint.

Randomness: the latent-class model comes from the data spec's own hash, so every cell on the same data spec
sees the same classes; training data, initialisation, probe labels and evaluation pools come from
(cell id, seed, stream). Learning-rate variants of one seed share its data and its initialisation, so they
differ only in the learning rate.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from experiments import objectives
from experiments.contrastive import generalisation
from experiments.contrastive.config import UNTRAINED, Cell
from experiments.encoders import encode, init_encoder
from experiments.engine.config import config_hash, to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.schedule import checkpoint_steps
from experiments.engine.timing import stage
from experiments.engine.train import train
from experiments.latent_eval import (
    Batches,
    EvalSet,
    encode_tuple,
    encoder_params,
    metric_rows,
    per_model,
    per_seed,
)
from synthetic_data.contrastive import build_model


def _objective(cell: Cell, model, rngs, n_variants: int, device: str):
    """loss_fn(params, step) -> (G,) for the cell's objective; ``loss_fn.train_tuples`` keeps the sample."""
    tr, obj = cell.train, cell.objective
    rep = n_variants
    if obj == "supervised":
        labelled = [model.sample_labelled(tr.labelled_per_class, r) for r in rngs]
        x = per_model([xy[0] for xy in labelled], rep, device)
        y = torch.as_tensor(np.stack([xy[1] for xy in labelled]), device=device).repeat_interleave(rep, 0)
        batches = Batches(rngs, tr.steps, tr.batch_size, x.shape[1], rep, device)

        def loss_fn(p, step):
            z = encode(encoder_params(p), batches.take(x, step))
            return objectives.supervised_ce(torch.bmm(z, p["head"]), batches.take(y, step))
        return loss_fn
    # Seed-level (S, ...) samples: the learning-rate variants of a seed read its rows (Batches.take), so the
    # sample is held once per seed in float32, never once per model (the paper's k = 64 cell: 3.4 GB, not 13.5 GB).
    if obj == "block":
        blocks = (model.sample_blocks(tr.n_tuples, cell.block_size, r) for r in rngs)
    else:
        blocks = (model.sample_tuples(tr.n_tuples, cell.k, r) for r in rngs)
    x, pos, neg = per_seed(blocks, len(rngs), device)
    batches = Batches(rngs, tr.steps, tr.batch_size, tr.n_tuples, rep, device)
    temperature = tr.temperature

    def loss_fn(p, step):
        xb, pb, nb = batches.take(x, step), batches.take(pos, step), batches.take(neg, step)
        if obj == "ntxent":
            return objectives.ntxent(encode(p, xb), encode(p, pb), temperature)
        z, zp, zn = encode_tuple(p, xb, pb, nb)
        if obj == "block":
            return objectives.block(z, zp, zn, base=cell.loss)
        if obj == "logistic":
            return objectives.logistic(z, zp, zn)
        if obj == "hinge":
            return objectives.hinge(z, zp, zn)
        raise ValueError(f"objective: unknown {obj!r}")
    loss_fn.train_tuples = (x, pos, neg)
    return loss_fn


def _init(cell: Cell, cell_id: str, model, n_models_per_seed: int, device: str) -> dict:
    gens = [torch_generator(cell_id, s, "init") for s in cell.seeds for _ in range(n_models_per_seed)]
    enc = cell.encoder
    params = init_encoder(enc.kind, model.input_dim, enc.out_dim, len(gens), gens, width=enc.width, device=device)
    if cell.objective == "supervised":
        C, d = cell.data.n_classes, enc.out_dim
        head = torch.stack([(torch.rand(d, C, generator=g) * 2 - 1) / d ** 0.5 for g in gens]).to(device)
        params["head"] = head
    return params


def _encoder_fn(params, n_models: int):
    """x (1 or G, N, D) -> features (G, N, d); ``params`` None means the raw inputs are the features."""
    enc_params = None if params is None else encoder_params(params)

    def enc(x: torch.Tensor) -> torch.Tensor:
        x = x.expand(n_models, *x.shape[1:]) if x.shape[0] == 1 else x
        return x if enc_params is None else encode(enc_params, x)
    return enc


def run(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    """Train one cell's objective (every seed and learning rate as one batched model) and measure it.

    ``raw`` and ``random`` are the untrained references, measured at step 0 only. The paper's logistic and hinge
    losses hand their own loss function to the evaluation, so L_hat_un at each checkpoint is the very objective
    that was minimised. Returns the tidy rows (one per metric, seed, learning rate and checkpoint) that
    ``analysis.contrastive.bound_checks`` turns into bound rows.
    """
    if isinstance(cell, generalisation.GenCell):
        return pd.DataFrame(generalisation.run(cell, cell_id, device))
    model = build_model(cell.data, numpy_rng(config_hash(cell.data), 0, "latent-model"))
    seeds_lrs = [(s, lr) for s in cell.seeds for lr in cell.train.lr]
    V = len(cell.train.lr)
    base = {"objective": cell.objective, "loss": cell.loss, "n_classes": cell.data.n_classes, "k": cell.k,
            "block_size": cell.block_size, "target_error": cell.eval.target_error}

    loss_fn = None
    if cell.objective == "raw":
        checkpoints = [(0, None)]
    else:
        params = _init(cell, cell_id, model, V, device)
        if cell.objective == "random":
            checkpoints = [(0, params)]
        else:
            rngs = [numpy_rng(cell_id, s, "train-data") for s in cell.seeds]
            loss_fn = _objective(cell, model, rngs, V, device)
            lr = torch.tensor([lr for _, lr in seeds_lrs], device=device)
            steps = checkpoint_steps(cell.train.steps, cell.train.n_checkpoints)
            checkpoints = train(params, loss_fn, cell.train.steps, lr, steps, context=to_json(cell),
                                weight_decay=cell.train.weight_decay)
    with torch.no_grad():
        return pd.DataFrame(_evaluate(cell, cell_id, model, checkpoints, base, seeds_lrs, device,
                                      loss_fn if cell.objective in ("logistic", "hinge") else None))


def _evaluate(cell, cell_id, model, checkpoints, base, seeds_lrs, device, loss_fn) -> list[dict]:
    ev = EvalSet(cell, model, cell_id, device)
    rows: list[dict] = []
    for i, (step, p) in enumerate(checkpoints):
        enc = _encoder_fn(p, len(seeds_lrs))
        values = {"mean_acc": ev.mean_classifier_accuracy(enc)}
        if cell.objective not in UNTRAINED:
            with stage("theory"):
                values.update(ev.theory_terms(enc, p, loss_fn))
        rows += metric_rows(base, step, values, seeds_lrs)
        if cell.probe_n and i == len(checkpoints) - 1:
            with stage("probes"):
                rows += ev.probe_rows(enc, base, step, seeds_lrs)
    return rows
