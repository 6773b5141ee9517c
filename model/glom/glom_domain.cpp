// SPDX-License-Identifier: GPL-3.0-or-later
// GLOM as a domain module (kind `glom`) and the islands viewer's numbers (glom.h GlomView).
#include <algorithm>
#include <cmath>

#include "model/glom/glom.h"
#include "model/core/registry.h"

namespace gw {

GlomDomain::GlomDomain(const GlomOptions& options, int64_t readAt, double noiseStd)
    : DomainModule("glom", options.dim), readAt_(readAt), noiseStd_(noiseStd) {
    options.check();
    if (readAt < 1) throw std::invalid_argument("read_at: expected a state >= 1 (0 chooses levels + 1), found " + std::to_string(readAt));
    if (!(noiseStd >= 0)) throw std::invalid_argument("noise_std: expected a number >= 0, found " + std::to_string(noiseStd));
    denoiser = register_module("denoiser", GlomDenoiser(options));
}

torch::Tensor GlomDomain::prepare(const torch::Tensor& raw) const {
    const auto& o = denoiser->glom->options();
    return prepareImages(raw, o.channels, o.imageSize, "glom");
}

torch::Tensor GlomDomain::encode(const torch::Tensor& x) {
    const int64_t L = denoiser->glom->options().levels;
    // The top level of state read_at, averaged over the columns: (B, n, L, d) -> (B, d).
    return denoiser->glom->forward(x, readAt_).select(2, L - 1).mean(1);
}

std::optional<LossOutput> GlomDomain::computeDomainLoss(const torch::Tensor& x) {
    torch::Tensor noisy = noiseStd_ > 0 ? x + torch::randn_like(x) * noiseStd_ : x;
    torch::Tensor loss = torch::mse_loss(denoiser->reconstruct(noisy, readAt_), x);
    LossOutput out;
    out.loss = loss;
    out.metrics.set("denoise_mse", loss.detach());
    return out;
}

namespace {

/// Cosine similarities of every pair of columns: levels (S, n, L, d) -> (S, L, n, n).
torch::Tensor columnSimilarity(const torch::Tensor& states) {
    torch::Tensor u = torch::nn::functional::normalize(states, torch::nn::functional::NormalizeFuncOptions().dim(-1));
    u = u.permute({0, 2, 1, 3});  // (S, L, n, d)
    return torch::matmul(u, u.transpose(-1, -2));
}

std::vector<float> toVector(const torch::Tensor& t) {
    torch::Tensor c = t.to(torch::kFloat32).contiguous().cpu();
    return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

GlomView glomView(GlomDomain& domain, const torch::Tensor& image, int64_t iterations, uint64_t seed) {
    torch::NoGradGuard noGrad;
    auto& glom = *domain.denoiser->glom;
    const GlomOptions& o = glom.options();
    if (iterations < 0) iterations = 2 * o.levels;
    iterations = std::max(iterations, domain.readAt());
    const torch::Tensor x = image.dim() == 3 ? image.unsqueeze(0) : image;  // (1, C, S, S)
    // The noise comes from a generator of its own, so the view is the same for the same seed and the
    // default generator (a run's RNG state) is left as it was.
    auto gen = at::detail::createCPUGenerator(seed);
    const torch::Tensor noise = at::normal(0.0, 1.0, x.sizes(), gen).to(x.device());
    const torch::Tensor noisy = domain.noiseStd() > 0 ? x + noise * domain.noiseStd() : x;
    const bool wasTraining = domain.is_training();
    domain.eval();
    const torch::Tensor states = glom.forward(noisy, iterations, {}, true).select(1, 0);  // (S, n, L, d)
    const torch::Tensor top = states[domain.readAt()].select(1, o.levels - 1);       // (n, d)
    const torch::Tensor rec = domain.denoiser->unpatchify(domain.denoiser->toPixels->forward(top.unsqueeze(0)));
    domain.train(wasTraining);

    GlomView v;
    v.channels = o.channels;
    v.imageSize = o.imageSize;
    v.side = o.side();
    v.levels = o.levels;
    v.dim = o.dim;
    v.iterations = iterations;
    v.readAt = domain.readAt();
    v.noiseStd = domain.noiseStd();
    v.input = toVector(x[0]);
    v.noisy = toVector(noisy[0]);
    v.reconstruction = toVector(rec[0]);
    const torch::Tensor sim = columnSimilarity(states);  // (S, L, n, n)
    v.similarity = toVector(sim);
    // Neighbour agreement: the mean similarity to the 4-neighbours that exist on the grid.
    const int64_t s = o.side(), n = o.columns();
    torch::Tensor adj = torch::zeros({n, n});
    for (int64_t r = 0; r < s; ++r)
        for (int64_t c = 0; c < s; ++c) {
            const int64_t i = r * s + c;
            if (r > 0) adj[i][i - s] = 1;
            if (r + 1 < s) adj[i][i + s] = 1;
            if (c > 0) adj[i][i - 1] = 1;
            if (c + 1 < s) adj[i][i + 1] = 1;
        }
    adj = adj.to(sim.device());
    const torch::Tensor agreement = (sim * adj).sum(-1) / adj.sum(-1).clamp_min(1);  // (S, L, n)
    v.agreement = toVector(agreement);
    return v;
}

void registerGlomModule(DomainModuleRegistry& r) {
    using T = ParamInfo::Type;
    r.add({"glom",
           "GLOM (Hinton 2021; glom-pytorch's Glom) on images (B, S, S[, C]), trained to denoise; its latent is the top "
           "level averaged over the columns",
           {{"dim", T::Int, "64", 1, false, "", "size of every level embedding (the latent size)"},
            {"levels", T::Int, "4", 2, false, "", "levels per column"},
            {"image_size", T::Int, "28", 1, false, "pixels", "side of the square images"},
            {"patch_size", T::Int, "4", 1, false, "pixels", "side of a patch (a column); divides image_size"},
            {"channels", T::Int, "1", 1, false, "", "1 or 3"},
            {"read_at", T::Int, "0", 0, false, "iterations", "state whose top level is read (0: levels + 1)"},
            {"noise_std", T::Real, "1", 0, false, "", "standard deviation of the denoising noise (pixels in [0, 1])"},
            {"consensus_self", T::Bool, "false", 0, false, "", "a column attends to itself in the consensus"},
            {"local_radius", T::Real, "0", 0, false, "patches", "consensus only within this distance (0: every column)"}}},
          [](const DomainModuleSpec&, const Params& p) -> std::shared_ptr<DomainModule> {
              GlomOptions o;
              o.dim = p.integer("dim");
              o.levels = p.integer("levels");
              o.imageSize = p.integer("image_size");
              o.patchSize = p.integer("patch_size");
              o.channels = p.integer("channels");
              o.consensusSelf = p.flag("consensus_self");
              o.localRadius = p.real("local_radius");
              const int64_t readAt = p.integer("read_at") > 0 ? p.integer("read_at") : o.levels + 1;
              return std::make_shared<GlomDomain>(o, readAt, p.real("noise_std"));
          });
}

}  // namespace gw
