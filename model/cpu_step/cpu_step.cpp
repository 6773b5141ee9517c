// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/cpu_step/cpu_step.h"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>

namespace gw {

namespace {

// ---------------------------------------------------------------------------------------------------
// BLAS: the Fortran sgemm_ that LibTorch itself calls on the CPU, looked up at run time so that a
// LibTorch without a separate BLAS library (the pip wheels link MKL privately) still builds and runs
// the autograd step.
using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);

SgemmFn sgemmFn() {
    static const SgemmFn f = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
    return f;
}

/// Row-major C (m × n) = alpha · op(A) · op(B) + beta · C with op(A) (m × k) and op(B) (k × n). A
/// row-major matrix read column-major is its transpose, so this is Cᵀ = op(B)ᵀ op(A)ᵀ column-major.
void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    if (m == 0 || n == 0 || k == 0) return;  // never called so: every batch and layer is non-empty
    const char ta = transA ? 'T' : 'N', tb = transB ? 'T' : 'N';
    const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
    const int LDA = static_cast<int>(lda), LDB = static_cast<int>(ldb), LDC = static_cast<int>(ldc);
    sgemmFn()(&tb, &ta, &N, &M, &K, &alpha, b, &LDB, a, &LDA, &beta, c, &LDC);
}

/// While alive, OpenBLAS's own pool runs `n` threads (0: leave it as it is); restores the count after.
/// Other BLAS libraries are left alone (found at run time, like sgemm_).
class BlasThreads {
public:
    explicit BlasThreads(int n) {
        using Get = int (*)();
        static const auto get = reinterpret_cast<Get>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
        static const auto set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
        if (n <= 0 || !get || !set) return;
        set_ = set;
        before_ = get();
        if (before_ != n) set_(n);
        else set_ = nullptr;
    }
    ~BlasThreads() {
        if (set_) set_(before_);
    }
    BlasThreads(const BlasThreads&) = delete;
    BlasThreads& operator=(const BlasThreads&) = delete;

private:
    void (*set_)(int) = nullptr;
    int before_ = 0;
};

// ---------------------------------------------------------------------------------------------------
/// Float buffers handed out in the same order every step: after the first step nothing is allocated.
class Arena {
public:
    float* alloc(size_t n) {
        n = (n + 15) & ~size_t(15);
        while (block_ < blocks_.size() && used_ + n > blocks_[block_].size) {
            ++block_;
            used_ = 0;
        }
        if (block_ == blocks_.size()) {
            blocks_.push_back({std::make_unique<float[]>(std::max(n, kMinBlock)), std::max(n, kMinBlock)});
            used_ = 0;
        }
        float* p = blocks_[block_].data.get() + used_;
        used_ += n;
        return p;
    }
    float* zeros(size_t n) {
        float* p = alloc(n);
        std::memset(p, 0, n * sizeof(float));
        return p;
    }
    void reset() { block_ = used_ = 0; }

private:
    static constexpr size_t kMinBlock = size_t(1) << 18;
    struct Block {
        std::unique_ptr<float[]> data;
        size_t size;
    };
    std::vector<Block> blocks_;
    size_t block_ = 0, used_ = 0;
};

// ---------------------------------------------------------------------------------------------------
/// Element-wise loops split across the intra-op threads above this many elements (the wide
/// benchmark's 2048 x 1024 activations); the small GWs that run on one thread never split.
constexpr int64_t kGrain = int64_t(1) << 16;
int64_t rowGrain(int64_t width) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(width, 1)); }

/// One Linear of a GW MLP: weight (out, in), bias (out), both contiguous float32.
struct Layer {
    torch::Tensor w, b;
    int64_t in = 0, out = 0;
};

/// makeGWMlp's Sequential as its Linears (ReLU between them, none after the last).
struct Mlp {
    std::vector<Layer> layers;
};

Mlp readMlp(torch::nn::Sequential& seq) {
    Mlp m;
    for (const auto& child : seq->children())
        if (auto* lin = child->as<torch::nn::LinearImpl>()) m.layers.push_back({lin->weight, lin->bias, lin->weight.size(1), lin->weight.size(0)});
    return m;
}

float* gradPtr(torch::Tensor& p) {
    if (!p.requires_grad()) return nullptr;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    return p.grad().data_ptr<float>();
}

/// One forward pass of an MLP on n rows, with what its backward pass reads.
struct Pass {
    const Mlp* mlp = nullptr;
    int64_t n = 0;
    std::vector<const float*> h;  ///< h[i]: input of layer i (n × in_i); h[0] is the pass's input
    float* out = nullptr;         ///< (n × the last layer's out)
};

void forward(Arena& arena, const Mlp& m, const float* x, int64_t n, Pass& p) {
    p.mlp = &m;
    p.n = n;
    p.h.assign(m.layers.size(), nullptr);
    const float* cur = x;
    for (size_t i = 0; i < m.layers.size(); ++i) {
        const Layer& l = m.layers[i];
        p.h[i] = cur;
        float* y = arena.alloc(static_cast<size_t>(n * l.out));
        gemm(false, true, n, l.out, l.in, 1.f, cur, l.in, l.w.data_ptr<float>(), l.in, 0.f, y, l.out);
        const float* b = l.b.data_ptr<float>();
        const bool last = i + 1 == m.layers.size();
        at::parallel_for(0, n, rowGrain(l.out), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                float* row = y + r * l.out;
                if (last)
                    for (int64_t j = 0; j < l.out; ++j) row[j] += b[j];
                else
                    for (int64_t j = 0; j < l.out; ++j) row[j] = std::max(row[j] + b[j], 0.f);
            }
        });
        cur = y;
    }
    p.out = const_cast<float*>(cur);
}

/// Backward of a pass: g (n × out), overwritten, is the gradient of the loss w.r.t. the pass's output.
/// Weight and bias gradients are added into the layers' .grad; dx (n × in), when given, receives the
/// gradient w.r.t. the pass's input.
void backward(Arena& arena, const Pass& p, float* g, float* dx) {
    const int64_t n = p.n;
    for (size_t i = p.mlp->layers.size(); i-- > 0;) {
        const Layer& l = p.mlp->layers[i];
        auto w = l.w, b = l.b;
        if (float* gw = gradPtr(w)) gemm(true, false, l.out, l.in, n, 1.f, g, l.out, p.h[i], l.in, 1.f, gw, l.in);
        if (float* gb = gradPtr(b))
            at::parallel_for(0, l.out, std::max<int64_t>(16, kGrain / std::max<int64_t>(n, 1)), [&](int64_t j0, int64_t j1) {
                for (int64_t r = 0; r < n; ++r) {
                    const float* row = g + r * l.out;
                    for (int64_t j = j0; j < j1; ++j) gb[j] += row[j];
                }
            });
        if (i == 0) {
            if (dx) gemm(false, false, n, l.in, l.out, 1.f, g, l.out, l.w.data_ptr<float>(), l.in, 0.f, dx, l.in);
            return;
        }
        float* gh = arena.alloc(static_cast<size_t>(n * l.in));
        gemm(false, false, n, l.in, l.out, 1.f, g, l.out, l.w.data_ptr<float>(), l.in, 0.f, gh, l.in);
        const float* h = p.h[i];
        at::parallel_for(0, n * l.in, kGrain, [&](int64_t k0, int64_t k1) {
            for (int64_t k = k0; k < k1; ++k) gh[k] = h[k] > 0.f ? gh[k] : 0.f;  // a select: vectorised, no branch
        });
        g = gh;
    }
}

void tanhInto(const float* x, float* y, int64_t count) {
    at::parallel_for(0, count, kGrain / 8, [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) y[k] = std::tanh(x[k]);
    });
}

// ---------------------------------------------------------------------------------------------------
enum Family { DemiCycles, Cycles, Translations, Contrastives, Fused };
const char* const kFamilyNames[] = {"demi_cycles", "cycles", "translations", "contrastives", "fused"};

/// Rows [row, row + n) of one buffer, copied from rows [srcRow, srcRow + n) of another.
struct Seg {
    int src = -1;        ///< source domain (for decoder inputs: whose state it is)
    int64_t srcRow = 0;  ///< first row in the source buffer
    int64_t row = 0;     ///< first row in this buffer
    int64_t n = 0;
};

/// What both steps keep of a domain: its module and its GW encoder's and decoder's layers.
struct DomBase {
    std::string name;
    DomainModule* mod = nullptr;
    int64_t L = 0;
    Mlp enc, dec;
};

/// Binds `doms` to `gw`'s domains (once per GW: the layers are read on first use) and allocates every
/// layer's .grad here, on the calling thread, never in a task.
template <class D>
void bindDomains(std::vector<D>& doms, GWModule*& cached, GWModule& gw) {
    const auto& names = gw.domainNames();
    if (cached != &gw) {
        doms.assign(names.size(), D());
        for (size_t d = 0; d < names.size(); ++d) {
            auto& dom = doms[d];
            dom.name = names[d];
            dom.mod = &gw.domainModule(names[d]);
            dom.L = dom.mod->latentDim();
            dom.enc = readMlp(gw.encoder(names[d]));
            dom.dec = readMlp(gw.decoder(names[d]));
        }
        cached = &gw;
    }
    for (auto& dom : doms)
        for (auto* m : {&dom.enc, &dom.dec})
            for (auto& l : m->layers) {
                gradPtr(l.w);
                gradPtr(l.b);
            }
}

/// Domain-parallel mode: with two or more intra-op threads, each domain's passes of a phase run on a
/// thread of their own with a single-threaded sgemm, instead of every product split across the
/// threads and joined (measured on the wide benchmark: docs/benchmarks.md). Nothing two domains'
/// tasks write overlaps: each owns its layers' gradients and its arena, and the scatters that cross
/// domains run after the phase.
class PerDomain {
public:
    explicit PerDomain(int domains)
        : D_(domains), parallel_(domains >= 2 && at::get_num_threads() >= 2 && !at::in_parallel_region()),
          blas_(parallel_ ? 1 : 0) {}
    void operator()(const std::function<void(int)>& fn) const {
        if (!parallel_) {
            for (int d = 0; d < D_; ++d) fn(d);
            return;
        }
        at::parallel_for(0, D_, 1, [&](int64_t b, int64_t e) {
            for (int64_t d = b; d < e; ++d) fn(static_cast<int>(d));
        });
    }

private:
    int D_;
    bool parallel_;
    BlasThreads blas_;
};

/// The groups' latents as contiguous float32 (B, L) and, for class domains, their int64 (B,)
/// indices; `dom[gi][k]` is the GW index of group gi's k-th domain. Pointers are taken here, on the
/// calling thread (data_ptr is not for worker threads to call).
struct GroupData {
    std::vector<std::vector<torch::Tensor>> lat, cls;
    std::vector<std::vector<int>> dom;
    std::vector<std::vector<const float*>> latPtr;
    int64_t rows(size_t gi) const { return lat[gi][0].size(0); }
};

GroupData gatherGroups(GWModule& gw, const std::vector<GroupBatch>& groups) {
    const auto& names = gw.domainNames();
    const size_t G = groups.size();
    GroupData g;
    g.lat.resize(G);
    g.cls.resize(G);
    g.dom.resize(G);
    g.latPtr.resize(G);
    for (size_t gi = 0; gi < G; ++gi)
        for (const auto& d : groups[gi].domains) {
            g.dom[gi].push_back(static_cast<int>(std::find(names.begin(), names.end(), d) - names.begin()));
            g.lat[gi].push_back(groups[gi].latents.at(d).contiguous());
            g.latPtr[gi].push_back(g.lat[gi].back().data_ptr<float>());
            const auto* in = groups[gi].inputs.find(d);
            g.cls[gi].push_back(gw.domainModule(d).latentLossKind() == LatentLossKind::CrossEntropy ? in->contiguous()
                                                                                                   : torch::Tensor());
        }
    return g;
}

/// Per-domain state of one step.
struct Dom : DomBase {
    // Phase 1: encoder on every group's latents of this domain.
    std::vector<Seg> in1;  ///< src = group index
    int64_t n1 = 0;
    Pass p1;
    float* s1 = nullptr;  ///< tanh(E1) (n1 × W)
    // Phase 2: decoder on states (demi-cycles, first halves of cycles, translations).
    std::vector<Seg> in2;  ///< src = source domain, srcRow in its s1
    int64_t n2 = 0;
    Pass p2;
    // Phase 3: encoder on decoded cycle midpoints (rows of this domain's phase-2 output).
    std::vector<Seg> in3;  ///< src = source domain of the cycle, srcRow in this domain's p2 output
    int64_t n3 = 0;
    Pass p3;
    float* s3 = nullptr;
    // Phase 4: decoder on the states of phase 3 (cycles back to this domain).
    std::vector<Seg> in4;  ///< src = domain whose s3 holds the rows
    int64_t n4 = 0;
    Pass p4;
    float *dY2 = nullptr, *dY4 = nullptr, *dS1 = nullptr;
};

struct Term {
    std::string name;
    Family family;
    LatentLossKind kind = LatentLossKind::Mse;
    const float* pred = nullptr;  ///< (n × L)
    float* grad = nullptr;        ///< where d loss / d pred goes (n × L)
    const float* target = nullptr;
    const int64_t* classes = nullptr;
    int64_t n = 0, L = 0;
    // Contrastive: the paired group's pre-fusion encodings of its two domains.
    int da = -1, db = -1;
    int64_t rowA = 0, rowB = 0;
    double value = 0, extra = 0;  ///< extra: accuracy (CrossEntropy) or exp(logit_scale) (contrastive)
    double weight = 0;
    // Contrastive scratch kept between value and gradient.
    float *xn = nullptr, *yn = nullptr, *cos = nullptr, *rowP = nullptr, *colP = nullptr;
    std::vector<float> normA, normB, rowInv, colInv;
    float scale = 0;
};

}  // namespace

struct CpuGWStep::Impl {
    Arena arena;                ///< serial parts: loss terms, scatter buffers
    std::vector<Arena> arenas;  ///< one per domain: its passes (they may run on different threads)
    GWModule* cached = nullptr;
    std::vector<Dom> doms;
    std::vector<Term> terms;
};

CpuGWStep::CpuGWStep() : impl_(std::make_unique<Impl>()) {}
CpuGWStep::~CpuGWStep() = default;

const std::vector<std::string>& CpuGWStep::knownFlavours() {
    static const std::vector<std::string> f = {"two_domains", "fusion"};
    return f;
}

const std::vector<std::string>& CpuGWStep::knownTerms() {
    static const std::vector<std::string> t = {"demi_cycle", "cycle", "translation", "contrastive", "fused", "broadcast_loss"};
    return t;
}

std::string CpuGWStep::unsupportedModel(GWModule& gw, const GWLosses& losses, const Selection& selection) {
    if (!sgemmFn()) return "no BLAS sgemm_ in this LibTorch's process";
    const auto& flavours = knownFlavours();
    if (std::find(flavours.begin(), flavours.end(), losses.flavour()) == flavours.end())
        return "flavour '" + losses.flavour() + "' is not written out by hand";
    for (const auto& t : losses.terms())
        if (std::find(knownTerms().begin(), knownTerms().end(), t) == knownTerms().end())
            return "loss term '" + t + "' is not written out by hand";
    if (selection.scoresNeedGradient())
        return "selection '" + selection.name() + "' computes scores that need a gradient";
    if (losses.flavour() == "two_domains" && !selection.constantForOneSource())
        return "selection '" + selection.name() + "' draws random numbers at every fusion";
    for (const auto& d : gw.domainNames()) {
        auto& mod = gw.domainModule(d);
        if (!mod.isFrozen()) return "domain module '" + d + "' trains end to end";
        if (mod.latentLossKind() == LatentLossKind::Custom) return "domain module '" + d + "' has its own loss";
        for (auto* seq : {&gw.encoder(d), &gw.decoder(d)})
            for (const auto& p : (*seq)->parameters())
                if (!p.is_cpu() || p.scalar_type() != torch::kFloat32 || !p.is_contiguous())
                    return "the GW's weights are not contiguous float32 on the CPU";
    }
    return {};
}

std::string CpuGWStep::unsupported(GWModule& gw, const GWLosses& losses, const Selection& selection,
                                   const std::vector<GroupBatch>& groups) {
    if (auto why = unsupportedModel(gw, losses, selection); !why.empty()) return why;
    std::vector<std::string> seen;
    for (const auto& g : groups) {
        if (g.domains.empty() || (g.domains.size() > 2 && losses.flavour() == "two_domains"))
            return "a group of " + std::to_string(g.domains.size()) + " domains";
        const auto name = groupName(g.domains);
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) return "group " + name + " appears twice";
        seen.push_back(name);
        int64_t n = -1;
        for (const auto& d : g.domains) {
            const auto* t = g.latents.find(d);
            if (!t || !t->defined() || !t->is_cpu() || t->scalar_type() != torch::kFloat32 || t->dim() != 2 ||
                t->size(1) != gw.domainModule(d).latentDim() || t->requires_grad())
                return "latents of '" + d + "' are not (B, L) float32 on the CPU without gradient";
            if (n >= 0 && t->size(0) != n) return "group " + name + " has batches of different sizes";
            n = t->size(0);
            if (n == 0) return "an empty batch";
            if (gw.domainModule(d).latentLossKind() == LatentLossKind::CrossEntropy) {
                const auto* c = g.inputs.find(d);
                if (!c || !c->defined() || !c->is_cpu() || c->scalar_type() != torch::kInt64 || c->dim() != 1 || c->size(0) != n)
                    return "class indices of '" + d + "' are not (B,) int64 on the CPU";
            }
        }
    }
    return {};
}

namespace {

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

/// Sum of n floats with eight partial sums (vectorised without -ffast-math), in double at the end.
double sumOf(const float* x, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; ++k) acc[k] += x[j + k];
    double s = 0;
    for (int k = 0; k < 8; ++k) s += acc[k];
    for (; j < n; ++j) s += x[j];
    return s;
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
    t.cos = arena.alloc(static_cast<size_t>(B * B));
    gemm(false, true, B, B, W, 1.f, t.xn, W, t.yn, W, 0.f, t.cos, B);
    t.rowP = arena.alloc(static_cast<size_t>(B * B));
    t.colP = arena.alloc(static_cast<size_t>(B * B));
    t.rowInv.assign(static_cast<size_t>(B), 0.f);
    t.colInv.assign(static_cast<size_t>(B), 0.f);
    std::vector<float> rowMax(static_cast<size_t>(B)), colMax(static_cast<size_t>(B), -INFINITY);
    const float sc = t.scale;
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

/// Adds the contrastive gradient into dEa and dEb (B × W each); returns d loss / d logit_scale.
double contrastiveGrad(Arena& arena, Term& t, int64_t W, float* dEa, float* dEb, float logitScale) {
    const int64_t B = t.n;
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
    const double e = std::exp(static_cast<double>(logitScale));
    return e <= 100.0 ? dScale * e : 0.0;  // clamp_max passes the gradient where exp(s) <= 100
}

/// Per family (Family index): the sum of its terms' values and their count.
struct FamilyTotals {
    std::vector<double> sum = std::vector<double>(5, 0.0);
    std::vector<int> count = std::vector<int>(5, 0);
    double mean(int f) const { return sum[f] / count[f]; }
};

/// Every term's value: MSE, cross-entropy, or the contrastive of its two domains' phase-1 encodings.
template <class D>
FamilyTotals termValues(Arena& arena, std::vector<Term>& terms, const std::vector<D>& doms, int64_t W, float logitScale) {
    FamilyTotals f;
    for (auto& t : terms) {
        if (t.kind == LatentLossKind::Mse) mseTerm(t, false);
        else if (t.kind == LatentLossKind::CrossEntropy) crossEntropyTerm(t, false);
        else contrastiveValue(arena, t, doms[t.da].p1.out + t.rowA * W, doms[t.db].p1.out + t.rowB * W, W, logitScale);
        f.sum[t.family] += t.value;
        ++f.count[t.family];
    }
    return f;
}

/// Each term's weight in combineLoss's mean (coefficient / selected count, divided again by the
/// family's count for a family coefficient), then d loss / d prediction of every latent term.
/// `suffix`: what the term's metric name adds to Term::name ("_loss" for the broadcast keys).
void termGradients(std::vector<Term>& terms, const LossCoefs& coefs, const TensorMap& metrics, const FamilyTotals& f,
                   const std::string& suffix) {
    int selected = 0;
    for (const auto& [name, c] : coefs)
        if (c > 0 && metrics.contains(name)) ++selected;
    for (auto& t : terms) {
        t.weight = 0;
        const std::string key = t.family == Contrastives ? t.name : t.name + suffix;
        for (const auto& [name, c] : coefs) {
            if (!(c > 0)) continue;
            if (name == key) t.weight += c / selected;
            else if (name == kFamilyNames[t.family]) t.weight += c / selected / f.count[t.family];
        }
    }
    for (auto& t : terms) {
        if (t.weight == 0 || t.family == Contrastives) continue;
        if (t.kind == LatentLossKind::Mse) mseTerm(t, true);
        else crossEntropyTerm(t, true);
    }
}

/// The end of both backward passes: the contrastive terms' gradients added into the phase-1
/// encodings' gradients `dE1(dom)`, the encoders' backward on them, the logit scale's gradient.
template <class D>
void encoderBackward(Arena& arena, std::vector<Arena>& arenas, std::vector<D>& doms, std::vector<Term>& terms, int64_t W,
                     float logitScale, torch::Tensor logitScaleTensor, const PerDomain& eachDomain,
                     const std::function<float*(D&)>& dE1) {
    double dLogitScale = 0;
    for (auto& t : terms)
        if (t.family == Contrastives && t.weight != 0)
            dLogitScale += contrastiveGrad(arena, t, W, dE1(doms[t.da]) + t.rowA * W, dE1(doms[t.db]) + t.rowB * W, logitScale);
    eachDomain([&](int d) {
        if (doms[d].n1) backward(arenas[d], doms[d].p1, dE1(doms[d]), nullptr);
    });
    if (logitScaleTensor.requires_grad()) {
        float* g = gradPtr(logitScaleTensor);
        g[0] += static_cast<float>(dLogitScale);
    }
}

}  // namespace

StepLosses CpuGWStep::run(GWModule& gw, GWLosses& losses, Selection& selection, const std::vector<GroupBatch>& groups) {
    if (losses.flavour() == "fusion") return runFusion(gw, losses, selection, groups);
    auto& I = *impl_;
    Arena& arena = I.arena;
    arena.reset();
    const int D = static_cast<int>(gw.domainNames().size());
    const int64_t W = gw.workspaceDim();
    bindDomains(I.doms, I.cached, gw);
    auto& doms = I.doms;
    I.arenas.resize(static_cast<size_t>(D));
    for (auto& a : I.arenas) a.reset();
    const PerDomain eachDomain(D);
    const size_t G = groups.size();
    const GroupData data = gatherGroups(gw, groups);
    const auto& gdom = data.dom;
    const auto& cls = data.cls;
    const auto& latPtr = data.latPtr;
    auto rowsOf = [&](size_t gi) { return data.rows(gi); };

    // Phase 1: each GW encoder once on all of its domain's latents (single groups and paired groups).
    std::vector<std::vector<int64_t>> row1(G);  // row1[gi][k]: first row of group gi's k-th domain in E1
    for (auto& dom : doms) {
        dom.in1.clear();
        dom.in2.clear();
        dom.in3.clear();
        dom.in4.clear();
        dom.n1 = dom.n2 = dom.n3 = dom.n4 = 0;
    }
    for (size_t gi = 0; gi < G; ++gi)
        for (size_t k = 0; k < gdom[gi].size(); ++k) {
            auto& dom = doms[gdom[gi][k]];
            row1[gi].push_back(dom.n1);
            dom.in1.push_back({static_cast<int>(gi), static_cast<int64_t>(k), dom.n1, rowsOf(gi)});
            dom.n1 += rowsOf(gi);
        }
    eachDomain([&](int d) {
        auto& dom = doms[d];
        Arena& ar = I.arenas[d];
        if (!dom.n1) return;
        float* x = ar.alloc(static_cast<size_t>(dom.n1 * dom.L));
        for (const auto& s : dom.in1) std::memcpy(x + s.row * dom.L, latPtr[s.src][s.srcRow], sizeof(float) * s.n * dom.L);
        forward(ar, dom.enc, x, dom.n1, dom.p1);
        dom.s1 = ar.alloc(static_cast<size_t>(dom.n1 * W));
        tanhInto(dom.p1.out, dom.s1, dom.n1 * W);
    });

    // Phase 2: each GW decoder once on the states it decodes, in GWLosses::step's order.
    std::vector<int64_t> demiRow(G, -1);
    std::vector<std::vector<int64_t>> midRow(G, std::vector<int64_t>(static_cast<size_t>(D), -1));
    std::vector<std::vector<int64_t>> trRow(G, std::vector<int64_t>(2, -1));
    for (size_t gi = 0; gi < G; ++gi) {
        const auto& gd = gdom[gi];
        const int64_t n = rowsOf(gi);
        if (gd.size() == 1) {
            const int s = gd[0];
            if (doms[s].mod->familyEnabled(LossFamily::DemiCycle)) {
                demiRow[gi] = doms[s].n2;
                doms[s].in2.push_back({s, row1[gi][0], doms[s].n2, n});
                doms[s].n2 += n;
            }
            if (doms[s].mod->familyEnabled(LossFamily::Cycle))
                for (int t = 0; t < D; ++t) {
                    if (t == s) continue;
                    midRow[gi][t] = doms[t].n2;
                    doms[t].in2.push_back({s, row1[gi][0], doms[t].n2, n});
                    doms[t].n2 += n;
                }
            continue;
        }
        for (size_t k = 0; k < 2; ++k) {
            const int t = gd[k], s = gd[1 - k];
            if (!doms[t].mod->familyEnabled(LossFamily::Translation)) continue;
            trRow[gi][k] = doms[t].n2;
            doms[t].in2.push_back({s, row1[gi][1 - k], doms[t].n2, n});
            doms[t].n2 += n;
        }
    }
    eachDomain([&](int d) {
        auto& dom = doms[d];
        if (!dom.n2) return;
        float* x = I.arenas[d].alloc(static_cast<size_t>(dom.n2 * W));
        for (const auto& s : dom.in2) std::memcpy(x + s.row * W, doms[s.src].s1 + s.srcRow * W, sizeof(float) * s.n * W);
        forward(I.arenas[d], dom.dec, x, dom.n2, dom.p2);
    });

    // Phases 3 and 4: cycles back, Enc_t of the decoded midpoints, then Dec_s of their states.
    std::vector<std::vector<int64_t>> row4(G, std::vector<int64_t>(static_cast<size_t>(D), -1));
    for (size_t gi = 0; gi < G; ++gi) {
        if (gdom[gi].size() != 1) continue;
        const int s = gdom[gi][0];
        for (int t = 0; t < D; ++t) {
            if (midRow[gi][t] < 0) continue;
            const int64_t n = rowsOf(gi);
            doms[t].in3.push_back({s, midRow[gi][t], doms[t].n3, n});
            doms[s].in4.push_back({t, doms[t].n3, doms[s].n4, n});
            row4[gi][t] = doms[s].n4;
            doms[t].n3 += n;
            doms[s].n4 += n;
        }
    }
    eachDomain([&](int d) {
        auto& dom = doms[d];
        Arena& ar = I.arenas[d];
        if (!dom.n3) return;
        float* x = ar.alloc(static_cast<size_t>(dom.n3 * dom.L));
        for (const auto& s : dom.in3) std::memcpy(x + s.row * dom.L, dom.p2.out + s.srcRow * dom.L, sizeof(float) * s.n * dom.L);
        forward(ar, dom.enc, x, dom.n3, dom.p3);
        dom.s3 = ar.alloc(static_cast<size_t>(dom.n3 * W));
        tanhInto(dom.p3.out, dom.s3, dom.n3 * W);
    });
    eachDomain([&](int d) {
        auto& dom = doms[d];
        Arena& ar = I.arenas[d];
        if (dom.n4) {
            float* x = ar.alloc(static_cast<size_t>(dom.n4 * W));
            for (const auto& s : dom.in4) std::memcpy(x + s.row * W, doms[s.src].s3 + s.srcRow * W, sizeof(float) * s.n * W);
            forward(ar, dom.dec, x, dom.n4, dom.p4);
        }
        dom.dY2 = dom.n2 ? ar.zeros(static_cast<size_t>(dom.n2 * dom.L)) : nullptr;
        dom.dY4 = dom.n4 ? ar.zeros(static_cast<size_t>(dom.n4 * dom.L)) : nullptr;
    });

    // The loss terms, in GWLosses::step's order.
    auto& terms = I.terms;
    terms.clear();
    auto latentTerm = [&](std::string name, Family f, int d, const float* pred, float* grad, size_t gi, size_t k) {
        Term t;
        t.name = std::move(name);
        t.family = f;
        t.kind = doms[d].mod->latentLossKind();
        t.pred = pred;
        t.grad = grad;
        t.target = latPtr[gi][k];
        if (cls[gi][k].defined()) t.classes = cls[gi][k].data_ptr<int64_t>();
        t.n = rowsOf(gi);
        t.L = doms[d].L;
        terms.push_back(std::move(t));
    };
    for (size_t gi = 0; gi < G; ++gi) {
        if (gdom[gi].size() != 1) continue;
        const int s = gdom[gi][0];
        auto& ds = doms[s];
        if (demiRow[gi] >= 0)
            latentTerm("demi_cycle_" + ds.name, DemiCycles, s, ds.p2.out + demiRow[gi] * ds.L, ds.dY2 + demiRow[gi] * ds.L, gi, 0);
        for (int t = 0; t < D; ++t)
            if (row4[gi][t] >= 0)
                latentTerm("cycle_" + ds.name + "_through_" + doms[t].name, Cycles, s, ds.p4.out + row4[gi][t] * ds.L,
                           ds.dY4 + row4[gi][t] * ds.L, gi, 0);
    }
    for (size_t gi = 0; gi < G; ++gi) {
        if (gdom[gi].size() != 2) continue;
        for (size_t k = 0; k < 2; ++k) {
            if (trRow[gi][k] < 0) continue;
            auto& dt = doms[gdom[gi][k]];
            latentTerm("translation_" + doms[gdom[gi][1 - k]].name + "_to_" + dt.name, Translations, gdom[gi][k],
                       dt.p2.out + trRow[gi][k] * dt.L, dt.dY2 + trRow[gi][k] * dt.L, gi, k);
        }
        Term t;
        t.name = "contrastive_" + doms[gdom[gi][0]].name + "_and_" + doms[gdom[gi][1]].name;
        t.family = Contrastives;
        t.kind = LatentLossKind::Custom;
        t.n = rowsOf(gi);
        t.da = gdom[gi][0];
        t.db = gdom[gi][1];
        t.rowA = row1[gi][0];
        t.rowB = row1[gi][1];
        terms.push_back(std::move(t));
    }

    // Values, metrics and the combined loss.
    auto logitScaleTensor = losses.contrastive().logitScale();
    const float logitScale = logitScaleTensor.detach().reshape({}).item<float>();
    TensorMap metrics;
    const FamilyTotals totals = termValues(arena, terms, doms, W, logitScale);
    for (const auto& t : terms) {
        metrics.set(t.name, torch::scalar_tensor(t.value, torch::kFloat32));
        if (t.kind == LatentLossKind::CrossEntropy) metrics.set(t.name + "_accuracy", torch::scalar_tensor(t.extra, torch::kFloat32));
        if (t.family == Contrastives) metrics.set(t.name + "_logit_scale", torch::scalar_tensor(t.extra, torch::kFloat32));
    }
    StepLosses r;
    for (int f = 0; f < 4; ++f) {
        if (!totals.count[f]) r.skipped.emplace_back(kFamilyNames[f]);
        else metrics.set(kFamilyNames[f], torch::scalar_tensor(totals.mean(f), torch::kFloat32));
    }
    r.out.loss = combineLoss(metrics, losses.coefs());  // throws as the autograd step does

    // Backward: d loss / d outputs of the decoders, then back through phases 4, 3, 2 and 1.
    termGradients(terms, losses.coefs(), metrics, totals, "");
    r.out.metrics = std::move(metrics);
    // Every row of a domain's phase-3 states feeds exactly one phase-4 segment, so the tasks of
    // phase 4 write disjoint rows of dE3.
    std::vector<float*> dE3(static_cast<size_t>(D), nullptr);
    for (int d = 0; d < D; ++d)
        if (doms[d].n3) dE3[d] = arena.alloc(static_cast<size_t>(doms[d].n3 * W));
    eachDomain([&](int d) {
        auto& dom = doms[d];
        if (!dom.n4) return;
        float* dx = I.arenas[d].alloc(static_cast<size_t>(dom.n4 * W));
        backward(I.arenas[d], dom.p4, dom.dY4, dx);
        for (const auto& s : dom.in4) {  // d state -> d pre-tanh encoding
            const float* st = doms[s.src].s3 + s.srcRow * W;
            float* out = dE3[s.src] + s.srcRow * W;
            const float* g = dx + s.row * W;
            for (int64_t k = 0; k < s.n * W; ++k) out[k] = g[k] * (1.f - st[k] * st[k]);
        }
    });
    eachDomain([&](int d) {
        auto& dom = doms[d];
        if (!dom.n3) return;
        float* dx = I.arenas[d].alloc(static_cast<size_t>(dom.n3 * dom.L));
        backward(I.arenas[d], dom.p3, dE3[d], dx);
        for (const auto& s : dom.in3) {
            float* out = dom.dY2 + s.srcRow * dom.L;
            const float* g = dx + s.row * dom.L;
            for (int64_t k = 0; k < s.n * dom.L; ++k) out[k] += g[k];
        }
    });
    // Phase 2's input gradients go to the states of several domains (the demi-cycle's and the
    // cycles' sources share rows): computed in parallel, added after.
    std::vector<float*> dX2(static_cast<size_t>(D), nullptr);
    eachDomain([&](int d) {
        auto& dom = doms[d];
        Arena& ar = I.arenas[d];
        dom.dS1 = dom.n1 ? ar.zeros(static_cast<size_t>(dom.n1 * W)) : nullptr;
        if (!dom.n2) return;
        dX2[d] = ar.alloc(static_cast<size_t>(dom.n2 * W));
        backward(ar, dom.p2, dom.dY2, dX2[d]);
    });
    for (int d = 0; d < D; ++d)
        for (const auto& s : doms[d].in2) {
            float* out = doms[s.src].dS1 + s.srcRow * W;
            const float* g = dX2[d] + s.row * W;
            for (int64_t k = 0; k < s.n * W; ++k) out[k] += g[k];
        }
    for (auto& dom : doms)
        for (int64_t k = 0; k < dom.n1 * W; ++k) dom.dS1[k] *= 1.f - dom.s1[k] * dom.s1[k];  // now dE1
    encoderBackward<Dom>(arena, I.arenas, doms, terms, W, logitScale, logitScaleTensor, eachDomain,
                         [](Dom& d) { return d.dS1; });
    return r;
}

}  // namespace gw

// ---------------------------------------------------------------------------------------------------
// The Fusion flavour (GWLossesFusion::step, docs/gw-semantics.md 2.3) written out the same way: every
// non-empty subset S of every group fused into a state, decoded into every domain; the decodings of
// the domains outside S encoded, fused and decoded back into S. The selection's scores are constants
// (unsupported() admits only selections whose scores need no gradient); they are drawn through the
// selection itself, at the same points and in the same order as the autograd step, so that both
// paths consume torch's generator alike.
namespace gw {
namespace {

/// One workspace state of n rows: z = tanh(Σ_k score_k ⊙ x_k) over its sources, with x_k rows of a
/// domain's encoder output (phase 1 or phase 3).
struct State {
    struct Source {
        int dom = -1;
        bool phase3 = false;  ///< x from the domain's phase-3 encodings, else phase 1
        int64_t row = 0;
        torch::Tensor score;  ///< (n,) contiguous float32
    };
    int64_t n = 0;
    std::vector<Source> sources;
    float* z = nullptr;
    float* dz = nullptr;
};

/// Per-domain passes of a fusion step.
struct FDom : DomBase {
    int64_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    std::vector<Seg> in1;  ///< src = group, srcRow = index of the domain in the group
    std::vector<Seg> in2;  ///< src = state index (rows 0..n of it)
    std::vector<Seg> in3;  ///< srcRow = row in this domain's phase-2 output
    std::vector<Seg> in4;  ///< src = state index
    Pass p1, p2, p3, p4;
    float *dE1 = nullptr, *dY2 = nullptr, *dE3 = nullptr, *dY4 = nullptr;
};

}  // namespace

struct CpuGWStep::FusionImpl {
    Arena arena;
    std::vector<Arena> arenas;
    GWModule* cached = nullptr;
    std::vector<FDom> doms;
    std::vector<Term> terms;
};

StepLosses CpuGWStep::runFusion(GWModule& gw, GWLosses& losses, Selection& selection,
                                const std::vector<GroupBatch>& groups) {
    if (!fusion_) fusion_ = std::make_unique<FusionImpl>();
    auto& I = *fusion_;
    Arena& arena = I.arena;
    arena.reset();
    const int D = static_cast<int>(gw.domainNames().size());
    const int64_t W = gw.workspaceDim();
    bindDomains(I.doms, I.cached, gw);
    auto& doms = I.doms;
    I.arenas.resize(static_cast<size_t>(D));
    for (auto& a : I.arenas) a.reset();
    for (auto& dom : doms) {
        dom.in1.clear();
        dom.in2.clear();
        dom.in3.clear();
        dom.in4.clear();
        dom.n1 = dom.n2 = dom.n3 = dom.n4 = 0;
    }
    const PerDomain eachDomain(D);
    const size_t G = groups.size();
    const GroupData data = gatherGroups(gw, groups);
    const auto& gdom = data.dom;
    const auto& cls = data.cls;
    const auto& latPtr = data.latPtr;
    auto rowsOf = [&](size_t gi) { return data.rows(gi); };
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    auto view = [&](const float* p, int64_t n, int64_t w) { return torch::from_blob(const_cast<float*>(p), {n, w}, f32); };

    // Phase 1: every group's latents through their encoders.
    std::vector<std::vector<int64_t>> row1(G);
    for (size_t gi = 0; gi < G; ++gi)
        for (size_t k = 0; k < gdom[gi].size(); ++k) {
            auto& dom = doms[gdom[gi][k]];
            row1[gi].push_back(dom.n1);
            dom.in1.push_back({static_cast<int>(gi), static_cast<int64_t>(k), dom.n1, rowsOf(gi)});
            dom.n1 += rowsOf(gi);
        }
    eachDomain([&](int d) {
        auto& dom = doms[d];
        if (!dom.n1) return;
        float* x = I.arenas[d].alloc(static_cast<size_t>(dom.n1 * dom.L));
        for (const auto& s : dom.in1) std::memcpy(x + s.row * dom.L, latPtr[s.src][s.srcRow], sizeof(float) * s.n * dom.L);
        forward(I.arenas[d], dom.enc, x, dom.n1, dom.p1);
    });

    // The states of phase 2: one per subset, in itertools.product order; decoded into every domain.
    struct Subset {
        size_t group;
        std::vector<int> selected, outside;  // domain indices; selected in group order
        int state = -1, state2 = -1;
        std::vector<int64_t> row2;  // per domain: first row of this subset's decoding in its phase 2
        std::vector<int64_t> row3;  // per domain of `outside`: rows in its phase 3
        std::vector<int64_t> row4;  // per domain of `selected`: rows in its phase 4
    };
    std::vector<Subset> subsets;
    std::vector<State> states;
    auto makeState = [&](const std::vector<int>& ds, bool phase3, const std::vector<int64_t>& rows, int64_t n) {
        State st;
        st.n = n;
        TensorMap prem;
        for (size_t k = 0; k < ds.size(); ++k) {
            const auto& dom = doms[ds[k]];
            const float* x = (phase3 ? dom.p3.out : dom.p1.out) + rows[k] * W;
            prem.set(dom.name, view(x, n, W));
            st.sources.push_back({ds[k], phase3, rows[k], torch::Tensor()});
        }
        if (!(ds.size() == 1 && selection.constantForOneSource())) {
            // Scores that need no gradient (unsupported() checks) read the encodings' batch size,
            // count and options at most, so the encodings stand in for the unimodal latents too.
            const auto s = selection.scores(prem, prem);
            for (auto& src : st.sources) src.score = s.at(doms[src.dom].name).contiguous();
        }
        st.z = arena.alloc(static_cast<size_t>(n * W));
        std::memset(st.z, 0, sizeof(float) * static_cast<size_t>(n * W));
        for (const auto& src : st.sources) {
            const auto& dom = doms[src.dom];
            const float* x = (src.phase3 ? dom.p3.out : dom.p1.out) + src.row * W;
            if (!src.score.defined()) {
                std::memcpy(st.z, x, sizeof(float) * static_cast<size_t>(n * W));
                continue;
            }
            const float* sc = src.score.data_ptr<float>();
            for (int64_t r = 0; r < n; ++r)
                for (int64_t j = 0; j < W; ++j) st.z[r * W + j] += sc[r] * x[r * W + j];
        }
        tanhInto(st.z, st.z, n * W);
        states.push_back(std::move(st));
        return static_cast<int>(states.size() - 1);
    };
    for (size_t gi = 0; gi < G; ++gi) {
        const size_t n = gdom[gi].size();
        for (size_t mask = 1; mask < (size_t(1) << n); ++mask) {
            Subset s;
            s.group = gi;
            std::vector<int64_t> rows;
            for (size_t i = 0; i < n; ++i)
                if (mask & (size_t(1) << (n - 1 - i))) {
                    s.selected.push_back(gdom[gi][i]);
                    rows.push_back(row1[gi][i]);
                }
            for (int d = 0; d < D; ++d)
                if (std::find(s.selected.begin(), s.selected.end(), d) == s.selected.end()) s.outside.push_back(d);
            s.state = makeState(s.selected, false, rows, rowsOf(gi));
            s.row2.assign(static_cast<size_t>(D), -1);
            for (int d = 0; d < D; ++d) {
                s.row2[d] = doms[d].n2;
                doms[d].in2.push_back({s.state, 0, doms[d].n2, rowsOf(gi)});
                doms[d].n2 += rowsOf(gi);
            }
            subsets.push_back(std::move(s));
        }
    }
    eachDomain([&](int d) {
        auto& dom = doms[d];
        if (!dom.n2) return;
        float* x = I.arenas[d].alloc(static_cast<size_t>(dom.n2 * W));
        for (const auto& s : dom.in2) std::memcpy(x + s.row * W, states[s.src].z, sizeof(float) * s.n * W);
        forward(I.arenas[d], dom.dec, x, dom.n2, dom.p2);
    });

    // Phase 3: the decodings of the domains outside S through their encoders; phase 4: their fusion
    // decoded back into S.
    for (auto& s : subsets) {
        s.row3.assign(s.outside.size(), -1);
        const int64_t n = rowsOf(s.group);
        for (size_t k = 0; k < s.outside.size(); ++k) {
            auto& dom = doms[s.outside[k]];
            s.row3[k] = dom.n3;
            dom.in3.push_back({-1, s.row2[s.outside[k]], dom.n3, n});
            dom.n3 += n;
        }
    }
    eachDomain([&](int d) {
        auto& dom = doms[d];
        if (!dom.n3) return;
        float* x = I.arenas[d].alloc(static_cast<size_t>(dom.n3 * dom.L));
        for (const auto& s : dom.in3) std::memcpy(x + s.row * dom.L, dom.p2.out + s.srcRow * dom.L, sizeof(float) * s.n * dom.L);
        forward(I.arenas[d], dom.enc, x, dom.n3, dom.p3);
    });
    for (auto& s : subsets) {
        if (s.outside.empty()) continue;
        const int64_t n = rowsOf(s.group);
        s.state2 = makeState(s.outside, true, s.row3, n);
        s.row4.assign(s.selected.size(), -1);
        for (size_t k = 0; k < s.selected.size(); ++k) {
            auto& dom = doms[s.selected[k]];
            s.row4[k] = dom.n4;
            dom.in4.push_back({s.state2, 0, dom.n4, n});
            dom.n4 += n;
        }
    }
    eachDomain([&](int d) {
        auto& dom = doms[d];
        Arena& ar = I.arenas[d];
        if (dom.n4) {
            float* x = ar.alloc(static_cast<size_t>(dom.n4 * W));
            for (const auto& s : dom.in4) std::memcpy(x + s.row * W, states[s.src].z, sizeof(float) * s.n * W);
            forward(ar, dom.dec, x, dom.n4, dom.p4);
        }
        dom.dY2 = dom.n2 ? ar.zeros(static_cast<size_t>(dom.n2 * dom.L)) : nullptr;
        dom.dY4 = dom.n4 ? ar.zeros(static_cast<size_t>(dom.n4 * dom.L)) : nullptr;
    });

    // The terms, in GWLossesFusion::step's order and with its names.
    auto& terms = I.terms;
    terms.clear();
    std::vector<std::set<int>> pairsSeen;
    for (size_t gi = 0; gi < G; ++gi) {
        const auto& gd = gdom[gi];
        if (gd.size() < 2) continue;
        for (size_t i = 0; i < gd.size(); ++i)
            for (size_t j = i + 1; j < gd.size(); ++j) {
                const std::set<int> pair{gd[i], gd[j]};
                if (std::find(pairsSeen.begin(), pairsSeen.end(), pair) != pairsSeen.end()) continue;
                pairsSeen.push_back(pair);
                Term t;
                t.name = "contrastive_" + doms[gd[i]].name + "_and_" + doms[gd[j]].name;
                t.family = Contrastives;
                t.kind = LatentLossKind::Custom;
                t.n = rowsOf(gi);
                t.da = gd[i];
                t.db = gd[j];
                t.rowA = row1[gi][i];
                t.rowB = row1[gi][j];
                terms.push_back(std::move(t));
            }
    }
    auto sorted = [&](const std::vector<int>& ds) {
        std::vector<std::string> n;
        for (int d : ds) n.push_back(doms[d].name);
        return sortedGroupName(n);
    };
    std::vector<std::string> used;
    for (const auto& s : subsets) {
        const auto& gd = gdom[s.group];
        const std::string from = "from_" + sorted(s.selected), caseName = sorted(gd);
        auto add = [&](std::string label, Family f, int d, const float* pred, float* grad) {
            if (std::find(used.begin(), used.end(), label + "_loss") != used.end()) label += "_case_" + caseName;
            used.push_back(label + "_loss");
            const size_t k = static_cast<size_t>(std::find(gd.begin(), gd.end(), d) - gd.begin());
            Term t;
            t.name = label;
            t.family = f;
            t.kind = doms[d].mod->latentLossKind();
            t.pred = pred;
            t.grad = grad;
            t.target = latPtr[s.group][k];
            if (cls[s.group][k].defined()) t.classes = cls[s.group][k].data_ptr<int64_t>();
            t.n = rowsOf(s.group);
            t.L = doms[d].L;
            terms.push_back(std::move(t));
        };
        for (int d = 0; d < D; ++d) {
            if (std::find(gd.begin(), gd.end(), d) == gd.end()) continue;
            const bool inS = std::find(s.selected.begin(), s.selected.end(), d) != s.selected.end();
            const Family f = !inS ? Translations : s.selected.size() == 1 ? DemiCycles : Fused;
            const LossFamily lf = f == Translations ? LossFamily::Translation : f == DemiCycles ? LossFamily::DemiCycle
                                                                                               : LossFamily::Fused;
            if (!doms[d].mod->familyEnabled(lf)) continue;
            add(from + "_to_" + doms[d].name, f, d, doms[d].p2.out + s.row2[d] * doms[d].L,
                doms[d].dY2 + s.row2[d] * doms[d].L);
        }
        for (size_t k = 0; k < s.row4.size(); ++k) {
            const int d = s.selected[k];
            if (!doms[d].mod->familyEnabled(LossFamily::Cycle)) continue;
            add(from + "_through_" + sorted(s.outside) + "_to_" + doms[d].name + "_case_" + caseName, Cycles, d,
                doms[d].p4.out + s.row4[k] * doms[d].L, doms[d].dY4 + s.row4[k] * doms[d].L);
        }
    }

    // Values and metrics, in GWLossesFusion::step's order.
    auto logitScaleTensor = losses.contrastive().logitScale();
    const float logitScale = logitScaleTensor.detach().reshape({}).item<float>();
    const FamilyTotals totals = termValues(arena, terms, doms, W, logitScale);
    auto scalar = [](double v) { return torch::scalar_tensor(v, torch::kFloat32); };
    TensorMap metrics;
    StepLosses r;
    for (const auto& t : terms)
        if (t.family == Contrastives) metrics.set(t.name, scalar(t.value));
    if (!totals.count[Contrastives]) r.skipped.emplace_back("contrastives");
    else metrics.set("contrastives", scalar(totals.mean(Contrastives)));
    for (const auto& t : terms) {
        if (t.family == Contrastives) metrics.set(t.name + "_logit_scale", scalar(t.extra));
        else if (t.kind == LatentLossKind::CrossEntropy) metrics.set(t.name + "_accuracy", scalar(t.extra));
    }
    for (int f : {DemiCycles, Cycles, Translations, Fused}) {
        if (!totals.count[f]) r.skipped.emplace_back(kFamilyNames[f]);
        else metrics.set(kFamilyNames[f], scalar(totals.mean(f)));
    }
    for (const auto& t : terms)
        if (t.family != Contrastives) metrics.set(t.name + "_loss", scalar(t.value));
    r.out.loss = combineLoss(metrics, losses.coefs());
    termGradients(terms, losses.coefs(), metrics, totals, "_loss");  // before broadcast_loss, as combineLoss
    std::vector<torch::Tensor> broadcast;
    for (const auto& [name, c] : losses.coefs())
        if (c > 0 && name != "contrastives")
            if (const auto* m = metrics.find(name)) broadcast.push_back(*m);
    if (!broadcast.empty()) {
        double sum = 0;
        for (const auto& b : broadcast) sum += b.item<double>();
        metrics.set("broadcast_loss", scalar(sum / static_cast<double>(broadcast.size())));
    }
    r.out.metrics = std::move(metrics);

    // Backward (the terms' gradients are in place).
    for (auto& st : states) st.dz = arena.zeros(static_cast<size_t>(st.n * W));
    std::vector<float*> dX(static_cast<size_t>(D), nullptr);
    // A state's gradient, through the tanh and the scores, into its sources' encodings.
    auto stateBackward = [&](State& st) {
        for (int64_t k = 0; k < st.n * W; ++k) st.dz[k] *= 1.f - st.z[k] * st.z[k];
        for (const auto& src : st.sources) {
            auto& dom = doms[src.dom];
            float* out = (src.phase3 ? dom.dE3 : dom.dE1) + src.row * W;
            if (!src.score.defined()) {
                for (int64_t k = 0; k < st.n * W; ++k) out[k] += st.dz[k];
                continue;
            }
            const float* sc = src.score.data_ptr<float>();
            for (int64_t r2 = 0; r2 < st.n; ++r2)
                for (int64_t j = 0; j < W; ++j) out[r2 * W + j] += sc[r2] * st.dz[r2 * W + j];
        }
    };
    // Phase 4 back to the cycle states, which back into the phase-3 encodings.
    eachDomain([&](int d) {
        auto& dom = doms[d];
        Arena& ar = I.arenas[d];
        dom.dE1 = dom.n1 ? ar.zeros(static_cast<size_t>(dom.n1 * W)) : nullptr;
        dom.dE3 = dom.n3 ? ar.zeros(static_cast<size_t>(dom.n3 * W)) : nullptr;
        dX[d] = nullptr;
        if (!dom.n4) return;
        dX[d] = ar.alloc(static_cast<size_t>(dom.n4 * W));
        backward(ar, dom.p4, dom.dY4, dX[d]);
    });
    for (int d = 0; d < D; ++d)
        for (const auto& s : doms[d].in4) {
            float* out = states[s.src].dz + s.srcRow * W;
            const float* g = dX[d] + s.row * W;
            for (int64_t k = 0; k < s.n * W; ++k) out[k] += g[k];
        }
    for (auto& s : subsets)
        if (s.state2 >= 0) stateBackward(states[s.state2]);
    // Phase 3 back into the decodings of phase 2.
    eachDomain([&](int d) {
        auto& dom = doms[d];
        if (!dom.n3) return;
        float* dx = I.arenas[d].alloc(static_cast<size_t>(dom.n3 * dom.L));
        backward(I.arenas[d], dom.p3, dom.dE3, dx);
        for (const auto& s : dom.in3) {
            float* out = dom.dY2 + s.srcRow * dom.L;
            const float* g = dx + s.row * dom.L;
            for (int64_t k = 0; k < s.n * dom.L; ++k) out[k] += g[k];
        }
    });
    // Phase 2 back to the subset states, which back into the phase-1 encodings.
    eachDomain([&](int d) {
        auto& dom = doms[d];
        dX[d] = nullptr;
        if (!dom.n2) return;
        dX[d] = I.arenas[d].alloc(static_cast<size_t>(dom.n2 * W));
        backward(I.arenas[d], dom.p2, dom.dY2, dX[d]);
    });
    for (int d = 0; d < D; ++d)
        for (const auto& s : doms[d].in2) {
            float* out = states[s.src].dz + s.srcRow * W;
            const float* g = dX[d] + s.row * W;
            for (int64_t k = 0; k < s.n * W; ++k) out[k] += g[k];
        }
    for (auto& s : subsets) stateBackward(states[s.state]);
    encoderBackward<FDom>(arena, I.arenas, doms, terms, W, logitScale, logitScaleTensor, eachDomain,
                          [](FDom& d) { return d.dE1; });
    return r;
}

}  // namespace gw
