// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file hand_written_step.h
/// The interface of a flavour's hand-written training step: the forward passes of its
/// GWLosses::step and the backward pass autograd would run for its combined loss, written out for
/// speed (a small GW spends most of an autograd step in per-operation dispatch and allocation, not in
/// arithmetic). A flavour opts in through its registration (FlavourImpl::handWritten in
/// model/core/registry.h); GlobalWorkspace::trainingStep runs the step when it can take the batch and
/// autograd otherwise, logging the reason. The steps are built from the kernels of model/cpu_step/
/// and live beside their flavours (two_domains_cpu.cpp, fusion_cpu.cpp). Values and gradients equal
/// the autograd step's to float rounding (tests/tst_cpu_step).
#include <memory>
#include <string>
#include <vector>

#include "model/gw/flavours/losses.h"

namespace gw {

/// One object per GlobalWorkspace; it may cache the GW's layers on first use and keep buffers
/// between steps.
class HandWrittenStep {
public:
    virtual ~HandWrittenStep() = default;
    /// "" when run() can take models like this one; otherwise the reason, for the log. The part of
    /// unsupported() that does not depend on the batch (BLAS, loss terms, selection, domain modules,
    /// weights), for choosing a thread count before training.
    virtual std::string unsupportedModel(GWModule& gw, const GWLosses& losses, const Selection& selection) const = 0;
    /// "" when run() can take this batch (unsupportedModel() included); otherwise the reason.
    virtual std::string unsupported(GWModule& gw, const GWLosses& losses, const Selection& selection,
                                    const std::vector<GroupBatch>& groups) const = 0;
    /// The losses and metrics of the flavour's GWLosses::step (same names, same order, same skipped
    /// families), and the gradient of the combined loss added into every trainable parameter's .grad
    /// (allocated as zeros when undefined), as `loss.backward()` would. The returned loss carries no
    /// graph. Shapes as GroupBatch: latents (B, L_d) float32, class-index inputs (B,) int64.
    /// Precondition: unsupported(gw, losses, selection, groups) is empty.
    /// \throws std::invalid_argument as combineLoss when no coefficient selects a computed metric.
    virtual StepLosses run(GWModule& gw, GWLosses& losses, Selection& selection, const std::vector<GroupBatch>& groups) = 0;
};

/// The checks every hand-written step shares, each "" or the reason.
/// A term of losses.terms() not in `implemented`: "loss term 'x' is not written out by hand".
std::string unsupportedTerms(const GWLosses& losses, const std::vector<std::string>& implemented);
/// Domain modules that train, have their own loss (LatentLossKind::Custom), or GW weights that are not
/// contiguous float32 on the CPU.
std::string unsupportedDomains(GWModule& gw);
/// Groups that are empty or hold more than `maxDomains` domains, appear twice, or whose latents are
/// not (B, L_d) float32 on the CPU without gradient (class indices (B,) int64), of different or zero B.
std::string unsupportedGroups(GWModule& gw, const std::vector<GroupBatch>& groups, size_t maxDomains);

/// The hand-written steps of the built-in flavours (registered with them).
std::unique_ptr<HandWrittenStep> makeTwoDomainsCpuStep();
std::unique_ptr<HandWrittenStep> makeFusionCpuStep();

}  // namespace gw
