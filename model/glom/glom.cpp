// SPDX-License-Identifier: GPL-3.0-or-later
// GLOM's network (glom.h), following glom-pytorch's Glom, GroupedFeedForward and ConsensusAttention.
#include "model/glom/glom.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace gw {

namespace {

std::string shapeOf(const torch::Tensor& t) {
    std::ostringstream o;
    o << "(";
    for (int64_t i = 0; i < t.dim(); ++i) o << (i ? ", " : "") << t.size(i);
    o << ")";
    return o.str();
}

/// glom-pytorch's value for a column's logit on itself when self-attention is off: near zero, not -inf.
constexpr double kAttendSelfValue = -5e-4;

/// PyTorch's default initialisation of Linear and Conv1d weights and biases: U(-1/sqrt(fan_in), +).
torch::Tensor uniformFan(std::vector<int64_t> shape, int64_t fanIn) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fanIn));
    return torch::empty(shape).uniform_(-bound, bound);
}

}  // namespace

void GlomOptions::check() const {
    auto fail = [](const std::string& key, const std::string& expected, const std::string& found) {
        throw std::invalid_argument(key + ": expected " + expected + ", found " + found);
    };
    if (dim < 1) fail("dim", "a whole number >= 1", std::to_string(dim));
    if (levels < 2) fail("levels", "a whole number >= 2 (a top level and at least one below it)", std::to_string(levels));
    if (patchSize < 1) fail("patch_size", "a whole number >= 1", std::to_string(patchSize));
    if (imageSize < patchSize || imageSize % patchSize != 0)
        fail("image_size", "a multiple of patch_size (" + std::to_string(patchSize) + ")", std::to_string(imageSize));
    if (channels != 1 && channels != 3) fail("channels", "1 or 3", std::to_string(channels));
    if (!(localRadius >= 0)) fail("local_radius", "a number >= 0", std::to_string(localRadius));
}

GlomImpl::GlomImpl(const GlomOptions& o) : opt_(o) {
    opt_.check();
    const int64_t d = o.dim, L = o.levels, n = o.columns(), in = o.patchSize * o.patchSize * o.channels;
    tokenW_ = register_parameter("image_to_tokens_weight", uniformFan({d, in}, in));
    tokenB_ = register_parameter("image_to_tokens_bias", uniformFan({d}, in));
    posEmb_ = register_parameter("pos_emb", torch::randn({n, d}));
    initLevels_ = register_parameter("init_levels", torch::randn({L, d}));
    // Grouped 1x1 convolutions, as glom-pytorch stores them: (groups·out, in, 1).
    bu1W_ = register_parameter("bottom_up_1_weight", uniformFan({L * 4 * d, d, 1}, d));
    bu1B_ = register_parameter("bottom_up_1_bias", uniformFan({L * 4 * d}, d));
    bu2W_ = register_parameter("bottom_up_3_weight", uniformFan({L * d, 4 * d, 1}, 4 * d));
    bu2B_ = register_parameter("bottom_up_3_bias", uniformFan({L * d}, 4 * d));
    td1W_ = register_parameter("top_down_1_weight", uniformFan({(L - 1) * 4 * d, d, 1}, d));
    td1B_ = register_parameter("top_down_1_bias", uniformFan({(L - 1) * 4 * d}, d));
    td2W_ = register_parameter("top_down_3_weight", uniformFan({(L - 1) * d, 4 * d, 1}, 4 * d));
    td2B_ = register_parameter("top_down_3_bias", uniformFan({(L - 1) * d}, 4 * d));
    if (o.localRadius > 0) {
        // Column k sits at (k / side, k % side) of the patch grid; farther than the radius: masked.
        const auto idx = torch::arange(n, torch::kInt64);
        const auto coords = torch::stack({idx.div(o.side(), "floor"), idx.remainder(o.side())}, 1).to(torch::kFloat32);
        nonLocalMask_ = register_buffer("non_local_mask", (torch::cdist(coords, coords) > o.localRadius).unsqueeze(0));
    }
}

torch::Tensor GlomImpl::tokens(const torch::Tensor& img) const {
    const int64_t B = img.size(0), C = opt_.channels, p = opt_.patchSize, s = opt_.side();
    // (B, C, s·p, s·p) -> (B, s, s, p, p, C) -> (B, n, p·p·C): glom-pytorch's 'b c (h p1) (w p2) -> b (h w) (p1 p2 c)'.
    const auto patches = img.reshape({B, C, s, p, s, p}).permute({0, 2, 4, 3, 5, 1}).reshape({B, s * s, p * p * C});
    return torch::linear(patches, tokenW_, tokenB_);
}

torch::Tensor GlomImpl::grouped(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                                const torch::Tensor& b2, int64_t groups) const {
    // One 2-layer MLP (d -> 4d -> d, GELU) per group, shared over the columns: a batched product per group.
    const int64_t B = x.size(0), n = x.size(1), d = opt_.dim;
    const auto xg = x.permute({2, 0, 1, 3}).reshape({groups, B * n, d});
    const auto h = torch::gelu(torch::baddbmm(b1.view({groups, 1, 4 * d}), xg, w1.view({groups, 4 * d, d}).transpose(1, 2)));
    const auto o = torch::baddbmm(b2.view({groups, 1, d}), h, w2.view({groups, d, 4 * d}).transpose(1, 2));
    return o.view({groups, B, n, d}).permute({1, 2, 0, 3});
}

torch::Tensor GlomImpl::consensus(const torch::Tensor& levels) const {
    const int64_t n = levels.size(1), d = levels.size(3);
    const auto q = levels.permute({0, 2, 1, 3});                                            // (B, L, n, d)
    const auto k = torch::nn::functional::normalize(levels, torch::nn::functional::NormalizeFuncOptions().dim(-1)).permute({0, 2, 3, 1});
    auto sim = torch::matmul(q, k) * (1.0 / std::sqrt(static_cast<double>(d)));             // (B, L, n, n)
    if (!opt_.consensusSelf)
        sim = sim.masked_fill(torch::eye(n, torch::TensorOptions().dtype(torch::kBool).device(levels.device())), kAttendSelfValue);
    if (nonLocalMask_.defined()) sim = sim.masked_fill(nonLocalMask_.to(levels.device()), -std::numeric_limits<float>::max());
    return torch::matmul(sim.softmax(-1), q).permute({0, 2, 1, 3});                          // (B, n, L, d)
}

torch::Tensor GlomImpl::forward(const torch::Tensor& img, int64_t iters, const torch::Tensor& start, bool returnAll) {
    const int64_t L = opt_.levels, d = opt_.dim, n = opt_.columns();
    if (img.dim() != 4 || img.size(1) != opt_.channels || img.size(2) != opt_.imageSize || img.size(3) != opt_.imageSize)
        throw std::invalid_argument("GLOM input: expected images (B, " + std::to_string(opt_.channels) + ", " +
                                    std::to_string(opt_.imageSize) + ", " + std::to_string(opt_.imageSize) + "), found " + shapeOf(img));
    if (iters < 0) iters = 2 * L;
    const int64_t B = img.size(0);
    const auto bottom = tokens(img).unsqueeze(2);  // (B, n, 1, d)
    const auto pos = posEmb_.view({1, n, 1, d});
    torch::Tensor levels;
    if (start.defined()) {
        if (start.dim() != 4 || start.size(0) != B || start.size(1) != n || start.size(2) != L || start.size(3) != d)
            throw std::invalid_argument("GLOM levels: expected (" + std::to_string(B) + ", " + std::to_string(n) + ", " +
                                        std::to_string(L) + ", " + std::to_string(d) + "), found " + shapeOf(start));
        levels = start;
    } else {
        levels = initLevels_.view({1, 1, L, d}).expand({B, n, L, d});
    }
    auto contributions = torch::full({L}, 4.0, img.options());
    contributions[L - 1] = 3.0;  // the top level has no top-down term
    contributions = contributions.view({1, 1, L, 1});
    std::vector<torch::Tensor> states{levels};
    const auto zeroTop = torch::zeros({B, n, 1, d}, img.options());
    for (int64_t i = 0; i < iters; ++i) {
        const auto withInput = torch::cat({bottom, levels}, 2);  // (B, n, L + 1, d)
        const auto up = grouped(withInput.narrow(2, 0, L), bu1W_, bu1B_, bu2W_, bu2B_, L);
        const auto down = torch::cat({grouped(withInput.narrow(2, 2, L - 1) + pos, td1W_, td1B_, td2W_, td2B_, L - 1), zeroTop}, 2);
        levels = (levels + up + down + consensus(levels)) / contributions;
        if (returnAll) states.push_back(levels);
    }
    return returnAll ? torch::stack(states) : levels;
}

OrderedMap<torch::Tensor> GlomImpl::stateDict() const {
    OrderedMap<torch::Tensor> s;
    s.set("init_levels", initLevels_);
    s.set("image_to_tokens.1.weight", tokenW_);
    s.set("image_to_tokens.1.bias", tokenB_);
    s.set("pos_emb.weight", posEmb_);
    s.set("bottom_up.net.1.weight", bu1W_);
    s.set("bottom_up.net.1.bias", bu1B_);
    s.set("bottom_up.net.3.weight", bu2W_);
    s.set("bottom_up.net.3.bias", bu2B_);
    s.set("top_down.net.1.weight", td1W_);
    s.set("top_down.net.1.bias", td1B_);
    s.set("top_down.net.3.weight", td2W_);
    s.set("top_down.net.3.bias", td2B_);
    if (nonLocalMask_.defined()) s.set("attention.non_local_mask", nonLocalMask_);
    return s;
}

void GlomImpl::loadStateDict(const OrderedMap<torch::Tensor>& state, const std::string& source) {
    const OrderedMap<torch::Tensor> mine = stateDict();
    std::string missing, unexpected;
    for (const auto& [k, t] : mine)
        if (!state.find(k)) missing += (missing.empty() ? "" : ", ") + k;
    for (const auto& [k, t] : state)
        if (!mine.find(k)) unexpected += (unexpected.empty() ? "" : ", ") + k;
    if (!missing.empty() || !unexpected.empty())
        throw std::invalid_argument(source + ": not the state_dict of this GLOM (" +
                                    (missing.empty() ? std::string() : "missing: " + missing) +
                                    (missing.empty() || unexpected.empty() ? "" : "; ") +
                                    (unexpected.empty() ? std::string() : "unexpected: " + unexpected) + ")");
    for (const auto& [k, t] : mine) {
        const torch::Tensor& from = *state.find(k);
        if (!from.sizes().equals(t.sizes()))
            throw std::invalid_argument(source + ": " + k + ": expected shape " + shapeOf(t) + " for dim " + std::to_string(opt_.dim) +
                                        ", levels " + std::to_string(opt_.levels) + ", image_size " + std::to_string(opt_.imageSize) +
                                        ", patch_size " + std::to_string(opt_.patchSize) + ", channels " + std::to_string(opt_.channels) +
                                        ", found " + shapeOf(from));
    }
    torch::NoGradGuard noGrad;
    for (const auto& [k, t] : mine) {
        auto dst = t;  // shares storage with the parameter
        const torch::Tensor& from = *state.find(k);
        if (k == "attention.non_local_mask") {
            if (!from.to(torch::kBool).equal(t))
                throw std::invalid_argument(source + ": attention.non_local_mask: the mask of another local radius (this GLOM: " +
                                            std::to_string(opt_.localRadius) + " patches)");
            continue;
        }
        dst.copy_(from.to(t.dtype()));
    }
}

GlomDenoiserImpl::GlomDenoiserImpl(const GlomOptions& o) {
    glom = register_module("glom", Glom(o));
    toPixels = register_module("to_pixels", torch::nn::Linear(o.dim, o.patchSize * o.patchSize * o.channels));
}

torch::Tensor GlomDenoiserImpl::unpatchify(const torch::Tensor& patches) const {
    const auto& o = glom->options();
    const int64_t B = patches.size(0), C = o.channels, p = o.patchSize, s = o.side();
    return patches.reshape({B, s, s, p, p, C}).permute({0, 5, 1, 3, 2, 4}).reshape({B, C, s * p, s * p});
}

torch::Tensor GlomDenoiserImpl::reconstruct(const torch::Tensor& noisy, int64_t readAt, int64_t computeIters) {
    const int64_t L = glom->options().levels;
    if (readAt < 0) readAt = L + 1;
    const int64_t iters = std::max(readAt, computeIters);
    torch::Tensor top;
    if (iters == readAt) {
        top = glom->forward(noisy, readAt).select(2, L - 1);  // (B, n, d)
    } else {
        top = glom->forward(noisy, iters, {}, true)[readAt].select(2, L - 1);
    }
    return unpatchify(toPixels->forward(top));
}

}  // namespace gw
