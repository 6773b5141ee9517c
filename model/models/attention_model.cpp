// SPDX-License-Identifier: GPL-3.0-or-later
/// \file attention_model.cpp
/// Model kind `attention`: shimmer's AttentionBase (shimmer/modules/attention_module.py at d729e5e;
/// docs/gw-semantics.md 9). A selection (attention.selection: dynamic_query_attention, kq_fixed_q) is
/// trained on top of the trained GW of attention.gw_run, which stays frozen with its domain modules:
/// the paired latents are corrupted (one side per row, a named side, or every side), encoded, weighed by
/// the selection, fused and decoded, and the loss compares the decoded latents with the clean ones.
/// Domain modules take the GW run's weights and cache their latents; a checkpoint holds the GW's state
/// dict under shimmer's names (so that Engine::prepare(from) finds the domain modules' tensors) and the
/// selection's under `attention.*`; `gw export` writes the selection's state dict under shimmer's names.
#include "model/models/attention_model.h"

#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "model/core/registry.h"
#include "model/gw/global_workspace.h"
#include "model/io/torch_file.h"
#include "model/run/interop.h"
#include "model/run/runs.h"
#include "model/run/trainable_model.h"

namespace gw {

namespace fs = std::filesystem;

namespace {

const std::string kAttentionPrefix = "attention.";

std::string joined(const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

/// The experiment of the GW run at `path` (a run folder's config.yaml, or the one a checkpoint embeds).
/// \throws std::invalid_argument "attention.gw_run: ..." when there is none, it does not read, or it is
/// not a `model: gw` run.
ExperimentConfig gwRunExperiment(const ExperimentConfig& c) {
    const std::string& given = c.attention.gwRun;
    if (given.empty()) throw std::invalid_argument("attention.gw_run: expected a trained GW run folder or checkpoint, found nothing");
    const std::string path = c.resolvePath(given);
    std::error_code ec;
    ExperimentConfig g;
    try {
        if (fs::is_directory(path, ec)) {
            if (!fs::exists(runConfigPath(path), ec))
                throw std::invalid_argument("attention.gw_run: " + path + " is not a run folder (it has no config.yaml)");
            g = loadExperiment(runConfigPath(path));
        } else if (fs::exists(path, ec)) {
            const Checkpoint k = loadCheckpoint(path);
            if (k.kind != "gw")
                throw std::invalid_argument("attention.gw_run: " + path + " is not a GW run's checkpoint (its kind is '" + k.kind + "')");
            g = parseExperiment(k.configYaml, path + " (embedded config)", {}, "/");
        } else {
            throw std::invalid_argument("attention.gw_run: expected a trained GW run folder or checkpoint, found nothing at " + path);
        }
    } catch (const ConfigError& e) {
        throw std::invalid_argument("attention.gw_run: " + path + " does not hold a readable experiment: " + e.what());
    } catch (const CheckpointError& e) {
        throw std::invalid_argument("attention.gw_run: " + path + " is not a readable checkpoint: " + e.what());
    }
    if (g.model != "gw")
        throw std::invalid_argument("attention.gw_run: " + path + " is a model: " + g.model + " run, not a GW run (model: gw)");
    return g;
}

/// The parser's last check of a `model: attention` experiment.
void checkAttentionExperiment(const ExperimentConfig& c) {
    const AttentionConfig& a = c.attention;
    if (c.domains.size() < 2)
        throw std::invalid_argument("domains: a model: attention experiment needs two domains or more; found " +
                                    std::to_string(c.domains.size()));
    if (!a.corruptSides && c.domains.size() != 2)
        throw std::invalid_argument("domains: one-sided corruption (attention.corrupt_sides: false) is for two domains, as "
                                    "shimmer's; found " + std::to_string(c.domains.size()) + " (set attention.corrupt_sides: true)");
    const ExperimentConfig g = gwRunExperiment(c);
    std::vector<std::string> ours, theirs;
    for (const auto& d : c.domains) ours.push_back(d.name);
    for (const auto& d : g.domains) theirs.push_back(d.name);
    std::vector<std::string> a1 = ours, b1 = theirs;
    std::sort(a1.begin(), a1.end());
    std::sort(b1.begin(), b1.end());
    if (a1 != b1)
        throw std::invalid_argument("attention.gw_run: the GW run's domains (" + joined(theirs) + ") differ from the experiment's (" +
                                    joined(ours) + ")");
    for (const auto& d : c.domains)
        if (g.domain(d.name).module != d.module)
            throw std::invalid_argument("domains." + d.name + ".module: the GW run's domain " + d.name + " has module " +
                                        g.domain(d.name).module + ", the experiment's " + d.module);
    if (!a.corruptSingleSide.empty() && std::find(theirs.begin(), theirs.end(), a.corruptSingleSide) == theirs.end())
        throw std::invalid_argument("attention.corrupt_single_side: expected a domain of the GW (" + joined(theirs) + "), found '" +
                                    a.corruptSingleSide + "'");
    if (a.corruptSides && !a.twoSidedCorruption.empty()) {
        for (const auto& [k, v] : a.twoSidedCorruption)
            if (std::find(ours.begin(), ours.end(), k) == ours.end())
                throw std::invalid_argument("attention.two_sided_corruption." + k + ": expected a domain of the GW (" + joined(theirs) +
                                            "), found '" + k + "'");
        for (const auto& d : ours)
            if (!a.twoSidedCorruption.contains(d))
                throw std::invalid_argument("attention.two_sided_corruption: expected a level for every domain (" + joined(ours) +
                                            "); " + d + " has none");
    }
}

class AttentionModel : public TrainableModel {
public:
    GlobalWorkspace* workspace() override { return gw_.get(); }

    void check(EngineAccess& e) override {
        const auto& cfg = e.cfg();
        const std::string where = cfg.sourcePath + ": ";
        try {
            const OpenedCheckpoint run = openCheckpoint(cfg.resolvePath(cfg.attention.gwRun));
            gwCfg_ = run.config;
            gwState_ = run.checkpoint.state;
            gwPath_ = run.path;
        } catch (const CheckpointError& x) {
            throw ConfigError(where + "attention.gw_run: " + x.what());
        }
        std::string sizes;
        bool equal = true;
        std::vector<int64_t> dims;
        names_.clear();
        for (auto& d : e.domains()) {
            names_.push_back(d->cfg.name);
            dims.push_back(d->module->latentDim());
            sizes += (sizes.empty() ? "" : ", ") + d->cfg.name + " " + std::to_string(d->module->latentDim());
            equal = equal && d->module->latentDim() == e.domains().front()->module->latentDim();
        }
        if (!equal)
            throw ConfigError(where + "domains: model: attention adds one corruption vector to every domain, so every latent size "
                                      "must be equal (shimmer's domain_dim); found " + sizes);
        latentDim_ = dims.front();
        const auto& fixed = cfg.attention.fixedCorruptionVector;
        if (!fixed.empty() && static_cast<int64_t>(fixed.size()) != latentDim_)
            throw ConfigError(where + "attention.fixed_corruption_vector: expected " + std::to_string(latentDim_) +
                              " numbers (the latent size), found " + std::to_string(fixed.size()));
        try {
            OrderedMap<int64_t> latent;
            for (size_t i = 0; i < names_.size(); ++i) latent.set(names_[i], dims[i]);
            GlobalWorkspace::checkSettings(gwSettingsOf(gwCfg_), latent);
            torch::NoGradGuard ng;
            auto probe = makeSelection(cfg.attention.selection, names_, dims, gwCfg_.workspaceDim, cfg.attention.selectionParams);
            if (probe->parameters().empty())
                throw std::invalid_argument("attention.selection: '" + cfg.attention.selection +
                                            "' has nothing to train (choose dynamic_query_attention or kq_fixed_q)");
        } catch (const std::invalid_argument& x) {
            std::string m = x.what();
            if (m.rfind("workspace.selection", 0) == 0) m = "attention.selection" + m.substr(19);
            throw ConfigError(where + m);
        }
    }

    bool pretrainsMissingWeights() const override { return false; }
    bool domainWeightsFromElsewhere() const override { return true; }  // the GW run's, in prepareDomain

    void prepareDomain(EngineAccess& e, EngineAccess::Domain& d) override {
        // The GW run's own weights for its domain modules, whatever the engine read before.
        const std::string prefix = "gw_mod.domain_mods." + d.cfg.name + ".";
        OrderedMap<torch::Tensor> sub;
        for (const auto& [k, t] : gwState_)
            if (k.rfind(prefix, 0) == 0) sub.set(k.substr(prefix.size()), t);
        try {
            loadModuleState(*d.module, sub, gwPath_ + ", domain " + d.cfg.name, prefix);
        } catch (const std::invalid_argument& x) {
            throw ConfigError(e.cfg().sourcePath + ": attention.gw_run: " + x.what());
        }
        if (!sub.empty()) e.log("domain " + d.cfg.name + ": weights from the GW run " + gwPath_);
        d.module->freeze();
        d.module->to(e.device());
        e.cacheLatents(d);
    }

    std::vector<torch::Tensor> build(EngineAccess& e) override {
        const auto& cfg = e.cfg();
        OrderedMap<std::shared_ptr<DomainModule>> mods;
        std::vector<int64_t> dims;
        for (auto& d : e.domains()) {
            mods.set(d->cfg.name, d->module);
            dims.push_back(d->module->latentDim());
        }
        gw_ = std::make_shared<GlobalWorkspace>(mods, gwSettingsOf(gwCfg_));
        try {
            gw_->loadStateDict(gwState_);
        } catch (const std::invalid_argument& x) {
            throw ConfigError(cfg.sourcePath + ": attention.gw_run: " + gwPath_ + ": " + x.what());
        }
        gw_->to(e.device());
        for (auto& p : gw_->parameters()) p.requires_grad_(false);
        gw_->eval();
        torch::manual_seed(cfg.seed);
        sel_ = makeSelection(cfg.attention.selection, names_, dims, gwCfg_.workspaceDim, cfg.attention.selectionParams);
        sel_->to(e.device());
        e.log("attention: " + cfg.attention.selection + " over the frozen GW of " + gwPath_ + "; " + corruptionSummary(cfg.attention));
        return sel_->parameters();
    }

    StepLosses step(EngineAccess& e) override {
        std::vector<GroupBatch> batch;
        for (auto& g : e.groups()) batch.push_back(e.makeBatch(g.domains, e.cfg().trainSplit, e.drawIndices(g), true));
        sel_->train();
        LossOutput out = attentionStep(gw_->gwMod(), *sel_, batch, names_, drawFor(e, batch));
        out.loss.backward();
        StepLosses r;
        r.out.loss = out.loss.detach();
        for (const auto& [k, v] : out.metrics) r.out.metrics.set(k, v.detach());
        return r;
    }

    OrderedMap<torch::Tensor> state() const override {
        OrderedMap<torch::Tensor> s = gw_->stateDict();
        for (const auto& [k, t] : moduleState(*sel_)) s.set(kAttentionPrefix + k, t);
        return s;
    }
    void loadState(const OrderedMap<torch::Tensor>& state, const std::string& path) override {
        OrderedMap<torch::Tensor> gwPart, selPart;
        for (const auto& [k, t] : state) {
            if (k.rfind(kAttentionPrefix, 0) == 0) selPart.set(k.substr(kAttentionPrefix.size()), t);
            else gwPart.set(k, t);
        }
        gw_->loadStateDict(gwPart);
        loadModuleState(*sel_, selPart, path, kAttentionPrefix);
    }

    // The same corruption at every evaluation: the generator is seeded alike each time (the Engine
    // restores it after).
    void beginEvaluation(EngineAccess& e) override { torch::manual_seed(e.cfg().seed + 1000003); }

    void evaluateBatch(EngineAccess& e, const std::string& split, const std::vector<int64_t>& idx, bool,
                       const std::function<void(const std::string&, const torch::Tensor&)>& add) override {
        sel_->eval();
        // As shimmer's validation_step: the paired group and every domain alone, the same samples.
        std::vector<GroupBatch> groups;
        groups.push_back(e.makeBatch(names_, split, idx, false));
        for (const auto& n : names_) groups.push_back(e.makeBatch({n}, split, idx, false));
        const LossOutput r = attentionStep(gw_->gwMod(), *sel_, groups, names_, drawFor(e, groups));
        add(metrics::kLoss, r.loss);
        for (const auto& [k, v] : r.metrics) add(k, v);
        // GW Studio's sweep: one side corrupted in every row at each level.
        const std::vector<GroupBatch> paired = {groups.front()};
        const int64_t b = static_cast<int64_t>(idx.size());
        for (size_t side = 0; side < names_.size(); ++side)
            for (double level : evaluationLevels(e.cfg().attention)) {
                AttentionConfig one = e.cfg().attention;
                one.corruptSides = false;
                one.corruptSingleSide = names_[side];
                one.corruptionScaling = {level};
                CorruptionDraw draw = drawCorruption(one, names_, b, latentDim_);
                if (names_.size() > 2) {  // one side of more than two: only that domain's rows
                    draw.twoSided = true;
                    std::vector<torch::Tensor> v;
                    std::vector<double> l;
                    for (size_t j = 0; j < names_.size(); ++j) {
                        v.push_back(draw.vectors.front());
                        l.push_back(j == side ? level : 0.0);
                    }
                    draw.vectors = v;
                    draw.levels = l;
                }
                moveTo(draw, e.device());
                const LossOutput s = attentionStep(gw_->gwMod(), *sel_, paired, names_, draw);
                for (const auto& d : names_)
                    add(metrics::corruptedAt(names_[side], level, metrics::meanAttentionScore(d)),
                        s.metrics.at(metrics::meanAttentionScore(d)));
                add(metrics::corruptedAt(names_[side], level, metrics::kLoss), s.loss);
            }
    }

private:
    static std::string corruptionSummary(const AttentionConfig& a) {
        std::string s = a.corruptSides ? "every side corrupted" : a.corruptSingleSide.empty() ? "one side per row corrupted" : a.corruptSingleSide + " corrupted";
        s += a.fixedCorruptionVector.empty() ? " by N(0, 1) vectors" : " by the fixed vector";
        if (!a.twoSidedCorruption.empty()) {
            s += ", levels";
            for (const auto& [k, v] : a.twoSidedCorruption) s += " " + k + " " + metrics::levelText(v);
        } else {
            s += ", levels";
            if (a.corruptionScaling.empty()) s += " 1";
            for (double v : a.corruptionScaling) s += " " + metrics::levelText(v);
        }
        return s;
    }
    static void moveTo(CorruptionDraw& d, const torch::Device& dev) {
        if (d.side.defined()) d.side = d.side.to(dev);
        for (auto& v : d.vectors) v = v.to(dev);
    }
    /// The draw for the paired group of `groups` (none without one).
    CorruptionDraw drawFor(EngineAccess& e, const std::vector<GroupBatch>& groups) const {
        for (const auto& g : groups)
            if (g.domains.size() == names_.size() && g.domains.size() >= 2) {
                CorruptionDraw d = drawCorruption(e.cfg().attention, names_, g.latents.at(g.domains.front()).size(0), latentDim_);
                moveTo(d, e.device());
                return d;
            }
        return {};
    }

    ExperimentConfig gwCfg_;
    OrderedMap<torch::Tensor> gwState_;
    std::string gwPath_;
    std::vector<std::string> names_;
    int64_t latentDim_ = 0;
    std::shared_ptr<GlobalWorkspace> gw_;
    std::shared_ptr<Selection> sel_;
};

/// `gw export`: the selection's state dict under shimmer's names (query_layer.weight, key_layers.{d}.*,
/// initial_gw_state), what `DynamicQueryAttention(...).load_state_dict` reads.
void exportAttention(const Checkpoint& c, const std::string&, const std::string& out, ExportResult& r) {
    OrderedMap<torch::Tensor> sel;
    for (const auto& [k, t] : c.state)
        if (k.rfind(kAttentionPrefix, 0) == 0) sel.set(k.substr(kAttentionPrefix.size()), t);
    if (sel.empty()) throw CheckpointError(out + ": the checkpoint holds no attention.* tensors (not an attention run's)");
    writeStateDict(out, sel);
    r.tensors = sel.size();
    r.layout = "the trained selection's state_dict";
    r.holds = "the state_dict of the selection a model: attention run trained (shimmer DynamicQueryAttention / KQFixedQSelection; docs/gw-semantics.md 9)";
    r.notes.push_back("in Python: attention.load_state_dict(torch.load(\"" + r.weights + "\")); the frozen GW is the gw_run's own export");
}

}  // namespace

CorruptionDraw drawCorruption(const AttentionConfig& a, const std::vector<std::string>& domains, int64_t batch, int64_t latentDim) {
    if (!a.fixedCorruptionVector.empty() && static_cast<int64_t>(a.fixedCorruptionVector.size()) != latentDim)
        throw std::invalid_argument("attention.fixed_corruption_vector: expected " + std::to_string(latentDim) + " numbers, found " +
                                    std::to_string(a.fixedCorruptionVector.size()));
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    auto vector = [&] {
        if (a.fixedCorruptionVector.empty()) return torch::randn({batch, latentDim}, f32);
        std::vector<float> v(a.fixedCorruptionVector.begin(), a.fixedCorruptionVector.end());
        return torch::tensor(v, f32).expand({batch, latentDim}).clone();
    };
    auto level = [&] {
        if (a.corruptionScaling.empty()) return 1.0;
        const int64_t n = static_cast<int64_t>(a.corruptionScaling.size());
        return a.corruptionScaling[static_cast<size_t>(torch::randint(n, {1}, torch::kInt64).item<int64_t>())];
    };
    CorruptionDraw d;
    d.twoSided = a.corruptSides;
    if (!a.corruptSides) {
        if (!a.corruptSingleSide.empty()) {
            const auto it = std::find(domains.begin(), domains.end(), a.corruptSingleSide);
            if (it == domains.end())
                throw std::invalid_argument("attention.corrupt_single_side: expected one of " + joined(domains) + ", found '" +
                                            a.corruptSingleSide + "'");
            d.side = torch::full({batch}, static_cast<int64_t>(it - domains.begin()), torch::kInt64);
        } else {
            d.side = torch::randint(static_cast<int64_t>(domains.size()), {batch}, torch::kInt64);
        }
        d.vectors.push_back(vector());
        d.levels.push_back(level());
        return d;
    }
    for (const auto& name : domains) {
        d.vectors.push_back(vector());
        const double* fixed = a.twoSidedCorruption.find(name);
        d.levels.push_back(fixed ? *fixed : level());
    }
    return d;
}

TensorMap corruptLatents(const TensorMap& clean, const std::vector<std::string>& domains, const CorruptionDraw& draw) {
    auto noise = [&](size_t i) {
        const auto& v = draw.vectors.at(i);
        const auto n = (v - v.mean(1, true)) / v.std(1, true, true);
        return n * (5.0 * draw.levels.at(i));
    };
    TensorMap out;
    if (!draw.twoSided) {
        if (domains.size() != 2) throw std::invalid_argument("one-sided corruption needs two domains");
        const auto first = draw.side.eq(0).unsqueeze(1);  // rows whose first domain is corrupted
        const auto n = noise(0);
        for (const auto& [d, u] : clean) {
            if (d == domains[0]) out.set(d, u + n.to(u.dtype()) * first.to(u.dtype()));
            else if (d == domains[1]) out.set(d, u + n.to(u.dtype()) * first.logical_not().to(u.dtype()));
            else out.set(d, u);
        }
        return out;
    }
    for (const auto& [d, u] : clean) {
        const auto it = std::find(domains.begin(), domains.end(), d);
        out.set(d, it == domains.end() ? u : u + noise(static_cast<size_t>(it - domains.begin())).to(u.dtype()));
    }
    return out;
}

LossOutput attentionStep(GWModule& gw, Selection& selection, const std::vector<GroupBatch>& groups,
                         const std::vector<std::string>& domains, const CorruptionDraw& draw) {
    if (groups.empty()) throw std::invalid_argument("attention step: no group");
    const std::set<std::string> all(domains.begin(), domains.end());
    LossOutput out;
    std::vector<torch::Tensor> losses;
    TensorMap scoresMeans;
    for (const auto& g : groups) {
        const bool paired = g.domains.size() >= 2 && std::set<std::string>(g.domains.begin(), g.domains.end()) == all;
        const TensorMap latents = paired && !draw.vectors.empty() ? corruptLatents(g.latents, domains, draw) : g.latents;
        const TensorMap pre = gw.encode(latents);
        const TensorMap scores = selection.scores(latents, pre);
        const auto state = gw.fuse(pre, scores);
        const TensorMap decoded = gw.decode(state, g.domains);
        std::vector<torch::Tensor> terms;
        for (const auto& d : g.domains) {
            const torch::Tensor* raw = g.inputs.find(d);
            auto l = gw.domainModule(d).computeLoss(decoded.at(d), g.latents.at(d), raw ? *raw : torch::Tensor());
            if (!l) throw std::logic_error("attention step: domain " + d + "'s module computes no loss");
            terms.push_back(l->loss);
        }
        losses.push_back(torch::stack(terms).mean());
        std::vector<std::string> sorted = g.domains;
        std::sort(sorted.begin(), sorted.end());
        out.metrics.set(metrics::groupLoss(sorted), losses.back());
        if (g.domains.size() > 1)
            for (const auto& [d, s] : scores) scoresMeans.set(metrics::meanAttentionScore(d), s.mean());
    }
    for (const auto& [k, v] : scoresMeans) out.metrics.set(k, v);
    out.loss = torch::stack(losses).mean();
    return out;
}

std::vector<double> evaluationLevels(const AttentionConfig& a) {
    std::vector<double> l = a.corruptionScaling.empty() ? std::vector<double>{1.0} : a.corruptionScaling;
    l.push_back(0.0);
    std::sort(l.begin(), l.end());
    l.erase(std::unique(l.begin(), l.end()), l.end());
    return l;
}

std::string attentionLevelsTable(const OrderedMap<double>& m) {
    // side -> level -> (metric -> value), and the domains in the order first seen.
    std::map<std::string, std::map<double, std::map<std::string, double>>> rows;
    std::vector<std::string> sides, doms;
    for (const auto& [full, v] : m) {
        const auto slash = full.find('/');
        metrics::CorruptedAt c;
        if (slash == std::string::npos || !metrics::parseCorruptedAt(full.substr(slash + 1), c)) continue;
        if (std::find(sides.begin(), sides.end(), c.side) == sides.end()) sides.push_back(c.side);
        const std::string suffix = "_mean_attention_score";
        if (c.metric.size() > suffix.size() && c.metric.compare(c.metric.size() - suffix.size(), suffix.size(), suffix) == 0) {
            const std::string d = c.metric.substr(0, c.metric.size() - suffix.size());
            if (std::find(doms.begin(), doms.end(), d) == doms.end()) doms.push_back(d);
            rows[c.side][c.level][d] = v;
        } else {
            rows[c.side][c.level][c.metric] = v;
        }
    }
    if (rows.empty()) return {};
    std::ostringstream s;
    s << "mean attention score per domain, one side corrupted in every row:\n";
    s << "  " << std::left << std::setw(16) << "corrupted" << std::setw(10) << "level";
    for (const auto& d : doms) s << std::setw(14) << d;
    s << "loss\n";
    for (const auto& side : sides)
        for (const auto& [level, vals] : rows[side]) {
            s << "  " << std::left << std::setw(16) << side << std::setw(10) << metrics::levelText(level);
            for (const auto& d : doms) {
                const auto it = vals.find(d);
                std::ostringstream v;
                if (it != vals.end()) v << std::fixed << std::setprecision(4) << it->second;
                s << std::setw(14) << v.str();
            }
            const auto it = vals.find(metrics::kLoss);
            if (it != vals.end()) s << std::setprecision(6) << std::defaultfloat << it->second;
            s << "\n";
        }
    return s.str();
}

void registerAttentionModel(ModelRegistry& r) {
    ModelKindImpl impl;
    impl.sections = {"attention"};
    impl.explorerView = "translations";
    impl.checkExperiment = checkAttentionExperiment;
    impl.make = [](const ExperimentConfig&) { return std::make_shared<AttentionModel>(); };
    impl.exportWeights = exportAttention;
    r.add({"attention",
           "a selection trained over a trained, frozen GW on corrupted latents (shimmer AttentionBase; docs/gw-semantics.md 9)",
           {}},
          std::move(impl));
}

}  // namespace gw
