// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_step/latent_losses.h"

#include <algorithm>
#include <cmath>

#include "model/cpu_step/blas.h"
#include "model/cpu_step/reduce.h"

namespace gw::cpu {

namespace {

/// Up to this logit scale (exp(logit_scale), clamped at 100) the contrastive's softmaxes share the fixed
/// shift −scale: the smallest value then is exp(−2 · 40) = 1.8e-35, still a normal float.
constexpr float kFixedShiftMaxScale = 40.f;
/// Rows of the B × B cosine and gradient blocks made at a time (32 × 2056 floats: 263 KB, in the L2 cache).
constexpr int64_t kRows = 32;

/// Rows of x (n × W) divided by max(‖row‖, 1e-12) into xn; the norms into norms.
void normalizeRows(const float* x, int64_t n, int64_t W, float* xn, std::vector<float>& norms) {
    norms.resize(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) {
        double s = 0;
        for (int64_t j = 0; j < W; ++j) s += static_cast<double>(x[r * W + j]) * x[r * W + j];
        const float norm = static_cast<float>(std::sqrt(s));
        norms[r] = norm;
        const float d = std::max(norm, 1e-12f);
        for (int64_t j = 0; j < W; ++j) xn[r * W + j] = x[r * W + j] / d;
    }
}

/// Vectorised exp in place (ATen's kernel; a plain loop of std::exp is ten times slower on B² values).
void expInPlace(float* p, int64_t count) {
    torch::NoGradGuard noGrad;
    torch::from_blob(p, {count}, torch::TensorOptions().dtype(torch::kFloat32)).exp_();
}

/// Column sums of a row p and of p · c: colSum += p, colPCos += p ∘ c (distinct arrays, so it vectorises).
void accumulateColumns(const float* __restrict p, const float* __restrict c, int64_t n, float* __restrict colSum,
                       float* __restrict colPCos) {
    for (int64_t j = 0; j < n; ++j) {
        colSum[j] += p[j];
        colPCos[j] += p[j] * c[j];
    }
}

/// Backward of rows divided by their norms: dx = (dxn − xn (xn · dxn)) / ‖x‖ (dxn / eps below eps).
void normalizeBackward(const float* xn, const std::vector<float>& norms, const float* dxn, int64_t n, int64_t W, float* dx) {
    for (int64_t r = 0; r < n; ++r) {
        const float* a = xn + r * W;
        const float* g = dxn + r * W;
        float* out = dx + r * W;
        if (norms[r] > 1e-12f) {
            double dot = 0;
            for (int64_t j = 0; j < W; ++j) dot += static_cast<double>(a[j]) * g[j];
            for (int64_t j = 0; j < W; ++j) out[j] += (g[j] - a[j] * static_cast<float>(dot)) / norms[r];
        } else
            for (int64_t j = 0; j < W; ++j) out[j] += g[j] / 1e-12f;
    }
}

}  // namespace

void mseTerm(Term& t, bool wantGrad) {
    const int64_t count = t.n * t.L;
    if (!wantGrad) {
        double s = 0;
        for (int64_t k = 0; k < count; ++k) {
            const double e = static_cast<double>(t.pred[k]) - t.target[k];
            s += e * e;
        }
        t.value = s / static_cast<double>(count);
        return;
    }
    const float c = static_cast<float>(2.0 * t.weight / static_cast<double>(count));
    for (int64_t k = 0; k < count; ++k) t.grad[k] = c * (t.pred[k] - t.target[k]);
}

void crossEntropyTerm(Term& t, bool wantGrad) {
    double loss = 0;
    int64_t right = 0;
    const float c = static_cast<float>(t.weight / static_cast<double>(t.n));
    for (int64_t r = 0; r < t.n; ++r) {
        const float* p = t.pred + r * t.L;
        int64_t arg = 0;
        for (int64_t j = 1; j < t.L; ++j)
            if (p[j] > p[arg]) arg = j;
        double sum = 0;
        for (int64_t j = 0; j < t.L; ++j) sum += std::exp(static_cast<double>(p[j]) - p[arg]);
        const int64_t cls = t.classes[r];
        if (!wantGrad) {
            loss += std::log(sum) + p[arg] - p[cls];
            right += arg == cls;
            continue;
        }
        float* g = t.grad + r * t.L;
        for (int64_t j = 0; j < t.L; ++j)
            g[j] = c * static_cast<float>(std::exp(static_cast<double>(p[j]) - p[arg]) / sum - (j == cls ? 1.0 : 0.0));
    }
    if (!wantGrad) {
        t.value = loss / static_cast<double>(t.n);
        t.extra = static_cast<double>(right) / static_cast<double>(t.n);
    }
}

/// CLIP loss value (contrastiveLoss). Keeps exp(logits − row max) and exp(logits − column max), and
/// the inverses of their row and column sums, for the gradient. Every B × B loop is float and runs
/// along rows, so that it vectorises (the ssd benchmark has B = 2056).
void contrastiveValue(Arena& arena, Term& t, const float* x, const float* y, int64_t W, float logitScale) {
    const int64_t B = t.n;
    t.xn = arena.alloc(static_cast<size_t>(B * W));
    t.yn = arena.alloc(static_cast<size_t>(B * W));
    normalizeRows(x, B, W, t.xn, t.normA);
    normalizeRows(y, B, W, t.yn, t.normB);
    t.scale = std::min(std::exp(logitScale), 100.f);
    t.extra = std::exp(static_cast<double>(logitScale));
    t.rowInv.assign(static_cast<size_t>(B), 0.f);
    t.colInv.assign(static_cast<size_t>(B), 0.f);
    const float sc = t.scale;
    if (sc <= kFixedShiftMaxScale) {
        // Cosines lie in [−1, 1], so sc · cos − sc ∈ [−2 sc, 0]: one shift serves every row and column
        // softmax, one matrix P = exp(sc (cos − 1)) serves both, and no entry leaves the normal floats
        // (exp(−80) > FLT_MIN), so no sum can underflow. The cosines are made kRows rows at a time in a
        // block that stays in the cache and never stored whole: P, its row and column sums, and the two
        // sums of P·cos that the logit scale's gradient needs are gathered from the block.
        t.cos = nullptr;
        t.rowP = t.colP = arena.alloc(static_cast<size_t>(B * B));
        float* block = arena.alloc(static_cast<size_t>(kRows * B));
        std::vector<float> colSum(static_cast<size_t>(B), 0.f), colPCos(static_cast<size_t>(B), 0.f), rowPCos(static_cast<size_t>(B));
        double loss = 0, diagSum = 0;
        for (int64_t i0 = 0; i0 < B; i0 += kRows) {
            const int64_t rows = std::min(kRows, B - i0);
            gemm(false, true, rows, B, W, 1.f, t.xn + i0 * W, W, t.yn, W, 0.f, block, B);
            for (int64_t r = 0; r < rows; ++r) {
                const float* c = block + r * B;
                float* p = t.rowP + (i0 + r) * B;
                for (int64_t j = 0; j < B; ++j) p[j] = sc * c[j] - sc;
                diagSum += c[i0 + r];
            }
            expInPlace(t.rowP + i0 * B, rows * B);
            for (int64_t r = 0; r < rows; ++r) {
                const float* c = block + r * B;
                const float* p = t.rowP + (i0 + r) * B;
                accumulateColumns(p, c, B, colSum.data(), colPCos.data());
                const double rs = sumOf(p, B);
                t.rowInv[i0 + r] = static_cast<float>(1.0 / rs);
                loss += std::log(rs) + sc;
                rowPCos[i0 + r] = static_cast<float>(dotOf(p, c, B));
            }
        }
        double pCos = 0;
        for (int64_t j = 0; j < B; ++j) {
            t.colInv[j] = 1.f / colSum[j];
            loss += std::log(static_cast<double>(colSum[j])) + sc;
            pCos += static_cast<double>(t.rowInv[j]) * rowPCos[j] + static_cast<double>(t.colInv[j]) * colPCos[j];
        }
        loss -= 2.0 * sc * diagSum;
        t.pCos = pCos;
        t.diagSum = diagSum;
        t.value = 0.5 * loss / static_cast<double>(B);
        return;
    }
    t.cos = arena.alloc(static_cast<size_t>(B * B));
    gemm(false, true, B, B, W, 1.f, t.xn, W, t.yn, W, 0.f, t.cos, B);
    // A larger scale (the learnt logit scale goes up to 100): each row and column shifted by its maximum.
    t.rowP = arena.alloc(static_cast<size_t>(B * B));
    t.colP = arena.alloc(static_cast<size_t>(B * B));
    std::vector<float> rowMax(static_cast<size_t>(B)), colMax(static_cast<size_t>(B), -INFINITY);
    for (int64_t i = 0; i < B; ++i) {
        const float* c = t.cos + i * B;
        float* cm = colMax.data();
        float m = -INFINITY;
        for (int64_t j = 0; j < B; ++j) {
            const float l = sc * c[j];
            m = std::max(m, l);
            cm[j] = std::max(cm[j], l);
        }
        rowMax[i] = m;
    }
    for (int64_t i = 0; i < B; ++i) {
        const float* c = t.cos + i * B;
        float* rp = t.rowP + i * B;
        float* cp = t.colP + i * B;
        const float* cm = colMax.data();
        const float rm = rowMax[i];
        for (int64_t j = 0; j < B; ++j) {
            rp[j] = sc * c[j] - rm;
            cp[j] = sc * c[j] - cm[j];
        }
    }
    expInPlace(t.rowP, B * B);
    expInPlace(t.colP, B * B);
    std::vector<float> colSum(static_cast<size_t>(B), 0.f);
    double loss = 0;
    for (int64_t i = 0; i < B; ++i) {
        const double rs = sumOf(t.rowP + i * B, B);
        t.rowInv[i] = static_cast<float>(1.0 / rs);
        loss += std::log(rs) + rowMax[i];
        const float* cp = t.colP + i * B;
        float* cs = colSum.data();
        for (int64_t j = 0; j < B; ++j) cs[j] += cp[j];
    }
    for (int64_t j = 0; j < B; ++j) {
        t.colInv[j] = 1.f / colSum[j];
        loss += std::log(static_cast<double>(colSum[j])) + colMax[j] - 2.0 * sc * t.cos[j * B + j];
    }
    t.value = 0.5 * loss / static_cast<double>(B);
}

/// Adds the contrastive gradient into dEa and dEb (B × W each); returns d loss / d logit_scale.
double contrastiveGrad(Arena& arena, Term& t, int64_t W, float* dEa, float* dEb, float logitScale) {
    const int64_t B = t.n;
    const double e = std::exp(static_cast<double>(logitScale));
    if (!t.cos) {
        // contrastiveValue's fixed shift: d loss / d cos_ij = c sc (P_ij (1/rowSum_i + 1/colSum_j) − 2 δ_ij),
        // made kRows rows at a time and multiplied at once by the other side's normalised rows, so that
        // the B × B gradient never goes to memory; the logit scale's gradient from the sums kept.
        const float c = static_cast<float>(0.5 * t.weight / static_cast<double>(B));
        const float sc = t.scale;
        float* block = arena.alloc(static_cast<size_t>(kRows * B));
        float* dxn = arena.alloc(static_cast<size_t>(B * W));
        float* dyn = arena.alloc(static_cast<size_t>(B * W));
        const float* ci = t.colInv.data();
        for (int64_t i0 = 0; i0 < B; i0 += kRows) {
            const int64_t rows = std::min(kRows, B - i0);
            for (int64_t r = 0; r < rows; ++r) {
                const float* p = t.rowP + (i0 + r) * B;
                float* d = block + r * B;
                const float ri = t.rowInv[i0 + r], k = c * sc;
                for (int64_t j = 0; j < B; ++j) d[j] = k * p[j] * (ri + ci[j]);
                d[i0 + r] -= 2.f * k;
            }
            gemm(false, false, rows, W, B, 1.f, block, B, t.yn, W, 0.f, dxn + i0 * W, W);
            gemm(true, false, B, W, rows, 1.f, block, B, t.xn + i0 * W, W, i0 == 0 ? 0.f : 1.f, dyn, W);
        }
        normalizeBackward(t.xn, t.normA, dxn, B, W, dEa);
        normalizeBackward(t.yn, t.normB, dyn, B, W, dEb);
        const double dScale = static_cast<double>(c) * (t.pCos - 2.0 * t.diagSum);
        return e <= 100.0 ? dScale * e : 0.0;  // clamp_max passes the gradient where exp(s) <= 100
    }
    float* dC = t.rowP;  // overwritten in place: d loss / d cos
    const float c = static_cast<float>(0.5 * t.weight / static_cast<double>(B));
    const float sc = t.scale;
    double dScale = 0;
    for (int64_t i = 0; i < B; ++i) {
        float* d = dC + i * B;
        const float* cp = t.colP + i * B;
        const float* ci = t.colInv.data();
        const float* cs = t.cos + i * B;
        const float ri = t.rowInv[i];
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = 0; j < B; ++j) {
            const float dl = c * (d[j] * ri + cp[j] * ci[j]);
            acc[j & 7] += dl * cs[j];
            d[j] = dl * sc;
        }
        const float dlDiag = -2.f * c;  // the −1 of both softmaxes at the label
        acc[0] += dlDiag * cs[i];
        d[i] += dlDiag * sc;
        for (float a : acc) dScale += a;
    }
    float* dxn = arena.alloc(static_cast<size_t>(B * W));
    float* dyn = arena.alloc(static_cast<size_t>(B * W));
    gemm(false, false, B, W, B, 1.f, dC, B, t.yn, W, 0.f, dxn, W);
    gemm(true, false, B, W, B, 1.f, dC, B, t.xn, W, 0.f, dyn, W);
    normalizeBackward(t.xn, t.normA, dxn, B, W, dEa);
    normalizeBackward(t.yn, t.normB, dyn, B, W, dEb);
    return e <= 100.0 ? dScale * e : 0.0;  // clamp_max passes the gradient where exp(s) <= 100
}

void termGradients(std::vector<Term>& terms, const OrderedMap<double>& coefs, const TensorMap& values,
                   const FamilyTotals& f) {
    int selected = 0;
    for (const auto& [name, c] : coefs)
        if (c > 0 && values.contains(name)) ++selected;
    for (auto& t : terms) {
        t.weight = 0;
        for (const auto& [name, c] : coefs) {
            if (!(c > 0)) continue;
            if (name == t.name) t.weight += c / selected;
            else if (name == metrics::info(t.family).mean) t.weight += c / selected / f.countOf(t.family);
        }
    }
    for (auto& t : terms) {
        if (t.weight == 0 || t.family == metrics::Family::Contrastive) continue;
        if (t.kind == LatentLossKind::Mse) mseTerm(t, true);
        else crossEntropyTerm(t, true);
    }
}


}  // namespace gw::cpu
