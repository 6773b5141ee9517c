// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file kinds.h
/// The engine's registries (model/core/registry.h) as plain Qt data, for the experiment form: which
/// trainable models, GW flavours, selections and domain-module kinds exist, with their parameters.
/// Torch-free.
#include <QString>
#include <QVector>

#include <string>
#include <vector>

namespace gw::studio {

/// One parameter of a kind.
struct KindParameter {
    QString key;           ///< YAML key, e.g. "temperature"
    QString type;          ///< "whole number", "number", "true/false", "text" or "file path"
    QString defaultValue;  ///< as YAML text
    QString unit;          ///< "" or e.g. "refinement steps"
    QString doc;           ///< one line
    QString range;         ///< "> 0", ">= 1" or ""
};

/// One registered kind.
struct KindDescription {
    QString name, doc;
    QVector<KindParameter> params;
    QString defaultSelection;  ///< flavours only: the selection used unless the experiment names one
    bool fromFile = false;     ///< domain modules only: read from a file the experiment names (torchscript)
    /// Models only: the experiment sections it reads besides data, domains, optimizer, scheduler and
    /// training ("workspace", "loss"); the form greys out the others (ModelKindImpl::sections).
    QVector<QString> sections;
};

/// The kinds of one extension point: "model" (model), "flavour" (workspace.flavour), "selection"
/// (workspace.selection) or "domain_module" (domains.NAME.module), in registration order. Empty for
/// another name.
QVector<KindDescription> registeredKinds(const QString& point);

/// The score names of translations in data space that the domain-module kinds declare
/// (KindInfo::dataScores, gw::dataScoreNames()): what the dashboard's metric parser recognises.
const std::vector<std::string>& knownDataScores();

}  // namespace gw::studio
