// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file experiment_document.h
/// The experiment being edited in the window, apart from the form that shows it: the YAML document (the
/// file `gw train` reads; docs/experiment-format.md), its folder, and its edit history as Qt undo
/// commands on a QUndoStack. Every change goes through it, as a command: setValue for one dotted key
/// (consecutive edits of one key merge into one step, as typing does), edit() for a change of several
/// keys at once (adding, renaming or removing a domain, a new flavour with its selection parameters).
/// Keys the form does not show are kept as they are. Torch-free and widget-free.
#include <functional>

#include <QObject>
#include <QString>
#include <QUndoStack>

#include <yaml-cpp/yaml.h>

namespace gw::studio {

class ExperimentDocument : public QObject {
    Q_OBJECT
public:
    explicit ExperimentDocument(QObject* parent = nullptr);

    /// Replaces the document with YAML text and starts a new history; `baseDir` resolves relative
    /// paths. Returns an error message (the text is not a YAML mapping) or "" (then `changed("")`).
    QString setYaml(const QString& yaml, const QString& baseDir);
    /// The document as YAML text (what Save writes), ending in a newline.
    QString yaml() const;
    QString baseDir() const { return baseDir_; }
    void setBaseDir(const QString& dir) { baseDir_ = dir; }

    /// The scalar text at a dotted key ("training.steps"; "" when absent or not a scalar).
    QString value(const QString& key) const;
    /// Sets one dotted key from text ("" removes it: the default applies) as an undo command, merged
    /// with the previous one when that set the same key and nothing came between (as typing does;
    /// `merge` false: a step of its own that takes no later set either, as a click of a check box).
    /// Nothing happens when the text is what the document holds.
    void setValue(const QString& key, const QString& text, bool merge = true);
    /// Changes the document with `change` (it edits the root node in place) as one undo command named
    /// `what` ("Add domain"). Nothing is recorded when the document is unchanged afterwards.
    void edit(const QString& what, const std::function<void(YAML::Node& root)>& change);
    /// The root mapping, to read. Change it only through setValue and edit.
    const YAML::Node& root() const { return root_; }

    QUndoStack* undoStack() { return &stack_; }
    void undo();
    void redo();

Q_SIGNALS:
    /// After any change: `key` is the one key setValue changed, or "" after an edit, an undo, a redo or
    /// setYaml (anything may have changed).
    void changed(const QString& key);

private:
    class Snapshot;
    friend class Snapshot;
    void restore(const QString& yaml);  // an undo command's state, without touching the history

    YAML::Node root_;
    QString baseDir_;
    QUndoStack stack_;
    bool mergeOpen_ = false;  // the top command may take the next setValue of its key
};

}  // namespace gw::studio
