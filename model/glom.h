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

#include "model/torch_fwd.h"

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

}  // namespace gw
