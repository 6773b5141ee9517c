// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file glom_step.h
/// GLOM's denoising training step (glom-pytorch's README: noisy image in, the top level of state
/// `readAt` to pixels by one linear layer, MSE to the clean image; docs/glom.md "Denoising") written
/// out by hand on the CPU, as the GW step and the conv VAE step are (model/cpu_step/): the forward pass
/// through the iterations, the loss and the backward pass with no autograd graph, every product an
/// sgemm (blas.h), the activations in an Arena kept from step to step. The network is
/// model/glom/glom.h's GlomImpl (glom-pytorch glom_pytorch.py: Glom, GroupedFeedForward,
/// ConsensusAttention): per iteration the bottom-up MLPs of the L levels and the top-down ones of the
/// L − 1 lower levels (d → 4d → d, exact GELU) are one pair of products per level over all B·n columns;
/// the consensus attention is two products per level and image (n × n scores), its softmax, masks
/// (self: the score −5·10⁻⁴; local radius: left out) and 1/4 (1/3 at the top) mean fused in one pass.
/// Values and gradients equal autograd's to float rounding (tests/tst_glom, handWrittenStep).
#include <cstdint>
#include <string>

#include "model/core/torch_fwd.h"
#include "model/cpu_step/arena.h"
#include "model/domains/domain_module.h"

namespace gw {
class GlomDenoiserImpl;
class GlomDomain;
}  // namespace gw

namespace gw::cpu {

/// The hand-written step of a GlomDenoiser.
class GlomStep {
public:
    /// "" when run() can take this denoiser and these images; otherwise the reason (for the log):
    /// switched off (GW_CPU_STEP=0), no BLAS, parameters not contiguous float32 on the CPU or some
    /// frozen, images not (B >= 1, C, S, S) float32 on the CPU, or readAt < 1.
    static std::string unsupported(GlomDenoiserImpl& m, const torch::Tensor& noisy, int64_t readAt);

    /// The loss mean((reconstruct(noisy, readAt, computeIters) − clean)²) as a float32 scalar (no
    /// graph); adds its gradient into every parameter's .grad (allocated as zeros when undefined).
    /// noisy, clean: (B, C, S, S) float32. readAt < 0: L + 1. computeIters > readAt computes the later
    /// iterations too, forward only (as glom-pytorch's README does with return_all; they cannot change
    /// the loss). Precondition: unsupported(m, noisy, readAt) is empty.
    torch::Tensor run(GlomDenoiserImpl& m, const torch::Tensor& noisy, const torch::Tensor& clean, int64_t readAt,
                      int64_t computeIters = -1);

private:
    Arena arena_;
};

/// A GLOM domain module's own training step without the update: GlomDomain::computeDomainLoss (noise
/// drawn from the default generator at the same point, the same loss and metric) and the gradient of
/// its loss added into the parameters' .grad, through GlomStep when it takes the module and batch, else
/// through autograd. Keep one object across steps.
class GlomDomainStep {
public:
    /// x: the prepared clean images (B, C, S, S).
    LossOutput run(GlomDomain& m, const torch::Tensor& x);
    /// "hand-written" or "autograd (reason)" for the last run().
    const std::string& lastPath() const { return path_; }

private:
    GlomStep step_;
    std::string path_;
};

}  // namespace gw::cpu
