// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file cpu_step.h
/// The GW training step written out by hand for float32 on the CPU: the forward passes of
/// GWLosses2Domains::step (docs/gw-semantics.md 2.1, 2.2, 2.4, 2.5; shimmer GWLosses2Domains.step) and the backward pass that
/// autograd would run for their combined loss, on buffers reused from step to step, with every matrix
/// product a direct BLAS sgemm call. It exists for speed: a small GW (the tutorial benchmark: batch
/// 32, hidden 64) spends most of an autograd step in per-operation dispatch and allocation, not in
/// arithmetic. Values and gradients equal the autograd step's to float rounding (tests/tst_cpu_step).
#include <memory>
#include <string>
#include <vector>

#include "model/gw/flavours/losses.h"

namespace gw {

/// One hand-written step object per GlobalWorkspace; it caches the layers of the GW encoders and decoders on
/// first use and keeps its buffers between steps (no allocation after the first step).
class CpuGWStep {
public:
    CpuGWStep();
    ~CpuGWStep();
    CpuGWStep(const CpuGWStep&) = delete;
    CpuGWStep& operator=(const CpuGWStep&) = delete;

    /// "" when run() can take this batch; otherwise the reason, for the log. Needs: a BLAS `sgemm_` in
    /// the process (LibTorch's own, found at run time), GW weights and latents in float32 on the CPU,
    /// every domain module frozen with an Mse or CrossEntropy latentLossKind, groups of one or two
    /// domains with distinct names (any number of domains for the fusion flavour), a flavour among
    /// knownFlavours() whose every loss term (GWLosses::terms) is among knownTerms(), and a selection
    /// whose scores need no gradient (single_domain, fixed_shared, random; for two_domains also
    /// constant ones for a single source: single_domain or fixed_shared). A new flavour or loss term
    /// therefore runs on autograd, with this reason in the log, until it is written out here.
    static std::string unsupported(GWModule& gw, const GWLosses& losses, const Selection& selection,
                                   const std::vector<GroupBatch>& groups);
    /// The part of unsupported() that does not depend on the batch (BLAS, flavour, terms, selection,
    /// domain modules, weights), for choosing a thread count before training.
    static std::string unsupportedModel(GWModule& gw, const GWLosses& losses, const Selection& selection);
    /// The flavours and the loss terms this step implements: an explicit list, not a guess.
    static const std::vector<std::string>& knownFlavours();
    static const std::vector<std::string>& knownTerms();

    /// The losses and metrics of GWLosses2Domains::step (same names, same order, same skipped families), and
    /// the gradient of the combined loss added into every trainable parameter's .grad (allocated as
    /// zeros when undefined), as `loss.backward()` would. The returned loss carries no graph.
    /// Shapes as GroupBatch: latents (B, L_d) float32, class-index inputs (B,) int64.
    /// Precondition: unsupported(gw, losses, selection, groups) is empty (GlobalWorkspace::trainingStep checks).
    /// \throws std::invalid_argument as combineLoss when no coefficient selects a computed metric.
    /// For the fusion flavour, the losses and metrics of GWLossesFusion::step, with the selection's
    /// scores drawn through `selection` in the autograd step's order (so both consume torch's
    /// generator alike) and held constant.
    StepLosses run(GWModule& gw, GWLosses& losses, Selection& selection, const std::vector<GroupBatch>& groups);

private:
    StepLosses runFusion(GWModule& gw, GWLosses& losses, Selection& selection, const std::vector<GroupBatch>& groups);
    struct Impl;
    struct FusionImpl;
    std::unique_ptr<Impl> impl_;
    std::unique_ptr<FusionImpl> fusion_;
};

}  // namespace gw
