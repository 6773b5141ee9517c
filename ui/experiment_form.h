// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file experiment_form.h
/// The experiment set-up: a view of an ExperimentDocument (experiment_document.h: the YAML `gw train`
/// reads, docs/experiment-format.md, and its QUndoStack) in which every field edits one dotted key.
/// Keys the form does not show are kept as they are. The engine's own parser judges the whole (bridge
/// validateExperiment); the field at fault turns red with the message as its tooltip.
#include <QHash>
#include <QMap>
#include <QStringList>
#include <QWidget>

#include <yaml-cpp/yaml.h>

#include "ui/bridge/bridge.h"
#include "ui/experiment_document.h"

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
    QString baseDir() const { return doc_->baseDir(); }
    void setBaseDir(const QString& dir) { doc_->setBaseDir(dir); }
    /// The document the form shows and edits (its undo stack: document()->undoStack()).
    ExperimentDocument* document() const { return doc_; }

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

    bool canUndo() const { return doc_->undoStack()->canUndo(); }
    bool canRedo() const { return doc_->undoStack()->canRedo(); }

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
    /// A check box for a boolean key whose default (when the key is absent) is `defaultOn`: ticking it to
    /// the default removes the key, away from it writes "true" or "false"; each click is one undo step.
    /// An absent key shows the default; a key the file already holds stays as written until the box is
    /// clicked.
    QCheckBox* addCheck(QWidget* box, const QString& text, const QString& key, const QString& tip, bool defaultOn = false);
    QComboBox* addCombo(QWidget* box, const QString& label, const QString& key, const QStringList& items,
                        const QString& tip = {});
    void refreshFields();
    /// The selection in force: workspace.selection, else the flavour's default.
    QString effectiveSelection() const;
    /// Sets the flavour (`selection` null) or the selection ("" = the flavour's default) as one undo step.
    void chooseSelection(const QString& flavour, const QString* selection);
    /// One field per parameter of the selection in force (workspace.selection_params.KEY).
    void refreshSelectionParams();
    /// One field per parameter of the flavour in force (workspace.flavour_params.KEY).
    void refreshFlavourParams();
    /// Drops from section[key] (a kind's parameters) those that `kind` of extension `point` lacks, and
    /// the mapping itself when nothing is left (inside a commit).
    void keepParamsOf(const QString& point, const QString& kind, YAML::Node section, const std::string& key);
    /// Sets loss.contrastive ("" = clip, the default) and drops the parameters the new kind lacks, as
    /// one undo step.
    void chooseContrastive(const QString& kind);
    /// One field per parameter of the contrastive loss in force (loss.contrastive_params.KEY).
    void refreshContrastiveParams();
    /// Replaces the fields in `box` (keys under `prefix`) by one per parameter of `kind` of extension
    /// `point`, enabled or not.
    void fillParamFields(QWidget* box, const QString& point, const QString& kind, const QString& prefix, bool enabled);
    void refreshDomains();
    void refreshExtraCoefficients();
    /// The Groups table from data.groups (empty: the default groups, the paired fields in force).
    void refreshGroups();
    /// Writes row `row` of the Groups table back to data.groups[row].
    void commitGroup(int row);
    /// Several keys changed as one undo step named `what`; `edit` writes through root().
    void commit(const QString& what, const std::function<void()>& edit);
    /// Refreshes the fields after the document changed (`key`: the one key set, or "" for anything).
    void documentChanged(const QString& key);
    void pickDataset(int row);
    /// The document's root mapping (a handle: writes through it change the document; only inside commit).
    YAML::Node root() const { return doc_->root(); }

    ExperimentDocument* doc_;
    QHash<QString, QWidget*> fields_;
    QTableWidget* domains_ = nullptr;
    QTableWidget* groups_ = nullptr;  ///< data.groups: domains, proportion, count
    QLabel* probeInfo_ = nullptr;       // what the file-based modules' probes found
    QVector<DomainProbe> probes_;
    /// The key the Weights column edits for a domain: `weights`, or `script` for file-based kinds.
    QString weightsKey(const QString& domain) const;
    QTableWidget* extraCoefs_ = nullptr;
    QComboBox* device_ = nullptr;
    QComboBox *flavour_ = nullptr, *selection_ = nullptr;
    QWidget *workspaceBox_ = nullptr, *lossBox_ = nullptr;  // greyed when the model kind does not read them
    QMap<QString, QStringList> modelSections_;  // model kind -> the sections it reads (bridge kinds.h)
    QWidget* selectionParams_ = nullptr;
    QString builtSelection_;
    QWidget* flavourParams_ = nullptr;
    QString builtFlavour_;
    QComboBox* contrastive_ = nullptr;
    QWidget* contrastiveParams_ = nullptr;
    QString builtContrastive_;
    QWidget* attentionBox_ = nullptr;     ///< the `attention:` section (model: attention), greyed otherwise
    QWidget* attentionParams_ = nullptr;  ///< its selection's parameter fields
    QLineEdit* corruptionLevels_ = nullptr;  ///< attention.corruption_scaling as "0.1, 0.2, ..."
    QString builtAttentionSelection_;
    /// The attention selection's parameter fields, rebuilt when the selection changes.
    void refreshAttentionFields();
    QString errorKey_;
    bool loading_ = false;
};

}  // namespace gw::studio
