// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/bridge/kinds.h"

#include <cmath>

#include "model/core/registry.h"

namespace gw::studio {

namespace {
KindParameter toQt(const ParamInfo& p) {
    KindParameter k;
    k.key = QString::fromStdString(p.key);
    switch (p.type) {
        case ParamInfo::Type::Int: k.type = "whole number"; break;
        case ParamInfo::Type::Real: k.type = "number"; break;
        case ParamInfo::Type::Bool: k.type = "true/false"; break;
        case ParamInfo::Type::Text: k.type = "text"; break;
        case ParamInfo::Type::Path: k.type = "file path"; break;
    }
    k.defaultValue = QString::fromStdString(p.defaultValue);
    k.unit = QString::fromStdString(p.unit);
    k.doc = QString::fromStdString(p.doc);
    if (std::isfinite(p.min)) k.range = QString(p.minExclusive ? "> " : ">= ") + QString::number(p.min);
    if (std::isfinite(p.max)) k.range += QString(k.range.isEmpty() ? "" : ", ") + "<= " + QString::number(p.max);
    for (const auto& c : p.choices) k.range += QString(k.range.isEmpty() ? "one of " : ", ") + QString::fromStdString(c);
    return k;
}

template <class R>
QVector<KindDescription> describe(const R& reg) {
    QVector<KindDescription> out;
    for (const auto& e : reg.entries()) {
        KindDescription d;
        d.name = QString::fromStdString(e.info.name);
        d.doc = QString::fromStdString(e.info.doc);
        d.fromFile = e.info.fromFile;
        for (const auto& p : e.info.params) d.params.push_back(toQt(p));
        out.push_back(d);
    }
    return out;
}
}  // namespace

QVector<KindDescription> registeredKinds(const QString& point) {
    if (point == "model") {
        auto out = describe(modelRegistry());
        for (int i = 0; i < out.size(); ++i)
            for (const auto& sec : modelRegistry().entries()[size_t(i)].impl.sections) out[i].sections.push_back(QString::fromStdString(sec));
        return out;
    }
    if (point == "selection") return describe(selectionRegistry());
    if (point == "domain_module") return describe(domainModuleRegistry());
    if (point == "contrastive") return describe(contrastiveRegistry());
    if (point != "flavour") return {};
    auto out = describe(flavourRegistry());
    for (int i = 0; i < out.size(); ++i)
        out[i].defaultSelection = QString::fromStdString(flavourRegistry().entries()[size_t(i)].impl.defaultSelection);
    return out;
}

const std::vector<std::string>& knownDataScores() {
    static const std::vector<std::string> names = dataScoreNames();
    return names;
}

}  // namespace gw::studio
