#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Python half of tst_text's parity check of the `text` domain module's embeddings route: shimmer-ssd's
GRUTextDomainModule (shimmer_ssd/modules/domains/text.py: projector, q_mean, q_logvar, projector_dec,
embeddings, the 2-layer GRU decoder, text_head; encode, decode, text_token_loss, generic_step) with the
attribute and grammar heads of TextDomainModule of the same file, restated in PyTorch from that
description (shimmer-ssd is not a dependency and none of its code is here). The weights are GW Studio's,
loaded with strict=True, so the parameter names are checked too.

  text_reference.py SPEC.json WEIGHTS.pt INPUT.pt RESULT.pt
    SPEC: {"latent": L, "hidden": H, "seq_length": S, "vocab_size": V, "embedding_dim": E,
           "choices": [[name, categories], ...], "reconstruction_coef": r, "kl_coef": k}
    WEIGHTS: the module's state dict (torch.save of a plain dict)
    INPUT: {"x": (B, E + S + 11 + C) float32}: embedding, token ids, attribute vector, choice columns
    RESULT: "mean" (B, L), "tokens" (B, S) (greedy decoding of the mean, as float64), and the domain
        loss's metrics with z = mean (the module's q_logvar is set so that σ is 0 and noise_std is 0)
"""
import json
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes, last_relu):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Text(nn.Module):
    def __init__(self, s):
        super().__init__()
        L, H, V, E = s["latent"], s["hidden"], s["vocab_size"], s["embedding_dim"]
        self.projector = mlp([E, H, H, L], True)
        self.q_mean = nn.Linear(L, L)
        self.q_logvar = nn.Linear(L, L)
        self.projector_dec = mlp([L, H, H, E], False)
        self.embeddings = nn.Embedding(V, L)
        self.decoder = nn.GRU(L, H, num_layers=2, batch_first=True)
        self.text_head = nn.Linear(H, V)
        self.attribute_cls = mlp([L, H, H], True)
        self.attribute_cls_cat = nn.Linear(H, 3)
        self.attribute_cls_attr = nn.Sequential(nn.Linear(H, 8), nn.Tanh())
        self.grammar_cls = mlp([L, H, H], True)
        self.grammar_heads = nn.ModuleDict({name: nn.Linear(H, n) for name, n in s["choices"]})


def main():
    spec = json.load(open(sys.argv[1]))
    m = Text(spec)
    m.load_state_dict(torch.load(sys.argv[2]), strict=True)
    x = torch.load(sys.argv[3])["x"]
    E, S = spec["embedding_dim"], spec["seq_length"]
    bert = x[:, :E]
    tokens = x[:, E:E + S].long()
    attr = x[:, E + S:E + S + 11]
    choices = x[:, E + S + 11:]
    B = x.shape[0]
    out = {}
    with torch.no_grad():
        h = m.projector(bert)
        mean, logvar = m.q_mean(h), m.q_logvar(h)
        out["mean"] = mean
        # decode: greedy, the decoder reads z, then each step's argmax token's embedding
        context, hidden, steps = mean.unsqueeze(1), None, []
        for _ in range(S):
            o, hidden = m.decoder(context, hidden)
            logits = m.text_head(o)
            steps.append(logits)
            context = m.embeddings(logits.argmax(-1))
        out["tokens"] = torch.cat(steps, 1).argmax(-1).double()
        # generic_step with z = mean (σ = 0, no noise)
        z = mean
        seq = torch.cat([z.unsqueeze(1), m.embeddings(tokens[:, :-1])], 1)
        dist = m.text_head(m.decoder(seq)[0])
        loss = F.cross_entropy(dist.transpose(1, 2), tokens)
        mask = tokens != 0
        acc = (dist.argmax(-1)[mask] == tokens[mask]).sum() / mask.sum()
        x_hat = m.projector_dec(z)
        rec = (0.5 * (bert - x_hat) ** 2 + 0.5 * math.log(2 * math.pi)).sum()
        kl = -0.5 * torch.sum(1 + logvar - mean ** 2 - logvar.exp())
        total = loss + spec["reconstruction_coef"] * rec + spec["kl_coef"] * kl
        a = m.attribute_cls(mean)
        cat = F.cross_entropy(m.attribute_cls_cat(a), attr[:, :3].argmax(1), reduction="sum") / B
        values = F.mse_loss(m.attribute_cls_attr(a), attr[:, 3:], reduction="sum") / B
        total = total + cat + values
        g = m.grammar_cls(mean)
        for i, (name, _) in enumerate(spec["choices"]):
            ce = F.cross_entropy(m.grammar_heads[name](g), choices[:, i].long(), reduction="sum") / B
            out[name + "_ce"] = ce
            total = total + ce
        out.update({"loss": loss, "acc": acc, "kl_loss": kl, "reconstruction_loss": rec, "attr_category": cat,
                    "attr_attr": values, "total_loss": total})
    torch.save({k: v.detach().double() for k, v in out.items()}, sys.argv[4])


main()
