// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/experiment_document.h"

#include <QUndoCommand>

namespace gw::studio {

/// One step of the history: the document's text before and after it. Its first redo() (QUndoStack::push
/// calls it) finds the change already made.
class ExperimentDocument::Snapshot : public QUndoCommand {
public:
    Snapshot(ExperimentDocument* doc, const QString& what, QString key, QString before, QString after)
        : QUndoCommand(what), doc_(doc), key_(std::move(key)), before_(std::move(before)), after_(std::move(after)) {}
    int id() const override { return key_.isEmpty() ? -1 : 1; }
    bool mergeWith(const QUndoCommand* other) override {
        const auto* o = static_cast<const Snapshot*>(other);
        if (!doc_->mergeOpen_ || o->key_ != key_) return false;
        after_ = o->after_;
        return true;
    }
    // Any undo or redo (from the document or the stack's own actions) ends the merging of typing.
    void undo() override {
        doc_->mergeOpen_ = false;
        doc_->restore(before_);
    }
    void redo() override {
        if (first_) {
            first_ = false;
            return;
        }
        doc_->mergeOpen_ = false;
        doc_->restore(after_);
    }

private:
    ExperimentDocument* doc_;
    QString key_, before_, after_;
    bool first_ = true;
};

ExperimentDocument::ExperimentDocument(QObject* parent) : QObject(parent), root_(YAML::NodeType::Map) {}

QString ExperimentDocument::setYaml(const QString& text, const QString& baseDir) {
    try {
        YAML::Node n = YAML::Load(text.toStdString());
        if (!n.IsMap() && !n.IsNull()) return "expected a mapping of keys at the top of the experiment";
        root_.reset(n.IsNull() ? YAML::Node(YAML::NodeType::Map) : n);
    } catch (const YAML::Exception& e) {
        return QString::fromStdString(e.what());
    }
    baseDir_ = baseDir;
    stack_.clear();
    mergeOpen_ = false;
    Q_EMIT changed(QString());
    return {};
}

QString ExperimentDocument::yaml() const {
    YAML::Emitter out;
    out << root_;
    return QString::fromStdString(out.c_str()) + "\n";
}

QString ExperimentDocument::value(const QString& key) const {
    YAML::Node n = YAML::Clone(root_);
    for (const auto& part : key.split('.')) {
        if (!n.IsMap() || !n[part.toStdString()]) return {};
        n.reset(n[part.toStdString()]);
    }
    return n.IsScalar() ? QString::fromStdString(n.Scalar()) : QString();
}

void ExperimentDocument::setValue(const QString& key, const QString& text, bool merge) {
    const QString before = yaml();
    const QStringList parts = key.split('.');
    // The parent mapping of the key, made on the way when setting (not when removing).
    YAML::Node parent = root_;
    bool found = true;
    for (int i = 0; i + 1 < parts.size() && found; ++i) {
        const std::string p = parts[i].toStdString();
        if (!parent.IsMap() && !(parent.IsNull() && !text.isEmpty())) found = false;
        else if (text.isEmpty() && !parent[p]) found = false;
        else parent.reset(parent[p]);
    }
    if (text.isEmpty()) {
        if (found && parent.IsMap()) parent.remove(parts.back().toStdString());
    } else if (found) {
        parent[parts.back().toStdString()] = text.toStdString();
    }
    const QString after = yaml();
    if (after == before) return;
    if (!merge) mergeOpen_ = false;  // push asks the top command to merge only while this is true
    stack_.push(new Snapshot(this, "Set " + key, key, before, after));
    mergeOpen_ = merge;
    Q_EMIT changed(key);
}

void ExperimentDocument::edit(const QString& what, const std::function<void(YAML::Node&)>& change) {
    const QString before = yaml();
    change(root_);
    const QString after = yaml();
    if (after == before) return;
    mergeOpen_ = false;
    stack_.push(new Snapshot(this, what, QString(), before, after));
    Q_EMIT changed(QString());
}

void ExperimentDocument::undo() { stack_.undo(); }

void ExperimentDocument::redo() { stack_.redo(); }

void ExperimentDocument::restore(const QString& text) {
    const YAML::Node n = YAML::Load(text.toStdString());  // text this document wrote
    root_.reset(n.IsMap() ? n : YAML::Node(YAML::NodeType::Map));
    Q_EMIT changed(QString());
}

}  // namespace gw::studio
