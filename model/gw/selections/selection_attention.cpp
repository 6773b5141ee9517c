// SPDX-License-Identifier: GPL-3.0-or-later
/// \file selection_attention.cpp
/// DynamicQueryAttention (shimmer `shimmer/modules/selection.py`, class DynamicQueryAttention;
/// docs/gw-semantics.md 1.4): learnable key-query attention over the domains of a group. Registered in
/// model/core/kinds.cpp as `dynamic_query_attention`; tested in tests/tst_fusion.cpp.
///
/// Also KQFixedQSelection (the same file, class KQFixedQSelection, as of commit 61cc1d5, the last before
/// 658526f folded it into DynamicQueryAttention with n_steps 0; it is gone at d729e5e): the same keys and
/// query from the fixed random state, with no refinement, so its latents need one common size rather than
/// the workspace's. Registered as `kq_fixed_q`; trained by `model: attention`
/// (model/models/attention_model.cpp); tested in tests/tst_attention.cpp.
#include <stdexcept>

#include "model/gw/selections/selection.h"

namespace gw {

namespace {

/// Keys k_d = K_d(u_d) (Linear L -> H, one per domain, on the unimodal latents); a query from the
/// fixed random buffer g0: q = Q(g0) (Linear L -> H); scores s = softmax_d(k_d · q) over the group's
/// domains, without 1/sqrt(H) scaling, as shimmer. Then min(step_limit, n_steps) times: f = Σ_d s_d e_d
/// (pre-fusion encodings, no activation), q = Q(f), scores again. Q takes both g0 and f, so every
/// latent size must equal the workspace size. Nothing is detached. Unlike shimmer (whose
/// `squeeze()` breaks at batch size 1) any batch size works.
class DynamicQueryAttention : public Selection {
public:
    /// \param kind "dynamic_query_attention", or "kq_fixed_q" (nSteps 0).
    DynamicQueryAttention(const std::string& kind, const std::vector<std::string>& domains, int64_t dim, int64_t headSize,
                          int64_t nSteps, int64_t stepLimit)
        : Selection(kind), nSteps_(nSteps), stepLimit_(stepLimit) {
        // Registration order as shimmer's __init__: query_layer, key_layers, initial_gw_state.
        query_ = register_module("query_layer", torch::nn::Linear(dim, headSize));
        std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> keys;
        for (const auto& d : domains) {
            torch::nn::Linear k(dim, headSize);
            keys.emplace_back(d, k.ptr());
            keys_.set(d, k);
        }
        register_module("key_layers", torch::nn::ModuleDict(keys));
        initial_ = register_buffer("initial_gw_state", torch::rand({dim}));
    }

    TensorMap scores(const TensorMap& latents, const TensorMap& pre) override {
        if (latents.empty()) throw std::invalid_argument("selection: no domain to select from");
        std::vector<torch::Tensor> k;
        std::vector<std::string> names;
        for (const auto& [d, u] : latents) {
            auto* layer = keys_.find(d);
            if (!layer) throw std::invalid_argument(name() + ": no key layer for domain '" + d + "'");
            k.push_back((*layer)->forward(u));
            names.push_back(d);
        }
        const auto keys = torch::stack(k, 1);  // (B, D, H)
        const int64_t b = keys.size(0);
        auto attend = [&](const torch::Tensor& query) {  // query (B, H) -> scores (B, D)
            return torch::softmax(torch::bmm(keys, query.unsqueeze(2)).squeeze(2), 1);
        };
        auto s = attend(query_->forward(initial_.expand({b, initial_.size(0)})));
        const int64_t steps = std::min(stepLimit_, nSteps_);
        for (int64_t i = 0; i < steps; ++i) {
            std::vector<torch::Tensor> terms;
            for (size_t j = 0; j < names.size(); ++j)
                if (const auto* e = pre.find(names[j])) terms.push_back(s.select(1, int64_t(j)).unsqueeze(1) * *e);
            s = attend(query_->forward(torch::stack(terms).sum(0)));
        }
        TensorMap out;
        for (size_t j = 0; j < names.size(); ++j) out.set(names[j], s.select(1, int64_t(j)));
        return out;
    }

private:
    int64_t nSteps_, stepLimit_;
    torch::nn::Linear query_{nullptr};
    OrderedMap<torch::nn::Linear> keys_;
    torch::Tensor initial_;
};

}  // namespace

void registerDynamicQueryAttention(SelectionRegistry& r) {
    using T = ParamInfo::Type;
    r.add({"dynamic_query_attention",
           "learnable key-query attention refined from the fused encodings (shimmer DynamicQueryAttention); "
           "needs every latent size = workspace.dim",
           {{"head_size", T::Int, "5", 1, false, "", "size of the keys and the query"},
            {"n_steps", T::Int, "1", 0, false, "refinement steps", "query refinements from the weighted encodings"},
            {"step_limit", T::Int, "-1", -1, false, "refinement steps",
             "run at most this many refinements (-1: n_steps; shimmer set_step_limit)"}}},
          [](const SelectionContext& c) -> std::shared_ptr<Selection> {
              std::string bad;
              for (size_t i = 0; i < c.domains.size(); ++i)
                  if (c.latentDims[i] != c.workspaceDim)
                      bad += (bad.empty() ? "" : ", ") + c.domains[i] + " " + std::to_string(c.latentDims[i]);
              if (!bad.empty())
                  throw std::invalid_argument(
                      "workspace.selection: dynamic_query_attention needs every domain's latent size equal to "
                      "workspace.dim (" + std::to_string(c.workspaceDim) + "), found " + bad);
              const int64_t n = c.params.integer("n_steps"), limit = c.params.integer("step_limit");
              if (limit > n)
                  throw std::invalid_argument("workspace.selection_params.step_limit: expected at most n_steps (" +
                                              std::to_string(n) + "), found " + std::to_string(limit));
              return std::make_shared<DynamicQueryAttention>("dynamic_query_attention", c.domains, c.workspaceDim,
                                                             c.params.integer("head_size"), n, limit < 0 ? n : limit);
          });
}

void registerKQFixedQSelection(SelectionRegistry& r) {
    using T = ParamInfo::Type;
    r.add({"kq_fixed_q",
           "learnable key-query attention with a fixed random query (shimmer KQFixedQSelection); "
           "needs every latent size equal",
           {{"head_size", T::Int, "5", 1, false, "", "size of the keys and the query"}}},
          [](const SelectionContext& c) -> std::shared_ptr<Selection> {
              if (c.domains.empty()) throw std::invalid_argument("workspace.selection: kq_fixed_q needs a domain");
              std::string sizes;
              bool equal = true;
              for (size_t i = 0; i < c.domains.size(); ++i) {
                  sizes += (sizes.empty() ? "" : ", ") + c.domains[i] + " " + std::to_string(c.latentDims[i]);
                  equal = equal && c.latentDims[i] == c.latentDims.front();
              }
              if (!equal)
                  throw std::invalid_argument("workspace.selection: kq_fixed_q needs every domain's latent size equal "
                                              "(its query and keys share one input size), found " + sizes);
              return std::make_shared<DynamicQueryAttention>("kq_fixed_q", c.domains, c.latentDims.front(),
                                                             c.params.integer("head_size"), 0, 0);
          });
}

}  // namespace gw
