// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/run/interop.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/core/registry.h"
#include "model/run/runs.h"
#include "model/io/shimmer_migrations.h"

namespace gw {
namespace fs = std::filesystem;

namespace {
const std::string kGw = "gw_mod.";
const std::string kDomains = "gw_mod.domain_mods.";
const std::string kLossGw = "loss_mod.gw_mod.";
const std::string kLossDomains = "loss_mod.domain_mods.";
const std::string kSelection = "selection_mod.";
const std::string kLossSelection = "loss_mod.selection_mod.";

bool startsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
}  // namespace

OrderedMap<torch::Tensor> toShimmerLayout(const OrderedMap<torch::Tensor>& state) {
    OrderedMap<torch::Tensor> out;
    for (const auto& [k, t] : state)
        if (startsWith(k, kGw)) out.set(k, t);
    for (const auto& [k, t] : state)
        if (startsWith(k, kGw)) out.set(kLossGw + k.substr(kGw.size()), t);
    for (const auto& [k, t] : state)
        if (startsWith(k, kDomains)) out.set(kLossDomains + k.substr(kDomains.size()), t);
    for (const auto& [k, t] : state)
        if (!startsWith(k, kGw)) out.set(k, t);
    for (const auto& [k, t] : state)
        if (startsWith(k, kSelection)) out.set(kLossSelection + k.substr(kSelection.size()), t);
    return out;
}

OrderedMap<torch::Tensor> fromShimmerLayout(const OrderedMap<torch::Tensor>& state, const std::string& path) {
    OrderedMap<torch::Tensor> out;
    std::ostringstream err;
    for (const auto& [k, t] : state) {
        std::string twin;
        if (startsWith(k, kLossGw)) twin = kGw + k.substr(kLossGw.size());
        else if (startsWith(k, kLossDomains)) twin = kDomains + k.substr(kLossDomains.size());
        else if (startsWith(k, kLossSelection)) twin = kSelection + k.substr(kLossSelection.size());
        else {
            out.set(k, t);
            continue;
        }
        const torch::Tensor* original = state.find(twin);
        if (!original) {
            err << "\n  " << k << " has no twin " << twin;
        } else if (original->sizes() != t.sizes()) {
            err << "\n  " << k << ": shape " << t.sizes() << " differs from its twin " << twin << " " << original->sizes();
        } else if (!torch::equal(*original, t.to(original->dtype()))) {
            const double diff = (*original - t.to(original->dtype())).abs().max().item<double>();
            err << "\n  " << k << " differs from its twin " << twin << " (max |difference| " << diff << ")";
        }
    }
    if (!err.str().empty())
        throw CheckpointError(path + ": the loss module's copies of the GW's tensors must equal them:" + err.str());
    return out;
}

namespace {
/// Every domain module read from a file of its own (KindInfo::fromFile: torchscript) written back in
/// that format with the checkpoint's weights, as OUT's stem + ".{domain}.pt" beside OUT.
std::vector<std::string> exportModuleFiles(const Checkpoint& c, const std::string& checkpoint, const std::string& out) {
    std::vector<std::string> written;
    ExperimentConfig cfg;
    try {
        cfg = parseExperiment(c.configYaml, checkpoint + " (embedded config)", {}, "/");
    } catch (const ConfigError&) {
        return written;  // the GW's weights export without it; `gw eval` names what is wrong
    }
    for (const auto& d : cfg.domains) {
        const auto* kind = domainModuleRegistry().find(d.module);
        if (!kind || !kind->info.fromFile) continue;
        std::shared_ptr<DomainModule> mod;
        try {
            mod = makeDomainModule(domainModuleSpec(cfg, d));
        } catch (const std::invalid_argument& e) {
            throw CheckpointError(checkpoint + ": domain " + d.name + ": cannot rebuild its module to export it: " + e.what());
        }
        OrderedMap<torch::Tensor> sub;
        const std::string prefix = kDomains + d.name + ".";
        for (const auto& [k, t] : c.state)
            if (startsWith(k, prefix)) sub.set(k.substr(prefix.size()), t);
        try {
            loadModuleState(*mod, sub, checkpoint + ", domain " + d.name, prefix);
        } catch (const std::invalid_argument& e) {
            throw CheckpointError(e.what());
        }
        const fs::path o(out);
        const std::string path = (o.parent_path() / (o.stem().string() + "." + d.name + ".pt")).string();
        if (mod->saveOwnFile(path)) written.push_back(path);
    }
    return written;
}
}  // namespace

namespace {
/// The model kind a training checkpoint's embedded experiment names (`model:`, "gw" when absent).
std::string modelOf(const Checkpoint& c) {
    const std::string key = "\nmodel: ";
    const auto at = ("\n" + c.configYaml).find(key);
    if (at == std::string::npos) return "gw";
    const auto from = at + key.size() - 1;  // "\n" was prepended
    return c.configYaml.substr(from, c.configYaml.find('\n', from) - from);
}
}  // namespace

ExportResult exportForPython(const std::string& checkpoint, const std::string& out) {
    const Checkpoint c = loadCheckpoint(checkpoint);
    ExportResult r;
    r.weights = out;
    r.config = fs::path(out).replace_extension(".yaml").string();
    if (r.config == r.weights) r.config += ".yaml";
    if (c.kind == "gw") {
        const auto* kind = modelRegistry().find(modelOf(c));
        if (!kind)
            throw CheckpointError(checkpoint + ": model: expected one of " + modelRegistry().knownNames() + ", found '" +
                                  modelOf(c) + "'");
        kind->impl.exportWeights(c, checkpoint, out, r);
    } else {
        r.tensors = c.state.size();
        r.layout = r.holds = "the state_dict of one domain module";
        writeStateDict(out, c.state);
        r.notes.push_back("in Python: module.load_state_dict(torch.load(\"" + r.weights + "\"))");
    }
    // The experiment beside the weights, whichever kind wrote them.
    std::string yaml = "# Exported by GW Studio from " + fs::absolute(checkpoint).string() + " (step " + std::to_string(c.step) +
                       ")\n# with " + fs::path(out).filename().string() + ": " + r.holds + "\n" + c.configYaml;
    if (!c.configYaml.empty() && c.configYaml.back() != '\n') yaml += "\n";
    writeFileAtomically(r.config, yaml);
    return r;
}

void exportShimmerLayout(const Checkpoint& c, const std::string& checkpoint, const std::string& out, ExportResult& r) {
    const auto tensors = toShimmerLayout(c.state);
    r.tensors = tensors.size();
    r.layout = "shimmer's state_dict layout";
    const std::string kind = GlobalWorkspace::stateFlavour(c.state);
    r.holds = kind == "variational" ? "shimmer 0.4.0 VariationalGlobalWorkspace state_dict layout, as shimmer's checkpoint migrations rename it (docs/checkpoint-format.md)"
              : kind == "bayesian"  ? "shimmer v0.5.1 GlobalWorkspaceBayesian state_dict layout (docs/checkpoint-format.md)"
                                    : "shimmer GlobalWorkspace2Domains / GlobalWorkspaceFusion state_dict layout (docs/checkpoint-format.md)";
    writeStateDict(out, tensors);
    r.moduleFiles = exportModuleFiles(c, checkpoint, out);
    r.notes.push_back("in Python: state = torch.load(\"" + r.weights + "\"); gw.load_state_dict(state)");
    for (const auto& f : r.moduleFiles)
        r.notes.push_back("wrote " + f + " (the domain module with its weights; in Python: torch.jit.load(\"" + f + "\"))");
}

Checkpoint importShimmerWeights(const std::string& stateDict, const ExperimentConfig& cfg, bool keepDomainModules, LogFn log) {
    StateDictFile file = readStateDict(stateDict);
    const std::string where = stateDict + (file.foundAt.empty() ? "" : ", " + file.foundAt);
    // Older shimmer generations: the key changes of shimmer's checkpoint migrations that the file does
    // not record as applied (a current file passes through them unchanged).
    std::vector<std::string> applied;
    for (const auto& line : applyShimmerMigrations(file.tensors, file.migrations, file.migrationsRecorded)) {
        if (log) log("shimmer migration " + line);
        applied.push_back(line.substr(0, line.find(':')));
    }
    OrderedMap<torch::Tensor> weights = fromShimmerLayout(file.tensors, where);
    Engine engine(cfg, log);
    if (keepDomainModules) {
        engine.prepare();
        OrderedMap<torch::Tensor> merged;
        size_t ignored = 0;
        for (const auto& [k, t] : weights) {
            if (startsWith(k, kDomains)) ++ignored;
            else merged.set(k, t);
        }
        for (const auto& [k, t] : engine.model().stateDict())
            if (startsWith(k, kDomains)) merged.set(k, t);
        if (log && ignored) log("ignored " + std::to_string(ignored) + " domain-module tensors of " + stateDict);
        weights = std::move(merged);
    } else {
        Checkpoint from;
        from.state = weights;
        try {
            engine.prepare(&from);
        } catch (const std::invalid_argument& e) {
            throw CheckpointError(where + ": " + e.what() +
                                  "\n(to take the domain modules from the experiment instead, use --keep-domain-modules)");
        }
    }
    try {
        engine.model().loadStateDict(weights);
    } catch (const std::invalid_argument& e) {
        throw CheckpointError(where + ": " + e.what());
    }
    Checkpoint c = engine.makeCheckpoint();
    c.note = "imported from " + fs::absolute(stateDict).string() + (file.foundAt.empty() ? "" : " (" + file.foundAt + ")");
    if (!applied.empty()) {
        c.note += "; shimmer migrations applied:";
        for (const auto& a : applied) c.note += " " + a;
    }
    return c;
}

const DomainConfig& glomDomainOf(const ExperimentConfig& cfg, const std::string& domain) {
    std::string names;
    const DomainConfig* found = nullptr;
    int count = 0;
    for (const auto& d : cfg.domains) {
        if (d.module != "glom") continue;
        names += (names.empty() ? "" : ", ") + d.name;
        ++count;
        if (domain.empty() || d.name == domain) found = &d;
    }
    if (!domain.empty() && !found)
        throw ConfigError(cfg.sourcePath + ": domains." + domain + ": expected a domain of module glom" +
                          (names.empty() ? std::string(" (the experiment has none)") : " (glom domains: " + names + ")"));
    if (count == 0) throw ConfigError(cfg.sourcePath + ": domains: expected a domain of module glom, found none");
    if (count > 1 && domain.empty())
        throw ConfigError(cfg.sourcePath + ": domains: " + std::to_string(count) + " domains of module glom (" + names +
                          "); name one with --domain");
    return *found;
}

namespace {
/// A fresh GLOM domain module of `d`'s sizes (initial weights seeded with the experiment's seed).
std::shared_ptr<GlomDomain> buildGlom(const ExperimentConfig& cfg, const DomainConfig& d) {
    torch::manual_seed(cfg.seed);
    std::shared_ptr<DomainModule> m;
    try {
        m = makeDomainModule(domainModuleSpec(cfg, d));
    } catch (const std::invalid_argument& e) {
        throw ConfigError(cfg.sourcePath + ": domains." + d.name + ": " + e.what());
    }
    return std::dynamic_pointer_cast<GlomDomain>(m);
}

std::string glomConstructor(const GlomOptions& o) {
    std::ostringstream s;
    s << "Glom(dim=" << o.dim << ", levels=" << o.levels << ", image_size=" << o.imageSize << ", patch_size=" << o.patchSize;
    if (o.consensusSelf) s << ", consensus_self=True";
    if (o.localRadius > 0) s << ", local_consensus_radius=" << o.localRadius;
    s << ")";
    return s.str();
}
}  // namespace

Checkpoint importGlomWeights(const std::string& stateDict, const ExperimentConfig& cfg, const std::string& domain,
                             const std::string& toPixels) {
    const DomainConfig& d = glomDomainOf(cfg, domain);
    auto g = buildGlom(cfg, d);
    const StateDictFile file = readStateDict(stateDict);
    try {
        g->denoiser->glom->loadStateDict(file.tensors, stateDict + (file.foundAt.empty() ? "" : ", " + file.foundAt));
    } catch (const std::invalid_argument& e) {
        throw CheckpointError(e.what());
    }
    if (!toPixels.empty()) {
        const StateDictFile tp = readStateDict(toPixels);
        auto& lin = *g->denoiser->toPixels;
        const std::pair<const char*, torch::Tensor*> keys[] = {{"0.weight", &lin.weight}, {"0.bias", &lin.bias}};
        for (const auto& [key, param] : keys) {
            const torch::Tensor* t = tp.tensors.find(key);
            if (!t) throw CheckpointError(toPixels + ": " + key + ": expected the patches_to_images state_dict (0.weight, 0.bias), found no such key");
            if (!t->sizes().equals(param->sizes()))
                throw CheckpointError(toPixels + ": " + key + ": expected shape " + shapeString(*param) + ", found " + shapeString(*t));
            torch::NoGradGuard ng;
            param->copy_(t->to(param->dtype()));
        }
    }
    Checkpoint c;
    c.kind = "domain_module";
    c.note = d.name + " glom (imported from " + fs::absolute(stateDict).string() + (toPixels.empty() ? "" : " and " + toPixels) + ")";
    c.state = moduleState(*g);
    return c;
}

GlomExportResult exportGlomWeights(const std::string& checkpoint, const std::string& out, const std::string& domain) {
    const OpenedCheckpoint opened = openCheckpoint(checkpoint);
    const DomainConfig& d = glomDomainOf(opened.config, domain);
    auto g = buildGlom(opened.config, d);
    const std::string prefix = kDomains + d.name + ".";
    OrderedMap<torch::Tensor> sub;
    for (const auto& [k, t] : opened.checkpoint.state)
        if (startsWith(k, prefix)) sub.set(k.substr(prefix.size()), t);
    try {
        loadModuleState(*g, sub, opened.path + ", domain " + d.name, prefix);
    } catch (const std::invalid_argument& e) {
        throw CheckpointError(e.what());
    }
    GlomExportResult r;
    r.domain = d.name;
    r.options = g->denoiser->glom->options();
    r.constructor = glomConstructor(r.options);
    r.weights = out;
    r.toPixels = (fs::path(out).parent_path() / (fs::path(out).stem().string() + ".to_pixels.pt")).string();
    const auto state = g->denoiser->glom->stateDict();
    r.tensors = state.size();
    writeStateDict(r.weights, state);
    OrderedMap<torch::Tensor> tp;
    tp.set("0.weight", g->denoiser->toPixels->weight.detach());
    tp.set("0.bias", g->denoiser->toPixels->bias.detach());
    writeStateDict(r.toPixels, tp);
    return r;
}

std::vector<std::string> glomExportNotes(const GlomExportResult& r) {
    std::vector<std::string> n = {"wrote " + r.toPixels + " (the README's patches_to_images)"};
    if (r.options.channels == 3) {
        n.push_back("in Python: glom = " + r.constructor + "; glom.load_state_dict(torch.load(\"" + r.weights + "\"))");
    } else {
        n.push_back("in Python: " + r.constructor + " takes 3 channels; this GLOM has " + std::to_string(r.options.channels) +
                    " (image_to_tokens.1.weight is (" + std::to_string(r.options.dim) + ", " +
                    std::to_string(r.options.patchSize * r.options.patchSize * r.options.channels) +
                    ")): load it into a Glom whose image_to_tokens takes that many values per patch");
    }
    return n;
}

}  // namespace gw
