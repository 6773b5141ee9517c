// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file losses.h
/// GW losses: contrastive (CLIP), demi-cycles, cycles, translations and their combination
/// (shimmer `losses.py`, `contrastive_loss.py`; docs/gw-semantics.md 2.1 to 2.5).
#include <cmath>
#include <string>
#include <vector>

#include "model/core/metric_names.h"
#include "model/gw/gw_module.h"
#include "model/core/torch_fwd.h"

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
/// "{a,b}" with the names sorted, as shimmer's broadcast loss labels subsets and groups.
std::string sortedGroupName(std::vector<std::string> domains);

/// CLIP contrastive loss (shimmer contrastive_loss): rows of x (B, W) and y (B, W) are L2-normalised
/// (eps 1e-12), logits = min(exp(logitScale), 100) · x̂ ŷᵀ (B, B), loss = ½(CE(logits, arange B) +
/// CE(logitsᵀ, arange B)), mean reduction. logitScale: () or (1,) tensor.
torch::Tensor contrastiveLoss(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& logitScale);

/// InfoNCE (shimmer contrastive_loss.py info_nce): the same logits as contrastiveLoss, one direction
/// only: CE(logits, arange B), rows of x against the columns of y. x, y (B, W); logitScale () or (1,).
torch::Tensor infoNceLoss(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& logitScale);

/// VSE++'s hinge loss (shimmer-ssd modules/contrastive_loss.py ContrastiveLoss, after Faghri et al.): x,
/// y (B, W) L2-normalised, S = x̂ ŷᵀ (cosine) or S_ij = −‖max(0, ŷ_j − x̂_i)‖ (order); with margin m,
/// cost_y = max(0, m + S_ij − S_ii) and cost_x = max(0, m + S_ij − S_jj) off the diagonal; the loss is
/// their sum over every pair, or, with maxViolation, the sum of each row's largest cost_y and each
/// column's largest cost_x (the hardest negatives). Not averaged: it grows with B.
torch::Tensor vseppLoss(const torch::Tensor& x, const torch::Tensor& y, double margin, bool orderMeasure, bool maxViolation);

/// The contrastive loss of a GW (loss.contrastive; kinds registered in model/core/kinds.cpp). This
/// class is the default kind, `clip` (shimmer ContrastiveLoss): the logit scale as a buffer
/// `logit_scale` (1,) or, when learnable, a parameter; default log(1/0.07).
class ContrastiveFn : public torch::nn::Module {
public:
    explicit ContrastiveFn(double logitScale = std::log(1.0 / 0.07), bool learnable = false);
    ~ContrastiveFn() override = default;
    /// Loss () and metrics, e.g. `logit_scale` = exp(logit_scale) (unclamped, as shimmer logs it).
    virtual LossOutput operator()(const torch::Tensor& x, const torch::Tensor& y);
    /// The CLIP logit scale (1,) this loss holds (VSE++: the one of its CLIP metric).
    virtual torch::Tensor logitScale() const { return logitScale_; }
    /// The registered kind: "clip", "info_nce", "vsepp". The hand-written steps compute `clip` only.
    virtual std::string kind() const { return "clip"; }

protected:
    struct NoLogitScale {};
    explicit ContrastiveFn(NoLogitScale) {}
    torch::Tensor logitScale_;
};

/// Kind `info_nce`: infoNceLoss with a logit scale held as clip's (`logit_scale`), metric `logit_scale`.
class InfoNceFn : public ContrastiveFn {
public:
    using ContrastiveFn::ContrastiveFn;
    LossOutput operator()(const torch::Tensor& x, const torch::Tensor& y) override;
    std::string kind() const override { return "info_nce"; }
};

/// Kind `vsepp` (shimmer-ssd VSEPPContrastiveLoss): vseppLoss, and the CLIP loss of the same pair as
/// the metric `clip`, from a submodule `clip_contrastive_loss` (its `logit_scale` named as shimmer-ssd's).
class VseppFn : public ContrastiveFn {
public:
    /// \throws std::invalid_argument for a measure other than "cosine" or "order".
    VseppFn(double margin, const std::string& measure, bool maxViolation, double logitScale, bool learnable);
    LossOutput operator()(const torch::Tensor& x, const torch::Tensor& y) override;
    torch::Tensor logitScale() const override { return clip_->logitScale(); }
    std::string kind() const override { return "vsepp"; }

private:
    double margin_;
    bool order_, maxViolation_;
    std::shared_ptr<ContrastiveFn> clip_;
};

/// The contrastive loss the settings name (loss.contrastive, loss.contrastive_params), from the registry.
/// \throws std::invalid_argument for an unknown kind (listing the known ones) or a bad parameter.
std::shared_ptr<ContrastiveFn> makeContrastive(const LossSettings& loss);

/// Loss coefficients: metric name -> coefficient. Any metric may be named (shimmer #178).
using LossCoefs = OrderedMap<double>;

/// shimmer combine_loss, without its integer-coefficient bug: the MEAN of coef · metric over the
/// coefficients that are > 0 and name a metric present (P5: 0.3). Every number is a coefficient.
/// \throws std::invalid_argument when no coefficient selects any metric, listing both sides.
torch::Tensor combineLoss(const TensorMap& metrics, const LossCoefs& coefs);

/// What fusion's `broadcast_loss` averages (shimmer GWLosses.step): the metrics named by the positive
/// coefficients other than `contrastives`, those present, in the coefficients' order. Each () tensor.
std::vector<torch::Tensor> broadcastLossTerms(const TensorMap& logged, const LossCoefs& coefs);

/// Result of one loss step.
struct StepLosses {
    LossOutput out;                    ///< loss = combineLoss(metrics, coefs)
    std::vector<std::string> skipped;  ///< families with no term in this batch (shimmer crashes there)
};

/// Base of the GW flavours' loss modules (registered as `loss_mod`, holding `contrastive_fn`): the
/// coefficients, the contrastive function and the step that computes a flavour's metrics and loss.
/// Flavours are registered in model/core/kinds.cpp (workspace.flavour).
class GWLosses : public torch::nn::Module {
public:
    /// \param loss the experiment's loss settings (coefficients; the contrastive's logit scale, registered
    /// as `contrastive_fn.logit_scale`, a parameter when learnt).
    GWLosses(std::string flavour, const LossSettings& loss);
    /// The metrics and combined loss of one batch of groups. Shapes as GroupBatch.
    /// \throws std::invalid_argument as combineLoss when no coefficient selects a computed metric.
    virtual StepLosses step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups) = 0;
    /// The loss terms this flavour's step computes (metrics::FamilyInfo::term: "demi_cycle", "cycle",
    /// "translation", "contrastive", "fused", ...). The flavour's hand-written step, if it registers
    /// one (FlavourImpl::handWritten), runs only when it implements every one.
    virtual std::vector<std::string> terms() const = 0;
    /// Called once by GlobalWorkspace when both are built: a flavour whose GW module holds more than
    /// shimmer's GWModule registers it there (GWModule's hooks: per-domain tensors, its own fusion).
    /// The default adds nothing.
    virtual void attach(GWModule& gw) { (void)gw; }
    const std::string& flavour() const { return flavour_; }
    const LossCoefs& coefs() const { return loss_.coefficients; }
    const LossSettings& settings() const { return loss_; }
    ContrastiveFn& contrastive() { return *contrastive_; }

protected:
    std::string flavour_;
    LossSettings loss_;
    std::shared_ptr<ContrastiveFn> contrastive_;
};

/// Flavour `two_domains`: shimmer GWLosses2Domains (docs/gw-semantics.md 2.2), for any number of domains:
/// - demi_cycle_{d}: single-domain groups, Dec_d(tanh(Enc_d(u_d))) against u_d;
/// - cycle_{s}_through_{t}: single-domain groups, through every other domain t of the GW;
/// - translation_{s1/s2}_to_{t}: groups of >= 2 domains, each domain t from the fusion of the others;
/// - contrastive_{d1}_and_{d2}: every pair of a group of >= 2 domains on pre-fusion encodings (for
///   exactly 2 domains, shimmer's single pair), plus contrastive_{d1}_and_{d2}_logit_scale;
/// - the family means demi_cycles, cycles, translations, contrastives. An empty family is skipped
///   (listed in StepLosses::skipped), where shimmer crashes on an empty stack.
/// Extra metrics k of a domain's loss are logged as `{term}_{k}`.
class GWLosses2Domains : public GWLosses {
public:
    explicit GWLosses2Domains(const LossSettings& loss);
    StepLosses step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups) override;
    std::vector<std::string> terms() const override {
        using metrics::Family, metrics::info;
        return {info(Family::DemiCycle).term, info(Family::Cycle).term, info(Family::Translation).term,
                info(Family::Contrastive).term};
    }
};

/// Flavour `fusion`: shimmer GWLosses (GlobalWorkspaceFusion; docs/gw-semantics.md 2.3): contrastive on the
/// groups of two or more domains plus the broadcast loss. For every group G and every non-empty subset S
/// of G (in the order of itertools.product([0, 1], repeat=|G|)): z = fuse(S) with the selection, decoded
/// into every GW domain; each decoded domain d of G is scored against its latent as
/// - a demi-cycle `from_{S}_to_{d}_loss` when S = {d},
/// - a translation `from_{S}_to_{d}_loss` when d is not in S,
/// - a fused term `from_{S}_to_{d}_loss` when d is in S and |S| >= 2;
/// and when S leaves out some GW domains I, the decodings of I are fused again and decoded into S: a
/// cycle `from_{S}_through_{I}_to_{d}_case_{G}_loss` for each d in S. {S}, {I} and {G} list names
/// sorted. Where shimmer's demi-cycle, translation and fused keys would collide across
/// groups (a shimmer bug: the later group overwrites the earlier one), every group but the first to
/// use a key gets `_case_{G}` appended, as the cycle keys have. Family means demi_cycles, cycles,
/// translations, fused over the terms; `broadcast_loss` = mean of the metrics named by positive
/// coefficients other than `contrastives` (those present).
class GWLossesFusion : public GWLosses {
public:
    explicit GWLossesFusion(const LossSettings& loss);
    StepLosses step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups) override;
    std::vector<std::string> terms() const override {
        using metrics::Family, metrics::info;
        return {info(Family::Contrastive).term, info(Family::DemiCycle).term, info(Family::Cycle).term,
                info(Family::Translation).term, info(Family::Fused).term, metrics::kBroadcastTerm};
    }

protected:
    GWLossesFusion(std::string flavour, const LossSettings& loss);
    /// The contrastive of the pair (a, b) of a group, on their pre-fusion encodings ea, eb (B, W): its
    /// loss, with extra metrics k logged as `contrastive_{a}_and_{b}_{k}`; metrics put into `more` are
    /// logged under their own names. Fusion: the contrastive function's.
    virtual LossOutput pairContrastive(const std::string& a, const std::string& b, const torch::Tensor& ea,
                                       const torch::Tensor& eb, TensorMap& more);
};

/// shimmer 0.4.0's contrastive_loss_with_uncertainty (shimmer/modules/contrastive_loss.py): with
/// n = 1 + exp(½ xLogVar) + exp(½ yLogVar) (B, W), the CLIP loss of x̂ / n and ŷ / n, where x̂, ŷ are the
/// rows of x, y (B, W) L2-normalised (eps 1e-12), and the logit scale min(exp(logitScale), 100).
/// Shapes: x, y, xLogVar, yLogVar (B, W); logitScale () or (1,); result ().
torch::Tensor contrastiveLossWithUncertainty(const torch::Tensor& x, const torch::Tensor& xLogVar, const torch::Tensor& y,
                                             const torch::Tensor& yLogVar, const torch::Tensor& logitScale);

/// The KL divergence of N(mean, exp(logVar)) from N(0, 1), summed over every element (shimmer 0.4.0
/// vae.py kl_divergence_loss): −½ Σ (1 + logVar − mean² − exp(logVar)). mean, logVar (B, W); result ().
torch::Tensor klDivergence(const torch::Tensor& mean, const torch::Tensor& logVar);

/// Flavour `variational`: shimmer 0.4.0 VariationalGlobalWorkspace (gw_module.py VariationalGWEncoder,
/// VariationalGWModule; losses.py VariationalGWLosses, _contrastive_loss_with_uncertainty). Each GW
/// encoder gives a mean μ_d = tanh(Enc_d(u_d)) (B, W) and carries a learnt log-variance
/// `uncertainty_level` (W,) (initial value 3), registered as `gw_mod.gw_encoders.{d}.uncertainty_level`
/// beside the MLP, then named `gw_mod.gw_encoders.{d}.layers.{i}.*` (the names shimmer's own checkpoint
/// migrations give a 0.4.0 checkpoint). A domain's state is z_d = μ_d + exp(½ lv_d) · ε (ε ~ N(0, 1)) in
/// a training step when `sample` is on, μ_d otherwise; the state of several domains is their mean
/// (no selection, no tanh after it). Metrics, as 0.4.0 logs them:
/// - demi_cycle_{d}, cycle_{s}_through_{t}, translation_{s}_to_{t} (one source at a time, as 0.4.0
///   translates), family means demi_cycles, cycles, translations;
/// - contrastive_{a}_and_{b} on the states of a and b (with `var_contrastive_loss`, on μ_a, μ_b through
///   contrastiveLossWithUncertainty, plus `contrastive_{a}_and_{b}_no_uncertainty`, the plain CLIP loss),
///   `contrastive_{a}_and_{b}_logit_scale`, contrastives;
/// - kl_{d} = klDivergence(μ_d, lv_d) / (B + W) on single-domain groups, and their mean kl.
class GWLossesVariational : public GWLosses {
public:
    /// \param sample draw the state in training steps (shimmer 0.4.0 draws it, then uses μ: false).
    /// \param uncertaintyContrastive shimmer's var_contrastive_loss: the contrastive module is then
    /// registered as `var_contrastive_fn` (0.4.0's name) instead of `contrastive_fn`.
    GWLossesVariational(const LossSettings& loss, bool sample, bool uncertaintyContrastive);
    StepLosses step(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups) override;
    std::vector<std::string> terms() const override {
        using metrics::Family, metrics::info;
        return {info(Family::DemiCycle).term, info(Family::Cycle).term, info(Family::Translation).term,
                info(Family::Contrastive).term, metrics::kKl};
    }
    /// Wraps every GW encoder with its `uncertainty_level` (W,) and sets the fusion (mean of μ_d).
    void attach(GWModule& gw) override;
    /// Domain -> its log-variance `uncertainty_level` (W,); empty before attach.
    const OrderedMap<torch::Tensor>& uncertainty() const { return logVar_; }

private:
    bool sample_, uncertaintyContrastive_;
    OrderedMap<torch::Tensor> logVar_;
};

/// shimmer v0.5.1 compute_fusion_scores (gw_module.py): the precision-weighted fusion coefficients.
/// scores (D, B, 1) the selection's, precision (D, B, W) already softmaxed over D; with eps = 1e-6,
/// u = c1 / (eps + scores) + c2 / (eps + precision), λ = 1 / (eps + u), normalised over D. Result (D, B, W).
torch::Tensor bayesianFusionWeights(const torch::Tensor& scores, const torch::Tensor& precision, double c1, double c2);

/// Flavour `bayesian`: shimmer v0.5.1 GlobalWorkspaceBayesian (gw_module.py GWModuleBayesian,
/// compute_fusion_scores; losses.py GWLossesBayesian, contrastive_loss_bayesian). Each domain has a
/// learnt precision p_d (W,) (randn initial values), registered as `gw_mod.precisions.{d}`. Fusion of the
/// domains S with selection scores s_d (B,): b = softmax over S of tanh(p_d) · T (T =
/// precision_softmax_temp), λ = bayesianFusionWeights(s, b, c1 = sensitivity_selection, c2 =
/// sensitivity_precision), z = tanh(Σ_d λ_d ⊙ e_d). The loss is fusion's (the broadcast loss, with this
/// fusion), but for the contrastive of a pair (a, b), when `use_normalized_contrastive` is on: with
/// (c_a, c_b) = softmax over the pair of T · (p_a, p_b) and n = sqrt(c_a c_b) (W,), the CLIP loss of
/// e_a ⊙ n and e_b ⊙ n, logged as contrastive_{a}_and_{b} (and its `_logit_scale`); the plain CLIP loss
/// of e_a, e_b as `unnorm_contrastive_{a}_and_{b}`.
class GWLossesBayesian : public GWLossesFusion {
public:
    /// \throws std::invalid_argument for a temperature of 0 or a negative sensitivity.
    GWLossesBayesian(const LossSettings& loss, double temperature, double sensitivitySelection, double sensitivityPrecision,
                     bool normalizedContrastive);
    /// Registers the precisions and sets the fusion.
    void attach(GWModule& gw) override;
    /// Domain -> its precision (W,); empty before attach.
    const OrderedMap<torch::Tensor>& precisions() const { return precisions_; }
    /// The fused GW state (B, W) of pre-fusion encodings (B, W) under selection scores (B,), as above.
    torch::Tensor fuse(const TensorMap& preFusion, const TensorMap& scores) const;

protected:
    LossOutput pairContrastive(const std::string& a, const std::string& b, const torch::Tensor& ea, const torch::Tensor& eb,
                               TensorMap& more) override;

private:
    double temperature_, c1_, c2_;
    bool normalized_;
    OrderedMap<torch::Tensor> precisions_;
};

}  // namespace gw
