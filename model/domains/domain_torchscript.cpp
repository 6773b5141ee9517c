// SPDX-License-Identifier: GPL-3.0-or-later
/// \file domain_torchscript.cpp
/// The `torchscript` domain-module kind: the researcher's own domain module (shimmer
/// `shimmer/modules/domain.py`, DomainModule), written in Python, compiled with `torch.jit.script` (or
/// `torch.jit.trace_module`) and saved to a file, run here by LibTorch's TorchScript interpreter with no
/// Python at run time. The contract (docs/own-domain-module.md):
///
///   encode(x: Tensor) -> Tensor                 x (B, ...) the samples as stored, float32 (uint8 data
///                                               divided by 255), or int64 (B,) for class indices;
///                                               returns the latent (B, D), D read from a probe batch
///   decode(z: Tensor) -> Tensor                 (B, D) -> (B, ...) the samples' shape; class data:
///                                               scores (B, C) or indices (B,)
///   compute_loss(pred, target[, raw]) -> Tensor optional: the GW's loss between a predicted and a
///                                               target latent (B, D), a scalar (else MSE, or
///                                               cross-entropy for class indices)
///   compute_domain_loss(x) -> Tensor            optional: the module's own loss, added to the GW loss
///                                               when the module is not frozen (shimmer #149)
///
/// The module's parameters and buffers are mirrored, tensor for tensor (the same storage), into this
/// torch::nn::Module under their TorchScript names, so that freezing, AdamW, `to(device)`, checkpoints
/// (`gw_mod.domain_mods.NAME.encoder.0.weight`) and `gw export` see them like any built-in module's.
#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/versions.h>
#include <torch/script.h>
#include <torch/version.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "data/atomic_file.h"
#include "data/file_hash.h"
#include "data/zip_check.h"
#include "model/domains/domain_module.h"
#include "model/core/registry.h"

namespace gw {
namespace {
namespace fs = std::filesystem;

const std::string kLibTorch = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                              std::to_string(TORCH_VERSION_PATCH);

std::string firstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

/// 56173 -> "56,173".
std::string withThousands(int64_t n) {
    std::string s = std::to_string(n);
    for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
    return s;
}

/// The message a TorchScript error carries without the interpreter's traceback: its last non-empty
/// line ("builtins.RuntimeError: boom" for a `raise` in the module's code, "RuntimeError: mat1 and mat2
/// shapes cannot be multiplied (4x8 and 7x16)" for a failing operator).
std::string scriptMessage(const std::exception& e) {
    std::string what = e.what();
    if (const auto* c = dynamic_cast<const c10::Error*>(&e)) what = c->what_without_backtrace();
    std::istringstream in(what);
    std::string line, last;
    while (std::getline(in, line)) {
        const auto b = line.find_first_not_of(" \t\r");
        if (b != std::string::npos) last = line.substr(b);
    }
    if (last.rfind("builtins.", 0) == 0) last = last.substr(9);
    return last.empty() ? firstLine(what) : last;
}

/// A dtype as Python writes it (float32, int64, uint8, ...).
std::string dtypeName(const torch::Tensor& t) {
    switch (t.scalar_type()) {
        case torch::kFloat32: return "float32";
        case torch::kFloat64: return "float64";
        case torch::kFloat16: return "float16";
        case torch::kBFloat16: return "bfloat16";
        case torch::kInt64: return "int64";
        case torch::kInt32: return "int32";
        case torch::kInt16: return "int16";
        case torch::kInt8: return "int8";
        case torch::kUInt8: return "uint8";
        case torch::kBool: return "bool";
        default: break;
    }
    std::ostringstream s;
    s << t.scalar_type();
    return s.str();
}
std::string described(const torch::Tensor& t) { return shapeString(t) + " " + dtypeName(t); }

/// Mirrors `from`'s parameters and buffers (recursively, the same tensors) into `into`.
void mirror(torch::nn::Module& into, const torch::jit::Module& from) {
    for (const auto& p : from.named_parameters(false)) into.register_parameter(p.name, p.value, p.value.requires_grad());
    for (const auto& b : from.named_buffers(false)) into.register_buffer(b.name, b.value);
    for (const auto& c : from.named_children()) {
        auto child = std::make_shared<torch::nn::Module>(c.name);
        mirror(*child, c.value);
        if (!child->parameters().empty() || !child->buffers().empty()) into.register_module(c.name, child);
    }
}

struct MethodSpec {
    const char* name;
    size_t minArgs, maxArgs;  // tensor arguments besides self
    const char* signature;    // as the docs write it
};
const MethodSpec kEncode{"encode", 1, 1, "encode(self, x: Tensor) -> Tensor"};
const MethodSpec kDecode{"decode", 1, 1, "decode(self, z: Tensor) -> Tensor"};
const MethodSpec kLoss{"compute_loss", 2, 3, "compute_loss(self, pred: Tensor, target: Tensor[, raw_target: Tensor]) -> Tensor"};
const MethodSpec kDomainLoss{"compute_domain_loss", 1, 1, "compute_domain_loss(self, x: Tensor) -> Tensor"};

class TorchScriptDomain : public DomainModule {
public:
    TorchScriptDomain(const DomainModuleSpec& spec, const Params& p)
        : DomainModule("torchscript", 0), domain_(spec.domain), path_(p.text("script")) {
        if (path_.empty())
            throw std::invalid_argument("script: expected the path of a TorchScript file (a module saved by "
                                        "torch.jit.script(module).save(PATH)), found nothing");
        readFile(p.text("sha256"));
        jit_ = loadScript();
        for (const auto* m : {&kEncode, &kDecode}) checkMethod(*m, true);
        hasLoss_ = checkMethod(kLoss, false);
        hasDomainLoss_ = checkMethod(kDomainLoss, false);
        lossArgs_ = hasLoss_ ? jit_.get_method(kLoss.name).function().getSchema().arguments().size() - 1 : 0;
        mirror(*this, jit_);
        loss_ = p.text("loss");
        if (loss_ != "auto" && loss_ != "mse" && loss_ != "cross_entropy" && loss_ != "script")
            throw std::invalid_argument("loss: expected auto, mse, cross_entropy or script, found '" + loss_ + "'");
        if (loss_ == "script" && !hasLoss_)
            throw std::invalid_argument("loss: 'script' needs a method " + std::string(kLoss.signature) + ", which " +
                                        path_ + " does not export");
        classes_ = spec.dataClasses;
        if (spec.probe.defined()) probe(spec.probe);
    }

    torch::Tensor prepare(const torch::Tensor& raw) const override {
        if (classData_) {
            torch::Tensor x = raw.dim() == 2 && raw.size(1) == 1 ? raw.squeeze(1) : raw;
            if (x.dim() != 1)
                throw std::invalid_argument("torchscript domain: expected class indices of shape (B,), found " +
                                            shapeString(raw));
            return x.to(torch::kInt64);
        }
        if (!sampleShape_.empty()) {
            std::vector<int64_t> want = {raw.size(0)};
            want.insert(want.end(), sampleShape_.begin(), sampleShape_.end());
            if (raw.sizes().vec() != want)
                throw std::invalid_argument("torchscript domain: expected samples of shape (B, " + shapeTail() +
                                            ") as in the probe batch, found " + shapeString(raw));
        }
        if (raw.scalar_type() == torch::kUInt8) return raw.to(torch::kFloat32).div_(255.0);
        return raw.to(torch::kFloat32);
    }

    torch::Tensor encode(const torch::Tensor& x) override { return call(kEncode.name, {x}); }
    torch::Tensor decodeRaw(const torch::Tensor& z) override { return call(kDecode.name, {z}); }

    std::optional<LossOutput> computeLoss(const torch::Tensor& pred, const torch::Tensor& target,
                                          const torch::Tensor& rawTarget) override {
        switch (latentLossKind()) {
            case LatentLossKind::CrossEntropy: {
                TensorMap m;
                m.set("accuracy", pred.detach().argmax(1).eq(rawTarget).to(torch::kFloat32).mean());
                return LossOutput{torch::cross_entropy_loss(pred, rawTarget), m};
            }
            case LatentLossKind::Custom: {
                std::vector<c10::IValue> args = {pred, target};
                if (lossArgs_ == 3) args.emplace_back(rawTarget);
                auto loss = call(kLoss.name, std::move(args));
                if (loss.numel() != 1 || !loss.is_floating_point())
                    throw DomainModuleError(where() + ": compute_loss returned " + described(loss) +
                                            ", expected a float scalar");
                return LossOutput{loss.reshape({}), {}};
            }
            case LatentLossKind::Mse: break;
        }
        return DomainModule::computeLoss(pred, target, rawTarget);
    }
    LatentLossKind latentLossKind() const override {
        const std::string k = loss_ == "auto" ? (hasLoss_ ? "script" : classData_ ? "cross_entropy" : "mse") : loss_;
        if (k == "script") return LatentLossKind::Custom;
        return k == "cross_entropy" ? LatentLossKind::CrossEntropy : LatentLossKind::Mse;
    }
    bool lossNeedsInput() const override {
        return latentLossKind() == LatentLossKind::CrossEntropy || (latentLossKind() == LatentLossKind::Custom && lossArgs_ == 3);
    }
    std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) override {
        if (!hasDomainLoss_) return std::nullopt;
        auto loss = call(kDomainLoss.name, {x});
        if (loss.numel() != 1 || !loss.is_floating_point())
            throw DomainModuleError(where() + ": compute_domain_loss returned " + described(loss) + ", expected a float scalar");
        TensorMap m;
        m.set("loss", loss.detach().reshape({}));
        return LossOutput{loss.reshape({}), m};
    }

    /// `gw eval`'s data-space quality of a translation into this domain: `data_mse` (mean squared error
    /// of decode(pred) against the samples, in the units of x) or, for class data, `accuracy` (the
    /// decoded class equals the sample's).
    TensorMap dataMetrics(const torch::Tensor& predLatent, const torch::Tensor& x) override {
        torch::NoGradGuard ng;
        TensorMap m;
        const auto y = decodeRaw(predLatent);
        if (classData_) {
            const auto cls = y.dim() == 2 ? y.argmax(1) : y.to(torch::kInt64);
            m.set("accuracy", cls.eq(x).to(torch::kFloat32).mean());
        } else {
            m.set("data_mse", torch::mse_loss(y.to(torch::kFloat32), x));
        }
        return m;
    }
    int64_t classCount() const override { return classData_ ? (classes_ > 0 ? classes_ : latentDim()) : 0; }
    torch::Tensor classesOf(const torch::Tensor& x) const override { return classData_ ? x : torch::Tensor(); }

    torch::Tensor display(const torch::Tensor& z) override {
        auto y = decodeRaw(z);
        if (classData_) {
            if (y.dim() == 1) return torch::one_hot(y.to(torch::kInt64).clamp(0, classCount() - 1), classCount()).to(torch::kFloat32);
            return torch::softmax(y.to(torch::kFloat32), 1);
        }
        return channelsFirst(y);
    }
    torch::Tensor displayInput(const torch::Tensor& x) override {
        if (classData_) return torch::one_hot(x, classCount()).to(torch::kFloat32);
        return channelsFirst(x);
    }
    std::string rendersAs() const override { return classData_ ? "class_label" : kind(); }

    std::string describe() const override {
        int64_t n = 0;
        for (const auto& p : parameters()) n += p.numel();
        std::string methods = "encode, decode";
        if (hasLoss_) methods += ", compute_loss";
        if (hasDomainLoss_) methods += ", compute_domain_loss";
        const char* loss = latentLossKind() == LatentLossKind::Custom         ? "its compute_loss"
                           : latentLossKind() == LatentLossKind::CrossEntropy ? "cross-entropy"
                                                                              : "MSE";
        return fs::path(path_).filename().string() + ": " + methods + "; input (B, " + shapeTail() + ") " +
               (classData_ ? "int64" : "float32") + ", latent " + std::to_string(latentDim()) + "; " +
               withThousands(n) + " parameters; GW loss " + loss;
    }

    OrderedMap<std::string> keepInRun(const std::string& runDir, const std::string& domain) override {
        const fs::path dest = fs::path(runDir) / "domain_modules" / (domain + ".pt");
        std::error_code ec;
        OrderedMap<std::string> changed;
        if (!(fs::exists(dest) && fs::equivalent(dest, path_, ec))) writeFileAtomically(dest.string(), bytes_);
        changed.set("script", fs::absolute(dest).lexically_normal().string());
        changed.set("sha256", sha_);
        return changed;
    }

    bool saveOwnFile(const std::string& path) override {
        // A deep copy, so that each tensor is written alone and on the CPU (in training they are views
        // of the optimiser's flat buffer) and this module's own state is left as it is.
        torch::jit::Module copy = jit_.deepcopy();
        copy.to(torch::kCPU);
        // To memory, then one checked write: LibTorch's writer would report a full disk from a destructor.
        std::ostringstream bytes;
        copy.save(bytes);
        writeFileAtomically(path, bytes.str());
        return true;
    }

    void train(bool on) override {
        DomainModule::train(on);
        jit_.train(on);
    }
    using DomainModule::to;
    void to(torch::Device device, bool nonBlocking) override {
        jit_.to(device, nonBlocking);
        DomainModule::to(device, nonBlocking);
    }

private:
    std::string where() const {
        return (domain_.empty() ? std::string() : "domain " + domain_ + " ") + "(TorchScript " + path_ + ")";
    }

    /// Reads the whole file once: its digest and the module come from the same bytes, and the run
    /// folder's copy is those bytes too.
    void readFile(const std::string& expectedSha) {
        if (!fs::exists(path_)) throw std::invalid_argument("script: " + path_ + ": no such file");
        std::ifstream in(path_, std::ios::binary);
        bytes_.assign(std::istreambuf_iterator<char>(in), {});
        if (!in && !in.eof()) throw std::invalid_argument("script: " + path_ + ": cannot read the file");
        sha_ = data::sha256OfBytes(bytes_);
        if (!expectedSha.empty() && expectedSha != sha_)
            throw std::invalid_argument("sha256: " + path_ + " has SHA-256 " + sha_ + ", expected " + expectedSha +
                                        " (recorded when the run began): the file changed since; put the run's "
                                        "own copy back, or remove sha256 to accept the new file");
    }

    torch::jit::Module loadScript() const {
        const std::string bad = "script: " + path_ + ": ";
        uint64_t version = 0;
        const std::string damage = data::checkZipBytes(bytes_, &version);
        if (!damage.empty() && damage.rfind("not a", 0) == 0)
            throw std::invalid_argument(bad + "not a TorchScript file (" + damage +
                                        "): expected a zip archive saved by torch.jit.script(module).save(PATH)");
        if (!damage.empty() && damage.find("expected a file format version") == std::string::npos)
            throw std::invalid_argument(bad + damage + ": the file changed after it was saved (a disk or copy error)");
        // Checked before LibTorch's reader, which throws from its constructor and leaks (docs/fuzzing.md).
        if (damage.empty() && version > caffe2::serialize::kMaxSupportedFileFormatVersion)
            throw std::invalid_argument(bad + "saved by a newer torch (TorchScript file format version " + std::to_string(version) +
                                        "; this GW Studio's LibTorch " + kLibTorch + " reads versions up to " +
                                        std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion) + "): save the module with torch " +
                                        kLibTorch.substr(0, kLibTorch.rfind('.')) +
                                        " (Debian's python3-torch), or build GW Studio against a newer LibTorch");
        if (!damage.empty() || version < caffe2::serialize::kMinSupportedFileFormatVersion)
            throw std::invalid_argument(bad + "not a TorchScript file (" + (damage.empty() ? "file format version 0" : damage) +
                                        "): expected a zip archive saved by torch.jit.script(module).save(PATH)");
        std::istringstream zipBytes(bytes_);
        try {
            caffe2::serialize::PyTorchStreamReader reader(&zipBytes);
            if (!reader.hasRecord("constants.pkl") && reader.hasRecord("data.pkl"))
                throw std::invalid_argument(bad + "a torch.save file (pickled tensors or a state dict), not a TorchScript "
                                                  "module: save the module with torch.jit.script(module).save(PATH)");
        } catch (const c10::Error& e) {
            const std::string msg = e.what_without_backtrace();
            std::smatch m;
            if (std::regex_search(msg, m, std::regex("version (\\d+), but the maximum supported version for reading is (\\d+)")))
                throw std::invalid_argument(bad + "saved by a newer torch (TorchScript file format version " + m[1].str() +
                                            "; this GW Studio's LibTorch " + kLibTorch + " reads versions up to " +
                                            m[2].str() + "): save the module with torch " + kLibTorch.substr(0, kLibTorch.rfind('.')) +
                                            " (Debian's python3-torch), or build GW Studio against a newer LibTorch");
            throw std::invalid_argument(bad + "not a TorchScript file (" + firstLine(msg) +
                                        "): expected a zip archive saved by torch.jit.script(module).save(PATH)");
        }
        std::istringstream moduleBytes(bytes_);
        try {
            return torch::jit::load(moduleBytes);
        } catch (const c10::Error& e) {
            const std::string msg = e.what_without_backtrace();
            const bool newer = msg.find("Unknown builtin op") != std::string::npos ||
                               msg.find("Unknown type name") != std::string::npos ||
                               msg.find("schema") != std::string::npos;
            throw std::invalid_argument(bad + "LibTorch " + kLibTorch + " cannot load this module (" + firstLine(msg) + ")" +
                                        (newer ? ": it was probably saved by a newer torch; save it with torch " +
                                                     kLibTorch.substr(0, kLibTorch.rfind('.')) + " (Debian's python3-torch)"
                                               : ""));
        }
    }

    /// True when the module exports `m` with the expected signature; false when it lacks an optional one.
    bool checkMethod(const MethodSpec& m, bool required) const {
        auto method = jit_.find_method(m.name);
        if (!method) {
            if (!required) return false;
            std::string have;
            for (const auto& f : jit_.get_methods()) have += (have.empty() ? "" : ", ") + f.name();
            throw std::invalid_argument("script: " + path_ + ": no method " + m.name + " (expected " + m.signature +
                                        ", exported with @torch.jit.export; the module has: " +
                                        (have.empty() ? "none" : have) + ")");
        }
        const auto& schema = method->function().getSchema();
        const auto& args = schema.arguments();
        bool ok = args.size() >= m.minArgs + 1 && args.size() <= m.maxArgs + 1 && schema.returns().size() == 1 &&
                  schema.returns()[0].type()->kind() == c10::TypeKind::TensorType;
        for (size_t i = 1; ok && i < args.size(); ++i) ok = args[i].type()->kind() == c10::TypeKind::TensorType;
        if (!ok) {
            std::ostringstream found;
            found << schema;
            throw std::invalid_argument("script: " + path_ + ": method " + m.name + " has the signature " + found.str() +
                                        ", expected " + m.signature);
        }
        return true;
    }

    torch::Tensor call(const char* method, std::vector<c10::IValue> args) {
        c10::IValue out;
        try {
            out = jit_.get_method(method)(std::move(args));
        } catch (const std::exception& e) {
            throw DomainModuleError(where() + ": " + method + " raised: " + scriptMessage(e));
        }
        if (!out.isTensor()) throw DomainModuleError(where() + ": " + method + " returned a " + out.tagKind() + ", expected a tensor");
        return out.toTensor();
    }

    /// Runs every method once on the first samples of the training split: learns the latent size and
    /// the data's form, and refuses a module that does not fit them, before any training starts.
    void probe(const torch::Tensor& raw) {
        if (raw.dim() == 0 || raw.size(0) == 0) throw std::invalid_argument("script: the probe batch is empty");
        classData_ = !raw.is_floating_point() && raw.scalar_type() != torch::kUInt8 &&
                     (raw.dim() == 1 || (raw.dim() == 2 && raw.size(1) == 1));
        if (!classData_) sampleShape_.assign(raw.sizes().begin() + 1, raw.sizes().end());
        const torch::Tensor x = prepare(raw);
        const int64_t b = x.size(0);
        const std::string bad = "script: " + path_ + ": ";
        const std::string given = " on the probe batch x " + described(x) + " (the first samples of the training split)";
        const bool wasTraining = is_training();
        train(false);
        torch::NoGradGuard ng;
        auto run = [&](const char* m, std::vector<c10::IValue> args) {
            try {
                return call(m, std::move(args));
            } catch (const DomainModuleError& e) {
                std::string msg = e.what();
                msg = msg.substr(msg.find(": ") + 2);  // drop where(): the message names the file already
                throw std::invalid_argument(bad + msg + given);
            }
        };
        const auto z = run(kEncode.name, {x});
        if (z.dim() != 2 || z.size(0) != b || !z.is_floating_point())
            throw std::invalid_argument(bad + "encode must return a float latent (B, D); it returned " + described(z) + given);
        setLatentDim(z.size(1));
        const auto y = run(kDecode.name, {z});
        if (classData_) {
            const bool ok = (y.dim() == 1 && y.size(0) == b) || (y.dim() == 2 && y.size(0) == b && y.is_floating_point());
            if (!ok)
                throw std::invalid_argument(bad + "decode of a class latent must return class indices (B,) or scores (B, C); "
                                                  "it returned " + described(y) + given);
            if (latentLossKind() == LatentLossKind::CrossEntropy && classes_ > latentDim())
                throw std::invalid_argument(bad + "the cross-entropy loss reads the latent as class scores, but the latent has " +
                                            std::to_string(latentDim()) + " values for " + std::to_string(classes_) +
                                            " classes (num_classes of the data)");
        } else {
            if (y.sizes() != x.sizes())
                throw std::invalid_argument(bad + "decode must return the samples' shape " + shapeString(x) + "; it returned " +
                                            described(y) + given);
            if (latentLossKind() == LatentLossKind::CrossEntropy)
                throw std::invalid_argument("loss: cross_entropy needs class indices (B,) of an integer type, but the data are " +
                                            described(raw));
        }
        if (hasLoss_) {
            std::vector<c10::IValue> args = {z, z};
            if (lossArgs_ == 3) args.emplace_back(x);
            const auto l = run(kLoss.name, std::move(args));
            if (l.numel() != 1 || !l.is_floating_point())
                throw std::invalid_argument(bad + "compute_loss must return a float scalar; it returned " + described(l) + given);
        }
        if (hasDomainLoss_) {
            const auto l = run(kDomainLoss.name, {x});
            if (l.numel() != 1 || !l.is_floating_point())
                throw std::invalid_argument(bad + "compute_domain_loss must return a float scalar; it returned " + described(l) +
                                            given);
        }
        train(wasTraining);
    }

    std::string shapeTail() const {
        std::string s;
        for (auto d : sampleShape_) s += (s.empty() ? "" : ", ") + std::to_string(d);
        return s;
    }
    /// Channel-last images (B, H, W, 1|3) as (B, C, H, W), for the explorer's image renderer.
    torch::Tensor channelsFirst(const torch::Tensor& t) const {
        if (t.dim() == 4 && (t.size(3) == 1 || t.size(3) == 3) && t.size(1) > 4 && t.size(2) > 4) return t.permute({0, 3, 1, 2});
        return t;
    }

    std::string domain_, path_, bytes_, sha_, loss_ = "auto";
    torch::jit::Module jit_;
    bool hasLoss_ = false, hasDomainLoss_ = false, classData_ = false;
    size_t lossArgs_ = 0;
    int64_t classes_ = 0;
    std::vector<int64_t> sampleShape_;
};

}  // namespace

void registerTorchScriptModule(DomainModuleRegistry& r) {
    using T = ParamInfo::Type;
    KindInfo info{"torchscript",
                  "your own module, saved by torch.jit.script: encode(x) -> (B, D), decode(z) -> x; D read from the data",
                  {{"script", T::Path, "", -INFINITY, false, "", "the TorchScript file (.pt)"},
                   {"loss", T::Text, "auto", -INFINITY, false, "",
                    "GW loss: auto (compute_loss if exported, else cross_entropy for class indices, else mse), mse, "
                    "cross_entropy or script"},
                   {"sha256", T::Text, "", -INFINITY, false, "",
                    "the file's SHA-256, checked when set (a run records its copy's)"}}};
    info.fromFile = true;
    info.dataScores = {"data_mse", "accuracy"};  // dataMetrics: continuous data, class data
    r.add(std::move(info), [](const DomainModuleSpec& s, const Params& p) -> std::shared_ptr<DomainModule> {
        return std::make_shared<TorchScriptDomain>(s, p);
    });
}

}  // namespace gw
