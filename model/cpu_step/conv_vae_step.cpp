// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_step/conv_vae_step.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "model/cpu_step/blas.h"
#include "model/cpu_step/mlp.h"
#include "model/cpu_step/reduce.h"
#include "model/cpu_step/simd.h"
#include "model/domains/domain_module.h"

namespace gw {

std::optional<ConvVaeShape> convVaeShape(DomainModule& m) {
    ConvVaeShape s;
    if (!convVaeShapeOf(m, s.channels, s.imageSize, s.aeDim, s.beta)) return std::nullopt;
    s.latent = m.latentDim();
    return s;
}

}  // namespace gw

namespace gw::cpu {

namespace {

/// im2col buffers hold about this many floats (1 MiB: they stay in the core's L2 between the copy
/// and the product); a layer's batch is taken in chunks of as many samples as fit.
constexpr int64_t kColFloats = int64_t(1) << 18;
constexpr float kBnEps = 1e-5f;
constexpr float kBnMomentum = 0.1f;

/// a[i] = max(y[i]·scale + shift, 0).
GW_SIMD void scaleShiftReluBody(const float* y, int64_t n, float scale, float shift, float* a) {
    for (int64_t i = 0; i < n; ++i) a[i] = std::max(y[i] * scale + shift, 0.f);
}
GW_DISPATCH(void, scaleShiftRelu, (const float* y, int64_t n, float scale, float shift, float* a), (y, n, scale, shift, a))

/// Where a normalised activation goes when no consumer needs it unpadded: images of H × W pixels per
/// channel, each written into imageFloats floats of dst with rows pitch floats apart, pixel (0, 0) at
/// top·pitch + left, zeros everywhere else (the zero-bordered input of the direct transposed
/// convolution, (W + 2)² an image; the output convolution's rows, 32 × kPitch).
struct PadTo {
    int64_t images = 0, H = 0, W = 0, pitch = 0, top = 0, left = 0, imageFloats = 0;
    float* dst = nullptr;  ///< channel c's images from dst + c·images·imageFloats
};

/// scaleShiftRelu for `images` images of H × W into dst laid out as a PadTo says.
GW_SIMD void scaleShiftReluPadBody(const float* y, int64_t images, int64_t H, int64_t W, int64_t pitch, int64_t top, int64_t left,
                                   int64_t imageFloats, float scale, float shift, float* dst) {
    const int64_t rowsAll = imageFloats / pitch;
    for (int64_t i = 0; i < images; ++i) {
        float* d = dst + i * imageFloats;
        std::memset(d, 0, sizeof(float) * static_cast<size_t>(top * pitch));
        std::memset(d + (top + H) * pitch, 0, sizeof(float) * static_cast<size_t>((rowsAll - top - H) * pitch));
        for (int64_t r = 0; r < H; ++r) {
            const float* yr = y + (i * H + r) * W;
            float* dr = d + (top + r) * pitch;
            for (int64_t x = 0; x < left; ++x) dr[x] = 0.f;
            for (int64_t x = 0; x < W; ++x) dr[left + x] = std::max(yr[x] * scale + shift, 0.f);
            for (int64_t x = left + W; x < pitch; ++x) dr[x] = 0.f;
        }
    }
}
GW_DISPATCH(void, scaleShiftReluPad,
            (const float* y, int64_t images, int64_t H, int64_t W, int64_t pitch, int64_t top, int64_t left, int64_t imageFloats,
             float scale, float shift, float* dst),
            (y, images, H, W, pitch, top, left, imageFloats, scale, shift, dst))

/// reluMaskSums with the ReLU's input recomputed from y, y·scale + shift (the same expression as
/// scaleShiftRelu's, so the same mask), instead of read from a.
GW_SIMD void reluMaskSumsAffineBody(const float* y, float scale, float shift, float* g, int64_t n, float m, double& sg, double& sgx) {
    sg = sgx = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 1024) {
        const int64_t e = std::min(n, i0 + 1024);
        float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t i = i0; i < e; ++i) {
            const float gi = std::max(y[i] * scale + shift, 0.f) > 0.f ? g[i] : 0.f;
            g[i] = gi;
            s1 += gi;
            s2 += gi * (y[i] - m);
        }
        sg += s1;
        sgx += s2;
    }
}
GW_DISPATCH(void, reluMaskSumsAffine, (const float* y, float scale, float shift, float* g, int64_t n, float m, double& sg, double& sgx),
            (y, scale, shift, g, n, m, sg, sgx))

/// g[i] = a[i] > 0 ? g[i] : 0; returns Σ g[i] and Σ g[i]·(y[i] − m) (each as sumOf in reduce.h).
GW_SIMD void reluMaskSumsBody(const float* y, const float* a, float* g, int64_t n, float m, double& sg, double& sgx) {
    sg = sgx = 0;
    for (int64_t i0 = 0; i0 < n; i0 += 1024) {
        const int64_t e = std::min(n, i0 + 1024);
        float s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
        for (int64_t i = i0; i < e; ++i) {
            const float gi = a[i] > 0.f ? g[i] : 0.f;
            g[i] = gi;
            s1 += gi;
            s2 += gi * (y[i] - m);
        }
        sg += s1;
        sgx += s2;
    }
}
GW_DISPATCH(void, reluMaskSums, (const float* y, const float* a, float* g, int64_t n, float m, double& sg, double& sgx), (y, a, g, n, m, sg, sgx))

/// g[i] = k·(g[i] − mg − (y[i] − m)·c).
GW_SIMD void bnInputGradBody(const float* y, float* g, int64_t n, float k, float mg, float m, float c) {
    for (int64_t i = 0; i < n; ++i) g[i] = k * (g[i] - mg - (y[i] - m) * c);
}
GW_DISPATCH(void, bnInputGrad, (const float* y, float* g, int64_t n, float k, float mg, float m, float c), (y, g, n, k, mg, m, c))

/// bnInputGrad for `images` images of H × W written into dst, the same images with a border of zeros
/// ((H + 2) × (W + 2) each), instead of over g.
GW_SIMD void bnInputGradPadBody(const float* y, const float* g, int64_t images, int64_t H, int64_t W, float k, float mg, float m, float c,
                                float* dst) {
    const int64_t Wp = W + 2;
    for (int64_t i = 0; i < images; ++i) {
        float* d = dst + i * (H + 2) * Wp;
        for (int64_t x = 0; x < Wp; ++x) d[x] = d[(H + 1) * Wp + x] = 0.f;
        for (int64_t r = 0; r < H; ++r) {
            const float* yr = y + (i * H + r) * W;
            const float* gr = g + (i * H + r) * W;
            float* dr = d + (r + 1) * Wp + 1;
            dr[-1] = dr[W] = 0.f;
            for (int64_t x = 0; x < W; ++x) dr[x] = k * (gr[x] - mg - (yr[x] - m) * c);
        }
    }
}
GW_DISPATCH(void, bnInputGradPad,
            (const float* y, const float* g, int64_t images, int64_t H, int64_t W, float k, float mg, float m, float c, float* dst),
            (y, g, images, H, W, k, mg, m, c, dst))

/// A 4 × 4, stride-2 convolution's geometry as the im2col of its input sees it: an input of C
/// channels, H × W (W ≤ 32), with element (c, b, y, x) at c·cs + b·bs + y·W + x; padding pt (top) and
/// pl (left, ≤ 3); an output of OH × OW (input pixels outside [0, H) × [0, W) read as zeros, which
/// covers any padding on the bottom and right).
struct Geo {
    int64_t C = 0, H = 0, W = 0, OH = 0, OW = 0, cs = 0, bs = 0;
    int64_t pt = 0, pl = 0;
    int64_t rows() const { return C * 16; }
    int64_t outPixels() const { return OH * OW; }
};

/// Samples per chunk for an im2col buffer of R rows and P pixels per sample.
/// On two or more intra-op threads a chunk is at most B / threads samples, so that every thread has
/// one (the encoder's last layer would otherwise be one chunk: one thread).
int64_t chunkOf(int64_t R, int64_t P, int64_t B) {
    const int64_t t = std::max(1, at::get_num_threads());
    return std::clamp<int64_t>(kColFloats / std::max<int64_t>(R * P, 1), 1, std::max<int64_t>(1, (B + t - 1) / t));
}

// Every im2col and col2im of the step is of a 4 × 4 kernel with stride 2 (the strided convolutions
// and their transposes; the last, stride-1 convolution is direct). An input row is read through a
// copy with zeros around it (kRowPad on the left), so that the loops over output columns have no bounds.
constexpr int64_t kRowPad = 4, kRowBuf = 48;

/// The 16 rows (c, ky, kx) of im2col for channel c, samples [b0, b0 + nb): col row (c·4 + ky)·4 + kx,
/// column (b − b0, oy, ox) holds input (c, b, 2·oy − pt + ky, 2·ox − pl + kx), 0 outside.
GW_SIMD void im2colChannelBody(const float* src, const Geo& g, int64_t c, int64_t b0, int64_t nb, float* col) {
    const int64_t P = g.outPixels(), n = nb * P, OW = g.OW, base = kRowPad - g.pl;
    float t[kRowBuf] = {};
    for (int64_t ky = 0; ky < 4; ++ky) {
        float* d0 = col + ((c * 4 + ky) * 4) * n;
        for (int64_t b = 0; b < nb; ++b) {
            const float* s = src + c * g.cs + (b0 + b) * g.bs;
            for (int64_t oy = 0; oy < g.OH; ++oy) {
                float* d = d0 + b * P + oy * OW;
                const int64_t iy = 2 * oy - g.pt + ky;
                if (iy < 0 || iy >= g.H) {
                    for (int64_t kx = 0; kx < 4; ++kx) std::memset(d + kx * n, 0, sizeof(float) * static_cast<size_t>(OW));
                    continue;
                }
                const float* srow = s + iy * g.W;
                if (g.pl == 1 && g.W == 2 * OW) {  // inside the row but for its first and last column
                    for (int64_t ox = 1; ox + 1 < OW; ++ox) {
                        d[ox] = srow[2 * ox - 1];
                        d[n + ox] = srow[2 * ox];
                        d[2 * n + ox] = srow[2 * ox + 1];
                        d[3 * n + ox] = srow[2 * ox + 2];
                    }
                    d[0] = 0.f;
                    d[n] = srow[0];
                    d[2 * n] = srow[1];
                    d[3 * n] = srow[2];
                    const int64_t e = OW - 1;
                    d[e] = srow[2 * e - 1];
                    d[n + e] = srow[2 * e];
                    d[2 * n + e] = srow[2 * e + 1];
                    d[3 * n + e] = 0.f;
                    continue;
                }
                for (int64_t x = 0; x < g.W; ++x) t[kRowPad + x] = srow[x];
                const float* tb = t + base;
                for (int64_t ox = 0; ox < OW; ++ox) {
                    d[ox] = tb[2 * ox];
                    d[n + ox] = tb[2 * ox + 1];
                    d[2 * n + ox] = tb[2 * ox + 2];
                    d[3 * n + ox] = tb[2 * ox + 3];
                }
            }
        }
    }
}
GW_DISPATCH(void, im2colChannel, (const float* src, const Geo& g, int64_t c, int64_t b0, int64_t nb, float* col), (src, g, c, b0, nb, col))

/// The adjoint of im2colChannel: channel c of samples [b0, b0 + nb) of dst (laid out as g's input)
/// overwritten with the 16 rows of c scattered back and summed (every pixel of those samples is
/// written: no zeroing needed).
GW_SIMD void col2imChannelBody(const float* col, const Geo& g, int64_t c, int64_t b0, int64_t nb, float* dst) {
    const int64_t P = g.outPixels(), n = nb * P, OW = g.OW, base = kRowPad - g.pl;
    float t[kRowBuf] = {}, r[kRowBuf];
    for (int64_t b = 0; b < nb; ++b) {
        float* d = dst + c * g.cs + (b0 + b) * g.bs;
        for (int64_t iy = 0; iy < g.H; ++iy) {
            for (int64_t x = 0; x < g.W; ++x) r[x] = 0.f;
            for (int64_t ky = 0; ky < 4; ++ky) {
                const int64_t o2 = iy + g.pt - ky;  // 2·oy
                if (o2 < 0 || (o2 & 1) || o2 / 2 >= g.OH) continue;
                const float* s = col + ((c * 4 + ky) * 4) * n + b * P + (o2 / 2) * OW;
                float* tb = t + base;
                for (int64_t ox = 0; ox < OW; ++ox) {
                    tb[2 * ox] = s[ox];
                    tb[2 * ox + 1] = s[n + ox];
                }
                tb[2 * OW] = tb[2 * OW + 1] = 0.f;
                for (int64_t ox = 0; ox < OW; ++ox) {
                    tb[2 * ox + 2] += s[2 * n + ox];
                    tb[2 * ox + 3] += s[3 * n + ox];
                }
                for (int64_t x = 0; x < g.W; ++x) r[x] += t[kRowPad + x];
            }
            float* row = d + iy * g.W;
            for (int64_t x = 0; x < g.W; ++x) row[x] = r[x];
        }
    }
}
GW_DISPATCH(void, col2imChannel, (const float* col, const Geo& g, int64_t c, int64_t b0, int64_t nb, float* dst), (col, g, c, b0, nb, dst))

/// col (C·16 × nb·P) from samples [b0, b0 + nb) of src (g: k 4, stride 2).
void im2col(const float* src, const Geo& g, int64_t b0, int64_t nb, float* col) {
    at::parallel_for(0, g.C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) im2colChannel(src, g, c, b0, nb, col);
    });
}

/// dst (samples [b0, b0 + nb)) = col scattered back and summed (g: k 4, stride 2).
void col2im(const float* col, const Geo& g, int64_t b0, int64_t nb, float* dst) {
    at::parallel_for(0, g.C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) col2imChannel(col, g, c, b0, nb, dst);
    });
}

/// A parameter: its tensor, data and .grad data.
struct Par {
    torch::Tensor t;
    const float* p = nullptr;
    float* g = nullptr;
};

/// A batch norm's parameters and running statistics, and what its forward kept for the backward.
struct Bn {
    Par gamma, beta;
    float *runMean = nullptr, *runVar = nullptr;
    torch::Tensor batches;
    float *mean = nullptr, *invstd = nullptr;
    float* meanRounding = nullptr;  ///< per channel: the batch mean in double minus its float value
    float *scale = nullptr, *shift = nullptr;  ///< per channel: a = max(y·scale + shift, 0)
};

/// Training-mode batch norm and ReLU over C rows of N: a = max(γ·(y − μ)/σ + β, 0), running
/// statistics updated (unbiased variance), batch counter + 1. With `to` given, a goes into to's
/// padded images instead (N = to->images · H · W), and the argument a is not read.
void bnReluForward(Arena& ar, Bn& bn, int64_t C, int64_t N, const float* y, float* a, const PadTo* to = nullptr) {
    bn.mean = ar.alloc(static_cast<size_t>(C));
    bn.invstd = ar.alloc(static_cast<size_t>(C));
    bn.meanRounding = ar.alloc(static_cast<size_t>(C));
    bn.scale = ar.alloc(static_cast<size_t>(C));
    bn.shift = ar.alloc(static_cast<size_t>(C));
    at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            const float* row = y + c * N;
            // One pass for both statistics, around the mean of the row's first values (cache-hot).
            const int64_t n0 = std::min<int64_t>(N, 1024);
            const float k = static_cast<float>(sumOf(row, n0) / static_cast<double>(n0));
            double s1, s2;
            shiftedSumsOf(row, N, k, s1, s2);
            const double mu = k + s1 / static_cast<double>(N);
            const float m = static_cast<float>(mu);
            bn.meanRounding[c] = static_cast<float>(mu - m);
            const double sq = std::max(0.0, s2 - s1 * s1 / static_cast<double>(N));
            const float is = static_cast<float>(1.0 / std::sqrt(sq / static_cast<double>(N) + kBnEps));
            bn.mean[c] = m;
            bn.invstd[c] = is;
            bn.runMean[c] = (1 - kBnMomentum) * bn.runMean[c] + kBnMomentum * m;
            bn.runVar[c] = (1 - kBnMomentum) * bn.runVar[c] + kBnMomentum * static_cast<float>(sq / static_cast<double>(N - 1));
            const float scale = is * bn.gamma.p[c], shift = bn.beta.p[c] - m * scale;
            bn.scale[c] = scale;
            bn.shift[c] = shift;
            if (to) {
                scaleShiftReluPad(row, to->images, to->H, to->W, to->pitch, to->top, to->left, to->imageFloats, scale, shift,
                                  to->dst + c * to->images * to->imageFloats);
            } else {
                scaleShiftRelu(row, N, scale, shift, a + c * N);
            }
        }
    });
    bn.batches.add_(1);
}

/// Backward of bnReluForward: da (C × N), the gradient w.r.t. a, becomes the gradient w.r.t. y
/// (a, the forward's output, only for its ReLU mask; null when it went to padded images: the mask is
/// then recomputed from y);
/// γ's and β's gradients are added into their .grad. biasGrad, when given, receives (+=) Σ over each
/// row of that gradient, the gradient of a bias added before the norm: zero but for rounding, since the
/// norm subtracts the mean; it is taken in closed form, k·(Σg − N·Σg/N − c·Σ(y − m)) with
/// Σ(y − m) = N·(μ − m), rather than summed.
/// With pad given, the gradient w.r.t. y goes instead into pad->dst as pad->images images of
/// pad->H × pad->W per channel with a border of zeros (bnInputGradPad), and da is left masked.
struct PadOut {
    int64_t images = 0, H = 0, W = 0;
    float* dst = nullptr;
};
void bnReluBackward(Bn& bn, int64_t C, int64_t N, const float* y, const float* a, float* da, float* biasGrad = nullptr,
                    const PadOut* pad = nullptr) {
    at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            const float* yr = y + c * N;
            float* g = da + c * N;
            const float m = bn.mean[c], is = bn.invstd[c];
            double sg, sgx;
            if (a) reluMaskSums(yr, a + c * N, g, N, m, sg, sgx);
            else reluMaskSumsAffine(yr, bn.scale[c], bn.shift[c], g, N, m, sg, sgx);
            const float dgamma = static_cast<float>(sgx) * is, dbeta = static_cast<float>(sg);
            if (bn.gamma.g) bn.gamma.g[c] += dgamma;
            if (bn.beta.g) bn.beta.g[c] += dbeta;
            const float k = bn.gamma.p[c] * is, mg = dbeta / static_cast<float>(N), mx = dgamma / static_cast<float>(N);
            if (pad) {
                bnInputGradPad(yr, g, pad->images, pad->H, pad->W, k, mg, m, is * mx,
                               pad->dst + c * pad->images * (pad->H + 2) * (pad->W + 2));
            } else {
                bnInputGrad(yr, g, N, k, mg, m, is * mx);
            }
            if (biasGrad) biasGrad[c] += -k * is * mx * static_cast<float>(N) * bn.meanRounding[c];
        }
    });
}

/// out[c] += Σ row c of x (C × N).
void addRowSums(const float* x, int64_t C, int64_t N, float* out) {
    if (!out) return;
    for (int64_t c = 0; c < C; ++c) out[c] += static_cast<float>(sumOf(x + c * N, N));
}

/// Each thread's scratch for the layers taken in batch chunks: an im2col (or sub-pixel) buffer and,
/// when the chunks are spread over threads, partial sums of a weight gradient.
struct Scratch {
    int threads = 1;
    int64_t colFloats = 0, partFloats = 0;
    float* col = nullptr;   ///< threads × colFloats
    float* part = nullptr;  ///< threads × partFloats (only with threads > 1)
    float* colOf(int t) const { return col + t * colFloats; }
};

/// Runs fn(b0, n, t) over the chunks [b0, b0 + n) of nb samples that cover [0, B). On one intra-op
/// thread (or one chunk) in order on the calling thread, t = 0, the passes inside spreading over
/// threads as they will; else the chunks are spread over the threads, t the thread's index, with
/// OpenBLAS held to one thread meanwhile so that each product runs on the thread that calls it.
/// Returns whether the chunks ran in parallel (then each thread's partial sums are to be added up).
template <class F>
bool forChunks(const Scratch& s, int64_t B, int64_t nb, F&& fn) {
    const int64_t chunks = (B + nb - 1) / nb;
    if (s.threads <= 1 || chunks < 2) {
        for (int64_t b0 = 0; b0 < B; b0 += nb) fn(b0, std::min(nb, B - b0), 0);
        return false;
    }
    BlasThreads one(1);
    at::parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
        const int t = std::min(at::get_thread_num(), s.threads - 1);
        for (int64_t k = k0; k < k1; ++k) fn(k * nb, std::min(nb, B - k * nb), t);
    });
    return true;
}

/// Where chunk products of a weight gradient (size floats) go: straight into g on one thread, else
/// into each thread's zeroed partial sums (reducePartials adds them into g after the chunks).
float* partialOf(const Scratch& s, float* g, bool parallel, int t) { return parallel ? s.part + t * s.partFloats : g; }
void zeroPartials(const Scratch& s, int64_t size) {
    for (int t = 0; t < s.threads; ++t) std::memset(s.part + t * s.partFloats, 0, sizeof(float) * static_cast<size_t>(size));
}
void reducePartials(const Scratch& s, int64_t size, float* g) {
    for (int t = 0; t < s.threads; ++t) {
        const float* p = s.part + t * s.partFloats;
        for (int64_t i = 0; i < size; ++i) g[i] += p[i];
    }
}
bool chunksParallel(const Scratch& s, int64_t B, int64_t nb) { return s.threads > 1 && (B + nb - 1) / nb >= 2; }

/// A convolution (weight (Cout, Cin, k, k) read as (Cout × R)): y (Cout × B·P) = W · im2col(in).
void convForward(const Par& w, const Geo& g, const float* in, int64_t B, int64_t Cout, const Scratch& s, float* y) {
    const int64_t R = g.rows(), P = g.outPixels(), nb = chunkOf(R, P, B);
    forChunks(s, B, nb, [&](int64_t b0, int64_t n, int t) {
        float* col = s.colOf(t);
        im2col(in, g, b0, n, col);
        gemm(false, false, Cout, n * P, R, 1.f, w.p, R, col, n * P, 0.f, y + b0 * P, B * P);
    });
}

/// Backward of convForward: W's gradient added into its .grad, and, when din is given, the gradient
/// w.r.t. the input written into din (laid out as g's input).
void convBackward(const Par& w, const Geo& g, const float* in, int64_t B, int64_t Cout, const float* dy, const Scratch& s, float* din) {
    const int64_t R = g.rows(), P = g.outPixels(), nb = chunkOf(R, P, B);
    const bool par = chunksParallel(s, B, nb);
    if (par && w.g) zeroPartials(s, Cout * R);
    forChunks(s, B, nb, [&](int64_t b0, int64_t n, int t) {
        float* col = s.colOf(t);
        if (w.g) {
            im2col(in, g, b0, n, col);
            gemm(false, true, Cout, R, n * P, 1.f, dy + b0 * P, B * P, col, n * P, 1.f, partialOf(s, w.g, par, t), R);
        }
        if (din) {
            gemm(true, false, R, n * P, Cout, 1.f, w.p, R, dy + b0 * P, B * P, 0.f, col, n * P);
            col2im(col, g, b0, n, din);
        }
    });
    if (par && w.g) reducePartials(s, Cout * R, w.g);
}

// A stride-2, 4 × 4 transposed convolution with padding 1 (H × W → 2H × 2W) in sub-pixel form: the
// output pixels of each parity (ry, rx), (2m + ry, 2n + rx), form an H × W image that is a 2 × 2
// convolution of the input: input pixel (m + sy − 1, n + sx − 1), sy ∈ {ry, ry + 1}, sx ∈ {rx, rx + 1},
// through kernel tap (3 − 2sy + ry, 3 − 2sx + rx) (from oy = 2·iy − 1 + ky). So the layer is four
// products of inner dimension 4·Cin over shifted copies of the input, and nothing is scattered back.
// (Shi et al. 2016, "Is the deconvolution layer the same as a convolutional layer?", for the identity.)

/// Wsub (4 parities × Cout × 4·Cin), parity p = 2·ry + rx, column (2·sy' + sx')·Cin + ci with
/// sy = ry + sy', sx = rx + sx': the weight (Cin, Cout, 4, 4) of a transposed convolution regrouped.
void subPixelWeights(const float* w, int64_t Cin, int64_t Cout, float* wsub) {
    for (int64_t ry = 0; ry < 2; ++ry)
        for (int64_t rx = 0; rx < 2; ++rx)
            for (int64_t co = 0; co < Cout; ++co) {
                float* d = wsub + ((2 * ry + rx) * Cout + co) * 4 * Cin;
                for (int64_t sy = 0; sy < 2; ++sy)
                    for (int64_t sx = 0; sx < 2; ++sx) {
                        const int64_t ky = 3 - 2 * sy - ry, kx = 3 - 2 * sx - rx;
                        for (int64_t ci = 0; ci < Cin; ++ci) d[(2 * sy + sx) * Cin + ci] = w[((ci * Cout + co) * 4 + ky) * 4 + kx];
                    }
            }
}

/// The shifted copies of channel ci of samples [b0, b0 + nb) of x (Cin, B, H, W), H, W ≤ 16: for
/// each rx, a buffer g[rx] of 6·Cin rows × nb·H·W, row (2·sy + sx')·Cin + ci (sy 0..2, sx' 0..1),
/// column (b, m, n) holding x(ci, b0 + b, m + sy − 1, n + rx + sx' − 1), 0 outside the image.
GW_SIMD void subPixelGatherChannelBody(const float* x, int64_t Cin, int64_t B, int64_t H, int64_t W, int64_t ci, int64_t b0,
                                       int64_t nb, float* g0, float* g1) {
    const int64_t HW = H * W, ld = nb * HW, Wp = W + 2;
    float img[18 * 18] = {};  // the image with a border of zeros
    for (int64_t b = 0; b < nb; ++b) {
        const float* s = x + (ci * B + b0 + b) * HW;
        for (int64_t y = 0; y < H; ++y)
            for (int64_t xx = 0; xx < W; ++xx) img[(y + 1) * Wp + xx + 1] = s[y * W + xx];
        for (int64_t sy = 0; sy < 3; ++sy)
            for (int64_t k = 0; k < 4; ++k) {  // k = 2·rx + sx': the column shift rx + sx'
                const int64_t rx = k >> 1, sx = k & 1, shift = rx + sx;
                float* d = (rx ? g1 : g0) + ((2 * sy + sx) * Cin + ci) * ld + b * HW;
                for (int64_t m = 0; m < H; ++m) {
                    const float* r = img + (m + sy) * Wp + shift;
                    for (int64_t n = 0; n < W; ++n) d[m * W + n] = r[n];
                }
            }
    }
}
GW_DISPATCH(void, subPixelGatherChannel,
            (const float* x, int64_t Cin, int64_t B, int64_t H, int64_t W, int64_t ci, int64_t b0, int64_t nb, float* g0, float* g1),
            (x, Cin, B, H, W, ci, b0, nb, g0, g1))

/// y (channels [c0, c1), samples [b0, b0 + nb)) from the four parity products t (4 × Cout × nb·H·W):
/// y(c, b0 + b, 2m + ry, 2n + rx) = t[2ry + rx](c, (b, m, n)) + bias[c].
GW_SIMD void subPixelInterleaveBody(const float* t, const float* bias, int64_t Cout, int64_t B, int64_t H, int64_t W, int64_t b0,
                                    int64_t nb, int64_t c0, int64_t c1, float* y) {
    const int64_t HW = H * W, ld = nb * HW, Wo = 2 * W, HWo = 4 * HW;
    for (int64_t c = c0; c < c1; ++c) {
        const float v = bias[c];
        for (int64_t b = 0; b < nb; ++b)
            for (int64_t m = 0; m < H; ++m)
                for (int64_t ry = 0; ry < 2; ++ry) {
                    const float* s0 = t + ((2 * ry) * Cout + c) * ld + b * HW + m * W;
                    const float* s1 = s0 + Cout * ld;
                    float* row = y + (c * B + b0 + b) * HWo + (2 * m + ry) * Wo;
                    for (int64_t n = 0; n < W; ++n) {
                        row[2 * n] = s0[n] + v;
                        row[2 * n + 1] = s1[n] + v;
                    }
                }
    }
}
GW_DISPATCH(void, subPixelInterleave,
            (const float* t, const float* bias, int64_t Cout, int64_t B, int64_t H, int64_t W, int64_t b0, int64_t nb, int64_t c0,
             int64_t c1, float* y),
            (t, bias, Cout, B, H, W, b0, nb, c0, c1, y))

/// A transposed convolution k4 s2 p1 (weight (Cin, Cout, 4, 4)) from x (Cin, B, H, W) into
/// y (Cout, B, 2H, 2W) plus bias, in sub-pixel form (above). wsub: 16·Cin·Cout floats; each chunk of
/// subPixelChunk samples takes (12·Cin + 4·Cout)·H·W floats a sample of its thread's scratch (the
/// shifted copies, then the four products), within 2 · kColFloats unless one sample needs more.
int64_t subPixelChunk(int64_t Cin, int64_t Cout, int64_t HW, int64_t B) {
    return std::clamp<int64_t>(2 * kColFloats / ((12 * Cin + 4 * Cout) * HW), 1, B);
}

void convTForward(const Par& w, const Par& bias, int64_t H, int64_t W, const float* x, int64_t B, int64_t Cin, int64_t Cout,
                  float* wsub, const Scratch& s, float* y) {
    subPixelWeights(w.p, Cin, Cout, wsub);
    const int64_t HW = H * W, nb = subPixelChunk(Cin, Cout, HW, B);
    forChunks(s, B, nb, [&](int64_t b0, int64_t n, int th) {
        const int64_t ld = n * HW;
        float* g0 = s.colOf(th);
        float* g1 = g0 + 6 * Cin * ld;
        float* t = g1 + 6 * Cin * ld;
        at::parallel_for(0, Cin, 1, [&](int64_t c0, int64_t c1) {
            for (int64_t ci = c0; ci < c1; ++ci) subPixelGatherChannel(x, Cin, B, H, W, ci, b0, n, g0, g1);
        });
        for (int64_t ry = 0; ry < 2; ++ry)
            for (int64_t rx = 0; rx < 2; ++rx)
                gemm(false, false, Cout, ld, 4 * Cin, 1.f, wsub + (2 * ry + rx) * Cout * 4 * Cin, 4 * Cin,
                     (rx ? g1 : g0) + ry * 2 * Cin * ld, ld, 0.f, t + (2 * ry + rx) * Cout * ld, ld);
        at::parallel_for(0, Cout, 1, [&](int64_t c0, int64_t c1) { subPixelInterleave(t, bias.p, Cout, B, H, W, b0, n, c0, c1, y); });
    });
}

// The same layer computed directly, for the decoder's 8 × 8 and 16 × 16 inputs: one output row of
// each parity (W pixels, one or half a vector) for kCoBlock output channels at a time is accumulated in
// registers over the input channels and the 3 × 3 input shifts (each shift feeds one, two or four
// parities), reading a zero-bordered copy of the input; no copies of shifted inputs and no packing of
// the products' operands, whose outer dimensions (16 to 64 channels) are too small to amortise it.
constexpr int kCoBlock = 4;

/// wd (Cin × 4 parities × 4 taps × Cout), tap 2·sy' + sx' as in subPixelWeights.
void subPixelDirectWeights(const float* w, int64_t Cin, int64_t Cout, float* wd) {
    for (int64_t ci = 0; ci < Cin; ++ci)
        for (int64_t p = 0; p < 4; ++p)
            for (int64_t tap = 0; tap < 4; ++tap) {
                const int64_t ry = p >> 1, rx = p & 1, ky = 3 - 2 * (tap >> 1) - ry, kx = 3 - 2 * (tap & 1) - rx;
                for (int64_t co = 0; co < Cout; ++co) wd[((ci * 4 + p) * 4 + tap) * Cout + co] = w[((ci * Cout + co) * 4 + ky) * 4 + kx];
            }
}

/// xp (Cin·B images of (W + 2) × (W + 2)): x (Cin, B, W, W) with a border of zeros.
void padImages(const float* x, int64_t images, int64_t W, float* xp) {
    const int64_t Wp = W + 2;
    at::parallel_for(0, images, 16, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            float* d = xp + i * Wp * Wp;
            std::memset(d, 0, sizeof(float) * static_cast<size_t>(Wp));
            for (int64_t r = 0; r < W; ++r) {
                float* row = d + (r + 1) * Wp;
                row[0] = row[W + 1] = 0.f;
                std::memcpy(row + 1, x + (i * W + r) * W, sizeof(float) * static_cast<size_t>(W));
            }
            std::memset(d + (W + 1) * Wp, 0, sizeof(float) * static_cast<size_t>(Wp));
        }
    });
}

/// y (Cout, B, 2W, 2W) for samples [b0, b1) = the transposed convolution of the padded input xp plus bias.
template <int W>
GW_SIMD void subPixelDirectBody(const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0,
                                int64_t b1, float* y) {
    constexpr int Wp = W + 2, Wo = 2 * W;
    constexpr int64_t HWo = 4 * W * W;
    for (int64_t b = b0; b < b1; ++b)
        for (int64_t co0 = 0; co0 < Cout; co0 += kCoBlock)
            for (int m = 0; m < W; ++m) {
                float acc[4][kCoBlock][W] = {};
                for (int64_t ci = 0; ci < Cin; ++ci) {
                    const float* base = xp + ((ci * B + b) * Wp + m) * Wp;
                    const float* wc = wd + ci * 16 * Cout + co0;
#pragma GCC unroll 3
                    for (int sy = 0; sy < 3; ++sy)
#pragma GCC unroll 3
                        for (int sx = 0; sx < 3; ++sx) {
                            float r[W];
                            for (int n = 0; n < W; ++n) r[n] = base[sy * Wp + sx + n];
#pragma GCC unroll 2
                            for (int ry = 0; ry < 2; ++ry) {
                                const int syp = sy - ry;
                                if (syp < 0 || syp > 1) continue;
#pragma GCC unroll 2
                                for (int rx = 0; rx < 2; ++rx) {
                                    const int sxp = sx - rx;
                                    if (sxp < 0 || sxp > 1) continue;
                                    const int p = 2 * ry + rx;
                                    const float* wv = wc + (p * 4 + 2 * syp + sxp) * Cout;
#pragma GCC unroll 4
                                    for (int co = 0; co < kCoBlock; ++co)
                                        for (int n = 0; n < W; ++n) acc[p][co][n] += wv[co] * r[n];
                                }
                            }
                        }
                }
                for (int co = 0; co < kCoBlock; ++co) {
                    const float v = bias[co0 + co];
                    for (int ry = 0; ry < 2; ++ry) {
                        float* row = y + ((co0 + co) * B + b) * HWo + (2 * m + ry) * Wo;
                        for (int n = 0; n < W; ++n) {
                            row[2 * n] = acc[2 * ry][co][n] + v;
                            row[2 * n + 1] = acc[2 * ry + 1][co][n] + v;
                        }
                    }
                }
            }
}
/// subPixelDirectBody for 8 × 8 inputs, whose rows are half a vector: vectorised over KCO output
/// channels instead (Cout a multiple of KCO), one parity and one row of 8 pixels at a time, so that
/// each weight vector loaded serves 8 pixels and each input value broadcast serves KCO channels.
template <int KCO>
GW_SIMD void subPixelDirectCoBody(const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0,
                                  int64_t b1, float* y) {
    constexpr int W = 8, Wp = W + 2, Wo = 2 * W;
    constexpr int64_t HWo = 4 * W * W;
    for (int64_t b = b0; b < b1; ++b)
        for (int64_t co0 = 0; co0 < Cout; co0 += KCO)
            for (int m = 0; m < W; ++m)
                for (int p = 0; p < 4; ++p) {
                    const int ry = p >> 1, rx = p & 1;
                    float acc[W][KCO] = {};
                    for (int64_t ci = 0; ci < Cin; ++ci) {
                        const float* base = xp + ((ci * B + b) * Wp + m + ry) * Wp + rx;
                        const float* wc = wd + (ci * 4 + p) * 4 * Cout + co0;
#pragma GCC unroll 4
                        for (int tap = 0; tap < 4; ++tap) {
                            const float* wv = wc + tap * Cout;
                            const float* xr = base + (tap >> 1) * Wp + (tap & 1);
#pragma GCC unroll 8
                            for (int j = 0; j < W; ++j) {
                                const float xv = xr[j];
                                for (int c = 0; c < KCO; ++c) acc[j][c] += xv * wv[c];
                            }
                        }
                    }
                    for (int c = 0; c < KCO; ++c) {
                        float* o = y + ((co0 + c) * B + b) * HWo + (2 * m + ry) * Wo + rx;
                        const float v = bias[co0 + c];
                        for (int j = 0; j < W; ++j) o[2 * j] = acc[j][c] + v;
                    }
                }
}
GW_SIMD void subPixelDirectCo8Body(const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0,
                                   int64_t b1, float* y) {
    if (Cout % 32 == 0) subPixelDirectCoBody<32>(xp, wd, bias, Cin, Cout, B, b0, b1, y);
    else subPixelDirectCoBody<16>(xp, wd, bias, Cin, Cout, B, b0, b1, y);
}
GW_DISPATCH(void, subPixelDirectCo8,
            (const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0, int64_t b1, float* y),
            (xp, wd, bias, Cin, Cout, B, b0, b1, y))
GW_SIMD void subPixelDirect16Body(const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0,
                                  int64_t b1, float* y) {
    subPixelDirectBody<16>(xp, wd, bias, Cin, Cout, B, b0, b1, y);
}
GW_SIMD void subPixelDirect8Body(const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0,
                                 int64_t b1, float* y) {
    subPixelDirectBody<8>(xp, wd, bias, Cin, Cout, B, b0, b1, y);
}
GW_DISPATCH(void, subPixelDirect16,
            (const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0, int64_t b1, float* y),
            (xp, wd, bias, Cin, Cout, B, b0, b1, y))
GW_DISPATCH(void, subPixelDirect8,
            (const float* xp, const float* wd, const float* bias, int64_t Cin, int64_t Cout, int64_t B, int64_t b0, int64_t b1, float* y),
            (xp, wd, bias, Cin, Cout, B, b0, b1, y))

/// Whether convTForwardDirect takes a layer: an 8 × 8 or 16 × 16 input, Cout a multiple of kCoBlock.
bool directTakes(int64_t W, int64_t Cout) { return (W == 8 || W == 16) && Cout % kCoBlock == 0; }

/// convTForward for a layer directTakes: wd 16·Cin·Cout floats, xp Cin·B·(W + 2)² floats.
/// With x null, xp already holds the padded input (a batch norm wrote it there: PadTo).
void convTForwardDirect(const Par& w, const Par& bias, int64_t W, const float* x, int64_t B, int64_t Cin, int64_t Cout, float* wd,
                        float* xp, float* y) {
    subPixelDirectWeights(w.p, Cin, Cout, wd);
    if (x) padImages(x, Cin * B, W, xp);
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        if (W == 16) subPixelDirect16(xp, wd, bias.p, Cin, Cout, B, b0, b1, y);
        else if (Cout % 16 == 0) subPixelDirectCo8(xp, wd, bias.p, Cin, Cout, B, b0, b1, y);
        else subPixelDirect8(xp, wd, bias.p, Cin, Cout, B, b0, b1, y);
    });
}

/// Backward of convTForward: W's gradient added into its .grad, and dx (Cin × B·P) overwritten with
/// the gradient w.r.t. x (the bias's gradient comes from the norm after it: bnReluBackward).
void convTBackward(const Par& w, const Geo& g, const float* x, int64_t B, int64_t Cin, const float* dy, const Scratch& s, float* dx) {
    const int64_t R = g.rows(), P = g.outPixels(), nb = chunkOf(R, P, B);
    const bool par = chunksParallel(s, B, nb);
    if (par && w.g) zeroPartials(s, Cin * R);
    forChunks(s, B, nb, [&](int64_t b0, int64_t n, int t) {
        float* col = s.colOf(t);
        im2col(dy, g, b0, n, col);
        if (w.g) gemm(false, true, Cin, R, n * P, 1.f, x + b0 * P, B * P, col, n * P, 1.f, partialOf(s, w.g, par, t), R);
        gemm(false, false, Cin, n * P, R, 1.f, w.p, R, col, n * P, 0.f, dx + b0 * P, B * P);
    });
    if (par && w.g) reducePartials(s, Cin * R, w.g);
}

// The backward of the same layer computed directly (decoder layers with Cin a multiple of 32 and
// input rows a multiple of 8 pixels wide), from a copy of the output gradient with a border of zeros
// (dyPad (Cout, B, 2H + 2, 2W + 2)), so that no tap needs a bounds check:
//   dx(ci, b, iy, ix) = Σ_co Σ_ky,kx dy(co, b, 2iy − 1 + ky, 2ix − 1 + kx) · W(ci, co, ky, kx)
// (a stride-2 convolution of dy: each output pixel of a parity feeds the input pixels its 2 × 2
// sub-pixel kernel read) and
//   ∂W(ci, co, ky, kx) = Σ_b,iy,ix x(ci, b, iy, ix) · dy(co, b, 2iy − 1 + ky, 2ix − 1 + kx).
// Both are vectorised over blocks of 32 input channels with the gradient's values broadcast, so
// the stride-2 reads of dy are scalar loads and no shifted copies (im2col) of dy are made.
constexpr int kBackPix = 8;

/// Whether convTBackwardDirect takes a layer: Cin a multiple of 32, W a multiple of kBackPix. (Blocks
/// of 16 channels, one AVX-512 vector, were tried: GCC 12 turns the weight gradient's loop into
/// shuffles, 30 times slower; those layers keep the im2col products.)
bool directBackTakes(int64_t W, int64_t Cin) { return Cin % 32 == 0 && W % kBackPix == 0; }

/// wT (Cout × 16 taps × Cin) from the weight (Cin, Cout, 4, 4).
void backDirectWeights(const float* w, int64_t Cin, int64_t Cout, float* wT) {
    for (int64_t ci = 0; ci < Cin; ++ci)
        for (int64_t co = 0; co < Cout; ++co)
            for (int64_t k = 0; k < 16; ++k) wT[(co * 16 + k) * Cin + ci] = w[(ci * Cout + co) * 16 + k];
}

/// dx (Cin, B, H, W) for samples [b0, b1), overwritten: the input gradient above, KCI channels at a
/// time (Cin a multiple of KCI), kBackPix pixels of a row at a time.
template <int KCI>
GW_SIMD void convTBackInputBody(const float* dyp, const float* wT, int64_t Cin, int64_t Cout, int64_t B, int64_t H, int64_t W,
                                int64_t b0, int64_t b1, float* dx) {
    const int64_t Wop = 2 * W + 2, plane = (2 * H + 2) * Wop, HW = H * W;
    for (int64_t b = b0; b < b1; ++b)
        for (int64_t ci0 = 0; ci0 < Cin; ci0 += KCI)
            for (int64_t iy = 0; iy < H; ++iy)
                for (int64_t ix0 = 0; ix0 < W; ix0 += kBackPix) {
                    float acc[kBackPix][KCI] = {};
                    for (int64_t co = 0; co < Cout; ++co) {
                        const float* d0 = dyp + (co * B + b) * plane + 2 * iy * Wop + 2 * ix0;
                        const float* wc = wT + co * 16 * Cin + ci0;
#pragma GCC unroll 4
                        for (int ky = 0; ky < 4; ++ky)
#pragma GCC unroll 4
                            for (int kx = 0; kx < 4; ++kx) {
                                const float* wv = wc + (ky * 4 + kx) * Cin;
                                const float* dr = d0 + ky * Wop + kx;
#pragma GCC unroll 8
                                for (int j = 0; j < kBackPix; ++j) {
                                    const float dv = dr[2 * j];
                                    for (int c = 0; c < KCI; ++c) acc[j][c] += dv * wv[c];
                                }
                            }
                    }
                    for (int c = 0; c < KCI; ++c) {
                        float* o = dx + ((ci0 + c) * B + b) * HW + iy * W + ix0;
                        for (int j = 0; j < kBackPix; ++j) o[j] = acc[j][c];
                    }
                }
}

/// gwT (Cout × 16 taps × Cin, the layout of wT) += the weight gradient above for output channels
/// [co0, co1), from xt (B, H, W, Cin) (x with its channels last): per sample, KCI input channels × 8
/// taps (half the kernel's rows) at a time in registers, added into gwT after each sample.
template <int KCI>
GW_SIMD void convTBackWeightBody(const float* xt, const float* dyp, int64_t Cin, int64_t Cout, int64_t B, int64_t H, int64_t W,
                                 int64_t co0, int64_t co1, float* gwT) {
    const int64_t Wop = 2 * W + 2, plane = (2 * H + 2) * Wop;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t co = co0; co < co1; ++co)
            for (int64_t ci0 = 0; ci0 < Cin; ci0 += KCI)
                for (int kyh = 0; kyh < 2; ++kyh) {
                    float acc[8][KCI] = {};
                    for (int64_t iy = 0; iy < H; ++iy) {
                        const float* d0 = dyp + (co * B + b) * plane + (2 * iy + 2 * kyh) * Wop;
                        const float* xr = xt + (b * H + iy) * W * Cin + ci0;
                        for (int64_t ix = 0; ix < W; ++ix) {
                            const float* xv = xr + ix * Cin;
                            const float* dr = d0 + 2 * ix;
#pragma GCC unroll 8
                            for (int t = 0; t < 8; ++t) {
                                const float dv = dr[(t >> 2) * Wop + (t & 3)];
                                for (int c = 0; c < KCI; ++c) acc[t][c] += dv * xv[c];
                            }
                        }
                    }
                    for (int t = 0; t < 8; ++t) {
                        float* g = gwT + (co * 16 + (2 * kyh + (t >> 2)) * 4 + (t & 3)) * Cin + ci0;
                        for (int c = 0; c < KCI; ++c) g[c] += acc[t][c];
                    }
                }
}

GW_SIMD void convTBackInputKBody(const float* dyp, const float* wT, int64_t Cin, int64_t Cout, int64_t B, int64_t H, int64_t W,
                                 int64_t b0, int64_t b1, float* dx) {
    convTBackInputBody<32>(dyp, wT, Cin, Cout, B, H, W, b0, b1, dx);
}
GW_DISPATCH(void, convTBackInputK,
            (const float* dyp, const float* wT, int64_t Cin, int64_t Cout, int64_t B, int64_t H, int64_t W, int64_t b0, int64_t b1,
             float* dx),
            (dyp, wT, Cin, Cout, B, H, W, b0, b1, dx))
GW_SIMD void convTBackWeightKBody(const float* xt, const float* dyp, int64_t Cin, int64_t Cout, int64_t B, int64_t H, int64_t W,
                                  int64_t co0, int64_t co1, float* gwT) {
    convTBackWeightBody<32>(xt, dyp, Cin, Cout, B, H, W, co0, co1, gwT);
}
GW_DISPATCH(void, convTBackWeightK,
            (const float* xt, const float* dyp, int64_t Cin, int64_t Cout, int64_t B, int64_t H, int64_t W, int64_t co0, int64_t co1,
             float* gwT),
            (xt, dyp, Cin, Cout, B, H, W, co0, co1, gwT))

/// xt (B, HW, C) for samples [b0, b1) from x (C, B, HW), C a multiple of 16 and HW of 16: in 16 × 16
/// tiles, so that both the reads and the writes are rows of 16 floats.
GW_SIMD void channelsLastBody(const float* x, int64_t C, int64_t B, int64_t HW, int64_t b0, int64_t b1, float* xt) {
    for (int64_t b = b0; b < b1; ++b)
        for (int64_t p0 = 0; p0 < HW; p0 += 16)
            for (int64_t c0 = 0; c0 < C; c0 += 16) {
                float t[16][16];
                for (int i = 0; i < 16; ++i) {
                    const float* s = x + ((c0 + i) * B + b) * HW + p0;
                    for (int j = 0; j < 16; ++j) t[j][i] = s[j];
                }
                for (int j = 0; j < 16; ++j) {
                    float* d = xt + (b * HW + p0 + j) * C + c0;
                    for (int i = 0; i < 16; ++i) d[i] = t[j][i];
                }
            }
}
GW_DISPATCH(void, channelsLast, (const float* x, int64_t C, int64_t B, int64_t HW, int64_t b0, int64_t b1, float* xt), (x, C, B, HW, b0, b1, xt))

/// channelsLast from zero-bordered images xp (C, B, H + 2, W + 2), W a multiple of 8.
GW_SIMD void channelsLastPaddedBody(const float* xp, int64_t C, int64_t B, int64_t H, int64_t W, int64_t b0, int64_t b1, float* xt) {
    const int64_t Wp = W + 2, HW = H * W, plane = (H + 2) * Wp;
    for (int64_t b = b0; b < b1; ++b)
        for (int64_t p0 = 0; p0 < HW; p0 += 16)
            for (int64_t c0 = 0; c0 < C; c0 += 16) {
                float t[16][16];
                for (int i = 0; i < 16; ++i) {
                    const float* s = xp + ((c0 + i) * B + b) * plane;
                    for (int h = 0; h < 16; h += 8) {  // 8 pixels of one row at a time
                        const int64_t p = p0 + h;
                        const float* r = s + (p / W + 1) * Wp + p % W + 1;
                        for (int j = 0; j < 8; ++j) t[h + j][i] = r[j];
                    }
                }
                for (int j = 0; j < 16; ++j) {
                    float* d = xt + (b * HW + p0 + j) * C + c0;
                    for (int i = 0; i < 16; ++i) d[i] = t[j][i];
                }
            }
}
GW_DISPATCH(void, channelsLastPadded, (const float* xp, int64_t C, int64_t B, int64_t H, int64_t W, int64_t b0, int64_t b1, float* xt),
            (xp, C, B, H, W, b0, b1, xt))

/// convTBackward for a layer directBackTakes (x (Cin, B, H, W); dyp (Cout, B, 2H + 2, 2W + 2), the
/// output gradient with a border of zeros, as bnReluBackward writes it with a PadOut), through the
/// arena's scratch: wT and, with a weight gradient, x with its channels last.
/// With xPadded, x is the layer's zero-bordered input (Cin, B, H + 2, W + 2) instead.
void convTBackwardDirect(Arena& ar, const Par& w, int64_t H, int64_t W, const float* x, bool xPadded, int64_t B, int64_t Cin, int64_t Cout,
                         const float* dyp, float* dx) {
    float* wT = ar.alloc(static_cast<size_t>(16 * Cin * Cout));
    backDirectWeights(w.p, Cin, Cout, wT);
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) { convTBackInputK(dyp, wT, Cin, Cout, B, H, W, b0, b1, dx); });
    if (!w.g) return;
    const int64_t HW = H * W;
    float* xt = ar.alloc(static_cast<size_t>(B * HW * Cin));
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
        if (xPadded) channelsLastPadded(x, Cin, B, H, W, b0, b1, xt);
        else channelsLast(x, Cin, B, HW, b0, b1, xt);
    });
    float* gwT = ar.zeros(static_cast<size_t>(16 * Cin * Cout));
    at::parallel_for(0, Cout, 1, [&](int64_t c0, int64_t c1) { convTBackWeightK(xt, dyp, Cin, Cout, B, H, W, c0, c1, gwT); });
    for (int64_t ci = 0; ci < Cin; ++ci)
        for (int64_t co = 0; co < Cout; ++co)
            for (int64_t k = 0; k < 16; ++k) w.g[(ci * Cout + co) * 16 + k] += gwT[(co * 16 + k) * Cin + ci];
}

// The output convolution (A/4 → C channels, k4, 32² → 32², one pixel of padding top and left, two
// bottom and right) is computed directly: with C ≤ 3 output channels its im2col product would be a
// matrix-vector product over a 16-fold copy of the input. Inputs are read from copies whose rows are
// kPitch wide with the 32 pixels at kOff, zeros around, so that every inner loop is 32 wide.
constexpr int64_t kPitch = 40, kOff = 4;

/// o (NC, B, 32, 32) for samples [b0, b1): o = W ∗ a, W (NC, Cin, 4, 4), a padded (Cin, B, 32, kPitch).
template <int NC>
GW_SIMD void outConvForwardBody(const float* w, const float* ap, int64_t Cin,
                                                                             int64_t B, int64_t b0, int64_t b1, float* o) {
    for (int64_t b = b0; b < b1; ++b)
        for (int64_t y = 0; y < 32; ++y) {
            float acc[NC][32] = {};
            for (int64_t ci = 0; ci < Cin; ++ci)
                for (int64_t ky = 0; ky < 4; ++ky) {
                    const int64_t iy = y + ky - 1;
                    if (iy < 0 || iy >= 32) continue;
                    const float* row = ap + ((ci * B + b) * 32 + iy) * kPitch + kOff - 1;
                    for (int co = 0; co < NC; ++co)
                        for (int64_t kx = 0; kx < 4; ++kx) {
                            const float wv = w[((co * Cin + ci) * 4 + ky) * 4 + kx];
                            for (int x = 0; x < 32; ++x) acc[co][x] += wv * row[x + kx];
                        }
                }
            for (int co = 0; co < NC; ++co) std::memcpy(o + ((co * B + b) * 32 + y) * 32, acc[co], sizeof(acc[co]));
        }
}

/// gw (NC, Cin, 4, 4) += Σ dO ⋆ a for input channels [c0, c1); dO padded (NC, B, 32, kPitch).
template <int NC>
GW_SIMD void outConvWeightGradBody(const float* dOp, const float* ap, int64_t Cin,
                                                                                int64_t B, int64_t c0, int64_t c1, float* gw) {
    for (int64_t ci = c0; ci < c1; ++ci) {
        float acc[NC][16][32] = {};
        for (int64_t b = 0; b < B; ++b)
            for (int64_t iy = 0; iy < 32; ++iy) {
                const float* row = ap + ((ci * B + b) * 32 + iy) * kPitch + kOff - 1;
                for (int64_t ky = 0; ky < 4; ++ky) {
                    const int64_t y = iy - ky + 1;
                    if (y < 0 || y >= 32) continue;
                    for (int co = 0; co < NC; ++co) {
                        const float* d = dOp + ((co * B + b) * 32 + y) * kPitch + kOff;
                        for (int64_t kx = 0; kx < 4; ++kx) {
                            float* a = acc[co][ky * 4 + kx];
                            for (int x = 0; x < 32; ++x) a[x] += d[x] * row[x + kx];
                        }
                    }
                }
            }
        for (int co = 0; co < NC; ++co)
            for (int k = 0; k < 16; ++k) {
                float sum = 0;
                for (int x = 0; x < 32; ++x) sum += acc[co][k][x];
                gw[(co * Cin + ci) * 16 + k] += sum;
            }
    }
}

/// da (Cin, B, 32, 32) for input channels [c0, c1), overwritten: the gradient w.r.t. a of o = W ∗ a.
template <int NC>
GW_SIMD void outConvInputGradBody(const float* w, const float* dOp, int64_t Cin,
                                                                               int64_t B, int64_t c0, int64_t c1, float* da) {
    for (int64_t ci = c0; ci < c1; ++ci)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t iy = 0; iy < 32; ++iy) {
                float acc[32] = {};
                for (int co = 0; co < NC; ++co)
                    for (int64_t ky = 0; ky < 4; ++ky) {
                        const int64_t y = iy - ky + 1;
                        if (y < 0 || y >= 32) continue;
                        const float* d = dOp + ((co * B + b) * 32 + y) * kPitch + kOff + 1;
                        for (int64_t kx = 0; kx < 4; ++kx) {
                            const float wv = w[((co * Cin + ci) * 4 + ky) * 4 + kx];
                            for (int x = 0; x < 32; ++x) acc[x] += wv * d[x - kx];
                        }
                    }
                std::memcpy(da + ((ci * B + b) * 32 + iy) * 32, acc, sizeof(acc));
            }
}

GW_SIMD void outConvForwardKBody(int64_t NC, const float* w, const float* ap, int64_t Cin, int64_t B, int64_t b0, int64_t b1, float* o) {
    if (NC == 1) outConvForwardBody<1>(w, ap, Cin, B, b0, b1, o);
    else outConvForwardBody<3>(w, ap, Cin, B, b0, b1, o);
}
GW_DISPATCH(void, outConvForwardK, (int64_t NC, const float* w, const float* ap, int64_t Cin, int64_t B, int64_t b0, int64_t b1, float* o),
            (NC, w, ap, Cin, B, b0, b1, o))
GW_SIMD void outConvWeightGradKBody(int64_t NC, const float* dOp, const float* ap, int64_t Cin, int64_t B, int64_t c0, int64_t c1, float* gw) {
    if (NC == 1) outConvWeightGradBody<1>(dOp, ap, Cin, B, c0, c1, gw);
    else outConvWeightGradBody<3>(dOp, ap, Cin, B, c0, c1, gw);
}
GW_DISPATCH(void, outConvWeightGradK, (int64_t NC, const float* dOp, const float* ap, int64_t Cin, int64_t B, int64_t c0, int64_t c1, float* gw),
            (NC, dOp, ap, Cin, B, c0, c1, gw))
GW_SIMD void outConvInputGradKBody(int64_t NC, const float* w, const float* dOp, int64_t Cin, int64_t B, int64_t c0, int64_t c1, float* da) {
    if (NC == 1) outConvInputGradBody<1>(w, dOp, Cin, B, c0, c1, da);
    else outConvInputGradBody<3>(w, dOp, Cin, B, c0, c1, da);
}
GW_DISPATCH(void, outConvInputGradK, (int64_t NC, const float* w, const float* dOp, int64_t Cin, int64_t B, int64_t c0, int64_t c1, float* da),
            (NC, w, dOp, Cin, B, c0, c1, da))

void outConvForwardAll(int64_t NC, const float* w, const float* ap, int64_t Cin, int64_t B, float* o) {
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) { outConvForwardK(NC, w, ap, Cin, B, b0, b1, o); });
}

void outConvBackwardAll(int64_t NC, const float* w, const float* dOp, const float* ap, int64_t Cin, int64_t B, float* gw, float* da) {
    at::parallel_for(0, Cin, 1, [&](int64_t c0, int64_t c1) {
        if (gw) outConvWeightGradK(NC, dOp, ap, Cin, B, c0, c1, gw);
        outConvInputGradK(NC, w, dOp, Cin, B, c0, c1, da);
    });
}

bool switchedOff() {
    const char* env = std::getenv("GW_CPU_STEP");
    return env && std::strcmp(env, "0") == 0;
}

}  // namespace

std::string ConvVaeStep::unsupported(DomainModule& m, const torch::Tensor& x) {
    const auto sh = convVaeShape(m);
    if (!sh) return "module '" + m.kind() + "' has no hand-written pre-training step";
    if (switchedOff()) return "switched off";
    if (!blasAvailable()) return "no BLAS sgemm_ in the process";
    if (!m.is_training()) return "the module is in eval mode";
    for (const auto& p : m.parameters()) {
        if (!p.device().is_cpu() || p.scalar_type() != torch::kFloat32 || !p.is_contiguous())
            return "parameters are not contiguous float32 on the CPU";
        if (!p.requires_grad()) return "some parameters are frozen";
    }
    for (const auto& b : m.buffers())
        if (!b.device().is_cpu() || !b.is_contiguous()) return "buffers are not contiguous on the CPU";
    if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat32) return "images are not float32 on the CPU";
    if (x.dim() != 4 || x.size(0) < 2 || x.size(1) != sh->channels || x.size(2) != sh->imageSize || x.size(3) != sh->imageSize)
        return "images of shape " + shapeString(x) + " (expected (B >= 2, C, S, S))";
    return "";
}

LossOutput ConvVaeStep::run(DomainModule& m, const torch::Tensor& xIn) {
    const ConvVaeShape sh = *convVaeShape(m);
    const auto x = xIn.contiguous();
    const float* xp = x.data_ptr<float>();
    const int64_t B = x.size(0), C = sh.channels, S = sh.imageSize, A = sh.aeDim, L = sh.latent;
    const int64_t off = (32 - S) / 2;  // 28-pixel images sit in the middle of the 32-pixel frame
    Arena& ar = arena_;
    ar.reset();
    auto params = m.named_parameters();
    auto buffers = m.named_buffers();
    auto par = [&](const std::string& name) {
        Par p;
        p.t = params[name];
        p.p = p.t.data_ptr<float>();
        p.g = gradPtr(p.t);
        return p;
    };
    auto bnOf = [&](const std::string& prefix) {
        Bn bn;
        bn.gamma = par(prefix + ".weight");
        bn.beta = par(prefix + ".bias");
        bn.runMean = buffers[prefix + ".running_mean"].data_ptr<float>();
        bn.runVar = buffers[prefix + ".running_var"].data_ptr<float>();
        bn.batches = buffers[prefix + ".num_batches_tracked"];
        return bn;
    };
    Scratch scratch;
    scratch.threads = std::max(1, at::get_num_threads());
    // OpenBLAS on one thread for the whole step: every large product runs in forChunks, one per
    // thread, and the rest are split by gemmSplit; a pool thread of OpenBLAS's own, woken by a product, would spin
    // (sched_yield) for its timeout against the intra-op threads that run the direct kernels.
    BlasThreads blasOne(scratch.threads > 1 ? 1 : 0);
    scratch.colFloats = std::max(2 * kColFloats, 4096 * std::max(C, A));
    scratch.col = ar.alloc(static_cast<size_t>(scratch.threads * scratch.colFloats));
    if (scratch.threads > 1) {
        scratch.partFloats = 8 * A * A;  // the largest weight (A × A/2 × 4 × 4)
        scratch.part = ar.alloc(static_cast<size_t>(scratch.threads * scratch.partFloats));
    }

    // Encoder: 4 × [Conv k4 s2 p1, BN, ReLU], (C, 32²) → (A, 2²), activations (c, b, y, x).
    struct EncLayer {
        Par w;
        Bn bn;
        Geo g;
        const float* in = nullptr;
        float *y = nullptr, *a = nullptr;
        int64_t co = 0;
    };
    EncLayer enc[4];
    const int64_t ch[5] = {C, A / 8, A / 4, A / 2, A};
    const float* in = xp;
    for (int i = 0; i < 4; ++i) {
        EncLayer& e = enc[i];
        e.w = par("encoder." + std::to_string(3 * i) + ".weight");
        e.bn = bnOf("encoder." + std::to_string(3 * i + 1));
        const int64_t H = i == 0 ? S : (32 >> i);
        e.g.C = ch[i];
        e.g.H = e.g.W = H;
        e.g.pt = e.g.pl = i == 0 ? 1 + off : 1;
        e.g.OH = e.g.OW = 16 >> i;
        e.g.bs = i == 0 ? C * S * S : H * H;
        e.g.cs = i == 0 ? S * S : B * H * H;
        e.co = ch[i + 1];
        e.in = in;
        const int64_t N = B * e.g.outPixels();
        e.y = ar.alloc(static_cast<size_t>(e.co * N));
        e.a = ar.alloc(static_cast<size_t>(e.co * N));
        convForward(e.w, e.g, in, B, e.co, scratch, e.y);
        bnReluForward(ar, e.bn, e.co, N, e.y, e.a);
        in = e.a;
    }
    // Flatten per sample, (c, y, x) → h (B × 4A); mean and log-variance (B × L).
    const int64_t F = 4 * A;
    float* h = ar.alloc(static_cast<size_t>(B * F));
    for (int64_t c = 0; c < A; ++c)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t p = 0; p < 4; ++p) h[b * F + c * 4 + p] = enc[3].a[(c * B + b) * 4 + p];
    Par wm = par("q_mean.weight"), bm = par("q_mean.bias"), wl = par("q_logvar.weight"), bl = par("q_logvar.bias");
    float* mean = ar.alloc(static_cast<size_t>(B * L));
    float* logvar = ar.alloc(static_cast<size_t>(B * L));
    gemm(false, true, B, L, F, 1.f, h, F, wm.p, F, 0.f, mean, L);
    gemm(false, true, B, L, F, 1.f, h, F, wl.p, F, 0.f, logvar, L);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < L; ++j) {
            mean[b * L + j] += bm.p[j];
            logvar[b * L + j] += bl.p[j];
        }
    // Reparameterisation: the noise drawn where the autograd step draws it (randn_like(mean)).
    const torch::Tensor epsT = torch::randn({B, L});
    const float* eps = epsT.data_ptr<float>();
    float* z = ar.alloc(static_cast<size_t>(B * L));
    float* sd = ar.alloc(static_cast<size_t>(B * L));
    for (int64_t k = 0; k < B * L; ++k) {
        sd[k] = std::exp(0.5f * logvar[k]);
        z[k] = mean[k] + sd[k] * eps[k];
    }

    // Decoder 1: ConvT(L → A, k8) from 1 × 1 is one product, (B × L) · (L × A·64), then (c, b, 64).
    Par w1 = par("decoder.0.weight"), b1 = par("decoder.0.bias");
    Bn bn1 = bnOf("decoder.1");
    float* t1 = ar.alloc(static_cast<size_t>(B * A * 64));
    gemmSplit(false, false, B, A * 64, L, 1.f, z, L, w1.p, A * 64, 0.f, t1, A * 64);
    float* y1 = ar.alloc(static_cast<size_t>(A * B * 64));
    at::parallel_for(0, A, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c)
            for (int64_t b = 0; b < B; ++b)
                for (int64_t k = 0; k < 64; ++k) y1[(c * B + b) * 64 + k] = t1[b * A * 64 + c * 64 + k] + b1.p[c];
    });
    // A transposed convolution whose forward and backward are both direct reads its input only
    // through a zero-bordered copy: the batch norm before it writes its output there (PadTo) and
    // nothing else (its backward recomputes the ReLU mask from y). Its input is 8 << i pixels wide.
    auto fusedInput = [&](int i) { return directTakes(8 << i, A >> (i + 1)) && directBackTakes(8 << i, A >> i); };
    auto padFor = [&](int i, float* dst) {
        PadTo t;
        t.images = B;
        t.H = t.W = 8 << i;
        t.pitch = t.W + 2;
        t.top = t.left = 1;
        t.imageFloats = t.pitch * t.pitch;
        t.dst = dst;
        return t;
    };
    float* a1 = nullptr;
    float* xpNext = nullptr;  // the next layer's padded input, when fusedInput
    if (fusedInput(0)) {
        xpNext = ar.alloc(static_cast<size_t>(A * B * 100));
        const PadTo to = padFor(0, xpNext);
        bnReluForward(ar, bn1, A, B * 64, y1, nullptr, &to);
    } else {
        a1 = ar.alloc(static_cast<size_t>(A * B * 64));
        bnReluForward(ar, bn1, A, B * 64, y1, a1);
    }
    // Decoders 2 and 3: ConvT k4 s2 p1, 8² → 16² → 32².
    struct DecLayer {
        Par w, bias;
        Bn bn;
        Geo g;  ///< the convolution this one transposes: its input is the layer's output
        const float* x = nullptr;  ///< the input (padded when xPadded)
        bool xPadded = false;
        float *y = nullptr, *a = nullptr;  ///< a null when the output went to padded images only
        int64_t ci = 0;
    };
    DecLayer dec[2];
    const float* xcur = a1;
    const int64_t C4 = A / 4;
    float* a3p = ar.alloc(static_cast<size_t>(C4 * B * 32 * kPitch));  // the output convolution's input
    for (int i = 0; i < 2; ++i) {
        DecLayer& d = dec[i];
        d.w = par("decoder." + std::to_string(3 + 3 * i) + ".weight");
        d.bias = par("decoder." + std::to_string(3 + 3 * i) + ".bias");
        d.bn = bnOf("decoder." + std::to_string(4 + 3 * i));
        d.ci = A >> i;
        const int64_t Hin = 8 << i, Ho = 2 * Hin;
        d.g.C = A >> (i + 1);
        d.g.H = d.g.W = Ho;
        d.g.pt = d.g.pl = 1;
        d.g.OH = d.g.OW = Hin;
        d.g.bs = Ho * Ho;
        d.g.cs = B * Ho * Ho;
        d.xPadded = xpNext != nullptr;
        d.x = d.xPadded ? xpNext : xcur;
        const int64_t N = B * Ho * Ho;
        d.y = ar.alloc(static_cast<size_t>(d.g.C * N));
        float* wsub = ar.alloc(static_cast<size_t>(16 * d.ci * d.g.C));
        if (d.xPadded) {
            convTForwardDirect(d.w, d.bias, Hin, nullptr, B, d.ci, d.g.C, wsub, xpNext, d.y);
        } else if (directTakes(Hin, d.g.C)) {
            float* xp = ar.alloc(static_cast<size_t>(d.ci * B * (Hin + 2) * (Hin + 2)));
            convTForwardDirect(d.w, d.bias, Hin, xcur, B, d.ci, d.g.C, wsub, xp, d.y);
        } else {
            convTForward(d.w, d.bias, Hin, Hin, xcur, B, d.ci, d.g.C, wsub, scratch, d.y);
        }
        xpNext = nullptr;
        if (i == 1) {  // straight into the output convolution's padded rows
            PadTo to;
            to.images = B;
            to.H = to.W = 32;
            to.pitch = kPitch;
            to.left = kOff;
            to.imageFloats = 32 * kPitch;
            to.dst = a3p;
            bnReluForward(ar, d.bn, d.g.C, N, d.y, nullptr, &to);
        } else if (fusedInput(i + 1)) {
            xpNext = ar.alloc(static_cast<size_t>(d.g.C * B * (Ho + 2) * (Ho + 2)));
            const PadTo to = padFor(i + 1, xpNext);
            bnReluForward(ar, d.bn, d.g.C, N, d.y, nullptr, &to);
        } else {
            d.a = ar.alloc(static_cast<size_t>(d.g.C * N));
            bnReluForward(ar, d.bn, d.g.C, N, d.y, d.a);
        }
        xcur = d.a;
    }
    // Decoder 4: zero pad right and bottom (a3p, written by the last norm), Conv(A/4 → C, k4 p1),
    // 32² → 32²; sigmoid.
    Par w4 = par("decoder.10.weight"), b4 = par("decoder.10.bias");
    float* o = ar.alloc(static_cast<size_t>(C * B * 1024));
    outConvForwardAll(C, w4.p, a3p, C4, B, o);

    // Loss: Σ ½(x̂ − x)² + ½ log 2π over the image's pixels, / B; β · KL / B. dO: d loss / d o.
    float* dO = ar.zeros(static_cast<size_t>(C * B * 32 * kPitch));  // rows padded as a3p's
    const float invB = 1.f / static_cast<float>(B);
    double* imageSq = reinterpret_cast<double*>(ar.alloc(static_cast<size_t>(2 * C * B)));  // per (c, b), summed in order after
    at::parallel_for(0, C * B, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t c = i / B, b = i % B;
            const float* img = xp + (b * C + c) * S * S;
            const int64_t base = (c * B + b) * 1024;
            const float bias = b4.p[c];
            double s2 = 0;
            for (int64_t yy = 0; yy < S; ++yy) {
                const float* orow = o + base + (yy + off) * 32 + off;
                float* drow = dO + ((c * B + b) * 32 + yy + off) * kPitch + kOff + off;
                const float* xrow = img + yy * S;
                float rowSq = 0;
                for (int64_t xx = 0; xx < S; ++xx) {
                    const float r = 1.f / (1.f + std::exp(-(orow[xx] + bias)));
                    const float d = r - xrow[xx];
                    rowSq += d * d;
                    drow[xx] = d * invB * r * (1.f - r);
                }
                s2 += rowSq;
            }
            imageSq[i] = s2;
        }
    });
    double sq = 0;
    for (int64_t i = 0; i < C * B; ++i) sq += imageSq[i];
    const double pixels = static_cast<double>(C * S * S) * static_cast<double>(B);
    const double nll = (0.5 * sq + 0.5 * std::log(2 * M_PI) * pixels) / static_cast<double>(B);
    double klSum = 0;
    for (int64_t k = 0; k < B * L; ++k) klSum += 1.0 + logvar[k] - double(mean[k]) * mean[k] - std::exp(double(logvar[k]));
    const double kl = -0.5 * klSum / static_cast<double>(B);
    const double beta = sh.beta;

    // Backward. Decoder 4.
    addRowSums(dO, C, B * 32 * kPitch, b4.g);
    float* da3 = ar.alloc(static_cast<size_t>(C4 * B * 1024));
    outConvBackwardAll(C, w4.p, dO, a3p, C4, B, w4.g, da3);
    // Decoders 3 and 2.
    float* dcur = da3;
    for (int i = 1; i >= 0; --i) {
        DecLayer& d = dec[i];
        const int64_t N = B * d.g.H * d.g.W;
        float* dx = ar.alloc(static_cast<size_t>(d.ci * B * d.g.outPixels()));
        if (directBackTakes(d.g.OW, d.ci)) {
            PadOut pad;
            pad.images = B;
            pad.H = d.g.H;
            pad.W = d.g.W;
            pad.dst = ar.alloc(static_cast<size_t>(d.g.C * B * (d.g.H + 2) * (d.g.W + 2)));
            bnReluBackward(d.bn, d.g.C, N, d.y, d.a, dcur, d.bias.g, &pad);
            convTBackwardDirect(ar, d.w, d.g.OH, d.g.OW, d.x, d.xPadded, B, d.ci, d.g.C, pad.dst, dx);
        } else {
            bnReluBackward(d.bn, d.g.C, N, d.y, d.a, dcur, d.bias.g);
            convTBackward(d.w, d.g, d.x, B, d.ci, dcur, scratch, dx);
        }
        dcur = dx;
    }
    // Decoder 1.
    bnReluBackward(bn1, A, B * 64, y1, a1, dcur, b1.g);
    float* dt1 = t1;  // reused: (B × A·64)
    at::parallel_for(0, A, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c)
            for (int64_t b = 0; b < B; ++b)
                for (int64_t k = 0; k < 64; ++k) dt1[b * A * 64 + c * 64 + k] = dcur[(c * B + b) * 64 + k];
    });
    if (w1.g) gemmSplit(true, false, L, A * 64, B, 1.f, z, L, dt1, A * 64, 1.f, w1.g, A * 64);
    float* dz = ar.alloc(static_cast<size_t>(B * L));
    gemmSplit(false, true, B, L, A * 64, 1.f, dt1, A * 64, w1.p, A * 64, 0.f, dz, L);
    // Reparameterisation and KL.
    const float bB = static_cast<float>(beta) * invB;
    float* dmean = ar.alloc(static_cast<size_t>(B * L));
    float* dlogvar = ar.alloc(static_cast<size_t>(B * L));
    for (int64_t k = 0; k < B * L; ++k) {
        dmean[k] = dz[k] + bB * mean[k];
        dlogvar[k] = dz[k] * eps[k] * 0.5f * sd[k] - 0.5f * bB * (1.f - std::exp(logvar[k]));
    }
    // q_mean, q_logvar.
    if (wm.g) gemm(true, false, L, F, B, 1.f, dmean, L, h, F, 1.f, wm.g, F);
    if (wl.g) gemm(true, false, L, F, B, 1.f, dlogvar, L, h, F, 1.f, wl.g, F);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < L; ++j) {
            if (bm.g) bm.g[j] += dmean[b * L + j];
            if (bl.g) bl.g[j] += dlogvar[b * L + j];
        }
    float* dh = ar.alloc(static_cast<size_t>(B * F));
    gemm(false, false, B, F, L, 1.f, dmean, L, wm.p, F, 0.f, dh, F);
    gemm(false, false, B, F, L, 1.f, dlogvar, L, wl.p, F, 1.f, dh, F);
    // Encoder, last layer first.
    float* da = ar.alloc(static_cast<size_t>(A * B * 4));
    for (int64_t c = 0; c < A; ++c)
        for (int64_t b = 0; b < B; ++b)
            for (int64_t p = 0; p < 4; ++p) da[(c * B + b) * 4 + p] = dh[b * F + c * 4 + p];
    for (int i = 3; i >= 0; --i) {
        EncLayer& e = enc[i];
        const int64_t N = B * e.g.outPixels();
        bnReluBackward(e.bn, e.co, N, e.y, e.a, da);
        float* din = i > 0 ? ar.alloc(static_cast<size_t>(e.g.C * B * e.g.H * e.g.W)) : nullptr;
        convBackward(e.w, e.g, e.in, B, e.co, da, scratch, din);
        da = din;
    }

    LossOutput out;
    out.loss = torch::scalar_tensor(nll + beta * kl, torch::kFloat32);
    out.metrics.set("reconstruction", torch::scalar_tensor(nll, torch::kFloat32));
    out.metrics.set("kl", torch::scalar_tensor(kl, torch::kFloat32));
    out.metrics.set("mse", torch::scalar_tensor(sq / pixels, torch::kFloat32));
    return out;
}

std::optional<LossOutput> PretrainStep::run(DomainModule& m, const torch::Tensor& x, FlatAdamW& opt, double lr, double beta1) {
    const std::string why = ConvVaeStep::unsupported(m, x);
    if (why.empty()) {
        path_ = "hand-written";
        opt.zeroGrad();
        LossOutput out = conv_.run(m, x);
        opt.step(lr, beta1);
        return out;
    }
    path_ = "autograd (" + why + ")";
    auto out = m.computeDomainLoss(x);
    if (!out) return out;
    opt.zeroGrad();
    out->loss.backward();
    opt.step(lr, beta1);
    return out;
}

}  // namespace gw::cpu
