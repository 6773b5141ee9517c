# SPDX-License-Identifier: GPL-3.0-or-later
"""A domain module of your own for GW Studio: a small convolutional auto-encoder for Fashion-MNIST
images, trained here in PyTorch and saved as TorchScript for the `torchscript` domain-module kind.

    /usr/bin/python3 make_module.py [--epochs 2] [--out fashion_ae.pt]

then train a GW on it:

    gw train fashion-mnist-torchscript.yaml

The walk-through is docs/own-domain-module.md. GW Studio calls the methods marked @torch.jit.export:

    encode(x)               x: (B, 28, 28) float32 in [0, 1] (the uint8 pixels divided by 255)
                            -> the latent (B, 12) float32
    decode(z)               (B, 12) -> (B, 28, 28): what the explorer shows
    compute_domain_loss(x)  optional: this module's own loss, added to the GW's when the experiment
                            sets `frozen: false` (the module then trains end to end)
"""
import argparse
import gzip
import time

import numpy as np
import torch
from torch import Tensor, nn

IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"  # Debian's dataset-fashion-mnist


class FashionAE(nn.Module):
    def __init__(self, latent: int = 12):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),   # 28 -> 14
            nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),  # 14 -> 7
            nn.Flatten(), nn.Linear(32 * 7 * 7, latent))
        self.decoder = nn.Sequential(
            nn.Linear(latent, 32 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Sigmoid())  # 14 -> 28

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x.unsqueeze(1))

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).squeeze(1)

    @torch.jit.export
    def compute_domain_loss(self, x: Tensor) -> Tensor:
        return nn.functional.mse_loss(self.decode(self.encode(x)), x)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


def training_images() -> Tensor:
    """The first 55,000 training images (GW Studio's train split of Fashion-MNIST) in [0, 1]."""
    with gzip.open(IMAGES, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    return torch.from_numpy(raw[:55000].astype(np.float32) / 255.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default="fashion_ae.pt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    x = training_images()
    model = FashionAE()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    t0 = time.time()
    for epoch in range(args.epochs):
        order = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), 128):
            batch = x[order[i:i + 128]]
            loss = model.compute_domain_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{args.epochs}: reconstruction MSE {total / len(x):.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    torch.jit.script(model).save(args.out)
    print(f"wrote {args.out}: use it as `module: torchscript` with `script: {args.out}`")


if __name__ == "__main__":
    main()
