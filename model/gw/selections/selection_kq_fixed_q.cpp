// SPDX-License-Identifier: GPL-3.0-or-later
/// \file selection_kq_fixed_q.cpp
/// KQFixedQSelection (shimmer `shimmer/modules/selection.py`, class KQFixedQSelection, as of commit
/// 61cc1d5, the last before 658526f folded it into DynamicQueryAttention with n_steps 0; it is gone at
/// d729e5e): key-query attention whose query comes from a fixed random workspace state. Registered in
/// model/core/kinds.cpp as `kq_fixed_q`; trained by `model: attention` (model/models/attention_model.cpp);
/// tested in tests/tst_attention.cpp.
#include <stdexcept>

#include "model/gw/selections/selection.h"

namespace gw {

namespace {

/// L: the domains' one latent size. Keys k_d = K_d(u_d) (Linear L -> H per domain, on the unimodal latents), the query q = Q(g0) from the
/// buffer g0 ~ U[0, 1)^L drawn at construction, scores s = softmax_d(k_d · q) over the group's domains
/// (no 1/sqrt(H) scaling). The pre-fusion encodings are not read. State-dict names as shimmer's:
/// `query_layer.{weight,bias}`, `key_layers.{d}.{weight,bias}`, `initial_gw_state`.
class KQFixedQSelection : public Selection {
public:
    KQFixedQSelection(const std::vector<std::string>& domains, int64_t dim, int64_t headSize) : Selection("kq_fixed_q") {
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

    TensorMap scores(const TensorMap& latents, const TensorMap&) override {
        if (latents.empty()) throw std::invalid_argument("selection: no domain to select from");
        std::vector<torch::Tensor> k;
        std::vector<std::string> names;
        for (const auto& [d, u] : latents) {
            auto* layer = keys_.find(d);
            if (!layer) throw std::invalid_argument("kq_fixed_q: no key layer for domain '" + d + "'");
            k.push_back((*layer)->forward(u));
            names.push_back(d);
        }
        const auto keys = torch::stack(k, 1);  // (B, D, H)
        const auto query = query_->forward(initial_.expand({keys.size(0), initial_.size(0)}));  // (B, H)
        const auto s = torch::softmax(torch::bmm(keys, query.unsqueeze(2)).squeeze(2), 1);     // (B, D)
        TensorMap out;
        for (size_t j = 0; j < names.size(); ++j) out.set(names[j], s.select(1, int64_t(j)));
        return out;
    }

private:
    torch::nn::Linear query_{nullptr};
    OrderedMap<torch::nn::Linear> keys_;
    torch::Tensor initial_;
};

}  // namespace

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
              return std::make_shared<KQFixedQSelection>(c.domains, c.latentDims.front(), c.params.integer("head_size"));
          });
}

}  // namespace gw
