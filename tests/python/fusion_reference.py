# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python half of tst_fusion: an independent float64 restatement of shimmer's Fusion flavour
(GlobalWorkspaceFusion: `GWLosses.step`, `broadcast_loss`, `contrastive_loss` in
shimmer/modules/losses.py; `FixedSharedSelection` and `DynamicQueryAttention` in
shimmer/modules/selection.py; docs/gw-semantics.md 1.4, 2.3), with GW Studio's rule for keys that
shimmer would overwrite (a later group's demi-cycle, translation or fused key gets `_case_{G}`).

shimmer itself is not a dependency. Every domain module here is an identity with MSE (mean) losses.

  fusion_reference.py make SPEC.json STATE.pt
      a seeded GW of that module tree (random initial_gw_state too), saved with `state_dict()`: the
      twins under loss_mod included, as shimmer saves it
  fusion_reference.py SPEC.json WEIGHTS.pt BATCH.pt RESULT.pt
      SPEC: {"domains": {name: latent_dim}, "workspace": W, "encoder": {hidden, layers},
             "decoder": {...}, "selection": "fixed_shared" | "dynamic_query_attention",
             "head_size": H, "n_steps": N, "groups": [[names...], ...],
             "coefs": {name: value}, "logit_scale": float,
             optional: "linear": bool, "linear_bias": bool (one nn.Linear per GW encoder and decoder,
             shimmer-ssd's linear_domains), "activation": "tanh" | "identity" | "sigmoid" | "relu"
             (shimmer GWModule's fusion_activation_fn, tanh by default)}
      WEIGHTS: GW Studio's `gw export` of such a GW (shimmer's layout, loaded strictly)
      BATCH: "{i}/{domain}" -> (B, L) latents of group i
      RESULT: every metric name -> () float64 tensor, plus "loss", and "scores/{subset}" for the
              selection's scores of each subset of the last group
"""
import itertools
import json
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shimmer_layout import ContrastiveLoss, GWModule  # noqa: E402  (shimmer's registrations, restated)


class Attention(nn.Module):
    """Registrations of shimmer's DynamicQueryAttention."""

    def __init__(self, dim, head, names):
        super().__init__()
        self.query_layer = nn.Linear(dim, head)
        self.key_layers = nn.ModuleDict({k: nn.Linear(dim, head) for k in names})
        self.register_buffer("initial_gw_state", torch.zeros(dim))


class Losses(nn.Module):
    def __init__(self, gw_mod, sel):
        super().__init__()
        self.gw_mod = gw_mod
        self.domain_mods = gw_mod.domain_mods
        if sel is not None:
            self.selection_mod = sel
        self.contrastive_fn = ContrastiveLoss(0.0, False)


class Fusion(nn.Module):
    def __init__(self, spec):
        super().__init__()
        self.gw_mod = GWModule(spec["domains"], spec["workspace"], spec["encoder"], spec["decoder"],
                               spec.get("linear", False), spec.get("linear_bias", False))
        sel = None
        if spec["selection"] == "dynamic_query_attention":
            sel = Attention(spec["workspace"], spec["head_size"], list(spec["domains"]))
            self.selection_mod = sel
        self.loss_mod = Losses(self.gw_mod, sel)


def main(spec_path, weights_path, batch_path, out_path):
    spec = json.load(open(spec_path))
    model = Fusion(spec)
    model.load_state_dict(torch.load(weights_path, weights_only=True), strict=True)
    model = model.double()
    gw = model.gw_mod
    names = list(spec["domains"])
    batch = {k: v.double() for k, v in torch.load(batch_path, weights_only=True).items()}
    groups = [{d: batch[f"{i}/{d}"] for d in g} for i, g in enumerate(spec["groups"])]

    def encode(lat):
        return {d: gw.gw_encoders[d](x) for d, x in lat.items()}

    def select(lat, pre):
        if spec["selection"] == "fixed_shared":
            return {d: torch.full((x.shape[0],), 1.0 / len(pre), dtype=torch.float64) for d, x in pre.items()}
        sel = model.selection_mod
        keys = {d: sel.key_layers[d](x) for d, x in lat.items()}
        b = next(iter(lat.values())).shape[0]

        def attend(q):
            dots = torch.stack([(k * q).sum(1) for k in keys.values()], 1)
            s = torch.softmax(dots, 1)
            return {d: s[:, i] for i, d in enumerate(keys)}

        s = attend(sel.query_layer(sel.initial_gw_state.expand(b, -1)))
        for _ in range(spec["n_steps"]):
            f = sum(s[d][:, None] * pre[d] for d in s)
            s = attend(sel.query_layer(f))
        return s

    activation = {"tanh": torch.tanh, "identity": lambda x: x, "sigmoid": torch.sigmoid,
                  "relu": torch.relu}[spec.get("activation", "tanh")]

    def fuse(pre, s):
        return activation(sum(s[d][:, None] * pre[d] for d in s))

    def decode(z, which):
        return {d: gw.gw_decoders[d](z) for d in which}

    def mse(a, b):
        return ((a - b) ** 2).mean()

    def label(ns):
        return "{" + ",".join(sorted(ns)) + "}"

    metrics, losses = {}, {}
    scores_out = {}
    # contrastive: every pair of each group of two or more domains, once
    seen, cont = [], []
    scale = min(math.exp(float(model.loss_mod.contrastive_fn.logit_scale)), 100.0)
    for lat in groups:
        if len(lat) < 2:
            continue
        enc = encode(lat)
        ds = list(lat)
        for i in range(len(ds)):
            for j in range(i + 1, len(ds)):
                if {ds[i], ds[j]} in seen:
                    continue
                seen.append({ds[i], ds[j]})
                x = nn.functional.normalize(enc[ds[i]], dim=1)
                y = nn.functional.normalize(enc[ds[j]], dim=1)
                logits = scale * x @ y.T
                t = torch.arange(x.shape[0])
                v = 0.5 * (nn.functional.cross_entropy(logits, t) + nn.functional.cross_entropy(logits.T, t))
                metrics[f"contrastive_{ds[i]}_and_{ds[j]}"] = v
                cont.append(v)
    if cont:
        metrics["contrastives"] = torch.stack(cont).mean()

    fam = {"demi_cycles": [], "cycles": [], "translations": [], "fused": []}
    for gi, lat in enumerate(groups):
        enc = encode(lat)
        case = label(lat)
        for mask in itertools.product([0, 1], repeat=len(lat)):
            if not any(mask):
                continue
            sel_lat = {d: lat[d] for d, m in zip(lat, mask) if m}
            sel_enc = {d: enc[d] for d in sel_lat}
            s = select(sel_lat, sel_enc)
            if gi == len(groups) - 1:
                for d in s:
                    scores_out[f"scores/{label(sel_lat)}/{d}"] = s[d]
            pred = decode(fuse(sel_enc, s), names)
            for d, p in pred.items():
                if d not in lat:
                    continue
                if len(sel_lat) == 1 and d in sel_lat:
                    f = "demi_cycles"
                elif d not in sel_lat:
                    f = "translations"
                else:
                    f = "fused"
                key = f"from_{label(sel_lat)}_to_{d}"
                if key + "_loss" in losses:
                    key += f"_case_{case}"
                losses[key + "_loss"] = mse(p, lat[d])
                fam[f].append(losses[key + "_loss"])
            if len(sel_lat) < len(names):
                inv = {d: p for d, p in pred.items() if d not in sel_lat}
                inv_enc = encode(inv)
                back = decode(fuse(inv_enc, select(inv, inv_enc)), list(sel_lat))
                for d in sel_lat:
                    key = f"from_{label(sel_lat)}_through_{label(inv)}_to_{d}_case_{case}_loss"
                    losses[key] = mse(back[d], lat[d])
                    fam["cycles"].append(losses[key])
    for f, v in fam.items():
        if v:
            metrics[f] = torch.stack(v).mean()
    metrics.update(losses)
    coefs = spec["coefs"]
    terms = [c * metrics[k] for k, c in coefs.items() if c > 0 and k in metrics]
    metrics["loss"] = torch.stack(terms).mean()
    bl = [metrics[k] for k, c in coefs.items() if c > 0 and k != "contrastives" and k in metrics]
    if bl:
        metrics["broadcast_loss"] = torch.stack(bl).mean()
    metrics.update(scores_out)
    torch.save({k: v.detach() for k, v in metrics.items()}, out_path)


def make(spec_path, out_path):
    torch.manual_seed(0)
    model = Fusion(json.load(open(spec_path)))
    if hasattr(model, "selection_mod"):
        model.selection_mod.initial_gw_state.uniform_()
    model.loss_mod.contrastive_fn.logit_scale.fill_(math.log(1 / 0.07))
    torch.save(model.state_dict(), out_path)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(*sys.argv[2:4])
    else:
        main(*sys.argv[1:5])
