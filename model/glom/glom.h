// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file glom.h
/// GLOM (Hinton 2021, "How to represent part-whole hierarchies in a neural network", arXiv 2102.12627)
/// as lucidrains/glom-pytorch implements it (glom_pytorch/glom_pytorch.py, class Glom): every image
/// patch is a column of `levels` embeddings of size `dim`; each iteration mixes, per level, the
/// previous value, a bottom-up network of the level below (the patch's token for the lowest level), a
/// top-down network of the level above (plus the column's position embedding; none for the top level)
/// and consensus attention over the columns; the mean weighs them 1/4 each (1/3 at the top level).
/// The parameters carry glom-pytorch's state_dict names and shapes, so weights move both ways.
/// The semantics, restated: docs/glom.md.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/domains/domain_module.h"
#include "model/core/torch_fwd.h"

namespace gw {

/// The sizes of a GLOM (glom-pytorch's constructor arguments, plus the channel count it fixes at 3).
struct GlomOptions {
    int64_t dim = 512;        ///< d, the size of every level embedding
    int64_t levels = 6;       ///< L >= 2
    int64_t imageSize = 224;  ///< H = W, in pixels; a multiple of patchSize
    int64_t patchSize = 14;   ///< p, in pixels
    int64_t channels = 3;     ///< C, 1 or 3 (glom-pytorch: always 3)
    bool consensusSelf = false;  ///< let a column attend to itself in the consensus (glom-pytorch consensus_self)
    double localRadius = 0;      ///< > 0: consensus only with columns within this distance on the patch grid (patches)

    int64_t side() const { return imageSize / patchSize; }  ///< patches per side
    int64_t columns() const { return side() * side(); }      ///< n
    /// \throws std::invalid_argument naming the option (as its experiment key), what was expected and
    /// what was found: image_size not a multiple of patch_size, levels < 2, channels not 1 or 3, ...
    void check() const;
};

/// The network. forward() follows Glom.forward: img (B, C, H, W) float32 -> levels (B, n, L, d), or with
/// `returnAll` every state (iters + 1, B, n, L, d), the initial one first.
class GlomImpl : public torch::nn::Module {
public:
    explicit GlomImpl(const GlomOptions& options);
    const GlomOptions& options() const { return opt_; }

    /// \param img (B, C, H, W); \param iters iterations (< 0: 2·L, glom-pytorch's default);
    /// \param levels a state to continue from (B, n, L, d), undefined: the learned initial levels.
    /// \throws std::invalid_argument naming the expected and found shapes.
    torch::Tensor forward(const torch::Tensor& img, int64_t iters = -1, const torch::Tensor& levels = {}, bool returnAll = false);
    /// The patch tokens (B, n, d) of an image (B, C, H, W): patches in row-major order, each flattened
    /// as (p1, p2, c), then the linear map.
    torch::Tensor tokens(const torch::Tensor& img) const;
    /// The consensus term of one iteration for levels (B, n, L, d).
    torch::Tensor consensus(const torch::Tensor& levels) const;

    /// The parameters under glom-pytorch's state_dict names (image_to_tokens.1.weight, pos_emb.weight,
    /// init_levels, bottom_up.net.1.weight, ..., attention.non_local_mask when localRadius > 0).
    OrderedMap<torch::Tensor> stateDict() const;
    /// Copies a glom-pytorch state_dict into the parameters. \throws std::invalid_argument naming
    /// `source`, the key, and the expected and found shapes (a state dict of another configuration),
    /// or every missing and unexpected key.
    void loadStateDict(const OrderedMap<torch::Tensor>& state, const std::string& source);

private:
    torch::Tensor grouped(const torch::Tensor& x, const torch::Tensor& w1, const torch::Tensor& b1, const torch::Tensor& w2,
                          const torch::Tensor& b2, int64_t groups) const;
    GlomOptions opt_;
    torch::Tensor tokenW_, tokenB_, posEmb_, initLevels_;
    torch::Tensor bu1W_, bu1B_, bu2W_, bu2B_, td1W_, td1B_, td2W_, td2B_;
    torch::Tensor nonLocalMask_;  // (1, n, n) bool, true where consensus is not allowed
};
TORCH_MODULE(Glom);

/// Denoising, as glom-pytorch's README trains GLOM: the noisy image in, the top level of the state after
/// `readAt` iterations (README: state 7 of 12 for 6 levels, i.e. L + 1) mapped by one linear layer to
/// each patch's pixels, the patches put back in place, the mean squared error to the clean image.
class GlomDenoiserImpl : public torch::nn::Module {
public:
    explicit GlomDenoiserImpl(const GlomOptions& options);
    Glom glom{nullptr};
    torch::nn::Linear toPixels{nullptr};  ///< d -> p·p·C (glom-pytorch README: patches_to_images)

    /// The reconstruction (B, C, S, S) from the top level after `readAt` iterations (< 0: L + 1). Only
    /// the iterations up to `readAt` are computed, unless `computeIters` (>= readAt) asks for more, as
    /// the README's forward(return_all) does: the later ones do not change the result.
    torch::Tensor reconstruct(const torch::Tensor& noisy, int64_t readAt = -1, int64_t computeIters = -1);
    /// The patches (B, n, p·p·C) back into images (B, C, S, S) (the inverse of GlomImpl::tokens' cut).
    torch::Tensor unpatchify(const torch::Tensor& patches) const;
};
TORCH_MODULE(GlomDenoiser);

/// GLOM as a domain module (kind `glom`, registered in glom_domain.cpp): images (B, C, S, S) in, a
/// GlomDenoiser inside. Its own objective (pre-training, and the whole of a `model: glom` run) is
/// denoising: the image plus N(0, noise_std²) noise, reconstructed from the top level of state
/// `read_at`, MSE to the clean image (metric `denoise_mse`). Its latent, for a GW, is the top level of
/// state `read_at` of the clean image averaged over the columns, (B, d): a whole-image embedding.
/// The latent has no pixel decoder: the explorer shows it as a vector.
class GlomDomain : public DomainModule {
public:
    /// \param readAt the state read (>= 1; glom-pytorch's README: L + 1); \param noiseStd in the units of
    /// the prepared image (pixels in [0, 1]). \throws std::invalid_argument as GlomOptions::check.
    GlomDomain(const GlomOptions& options, int64_t readAt, double noiseStd);
    GlomDenoiser denoiser{nullptr};
    int64_t readAt() const { return readAt_; }
    double noiseStd() const { return noiseStd_; }

    /// (B, S, S), (B, S, S, C) or (B, C, S, S), uint8 [0, 255] or float [0, 1] -> float (B, C, S, S).
    torch::Tensor prepare(const torch::Tensor& raw) const override;
    torch::Tensor encode(const torch::Tensor& x) override;
    std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) override;
    std::string rendersAs() const override { return "identity"; }
    bool needsPretraining() const override { return true; }

private:
    int64_t readAt_;
    double noiseStd_;
};

/// What the islands viewer shows of one image (models/glom_model.h exploreGlom): plain numbers, no tensors, so that
/// any front end can draw it. Columns are numbered row by row over the side × side patch grid.
struct GlomView {
    int64_t channels = 1, imageSize = 0, side = 0, levels = 0, dim = 0;
    int64_t iterations = 0;  ///< states 0 (the initial levels) to `iterations`
    int64_t readAt = 0;      ///< the state the reconstruction is read from
    int64_t index = 0;       ///< the sample, in `split`
    std::string split;
    double noiseStd = 0;
    std::vector<float> input, noisy, reconstruction;  ///< (C, S, S) each, pixels in [0, 1] (noisy unclipped)
    /// Cosine similarity of every pair of columns, per state and level: (iterations + 1, L, n, n).
    std::vector<float> similarity;
    /// Neighbour agreement per state, level and column: the mean cosine similarity of the column to its
    /// 4-neighbours on the patch grid, (iterations + 1, L, n).
    std::vector<float> agreement;
    int64_t columns() const { return side * side; }
    float similarityAt(int64_t state, int64_t level, int64_t a, int64_t b) const {
        const int64_t n = columns();
        return similarity[static_cast<size_t>(((state * levels + level) * n + a) * n + b)];
    }
    float agreementAt(int64_t state, int64_t level, int64_t column) const {
        return agreement[static_cast<size_t>((state * levels + level) * columns() + column)];
    }
};
/// The view of `image` (C, S, S) prepared, through `domain`'s GLOM: noise drawn with `seed` (the RNG is
/// left as it was), every state up to `iterations` (< 0: 2·L) with return_all, the reconstruction
/// from state readAt(). No gradients.
GlomView glomView(GlomDomain& domain, const torch::Tensor& image, int64_t iterations, uint64_t seed);

}  // namespace gw
