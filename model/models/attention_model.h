// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file attention_model.h
/// Model kind `attention` (model/models/attention_model.cpp): a selection (dynamic_query_attention,
/// kq_fixed_q) trained on top of a trained, frozen Global Workspace whose paired latents are
/// corrupted, as shimmer's AttentionBase (shimmer/modules/attention_module.py at d729e5e;
/// docs/gw-semantics.md 9). This header gives its step's parts to tests and front ends: the corruption
/// draws, the corruption, the step, and `gw eval`'s table of scores against corruption levels.
#include <string>
#include <vector>

#include "model/core/ordered_map.h"
#include "model/core/torch_fwd.h"
#include "model/experiment/config.h"
#include "model/gw/flavours/losses.h"
#include "model/gw/gw_module.h"

namespace gw {

/// One batch's corruption, as drawn (before normalising). D domains, B paired rows, L the latent size
/// every domain shares.
struct CorruptionDraw {
    bool twoSided = false;  ///< every domain corrupted (attention.corrupt_sides) or one side per row
    /// One-sided: (B,) int64, per row the index (in the experiment's domain order) of the side drawn
    /// (or the named corrupt_single_side). Rows whose index is 0 corrupt the first domain, every other
    /// row the second (shimmer's `masked_domains[:, 0]` and its negation; one-sided needs D = 2).
    torch::Tensor side;
    /// The raw vectors, (B, L) each: one for one-sided, one per domain (in order) for two-sided. Drawn
    /// N(0, 1) or the fixed vector expanded to B rows.
    std::vector<torch::Tensor> vectors;
    /// The level of each vector (drawn from attention.corruption_scaling, 1 when that is empty, or
    /// attention.two_sided_corruption's fixed value).
    std::vector<double> levels;
};

/// Draws one batch's corruption from torch's default CPU generator (seeded by the experiment's seed;
/// saved in checkpoints), in shimmer's order: one-sided: the sides (randint over D per row, unless
/// corrupt_single_side), the vector (randn (B, L), unless fixed), the level (one index drawn uniformly
/// among corruption_scaling; shimmer draws it with Python's `random.choice`); two-sided: for each
/// domain in order, its vector then its level.
/// \throws std::invalid_argument when corrupt_single_side names none of `domains` or the fixed vector's
/// size is not L.
CorruptionDraw drawCorruption(const AttentionConfig& a, const std::vector<std::string>& domains, int64_t batch,
                              int64_t latentDim);

/// The paired latents (domain -> (B, L)) plus the corruption: each vector v is normalised per row,
/// v̂ = (v − mean(v)) / std(v) (unbiased std, as torch's default), and 5 · level · v̂ is added to the
/// rows it corrupts (one-sided: the rows of each side, see CorruptionDraw::side; two-sided: every row
/// of its domain). The inputs are not modified.
TensorMap corruptLatents(const TensorMap& clean, const std::vector<std::string>& domains, const CorruptionDraw& draw);

/// One AttentionBase step (generic_step) on `groups`: the group holding every domain of `domains` is
/// corrupted with `draw`, the others are not; for each group, pre-fusion encodings e_d of the
/// (corrupted) latents, scores s = selection(latents, e), state z = tanh(Σ s_d e_d), and the group's loss
/// is the mean over its domains of the domain module's latent loss (computeLoss: MSE, cross-entropy)
/// between Dec_d(z) and the clean latent. Metrics: `{a,b}_loss` per group (names sorted, joined by
/// ","), `{d}_mean_attention_score` (batch mean of s_d) for every domain of a group of two or more, and
/// the loss, the mean of the group losses. The loss keeps its graph (the caller backpropagates).
/// \throws std::invalid_argument when no group is given.
LossOutput attentionStep(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups,
                         const std::vector<std::string>& domains, const CorruptionDraw& draw);

/// The levels `gw eval` and validation report the scores at: 0 and attention.corruption_scaling (1 when
/// empty), sorted, each once.
std::vector<double> evaluationLevels(const AttentionConfig& a);

/// `gw eval`'s table of an attention run's metrics (`evaluate`'s output, "SPLIT/corrupt_{d}_{level}/..."):
/// one line per corrupted side and level, the mean score of each domain and the loss. Empty when the
/// metrics hold no such name.
std::string attentionLevelsTable(const OrderedMap<double>& metrics);

}  // namespace gw
