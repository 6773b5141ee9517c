// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file process.h
/// Process set-up for the engine, shared by `gw`, the window and the benchmarks: LibTorch's and
/// OpenBLAS's thread counts, OpenMP's wait policy, glibc's allocator thresholds, and device names.
#include <cstdint>
#include <string>

#include "model/core/torch_fwd.h"

namespace gw {

/// Sets LibTorch's intra-op thread count (`threads` <= 0: every core) and returns the count used.
int configureThreads(int threads);
/// The thread count `threads: 0` (auto) trains a GW with: one thread when the widest GW layer's
/// multiply-adds per step (`batch` × in × out of that layer) are small, every core above. The
/// autograd step needs 64 M (per-operation costs dominate and a second thread only adds wake-ups);
/// the hand-written CPU step (`cpuStep`), which runs each domain's passes on a thread of its own, needs
/// 512 K (measured on 2 cores: tutorial, 131 K, 2675 steps/s on one thread against 1778 on two;
/// Fashion-MNIST, 1 M, 328 against 284; ssd, 2 M, 36 against 29).
int autoGwThreads(int64_t batch, int64_t widestLayer, bool cpuStep = false);
/// Raises glibc's mmap and trim thresholds so that tensors are not mapped and unmapped afresh on every
/// step (page faults dominate small-tensor training here); call once at start-up.
void tuneAllocator();
/// Makes OpenMP's idle threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE) unless the user
/// chose a policy. libgomp reads the variable only when it loads, so the process re-executes itself
/// once (argv unchanged) when it has to set it. Spinning LibTorch threads starve OpenBLAS's own pool
/// on small machines: measured here, the ssd benchmark runs 5 times faster (docs/benchmarks.md).
/// Call first thing in main(); returns only when nothing needs doing or the re-exec failed.
void ensurePassiveOpenMP(char** argv);
/// "cpu", "cuda", "cuda:N" -> device. \throws std::invalid_argument when CUDA is asked for and this
/// LibTorch has none, or N is past the device count.
torch::Device parseDevice(const std::string& name);

}  // namespace gw
