// SPDX-License-Identifier: GPL-3.0-or-later
// Engine: evaluation of a split (every metric, through the model kind; RNG left as it was) and the
// translation explorer's view of samples of a GW (translations, demi-cycles, cycles, workspace PCA).
#include "model/run/engine.h"

#include <algorithm>

#include "model/run/engine_internal.h"
#include "model/run/trainable_model.h"

namespace gw {

OrderedMap<double> Engine::evaluate(const std::string& which, int64_t maxSamples, bool dataSpace) {
    if (!prepared_) prepare();
    const std::string split = splitName(which);
    if (!hasSplit(which))
        throw data::DataError("split '" + split + "' is missing for some domain (expected " +
                              domains_.front()->cfg.dataset + " with {split} = " + split + ")");
    const std::string prefix = (which == "train" || which == "val" || which == "test") ? which : split;
    auto cpuGen = at::detail::getDefaultCPUGenerator();
    torch::Tensor rng = cpuGen.get_state();
    torch::NoGradGuard ng;
    EngineAccess access(*this);
    trainable_->beginEvaluation(access);
    const int64_t n = maxSamples >= 0 ? std::min(maxSamples, domains_.front()->arrays.at(split)->rows())
                                      : domains_.front()->arrays.at(split)->rows();
    OrderedMap<double> sums;
    for (int64_t s = 0; s < n; s += cfg_.valBatchSize) {
        std::vector<int64_t> idx;
        for (int64_t i = s; i < std::min(n, s + cfg_.valBatchSize); ++i) idx.push_back(i);
        const double w = static_cast<double>(idx.size());
        auto add = [&](const std::string& k, const torch::Tensor& v) {
            const double x = v.item<double>() * w;
            if (auto* p = sums.find(k)) *p += x;
            else sums.set(k, x);
        };
        trainable_->evaluateBatch(access, split, idx, dataSpace, add);
    }
    cpuGen.set_state(rng);
    OrderedMap<double> out;
    for (const auto& [k, v] : sums) out.set(prefix + "/" + k, v / static_cast<double>(n));
    return out;
}

std::vector<int64_t> Engine::pickSamples(const std::string& which, const std::string& mode, int64_t count, uint64_t seed) {
    if (!prepared_) prepare();
    const std::string split = splitName(which);
    if (!hasSplit(which)) throw data::DataError("split '" + split + "' is missing for some domain");
    const int64_t n = domains_.front()->arrays.at(split)->rows();
    std::vector<int64_t> out;
    if (mode == "random") {
        auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
        auto perm = torch::randperm(n, g, torch::kLong);
        for (int64_t i = 0; i < std::min(count, n); ++i) out.push_back(perm[i].item<int64_t>());
    } else if (mode == "per_class") {
        DomainState* cls = nullptr;
        for (auto& d : domains_)
            if (!cls && d->module->classCount() > 0) cls = d.get();
        if (!cls) throw std::invalid_argument("per_class: the experiment has no domain with classes (class_label, attributes)");
        const int64_t classes = cls->module->classCount();
        std::vector<int64_t> taken(static_cast<size_t>(classes), 0);
        for (int64_t s = 0; s < n && int64_t(out.size()) < count * classes; s += 1024) {
            std::vector<int64_t> idx;
            for (int64_t i = s; i < std::min(n, s + 1024); ++i) idx.push_back(i);
            auto labels = cls->module->classesOf(cls->module->prepare(rawRows(*cls, split, idx)));
            for (size_t k = 0; k < idx.size(); ++k) {
                const int64_t c = labels[static_cast<int64_t>(k)].item<int64_t>();
                if (c >= 0 && c < classes && taken[static_cast<size_t>(c)] < count) {
                    ++taken[static_cast<size_t>(c)];
                    out.push_back(idx[k]);
                }
            }
        }
        std::stable_sort(out.begin(), out.end(), [&](int64_t a, int64_t b) { return a < b; });
    } else if (mode == "first") {
        for (int64_t i = 0; i < std::min(count, n); ++i) out.push_back(i);
    } else {
        throw std::invalid_argument("sample mode '" + mode + "': expected random, per_class or first");
    }
    return out;
}

ExploreResult Engine::explore(const std::string& which, const std::vector<int64_t>& indices, int64_t pcaSamples,
                              const std::vector<std::string>& broadcastFrom) {
    if (!prepared_) prepare();
    if (!trainable_->workspace())
        throw std::logic_error("a model: " + cfg_.model + " experiment has no translations to explore (its view: " + explorerView() + ")");
    for (const auto& b : broadcastFrom) {
        bool known = false;
        std::string names;
        for (auto& d : domains_) {
            known = known || d->cfg.name == b;
            names += (names.empty() ? "" : ", ") + d->cfg.name;
        }
        if (!known) throw std::invalid_argument("broadcast from '" + b + "': no such domain (the GW has " + names + ")");
    }
    const std::string split = splitName(which);
    if (!hasSplit(which)) throw data::DataError("split '" + split + "' is missing for some domain");
    const int64_t n = domains_.front()->arrays.at(split)->rows();
    for (auto i : indices)
        if (i < 0 || i >= n)
            throw data::DataError("sample " + std::to_string(i) + " is out of range: split '" + split + "' has " +
                                  std::to_string(n) + " samples");
    torch::NoGradGuard ng;
    auto cpuGen = at::detail::getDefaultCPUGenerator();
    const torch::Tensor rng = cpuGen.get_state();
    ExploreResult r;
    r.split = which;
    r.indices = indices;
    auto& gw = model().gwMod();
    // Batch norm must not use (or update) batch statistics here.
    const EvalModeScope evalMode(domains_);
    auto view = [&](DomainState& d, const torch::Tensor& z) { return d.module->display(z).cpu(); };  // data space
    for (auto& d : domains_)
        if (d->module->classCount() > 0) {
            auto names = d->arrays.at(cfg_.trainSplit)->stringsAttribute("class_names");
            if (static_cast<int64_t>(names.size()) == d->module->classCount()) r.classNames = std::move(names);
            break;
        }
    TensorMap latents;
    for (auto& d : domains_) {
        r.domains.push_back({d->cfg.name, d->module->kind(), d->module->classCount(), d->module->rendersAs()});
        if (const auto* v = dynamic_cast<const GWLossesVariational*>(&model().lossMod()))
            r.domains.back().uncertainty = torch::exp(0.5 * v->uncertainty().at(d->cfg.name)).mean().item<double>();
        if (indices.empty()) continue;
        auto x = d->module->prepare(rawRows(*d, split, indices));
        if (!r.labels.defined() && d->module->classCount() > 0) r.labels = d->module->classesOf(x).cpu();
        r.cells.set("input/" + d->cfg.name, d->module->displayInput(x).cpu());
        latents.set(d->cfg.name, d->module->encode(x.to(device_)));
    }
    auto stateOf = [&](const std::string& d, const torch::Tensor& u) { return workspaceState(gw, d, u); };
    if (!indices.empty()) {
        for (auto& d : domains_) {
            const std::string& name = d->cfg.name;
            const auto state = stateOf(name, latents.at(name));
            r.cells.set("demi_cycle/" + name, view(*d, gw.decode(state, {name}).at(name)));
            for (auto& e : domains_) {
                if (e.get() == d.get()) continue;
                const auto tr = gw.decode(state, {e->cfg.name}).at(e->cfg.name);
                r.cells.set("translation/" + name + "/" + e->cfg.name, view(*e, tr));
                const auto back = gw.decode(stateOf(e->cfg.name, tr), {name}).at(name);
                r.cells.set("cycle/" + name + "/" + e->cfg.name, view(*d, back));
            }
        }
        if (!broadcastFrom.empty()) {
            TensorMap from;
            for (auto& d : domains_)
                if (std::find(broadcastFrom.begin(), broadcastFrom.end(), d->cfg.name) != broadcastFrom.end()) {
                    from.set(d->cfg.name, latents.at(d->cfg.name));
                    r.broadcastFrom.push_back(d->cfg.name);
                }
            const auto state = gw.encodeAndFuse(from, model().selection());
            for (auto& e : domains_)
                r.cells.set("broadcast/" + e->cfg.name, view(*e, gw.decode(state, {e->cfg.name}).at(e->cfg.name)));
        }
    }
    if (pcaSamples > 0) {
        const int64_t m = std::min(pcaSamples, n);
        for (int64_t i = 0; i < m; ++i) r.pcaIndices.push_back(i * n / m);
        std::vector<torch::Tensor> states;
        for (auto& d : domains_) {
            auto x = d->module->prepare(rawRows(*d, split, r.pcaIndices));
            if (!r.pcaLabels.defined() && d->module->classCount() > 0) r.pcaLabels = d->module->classesOf(x).cpu();
            r.cells.set("pca_input/" + d->cfg.name, d->module->displayInput(x).cpu());
            states.push_back(stateOf(d->cfg.name, d->module->encode(x.to(device_))).cpu().to(torch::kDouble));
        }
        auto all = torch::cat(states, 0);
        auto centred = all - all.mean(0, true);
        auto svd = torch::linalg_svd(centred, false);
        const auto& sv = std::get<1>(svd);
        const auto vh = std::get<2>(svd);
        const int64_t k = std::min<int64_t>(2, vh.size(0));
        r.pcaCoords = torch::zeros({all.size(0), 2}, torch::kDouble);
        r.pcaCoords.narrow(1, 0, k).copy_(centred.matmul(vh.narrow(0, 0, k).t()));
        r.pcaCoords = r.pcaCoords.to(torch::kFloat32);
        const double total = sv.pow(2).sum().item<double>();
        for (int64_t i = 0; i < k; ++i) r.pcaExplained.push_back(total > 0 ? sv[i].pow(2).item<double>() / total : 0);
    }
    cpuGen.set_state(rng);
    return r;
}

}  // namespace gw
