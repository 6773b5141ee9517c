#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""GLOM's forward pass restated in plain PyTorch from lucidrains/glom-pytorch (glom_pytorch.py, class
Glom), with the same module tree and hence the same state_dict keys, so that tests/tst_glom.cpp can check
GW Studio's GLOM against it in both directions. einops is not needed: its rearranges are spelled out.

  glom_reference.py make OUT  --dim D --levels L --image S --patch P [--channels C] [--radius R]
                              [--self] [--iters N] [--seed K]
      writes OUT/glom.pt (a state_dict, torch.save), OUT/input.pt ({"img": (2, C, S, S)}) and
      OUT/expected.pt ({"all": every state, (N + 1, 2, n, L, D)})
  glom_reference.py bench - --dim D --levels L --image S --patch P --channels C --batch B --steps N
                              [--threads T]
      times glom-pytorch's README training step (denoising: the noisy image through forward(return_all)
      with 2·L iterations, the top level of state L + 1 to pixels by a linear layer, MSE to the clean
      image, AdamW) and prints "steps/s X" (the number `gw bench glom` reads)
  glom_reference.py check OUT STATE.pt OURS.pt (same options)
      loads STATE.pt with load_state_dict(strict=True), runs OUT/input.pt and compares with OURS.pt's
      "all"; prints the largest difference and exits 1 when it exceeds 1e-5
"""
import argparse
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

SELF_LOGIT = -5e-4  # glom-pytorch's logit of a column on itself when self-attention is off


class Patchify(nn.Module):
    """(b, c, h·p, w·p) -> (b, h·w, p·p·c), patches row by row, each flattened as (p1, p2, c)."""

    def __init__(self, patch):
        super().__init__()
        self.patch = patch

    def forward(self, img):
        b, c, hh, ww = img.shape
        p = self.patch
        x = img.reshape(b, c, hh // p, p, ww // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, (hh // p) * (ww // p), p * p * c)


class LevelsToChannels(nn.Module):
    def forward(self, x):  # (b, n, l, d) -> (b, l·d, n)
        b, n, l, d = x.shape
        return x.permute(0, 2, 3, 1).reshape(b, l * d, n)


class ChannelsToLevels(nn.Module):
    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):  # (b, l·d, n) -> (b, n, l, d)
        b, ld, n = x.shape
        return x.reshape(b, self.groups, ld // self.groups, n).permute(0, 3, 1, 2)


class GroupedFeedForward(nn.Module):
    def __init__(self, dim, groups, mult=4):
        super().__init__()
        total = dim * groups
        self.net = nn.Sequential(LevelsToChannels(), nn.Conv1d(total, total * mult, 1, groups=groups), nn.GELU(),
                                 nn.Conv1d(total * mult, total, 1, groups=groups), ChannelsToLevels(groups))

    def forward(self, levels):
        return self.net(levels)


class ConsensusAttention(nn.Module):
    def __init__(self, side, attend_self, radius):
        super().__init__()
        self.attend_self = attend_self
        self.radius = radius
        if radius > 0:
            hh, ww = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
            coords = torch.stack((hh.reshape(-1), ww.reshape(-1)), dim=1).float()
            self.register_buffer("non_local_mask", (torch.cdist(coords, coords) > radius)[None])

    def forward(self, levels):
        n, d = levels.shape[1], levels.shape[3]
        q = levels.permute(0, 2, 1, 3)                              # b l i d
        k = F.normalize(levels, dim=-1).permute(0, 2, 3, 1)          # b l d j
        sim = (q @ k) * d ** -0.5
        if not self.attend_self:
            sim = sim.masked_fill(torch.eye(n, dtype=torch.bool)[None, None], SELF_LOGIT)
        if self.radius > 0:
            sim = sim.masked_fill(self.non_local_mask, -torch.finfo(sim.dtype).max)
        return (sim.softmax(dim=-1) @ q).permute(0, 2, 1, 3)


class Glom(nn.Module):
    def __init__(self, dim, levels, image, patch, channels=3, attend_self=False, radius=0.0):
        super().__init__()
        side = image // patch
        self.levels = levels
        self.image_to_tokens = nn.Sequential(Patchify(patch), nn.Linear(patch * patch * channels, dim))
        self.pos_emb = nn.Embedding(side * side, dim)
        self.init_levels = nn.Parameter(torch.randn(levels, dim))
        self.bottom_up = GroupedFeedForward(dim, levels)
        self.top_down = GroupedFeedForward(dim, levels - 1)
        self.attention = ConsensusAttention(side, attend_self, radius)

    def forward(self, img, iters=None, levels=None, return_all=False):
        iters = 2 * self.levels if iters is None else iters
        tokens = self.image_to_tokens(img)
        b, n, d = tokens.shape
        pos = self.pos_emb(torch.arange(n))[None, :, None, :]
        bottom = tokens[:, :, None, :]
        if levels is None:
            levels = self.init_levels[None, None].expand(b, n, self.levels, d)
        states = [levels]
        weights = torch.full((self.levels,), 4.0)
        weights[-1] = 3.0
        for _ in range(iters):
            with_input = torch.cat((bottom, levels), dim=-2)
            up = self.bottom_up(with_input[..., :-1, :])
            down = F.pad(self.top_down(with_input[..., 2:, :] + pos), (0, 0, 0, 1), value=0.0)
            levels = (levels + up + down + self.attention(levels)) / weights[None, None, :, None]
            states.append(levels)
        return torch.stack(states) if return_all else levels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["make", "check", "bench"])
    ap.add_argument("out")
    ap.add_argument("state", nargs="?")
    ap.add_argument("ours", nargs="?")
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--levels", type=int, default=4)
    ap.add_argument("--image", type=int, default=16)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--radius", type=float, default=0.0)
    ap.add_argument("--self", dest="attend_self", action="store_true")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = Glom(a.dim, a.levels, a.image, a.patch, a.channels, a.attend_self, a.radius)
    if a.mode == "bench":
        import time
        if a.threads > 0:
            torch.set_num_threads(a.threads)
        side, p, c = a.image // a.patch, a.patch, a.channels
        to_pixels = nn.Linear(a.dim, p * p * c)
        params = list(model.parameters()) + list(to_pixels.parameters())
        opt = torch.optim.AdamW(params, lr=1e-3)
        pool = torch.rand(4 * a.batch, c, a.image, a.image)

        def step(i):
            img = pool[(i % 4) * a.batch:(i % 4 + 1) * a.batch]
            states = model(img + torch.randn_like(img), return_all=True)
            top = states[a.levels + 1, :, :, -1]
            recon = to_pixels(top).reshape(a.batch, side, side, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(img.shape)
            loss = F.mse_loss(img, recon)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        for i in range(3):
            step(i)
        t0 = time.perf_counter()
        for i in range(a.steps):
            loss = step(i)
        sps = a.steps / (time.perf_counter() - t0)
        print(f"glom steps/s {sps:.4f} loss {loss.item():.4f} threads {torch.get_num_threads()}")
        return 0
    if a.mode == "make":
        img = torch.randn(2, a.channels, a.image, a.image)
        with torch.no_grad():
            out = model(img, iters=a.iters, return_all=True)
        torch.save(model.state_dict(), f"{a.out}/glom.pt")
        torch.save({"img": img}, f"{a.out}/input.pt")
        torch.save({"all": out}, f"{a.out}/expected.pt")
        print(f"wrote {a.out}/glom.pt, input.pt, expected.pt: states {tuple(out.shape)}")
        return 0
    model.load_state_dict(torch.load(a.state), strict=True)
    img = torch.load(f"{a.out}/input.pt")["img"]
    ours = torch.load(a.ours)["all"]
    with torch.no_grad():
        ref = model(img, iters=ours.shape[0] - 1, return_all=True)
    gap = (ref - ours).abs().max().item()
    print(f"largest difference {gap:.3g} over {tuple(ref.shape)}")
    return 0 if gap <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
