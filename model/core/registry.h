// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file registry.h
/// The engine's extension points: one registry per kind of thing a researcher adds (trainable model
/// kinds, selection mechanisms, GW flavours, domain-module kinds). A registration gives a kind's name, a one-line doc,
/// its parameters (type, default, range, unit, doc) and its factory. The experiment parser and writer
/// (config.cpp), the window's form (through the bridge), `gw kinds` and the experiment-format table of
/// docs/experiment-format.md all read these registries, so a new kind appears everywhere at once.
///
/// Torch-free (the factories' products are only forward-declared), so that front ends may read it.
/// The built-in kinds are listed, one line each, in model/core/kinds.cpp; how to add one is in
/// docs/architecture.md ("Extending the engine").
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/core/loss_settings.h"
#include "model/core/ordered_map.h"

namespace gw {

class Selection;
class GWLosses;
class ContrastiveFn;
class HandWrittenStep;
class DomainModule;
struct DomainModuleSpec;
class TrainableModel;
struct ExperimentConfig;
struct Checkpoint;
struct ExportResult;

/// One parameter of a registered kind.
struct ParamInfo {
    /// Path: a file path, relative to the experiment file's folder (a leading ~ is the home folder); the
    /// engine resolves it before the factory sees it, a run folder's config.yaml holds it absolute, and
    /// the window offers a file dialog for it.
    enum class Type { Int, Real, Bool, Text, Path };
    std::string key;                 ///< YAML key, snake_case
    Type type = Type::Real;
    std::string defaultValue;        ///< as YAML text ("0.2", "1", "true", "")
    double min = -std::numeric_limits<double>::infinity();  ///< numbers: smallest allowed value
    bool minExclusive = false;       ///< numbers: min itself is not allowed
    std::string unit;                ///< "" for plain numbers, else e.g. "refinement steps"
    std::string doc;                 ///< one line
    double max = std::numeric_limits<double>::infinity();  ///< numbers: largest allowed value (included)
    std::vector<std::string> choices{};  ///< text: the values allowed, when only some are (empty: any)
};

/// A registered kind as the user sees it: name, one-line doc, parameters.
struct KindInfo {
    std::string name;
    std::string doc;
    std::vector<ParamInfo> params;
    /// Domain modules only: the names of the scores its DomainModule::dataMetrics may return (conv_vae:
    /// "image_mse"), each a translation into the domain scored in data space. They are the one list the
    /// metric names are read back with (dataScoreNames below, metrics::splitDataScore), so that
    /// `val/translation_a_to_b_{score}` lands in the dashboard's "data space" chart; a score its kind
    /// does not declare is read as a plain translation metric.
    std::vector<std::string> dataScores{};
    /// Domain modules only: the module is read from a file the experiment names (torchscript). Such a
    /// module is probed by the window's form as the user edits, a run folder keeps a copy of its file
    /// (DomainModule::keepInRun) and `gw export` writes the trained module back as a file of its own
    /// (DomainModule::saveOwnFile).
    bool fromFile = false;
    const ParamInfo* param(const std::string& key) const;
};

/// Parameter values of one kind as YAML text. Checked ones (checkParams: every parameter of the kind's
/// KindInfo, given or defaulted, in range) carry the kind they were checked for, so that they travel
/// from the experiment parser to the factory without a second check; values given by hand (a GW built
/// in code) are unchecked until a factory's maker checks them. Read them with the typed accessors.
class Params;
Params checkParams(const KindInfo& info, const std::string& what, const OrderedMap<std::string>& given,
                   const std::string& where);

class Params {
public:
    Params() = default;
    /// Values given by hand, not checked yet (implicit, so that a GW built in code may name its
    /// selection's parameters as a map; makeSelection checks them).
    Params(OrderedMap<std::string> unchecked) : values_(std::move(unchecked)) {}  // NOLINT(google-explicit-constructor)
    /// \throws std::out_of_range naming the key when the kind has no such parameter (a programming error).
    double real(const std::string& key) const;
    int64_t integer(const std::string& key) const;
    bool flag(const std::string& key) const;
    const std::string& text(const std::string& key) const;
    const OrderedMap<std::string>& values() const { return values_; }
    /// Sets one value; the whole is unchecked again.
    void set(const std::string& key, std::string value) {
        values_.set(key, std::move(value));
        checkedFor_.clear();
    }
    /// "WHAT NAME" ("selection random") when checkParams made these values for that kind, else "".
    const std::string& checkedFor() const { return checkedFor_; }

private:
    friend Params checkParams(const KindInfo& info, const std::string& what, const OrderedMap<std::string>& given,
                              const std::string& where);
    OrderedMap<std::string> values_;
    std::string checkedFor_;
};

/// Checks `given` (key -> YAML scalar text) against `info`: unknown keys, wrong types and values out of
/// range are rejected; missing keys take their defaults. `where` starts every message, for example
/// "exp.yaml: workspace.selection_params".
/// \throws std::invalid_argument "WHERE.KEY: unknown parameter of selection 'random' (known: temperature)"
/// or "WHERE.KEY: expected a number > 0, found '-1'".
Params checkParams(const KindInfo& info, const std::string& what, const OrderedMap<std::string>& given,
                   const std::string& where);

/// A registry of one extension point.
template <class Impl>
class Registry {
public:
    struct Entry {
        KindInfo info;
        Impl impl;
    };
    /// \param point what the kinds are, for messages: "selection", "GW flavour", "domain module kind".
    explicit Registry(std::string point) : point_(std::move(point)) {}

    /// \throws std::logic_error when the name is taken or empty.
    void add(KindInfo info, Impl impl) {
        if (info.name.empty() || find(info.name))
            throw std::logic_error(point_ + " '" + info.name + "' registered twice or without a name");
        entries_.push_back({std::move(info), std::move(impl)});
    }
    const Entry* find(const std::string& name) const {
        for (const auto& e : entries_)
            if (e.info.name == name) return &e;
        return nullptr;
    }
    /// \throws std::invalid_argument "WHERE: unknown selection 'x' (known: a, b, c)".
    const Entry& at(const std::string& name, const std::string& where) const {
        if (const Entry* e = find(name)) return *e;
        throw std::invalid_argument(where + ": unknown " + point_ + " '" + name + "' (known: " + knownNames() + ")");
    }
    std::vector<std::string> names() const {
        std::vector<std::string> n;
        for (const auto& e : entries_) n.push_back(e.info.name);
        return n;
    }
    /// "a, b, c" in registration order.
    std::string knownNames() const {
        std::string s;
        for (const auto& e : entries_) s += (s.empty() ? "" : ", ") + e.info.name;
        return s;
    }
    const std::vector<Entry>& entries() const { return entries_; }
    const std::string& point() const { return point_; }

private:
    std::string point_;
    std::vector<Entry> entries_;
};

/// What a selection's factory is given: the GW's domains in order, their latent sizes L_d and the
/// workspace size W, and its checked parameters.
struct SelectionContext {
    std::vector<std::string> domains;
    std::vector<int64_t> latentDims;
    int64_t workspaceDim = 0;
    Params params;
};
/// Builds a selection. \throws std::invalid_argument when the GW does not suit it (naming the domains
/// and sizes at fault).
using SelectionFactory = std::function<std::shared_ptr<Selection>(const SelectionContext&)>;

/// What a GW flavour's factory is given: the experiment's loss settings (coefficients, the contrastive's
/// logit scale), whole, and the flavour's checked parameters (workspace.flavour_params).
struct FlavourContext {
    LossSettings loss;
    Params params;
};
/// A GW flavour: its loss module (shimmer GWLosses2Domains, GWLosses ...), the selection it uses
/// unless the experiment names another, and, optionally, its hand-written training step
/// (model/gw/flavours/hand_written_step.h); empty: the flavour trains with autograd only.
struct FlavourImpl {
    std::function<std::shared_ptr<GWLosses>(const FlavourContext&)> make;
    std::string defaultSelection;
    std::function<std::unique_ptr<HandWrittenStep>()> handWritten;
};

/// Builds a domain module from its checked parameters and what the data say (DomainModuleSpec).
/// \throws std::invalid_argument naming the parameter and the value it refuses.
using DomainModuleFactory = std::function<std::shared_ptr<DomainModule>(const DomainModuleSpec&, const Params&)>;

/// A trainable model kind (the experiment's `model:` key): what the engine trains over the domains.
/// `gw` (a Global Workspace, model/models/gw_model.cpp) and `glom` (one GLOM domain denoising,
/// model/models/glom_model.cpp) are registered; the Engine, the experiment parser, `gw export`, the
/// bridge and the window's form ask this registration, never the kind's name.
struct ModelKindImpl {
    /// The experiment sections it reads besides data, domains, optimizer, scheduler and training
    /// ("workspace", "loss"): the window's form greys out the others.
    std::vector<std::string> sections;
    /// The explorer view it answers: "translations" (Engine::explore) or "islands" (models/glom_model.h).
    std::string explorerView;
    /// Checks a parsed experiment of this kind (its domains' count and kinds, ...).
    /// \throws std::invalid_argument "domains: ..." (the parser adds the file).
    std::function<void(const ExperimentConfig&)> checkExperiment;
    /// The engine's part for this kind (model/run/trainable_model.h), built in Engine::prepare.
    std::function<std::shared_ptr<TrainableModel>(const ExperimentConfig&)> make;
    /// `gw export` and the window's export (run/interop.h exportForPython) of a training checkpoint `c`
    /// read from `checkpoint`: writes OUT (what Python's torch.load reads) and any file beside it, and
    /// fills the result (tensors, layout, holds, notes); exportForPython writes OUT's .yaml.
    /// \throws CheckpointError, WriteError naming the file.
    std::function<void(const Checkpoint& c, const std::string& checkpoint, const std::string& out, ExportResult& r)> exportWeights;
};

/// What a contrastive loss's factory is given: the experiment's loss settings (the logit scale and
/// whether it is learnt) and the kind's checked parameters.
struct ContrastiveContext {
    LossSettings loss;
    Params params;
};
/// Builds a contrastive loss (model/gw/flavours/losses.h). \throws std::invalid_argument naming the
/// parameter it refuses.
using ContrastiveFactory = std::function<std::shared_ptr<ContrastiveFn>(const ContrastiveContext&)>;

using ModelRegistry = Registry<ModelKindImpl>;
using SelectionRegistry = Registry<SelectionFactory>;
using FlavourRegistry = Registry<FlavourImpl>;
using DomainModuleRegistry = Registry<DomainModuleFactory>;
using ContrastiveRegistry = Registry<ContrastiveFactory>;

/// The registries, filled with the built-in kinds on first use (model/core/kinds.cpp).
const ModelRegistry& modelRegistry();
const SelectionRegistry& selectionRegistry();
const FlavourRegistry& flavourRegistry();
const DomainModuleRegistry& domainModuleRegistry();
const ContrastiveRegistry& contrastiveRegistry();

/// Every registered domain-module kind's KindInfo::dataScores, each name once, in registration order:
/// what metrics::parseMetric is given to recognise the scores of translations in data space.
std::vector<std::string> dataScoreNames();

/// The registries as the Markdown tables of docs/experiment-format.md (between its
/// `<!-- kinds:begin -->` and `<!-- kinds:end -->` markers); `gw kinds --markdown` prints it.
std::string kindsMarkdown();

}  // namespace gw
