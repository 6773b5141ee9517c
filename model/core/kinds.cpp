// SPDX-License-Identifier: GPL-3.0-or-later
/// \file kinds.cpp
/// The built-in kinds of every extension point, one line each. A kind's registration function lives in
/// the kind's own source file and has the signature `void NAME(XxxRegistry&)`; adding a kind is adding
/// its source, its test and its line here (docs/architecture.md, "Extending the engine").
#include "model/core/registry.h"

#include <algorithm>

// Each list ends with its own terminator line, so that adding a kind adds one line and edits none.

// Trainable models (model), in the order the window lists them; `gw` is the default (ExperimentConfig::model).
#define GW_MODELS(X)                      \
    X(registerGWModel)                    \
    X(registerGlomModel)                  \
    X(registerAttentionModel)             \
    /* end of GW_MODELS */

// Selections (workspace.selection), in the order the window and the docs list them.
#define GW_SELECTIONS(X)                  \
    X(registerSingleDomainSelection)      \
    X(registerFixedSharedSelection)       \
    X(registerRandomSelection)            \
    X(registerDynamicQueryAttention)      \
    X(registerKQFixedQSelection)          \
    /* end of GW_SELECTIONS */

// GW flavours (workspace.flavour).
#define GW_FLAVOURS(X)                    \
    X(registerTwoDomainsFlavour)          \
    X(registerFusionFlavour)              \
    X(registerVariationalFlavour)         \
    X(registerBayesianFlavour)            \
    /* end of GW_FLAVOURS */

// Contrastive losses (loss.contrastive), the default first.
#define GW_CONTRASTIVES(X)                \
    X(registerClipContrastive)            \
    X(registerInfoNceContrastive)         \
    X(registerVseppContrastive)           \
    /* end of GW_CONTRASTIVES */

// Domain-module kinds (domains.NAME.module).
#define GW_DOMAIN_MODULES(X)              \
    X(registerIdentityModule)             \
    X(registerMlpAeModule)                \
    X(registerMlpVaeModule)               \
    X(registerConvVaeModule)              \
    X(registerClassLabelModule)           \
    X(registerAttributesModule)           \
    X(registerGlomModule)                 \
    X(registerTorchScriptModule)          \
    X(registerTextModule)                 \
    /* end of GW_DOMAIN_MODULES */

namespace gw {

#define GW_DECLARE(fn) void fn(ModelRegistry&);
GW_MODELS(GW_DECLARE)
#undef GW_DECLARE
#define GW_DECLARE(fn) void fn(SelectionRegistry&);
GW_SELECTIONS(GW_DECLARE)
#undef GW_DECLARE
#define GW_DECLARE(fn) void fn(FlavourRegistry&);
GW_FLAVOURS(GW_DECLARE)
#undef GW_DECLARE
#define GW_DECLARE(fn) void fn(DomainModuleRegistry&);
GW_DOMAIN_MODULES(GW_DECLARE)
#undef GW_DECLARE
#define GW_DECLARE(fn) void fn(ContrastiveRegistry&);
GW_CONTRASTIVES(GW_DECLARE)
#undef GW_DECLARE

#define GW_CALL(fn) fn(r);

const ModelRegistry& modelRegistry() {
    static const ModelRegistry reg = [] {
        ModelRegistry r("model");
        GW_MODELS(GW_CALL)
        return r;
    }();
    return reg;
}

const SelectionRegistry& selectionRegistry() {
    static const SelectionRegistry reg = [] {
        SelectionRegistry r("selection");
        GW_SELECTIONS(GW_CALL)
        return r;
    }();
    return reg;
}

const FlavourRegistry& flavourRegistry() {
    static const FlavourRegistry reg = [] {
        FlavourRegistry r("GW flavour");
        GW_FLAVOURS(GW_CALL)
        return r;
    }();
    return reg;
}

const DomainModuleRegistry& domainModuleRegistry() {
    static const DomainModuleRegistry reg = [] {
        DomainModuleRegistry r("domain module kind");
        GW_DOMAIN_MODULES(GW_CALL)
        return r;
    }();
    return reg;
}

std::vector<std::string> dataScoreNames() {
    std::vector<std::string> names;
    for (const auto& e : domainModuleRegistry().entries())
        for (const auto& n : e.info.dataScores)
            if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    return names;
}

const ContrastiveRegistry& contrastiveRegistry() {
    static const ContrastiveRegistry reg = [] {
        ContrastiveRegistry r("contrastive loss");
        GW_CONTRASTIVES(GW_CALL)
        return r;
    }();
    return reg;
}

}  // namespace gw
