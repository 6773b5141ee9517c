// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file loss_settings.h
/// The loss settings of a GW, as one value from the experiment file to the loss module: the experiment's
/// `loss:` section (ExperimentConfig::loss) is GWSettings::loss, FlavourContext::loss and what GWLosses
/// keeps, copied whole at each step, never field by field (shimmer `GWLosses2Domains.__init__`:
/// loss_coefs, contrastive_fn). Torch-free.
#include <string>

#include "model/core/metric_names.h"
#include "model/core/ordered_map.h"

namespace gw {

struct LossSettings {
    /// Metric name -> coefficient (B-free, unitless); any metric may be named (shimmer #178). The loss is
    /// the mean of coefficient × metric over the positive ones that name a computed metric (combineLoss).
    OrderedMap<double> coefficients;
    /// The contrastive's initial logit scale, as a logarithm: log(1/0.07) (shimmer ContrastiveLoss).
    double logitScale = 2.6592600369327779;
    bool learnLogitScale = false;  ///< a parameter AdamW trains, else a buffer
    /// The contrastive loss's registered kind (`loss.contrastive`: clip, info_nce, vsepp) and its
    /// parameters as the experiment gives them (`loss.contrastive_params`; checked by the parser, and
    /// again by makeContrastive).
    std::string contrastive = "clip";
    OrderedMap<std::string> contrastiveParams;
};

/// shimmer-ssd's default coefficients: every family mean of the metric vocabulary that has a default
/// (demi_cycles 1, cycles 1, translations 1, contrastives 0.01), in shimmer's order.
inline OrderedMap<double> defaultCoefficients() {
    OrderedMap<double> c;
    for (const auto& f : metrics::families())
        if (f.defaultCoef > 0) c.set(f.mean, f.defaultCoef);
    return c;
}

}  // namespace gw
