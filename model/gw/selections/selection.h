// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file selection.h
/// Selection mechanisms: the per-sample weights s_d with which the pre-fusion encodings of a group's
/// domains are summed into the workspace state (shimmer `shimmer/modules/selection.py`,
/// `SelectionBase` and its subclasses; docs/gw-semantics.md 1.4). A selection is a torch module, registered
/// in the GW as `selection_mod`, so that a learnable one (DynamicQueryAttention) trains with AdamW, is
/// saved in checkpoints and exported under shimmer's keys (`selection_mod.*`). Kinds are registered in
/// model/core/kinds.cpp and built with makeSelection.
#include <memory>
#include <string>

#include "model/core/ordered_map.h"
#include "model/core/registry.h"
#include "model/core/torch_fwd.h"

namespace gw {

/// Base of every selection (shimmer SelectionBase).
class Selection : public torch::nn::Module {
public:
    explicit Selection(std::string kind) : kind_(std::move(kind)) {}
    ~Selection() override = default;
    /// latents: domain -> (B, L_d) unimodal latents; preFusion: domain -> (B, W) encodings, same
    /// domains in the same order. Returns domain -> (B,) scores, in preFusion's order.
    /// \throws std::invalid_argument when no domain is given.
    virtual TensorMap scores(const TensorMap& latents, const TensorMap& preFusion) = 0;
    /// The registered name (`single_domain`, `dynamic_query_attention`, ...).
    const std::string& name() const { return kind_; }
    /// True when, for a single source domain, every score is exactly 1 and no random number is drawn
    /// (then the fusion of one source is tanh(e) and the hand-written CPU step may run).
    virtual bool constantForOneSource() const { return false; }
    /// False when the scores depend on no trainable tensor (so the hand-written CPU step may hold them
    /// constant); true by default, and for any selection with parameters.
    virtual bool scoresNeedGradient() const { return true; }

private:
    std::string kind_;
};

/// SingleDomainSelection: one domain drawn uniformly per sample (torch's global RNG), one-hot scores.
/// With one domain every score is 1 and nothing is drawn.
class SingleDomainSelection : public Selection {
public:
    SingleDomainSelection() : Selection("single_domain") {}
    TensorMap scores(const TensorMap& latents, const TensorMap& preFusion) override;
    bool constantForOneSource() const override { return true; }
    bool scoresNeedGradient() const override { return false; }
};

/// FixedSharedSelection: s_d = 1/D for every sample.
class FixedSharedSelection : public Selection {
public:
    FixedSharedSelection() : Selection("fixed_shared") {}
    TensorMap scores(const TensorMap& latents, const TensorMap& preFusion) override;
    bool constantForOneSource() const override { return true; }
    bool scoresNeedGradient() const override { return false; }
};

/// RandomSelection(temperature): s = softmax(U / T) over domains, U ~ Uniform(0, 1)^{B×D}.
class RandomSelection : public Selection {
public:
    /// `binaryProportion` p in [0, 1] (shimmer d8aaa0e, selection.py RandomSelection): of a batch of B,
    /// the first B - floor(B p) rows are softmax(U / temperature) with U uniform in [0, 1) (B - floor(B p),
    /// D) drawn from the default generator; the last floor(B p) rows are one-hot, floor(B p) / D of them
    /// per domain in the group's order and the remainder one each to the first domains. p = 0 (the
    /// default) is shimmer's later RandomSelection, which dropped the parameter.
    /// \throws std::invalid_argument when temperature <= 0 or p is outside [0, 1].
    explicit RandomSelection(double temperature, double binaryProportion = 0);
    /// Scores (B) per domain of `preFusion` (B, W each), as above; each row sums to 1.
    TensorMap scores(const TensorMap& latents, const TensorMap& preFusion) override;
    bool scoresNeedGradient() const override { return false; }

private:
    double temperature_;
    double binaryProportion_;
};

/// Builds a registered selection for a GW of `domains` (latent sizes `latentDims`, workspace W) with
/// `params`: as they are when checkParams made them for this selection (the experiment parser does),
/// else checked against the kind's registration here (missing ones take defaults).
/// \throws std::invalid_argument for an unknown name (listing the known ones), a bad parameter, or a
/// GW the selection cannot serve (naming the domains and sizes).
std::shared_ptr<Selection> makeSelection(const std::string& name, const std::vector<std::string>& domains,
                                         const std::vector<int64_t>& latentDims, int64_t workspaceDim,
                                         const Params& params = {});

}  // namespace gw
