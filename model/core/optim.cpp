// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/core/optim.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace gw {

void OneCycleSchedule::validate() const {
    if (totalSteps < 1) throw std::invalid_argument("one_cycle: total steps must be >= 1, found " + std::to_string(totalSteps));
    if (!(pctStart > 0 && pctStart < 1))
        throw std::invalid_argument("one_cycle: pct_start must be in (0, 1), found " + std::to_string(pctStart));
    if (!(maxLr > 0) || !(divFactor > 0) || !(finalDivFactor > 0))
        throw std::invalid_argument("one_cycle: max_lr, div_factor and final_div_factor must be > 0");
}

namespace {
double annealCos(double start, double end, double pct) { return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1); }

/// Shared two-phase walk: value at `step` going a -> b over phase 1 and b -> c over phase 2.
double twoPhase(const OneCycleSchedule& s, int64_t step, double a, double b, double c) {
    if (step < 0 || step >= s.totalSteps)
        throw std::out_of_range("one_cycle: step " + std::to_string(step) + " is past the schedule's " +
                                std::to_string(s.totalSteps) + " steps");
    const double end1 = s.pctStart * static_cast<double>(s.totalSteps) - 1;
    const double end2 = static_cast<double>(s.totalSteps) - 1;
    const double t = static_cast<double>(step);
    if (t <= end1 || end2 <= end1) return annealCos(a, b, end1 > 0 ? t / end1 : 1.0);
    return annealCos(b, c, (t - end1) / (end2 - end1));
}
}  // namespace

double OneCycleSchedule::lr(int64_t step) const {
    const double initial = maxLr / divFactor;
    return twoPhase(*this, step, initial, maxLr, initial / finalDivFactor);
}

double OneCycleSchedule::beta1(int64_t step) const {
    if (!cycleMomentum) return maxMomentum;
    return twoPhase(*this, step, maxMomentum, baseMomentum, maxMomentum);
}

FlatAdamW::FlatAdamW(std::vector<torch::Tensor> params, double lr, double beta1, double beta2, double eps,
                     double weightDecay)
    : params_(std::move(params)), lr_(lr), beta1_(beta1), beta2_(beta2), eps_(eps), wd_(weightDecay) {
    if (params_.empty()) throw std::invalid_argument("AdamW: no trainable parameter");
    int64_t n = 0;
    for (const auto& p : params_) {
        if (p.device() != params_[0].device() || p.scalar_type() != params_[0].scalar_type())
            throw std::invalid_argument("AdamW: parameters must share one device and dtype");
        n += p.numel();
    }
    torch::NoGradGuard noGrad;
    auto opts = params_[0].options().requires_grad(false);
    flat_ = torch::empty({n}, opts);
    grad_ = torch::zeros({n}, opts);
    m_ = torch::zeros({n}, opts);
    v_ = torch::zeros({n}, opts);
    scratch_ = torch::empty({n}, opts);
    int64_t off = 0;
    for (auto& p : params_) {
        const int64_t k = p.numel();
        auto view = flat_.narrow(0, off, k).view(p.sizes());
        view.copy_(p);
        p.set_data(view);
        p.mutable_grad() = grad_.narrow(0, off, k).view(p.sizes());
        off += k;
    }
}

void FlatAdamW::zeroGrad() { grad_.zero_(); }

void FlatAdamW::step(double lr, double beta1) {
    torch::NoGradGuard noGrad;
    ++step_;
    if (flat_.is_cpu() && flat_.scalar_type() == torch::kFloat32) {
        // One pass over the four buffers instead of eight element-wise kernels: the update is
        // memory-bound, and the wide benchmark's 11.5 M parameters make it a visible part of a step.
        const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2_);
        const float decay = static_cast<float>(1 - lr * wd_);
        const float stepSize = static_cast<float>(lr / (1 - std::pow(beta1, static_cast<double>(step_))));
        const float bc2Sqrt = static_cast<float>(std::sqrt(1 - std::pow(beta2_, static_cast<double>(step_))));
        const float eps = static_cast<float>(eps_);
        float* p = flat_.data_ptr<float>();
        float* m = m_.data_ptr<float>();
        float* v = v_.data_ptr<float>();
        const float* g = grad_.data_ptr<float>();
        at::parallel_for(0, flat_.numel(), 1 << 16, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) {
                const float gi = g[i];
                const float mi = b1 * m[i] + (1 - b1) * gi;
                const float vi = b2 * v[i] + (1 - b2) * gi * gi;
                m[i] = mi;
                v[i] = vi;
                p[i] = p[i] * decay - stepSize * mi / (std::sqrt(vi) / bc2Sqrt + eps);
            }
        });
        return;
    }
    if (wd_ != 0) flat_.mul_(1 - lr * wd_);
    m_.mul_(beta1).add_(grad_, 1 - beta1);
    v_.mul_(beta2_).addcmul_(grad_, grad_, 1 - beta2_);
    const double bc1 = 1 - std::pow(beta1, static_cast<double>(step_));
    const double bc2 = 1 - std::pow(beta2_, static_cast<double>(step_));
    torch::sqrt_out(scratch_, v_);
    scratch_.div_(std::sqrt(bc2)).add_(eps_);
    flat_.addcdiv_(m_, scratch_, -lr / bc1);
}

void FlatAdamW::loadState(const torch::Tensor& expAvg, const torch::Tensor& expAvgSq, int64_t step) {
    if (expAvg.numel() != m_.numel() || expAvgSq.numel() != v_.numel())
        throw std::invalid_argument("AdamW state: expected " + std::to_string(m_.numel()) + " values, found " +
                                    std::to_string(expAvg.numel()) + " and " + std::to_string(expAvgSq.numel()));
    torch::NoGradGuard noGrad;
    m_.copy_(expAvg.reshape({-1}));
    v_.copy_(expAvgSq.reshape({-1}));
    step_ = step;
}

}  // namespace gw
