// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file latent_losses.h
/// The loss terms of the hand-written CPU step in closed form, value and gradient: a domain's latent
/// loss (MSE or cross-entropy, DomainModule::latentLossKind) of a decoded prediction against its
/// target, and the CLIP contrastive loss of two encodings (contrastiveLoss in
/// model/gw/flavours/losses.h), with the weights combineLoss gives each term.
/// Shapes: a prediction and its gradient (n × L) float32; an MSE target (n × L) float32; class
/// indices (n,) int64; contrastive encodings (B × W) float32. All row-major, contiguous.
#include <cstdint>
#include <string>
#include <vector>

#include "model/core/metric_names.h"
#include "model/core/torch_fwd.h"
#include "model/cpu_step/arena.h"
#include "model/domains/domain_module.h"

namespace gw::cpu {

/// One loss term of a step: a latent term (kind Mse or CrossEntropy) or a contrastive (kind Custom,
/// family Contrastive).
struct Term {
    std::string name;  ///< its metric name (the coefficient key), as the flavour's autograd step writes it
    metrics::Family family = metrics::Family::DemiCycle;
    LatentLossKind kind = LatentLossKind::Mse;
    const float* pred = nullptr;  ///< (n × L)
    float* grad = nullptr;        ///< where d loss / d pred goes (n × L)
    const float* target = nullptr;
    const int64_t* classes = nullptr;
    int64_t n = 0, L = 0;
    // Contrastive: the two domains' pre-fusion encodings (phase-1 rows of the step's domains da, db).
    int da = -1, db = -1;
    int64_t rowA = 0, rowB = 0;
    double value = 0, extra = 0;  ///< extra: accuracy (CrossEntropy) or exp(logit_scale) (contrastive)
    double weight = 0;            ///< d loss / d value, set by termGradients
    // Contrastive scratch kept between value and gradient.
    float *xn = nullptr, *yn = nullptr, *cos = nullptr, *rowP = nullptr, *colP = nullptr;
    std::vector<float> normA, normB, rowInv, colInv;
    float scale = 0;
    /// The fixed-shift path (cos == nullptr): Σ_ij P_ij cos_ij (1/rowSum_i + 1/colSum_j), and Σ_i cos_ii.
    double pCos = 0, diagSum = 0;
};

/// MSE (mean over n × L): without wantGrad sets t.value; with it writes weight · d MSE / d pred into t.grad.
void mseTerm(Term& t, bool wantGrad);
/// Cross-entropy of the logits t.pred against t.classes (mean over n): without wantGrad sets t.value
/// and t.extra (accuracy); with it writes weight · d CE / d pred into t.grad.
void crossEntropyTerm(Term& t, bool wantGrad);

/// CLIP loss value of x and y (t.n × W each) into t.value, exp(logitScale) into t.extra. Keeps in t
/// (and in `arena`) what contrastiveGrad reads. Every B × B loop is float and runs along rows, so
/// that it vectorises (the ssd benchmark has B = 2056).
void contrastiveValue(Arena& arena, Term& t, const float* x, const float* y, int64_t W, float logitScale);
/// After contrastiveValue and termGradients: adds t.weight · the contrastive's gradient into dEa and
/// dEb (t.n × W each); returns t.weight · d loss / d logit_scale.
double contrastiveGrad(Arena& arena, Term& t, int64_t W, float* dEa, float* dEb, float logitScale);

/// Per family (metrics::Family index): the sum of its terms' values and their count.
struct FamilyTotals {
    std::vector<double> sum = std::vector<double>(metrics::families().size(), 0.0);
    std::vector<int> count = std::vector<int>(metrics::families().size(), 0);
    void add(metrics::Family f, double v) {
        sum[static_cast<size_t>(f)] += v;
        ++count[static_cast<size_t>(f)];
    }
    int countOf(metrics::Family f) const { return count[static_cast<size_t>(f)]; }
    double mean(metrics::Family f) const { return sum[static_cast<size_t>(f)] / count[static_cast<size_t>(f)]; }
};

/// Each term's weight in combineLoss's mean (coefficient / selected count, divided again by the
/// family's count for a family coefficient, metrics::info(f).mean), then d loss / d prediction of
/// every latent term with a weight. `values`: the step's metrics (which coefficients select).
void termGradients(std::vector<Term>& terms, const OrderedMap<double>& coefs, const TensorMap& values,
                   const FamilyTotals& f);

}  // namespace gw::cpu
