# SPDX-License-Identifier: GPL-3.0-or-later
"""TorchScript domain modules for tst_torchscript (run with Debian's python3-torch, /usr/bin/python3).

    make OUT_DIR      writes the modules the test trains and the ones it must refuse, and expected.pt:
                      a fixed batch x (8, 8) of the fixture's vectors, vec_ae.pt's encode(x) and decode
    encode MODULE X OUT   torch.jit.load(MODULE).encode(x) for the tensor "x" of the state dict X, saved
                      as {"z": ...} to OUT (the exported module's numbers, as Python computes them)
"""
import sys
import zipfile
from typing import List

import torch
from torch import Tensor, nn


class VecAE(nn.Module):
    """An auto-encoder for 8-d vectors with a 5-d latent and its own reconstruction loss."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 5))
        self.dec = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8))

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        return self.enc(x)

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        return self.dec(z)

    @torch.jit.export
    def compute_domain_loss(self, x: Tensor) -> Tensor:
        return torch.mean((self.dec(self.enc(x)) - x) ** 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


class SmoothL1AE(VecAE):
    """VecAE with its own GW loss (compute_loss, shimmer's signature with the raw target)."""

    @torch.jit.export
    def compute_loss(self, pred: Tensor, target: Tensor, raw_target: Tensor) -> Tensor:
        return nn.functional.smooth_l1_loss(pred, target)


class Raises(VecAE):
    """Its GW loss raises after a number of calls: a module that fails in the middle of a run."""

    def __init__(self, after: int):
        super().__init__()
        self.calls = 0
        self.after = after

    @torch.jit.export
    def compute_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("loss exploded on purpose at call " + str(self.calls))
        return torch.mean((pred - target) ** 2)


class LabelCode(nn.Module):
    """Class indices (B,) int64 -> a learned 4-d code; decode gives the class indices back."""

    def __init__(self):
        super().__init__()
        self.code = nn.Embedding(4, 4)

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        return self.code(x)

    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        return torch.argmax(z, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x)


class NoDecode(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(8, 5)

    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        return self.enc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x)


class WrongSignature(VecAE):
    @torch.jit.export
    def encode(self, x: Tensor, scale: float) -> Tensor:
        return self.enc(x) * scale

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x, 1.0)


class LatentNot2D(VecAE):
    @torch.jit.export
    def encode(self, x: Tensor) -> Tensor:
        return self.enc(x).unsqueeze(1)


class DecodeWrongShape(VecAE):
    @torch.jit.export
    def decode(self, z: Tensor) -> Tensor:
        return self.dec(z)[:, :7]


class ListOut(VecAE):
    @torch.jit.export
    def encode(self, x: Tensor) -> List[Tensor]:
        return [self.enc(x)]

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x)[0])


def with_version(src: str, dst: str, version: int) -> None:
    """A copy of a TorchScript archive whose format version record says `version`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/version"):
                data = (str(version) + "\n").encode()
            zout.writestr(item.filename, data)


def make(out: str) -> None:
    torch.manual_seed(7)
    ae = VecAE()
    scripted = torch.jit.script(ae)
    scripted.save(out + "/vec_ae.pt")
    torch.jit.script(SmoothL1AE()).save(out + "/vec_smooth_l1.pt")
    torch.jit.script(Raises(150)).save(out + "/vec_raises.pt")
    torch.jit.script(LabelCode()).save(out + "/label_code.pt")
    torch.jit.script(NoDecode()).save(out + "/no_decode.pt")
    torch.jit.script(WrongSignature()).save(out + "/wrong_signature.pt")
    torch.jit.script(LatentNot2D()).save(out + "/latent_3d.pt")
    torch.jit.script(DecodeWrongShape()).save(out + "/decode_7.pt")
    torch.jit.script(ListOut()).save(out + "/list_out.pt")
    with_version(out + "/vec_ae.pt", out + "/newer.pt", 99)
    torch.save(ae.state_dict(), out + "/state_dict.pt")
    with open(out + "/random.bin", "wb") as f:
        f.write(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    x = torch.randn(8, 8) * 2
    with torch.no_grad():
        z = scripted.encode(x)
        y = scripted.decode(z)
    torch.save({"x": x, "z": z, "y": y}, out + "/expected.pt")


def encode(module: str, inputs: str, out: str) -> None:
    m = torch.jit.load(module)
    x = torch.load(inputs)["x"]
    with torch.no_grad():
        torch.save({"z": m.encode(x)}, out)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    elif sys.argv[1] == "encode":
        encode(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: torchscript_modules.py make OUT_DIR | encode MODULE X OUT")
