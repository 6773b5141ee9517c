// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/core/mlp.h"

#include <stdexcept>
#include <string>

namespace gw {

torch::nn::Sequential makeGWMlp(int64_t in, int64_t hidden, int64_t out, int nLayers) {
    if (in <= 0 || hidden <= 0 || out <= 0 || nLayers < 0)
        throw std::invalid_argument("GW MLP: expected positive sizes and n_layers >= 0, found in " + std::to_string(in) +
                                    ", hidden " + std::to_string(hidden) + ", out " + std::to_string(out) +
                                    ", n_layers " + std::to_string(nLayers));
    torch::nn::Sequential s;
    s->push_back(torch::nn::Linear(in, hidden));
    s->push_back(torch::nn::ReLU());
    for (int i = 0; i < nLayers; ++i) {
        s->push_back(torch::nn::Linear(hidden, hidden));
        s->push_back(torch::nn::ReLU());
    }
    s->push_back(torch::nn::Linear(hidden, out));
    return s;
}

}  // namespace gw
