# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python half of tst_interop: a module tree with the registrations of shimmer's
GlobalWorkspace2Domains (docs/gw-semantics.md 1.2, 1.3, 2.1 and 4.1), so that `load_state_dict(strict=True)`
accepts exactly shimmer's key set, and the GW computations on a batch of unimodal latents.

shimmer itself is not a dependency: this file restates its layout from the specification.

  shimmer_layout.py check WEIGHTS.pt BATCH.pt RESULT.pt
      loads GW Studio's export strictly, computes the outputs of BATCH, saves them.
  shimmer_layout.py make SIZES.json STATE.pt LIGHTNING.ckpt BATCH.pt RESULT.pt
      builds a seeded GW, saves its state_dict (an OrderedDict with the loss module's twins), a
      Lightning-style checkpoint holding it, a batch and the outputs on it.
  shimmer_layout.py old STATE.pt OLD.ckpt
      the same weights as a shimmer 0.4 Lightning checkpoint (GW encoders and decoders inside
      gw_interfaces, an interface's copy of a domain module, loss-coefficient buffers), recording
      migrations 1 and 2 as applied: what shimmer's migrations 3 to 5 turn into the current layout.
"""
import re
from collections import OrderedDict
import json
import sys

import torch
from torch import nn


class GWMlp(nn.Sequential):
    """shimmer GWEncoder / GWDecoder: Linear, ReLU, (Linear, ReLU) x n_layers, Linear."""

    def __init__(self, in_dim, hidden, out_dim, n_layers):
        layers = [nn.Linear(in_dim, hidden), nn.ReLU()]
        for _ in range(n_layers):
            layers += [nn.Linear(hidden, hidden), nn.ReLU()]
        layers.append(nn.Linear(hidden, out_dim))
        super().__init__(*layers)


class ParameterFreeDomain(nn.Module):
    """Stands for a domain module without tensors (identity, class_label)."""


class GWModule(nn.Module):
    """With `linear`, each GW encoder and decoder is one plain nn.Linear, with a bias only when `bias`
    (shimmer-ssd's `global_workspace.linear_domains` and `linear_domains_use_bias`)."""

    def __init__(self, dims, workspace, enc, dec, linear=False, bias=False):
        super().__init__()
        self.domain_mods = nn.ModuleDict({d: ParameterFreeDomain() for d in dims})
        if linear:
            self.gw_encoders = nn.ModuleDict({d: nn.Linear(n, workspace, bias=bias) for d, n in dims.items()})
            self.gw_decoders = nn.ModuleDict({d: nn.Linear(workspace, n, bias=bias) for d, n in dims.items()})
            return
        self.gw_encoders = nn.ModuleDict({d: GWMlp(n, enc["hidden"], workspace, enc["layers"]) for d, n in dims.items()})
        self.gw_decoders = nn.ModuleDict({d: GWMlp(workspace, dec["hidden"], n, dec["layers"]) for d, n in dims.items()})


class ContrastiveLoss(nn.Module):
    def __init__(self, logit_scale, learn):
        super().__init__()
        value = torch.tensor([logit_scale])
        if learn:
            self.logit_scale = nn.Parameter(value)
        else:
            self.register_buffer("logit_scale", value)


class GWLosses2Domains(nn.Module):
    def __init__(self, gw_mod, domain_mods, contrastive_fn):
        super().__init__()
        self.gw_mod = gw_mod
        self.domain_mods = domain_mods
        self.contrastive_fn = contrastive_fn


class GlobalWorkspace2Domains(nn.Module):
    def __init__(self, dims, workspace, enc, dec, learn_logit_scale, logit_scale=2.6592600369327779):
        super().__init__()
        self.gw_mod = GWModule(dims, workspace, enc, dec)
        self.loss_mod = GWLosses2Domains(self.gw_mod, self.gw_mod.domain_mods,
                                         ContrastiveLoss(logit_scale, learn_logit_scale))


def sizes_from_state(state):
    """Domain latent sizes, W and MLP sizes read off the exported tensors."""
    dims, workspace, enc, dec = {}, None, None, None
    for key, t in state.items():
        parts = key.split(".")
        if parts[0] != "gw_mod" or parts[1] not in ("gw_encoders", "gw_decoders") or parts[-1] != "weight":
            continue
        d, i = parts[2], int(parts[3])
        layers = sum(1 for k in state if k.startswith(f"gw_mod.{parts[1]}.{d}.") and k.endswith(".weight")) - 2
        if parts[1] == "gw_encoders":
            if i == 0:
                dims[d] = t.shape[1]
                enc = {"hidden": t.shape[0], "layers": layers}
            else:
                workspace = t.shape[0]
        elif i == 0:
            dec = {"hidden": t.shape[0], "layers": layers}
    learn = False  # a parameter or a buffer loads the same way
    return dims, workspace, enc, dec, learn


@torch.no_grad()
def outputs(gw, batch):
    """Workspace states, demi-cycles, translations and cycles of a batch of latents (shimmer's
    encode_and_fuse with one domain, fixed shared selection for all, decode)."""
    m = gw.gw_mod
    enc = {d: m.gw_encoders[d](u) for d, u in batch.items()}
    out = {}
    for d in batch:
        state = torch.tanh(enc[d])
        out[f"state_{d}"] = state
        out[f"demi_cycle_{d}"] = m.gw_decoders[d](state)
        for e in batch:
            if e == d:
                continue
            tr = m.gw_decoders[e](state)
            out[f"translation_{d}_to_{e}"] = tr
            out[f"cycle_{d}_through_{e}"] = m.gw_decoders[d](torch.tanh(m.gw_encoders[e](tr)))
    out["state_all"] = torch.tanh(torch.stack([enc[d] / len(batch) for d in batch]).sum(0))
    return out


def check(weights, batch_path, result):
    state = torch.load(weights, weights_only=True)
    dims, workspace, enc, dec, learn = sizes_from_state(state)
    gw = GlobalWorkspace2Domains(dims, workspace, enc, dec, learn)
    gw.load_state_dict(state, strict=True)
    expected = set(gw.state_dict().keys())
    assert expected == set(state.keys()), sorted(expected ^ set(state.keys()))
    batch = torch.load(batch_path, weights_only=True)
    torch.save(outputs(gw, batch), result)
    print(f"loaded {len(state)} tensors strictly; W={workspace}, domains {dims}")


def make(sizes_path, state_path, lightning_path, batch_path, result):
    with open(sizes_path) as f:
        s = json.load(f)
    torch.manual_seed(s.get("seed", 0))
    gw = GlobalWorkspace2Domains(s["dims"], s["workspace"], s["encoder"], s["decoder"], s["learn_logit_scale"],
                                 logit_scale=s.get("logit_scale", 2.6592600369327779))
    state = gw.state_dict()
    torch.save(state, state_path)
    torch.save({"epoch": 3, "global_step": 1200, "state_dict": state,
                "hyper_parameters": {"workspace_dim": s["workspace"], "fusion_activation_fn": torch.tanh},
                "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}],
                "_migrate-ckpt-migrations": ["1_add_gw_interfaces"]}, lightning_path)
    batch = {d: torch.randn(s["batch"], n) for d, n in s["dims"].items()}
    torch.save(batch, batch_path)
    torch.save(outputs(gw, batch), result)
    print(f"saved {len(state)} tensors")


def old(state_path, out):
    state = torch.load(state_path)
    od = OrderedDict()
    for k, v in state.items():
        od[re.sub(r"gw_mod\.gw_(encoder|decoder)s\.([^.]+)\.", r"gw_mod.gw_interfaces.\2.\1.", k)] = v
    od["gw_mod.gw_interfaces.vec.domain_module.scale"] = torch.ones(1)
    od["loss_coefs.buffer_demi_cycles"] = torch.tensor(1.0)
    od["coef_buffers.cycles"] = torch.tensor(1.0)
    torch.save({"epoch": 1, "state_dict": od,
                "_migrate-ckpt-migrations": ["1_add_gw_interfaces", "2_del_gw_interfaces_hparam"]}, out)
    print(f"saved {len(od)} tensors in the 0.4 layout")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(*sys.argv[2:5])
    elif sys.argv[1] == "make":
        make(*sys.argv[2:7])
    elif sys.argv[1] == "old":
        old(*sys.argv[2:4])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
