// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file experiment_form.h
/// The experiment set-up: every field edits one dotted key of the experiment YAML (the file `gw train`
/// reads; docs/experiment-format.md). Keys the form does not show are kept as they are. The engine's
/// own parser judges the whole (bridge validateExperiment); the field at fault turns red with the
/// message as its tooltip. Edits can be undone.
#include <QHash>
#include <QStringList>
#include <QWidget>

#include <yaml-cpp/yaml.h>

#include "ui/bridge/bridge.h"

class QLineEdit;
class QComboBox;
class QCheckBox;
class QTableWidget;
class QPushButton;
class QLabel;

namespace gw::studio {

class ExperimentForm : public QWidget {
    Q_OBJECT
public:
    explicit ExperimentForm(QWidget* parent = nullptr);

    /// Loads YAML text; `baseDir` resolves relative paths. Returns an error message or "".
    QString setYaml(const QString& yaml, const QString& baseDir);
    /// The experiment as YAML text (what Save writes).
    QString yaml() const;
    QString baseDir() const { return baseDir_; }
    void setBaseDir(const QString& dir) { baseDir_ = dir; }

    /// Sets one dotted key from text as if typed ("" removes it: the default applies).
    void setValue(const QString& key, const QString& text);
    /// The text of one dotted key ("" when absent).
    QString value(const QString& key) const;
    /// The field that edits `key`, or nullptr.
    QWidget* fieldFor(const QString& key) const;

    /// Marks the field of `key` red with `message` (an empty message clears every mark).
    void showError(const QString& key, const QString& message);
    QString errorKey() const { return errorKey_; }

    /// What probing each file-based domain module found (bridge validateExperiment): shown under the
    /// domains table, and its latent size in the Latent dim column.
    void setDomainProbes(const QVector<DomainProbe>& probes);
    /// The text under the domains table (empty when no domain module comes from a file).
    QString probeText() const;
    /// Sets the module of domain `name` as one undo step, dropping the parameters the new kind does
    /// not have; for a kind read from a file (torchscript) `file` becomes its `script` (relative to the
    /// experiment's folder when inside it). What the module picker does after its file dialog.
    void chooseModule(const QString& name, const QString& kind, const QString& file = {});

    /// Offers these devices (id, label, available) in the device picker.
    void setDevices(const QStringList& ids, const QStringList& labels, const QList<bool>& available);
    void setEditable(bool on);

    bool canUndo() const { return !undo_.isEmpty(); }
    bool canRedo() const { return !redo_.isEmpty(); }

public Q_SLOTS:
    void undo();
    void redo();

Q_SIGNALS:
    /// Any edit (typed, picked, undone).
    void changed();
    void undoAvailable(bool);
    void redoAvailable(bool);

private:
    QLineEdit* addLine(QWidget* box, const QString& label, const QString& key, const QString& placeholder,
                       const QString& tip = {});
    QComboBox* addCombo(QWidget* box, const QString& label, const QString& key, const QStringList& items,
                        const QString& tip = {});
    void refreshFields();
    /// The selection in force: workspace.selection, else the flavour's default.
    QString effectiveSelection() const;
    /// Sets the flavour (`selection` null) or the selection ("" = the flavour's default) as one undo step.
    void chooseSelection(const QString& flavour, const QString* selection);
    /// One field per parameter of the selection in force (workspace.selection_params.KEY).
    void refreshSelectionParams();
    void refreshDomains();
    void refreshExtraCoefficients();
    void commit(const std::function<void()>& edit);
    void pickDataset(int row);
    YAML::Node nodeAt(const QString& key, bool create);

    YAML::Node doc_;
    QString baseDir_;
    QHash<QString, QWidget*> fields_;
    QTableWidget* domains_ = nullptr;
    QLabel* probeInfo_ = nullptr;       // what the file-based modules' probes found
    QVector<DomainProbe> probes_;
    /// The key the Weights column edits for a domain: `weights`, or `script` for file-based kinds.
    QString weightsKey(const QString& domain) const;
    QTableWidget* extraCoefs_ = nullptr;
    QComboBox* device_ = nullptr;
    QComboBox *flavour_ = nullptr, *selection_ = nullptr;
    QWidget *workspaceBox_ = nullptr, *lossBox_ = nullptr;  // not read by a model: glom experiment
    QWidget* selectionParams_ = nullptr;
    QString builtSelection_;
    QString errorKey_;
    /// Undo (from undo_ to redo_) or redo (the other way): restores the last snapshot of `from` and
    /// keeps the current text in `to`.
    void stepHistory(QStringList& from, QStringList& to);
    QStringList undo_, redo_;  // YAML snapshots
    QString lastKey_;          // consecutive edits of one field make one undo step
    bool loading_ = false;
};

}  // namespace gw::studio
