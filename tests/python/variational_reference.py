# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python half of tst_fusion's checks of the `variational` and `bayesian` flavours: an independent
float64 restatement, written from the specification in docs/gw-semantics.md 1.5 and checked by hand
against shimmer's sources (shimmer itself is not a dependency, and none of its code is here):

  variational: shimmer tag 0.4.0, shimmer/modules/gw_module.py (VariationalGWEncoder,
      VariationalGWInterface, VariationalGWModule), global_workspace.py (VariationalGlobalWorkspace),
      losses.py (VariationalGWLosses, _contrastive_loss_with_uncertainty, kl_loss),
      contrastive_loss.py (contrastive_loss_with_uncertainty), vae.py (kl_divergence_loss).
      Evaluation mode: every state is its mean (no draw).
  bayesian: shimmer tag v0.5.1, shimmer/modules/gw_module.py (GWModuleBayesian,
      compute_fusion_scores), global_workspace.py (GlobalWorkspaceBayesian), losses.py
      (GWLossesBayesian, contrastive_loss_bayesian, broadcast_loss), selection.py
      (FixedSharedSelection); with GW Studio's `_case_{G}` rule for broadcast keys shimmer would
      overwrite (as fusion_reference.py).

Every domain module is an identity with MSE (mean) losses.

  variational_reference.py SPEC.json WEIGHTS.pt BATCH.pt RESULT.pt
      SPEC: {"flavour": "variational" | "bayesian", "domains": {name: latent_dim}, "workspace": W,
             "encoder": {hidden, layers}, "decoder": {...}, "groups": [[names...], ...],
             "coefs": {name: value}, "params": {flavour parameter: value}}
      WEIGHTS: GW Studio's `gw export` of such a GW (shimmer's layout), loaded with strict=True
      BATCH: "{i}/{domain}" -> (B, L) latents of group i
      RESULT: every metric name -> () float64 tensor, plus "loss"
  variational_reference.py make SPEC.json STATE.pt
      a seeded GW of that module tree (uncertainty levels and precisions drawn, not at their initial
      values), saved with state_dict(): the twins under loss_mod included, as shimmer saves it
  variational_reference.py old SPEC.json STATE.pt OLD.ckpt
      (variational) STATE's weights as a shimmer 0.4.0 Lightning checkpoint: GW encoders and decoders
      inside gw_mod.gw_interfaces.{d}.encoder|decoder, loss-coefficient buffers, no migration recorded
"""
import itertools
import json
import math
import os
import sys
from collections import OrderedDict

import torch
from torch import nn
from torch.nn.functional import cross_entropy, normalize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shimmer_layout import ContrastiveLoss, GWMlp, GWModule, ParameterFreeDomain  # noqa: E402


class UncertainEncoder(nn.Module):
    """0.4.0's registrations: the MLP and its tanh under `layers`, the log-variance beside it."""

    def __init__(self, n, enc, workspace):
        super().__init__()
        self.layers = nn.Sequential(*GWMlp(n, enc["hidden"], workspace, enc["layers"]), nn.Tanh())
        self.uncertainty_level = nn.Parameter(torch.full((workspace,), 3.0))


class VariationalGWModule(nn.Module):
    def __init__(self, dims, workspace, enc, dec):
        super().__init__()
        self.domain_mods = nn.ModuleDict({d: ParameterFreeDomain() for d in dims})
        self.gw_encoders = nn.ModuleDict({d: UncertainEncoder(n, enc, workspace) for d, n in dims.items()})
        self.gw_decoders = nn.ModuleDict({d: GWMlp(workspace, dec["hidden"], n, dec["layers"]) for d, n in dims.items()})


class BayesianGWModule(GWModule):
    def __init__(self, dims, workspace, enc, dec):
        super().__init__(dims, workspace, enc, dec)
        self.precisions = nn.ParameterDict({d: nn.Parameter(torch.randn(workspace)) for d in dims})


class LossModule(nn.Module):
    def __init__(self, gw_mod, contrastive_name):
        super().__init__()
        self.gw_mod = gw_mod
        self.domain_mods = gw_mod.domain_mods
        setattr(self, contrastive_name, ContrastiveLoss(0.0, False))


class Model(nn.Module):
    def __init__(self, spec):
        super().__init__()
        args = (spec["domains"], spec["workspace"], spec["encoder"], spec["decoder"])
        params = spec.get("params", {})
        if spec["flavour"] == "variational":
            self.gw_mod = VariationalGWModule(*args)
            name = "var_contrastive_fn" if params.get("var_contrastive_loss") else "contrastive_fn"
        else:
            self.gw_mod = BayesianGWModule(*args)
            name = "contrastive_fn"
        self.loss_mod = LossModule(self.gw_mod, name)
        self.contrastive_name = name


def clip(x, y, scale):
    """CLIP's symmetric cross-entropy of the scaled cosine similarities of the rows of x and y."""
    logits = scale * normalize(x, dim=1) @ normalize(y, dim=1).T
    t = torch.arange(x.shape[0])
    return 0.5 * (cross_entropy(logits, t) + cross_entropy(logits.T, t))


def mse(a, b):
    return ((a - b) ** 2).mean()


def mean_of(values):
    return torch.stack(values).mean()


def variational_metrics(model, spec, groups):
    gw = model.gw_mod
    names = list(spec["domains"])
    unc = bool(spec.get("params", {}).get("var_contrastive_loss"))
    scale = min(math.exp(float(getattr(model.loss_mod, model.contrastive_name).logit_scale)), 100.0)

    def mu(d, u):  # the mean of domain d's state
        return gw.gw_encoders[d].layers(u)

    def logvar(d, m):
        return gw.gw_encoders[d].uncertainty_level.expand_as(m)

    def dec(d, z):
        return gw.gw_decoders[d](z)

    out, fam = {}, {"demi_cycles": [], "cycles": [], "translations": [], "contrastives": [], "kl": []}
    for g in groups:
        if len(g) == 1:
            (s, u), = g.items()
            out[f"demi_cycle_{s}"] = mse(dec(s, mu(s, u)), u)
            fam["demi_cycles"].append(out[f"demi_cycle_{s}"])
    for g in groups:
        if len(g) == 1:
            (s, u), = g.items()
            for t in names:
                if t != s:
                    k = f"cycle_{s}_through_{t}"
                    out[k] = mse(dec(s, mu(t, dec(t, mu(s, u)))), u)
                    fam["cycles"].append(out[k])
    for g in groups:
        if len(g) < 2:
            continue
        for s in g:
            for t in g:
                if t != s:
                    k = f"translation_{s}_to_{t}"
                    out[k] = mse(dec(t, mu(s, g[s])), g[t])
                    fam["translations"].append(out[k])
    seen = []
    for g in groups:
        if len(g) < 2:
            continue
        ds = list(g)
        for i, a in enumerate(ds):
            for b in ds[i + 1:]:
                if {a, b} in seen:
                    continue
                seen.append({a, b})
                k = f"contrastive_{a}_and_{b}"
                ma, mb = mu(a, g[a]), mu(b, g[b])
                if unc:
                    n = 1 + torch.exp(0.5 * logvar(a, ma)) + torch.exp(0.5 * logvar(b, mb))
                    xs, ys = normalize(ma, dim=1) / n, normalize(mb, dim=1) / n
                    logits = scale * xs @ ys.T
                    t = torch.arange(ma.shape[0])
                    out[k] = 0.5 * (cross_entropy(logits, t) + cross_entropy(logits.T, t))
                    out[k + "_no_uncertainty"] = clip(ma, mb, scale)
                else:
                    out[k] = clip(ma, mb, scale)
                out[k + "_logit_scale"] = torch.tensor(math.exp(float(getattr(model.loss_mod, model.contrastive_name).logit_scale)),
                                                      dtype=torch.float64)
                fam["contrastives"].append(out[k])
    for g in groups:
        if len(g) == 1:
            (s, u), = g.items()
            m = mu(s, u)
            lv = logvar(s, m)
            kl = -0.5 * (1 + lv - m ** 2 - lv.exp()).sum()
            out[f"kl_{s}"] = kl / (m.shape[0] + m.shape[1])
            fam["kl"].append(out[f"kl_{s}"])
    for f, v in fam.items():
        if v:
            out[f] = mean_of(v)
    return out


def bayesian_metrics(model, spec, groups):
    gw = model.gw_mod
    names = list(spec["domains"])
    p = spec.get("params", {})
    temp = float(p.get("precision_softmax_temp", 0.01))
    c1 = float(p.get("sensitivity_selection", 1.0))
    c2 = float(p.get("sensitivity_precision", 1.0))
    normalized = bool(p.get("use_normalized_contrastive", True))
    raw_scale = float(model.loss_mod.contrastive_fn.logit_scale)
    scale = min(math.exp(raw_scale), 100.0)
    eps = 1e-6

    def encode(lat):
        return {d: gw.gw_encoders[d](x) for d, x in lat.items()}

    def fuse(pre):
        # fixed shared selection: every domain of the subset weighs 1/|S|
        ds = list(pre)
        b = next(iter(pre.values())).shape[0]
        a = torch.full((len(ds), b, 1), 1.0 / len(ds), dtype=torch.float64)
        prec = torch.stack([gw.precisions[d].expand(b, -1) for d in ds])
        soft = torch.softmax(torch.tanh(prec) * temp, dim=0)
        lam = 1.0 / (eps + c1 / (eps + a) + c2 / (eps + soft))
        lam = lam / lam.sum(0, keepdim=True)
        return torch.tanh((lam * torch.stack([pre[d] for d in ds])).sum(0))

    def decode(z, which):
        return {d: gw.gw_decoders[d](z) for d in which}

    def label(ns):
        return "{" + ",".join(sorted(ns)) + "}"

    out, losses = {}, {}
    seen, cont = [], []
    for lat in groups:
        if len(lat) < 2:
            continue
        enc = encode(lat)
        ds = list(lat)
        for i, a in enumerate(ds):
            for b in ds[i + 1:]:
                if {a, b} in seen:
                    continue
                seen.append({a, b})
                k = f"contrastive_{a}_and_{b}"
                if normalized:
                    bsz = enc[a].shape[0]
                    w = torch.softmax(temp * torch.stack([gw.precisions[a].expand(bsz, -1), gw.precisions[b].expand(bsz, -1)]), dim=0)
                    n = torch.sqrt(w[0] * w[1])
                    out[k] = clip(enc[a] * n, enc[b] * n, scale)
                    out[f"unnorm_{k}"] = clip(enc[a], enc[b], scale)
                else:
                    out[k] = clip(enc[a], enc[b], scale)
                out[k + "_logit_scale"] = torch.tensor(math.exp(raw_scale), dtype=torch.float64)
                cont.append(out[k])
    if cont:
        out["contrastives"] = mean_of(cont)
    fam = {"demi_cycles": [], "cycles": [], "translations": [], "fused": []}
    for lat in groups:
        enc = encode(lat)
        case = label(lat)
        for mask in itertools.product([0, 1], repeat=len(lat)):
            if not any(mask):
                continue
            chosen = [d for d, m in zip(lat, mask) if m]
            pred = decode(fuse({d: enc[d] for d in chosen}), names)
            for d, x in pred.items():
                if d not in lat:
                    continue
                f = "translations" if d not in chosen else ("demi_cycles" if len(chosen) == 1 else "fused")
                key = f"from_{label(chosen)}_to_{d}"
                if key + "_loss" in losses:
                    key += f"_case_{case}"
                losses[key + "_loss"] = mse(x, lat[d])
                fam[f].append(losses[key + "_loss"])
            rest = [d for d in names if d not in chosen]
            if rest:
                back = decode(fuse(encode({d: pred[d] for d in rest})), chosen)
                for d in chosen:
                    key = f"from_{label(chosen)}_through_{label(rest)}_to_{d}_case_{case}_loss"
                    losses[key] = mse(back[d], lat[d])
                    fam["cycles"].append(losses[key])
    for f, v in fam.items():
        if v:
            out[f] = mean_of(v)
    out.update(losses)
    return out


def main(spec_path, weights_path, batch_path, out_path):
    spec = json.load(open(spec_path))
    model = Model(spec)
    state = torch.load(weights_path, weights_only=True)
    model.load_state_dict(state, strict=True)
    model = model.double()
    batch = {k: v.double() for k, v in torch.load(batch_path, weights_only=True).items()}
    groups = [{d: batch[f"{i}/{d}"] for d in g} for i, g in enumerate(spec["groups"])]
    with torch.no_grad():
        if spec["flavour"] == "variational":
            metrics = variational_metrics(model, spec, groups)
        else:
            metrics = bayesian_metrics(model, spec, groups)
    coefs = spec["coefs"]
    metrics["loss"] = mean_of([c * metrics[k] for k, c in coefs.items() if c > 0 and k in metrics])
    if spec["flavour"] == "bayesian":
        terms = [metrics[k] for k, c in coefs.items() if c > 0 and k != "contrastives" and k in metrics]
        if terms:
            metrics["broadcast_loss"] = mean_of(terms)
    torch.save({k: v.detach() for k, v in metrics.items()}, out_path)
    print(f"loaded {len(state)} tensors strictly; {len(metrics)} metrics")


def make(spec_path, out_path):
    spec = json.load(open(spec_path))
    torch.manual_seed(0)
    model = Model(spec)
    with torch.no_grad():
        if spec["flavour"] == "variational":
            for enc in model.gw_mod.gw_encoders.values():
                enc.uncertainty_level.copy_(torch.randn_like(enc.uncertainty_level) - 1.0)
        getattr(model.loss_mod, model.contrastive_name).logit_scale.fill_(0.7)
    torch.save(model.state_dict(), out_path)
    print(f"saved {len(model.state_dict())} tensors")


def old(spec_path, state_path, out_path):
    """0.4.0's Lightning layout of STATE's weights (variational), no migration recorded."""
    spec = json.load(open(spec_path))
    state = torch.load(state_path, weights_only=True)
    od = OrderedDict()
    for k, v in state.items():
        for part, inner in (("gw_encoders", "encoder"), ("gw_decoders", "decoder")):
            for prefix in ("gw_mod.", "loss_mod.gw_mod."):
                if k.startswith(prefix + part + "."):
                    d, rest = k[len(prefix + part) + 1:].split(".", 1)
                    k = f"{prefix}gw_interfaces.{d}.{inner}.{rest}"
        od[k] = v
    for name in spec["coefs"]:
        od[f"coef_buffers.buffer_{name}"] = torch.tensor(float(spec["coefs"][name]))
        od[f"loss_mod.loss_coefs.buffer_{name}"] = torch.tensor(float(spec["coefs"][name]))
    torch.save({"epoch": 2, "global_step": 40, "state_dict": od, "hyper_parameters": {"workspace_dim": spec["workspace"]}},
               out_path)
    print(f"saved {len(od)} tensors in the 0.4.0 layout")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(*sys.argv[2:4])
    elif sys.argv[1] == "old":
        old(*sys.argv[2:5])
    else:
        main(*sys.argv[1:5])
