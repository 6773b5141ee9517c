// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file bench.h
/// `gw bench`: the GW training step of the PyTorch reference script pytorch_reference.py (tutorial,
/// ssd, wide; docs/benchmarks.md says what it runs),
/// timed with the engine's own GlobalWorkspace and FlatAdamW; or (`pretrain`) one pre-training step of the
/// Fashion-MNIST conv VAE beside pytorch_vae_reference.py; or (`glom`) GLOM's denoising step beside
/// tests/python/glom_reference.py. Each prints its GFLOP/s (FLOPs counted from the layers' shapes,
/// docs/benchmarks.md) and their share of the 1024³ matrix product measured beside each repeat.
#include <string>
#include <vector>

namespace gw {

struct BenchOptions {
    std::vector<std::string> configs;  ///< empty: all three
    int steps = 200;                   ///< timed steps per repeat (after 10 warm-up steps)
    int repeats = 3;                   ///< the median of the repeats is reported
    /// Intra-op threads of both sides; 0: every count from 1 to the cores, in interleaved repeats, each
    /// count printed, and each side's fastest count compared with the other's ("best vs best").
    int threads = 0;
    std::string device = "cpu";
    bool skipMatmul = false;
    bool json = false;
    /// The PyTorch reference script (pytorch_reference.py): when set, each repeat of ours is followed by one of the
    /// Python reference (same steps and threads), and the medians and their ratio are printed.
    std::string reference;
    std::string python = "/usr/bin/python3";  ///< the interpreter with torch (Debian python3-torch)
    bool referenceTuned = false;  ///< run the reference with our OpenMP and allocator settings too
    std::string flavour = "two_domains";  ///< two_domains | fusion (the reference's --flavour)
    bool autograd = false;        ///< time the autograd step even where the hand-written CPU step applies
};

/// Runs the benchmark and prints one line per configuration. Returns the process exit code.
int runBench(const BenchOptions& options);

}  // namespace gw
