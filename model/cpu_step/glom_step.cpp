// SPDX-License-Identifier: GPL-3.0-or-later
// GLOM's hand-written denoising step (glom_step.h). Layout: every level state is level-major,
// (L, R, d) with R = B·n rows (row b·n + j is column j of image b), so that a level's MLP input is one
// contiguous (R × d) matrix and a level's columns of one image one contiguous (n × d) block.
#include "model/cpu_step/glom_step.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "model/cpu_step/blas.h"
#include "model/cpu_step/mlp.h"
#include "model/glom/glom.h"

namespace gw::cpu {

namespace {

/// Hot loops are compiled for AVX-512, AVX2 + FMA and the baseline, chosen at run time (the build
/// targets generic x86-64): GW_GLOM_SIMD marks a body, GW_GLOM_DISPATCH defines the caller.
#define GW_GLOM_SIMD inline __attribute__((always_inline))
bool cpuAvx2() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
}
bool cpuAvx512() {
    static const bool yes = cpuAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    return yes;
}
#define GW_GLOM_DISPATCH(name, params, args)                                                                      \
    __attribute__((target("avx2,fma"))) void name##Avx2 params { name##Body args; }                            \
    __attribute__((target("avx512f,avx512vl,avx2,fma"))) void name##Avx512 params { name##Body args; }         \
    void name params {                                                                                          \
        if (cpuAvx512()) name##Avx512 args;                                                                     \
        else if (cpuAvx2()) name##Avx2 args;                                                                    \
        else name##Body args;                                                                                   \
    }

/// e^x for x in [−87, 88] to a relative 1·10⁻⁷ (Cephes expf's range reduction and polynomial), in a
/// form that vectorises.
GW_GLOM_SIMD float fastExp(float x) {
    x = std::min(std::max(x, -87.0f), 88.0f);
    // n = round(x·log2 e) by the 1.5·2²³ shift (float addition rounds to the nearest integer there):
    // unlike floor, it vectorises without -ffast-math.
    constexpr float kShift = 12582912.f;
    const float n = (x * 1.44269504088896341f + kShift) - kShift;
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/// erf(x) to an absolute 5·10⁻⁷: the odd rational approximation on [−4, 4] that Eigen uses for float
/// (generic_fast_erf_float; erf(±4) = ±1 in float), in a form that vectorises.
GW_GLOM_SIMD float fastErf(float x) {
    x = std::min(std::max(x, -4.0f), 4.0f);
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

/// One row block of a first MLP layer: u = y + b (in place, `rows` rows of `w` floats); g = GELU(u)
/// (exact: u·Φ(u)); dg = GELU'(u) = Φ(u) + u·φ(u) when dg is given.
GW_GLOM_SIMD void geluRowsBody(float* y, const float* b, int64_t rows, int64_t w, float* dg) {
    for (int64_t r = 0; r < rows; ++r) {
        float* u = y + r * w;
        if (dg) {
            float* d = dg + r * w;
#pragma omp simd
            for (int64_t j = 0; j < w; ++j) {
                const float v = u[j] + b[j];
                const float cdf = 0.5f * (1.f + fastErf(v * kSqrtHalf));
                d[j] = cdf + v * kInvSqrt2Pi * fastExp(-0.5f * v * v);
                u[j] = v * cdf;
            }
        } else {
#pragma omp simd
            for (int64_t j = 0; j < w; ++j) {
                const float v = u[j] + b[j];
                u[j] = v * 0.5f * (1.f + fastErf(v * kSqrtHalf));
            }
        }
    }
}
GW_GLOM_DISPATCH(geluRows, (float* y, const float* b, int64_t rows, int64_t w, float* dg), (y, b, rows, w, dg))

/// d[k] = g[k]·d[k] for k < count.
GW_GLOM_SIMD void mulIntoBody(const float* g, float* d, int64_t count) {
#pragma omp simd
    for (int64_t k = 0; k < count; ++k) d[k] *= g[k];
}
GW_GLOM_DISPATCH(mulInto, (const float* g, float* d, int64_t count), (g, d, count))

/// out[j] += Σ_r m[r·ld + j] over `rows` rows, j < w (bias gradients).
GW_GLOM_SIMD void addColSumsPartBody(const float* m, int64_t rows, int64_t w, int64_t ld, float* out) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* row = m + r * ld;
#pragma omp simd
        for (int64_t j = 0; j < w; ++j) out[j] += row[j];
    }
}
GW_GLOM_DISPATCH(addColSumsPart, (const float* m, int64_t rows, int64_t w, int64_t ld, float* out), (m, rows, w, ld, out))

/// out[j] += Σ_r m[r·w + j] over `rows` rows, the columns split over the intra-op threads.
void addColSums(const float* m, int64_t rows, int64_t w, float* out) {
    at::parallel_for(0, w, 16, [&](int64_t j0, int64_t j1) { addColSumsPart(m + j0, rows, j1 - j0, w, out + j0); });
}

/// One image's consensus softmax in place on its scores s (n × n, already scaled): the diagonal set to
/// −5·10⁻⁴ unless `self`; where allow (n × n: 1 allowed, 0 not) is 0 the weight is 0 (allow may be null:
/// every column allowed).
GW_GLOM_SIMD void softmaxRowsBody(float* s, int64_t n, bool self, const float* allow) {
    for (int64_t i = 0; i < n; ++i) {
        float* row = s + i * n;
        if (!self) row[i] = -5e-4f;
        float mx = -3.0e38f;
        if (allow) {
            const float* a = allow + i * n;
#pragma omp simd reduction(max : mx)
            for (int64_t j = 0; j < n; ++j) mx = std::max(mx, a[j] > 0.f ? row[j] : -3.0e38f);
            float sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n; ++j) {
                const float e = a[j] * fastExp(row[j] - mx);
                row[j] = e;
                sum += e;
            }
            const float inv = 1.f / sum;
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) row[j] *= inv;
        } else {
#pragma omp simd reduction(max : mx)
            for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
            float sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n; ++j) {
                const float e = fastExp(row[j] - mx);
                row[j] = e;
                sum += e;
            }
            const float inv = 1.f / sum;
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) row[j] *= inv;
        }
    }
}
GW_GLOM_DISPATCH(softmaxRows, (float* s, int64_t n, bool self, const float* allow), (s, n, self, allow))

/// The softmax's backward in place on dA (n × n): dS = A ⊙ (dA − Σ_j dA·A), 0 on the diagonal unless
/// `self` (the score there is a constant).
GW_GLOM_SIMD void softmaxBackwardBody(const float* a, float* da, int64_t n, bool self) {
    for (int64_t i = 0; i < n; ++i) {
        const float* ar = a + i * n;
        float* dr = da + i * n;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < n; ++j) s += dr[j] * ar[j];
#pragma omp simd
        for (int64_t j = 0; j < n; ++j) dr[j] = ar[j] * (dr[j] - s);
        if (!self) dr[i] = 0.f;
    }
}
GW_GLOM_DISPATCH(softmaxBackward, (const float* a, float* da, int64_t n, bool self), (a, da, n, self))

bool switchedOff() {
    const char* env = std::getenv("GW_CPU_STEP");
    return env && std::strcmp(env, "0") == 0;
}

std::string shapeText(const torch::Tensor& t) {
    std::string s = "(";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + ")";
}

/// The parameters as pointers, with their gradients.
struct P {
    const float* w = nullptr;
    float* g = nullptr;
};
P param(OrderedMap<torch::Tensor>& s, const std::string& key) {
    torch::Tensor& t = *s.find(key);
    return {t.data_ptr<float>(), gradPtr(t)};
}
P param(torch::Tensor& t) { return {t.data_ptr<float>(), gradPtr(t)}; }

/// Where one iteration reads and writes. Level l of a state is at X + l·xs; the MLP group g's GELU
/// outputs and derivatives at G + g·gs, D + g·gs (R × H; groups 0..L−1 bottom-up, L.. top-down); the
/// top-down inputs of level l at Z + l·zs. The trained iterations lay these out (level or group, t, R, ·),
/// so that one product over all of them gives a weight's gradient.
struct Slots {
    const float* X = nullptr;
    int64_t xs = 0;
    float* Y = nullptr;
    int64_t ys = 0;
    float *G = nullptr, *D = nullptr;  ///< D null: no derivatives (an iteration not trained)
    int64_t gs = 0;
    float* Z = nullptr;
    int64_t zs = 0;
    float* K = nullptr;    ///< normalised levels (L, R, d)
    float* nrm = nullptr;  ///< the norms' reciprocals 1 / max(|x|, 1e-12) (L, R)
    float* A = nullptr;    ///< attention weights (L, B, n, n)
};

struct Net {
    int64_t B = 0, n = 0, L = 0, d = 0, H = 0, R = 0, q = 0;  // q: pixels per patch p·p·C
    bool self = false;
    const float* allow = nullptr;  // (n, n): 1 where the consensus may look, 0 where the local radius masks; null: everywhere
    P tokW, tokB, pos, init, bu1W, bu1B, bu2W, bu2B, td1W, td1B, td2W, td2B, pixW, pixB;
};

/// One iteration X -> Y; T the tokens (R, d).
void iterate(const Net& m, const float* T, const Slots& k) {
    const int64_t L = m.L, R = m.R, d = m.d, H = m.H, n = m.n, B = m.B;
    const float* X = k.X;
    float* Y = k.Y;
    // Y_l = X_l + the second layers' biases.
    at::parallel_for(0, L, 1, [&](int64_t l0, int64_t l1) {
        for (int64_t l = l0; l < l1; ++l) {
            const float* bu = m.bu2B.w + l * d;
            const float* td = l < L - 1 ? m.td2B.w + l * d : nullptr;
            for (int64_t r = 0; r < R; ++r) {
                const float* x = X + l * k.xs + r * d;
                float* y = Y + l * k.ys + r * d;
                if (td)
                    for (int64_t j = 0; j < d; ++j) y[j] = x[j] + bu[j] + td[j];
                else
                    for (int64_t j = 0; j < d; ++j) y[j] = x[j] + bu[j];
            }
        }
    });
    // Top-down inputs.
    at::parallel_for(0, (L - 1) * B, 1, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
            const int64_t l = u / B, b = u % B;
            const float* x = X + (l + 1) * k.xs + b * n * d;
            float* z = k.Z + l * k.zs + b * n * d;
            for (int64_t e = 0; e < n * d; ++e) z[e] = x[e] + m.pos.w[e];
        }
    });
    // The 2L − 1 MLPs: group g < L bottom-up of level g, else top-down of level g − L. Rows are
    // independent, so each intra-op thread takes a block of rows through every group (its products,
    // one thread each, and the GELU between them): one parallel region, no join between the passes.
    at::parallel_for(0, R, threadBlock(R), [&](int64_t r0, int64_t r1) {
        const int64_t nr = r1 - r0;
        for (int64_t g = 0; g < 2 * L - 1; ++g) {
            const bool up = g < L;
            const int64_t l = up ? g : g - L;
            const float* in = (up ? (l == 0 ? T : X + (l - 1) * k.xs) : k.Z + l * k.zs) + r0 * d;
            const float* w1 = (up ? m.bu1W.w : m.td1W.w) + l * H * d;
            const float* b1 = (up ? m.bu1B.w : m.td1B.w) + l * H;
            const float* w2 = (up ? m.bu2W.w : m.td2W.w) + l * d * H;
            float* G = k.G + g * k.gs + r0 * H;
            float* D = k.D ? k.D + g * k.gs + r0 * H : nullptr;
            gemm(false, true, nr, H, d, 1.f, in, d, w1, d, 0.f, G, H);
            geluRows(G, b1, nr, H, D);
            gemm(false, true, nr, d, H, 1.f, G, H, w2, H, 1.f, Y + l * k.ys + r0 * d, d);
        }
    });
    // Consensus per level and image, and the mean.
    const float alpha = 1.f / std::sqrt(static_cast<float>(d));
    at::parallel_for(0, L * B, 1, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
            const int64_t l = u / B, b = u % B;
            const float* Q = X + l * k.xs + b * n * d;
            float* K = k.K + l * R * d + b * n * d;
            float* nr = k.nrm + l * R + b * n;
            for (int64_t i = 0; i < n; ++i) {
                float s = 0;
                for (int64_t j = 0; j < d; ++j) s += Q[i * d + j] * Q[i * d + j];
                const float inv = 1.f / std::max(std::sqrt(s), 1e-12f);
                nr[i] = inv;
                for (int64_t j = 0; j < d; ++j) K[i * d + j] = Q[i * d + j] * inv;
            }
            float* A = k.A + u * n * n;
            gemm(false, true, n, n, d, alpha, Q, d, K, d, 0.f, A, n);
            softmaxRows(A, n, m.self, m.allow);
            float* y = Y + l * k.ys + b * n * d;
            gemm(false, false, n, d, n, 1.f, A, n, Q, d, 1.f, y, d);
            const float c = l < L - 1 ? 0.25f : 1.f / 3.f;
            for (int64_t e = 0; e < n * d; ++e) y[e] *= c;
        }
    });
}

/// The backward pass of one trained iteration, but for the weights' gradients: dY (L, R, d) is
/// d loss / d Y; dS (level l at dS + l·ss) receives dY / c (the gradient of each level's sum); dX (L, R, d)
/// receives d loss / d X; dT (R, d) and the position embedding's gradient accumulate; each group's D
/// is overwritten with d loss / d (its first layer's output) for the weights' gradients after.
/// scratch: (R, H) + (L − 1)·(R, d) + L·B·(n·n + n·d) floats.
void iterateBackward(const Net& m, const float* T, const Slots& k, const float* dY, float* dS, int64_t ss, float* dX, float* dT,
                     float* scratch) {
    const int64_t L = m.L, R = m.R, d = m.d, H = m.H, n = m.n, B = m.B;
    const int64_t Rd = R * d;
    const float* X = k.X;
    float* dG = scratch;
    float* dZ = dG + R * H;
    float* dA = dZ + (L - 1) * Rd;
    float* dK = dA + L * B * n * n;
    // dS = dY / c, and the identity term.
    at::parallel_for(0, L, 1, [&](int64_t l0, int64_t l1) {
        for (int64_t l = l0; l < l1; ++l) {
            const float c = l < L - 1 ? 0.25f : 1.f / 3.f;
            const float* y = dY + l * Rd;
            float* s = dS + l * ss;
            float* x = dX + l * Rd;
            for (int64_t e = 0; e < Rd; ++e) x[e] = s[e] = y[e] * c;
        }
    });
    // Consensus: out = A·Q, A = softmax(Q·Kᵀ/√d), K = Q / |Q|.
    const float alpha = 1.f / std::sqrt(static_cast<float>(d));
    at::parallel_for(0, L * B, 1, [&](int64_t u0, int64_t u1) {
        for (int64_t u = u0; u < u1; ++u) {
            const int64_t l = u / B, b = u % B;
            const float* Q = X + l * k.xs + b * n * d;
            const float* K = k.K + l * Rd + b * n * d;
            const float* nr = k.nrm + l * R + b * n;
            const float* A = k.A + u * n * n;
            const float* dO = dS + l * ss + b * n * d;
            float* dq = dX + l * Rd + b * n * d;
            float* da = dA + u * n * n;
            float* dk = dK + u * n * d;
            gemm(false, true, n, n, d, 1.f, dO, d, Q, d, 0.f, da, n);
            gemm(true, false, n, d, n, 1.f, A, n, dO, d, 1.f, dq, d);
            softmaxBackward(A, da, n, m.self);
            gemm(false, false, n, d, n, alpha, da, n, K, d, 1.f, dq, d);
            gemm(true, false, n, d, n, alpha, da, n, Q, d, 0.f, dk, d);
            for (int64_t i = 0; i < n; ++i) {
                const float* ki = K + i * d;
                float* gi = dk + i * d;
                float dot = 0;
                for (int64_t j = 0; j < d; ++j) dot += ki[j] * gi[j];
                // 1 / max(|q|, eps) == nr; below eps the normalisation is q / eps, its gradient dK / eps.
                const float inv = nr[i];
                const bool clamped = inv >= 1e12f;
                for (int64_t j = 0; j < d; ++j) dq[i * d + j] += inv * (gi[j] - (clamped ? 0.f : ki[j] * dot));
            }
        }
    });
    // The MLPs' inputs (each adds into its own input's gradient), a block of rows per intra-op thread
    // as in iterate; the top-down inputs' gradients dZ are kept per level for the position
    // embedding's, a sum over images (across the blocks), taken after.
    at::parallel_for(0, R, threadBlock(R), [&](int64_t r0, int64_t r1) {
        const int64_t nr = r1 - r0;
        for (int64_t g = 2 * L - 2; g >= 0; --g) {
            const bool up = g < L;
            const int64_t l = up ? g : g - L;
            const float* w1 = (up ? m.bu1W.w : m.td1W.w) + l * H * d;
            const float* w2 = (up ? m.bu2W.w : m.td2W.w) + l * d * H;
            float* D = k.D + g * k.gs + r0 * H;
            float* dg = dG + r0 * H;
            gemm(false, false, nr, H, d, 1.f, dS + l * ss + r0 * d, d, w2, H, 0.f, dg, H);
            mulInto(dg, D, nr * H);
            if (up) {
                gemm(false, false, nr, d, H, 1.f, D, H, w1, d, 1.f, (l == 0 ? dT : dX + (l - 1) * Rd) + r0 * d, d);
            } else {
                float* dz = dZ + l * Rd + r0 * d;
                gemm(false, false, nr, d, H, 1.f, D, H, w1, d, 0.f, dz, d);
                float* dx = dX + (l + 1) * Rd + r0 * d;
                for (int64_t e = 0; e < nr * d; ++e) dx[e] += dz[e];
            }
        }
    });
    if (m.pos.g)
        at::parallel_for(0, n * d, 256, [&](int64_t e0, int64_t e1) {
            for (int64_t l = 0; l < L - 1; ++l)
                for (int64_t b = 0; b < B; ++b) {
                    const float* z = dZ + l * Rd + b * n * d;
                    for (int64_t e = e0; e < e1; ++e) m.pos.g[e] += z[e];
                }
        });
}

}  // namespace

std::string GlomStep::unsupported(GlomDenoiserImpl& m, const torch::Tensor& noisy, int64_t readAt) {
    if (switchedOff()) return "switched off";
    if (!blasAvailable()) return "no BLAS sgemm_ in the process";
    for (const auto& p : m.parameters()) {
        if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat32 || !p.is_contiguous())
            return "parameters are not contiguous float32 on the CPU";
        if (!p.requires_grad()) return "some parameters are frozen";
    }
    if (!torch::GradMode::is_enabled()) return "gradients are off";
    const GlomOptions& o = m.glom->options();
    if (!noisy.device().is_cpu() || noisy.scalar_type() != torch::kFloat32) return "images are not float32 on the CPU";
    if (noisy.dim() != 4 || noisy.size(0) < 1 || noisy.size(1) != o.channels || noisy.size(2) != o.imageSize ||
        noisy.size(3) != o.imageSize)
        return "images of shape " + shapeText(noisy) + " (expected (B, " + std::to_string(o.channels) + ", " +
               std::to_string(o.imageSize) + ", " + std::to_string(o.imageSize) + "))";
    if (readAt == 0) return "read_at 0 (no iteration)";
    return "";
}

torch::Tensor GlomStep::run(GlomDenoiserImpl& dm, const torch::Tensor& noisyIn, const torch::Tensor& cleanIn, int64_t readAt,
                            int64_t computeIters) {
    GlomImpl& glom = *dm.glom;
    const GlomOptions& o = glom.options();
    Net m;
    m.B = noisyIn.size(0);
    m.n = o.columns();
    m.L = o.levels;
    m.d = o.dim;
    m.H = 4 * o.dim;
    m.R = m.B * m.n;
    m.q = o.patchSize * o.patchSize * o.channels;
    m.self = o.consensusSelf;
    if (readAt < 0) readAt = m.L + 1;
    const int64_t iters = std::max(readAt, computeIters);
    const int64_t L = m.L, R = m.R, d = m.d, H = m.H, n = m.n, B = m.B, q = m.q;
    const int64_t Rd = R * d, RH = R * H;

    // Parameters (the state dict's tensors share the parameters' storage and .grad).
    OrderedMap<torch::Tensor> sd = glom.stateDict();
    m.tokW = param(sd, "image_to_tokens.1.weight");
    m.tokB = param(sd, "image_to_tokens.1.bias");
    m.pos = param(sd, "pos_emb.weight");
    m.init = param(sd, "init_levels");
    m.bu1W = param(sd, "bottom_up.net.1.weight");
    m.bu1B = param(sd, "bottom_up.net.1.bias");
    m.bu2W = param(sd, "bottom_up.net.3.weight");
    m.bu2B = param(sd, "bottom_up.net.3.bias");
    m.td1W = param(sd, "top_down.net.1.weight");
    m.td1B = param(sd, "top_down.net.1.bias");
    m.td2W = param(sd, "top_down.net.3.weight");
    m.td2B = param(sd, "top_down.net.3.bias");
    m.pixW = param(dm.toPixels->weight);
    m.pixB = param(dm.toPixels->bias);
    torch::Tensor mask;
    if (const torch::Tensor* t = sd.find("attention.non_local_mask")) {
        mask = t->logical_not().to(torch::kFloat32).contiguous();
        m.allow = mask.data_ptr<float>();
    }

    // Patches (R, q), flattened (p1, p2, c) as GlomImpl::tokens cuts them; the clean ones are the target.
    const int64_t C = o.channels, p = o.patchSize, s = o.side();
    auto patches = [&](const torch::Tensor& img) {
        return img.reshape({B, C, s, p, s, p}).permute({0, 2, 4, 3, 5, 1}).reshape({R, q}).contiguous();
    };
    const torch::Tensor noisyP = patches(noisyIn), cleanP = patches(cleanIn);
    const float* xin = noisyP.data_ptr<float>();
    const float* target = cleanP.data_ptr<float>();

    // OpenBLAS on one thread for the whole step: the intra-op threads split every product
    // (gemmSplit, or a block of rows each through the MLPs) and run the passes between them.
    BlasThreads blasOne(at::get_num_threads() > 1 ? 1 : 0);
    Arena& ar = arena_;
    ar.reset();
    float* T = ar.alloc(static_cast<size_t>(Rd));
    gemmSplit(false, true, R, d, q, 1.f, xin, q, m.tokW.w, q, 0.f, T, d);
    for (int64_t r = 0; r < R; ++r)
        for (int64_t j = 0; j < d; ++j) T[r * d + j] += m.tokB.w[j];

    // States 0 .. readAt laid out (L, readAt + 1, R, d); what the trained iterations keep, per group or
    // level, (·, readAt, R, ·).
    const int64_t Tn = readAt;
    const int64_t xs = (Tn + 1) * Rd;
    float* Xall = ar.alloc(static_cast<size_t>(L * xs));
    for (int64_t l = 0; l < L; ++l)
        for (int64_t r = 0; r < R; ++r) std::memcpy(Xall + l * xs + r * d, m.init.w + l * d, sizeof(float) * d);
    float* Gall = ar.alloc(static_cast<size_t>((2 * L - 1) * Tn * RH));
    float* Dall = ar.alloc(static_cast<size_t>((2 * L - 1) * Tn * RH));
    float* Zall = ar.alloc(static_cast<size_t>((L - 1) * Tn * Rd));
    float* Kall = ar.alloc(static_cast<size_t>(Tn * L * Rd));
    float* Nall = ar.alloc(static_cast<size_t>(Tn * L * R));
    float* Aall = ar.alloc(static_cast<size_t>(Tn * L * B * n * n));
    auto slots = [&](int64_t t) {
        Slots k;
        k.X = Xall + t * Rd;
        k.xs = xs;
        k.Y = Xall + (t + 1) * Rd;
        k.ys = xs;
        k.G = Gall + t * RH;
        k.D = Dall + t * RH;
        k.gs = Tn * RH;
        k.Z = Zall + t * Rd;
        k.zs = Tn * Rd;
        k.K = Kall + t * L * Rd;
        k.nrm = Nall + t * L * R;
        k.A = Aall + t * L * B * n * n;
        return k;
    };
    for (int64_t t = 0; t < Tn; ++t) iterate(m, T, slots(t));
    if (iters > Tn) {  // forward only, as the README computes them; nothing of them is read
        Slots k;
        k.xs = k.ys = Rd;
        k.G = ar.alloc(static_cast<size_t>((2 * L - 1) * RH));
        k.gs = RH;
        k.Z = ar.alloc(static_cast<size_t>((L - 1) * Rd));
        k.zs = Rd;
        k.K = ar.alloc(static_cast<size_t>(L * Rd));
        k.nrm = ar.alloc(static_cast<size_t>(L * R));
        k.A = ar.alloc(static_cast<size_t>(L * B * n * n));
        float* a = ar.alloc(static_cast<size_t>(L * Rd));
        float* b = ar.alloc(static_cast<size_t>(L * Rd));
        // The last state, contiguous.
        for (int64_t l = 0; l < L; ++l) std::memcpy(b + l * Rd, Xall + l * xs + Tn * Rd, sizeof(float) * Rd);
        for (int64_t t = Tn; t < iters; ++t) {
            k.X = b;
            k.Y = a;
            iterate(m, T, k);
            std::swap(a, b);
        }
    }

    // Head and loss: pixels = top · Wpᵀ + bp (R, q); loss = mean((pixels − target)²).
    const float* top = Xall + (L - 1) * xs + Tn * Rd;
    float* pix = ar.alloc(static_cast<size_t>(R * q));
    gemmSplit(false, true, R, q, d, 1.f, top, d, m.pixW.w, d, 0.f, pix, q);
    double sq = 0;
    const float scale = 2.f / static_cast<float>(R * q);
    for (int64_t r = 0; r < R; ++r) {
        float rowSq = 0;
        for (int64_t j = 0; j < q; ++j) {
            const float diff = pix[r * q + j] + m.pixB.w[j] - target[r * q + j];
            rowSq += diff * diff;
            pix[r * q + j] = diff * scale;  // now d loss / d pixels
        }
        sq += rowSq;
    }
    const double loss = sq / static_cast<double>(R * q);
    if (m.pixW.g) gemmSplit(true, false, q, d, R, 1.f, pix, q, top, d, 1.f, m.pixW.g, d);
    if (m.pixB.g) addColSums(pix, R, q, m.pixB.g);

    // Backward through the iterations: dY = d loss / d X[t + 1], dX = d loss / d X[t]; dS keeps every
    // iteration's level-sum gradients (L, Tn, R, d) and Dall becomes the first layers' output gradients.
    float* dY = ar.zeros(static_cast<size_t>(L * Rd));
    float* dX = ar.alloc(static_cast<size_t>(L * Rd));
    gemmSplit(false, false, R, d, q, 1.f, pix, q, m.pixW.w, d, 0.f, dY + (L - 1) * Rd, d);
    float* dT = ar.zeros(static_cast<size_t>(Rd));
    const int64_t ss = Tn * Rd;
    float* dS = ar.alloc(static_cast<size_t>(L * ss));
    float* scratch = ar.alloc(static_cast<size_t>(RH + (L - 1) * Rd + L * B * (n * n + n * d)));
    for (int64_t t = Tn - 1; t >= 0; --t) {
        iterateBackward(m, T, slots(t), dY, dS + t * Rd, ss, dX, dT, scratch);
        std::swap(dY, dX);
    }
    // The MLPs' weights, one product over every trained iteration per weight (K = Tn·R rows).
    const int64_t TR = Tn * R;
    for (int64_t g = 0; g < 2 * L - 1; ++g) {
        const bool up = g < L;
        const int64_t l = up ? g : g - L;
        const P& w1 = up ? m.bu1W : m.td1W;
        const P& b1 = up ? m.bu1B : m.td1B;
        const P& w2 = up ? m.bu2W : m.td2W;
        const P& b2 = up ? m.bu2B : m.td2B;
        const float* dSl = dS + l * ss;
        const float* G = Gall + g * Tn * RH;
        float* dU = Dall + g * Tn * RH;
        if (w2.g) gemmSplit(true, false, d, H, TR, 1.f, dSl, d, G, H, 1.f, w2.g + l * d * H, H);
        if (b2.g) addColSums(dSl, TR, d, b2.g + l * d);
        if (b1.g) addColSums(dU, TR, H, b1.g + l * H);
        if (!w1.g) continue;
        if (up && l == 0) {  // the tokens are the input of every iteration: Σ_t dU_tᵀ·T = (Σ_t dU_t)ᵀ·T
            for (int64_t t = 1; t < Tn; ++t) {
                const float* u = dU + t * RH;
                at::parallel_for(0, RH, 1 << 14, [&](int64_t e0, int64_t e1) {
                    for (int64_t e = e0; e < e1; ++e) dU[e] += u[e];
                });
            }
            gemmSplit(true, false, H, d, R, 1.f, dU, H, T, d, 1.f, w1.g, d);
        } else {
            const float* in = up ? Xall + (l - 1) * xs : Zall + l * Tn * Rd;  // states 0 .. Tn − 1 of the level
            gemmSplit(true, false, H, d, TR, 1.f, dU, H, in, d, 1.f, w1.g + l * H * d, d);
        }
    }
    // dY is now d loss / d X[0]: every column starts from init_levels.
    if (m.init.g)
        for (int64_t l = 0; l < L; ++l) addColSums(dY + l * Rd, R, d, m.init.g + l * d);
    // Tokens: T = patches · Wtᵀ + bt.
    if (m.tokW.g) gemmSplit(true, false, d, q, R, 1.f, dT, d, xin, q, 1.f, m.tokW.g, q);
    if (m.tokB.g) addColSums(dT, R, d, m.tokB.g);
    return torch::scalar_tensor(loss, torch::kFloat32);
}

LossOutput GlomDomainStep::run(GlomDomain& g, const torch::Tensor& x) {
    GlomDenoiserImpl& dm = *g.denoiser;
    // The noise drawn as computeDomainLoss draws it, so that a seeded run takes either path alike.
    const torch::Tensor noisy = g.noiseStd() > 0 ? x + torch::randn_like(x) * g.noiseStd() : x;
    const std::string why = GlomStep::unsupported(dm, noisy, g.readAt());
    LossOutput out;
    if (why.empty()) {
        path_ = "hand-written";
        out.loss = step_.run(dm, noisy.contiguous(), x.contiguous(), g.readAt());
    } else {
        path_ = "autograd (" + why + ")";
        out.loss = torch::mse_loss(dm.reconstruct(noisy, g.readAt()), x);
        out.loss.backward();
        out.loss = out.loss.detach();
    }
    out.metrics.set("denoise_mse", out.loss);
    return out;
}

}  // namespace gw::cpu
