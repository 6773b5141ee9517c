// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file losses.h
/// GW losses: contrastive (CLIP), demi-cycles, cycles, translations and their combination
/// (shimmer `losses.py`, `contrastive_loss.py`; gw-reference 2.1, 2.2, 2.4, 2.5).
#include <cmath>
#include <string>
#include <vector>

#include "model/gw_module.h"
#include "model/torch_fwd.h"

namespace gw {

/// One group of a batch: paired samples of `domains` (shimmer LatentsDomainGroupT). Different groups
/// hold different samples. latents: domain -> (B, L_d); inputs: domain -> prepared raw input (B, ...),
/// passed to the domain modules' losses as raw targets.
struct GroupBatch {
    std::vector<std::string> domains;
    TensorMap latents;
    TensorMap inputs;
};

/// "{a,b}": a group's name with its domains in the group's order.
std::string groupName(const std::vector<std::string>& domains);

/// CLIP contrastive loss (shimmer contrastive_loss): rows of x (B, W) and y (B, W) are L2-normalised
/// (eps 1e-12), logits = min(exp(logitScale), 100) · x̂ ŷᵀ (B, B), loss = ½(CE(logits, arange B) +
/// CE(logitsᵀ, arange B)), mean reduction. logitScale: () or (1,) tensor.
torch::Tensor contrastiveLoss(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& logitScale);

/// shimmer ContrastiveLoss: the logit scale as a buffer `logit_scale` (1,) or, when learnable, a
/// parameter. Default log(1/0.07).
class ContrastiveFn : public torch::nn::Module {
public:
    explicit ContrastiveFn(double logitScale = std::log(1.0 / 0.07), bool learnable = false);
    /// Loss and metric `logit_scale` = exp(logit_scale) (unclamped, as shimmer logs it).
    LossOutput operator()(const torch::Tensor& x, const torch::Tensor& y);
    torch::Tensor logitScale() const { return logitScale_; }

private:
    torch::Tensor logitScale_;
};

/// Loss coefficients: metric name -> coefficient. Any metric may be named (shimmer #178).
using LossCoefs = OrderedMap<double>;

/// shimmer combine_loss, without its integer-coefficient bug: the MEAN of coef · metric over the
/// coefficients that are > 0 and name a metric present (P5: 0.3). Every number is a coefficient.
/// \throws std::invalid_argument when no coefficient selects any metric, listing both sides.
torch::Tensor combineLoss(const TensorMap& metrics, const LossCoefs& coefs);

/// Result of one loss step.
struct StepLosses {
    LossOutput out;                    ///< loss = combineLoss(metrics, coefs)
    std::vector<std::string> skipped;  ///< families with no term in this batch (shimmer crashes there)
};

/// shimmer GWLosses2Domains (registered as `loss_mod`, holding `contrastive_fn`), for any number of
/// domains:
/// - demi_cycle_{d}: single-domain groups, Dec_d(tanh(Enc_d(u_d))) against u_d;
/// - cycle_{s}_through_{t}: single-domain groups, through every other domain t of the GW;
/// - translation_{s1/s2}_to_{t}: groups of >= 2 domains, each domain t from the fusion of the others;
/// - contrastive_{d1}_and_{d2}: every pair of a group of >= 2 domains on pre-fusion encodings (for
///   exactly 2 domains, shimmer's single pair), plus contrastive_{d1}_and_{d2}_logit_scale;
/// - the family means demi_cycles, cycles, translations, contrastives. An empty family is skipped
///   (listed in StepLosses::skipped), where shimmer crashes on an empty stack.
/// Extra metrics k of a domain's loss are logged as `{term}_{k}`.
class GWLosses : public torch::nn::Module {
public:
    GWLosses(LossCoefs coefs, double logitScale, bool learnLogitScale);
    StepLosses step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups);
    const LossCoefs& coefs() const { return coefs_; }
    ContrastiveFn& contrastive() { return *contrastive_; }

private:
    LossCoefs coefs_;
    std::shared_ptr<ContrastiveFn> contrastive_;
};

}  // namespace gw
