// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file sampler.h
/// Semi-supervised batching (docs/gw-semantics.md 3.2): every training step draws one batch from each group
/// ({a}, {b}, ..., {a,b}); groups smaller than the largest repeat (shimmer RepeatedDataset), are
/// shuffled each epoch and drop their last incomplete batch. Deterministic from a seed, and its state
/// saves to a string so that a resumed run draws the same batches.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace gw::data {

/// shimmer RepeatedDataset's length: ceil(minSize / n)·n, or minSize with dropLast (P8: 3, 10 -> 12 / 10).
/// \throws std::invalid_argument for n <= 0.
int64_t repeatedLength(int64_t n, int64_t minSize, bool dropLast);

/// Uniform integer in [0, n) from a 64-bit generator, without modulo bias (same on every platform).
uint64_t uniformBelow(std::mt19937_64& rng, uint64_t n);
/// Fisher-Yates shuffle with uniformBelow (std::shuffle's sequence is library-defined).
void shuffle(std::vector<int64_t>& v, std::mt19937_64& rng);

/// The paired subset of n training samples: `count` indices (count >= 0) or floor(n·fraction),
/// drawn without replacement with `seed`, sorted. \throws std::invalid_argument when count > n.
std::vector<int64_t> pairedSubset(int64_t n, double fraction, int64_t count, uint64_t seed);

/// The index stream of one group.
class GroupSampler {
public:
    /// \param indices the group's sample indices; \param epochLength the largest group's size
    /// (each epoch is the group repeated to repeatedLength(len, epochLength, false)).
    /// \throws std::invalid_argument for an empty group.
    GroupSampler(std::vector<int64_t> indices, int64_t epochLength, uint64_t seed);
    /// The next `batch` indices (a new shuffled epoch when fewer than `batch` remain).
    std::vector<int64_t> next(int64_t batch);
    int64_t size() const { return static_cast<int64_t>(indices_.size()); }
    int64_t epoch() const { return epoch_; }

    std::string saveState() const;
    /// \throws std::invalid_argument for a state from another group or a damaged one.
    void loadState(const std::string& state);

private:
    void newEpoch();
    std::vector<int64_t> indices_, order_;
    int64_t epochLength_, pos_ = 0, epoch_ = 0;
    std::mt19937_64 rng_;
};

}  // namespace gw::data
