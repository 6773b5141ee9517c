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

const char* fusionActivationName(FusionActivation a) {
    switch (a) {
        case FusionActivation::Tanh: return "tanh";
        case FusionActivation::Identity: return "identity";
        case FusionActivation::Sigmoid: return "sigmoid";
        case FusionActivation::Relu: return "relu";
    }
    return "tanh";
}

const std::vector<std::string>& fusionActivationNames() {
    static const std::vector<std::string> names{"tanh", "identity", "sigmoid", "relu"};
    return names;
}

FusionActivation fusionActivationOf(const std::string& name) {
    for (auto a : {FusionActivation::Tanh, FusionActivation::Identity, FusionActivation::Sigmoid, FusionActivation::Relu})
        if (name == fusionActivationName(a)) return a;
    throw std::invalid_argument("expected tanh, identity, sigmoid or relu, found '" + name + "'");
}

torch::nn::Sequential makeGWLinear(int64_t in, int64_t out, bool bias) {
    if (in <= 0 || out <= 0)
        throw std::invalid_argument("GW linear layer: expected positive sizes, found in " + std::to_string(in) + ", out " +
                                    std::to_string(out));
    torch::nn::Sequential s;
    s->push_back(torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias)));
    return s;
}

}  // namespace gw
