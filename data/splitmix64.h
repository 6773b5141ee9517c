// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file splitmix64.h
/// The small generator every Simple Shapes sample draws from (data/shapes.cpp: the image; data/captions.cpp:
/// the caption). Internal to `gwshapes`.
#include <cstdint>

namespace gw::shapes::detail {

/// SplitMix64 (Steele, Lea, Flood 2014): a small, well-mixed generator; also used to key the streams.
struct SplitMix64 {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    /// Uniform integer in [lo, hi] (the modulo bias of a 64-bit draw is below 1e-17).
    int uniformInt(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }
    /// Uniform double in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

}  // namespace gw::shapes::detail
