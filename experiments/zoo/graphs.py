"""The zoo's graph bench: Deep Graph Infomax on a stochastic block model, with its exact spectra."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from experiments import objectives
from experiments.engine.config import to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.engine.train import gather_rows, train
from experiments.latent_eval import metric_rows
from experiments.zoo.config import Cell
from experiments.zoo.views import probe_curve_rows
from synthetic_data.zoo import normalised_adjacency
from theory import zoo as th
from theory.zoo import collapse_diagnostic

# ============================================================================================= the graph bench
# Deep Graph Infomax on the stochastic block model (synthetic_data.zoo.SBMSpec). Each seed draws its own graph and
# node features from the one block model of the data spec (stream "graph"), and its own split of every block into
# probe_test_per_class test nodes and a labelled pool (stream "graph-split"); the encoder is a one-layer GCN
# H = ReLU(A^ X W), A^ = D~^{-1/2}(A + I)D~^{-1/2}, W (G, D, d) from stream "init" (Glorot uniform), shared by
# the random, supervised and DGI cells of a variant. Training is full batch (every node every step). DGI's
# corruption is a fresh row permutation of X per step, per seed (stream "corruption"). No Lemma 4.3 terms are
# measured here: a node's representation reads its neighbours, so there are no i.i.d. positive pairs of the
# latent-class model to read the lemma on (docs/theory/zoo.md#bench-5-graphs).


def gcn(W: torch.Tensor, a_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One GCN layer, batched: ReLU(A^ X W); W (G, D, d), a_hat (G, N, N), x (G, N, D) -> (G, N, d)."""
    return torch.relu(torch.bmm(a_hat, torch.bmm(x, W)))


class Graphs:
    """The cell's graphs (one per seed, stacked along G), their propagation matrices, features and splits."""

    def __init__(self, cell: Cell, model, data_id: str, device: str = "cpu"):
        drawn = [model.sample_graph(numpy_rng(data_id, s, "graph")) for s in cell.seeds]
        self.a = torch.as_tensor(np.stack([g[0] for g in drawn]), device=device)         # (G, N, N)
        self.a_hat = normalised_adjacency(self.a)
        self.x = torch.as_tensor(np.stack([g[1] for g in drawn]), device=device)         # (G, N, D)
        self.y = model.labels
        n_test = cell.eval.probe_test_per_class          # graphs.test_per_class (zoo_config.cells)
        test, pool = [], []
        for s in cell.seeds:
            r = numpy_rng(data_id, s, "graph-split")
            perms = [r.permutation(np.flatnonzero(self.y == c)) for c in range(model.n_classes)]
            test.append(np.concatenate([q[:n_test] for q in perms]))
            pool.append(np.concatenate([q[n_test:] for q in perms]))
        self.test, self.pool = np.stack(test), np.stack(pool)                              # (G, K n_test), (G, P)


def graph_init_params(cell: Cell, data_id: str, in_dim: int, device: str = "cpu") -> dict:
    """The GCN weight W (G, D, d), Glorot uniform from stream "init", then DGI's discriminator (disc_W (G, d, d),
    Glorot uniform from "init-disc", disc_b = 0, as the official code) or the supervised head (head_W, head_b)."""
    G, d, seeds = len(cell.seeds), cell.encoder.out_dim, cell.seeds

    def glorot(i, o, stream):
        a = math.sqrt(6.0 / (i + o))
        return torch.stack([(torch.rand(i, o, generator=torch_generator(data_id, s, stream)) * 2 - 1) * a
                            for s in seeds]).to(device)
    p = {"W": glorot(in_dim, d, "init")}
    if cell.objective == "dgi":
        p["disc_W"] = glorot(d, d, "init-disc")
        p["disc_b"] = torch.zeros(G, device=device)
    if cell.objective == "supervised":
        p["head_W"] = glorot(d, cell.data.n_classes, "init-head")
        p["head_b"] = torch.zeros(G, 1, cell.data.n_classes, device=device)
    return p


def graph_labelled(cell: Cell, graphs: Graphs) -> np.ndarray:
    """(G, K n) the supervised reference's labelled nodes: the first n = min(labelled_per_class, pool per block)
    of every block of the seed's labelled pool (the pool is laid out block by block, already shuffled)."""
    K = cell.data.n_classes
    per = graphs.pool.shape[1] // K
    n = min(cell.train.labelled_per_class, per)
    return graphs.pool.reshape(len(cell.seeds), K, per)[:, :, :n].reshape(len(cell.seeds), -1)


class GraphObjective:
    """loss(params, step) -> (G,) for DGI or the supervised GCN, with the losses it returned (``history``)."""

    def __init__(self, cell: Cell, graphs: Graphs, data_id: str, device: str = "cpu"):
        self.cell, self.g, self.obj, self.device = cell, graphs, cell.objective, device
        self.history: list[torch.Tensor] = []
        self.gens = [torch_generator(data_id, s, "corruption") for s in cell.seeds]
        if self.obj == "supervised":
            idx = graph_labelled(cell, graphs)
            self.idx = torch.as_tensor(idx, device=device)
            self.y = torch.as_tensor(graphs.y[idx], device=device)

    def corruption(self) -> torch.Tensor:
        """(G, N) this step's row permutation of each seed's node features."""
        N = self.g.x.shape[1]
        return torch.stack([torch.randperm(N, generator=g) for g in self.gens]).to(self.device)

    def __call__(self, p: dict, step: int) -> torch.Tensor:
        loss = self._loss(p)
        self.history.append(loss.detach())
        return loss

    def _loss(self, p: dict) -> torch.Tensor:
        g = self.g
        h = gcn(p["W"], g.a_hat, g.x)
        if self.obj == "supervised":
            logits = torch.bmm(gather_rows(h, self.idx), p["head_W"]) + p["head_b"]
            return objectives.supervised_ce(logits, self.y)
        if self.obj == "dgi":
            h_corrupt = gcn(p["W"], g.a_hat, gather_rows(g.x, self.corruption()))
            return objectives.dgi(h, h_corrupt, objectives.dgi_readout(h), p["disc_W"], p["disc_b"])
        raise ValueError(f"objective: unknown graph objective {self.obj!r}")


def train_graph_cell(cell: Cell, model, graphs: Graphs, data_id: str, device: str = "cpu"):
    params = graph_init_params(cell, data_id, model.input_dim, device)
    loss_fn = GraphObjective(cell, graphs, data_id, device)
    (_, final), = train(params, loss_fn, cell.train.steps, cell.train.lr, [cell.train.steps], context=to_json(cell),
                        weight_decay=cell.train.weight_decay)
    return final, loss_fn


def graph_representation(cell: Cell, model, graphs: Graphs, params: dict | None) -> torch.Tensor:
    """(G, N, q) every node's representation: the features (raw), the top-K eigenvectors of the expected
    normalised adjacency (spectral; the same for every seed, the block sizes being fixed), or the GCN's output."""
    G = len(cell.seeds)
    if cell.objective == "raw":
        return graphs.x
    if cell.objective == "spectral":
        sp = cell.data
        v = th.sbm_top_eigenvectors(model.labels, model.sizes, sp.p_in, sp.p_out, sp.n_classes)
        return torch.as_tensor(v, dtype=torch.float32, device=graphs.x.device).expand(G, -1, -1)
    return gcn(params["W"], graphs.a_hat, graphs.x)


def spectral_values(cell: Cell, model, graphs: Graphs) -> dict:
    """The block model's exact spectral quantities (the same for every seed) and the observed graphs' own:
    expected_eig_1..K+1 (E[A], decreasing), expected_eigengap (lambda_K - lambda_K+1 of E[A]), the same gap of
    the expected normalised adjacency, and per seed the eigengap of the observed normalised adjacency."""
    sp, K, G = cell.data, cell.data.n_classes, len(cell.seeds)
    ev = th.sbm_adjacency_spectrum(model.sizes, sp.p_in, sp.p_out)
    nev = th.sbm_normalised_spectrum(model.sizes, sp.p_in, sp.p_out)
    out = {f"expected_eig_{i + 1}": np.full(G, ev[i]) for i in range(K + 1)}
    out["expected_eigengap"] = np.full(G, th.sbm_eigengap(ev, K))
    out["expected_norm_eigengap"] = np.full(G, th.sbm_eigengap(nev, K))
    obs = torch.linalg.eigvalsh(graphs.a_hat.double().cpu()).flip(-1).numpy()                    # (G, N)
    out["observed_norm_eigengap"] = obs[:, K - 1] - obs[:, K]
    return out


def graph_probe_rows(cell: Cell, graphs: Graphs, f: torch.Tensor, base: dict, step: int, data_id: str,
                     seeds_lrs) -> list:
    """The probe curve on the graph: model g's probe trains on n labelled nodes per block of its own pool and is
    tested on its own test nodes (``probe_curve_rows``)."""
    G = len(cell.seeds)
    f = f.double().cpu()
    rows_g = torch.arange(G)[:, None]
    return probe_curve_rows(cell, f[rows_g, torch.as_tensor(graphs.pool)], graphs.y[graphs.pool],
                            f[rows_g, torch.as_tensor(graphs.test)], graphs.y[graphs.test], cell.data.n_classes,
                            base, step, data_id, seeds_lrs)


def _graph_mean_accuracy(graphs: Graphs, f: torch.Tensor, K: int) -> np.ndarray:
    """Accuracy on the test nodes of argmax_c mu_c . f(x), mu_c the mean representation of block c's pool."""
    f = f.double().cpu()
    G = f.shape[0]
    pool = f[torch.arange(G)[:, None], torch.as_tensor(graphs.pool)]
    mu = pool.reshape(G, K, -1, f.shape[-1]).mean(2)
    test = f[torch.arange(G)[:, None], torch.as_tensor(graphs.test)]
    y = torch.as_tensor(graphs.y[graphs.test])
    return (torch.bmm(test, mu.transpose(1, 2)).argmax(-1) == y).double().mean(-1).numpy()


def run_graph(cell: Cell, model, data_id: str, device: str = "cpu") -> pd.DataFrame:
    """One graph-bench cell: train (DGI, supervised), then the probe curve, the mean classifier's accuracy and the
    collapse measures on the test nodes, and in the spectral cell the exact spectral quantities. No Lemma 4.3
    terms (L_un, ...): the bench has no bound rows."""
    graphs = Graphs(cell, model, data_id, device)
    seeds_lrs = [(s, cell.train.lr) for s in cell.seeds]
    base = {"objective": cell.objective, "variant": cell.variant, "n_classes": cell.data.n_classes,
            "loss": "none", "k": 0, "target_error": cell.eval.target_error}
    params, values, step = None, {}, 0
    if cell.objective == "random":
        params = graph_init_params(cell, data_id, model.input_dim, device)
    elif cell.objective not in ("raw", "spectral"):
        params, loss_fn = train_graph_cell(cell, model, graphs, data_id, device)
        step = cell.train.steps
        tail = torch.stack(loss_fn.history[-max(1, min(10, len(loss_fn.history))):])
        values["train_loss"] = tail.mean(0).cpu().numpy()
    with torch.no_grad():
        f = graph_representation(cell, model, graphs, params)
        values["mean_acc"] = _graph_mean_accuracy(graphs, f, cell.data.n_classes)
        z_test = f[torch.arange(f.shape[0])[:, None], torch.as_tensor(graphs.test, device=f.device)]
        values.update(collapse_diagnostic(z_test, cell.data.n_classes))
        if cell.objective == "spectral":
            values.update(spectral_values(cell, model, graphs))
        rows = metric_rows(base, step, values, seeds_lrs)
        with stage("probes"):
            rows += graph_probe_rows(cell, graphs, f, base, step, data_id, seeds_lrs)
    return pd.DataFrame(rows)
