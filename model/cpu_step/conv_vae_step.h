// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file conv_vae_step.h
/// The pre-training step of the convolutional VAE domain module (conv_vae: docs/gw-semantics.md 6.3;
/// shimmer-ssd's VisualDomainModule, shimmer_ssd/modules/domains/visual.py, around the VAE of
/// shimmer_ssd/modules/vae.py with its RAEEncoder / RAEDecoder) written out by hand on the CPU, as
/// the GW's step is (model/cpu_step/):
/// forward, loss, backward and the AdamW update with no autograd graph, its buffers kept from step to
/// step (an Arena; only the (B, L) noise and the returned scalars are new tensors). Every strided
/// convolution is one sgemm per batch chunk over an im2col buffer; the stride-2 transposed convolutions
/// run forward in sub-pixel form (each output parity a 2 × 2 convolution of the input: Shi et al. 2016,
/// "Is the deconvolution layer the same as a convolutional layer?") through a direct kernel, backward
/// through direct kernels too where their input has a multiple of 32 channels (the input gradient a
/// stride-2 convolution of the output gradient, the weight gradient accumulated per sample), else
/// through the im2col of their output gradient; the last convolution, to C ≤ 3 channels, is a direct
/// loop (AVX2 or AVX-512 where the CPU has them). With several intra-op threads the batch chunks are
/// spread over them. Activations are kept channel-major, (C, B, H, W),
/// so that a layer's whole batch is one matrix and a batch-norm channel one contiguous row; batch
/// norm (training mode: batch statistics, biased variance to normalise, running statistics updated
/// with momentum 0.1 and the unbiased variance, eps 1e-5) and ReLU are fused passes over those rows;
/// the sigmoid and the loss are closed form. Values and gradients equal autograd's to float
/// rounding (tests/tst_cpu_step). The step draws its reparameterisation noise from LibTorch's
/// default generator at the point where the autograd step draws it, so a seeded run draws the same.
#include <optional>
#include <string>

#include "model/core/optim.h"
#include "model/core/torch_fwd.h"
#include "model/cpu_step/arena.h"
#include "model/domains/domain_module.h"

namespace gw {

/// What a conv_vae domain module is made of (its registration's parameters).
struct ConvVaeShape {
    int64_t channels = 0;   ///< C, 1 or 3
    int64_t imageSize = 0;  ///< S, 28 (zero-padded to 32 on the way in, cropped on the way out) or 32
    int64_t aeDim = 0;      ///< A, the encoder's last channel count (a multiple of 8)
    int64_t latent = 0;     ///< L
    double beta = 0;        ///< weight of the KL term
};
/// Whether `m` is a conv_vae module, and then its parameters (defined beside the module, in
/// model/domains/domain_module.cpp).
bool convVaeShapeOf(DomainModule& m, int64_t& channels, int64_t& imageSize, int64_t& aeDim, double& beta);
/// The shape of `m` when it is a conv_vae module, else nothing.
std::optional<ConvVaeShape> convVaeShape(DomainModule& m);

namespace cpu {

/// The conv VAE's training step. Layers, with B the batch and A the ae_dim:
/// encoder 4 × [Conv k4 s2 p1 (no bias), BatchNorm2d, ReLU], (C, 32, 32) → (A, 2, 2), flattened per
/// sample as (A·4) → Linear mean and Linear log-variance (L each); z = mean + exp(logvar / 2)·ε;
/// decoder ConvT(L → A, k8) to 8 × 8, BN, ReLU, ConvT(A → A/2, k4 s2 p1) to 16², BN, ReLU,
/// ConvT(A/2 → A/4, k4 s2 p1) to 32², BN, ReLU, zero pad right and bottom by 1, Conv(A/4 → C, k4 p1)
/// to 32², sigmoid. Loss (ConvVaeDomain::computeDomainLoss): [Σ ½(x̂ − x)² + ½ log 2π over every
/// pixel + β · (−½ Σ (1 + logvar − mean² − e^logvar))] / B; metrics reconstruction, kl, mse.
class ConvVaeStep {
public:
    /// "" when run() can take this module and batch; otherwise the reason (for the log): not a
    /// conv_vae module, switched off (GW_CPU_STEP=0), no BLAS, not on the CPU or not float32, the
    /// module in eval mode or with frozen parameters, or x not (B ≥ 2, C, S, S) float32.
    static std::string unsupported(DomainModule& m, const torch::Tensor& x);

    /// One forward and backward pass on images x (B, C, S, S) float32 in [0, 1] (what prepare()
    /// gives): returns the loss and metrics of computeDomainLoss (plain tensors, no graph), adds the
    /// gradient of the loss into every parameter's .grad (allocated as zeros when undefined), and
    /// updates the batch norms' running statistics and batch counters as a training-mode forward does.
    /// Precondition: unsupported(m, x) is empty.
    LossOutput run(DomainModule& m, const torch::Tensor& x);

private:
    Arena arena_;
};

/// One pre-training step of any domain module, as Engine::pretrainModule runs it: its loss, the
/// gradient (after opt.zeroGrad()) and opt.step(lr, beta1); through ConvVaeStep when it takes the
/// module and batch, else through computeDomainLoss and autograd. Keep one object across steps.
class PretrainStep {
public:
    /// The module's loss output, or nothing (and no update) when it has no loss of its own.
    std::optional<LossOutput> run(DomainModule& m, const torch::Tensor& x, FlatAdamW& opt, double lr, double beta1);
    /// "hand-written" or "autograd (reason)" for the last run().
    const std::string& lastPath() const { return path_; }

private:
    ConvVaeStep conv_;
    std::string path_;
};

}  // namespace cpu
}  // namespace gw
