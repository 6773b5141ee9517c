// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file optim.h
/// AdamW over one flat parameter buffer, and the OneCycle learning-rate schedule
/// (docs/gw-semantics.md 3.1: shimmer's AdamW + OneCycleLR, PyTorch defaults and shimmer-ssd's variant).
#include <vector>

#include "model/core/torch_fwd.h"

namespace gw {

/// OneCycle schedule (PyTorch OneCycleLR, two phases, cosine annealing, cycle_momentum on).
/// lr rises from maxLr/divFactor to maxLr over the first pctStart·T − 1 steps, then falls to
/// initial/finalDivFactor at step T − 1; beta1 moves the other way between maxMomentum and baseMomentum.
/// shimmer-ssd's variant is the same schedule with divFactor = maxLr/startLr and
/// finalDivFactor = maxLr/endLr (so the last lr is startLr·endLr/maxLr, as SSD gives).
struct OneCycleSchedule {
    double maxLr = 1e-3;
    int64_t totalSteps = 1;  ///< T, derived from the run length (shimmer's default 1 crashes)
    double pctStart = 0.3;
    double divFactor = 25.0;
    double finalDivFactor = 1e4;
    bool cycleMomentum = true;
    double baseMomentum = 0.85;
    double maxMomentum = 0.95;

    /// \throws std::invalid_argument when totalSteps < 1, pctStart outside (0, 1) or a factor <= 0.
    void validate() const;
    /// lr at step (0-based, 0 <= step < totalSteps).
    /// \throws std::out_of_range for a step past the schedule, as PyTorch does.
    double lr(int64_t step) const;
    /// AdamW beta1 at step.
    double beta1(int64_t step) const;
};

/// AdamW (decoupled weight decay; PyTorch's single-tensor algorithm, step for step; on the CPU one fused
/// pass, equal to PyTorch's to float rounding) over the given
/// parameters, which are moved into one contiguous buffer so that the update is a handful of
/// element-wise kernels, whatever the number of tensors. Their gradients become views of one flat
/// gradient buffer, which autograd accumulates into in place; zeroGrad() clears it with one kernel.
/// Parameters must not be moved to another device after construction.
class FlatAdamW {
public:
    /// \throws std::invalid_argument for no parameters, mixed devices or dtypes.
    FlatAdamW(std::vector<torch::Tensor> params, double lr, double beta1 = 0.9, double beta2 = 0.999,
              double eps = 1e-8, double weightDecay = 0.0);

    void zeroGrad();
    /// One update with the given lr and beta1 (from the schedule).
    void step(double lr, double beta1);
    void step() { step(lr_, beta1_); }

    int64_t stepCount() const { return step_; }
    int64_t numel() const { return flat_.numel(); }
    const torch::Tensor& flatParams() const { return flat_; }
    const torch::Tensor& flatGrads() const { return grad_; }

    /// Optimiser state for checkpoints: exp_avg, exp_avg_sq (both (numel,)), step.
    torch::Tensor expAvg() const { return m_; }
    torch::Tensor expAvgSq() const { return v_; }
    /// \throws std::invalid_argument when the sizes differ from this optimiser's.
    void loadState(const torch::Tensor& expAvg, const torch::Tensor& expAvgSq, int64_t step);

private:
    std::vector<torch::Tensor> params_;
    torch::Tensor flat_, grad_, m_, v_, scratch_;
    double lr_, beta1_, beta2_, eps_, wd_;
    int64_t step_ = 0;
};

}  // namespace gw
