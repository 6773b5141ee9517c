# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python half of tst_attention: an independent float64 restatement of one training step of
shimmer's AttentionBase (shimmer/modules/attention_module.py, class AttentionBase, `generic_step`,
`apply_one_sided_corruption`, `apply_two_sided_corruption`, `calculate_mean_attention`; checked against
shimmer commit d729e5e) with the selections it trains (shimmer/modules/selection.py at d729e5e,
DynamicQueryAttention; KQFixedQSelection as of commit 61cc1d5, the last that has it), and GW Studio's
criterion: the fused state decoded into each domain of the group, MSE (mean) against the clean latent,
averaged over the group's domains (docs/gw-semantics.md 9).

shimmer itself is not a dependency; nothing here is copied from it. The corruption's random draws are
passed in (GW Studio draws them; this script normalises, scales and applies them itself). Every domain
module is an identity with MSE losses.

  attention_reference.py SPEC.json GW.pt ATTENTION.pt BATCH.pt DRAWS.pt RESULT.pt
      SPEC: {"domains": {name: latent_dim} (in the experiment's order), "workspace": W,
             "encoder": {hidden, layers}, "decoder": {...}, "selection": "dynamic_query_attention" |
             "kq_fixed_q", "head_size": H, "n_steps": N, "groups": [[names...], ...],
             "two_sided": bool, "levels": [level per vector]}
      GW: the GW's state dict in shimmer's layout (only gw_mod.* is read, strictly)
      ATTENTION: the selection's state dict (shimmer's names, loaded strictly)
      BATCH: "{i}/{domain}" -> (B, L) clean latents of group i
      DRAWS: "side" (B,) int64 (one-sided), "vector/{k}" (B, L) raw corruption vectors
      RESULT: "loss", every metric name, "scores/{domain}" of the paired group (B,), and
              "grad/{name}" for each selection parameter
"""
import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shimmer_layout import GWModule  # noqa: E402  (shimmer's GW registrations, restated)


class KeyQuery(nn.Module):
    """Registrations of DynamicQueryAttention / KQFixedQSelection; refinements: n_steps (0 for kq_fixed_q)."""

    def __init__(self, dim, head, names, refinements):
        super().__init__()
        self.query_layer = nn.Linear(dim, head)
        self.key_layers = nn.ModuleDict({k: nn.Linear(dim, head) for k in names})
        self.register_buffer("initial_gw_state", torch.zeros(dim))
        self.refinements = refinements

    def forward(self, latents, pre):
        names = list(latents)
        keys = [self.key_layers[d](latents[d]) for d in names]
        batch = keys[0].shape[0]

        def weigh(query):
            logits = torch.stack([(k * query).sum(dim=1) for k in keys], dim=1)
            return torch.softmax(logits, dim=1)

        s = weigh(self.query_layer(self.initial_gw_state.unsqueeze(0).repeat(batch, 1)))
        for _ in range(self.refinements):
            fused = sum(s[:, j:j + 1] * pre[d] for j, d in enumerate(names))
            s = weigh(self.query_layer(fused))
        return {d: s[:, j] for j, d in enumerate(names)}


def normalised(v):
    centred = v - v.mean(dim=1, keepdim=True)
    return centred / v.std(dim=1, unbiased=True, keepdim=True)


def corrupt(clean, order, draws, spec):
    out = {d: x.clone() for d, x in clean.items()}
    if spec["two_sided"]:
        for k, d in enumerate(order):
            out[d] = out[d] + 5.0 * spec["levels"][k] * normalised(draws[f"vector/{k}"])
        return out
    noise = 5.0 * spec["levels"][0] * normalised(draws["vector/0"])
    first = draws["side"] == 0
    out[order[0]][first] = out[order[0]][first] + noise[first]
    out[order[1]][~first] = out[order[1]][~first] + noise[~first]
    return out


def main(argv):
    spec_path, gw_path, att_path, batch_path, draws_path, out_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    torch.set_default_dtype(torch.float64)
    order = list(spec["domains"])
    gw = GWModule(spec["domains"], spec["workspace"], spec["encoder"], spec["decoder"])
    state = torch.load(gw_path)
    gw.load_state_dict({k[len("gw_mod."):]: v for k, v in state.items() if k.startswith("gw_mod.")}, strict=True)
    dim = next(iter(spec["domains"].values()))
    refinements = spec["n_steps"] if spec["selection"] == "dynamic_query_attention" else 0
    att = KeyQuery(dim, spec["head_size"], order, refinements)
    att.load_state_dict(torch.load(att_path), strict=True)
    gw.double()
    att.double()
    for p in gw.parameters():
        p.requires_grad_(False)
    batch = {k: v.double() for k, v in torch.load(batch_path).items()}
    draws = {k: (v.double() if v.is_floating_point() else v) for k, v in torch.load(draws_path).items()}

    result = {}
    group_losses = []
    means = {}
    for i, names in enumerate(spec["groups"]):
        clean = {d: batch[f"{i}/{d}"] for d in names}
        paired = len(names) >= 2 and set(names) == set(order)
        lat = corrupt(clean, order, draws, spec) if paired else clean
        pre = {d: gw.gw_encoders[d](lat[d]) for d in names}
        scores = att(lat, pre)
        state_z = torch.tanh(sum(scores[d].unsqueeze(1) * pre[d] for d in names))
        terms = [((gw.gw_decoders[d](state_z) - clean[d]) ** 2).mean() for d in names]
        loss_g = torch.stack(terms).mean()
        group_losses.append(loss_g)
        result[",".join(sorted(names)) + "_loss"] = loss_g.detach()
        if len(names) > 1:
            for d in names:
                means[f"{d}_mean_attention_score"] = scores[d].mean().detach()
            if paired:
                for d in names:
                    result[f"scores/{d}"] = scores[d].detach()
    result.update(means)
    loss = torch.stack(group_losses).mean()
    loss.backward()
    result["loss"] = loss.detach()
    for name, p in att.named_parameters():
        result[f"grad/{name}"] = p.grad.detach()
    torch.save(result, out_path)


if __name__ == "__main__":
    main(sys.argv[1:])
