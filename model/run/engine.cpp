// SPDX-License-Identifier: GPL-3.0-or-later
// Engine: preparing a run (data opened or imported, domain modules built and given their weights,
// frozen latents cached, training groups and their samplers, the GW and its optimiser) and the
// batches read from those caches. Pre-training, training and evaluation are in engine_*.cpp.
#include "model/run/engine.h"
#include "model/run/latent_cache.h"

#include <algorithm>
#include <chrono>
#include <iomanip>
#include <filesystem>
#include <sstream>

#include "data/fashion_mnist.h"
#include "data/file_hash.h"
#include "data/npy.h"
#include "data/simple_shapes.h"
#include "model/run/engine_internal.h"
#include "model/domains/auxiliary_data.h"
#include "model/run/trainable_model.h"
#include "model/core/registry.h"
#include "model/run/runs.h"

namespace gw {
namespace fs = std::filesystem;

Engine::Engine(ExperimentConfig cfg, LogFn log) : cfg_(std::move(cfg)), log_(std::move(log)), device_(torch::kCPU) {}
Engine::~Engine() = default;

std::string Engine::splitName(const std::string& which) const {
    if (which == "train") return cfg_.trainSplit;
    if (which == "val") return cfg_.valSplit;
    if (which == "test") return cfg_.testSplit;
    return which;
}

bool Engine::hasSplit(const std::string& split) const {
    const std::string s = splitName(split);
    for (const auto& d : domains_)
        if (!d->arrays.contains(s)) return false;
    return !domains_.empty();
}

namespace {
/// The groups of a public domain split file ({frozenset of domain names: int64 indices}), in the order of
/// the default groups: fewer domains first, then the experiment's domain order; each group's domains in
/// the experiment's order. \throws data::DataError naming the file and what is wrong.
std::vector<std::pair<std::vector<std::string>, std::vector<int64_t>>> groupsOf(
    const std::string& file, int64_t n, const std::vector<std::string>& names) {
    data::NpyArray a;
    try {
        a = data::readNpy(file);
    } catch (const data::NpyError& e) {
        throw data::DataError(std::string("data.groups_file: ") + e.what());
    }
    const auto bad = [&](const std::string& what) {
        throw data::DataError(file + ": expected a domain split of shapesd create ({frozenset of domain names: "
                                     "indices}), found " + what);
    };
    if (a.dtype != "O" || a.objects.size() != 1 || a.objects[0]->kind != data::PyValue::Kind::Dict)
        bad(a.dtype == "O" && !a.objects.empty() ? "a " + a.objects[0]->typeName() : "an array of " + a.dtype);
    std::vector<std::pair<std::vector<std::string>, std::vector<int64_t>>> out;
    for (const auto& [key, value] : a.objects[0]->dict) {
        if (key->kind != data::PyValue::Kind::Set) bad("a key that is a " + key->typeName());
        std::vector<std::string> domains;
        for (const auto& name : names)
            for (const auto& x : key->items)
                if (x->kind == data::PyValue::Kind::Str && x->s == name) domains.push_back(name);
        if (domains.size() != key->items.size()) {
            std::string given, known;
            for (const auto& x : key->items) given += (given.empty() ? "" : ",") + x->s;
            for (const auto& d : names) known += (known.empty() ? "" : ", ") + d;
            throw data::DataError(file + ": group {" + given + "} names a domain this experiment does not have (" + known + ")");
        }
        if (value->kind != data::PyValue::Kind::Array || value->array->dtype.empty() || value->array->dtype[0] == 'f' ||
            value->array->dtype == "U" || value->array->dtype == "O")
            bad("indices that are a " + value->typeName());
        std::vector<int64_t> idx;
        for (int64_t i = 0; i < value->array->size(); ++i) {
            const int64_t k = value->array->integer(i);
            if (k < 0 || k >= n)
                throw data::DataError(file + ": group " + metrics::domainSet(domains) + ": index " + std::to_string(k) +
                                      " is outside the training split's " + std::to_string(n) + " samples");
            idx.push_back(k);
        }
        if (idx.empty()) continue;
        out.emplace_back(domains, idx);
    }
    const auto rank = [&](const std::vector<std::string>& d) {
        std::vector<size_t> r{d.size()};
        for (const auto& x : d) r.push_back(size_t(std::find(names.begin(), names.end(), x) - names.begin()));
        return r;
    };
    std::stable_sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
    return out;
}
}  // namespace

void Engine::prepare(const Checkpoint* from) {
    if (prepared_) return;
    const int threads = configureThreads(cfg_.threads);
    device_ = parseDevice(cfg_.device);
    torch::manual_seed(cfg_.seed);
    if (log_) log_("device " + device_.str() + ", " + std::to_string(threads) + " threads");
    trainable_ = modelRegistry().at(cfg_.model, cfg_.sourcePath + ": model").impl.make(cfg_);
    EngineAccess access(*this);
    openData();
    buildModules();
    trainable_->check(access);
    const bool pretrains = trainable_->pretrainsMissingWeights();
    if (!from && pretrains)  // every pre-training's destination, before the first one starts
        for (auto& d : domains_)
            if (d->module->needsPretraining() && !fs::exists(cfg_.resolvePath(d->cfg.weights))) pretrainTarget(*d);
    for (auto& d : domains_) {
        if (from) {
            const std::string prefix = "gw_mod.domain_mods." + d->cfg.name + ".";
            OrderedMap<torch::Tensor> sub;
            for (const auto& [k, t] : from->state)
                if (k.rfind(prefix, 0) == 0) sub.set(k.substr(prefix.size()), t);
            loadModuleState(*d->module, sub, "checkpoint, domain " + d->cfg.name, prefix);
        } else if (d->module->needsPretraining()) {
            const std::string w = cfg_.resolvePath(d->cfg.weights);
            if (fs::exists(w)) {
                std::string sha;
                try {
                    sha = data::checkSha256Sidecar(w);
                } catch (const std::runtime_error& e) {
                    throw CheckpointError(e.what());
                }
                Checkpoint c = loadCheckpoint(w);
                if (c.kind != "domain_module")
                    throw CheckpointError(w + ": expected pre-trained domain-module weights, found a '" + c.kind + "' checkpoint");
                loadModuleState(*d->module, c.state, w);
                if (log_) log_("domain " + d->cfg.name + ": weights from " + w + (sha.empty() ? "" : " (SHA-256 " + sha.substr(0, 12) + "… checked)"));
            } else if (pretrains) {
                pretrainModule(*d);
            } else if (log_ && !trainable_->domainWeightsFromElsewhere()) {
                log_("domain " + d->cfg.name + ": initial weights drawn with seed " + std::to_string(cfg_.seed));
            }
        }
        trainable_->prepareDomain(access, *d);
    }
    optim_ = std::make_unique<FlatAdamW>(trainable_->build(access), cfg_.lr, cfg_.beta1, cfg_.beta2, cfg_.eps, cfg_.weightDecay);
    schedule().validate();
    trainable_->afterBuild(access);

    // Groups: the experiment's (data.groups), else every domain alone (all its training samples), then all
    // domains paired.
    const int64_t n = domains_.front()->arrays.at(cfg_.trainSplit)->rows();
    uint64_t seed = cfg_.seed * 1000003ULL + 17;
    std::vector<std::string> names;
    for (auto& d : domains_) names.push_back(d->cfg.name);
    // A group's domains in the experiment's order (as the default groups have them), its own sampler seed.
    auto addGroup = [&](const std::vector<std::string>& members, std::vector<int64_t> indices) {
        Group g;
        for (const auto& d : names)
            if (std::find(members.begin(), members.end(), d) != members.end()) g.domains.push_back(d);
        g.sampler = std::make_unique<data::GroupSampler>(std::move(indices), n, seed++);
        groups_.push_back(std::move(g));
    };
    if (!cfg_.groupsFile.empty()) {
        for (auto& [domains, indices] : groupsOf(cfg_.resolvePath(cfg_.groupsFile), n, names)) addGroup(domains, std::move(indices));
    } else if (!cfg_.groups.empty()) {
        std::vector<data::GroupAmount> asked;
        for (const auto& g : cfg_.groups) {
            const int64_t amount = g.count >= 0 ? g.count : static_cast<int64_t>(static_cast<double>(n) * g.proportion);
            if (amount > n)
                throw ConfigError(cfg_.sourcePath + ": data.groups " + metrics::domainSet(g.domains) + ": count " +
                                  std::to_string(amount) + " is more than the training split's " + std::to_string(n) + " samples");
            asked.push_back({g.domains, amount});
        }
        std::vector<std::vector<int64_t>> chosen;
        try {
            chosen = data::alignGroups(n, asked, cfg_.seed);
        } catch (const std::invalid_argument& e) {
            throw ConfigError(cfg_.sourcePath + ": data.groups: " + e.what());
        }
        for (size_t i = 0; i < chosen.size(); ++i) {
            if (chosen[i].empty()) {
                if (log_) log_("group " + metrics::domainSet(cfg_.groups[i].domains) + " holds no sample and is left out");
                continue;
            }
            addGroup(cfg_.groups[i].domains, std::move(chosen[i]));
        }
    } else {
        std::vector<int64_t> all(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
        std::vector<int64_t> paired;
        if (!cfg_.pairedDataset.empty()) {
            data::H5Array idx(cfg_.resolvePath(cfg_.dataFile), cfg_.pairedDataset);
            auto t = idx.readAll().to(torch::kInt64).reshape({-1});
            paired.assign(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
            for (auto i : paired)
                if (i < 0 || i >= n)
                    throw data::DataError(idx.file() + ":" + idx.dataset() + ": paired index " + std::to_string(i) +
                                          " is outside the training split's " + std::to_string(n) + " samples");
        } else {
            paired = data::pairedSubset(n, cfg_.pairedFraction, cfg_.pairedCount, cfg_.seed);
        }
        for (const auto& d : names) addGroup({d}, all);
        if (names.size() >= 2 && !paired.empty()) addGroup(names, std::move(paired));
    }
    if (log_) {
        std::ostringstream s;
        s << "groups:";
        for (const auto& [name, size] : groupSizes()) s << " " << name << " " << size;
        log_(s.str());
    }
    prepared_ = true;
}

std::vector<std::pair<std::string, int64_t>> Engine::groupSizes() const {
    std::vector<std::pair<std::string, int64_t>> r;
    for (const auto& g : groups_) r.emplace_back(groupName(g.domains), g.sampler->size());
    return r;
}

DomainModuleSpec domainModuleSpec(const ExperimentConfig& cfg, const DomainConfig& d) {
    DomainModuleSpec spec(d.module, d.params);
    spec.domain = d.name;
    if (const auto* kind = domainModuleRegistry().find(d.module))
        for (const auto& p : kind->info.params)
            if (p.type == ParamInfo::Type::Path)
                if (const std::string* v = d.params.find(p.key); v && !v->empty()) spec.params.set(p.key, cfg.resolvePath(*v));
    return spec;
}

void Engine::keepFilesIn(const std::string& runDir) {
    for (size_t i = 0; i < domains_.size(); ++i) {
        auto& d = *domains_[i];
        for (const auto& [k, v] : d.module->keepInRun(runDir, d.cfg.name)) {
            d.cfg.params.set(k, v);
            cfg_.domains[i].params.set(k, v);
        }
    }
}

std::string dataFileFor(const ExperimentConfig& cfg) {
    const std::string dataFile = cfg.resolvePath(cfg.dataFile);
    if (cfg.dataImport.empty() || dataFile.empty() || fs::exists(dataFile) ||
        writableFolder(fs::path(dataFile).parent_path().string()))
        return dataFile;
    return (fs::path(userDataDir()) / fs::path(dataFile).filename()).string();
}

void Engine::openData() {
    const std::string dataFile = dataFileFor(cfg_);
    if (dataFile != cfg_.resolvePath(cfg_.dataFile)) {
        if (log_) log_(cfg_.resolvePath(cfg_.dataFile) + " cannot be written: the imported data go to " + dataFile);
        cfg_.dataFile = dataFile;
    }
    if (!cfg_.dataImport.empty() && !dataFile.empty() && !fs::exists(dataFile)) {
        if (log_) log_("importing " + cfg_.dataImport + " into " + dataFile);
        if (cfg_.dataImport == "simple-shapes") data::generateSimpleShapes(dataFile, data::SimpleShapesOptions{});
        else data::importFashionMnist(data::kFashionMnistDir, dataFile);
    }
    for (const auto& dc : cfg_.domains) {
        auto d = std::make_unique<DomainState>();
        d->cfg = dc;
        d->file = cfg_.resolvePath(dc.file.empty() ? cfg_.dataFile : dc.file);
        for (const std::string& split : {cfg_.trainSplit, cfg_.valSplit, cfg_.testSplit}) {
            std::string path = dc.dataset;
            if (auto p = path.find("{split}"); p != std::string::npos) path.replace(p, 7, split);
            if (split != cfg_.trainSplit && !data::H5Array::exists(d->file, path)) continue;  // optional splits
            auto arr = std::make_shared<data::H5Array>(d->file, path);
            if (arr->rows() == 0) throw data::DataError(d->file + ":" + path + ": expected samples, found an empty dataset");
            const double mb = static_cast<double>(arr->rows() * arr->rowBytes()) / (1 << 20);
            if (mb <= static_cast<double>(cfg_.cacheMb)) d->raw.set(split, arr->readAll());
            d->arrays.set(split, arr);
        }
        domains_.push_back(std::move(d));
    }
    // Paired data: every domain of a split has the same sample count.
    for (const std::string& split : {cfg_.trainSplit, cfg_.valSplit, cfg_.testSplit}) {
        const data::H5Array* first = nullptr;
        for (const auto& d : domains_) {
            const auto* a = d->arrays.find(split);
            if (!a) continue;
            if (!first) first = a->get();
            else if ((*a)->rows() != first->rows())
                throw data::DataError("split '" + split + "': expected the same sample count in every domain, found " +
                                      std::to_string(first->rows()) + " in " + first->file() + ":" + first->dataset() +
                                      " and " + std::to_string((*a)->rows()) + " in " + (*a)->file() + ":" + (*a)->dataset());
        }
    }
}

namespace {
/// Every row of an auxiliary dataset, kept in memory: uint8 as it is, anything else as float32.
torch::Tensor readAuxiliary(const data::H5Array& a) {
    auto t = a.readAll();
    return t.scalar_type() == torch::kUInt8 ? t : t.to(torch::kFloat32);
}

/// The auxiliary datasets of a domain's module (model/domains/auxiliary_data.h), for every split the domain has.
OrderedMap<std::vector<torch::Tensor>> openAuxiliaryData(const std::string& file, const std::string& domain,
                                                         const OrderedMap<std::shared_ptr<data::H5Array>>& arrays,
                                                         const std::vector<std::string>& datasets) {
    OrderedMap<std::vector<torch::Tensor>> out;
    if (datasets.empty()) return out;
    for (const auto& [split, arr] : arrays) {
        std::vector<torch::Tensor> rows;
        for (std::string path : datasets) {
            if (auto p = path.find("{split}"); p != std::string::npos) path.replace(p, 7, split);
            data::H5Array a(file, path);
            if (a.rows() != arr->rows())
                throw data::DataError(file + ":" + path + ": expected " + std::to_string(arr->rows()) +
                                      " samples, as the domain's " + arr->dataset() + ", found " + std::to_string(a.rows()) +
                                      " (domain " + domain + ", a dataset its module reads beside its own)");
            rows.push_back(readAuxiliary(a));
        }
        out.set(split, std::move(rows));
    }
    return out;
}
}  // namespace

void Engine::buildModules() {
    for (auto& d : domains_) {
        const auto& arr = *d->arrays.at(cfg_.trainSplit);
        DomainModuleSpec spec = domainModuleSpec(cfg_, d->cfg);
        int64_t features = 1;
        for (size_t i = 1; i < arr.shape().size(); ++i) features *= arr.shape()[i];
        spec.inputDim = features;
        spec.dataClasses = arr.intAttribute("num_classes", 0);
        std::vector<int64_t> first;
        for (int64_t i = 0; i < std::min<int64_t>(4, arr.rows()); ++i) first.push_back(i);
        spec.probe = rawRows(*d, cfg_.trainSplit, first);
        try {
            d->module = makeDomainModule(spec);
            if (const auto* ad = dynamic_cast<const AuxiliaryData*>(d->module.get())) {
                d->aux = openAuxiliaryData(d->file, d->cfg.name, d->arrays, ad->auxiliaryDatasets());
                spec.probe = rawRows(*d, cfg_.trainSplit, first);
            }
            d->module->prepare(spec.probe);  // checks the data's shape and dtype
        } catch (const std::invalid_argument& e) {
            throw ConfigError(cfg_.sourcePath + ": domains." + d->cfg.name + " (" + arr.file() + ":" + arr.dataset() +
                              ", stored " + arr.storedType() + "): " + e.what());
        }
        for (const auto& fam : metrics::families()) {  // domains.NAME.losses
            if (!fam.perDomain) continue;
            bool on = false;
            for (const auto& l : d->cfg.losses) on = on || l == fam.term;
            d->module->setFamilyEnabled(fam.family, on);
        }
    }
}

torch::Tensor Engine::rawRows(DomainState& d, const std::string& split, const std::vector<int64_t>& idx) {
    torch::Tensor own;
    if (const auto* all = d.raw.find(split)) own = all->index_select(0, torch::tensor(idx, torch::kInt64));
    else own = d.arrays.at(split)->readRows(idx);
    const auto* aux = d.aux.find(split);
    if (!aux) return own;
    const auto index = torch::tensor(idx, torch::kInt64);
    std::vector<torch::Tensor> parts{own.flatten(1).to(torch::kFloat32)};
    for (const auto& a : *aux) parts.push_back(a.index_select(0, index).flatten(1).to(torch::kFloat32));
    return torch::cat(parts, 1);
}

void Engine::cacheLatents(DomainState& d) {
    if (!d.module->isFrozen()) return;
    torch::NoGradGuard ng;
    auto& mod = *d.module;
    const bool onDisk = !mod.lossNeedsInput();  // inputs are not kept on disk: such modules encode as before
    const std::string moduleDigest = onDisk && !latentCacheFolder().empty() ? latentModuleDigest(mod, d.cfg.module, d.cfg.params) : "";
    for (const auto& [split, arr] : d.arrays) {
        const int64_t n = arr->rows();
        std::string file, why;
        if (onDisk) {
            try {
                file = latentCacheFile(moduleDigest, *arr, device_.is_cuda() ? "cuda" : "cpu");
            } catch (const std::exception& e) {
                why = e.what();
            }
            if (auto cached = readCachedLatents(file, n, mod.latentDim(), why)) {
                d.latents.set(split, cached->to(device_));
                if (log_) log_("domain " + d.cfg.name + ": " + split + " latents from the cache (" + file + ")");
                continue;
            }
            if (!why.empty() && log_) log_("domain " + d.cfg.name + ": latent cache entry not used: " + why);
        }
        const auto start = std::chrono::steady_clock::now();
        std::vector<torch::Tensor> lat, in;
        for (int64_t s = 0; s < n; s += 2048) {
            std::vector<int64_t> idx;
            for (int64_t i = s; i < std::min(n, s + 2048); ++i) idx.push_back(i);
            auto x = mod.prepare(rawRows(d, split, idx)).to(device_);
            try {
                lat.push_back(mod.encode(x));
            } catch (const DomainModuleError& e) {
                throw TrainingError(std::string(e.what()) + " (encoding samples " + std::to_string(s) + " to " +
                                    std::to_string(s + int64_t(idx.size()) - 1) + " of split " + split + " for the latent cache)");
            }
            if (mod.lossNeedsInput()) in.push_back(x);
        }
        d.latents.set(split, torch::cat(lat));
        if (!in.empty()) d.inputs.set(split, torch::cat(in));
        if (file.empty()) continue;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const std::string failed = writeCachedLatents(file, d.latents.at(split));
        if (log_) {
            std::ostringstream line;
            line << "domain " << d.cfg.name << ": " << split << " encoded (" << n << " samples, " << std::fixed
                 << std::setprecision(1) << secs << " s)"
                 << (failed.empty() ? ", kept in the latent cache" : "; the latent cache could not keep them: " + failed);
            log_(line.str());
        }
    }
}

GroupBatch Engine::makeBatch(const std::vector<std::string>& domains, const std::string& split,
                             const std::vector<int64_t>& idx, bool training) {
    GroupBatch b;
    b.domains = domains;
    torch::Tensor index;
    for (const auto& name : domains) {
        DomainState* d = nullptr;
        for (auto& x : domains_)
            if (x->cfg.name == name) d = x.get();
        auto& mod = *d->module;
        if (mod.isFrozen()) {
            if (!index.defined()) index = torch::tensor(idx, torch::kInt64).to(device_);
            b.latents.set(name, d->latents.at(split).index_select(0, index));
            if (const auto* in = d->inputs.find(split)) b.inputs.set(name, in->index_select(0, index));
            else b.inputs.set(name, torch::Tensor());
        } else {
            auto x = mod.prepare(rawRows(*d, split, idx)).to(device_);
            if (training) mod.train();
            else mod.eval();
            b.latents.set(name, mod.encode(x));
            b.inputs.set(name, x);
        }
    }
    return b;
}

}  // namespace gw
