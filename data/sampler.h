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

/// One group of domains seen together and how many training samples it holds (shimmer-ssd's domain
/// proportions, simple_shapes_dataset/cli/utils.py get_domain_alignment).
struct GroupAmount {
    std::vector<std::string> domains;  ///< a set: order does not matter
    int64_t amount = 0;                ///< samples asked for, 0 <= amount <= n
};

/// The training indices of each group, as get_domain_alignment selects them: every group has its own
/// random order of the n samples; groups are served from the largest sets of domains down (a group
/// only after every group that holds all of its domains), each taking the first samples of its order
/// that it does not hold yet until it has its amount; the samples a group takes are added to every
/// group whose domains it contains (a pair's samples are also each domain's), and count towards their
/// amounts. So with {v}: 1, {t}: 1, {v, t}: 0.5 the pairs are half of the samples and each domain
/// alone sees them all; with {v}: 0.2 and {v, t}: 0.5, {v} has 0.5 already, more than it asked.
/// The draws are GW Studio's own (mt19937_64 from `seed`), not NumPy's, so the indices differ from the
/// public split files' (same sizes, same nesting).
/// \returns one sorted index list per group, in the order given.
/// \throws std::invalid_argument "group {v}: asks for 100000 samples, but group {t,v} already gives it
/// 250000 (...)" when a group asks for fewer than a larger group gives it, or when an amount is out
/// of [0, n], a group is empty or repeats a domain, or two groups are the same set.
std::vector<std::vector<int64_t>> alignGroups(int64_t n, const std::vector<GroupAmount>& groups, uint64_t seed);

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
