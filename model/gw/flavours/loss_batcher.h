// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file loss_batcher.h
/// Internal to the flavours' loss steps (two_domains.cpp, fusion.cpp): batched MLP calls and the
/// family means.
#include <functional>
#include <string>
#include <vector>

#include "model/gw/flavours/losses.h"
#include "model/core/ordered_map.h"
#include "model/core/torch_fwd.h"

namespace gw::detail {

/// Runs each GW encoder or decoder once per phase on the concatenation of every batch queued for it,
/// instead of once per group and per use: for two domains a step makes 8 MLP calls instead of 14. Rows
/// are independent through the MLPs, so the results are those of separate calls.
class Batcher {
public:
    size_t add(const std::string& module, torch::Tensor x) {
        if (auto* v = slots_.find(module)) v->push_back(inputs_.size());
        else slots_.set(module, {inputs_.size()});
        inputs_.push_back(std::move(x));
        return inputs_.size() - 1;
    }
    void run(const std::function<torch::Tensor(const std::string&, const torch::Tensor&)>& forward) {
        outputs_.assign(inputs_.size(), torch::Tensor());
        for (const auto& [module, slots] : slots_) {
            if (slots.size() == 1) {
                outputs_[slots[0]] = forward(module, inputs_[slots[0]]);
                continue;
            }
            std::vector<torch::Tensor> parts;
            for (auto k : slots) parts.push_back(inputs_[k]);
            const auto y = forward(module, torch::cat(parts, 0));
            int64_t at = 0;
            for (auto k : slots) {
                const int64_t n = inputs_[k].size(0);
                outputs_[k] = y.narrow(0, at, n);
                at += n;
            }
        }
    }
    const torch::Tensor& operator[](size_t slot) const { return outputs_[slot]; }

private:
    OrderedMap<std::vector<size_t>> slots_;
    std::vector<torch::Tensor> inputs_, outputs_;
};

/// The mean of loss terms (the term itself when there is one).
inline torch::Tensor meanOf(const std::vector<torch::Tensor>& v) { return v.size() == 1 ? v[0] : torch::stack(v).mean(); }

/// Sets metric `name` to the mean of `terms`, or lists the family in `r.skipped` when it has none
/// (where shimmer crashes on an empty stack).
inline void addFamily(StepLosses& r, TensorMap& metrics, const char* name, const std::vector<torch::Tensor>& terms) {
    if (terms.empty()) r.skipped.emplace_back(name);
    else metrics.set(name, meanOf(terms));
}

/// The family means of shimmer GWLosses2Domains' terms, in its order: demi-cycles, cycles, translations,
/// contrastives (two_domains, variational).
inline void addTwoDomainFamilies(StepLosses& r, TensorMap& metrics, const std::vector<torch::Tensor>& dcy,
                                 const std::vector<torch::Tensor>& cy, const std::vector<torch::Tensor>& tr,
                                 const std::vector<torch::Tensor>& ct) {
    using metrics::Family, metrics::info;
    addFamily(r, metrics, info(Family::DemiCycle).mean, dcy);
    addFamily(r, metrics, info(Family::Cycle).mean, cy);
    addFamily(r, metrics, info(Family::Translation).mean, tr);
    addFamily(r, metrics, info(Family::Contrastive).mean, ct);
}

}  // namespace gw::detail
