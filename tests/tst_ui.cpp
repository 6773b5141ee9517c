// SPDX-License-Identifier: GPL-3.0-or-later
// The window's widgets under QT_QPA_PLATFORM=offscreen: fields checked as they are edited (a red field
// with the parser's message, Start disabled with the reason), undo and redo, save and open, autosave and
// restore, the device picker, the dashboard (curves, EMA, log-y, visibility, PNG/PDF/CSV), and the main
// window rendered to a PNG while a run trains (kept in build/.../artifacts for CI).
#include <QtTest/QtTest>

#include "skip.h"
#include "small_disk.h"

#include <QCheckBox>
#include <QComboBox>
#include <QPushButton>
#include <QDockWidget>
#include <QHeaderView>
#include <QProcess>
#include <QSaveFile>
#include <QScrollArea>
#include <QScrollBar>
#include <QSplitter>
#include <QStyle>
#include <QSysInfo>
#include <QTabWidget>
#include <QTreeWidget>
#include <QJsonObject>
#include <QJsonDocument>
#include <QJsonArray>
#include <QPainter>
#include <qcustomplot.h>
#include <QLineEdit>
#include <QMessageBox>
#include <QStandardItemModel>
#include <QTableWidget>
#include <QUndoStack>
#include <cmath>

#include "data/bpe_tokenizer.h"
#include "data/shapes.h"
#include "ui/cell_renderers.h"
#include "ui/curve_plot.h"
#include "ui/experiment_document.h"
#include "ui/experiment_form.h"
#include "ui/explorer_panel.h"
#include "ui/glom_panel.h"
#include "ui/main_window.h"
#include "ui/attention_levels_plot.h"
#include "ui/metrics_dashboard.h"
#include "ui/runs_panel.h"
#include "ui/settings_dialog.h"

using namespace gw::studio;

namespace {
PlainTensor tensor(const QVector<qint64>& shape, const QVector<float>& data) {
    PlainTensor t;
    t.shape = shape;
    t.data = data;
    return t;
}

/// Two samples of an image domain (2x2 grey) and a 3-class label domain, as the worker hands them over.
ExploreData syntheticExplore() {
    ExploreData d;
    d.split = "test";
    d.source = "training";
    d.step = 40;
    d.indices = {3, 7};
    d.domains = {"image", "label"};
    d.kinds = {"conv_vae", "class_label"};
    d.classes = {0, 3};
    const PlainTensor img = tensor({2, 1, 2, 2}, {0, 1, 0.5f, 0.25f, 1, 1, 1, 1});
    d.cells["input/image"] = img;
    d.cells["demi_cycle/image"] = tensor({2, 1, 2, 2}, {0, 1, 0.5f, 0.25f, 1, 1, 1, 0});  // row 1: MSE 0.25
    d.cells["cycle/image/label"] = img;
    d.cells["translation/label/image"] = img;
    d.cells["input/label"] = tensor({2, 3}, {0, 1, 0, 0, 0, 1});
    d.cells["demi_cycle/label"] = tensor({2, 3}, {0.1f, 0.8f, 0.1f, 0.6f, 0.1f, 0.3f});
    d.cells["translation/image/label"] = tensor({2, 3}, {0.2f, 0.7f, 0.1f, 0.5f, 0.2f, 0.3f});
    d.cells["cycle/label/image"] = tensor({2, 3}, {0, 1, 0, 0, 0, 1});
    d.labels = {1, 2};
    d.pcaIndices = {0, 5};
    d.pcaLabels = {1, 2};
    d.pcaX = {0, 1, 0.1f, 0.9f};  // image 0, image 5, label 0, label 5
    d.pcaY = {0, 1, 0.1f, 0.9f};
    d.pcaExplained = {0.6, 0.3};
    d.cells["pca_input/image"] = tensor({2, 1, 2, 2}, {1, 1, 1, 1, 0, 0, 0, 0});
    d.cells["pca_input/label"] = tensor({2, 3}, {0, 1, 0, 0, 0, 1});
    return d;
}

QString slurp(const QString& path) {
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
}

MetricBatch batch(const QString& name, const QVector<double>& values, double firstStep = 10) {
    MetricBatch b;
    for (int i = 0; i < values.size(); ++i) {
        b.names << name;
        b.steps << firstStep + 10 * i;
        b.values << values[i];
    }
    return b;
}
}  // namespace

class TestUi : public QObject {
    Q_OBJECT
    QTemporaryDir dir_;
    QString demo_;

private Q_SLOTS:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setOrganizationName("GW Studio tests");
        QCoreApplication::setApplicationName("tst_ui");
        demo_ = makeDemoExperiment(dir_.path() + "/demo", 200);
    }

    /// Flavours, selections and their parameters come from the engine's registries.
    /// A flavour's parameters (workspace.flavour_params) get fields; another flavour drops those it lacks.
    void flavourParameterFields() {
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/flavours.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        auto* form = w.form();
        auto* flavour = qobject_cast<QComboBox*>(form->fieldFor("workspace.flavour"));
        QVERIFY(flavour && flavour->findData("bayesian") >= 0 && flavour->findData("variational") >= 0);
        QVERIFY(!form->fieldFor("workspace.flavour_params.precision_softmax_temp"));
        flavour->setCurrentIndex(flavour->findData("bayesian"));
        Q_EMIT flavour->activated(flavour->currentIndex());
        QCOMPARE(form->value("workspace.flavour"), QString("bayesian"));
        auto* temperature = qobject_cast<QLineEdit*>(form->fieldFor("workspace.flavour_params.precision_softmax_temp"));
        QVERIFY(temperature);
        QCOMPARE(temperature->placeholderText(), QString("0.01"));
        temperature->setFocus();
        QTest::keyClicks(temperature, "0.5");
        w.validate();
        QCOMPARE(form->value("workspace.flavour_params.precision_softmax_temp"), QString("0.5"));
        flavour->setCurrentIndex(flavour->findData("variational"));
        Q_EMIT flavour->activated(flavour->currentIndex());
        QCOMPARE(form->value("workspace.flavour_params.precision_softmax_temp"), QString());
        QVERIFY(!form->fieldFor("workspace.flavour_params.precision_softmax_temp"));
        QVERIFY(form->fieldFor("workspace.flavour_params.var_contrastive_loss"));
    }

    void flavourAndSelectionPickers() {
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a0.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        auto* form = w.form();
        auto* flavour = qobject_cast<QComboBox*>(form->fieldFor("workspace.flavour"));
        auto* selection = qobject_cast<QComboBox*>(form->fieldFor("workspace.selection"));
        QVERIFY(flavour && selection);
        QVERIFY(flavour->findData("fusion") >= 0);
        QVERIFY(selection->findData("dynamic_query_attention") >= 0);
        QCOMPARE(selection->itemText(0), QString("the flavour's default (single_domain)"));
        QVERIFY(!form->fieldFor("workspace.selection_params.temperature"));
        // Fusion's default selection is random: its temperature gets a field.
        flavour->setCurrentIndex(flavour->findData("fusion"));
        Q_EMIT flavour->activated(flavour->currentIndex());
        QCOMPARE(form->value("workspace.flavour"), QString("fusion"));
        QCOMPARE(selection->itemText(0), QString("the flavour's default (random)"));
        auto* temperature = qobject_cast<QLineEdit*>(form->fieldFor("workspace.selection_params.temperature"));
        QVERIFY(temperature);
        QCOMPARE(temperature->placeholderText(), QString("0.2"));
        temperature->setFocus();
        QTest::keyClicks(temperature, "-1");
        w.validate();
        QCOMPARE(form->errorKey(), QString("workspace.selection_params.temperature"));
        QVERIFY(temperature->toolTip().contains("expected a number > 0, found '-1'"));
        // Another selection: its own parameters, and the temperature it lacks is dropped in the same step.
        selection->setCurrentIndex(selection->findData("dynamic_query_attention"));
        Q_EMIT selection->activated(selection->currentIndex());
        QCOMPARE(form->value("workspace.selection"), QString("dynamic_query_attention"));
        QCOMPARE(form->value("workspace.selection_params.temperature"), QString());
        QVERIFY(!form->fieldFor("workspace.selection_params.temperature"));
        QVERIFY(form->fieldFor("workspace.selection_params.n_steps"));
        // The file parses: whether the latent sizes suit attention is known once the data are open, and
        // the run says so before any pre-training (tst_fusion fusionTrainsEndToEnd).
        w.validate();
        QCOMPARE(w.startBlockedReason(), QString());
        form->undo();
        QCOMPARE(form->value("workspace.selection"), QString());
        QCOMPARE(form->value("workspace.selection_params.temperature"), QString("-1"));
        QVERIFY(form->fieldFor("workspace.selection_params.temperature"));
        // Domain-module kinds come from the registry too.
        QVERIFY(QTest::qWaitFor([&] { return form->findChildren<QComboBox*>().size() > 3; }));
        bool found = false;
        for (auto* c : form->findChildren<QComboBox*>()) found = found || c->findText("conv_vae") >= 0;
        QVERIFY(found);
    }

    void fieldsAreCheckedAsTheyAreEdited() {
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a1.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        QCOMPARE(w.startBlockedReason(), QString());
        auto* steps = qobject_cast<QLineEdit*>(w.form()->fieldFor("training.steps"));
        QVERIFY(steps);
        QCOMPARE(steps->text(), QString("200"));
        // Typed as a user types it.
        steps->selectAll();
        QTest::keyClicks(steps, "many");
        QCOMPARE(w.form()->value("training.steps"), QString("many"));
        w.validate();
        QVERIFY2(w.startBlockedReason().contains("training.steps"), qPrintable(w.startBlockedReason()));
        QVERIFY(steps->toolTip().contains("expected a whole number, found 'many'"));
        QVERIFY(steps->styleSheet().contains("#ffd6d6"));
        QVERIFY(w.isModified());
        QVERIFY(w.windowTitle().contains("*"));
        // The four key presses are one undo step.
        w.form()->undo();
        QCOMPARE(w.form()->value("training.steps"), QString("200"));
        w.validate();
        QCOMPARE(w.startBlockedReason(), QString());
        QVERIFY(steps->styleSheet().isEmpty());
        w.form()->redo();
        QCOMPARE(w.form()->value("training.steps"), QString("many"));
        w.form()->undo();
        // A dataset that the file does not hold marks the domains table.
        w.form()->setValue("domains.vec.dataset", "/{split}/nothing");
        w.validate();
        QCOMPARE(w.form()->errorKey(), QString("domains.vec.dataset"));
        QVERIFY(w.startBlockedReason().contains("/train/nothing"));
        QVERIFY(w.form()->fieldFor("domains.vec.dataset")->styleSheet().contains("d32f2f"));
        w.form()->undo();
        // An unknown selection is named by the parser.
        w.form()->setValue("workspace.selection", "telepathy");
        w.validate();
        QCOMPARE(w.form()->errorKey(), QString("workspace.selection"));
        w.form()->undo();
        w.validate();
        QCOMPARE(w.startBlockedReason(), QString());
    }

    /// The experiment's edits are commands on the document's QUndoStack: typing one key merges into one
    /// step named after the key, another key or a structural edit starts a new one, an undo closes the
    /// merge, and opening a file starts a new history.
    void documentKeepsTheHistoryAsCommands() {
        ExperimentDocument doc;
        QCOMPARE(doc.setYaml("name: a\ntraining: {steps: 10}\n", "/tmp"), QString());
        QUndoStack* stack = doc.undoStack();
        QCOMPARE(stack->count(), 0);
        QStringList seen;
        connect(&doc, &ExperimentDocument::changed, this, [&](const QString& key) { seen << key; });
        doc.setValue("training.steps", "2");
        doc.setValue("training.steps", "20");
        doc.setValue("training.steps", "200");
        QCOMPARE(stack->count(), 1);
        QCOMPARE(stack->undoText(), QString("Set training.steps"));
        QCOMPARE(seen, (QStringList{"training.steps", "training.steps", "training.steps"}));
        doc.setValue("training.steps", "200");  // the same text: no step
        QCOMPARE(stack->count(), 1);
        doc.setValue("training.batch_size", "8");  // a key the file did not have: made on the way
        QCOMPARE(doc.value("training.batch_size"), QString("8"));
        QCOMPARE(stack->count(), 2);
        doc.edit("Add domain", [](YAML::Node& root) { root["domains"]["x"]["module"] = "identity"; });
        QCOMPARE(stack->count(), 3);
        QCOMPARE(stack->undoText(), QString("Add domain"));
        doc.edit("Nothing", [](YAML::Node&) {});
        QCOMPARE(stack->count(), 3);
        doc.undo();
        QCOMPARE(doc.value("domains.x.module"), QString());
        QCOMPARE(seen.last(), QString());  // after an undo anything may have changed
        doc.undo();
        QCOMPARE(doc.value("training.batch_size"), QString());
        doc.undo();
        QCOMPARE(doc.value("training.steps"), QString("10"));
        QVERIFY(!stack->canUndo());
        doc.redo();
        QCOMPARE(doc.value("training.steps"), QString("200"));
        doc.setValue("training.steps", "300");  // after an undo or redo, a new step even for the same key
        QCOMPARE(stack->count(), 2);
        doc.undo();
        QCOMPARE(doc.value("training.steps"), QString("200"));
        doc.setValue("training.steps", "");  // removed: the default applies
        QCOMPARE(doc.value("training.steps"), QString());
        QVERIFY(!doc.yaml().contains("steps"));
        QCOMPARE(doc.setYaml("[1, 2]", "/tmp"), QString("expected a mapping of keys at the top of the experiment"));
        QCOMPARE(doc.setYaml("name: b\n", "/tmp"), QString());
        QCOMPARE(stack->count(), 0);
    }

    /// The contrastive loss is picked from the engine's registry; the picked kind's parameters appear
    /// as fields, and another kind drops the ones it lacks, in one undo step.
    void formOffersTheContrastiveLosses() {
        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), QFileInfo(demo_).absolutePath()), QString());
        auto* combo = qobject_cast<QComboBox*>(f.fieldFor("loss.contrastive"));
        QVERIFY(combo);
        QStringList kinds;
        for (int i = 0; i < combo->count(); ++i) kinds << combo->itemData(i).toString();
        QCOMPARE(kinds, (QStringList{"clip", "info_nce", "vsepp"}));
        QCOMPARE(combo->currentIndex(), 0);
        QVERIFY(!f.fieldFor("loss.contrastive_params.margin"));
        Q_EMIT combo->activated(kinds.indexOf("vsepp"));
        QCOMPARE(f.value("loss.contrastive"), QString("vsepp"));
        auto* margin = qobject_cast<QLineEdit*>(f.fieldFor("loss.contrastive_params.margin"));
        QVERIFY(margin && f.fieldFor("loss.contrastive_params.measure") && f.fieldFor("loss.contrastive_params.max_violation"));
        QCOMPARE(margin->placeholderText(), QString("0.2"));
        f.setValue("loss.contrastive_params.margin", "0.4");
        Q_EMIT combo->activated(kinds.indexOf("info_nce"));
        QCOMPARE(f.value("loss.contrastive"), QString("info_nce"));
        QVERIFY(!f.yaml().contains("margin"));  // info_nce has no margin
        QVERIFY(!f.fieldFor("loss.contrastive_params.margin"));
        f.undo();
        QCOMPARE(f.value("loss.contrastive"), QString("vsepp"));
        QCOMPARE(f.value("loss.contrastive_params.margin"), QString("0.4"));
    }

    /// The attention section's fields: greyed unless model: attention; the levels field writes a YAML list;
    /// another selection drops the parameters it lacks (one undo step).
    void formEditsTheAttentionSection() {
        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), QFileInfo(demo_).absolutePath()), QString());
        QLineEdit* levels = nullptr;
        for (auto* e : f.findChildren<QLineEdit*>())
            if (e->accessibleName() == "attention.corruption_scaling") levels = e;
        auto* selection = qobject_cast<QComboBox*>(f.fieldFor("attention.selection"));
        QVERIFY(levels && levels->accessibleName() == "attention.corruption_scaling" && selection && f.fieldFor("attention.gw_run"));
        QVERIFY(!selection->parentWidget()->isEnabled());  // model: gw
        f.setValue("model", "attention");
        QVERIFY(selection->parentWidget()->isEnabled());
        QCOMPARE(selection->currentText(), QString("dynamic_query_attention"));
        QVERIFY(f.fieldFor("attention.selection_params.n_steps"));
        levels->setText("0.1, 0.5,1");
        Q_EMIT levels->editingFinished();
        QVERIFY2(f.yaml().contains("corruption_scaling: [0.1, 0.5, 1]"), qPrintable(f.yaml()));
        f.setValue("attention.selection_params.n_steps", "2");
        Q_EMIT selection->activated(selection->findText("kq_fixed_q"));
        QCOMPARE(f.value("attention.selection"), QString("kq_fixed_q"));
        QVERIFY(!f.yaml().contains("n_steps"));
        QVERIFY(f.fieldFor("attention.selection_params.head_size") && !f.fieldFor("attention.selection_params.n_steps"));
        f.undo();
        QCOMPARE(f.value("attention.selection_params.n_steps"), QString("2"));
        f.setValue("model", "gw");
        QVERIFY(!selection->parentWidget()->isEnabled());
        QCOMPARE(levels->text(), QString("0.1, 0.5, 1"));
    }

    /// Linear GW encoders: the check box writes workspace.linear, greys the sizes it makes unused and
    /// offers the bias; the fusion activation is a picker; undo gives the sizes back.
    void formOffersLinearEncodersAndTheFusionActivation() {
        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), QFileInfo(demo_).absolutePath()), QString());
        auto* linear = qobject_cast<QCheckBox*>(f.fieldFor("workspace.linear"));
        auto* bias = qobject_cast<QCheckBox*>(f.fieldFor("workspace.linear_bias"));
        auto* hidden = f.fieldFor("workspace.encoder.hidden");
        QVERIFY(linear && bias && hidden);
        QVERIFY(hidden->isEnabled() && !bias->isEnabled());
        linear->click();
        QCOMPARE(f.value("workspace.linear"), QString("true"));
        QVERIFY(!hidden->isEnabled() && !f.fieldFor("workspace.decoder.layers")->isEnabled() && bias->isEnabled());
        bias->click();
        QCOMPARE(f.value("workspace.linear_bias"), QString("true"));
        auto* activation = qobject_cast<QComboBox*>(f.fieldFor("workspace.fusion_activation_fn"));
        QVERIFY(activation);
        QCOMPARE(activation->currentText(), QString("tanh"));
        Q_EMIT activation->activated(activation->findText("identity"));
        QCOMPARE(f.value("workspace.fusion_activation_fn"), QString("identity"));
        f.undo();
        f.undo();
        f.undo();
        QCOMPARE(f.value("workspace.linear"), QString());
        QVERIFY(hidden->isEnabled() && !bias->isEnabled());
    }

    /// A check box for a key whose default is true (training.val_data_metrics): an absent key shows
    /// ticked; unticking it (by keyboard, as a user would) writes `false`, which the saved file keeps and
    /// the engine's parser accepts; ticking it again removes the key (its default); undo gives `false`
    /// back; loading a file that says `false` shows it unticked and leaves the text as it was.
    void checkBoxOfADefaultOnKey() {
        const QString saved = dir_.path() + "/no_data_space.yaml";
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/data_space_autosave.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        const QString original = w.form()->yaml();
        auto* box = qobject_cast<QCheckBox*>(w.form()->fieldFor("training.val_data_metrics"));
        QVERIFY(box);
        QCOMPARE(w.form()->value("training.val_data_metrics"), QString());
        QVERIFY(box->isChecked());  // absent: the default, on
        QVERIFY(box->toolTip().contains("data space") && box->toolTip().contains("training.val_data_metrics"));
        QVERIFY(box->text().contains("&"));  // a mnemonic, as the other fields have
        QVERIFY(box->focusPolicy() & Qt::TabFocus);
        QTest::keyClick(box, Qt::Key_Space);
        QVERIFY(!box->isChecked());
        QCOMPARE(w.form()->value("training.val_data_metrics"), QString("false"));
        QVERIFY(w.saveExperiment(saved));
        QVERIFY2(slurp(saved).contains("val_data_metrics: false"), qPrintable(slurp(saved)));
        QCOMPARE(validateExperiment(slurp(saved), dir_.path() + "/demo", saved).message, QString());
        {  // read back: unticked, and the file's text unchanged by loading it
            ExperimentForm f;
            QCOMPARE(f.setYaml(slurp(saved), dir_.path() + "/demo"), QString());
            QVERIFY(!qobject_cast<QCheckBox*>(f.fieldFor("training.val_data_metrics"))->isChecked());
            QCOMPARE(f.yaml(), slurp(saved));
        }
        box->click();  // on again: the key goes, the default applies
        QVERIFY(box->isChecked());
        QCOMPARE(w.form()->value("training.val_data_metrics"), QString());
        QCOMPARE(w.form()->yaml(), original);
        QVERIFY(w.saveExperiment(saved));
        QVERIFY(!slurp(saved).contains("val_data_metrics"));
        w.form()->undo();  // back to false, box and all
        QCOMPARE(w.form()->value("training.val_data_metrics"), QString("false"));
        QVERIFY(!box->isChecked());
        w.form()->undo();
        QCOMPARE(w.form()->yaml(), original);
        QVERIFY(box->isChecked());
        // YAML's other spellings of a boolean show as the parser reads them; a default-off box is unchanged.
        w.form()->setValue("training.val_data_metrics", "no");
        QVERIFY(!box->isChecked());
        w.form()->setValue("training.val_data_metrics", "True");
        QVERIFY(box->isChecked());
        auto* linear = qobject_cast<QCheckBox*>(w.form()->fieldFor("workspace.linear"));
        QVERIFY(linear && !linear->isChecked());
        linear->click();
        QCOMPARE(w.form()->value("workspace.linear"), QString("true"));
        linear->click();
        QCOMPARE(w.form()->value("workspace.linear"), QString());
    }

    /// The dashboard knows a translation's data-space scores by the names the domain-module kinds
    /// declare (KindInfo::dataScores), torchscript's `data_mse` included.
    void dashboardChartsTheDeclaredDataScores() {
        QCOMPARE(MetricsDashboard::familyOf("val/translation_t_to_v_image_mse"), QString("data space"));
        QCOMPARE(MetricsDashboard::shortLabel("val/translation_t_to_v_image_mse"), QString("t → v image MSE"));
        QCOMPARE(MetricsDashboard::familyOf("val/translation_label_to_vec_data_mse"), QString("data space"));
        QCOMPARE(MetricsDashboard::shortLabel("val/translation_label_to_vec_data_mse"), QString("label → vec data mse"));
        QCOMPARE(MetricsDashboard::familyOf("val/translation_v_to_attr_shape_iou"), QString("translations"));  // no kind's
    }

    /// The Groups table (data.groups): the first group added writes today's groups out and drops the
    /// paired keys (their fields greyed), a cell edit rewrites its group, the engine accepts the result,
    /// removing every group gives the paired fields back.
    void formEditsTheGroups() {
        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), QFileInfo(demo_).absolutePath()), QString());
        auto* table = qobject_cast<QTableWidget*>(f.fieldFor("data.groups"));
        QVERIFY(table);
        QCOMPARE(table->rowCount(), 0);
        QVERIFY(f.fieldFor("data.paired_fraction")->isEnabled());
        QPushButton* add = nullptr;
        QPushButton* remove = nullptr;
        for (auto* b : f.findChildren<QPushButton*>()) {
            if (b->text() == "Add &group") add = b;
            if (b->text() == "Remove gro&up") remove = b;
        }
        QVERIFY(add && remove);
        add->click();
        QCOMPARE(table->rowCount(), 3);  // {vec}, {label}, {vec, label}
        QCOMPARE(table->item(2, 0)->text(), QString("vec, label"));
        QCOMPARE(table->item(2, 1)->text(), QString("0.1"));  // the demo's paired fraction
        QCOMPARE(f.value("data.paired_fraction"), QString());
        QVERIFY(!f.fieldFor("data.paired_fraction")->isEnabled());
        table->setCurrentCell(2, 2);
        table->item(2, 2)->setText("40");
        QVERIFY2(f.yaml().contains("count: 40") && !f.yaml().contains("proportion: 0.1"), qPrintable(f.yaml()));
        table->setCurrentCell(0, 1);
        table->item(0, 1)->setText("0.5");
        const Validation ok = validateExperiment(f.yaml(), QFileInfo(demo_).absolutePath(), "demo.yaml");
        QCOMPARE(ok.message, QString());
        table->item(1, 0)->setText("label, image");
        const Validation bad = validateExperiment(f.yaml(), QFileInfo(demo_).absolutePath(), "demo.yaml");
        QVERIFY2(bad.message.contains("data.groups[1].domains: expected domains of this experiment (vec, label), found 'image'"),
                 qPrintable(bad.message));
        for (int i = 0; i < 3; ++i) {
            table->setCurrentCell(-1, -1);
            remove->click();
        }
        QCOMPARE(table->rowCount(), 0);
        QVERIFY(!f.yaml().contains("groups"));
        QVERIFY(f.fieldFor("data.paired_fraction")->isEnabled());
        f.undo();
        QCOMPARE(table->rowCount(), 1);
    }

    /// Scrolling the form with the wheel over a picker the user has not clicked leaves the picker as it
    /// is (the experiment unchanged): the wheel goes on to the scroll area.
    void wheelOverAPickerScrollsTheForm() {
        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), QFileInfo(demo_).absolutePath()), QString());
        f.resize(500, 400);
        f.show();
        QVERIFY(QTest::qWaitForWindowExposed(&f));
        auto* flavour = qobject_cast<QComboBox*>(f.fieldFor("workspace.flavour"));
        QVERIFY(flavour && !flavour->hasFocus());
        const QString before = f.yaml();
        const QPointF at(flavour->width() / 2.0, flavour->height() / 2.0);
        QWheelEvent down(at, flavour->mapToGlobal(at), QPoint(), QPoint(0, -120), Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
        QApplication::sendEvent(flavour, &down);
        QCOMPARE(f.yaml(), before);
        QCOMPARE(f.value("workspace.flavour"), QString());
        QVERIFY(!f.canUndo());
    }

    /// The form lists the registered model kinds and greys out the sections a kind does not read.
    void formFollowsTheModelKind() {
        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), QFileInfo(demo_).absolutePath()), QString());
        auto* model = qobject_cast<QComboBox*>(f.fieldFor("model"));
        QVERIFY(model);
        QStringList kinds;
        for (int i = 0; i < model->count(); ++i) kinds << model->itemData(i).toString();
        QCOMPARE(kinds, (QStringList{"gw", "glom", "attention"}));
        auto* flavour = f.fieldFor("workspace.flavour");
        auto* coefficient = f.fieldFor("loss.coefficients.translations");
        QVERIFY(flavour && coefficient);
        QVERIFY(flavour->isEnabledTo(&f) && coefficient->isEnabledTo(&f));
        f.setValue("workspace.flavour", "fusion");
        f.setValue("model", "glom");
        QVERIFY(!flavour->isEnabledTo(&f) && !coefficient->isEnabledTo(&f));
        QVERIFY(flavour->parentWidget()->toolTip().contains("Not used by a model: glom experiment"));
        QCOMPARE(f.value("workspace.flavour"), QString("fusion"));  // greyed, but kept in the file
        f.undo();
        QVERIFY(flavour->isEnabledTo(&f) && coefficient->isEnabledTo(&f));
        f.setValue("model", "attention");  // reads its own section, not the workspace's
        QVERIFY(!flavour->isEnabledTo(&f) && !coefficient->isEnabledTo(&f));
        QVERIFY(flavour->parentWidget()->toolTip().contains("Not used by a model: attention experiment"));
    }

    void domainsTableEditsTheExperiment() {
        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), QFileInfo(demo_).absolutePath()), QString());
        auto* table = qobject_cast<QTableWidget*>(f.fieldFor("domains"));
        QCOMPARE(table->rowCount(), 2);
        QCOMPARE(table->item(0, 0)->text(), QString("vec"));
        table->item(1, 4)->setText("4");  // latent dim of label
        QCOMPARE(f.value("domains.label.latent_dim"), QString("4"));
        table->item(0, 0)->setText("vectors");  // rename keeps the order and the settings
        QCOMPARE(table->item(0, 0)->text(), QString("vectors"));
        QCOMPARE(f.value("domains.vectors.module"), QString("identity"));
        QVERIFY(f.yaml().indexOf("vectors") < f.yaml().indexOf("label"));
        f.undo();
        QCOMPARE(f.value("domains.vec.module"), QString("identity"));
        // Weights that do not exist yet are marked "pre-train first".
        table->item(0, 5)->setText("vae-not-trained-yet.pt");
        QCOMPARE(f.value("domains.vec.weights"), QString("vae-not-trained-yet.pt"));
        QCOMPARE(table->item(0, 5)->data(Qt::AccessibleDescriptionRole).toString(), QString("pre-train first"));
        QVERIFY(table->item(0, 5)->toolTip().startsWith("Pre-train first"));
        table->item(0, 5)->setText("data.h5");  // any existing file stands for pre-trained weights here
        QCOMPARE(table->item(0, 5)->data(Qt::AccessibleDescriptionRole).toString(), QString("pre-trained"));
    }

    /// A TorchScript domain module: the picker's file choice, the probe's findings under the table and in
    /// the Latent dim column, and a module that does not fit marked with the engine's message.
    void torchScriptModuleInTheForm() {
        const QString modules = dir_.path() + "/modules";
        QDir().mkpath(modules);
        QProcess py;
        py.setProcessChannelMode(QProcess::MergedChannels);
        py.start("/usr/bin/python3", {GW_SOURCE_DIR "/tests/python/torchscript_modules.py", "make", modules});
        if (!py.waitForFinished(120000) || py.exitCode() != 0) GW_SKIP_MISSING("/usr/bin/python3 with torch is needed to script the modules");
        const QString base = QFileInfo(demo_).absolutePath();
        QFile::copy(modules + "/vec_ae.pt", base + "/vec_ae.pt");

        ExperimentForm f;
        QCOMPARE(f.setYaml(slurp(demo_), base), QString());
        f.setValue("domains.vec.latent_dim", "8");
        auto* table = qobject_cast<QTableWidget*>(f.fieldFor("domains"));
        auto* picker = qobject_cast<QComboBox*>(table->cellWidget(0, 3));
        QVERIFY(picker->findText("TorchScript file…") >= 0);
        QCOMPARE(picker->itemData(picker->findText("TorchScript file…")).toString(), QString("torchscript"));
        // What the picker does once its file dialog returns: one undo step, the path relative to the
        // experiment's folder, identity's latent_dim dropped (torchscript has none).
        f.chooseModule("vec", "torchscript", base + "/vec_ae.pt");
        QCOMPARE(f.value("domains.vec.module"), QString("torchscript"));
        QCOMPARE(f.value("domains.vec.script"), QString("vec_ae.pt"));
        QCOMPARE(f.value("domains.vec.latent_dim"), QString());
        QCOMPARE(table->item(0, 5)->text(), QString("vec_ae.pt"));  // the Weights column (or script)
        QCOMPARE(picker->currentText(), QString("TorchScript file…"));

        const Validation ok = validateExperiment(f.yaml(), base, "demo.yaml");
        QCOMPARE(ok.message, QString());
        QCOMPARE(ok.probes.size(), 1);
        QCOMPARE(ok.probes[0].latentDim, qint64(5));
        f.setDomainProbes(ok.probes);
        QVERIFY2(f.probeText().contains("vec_ae.pt") && f.probeText().contains("latent 5") &&
                     f.probeText().contains("461 parameters"),
                 qPrintable(f.probeText()));
        QCOMPARE(table->item(0, 4)->text(), QString("5"));
        QVERIFY(!(table->item(0, 4)->flags() & Qt::ItemIsEditable));

        // A module without decode: the engine's message, on the domains table.
        QFile::copy(modules + "/no_decode.pt", base + "/no_decode.pt");
        table->item(0, 5)->setText("no_decode.pt");
        QCOMPARE(f.value("domains.vec.script"), QString("no_decode.pt"));
        const Validation bad = validateExperiment(f.yaml(), base, "demo.yaml");
        QVERIFY2(bad.message.contains("no method decode"), qPrintable(bad.message));
        QCOMPARE(bad.key, QString("domains.vec.script"));
        f.setDomainProbes(bad.probes);
        f.showError(bad.key, bad.message);
        QVERIFY(table->styleSheet().contains("#d32f2f"));
        QVERIFY(f.probeText().contains("no method decode"));

        f.undo();
        f.undo();
        QCOMPARE(f.value("domains.vec.module"), QString("identity"));
        QCOMPARE(f.value("domains.vec.latent_dim"), QString("8"));
    }

    void saveOpenAndAutosave() {
        const QString saved = dir_.path() + "/saved.yaml";
        const QString autosave = dir_.path() + "/autosave.yaml";
        QString yaml;
        {
            MainWindow w;
            w.setInteractive(false);
            w.setAutosaveFile(autosave);
            QVERIFY(w.openExperiment(demo_, false));
            w.form()->setValue("workspace.dim", "9");
            QVERIFY(w.saveExperiment(saved));
            QVERIFY(!w.isModified());
            QVERIFY(!w.windowTitle().contains("*"));
            yaml = w.form()->yaml();
            // An unsaved edit is kept by the autosave, but only by an interactive window's timer: a
            // scripted one (--screenshot) would leave a stale autosave for the next session to offer.
            w.form()->setValue("training.batch_size", "33");
            w.autosaveTick();
            QVERIFY(!QFile::exists(autosave));
            w.setInteractive(true);
            w.autosaveTick();
            w.setInteractive(false);
            QVERIFY(QFile::exists(autosave));
        }
        MainWindow again;
        again.setInteractive(false);
        again.setAutosaveFile(autosave);
        QVERIFY(again.openExperiment(saved, false));
        QCOMPARE(again.form()->yaml(), yaml);
        QCOMPARE(again.form()->value("workspace.dim"), QString("9"));
        again.offerAutosaveRestore();  // non-interactive: restores
        QCOMPARE(again.form()->value("training.batch_size"), QString("33"));
        QVERIFY(again.isModified());
        QCOMPARE(again.experimentPath(), QFileInfo(saved).absoluteFilePath());
        // The saved file trains with `gw` as is: the engine's parser accepts it.
        QCOMPARE(validateExperiment(slurp(saved), dir_.path() + "/demo", saved).message, QString());
    }

    void devicePickerShowsWhyCudaIsMissing() {
        MainWindow w;
        auto* combo = qobject_cast<QComboBox*>(w.form()->fieldFor("device"));
        QVERIFY(combo && combo->count() >= 2);
        QVERIFY(combo->itemText(0).startsWith("CPU"));
        bool cudaListed = false;
        for (int i = 0; i < combo->count(); ++i) cudaListed = cudaListed || combo->itemText(i).contains("CUDA") || combo->itemText(i).startsWith("cuda:");
        QVERIFY(cudaListed);
        const auto devices = listDevices();
        for (int i = 0; i < devices.size(); ++i) {
            auto* model = qobject_cast<QStandardItemModel*>(combo->model());
            QCOMPARE(model->item(i)->isEnabled(), devices[i].available);
        }
    }

    void dashboardDrawsSmoothsAndExports() {
        MetricsDashboard d;
        d.resize(900, 500);
        d.show();
        QCOMPARE(MetricsDashboard::familyOf("train/translation_image_to_label"), QString("translations"));
        QCOMPARE(MetricsDashboard::familyOf("val/demi_cycle_image"), QString("demi-cycles"));
        QCOMPARE(MetricsDashboard::familyOf("train/cycle_image_through_label"), QString("cycles"));
        QCOMPARE(MetricsDashboard::familyOf("pretrain/image/kl"), QString("pre-training"));
        QCOMPARE(MetricsDashboard::familyOf("val/denoise_mse"), QString("denoising"));
        QCOMPARE(MetricsDashboard::familyOf("pretrain/image/denoise_mse"), QString("pre-training"));
        QCOMPARE(MetricsDashboard::familyOf("val/translation_image_to_label_accuracy"), QString("accuracy"));
        // The Fusion flavour's broadcast metrics, by what they decode from and to.
        QCOMPARE(MetricsDashboard::familyOf("train/from_{image}_to_image_loss"), QString("demi-cycles"));
        QCOMPARE(MetricsDashboard::familyOf("train/from_{image}_to_image_case_{image,label}_loss"), QString("demi-cycles"));
        QCOMPARE(MetricsDashboard::familyOf("train/from_{image}_to_label_loss"), QString("translations"));
        QCOMPARE(MetricsDashboard::familyOf("train/from_{image,label}_to_image_loss"), QString("fused"));
        QCOMPARE(MetricsDashboard::familyOf("train/from_{v}_to_v_latents_loss"), QString("translations"));
        QCOMPARE(MetricsDashboard::familyOf("train/from_{image}_through_{label}_to_image_case_{image}_loss"), QString("cycles"));
        QCOMPARE(MetricsDashboard::familyOf("val/fused"), QString("fused"));
        QCOMPARE(MetricsDashboard::familyOf("val/broadcast_loss"), QString("totals"));
        QCOMPARE(MetricsDashboard::familyOf("val/from_{image,label}_to_label_accuracy"), QString("accuracy"));
        QCOMPARE(MetricsDashboard::familyOf("train/lr"), QString("learning rate"));
        QCOMPARE(MetricsDashboard::familyOf("train/contrastive_image_and_label_logit_scale"), QString("other"));
        // Short labels under their family; the full name stays in tooltips and exports.
        QCOMPARE(MetricsDashboard::shortLabel("train/translation_image_to_label"), QString("image → label"));
        QCOMPARE(MetricsDashboard::shortLabel("val/translation_image_to_label_accuracy"), QString("image → label"));
        QCOMPARE(MetricsDashboard::shortLabel("train/cycle_image_through_label"), QString("image → label → image"));
        QCOMPARE(MetricsDashboard::shortLabel("train/demi_cycle_label"), QString("label"));
        QCOMPARE(MetricsDashboard::shortLabel("train/contrastive_image_and_label"), QString("image ↔ label"));
        QCOMPARE(MetricsDashboard::shortLabel("train/contrastive_image_and_label_logit_scale"), QString("image ↔ label logit scale"));
        QCOMPARE(MetricsDashboard::shortLabel("val/loss"), QString("total"));
        QCOMPARE(MetricsDashboard::shortLabel("train/translations"), QString("all"));
        QCOMPARE(MetricsDashboard::shortLabel("train/lr"), QString("learning rate"));
        QCOMPARE(MetricsDashboard::shortLabel("pretrain/image/kl"), QString("image kl"));
        QCOMPARE(MetricsDashboard::shortLabel("train/from_{image,label}_to_image_loss"), QString("{image, label} → image"));
        QCOMPARE(MetricsDashboard::shortLabel("train/from_{image}_through_{label}_to_image_case_{image}_loss"),
                 QString("image → label → image (case image)"));
        QCOMPARE(MetricsDashboard::shortLabel("train/from_{v}_to_v_latents_loss"), QString("v → v latents"));
        d.append(batch("train/loss", {1.0, 3.0}));
        d.append(batch("train/translation_a_to_b", {5.0, 4.0}));
        d.append(batch("val/loss", {2.0}, 20));
        d.setSmoothing(0.5);
        d.redrawNow();
        QCOMPARE(d.pointCount("train/loss"), qint64(2));
        QCOMPARE(d.drawnLastValue("train/loss"), 2.0);  // 0.5 * 1 + 0.5 * 3
        d.setSmoothing(0);
        d.redrawNow();
        QCOMPARE(d.drawnLastValue("train/loss"), 3.0);
        QVERIFY(d.isMetricVisible("train/loss"));               // family totals are shown
        QVERIFY(!d.isMetricVisible("train/translation_a_to_b"));  // single metrics on demand
        d.setMetricVisible("train/translation_a_to_b", true);
        QVERIFY(d.isMetricVisible("train/translation_a_to_b"));
        d.setLogY(true);
        d.redrawNow();
        QVERIFY(d.framesDrawn() >= 3);
        QVERIFY(d.exportPng(dir_.path() + "/plot.png"));
        QVERIFY(QFileInfo(dir_.path() + "/plot.png").size() > 1000);
        QVERIFY(d.exportPdf(dir_.path() + "/plot.pdf"));
        QVERIFY(slurp(dir_.path() + "/plot.pdf").startsWith("%PDF"));
        QCOMPARE(d.exportCsv(dir_.path() + "/m.csv"), QString());
        QCOMPARE(slurp(dir_.path() + "/m.csv"),
                 QString("step,metric,value\n10,train/loss,1\n20,train/loss,3\n10,train/translation_a_to_b,5\n"
                         "20,train/translation_a_to_b,4\n20,val/loss,2\n"));
        // Non-finite values are kept in the CSV but not drawn.
        d.append(batch("train/loss", {NAN}, 30));
        d.redrawNow();
        QCOMPARE(d.pointCount("train/loss"), qint64(3));
        QCOMPARE(d.drawnLastValue("train/loss"), 3.0);
        d.clear();
        QCOMPARE(d.metricNames(), QStringList());
        QCOMPARE(d.chartFamilies(), QStringList());
    }

    /// An attention run (model: attention): its mean scores in a chart of their own, and its validation
    /// sweep (val/corrupt_{side}_{level}/{domain}_mean_attention_score) as scores against the level.
    void dashboardPlotsAttentionAgainstCorruption() {
        MetricsDashboard d;
        d.resize(1100, 800);
        d.show();
        QVERIFY(!d.attentionLevels()->isVisible());
        d.append(batch("train/a_mean_attention_score", {0.5, 0.6, 0.7}));
        d.append(batch("train/loss", {1.0, 0.8, 0.6}));
        MetricBatch sweep;
        const double levels[] = {0, 0.5, 1};
        const double aWhenB[] = {0.5, 0.8, 0.95}, aWhenA[] = {0.5, 0.2, 0.05};
        for (int i = 0; i < 3; ++i) {
            const QString l = QString::number(levels[i]);
            sweep.names << "val/corrupt_b_" + l + "/a_mean_attention_score" << "val/corrupt_b_" + l + "/b_mean_attention_score"
                        << "val/corrupt_a_" + l + "/a_mean_attention_score" << "val/corrupt_a_" + l + "/b_mean_attention_score"
                        << "val/corrupt_a_" + l + "/loss";
            sweep.steps << 100 << 100 << 100 << 100 << 100;
            sweep.values << aWhenB[i] << 1 - aWhenB[i] << aWhenA[i] << 1 - aWhenA[i] << 0.3;
        }
        d.append(sweep);
        d.redrawNow();
        QVERIFY(d.chartFamilies().contains("attention"));
        QVERIFY(d.isMetricVisible("train/a_mean_attention_score"));
        QVERIFY(!d.isMetricVisible("val/corrupt_b_1/a_mean_attention_score"));  // the sweep is drawn below instead
        QVERIFY(!d.isMetricVisible("val/corrupt_a_1/loss"));
        AttentionLevelsPlot* p = d.attentionLevels();
        QVERIFY(p->isVisible());
        QCOMPARE(p->sides(), (QStringList{"b", "a"}));
        QCOMPARE(p->domains(), (QStringList{"a", "b"}));
        QCOMPARE(p->curve("b", "a"), (QVector<QPointF>{{0, 0.5}, {0.5, 0.8}, {1, 0.95}}));
        QCOMPARE(p->curve("a", "a"), (QVector<QPointF>{{0, 0.5}, {0.5, 0.2}, {1, 0.05}}));
        QCOMPARE(p->plot()->graphCount(), 4);
        // A later validation replaces the points; an earlier one does not.
        d.append(batch("val/corrupt_b_1/a_mean_attention_score", {0.99}, 200));
        d.append(batch("val/corrupt_b_1/a_mean_attention_score", {0.1}, 50));
        QCOMPARE(p->curve("b", "a").back(), QPointF(1, 0.99));
        // A finished run's last values do the same.
        AttentionLevelsPlot finished;
        finished.setFinals({{"val/loss", 0.3}, {"val/corrupt_v_0.25/attr_mean_attention_score", 0.7},
                            {"val/corrupt_v_0/attr_mean_attention_score", 0.5}, {"train/attr_mean_attention_score", 0.6}});
        QCOMPARE(finished.curve("v", "attr"), (QVector<QPointF>{{0, 0.5}, {0.25, 0.7}}));
        d.clear();
        QVERIFY(!d.attentionLevels()->isVisible() && !d.attentionLevels()->hasData());
    }

    void dashboardDrawsOneChartPerFamily() {
        // The first-run complaint: a pre-training loss near 730 and GW losses of 0 to 6 on one axis.
        MetricsDashboard d;
        d.resize(1100, 700);
        d.show();
        d.setSmoothing(0);
        d.append(batch("pretrain/image/loss", {760.0, 731.0, 729.5}));
        d.append(batch("train/loss", {5.5, 3.0, 2.0}));
        d.append(batch("val/loss", {2.5}, 30));
        d.append(batch("train/translations", {1.5, 0.9, 0.6}));
        d.append(batch("train/translation_image_to_label", {1.0, 0.5, 0.4}));
        d.append(batch("train/translation_image_to_label_accuracy", {0.2, 0.5, 0.7}));
        d.append(batch("train/lr", {0.001, 0.002, 0.003}));
        d.append(batch("train/contrastive_image_and_label_logit_scale", {10, 10, 10}));
        d.redrawNow();
        // Families with a ticked curve get a chart, in a fixed order; "other" has none ticked.
        QCOMPARE(d.chartFamilies(), (QStringList{"totals", "translations", "accuracy", "pre-training", "learning rate"}));
        QVERIFY(!d.chart("other"));
        // Each chart has its own y-axis fitted to its curves.
        const QCPRange totals = d.chart("totals")->axis(QCPAxis::atLeft)->range();
        const QCPRange pre = d.chart("pre-training")->axis(QCPAxis::atLeft)->range();
        QVERIFY2(totals.upper < 10 && totals.lower > 0, qPrintable(QString("%1..%2").arg(totals.lower).arg(totals.upper)));
        QVERIFY(pre.contains(729.5) && pre.contains(760) && pre.lower > 600);
        QVERIFY(d.chart("accuracy")->axis(QCPAxis::atLeft)->range().upper < 1);
        // Train solid and val dashed in the same chart and colour; the legend names them by short label.
        QCPLegend* legend = d.chartLegend("totals");
        QVERIFY(legend);
        QStringList names;
        QCPGraph* trainGraph = nullptr;
        QCPGraph* valGraph = nullptr;
        for (int i = 0; i < legend->itemCount(); ++i) {
            auto* item = qobject_cast<QCPPlottableLegendItem*>(legend->item(i));
            QVERIFY(item);
            names << item->plottable()->name();
            if (item->plottable()->name() == "total") trainGraph = qobject_cast<QCPGraph*>(item->plottable());
            if (item->plottable()->name() == "total (val)") valGraph = qobject_cast<QCPGraph*>(item->plottable());
        }
        // One entry per metric: its val curve is the dashed line of the same colour.
        QCOMPARE(names, (QStringList{"total"}));
        for (int i = 0; i < d.plot()->graphCount(); ++i)
            if (d.plot()->graph(i)->name() == "total (val)") valGraph = d.plot()->graph(i);
        QVERIFY(trainGraph && valGraph);
        QCOMPARE(trainGraph->pen().style(), Qt::SolidLine);
        QCOMPARE(valGraph->pen().style(), Qt::DashLine);
        QCOMPARE(valGraph->pen().color(), trainGraph->pen().color());
        QCOMPARE(trainGraph->valueAxis(), d.chart("totals")->axis(QCPAxis::atLeft));
        // No legend covers data: each sits outside every chart's plotting area.
        d.plot()->replot();
        for (const auto& f : d.chartFamilies())
            for (const auto& g : d.chartFamilies()) {
                const QRect area = d.chart(g)->rect();
                const QRect box = d.chartLegend(f)->outerRect();
                QVERIFY2(!area.intersects(box), qPrintable(f + " legend over the " + g + " chart"));
            }
        // Unticking every curve of a family takes its chart away; ticking one brings it back.
        d.setMetricVisible("train/loss", false);
        d.redrawNow();
        QCOMPARE(d.chartLegend("totals")->itemCount(), 1);  // now named by the val curve
        QCOMPARE(qobject_cast<QCPPlottableLegendItem*>(d.chartLegend("totals")->item(0))->plottable()->name(), QString("total (val)"));
        d.setMetricVisible("train/lr", false);
        d.redrawNow();
        QVERIFY(!d.chartFamilies().contains("learning rate"));
        d.setMetricVisible("train/contrastive_image_and_label_logit_scale", true);
        d.redrawNow();
        QCOMPARE(d.chartFamilies().last(), QString("other"));
        // Log scale applies to every chart.
        d.setLogY(true);
        QCOMPARE(d.chart("pre-training")->axis(QCPAxis::atLeft)->scaleType(), QCPAxis::stLogarithmic);
        QVERIFY(d.exportPng(dir_.path() + "/charts.png"));
    }

    void renderersDrawAndScore() {
        // Images: whole-pixel scaling, no blur: a 2x2 image in a 40x40 cell is four 20x20 blocks.
        QImage canvas(40, 40, QImage::Format_RGB32);
        canvas.fill(Qt::red);
        {
            QPainter p(&canvas);
            ImageRenderer().paint(p, QRectF(0, 0, 40, 40), tensor({1, 1, 2, 2}, {0, 1, 0.5f, 0.25f}), 0, nullptr, 0);
        }
        QCOMPARE(QColor(canvas.pixel(0, 0)), QColor(0, 0, 0));
        QCOMPARE(QColor(canvas.pixel(19, 19)), QColor(0, 0, 0));
        QCOMPARE(QColor(canvas.pixel(20, 0)), QColor(255, 255, 255));
        QCOMPARE(QColor(canvas.pixel(39, 19)), QColor(255, 255, 255));
        QCOMPARE(QColor(canvas.pixel(5, 25)), QColor(128, 128, 128));
        QCOMPARE(QColor(canvas.pixel(25, 25)), QColor(64, 64, 64));
        // RGB images read channels first.
        {
            QPainter p(&canvas);
            ImageRenderer().paint(p, QRectF(0, 0, 40, 40), tensor({1, 3, 1, 1}, {1, 0.5f, 0}), 0, nullptr, 0);
        }
        QCOMPARE(QColor(canvas.pixel(20, 20)), QColor(255, 128, 0));
        const auto a = tensor({2, 1, 2, 2}, {0, 0, 0, 0, 1, 1, 1, 1});
        const auto b = tensor({1, 1, 2, 2}, {0, 0, 0, 1});
        QCOMPARE(ImageRenderer().error(a, 0, b, 0), QString("MSE 0.25"));
        QCOMPARE(ImageRenderer().error(a, 1, b, 0), QString("MSE 0.75"));
        // Classes: right or wrong, with the probability of the predicted class.
        const auto probs = tensor({2, 3}, {0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f});
        const auto truth = tensor({1, 3}, {0, 1, 0});
        QCOMPARE(ClassRenderer().error(probs, 0, truth, 0), QString("right 0.70"));
        QCOMPARE(ClassRenderer().error(probs, 1, truth, 0), QString("wrong 0.50"));
        QCOMPARE(ClassRenderer::argmax(probs, 1), qint64(0));
        // Vectors: MSE; bars drawn.
        QCOMPARE(VectorRenderer().error(tensor({1, 2}, {1, 3}), 0, tensor({1, 2}, {1, 1}), 0), QString("MSE 2"));
        canvas.fill(Qt::white);
        {
            QPainter p(&canvas);
            VectorRenderer().paint(p, QRectF(0, 0, 40, 40), tensor({1, 2}, {1, -1}), 0, nullptr, 0);
        }
        QCOMPARE(QColor(canvas.pixel(10, 10)), QColor(25, 118, 210));  // first bar up
        QCOMPARE(QColor(canvas.pixel(30, 30)), QColor(25, 118, 210));  // second bar down
        QCOMPARE(QColor(canvas.pixel(10, 30)), QColor(Qt::white));
        // The registry: by kind, a default by shape, and a new kind added without touching the others.
        QVERIFY(dynamic_cast<ImageRenderer*>(RendererRegistry::forKind("conv_vae", a).get()));
        QVERIFY(dynamic_cast<ClassRenderer*>(RendererRegistry::forKind("class_label", probs).get()));
        QVERIFY(dynamic_cast<ImageRenderer*>(RendererRegistry::forKind("depth_map", tensor({1, 1, 4, 4}, QVector<float>(16))).get()));
        QVERIFY(dynamic_cast<VectorRenderer*>(RendererRegistry::forKind("audio", tensor({1, 5}, QVector<float>(5))).get()));
        struct Audio : VectorRenderer {
            QString error(const PlainTensor&, qint64, const PlainTensor&, qint64) const override { return "audio"; }
        };
        RendererRegistry::add("audio", [] { return std::make_unique<Audio>(); });
        QCOMPARE(RendererRegistry::forKind("audio", tensor({1, 5}, QVector<float>(5)))->error(a, 0, a, 0), QString("audio"));
        QVERIFY(dynamic_cast<ClassRenderer*>(RendererRegistry::forKind("class_label", probs).get()));
    }

    void shapeRendererDrawsTheAttributes() {
        // The worked example of docs/simple-shapes.md: a diamond, x 13, y 19, size 10, RGB (106, 106, 2).
        gw::shapes::Shape s;
        s.cls = 0, s.x = 13, s.y = 19, s.size = 10, s.rotation = 5.253238, s.rgb = {106, 106, 2};
        const auto v = gw::shapes::attributeVector(s);
        const PlainTensor row = tensor({1, 11}, QVector<float>(v.begin(), v.end()));
        QImage canvas(88, 88, QImage::Format_RGB32);
        canvas.fill(Qt::white);
        {
            QPainter p(&canvas);
            ShapeRenderer().paint(p, QRectF(0, 0, 88, 88), row, 0, &row, 0);
        }
        // The picture (top left, drawn by the dataset's renderer) holds the shape's exact colour inside,
        // black around it; the swatch (top right) is the colour too.
        int exact = 0, black = 0;
        for (int y = 0; y < 60; ++y)
            for (int x = 0; x < 60; ++x) {
                const QColor c(canvas.pixel(x, y));
                exact += c == QColor(106, 106, 2);
                black += c == QColor(0, 0, 0);
            }
        QVERIFY2(exact > 100 && black > 1500, qPrintable(QString("%1 %2").arg(exact).arg(black)));
        QCOMPARE(QColor(canvas.pixel(80, 8)), QColor(106, 106, 2));
        QCOMPARE(ShapeRenderer().error(row, 0, row, 0), QString("right 0.0px 0°"));
        // Another class, 3 px to the right and turned by 90 degrees: wrong, 3.0 px, 90°.
        gw::shapes::Shape t = s;
        t.cls = 2, t.x = 16, t.rotation = s.rotation - M_PI / 2;
        const auto w = gw::shapes::attributeVector(t);
        const PlainTensor other = tensor({1, 11}, QVector<float>(w.begin(), w.end()));
        QCOMPARE(ShapeRenderer().error(other, 0, row, 0), QString("wrong 3.0px 90°"));
        QVERIFY(dynamic_cast<ShapeRenderer*>(RendererRegistry::forKind("attributes", row).get()));
    }

    /// A caption cell with the attributes its latent describes ((B, 2, S) rows): the caption decodes from
    /// the first row only, the token score counts tokens only, and the strip below draws the shape in its
    /// own colour; a class other than the truth's is written in red.
    void textRendererShowsThePredictedAttributes() {
        const auto& tok = gw::data::BpeTokenizer::shimmerSsd();
        const std::string sentence = "A small olive diamond at the bottom.";
        const auto ids = tok.encode(sentence, 16);
        gw::shapes::Shape s;
        s.cls = 0, s.x = 16, s.y = 16, s.size = 14, s.rotation = 0.3, s.rgb = {106, 106, 2};
        const auto a = gw::shapes::attributeVector(s);
        QVector<float> data(32, 0.0f);
        for (int i = 0; i < 16; ++i) data[i] = float(ids[size_t(i)]);
        for (int i = 0; i < 11; ++i) data[16 + i] = a[size_t(i)];
        const PlainTensor withAttr = tensor({1, 2, 16}, data);
        QCOMPARE(TextRenderer::tokenCount(withAttr), qint64(16));
        QVERIFY(TextRenderer::attributes(withAttr, 0) != nullptr);
        QCOMPARE(TextRenderer::caption(withAttr, 0), QString::fromStdString(sentence));
        const PlainTensor tokensOnly = tensor({1, 16}, data.mid(0, 16));
        QVERIFY(TextRenderer::attributes(tokensOnly, 0) == nullptr);
        QCOMPARE(TextRenderer().error(withAttr, 0, tokensOnly, 0), QString("words 1.00"));
        // Words, not positions: one word wrong of seven, and the same words in another order (the longest
        // common sequence "a small olive diamond", punctuation aside, is 4 of the longer caption's 7 words).
        auto captionRow = [&](const std::string& text) {
            const auto t = tok.encode(text, 16);
            QVector<float> d(16);
            for (int i = 0; i < 16; ++i) d[i] = float(t[size_t(i)]);
            return tensor({1, 16}, d);
        };
        QCOMPARE(TextRenderer().error(captionRow("A big olive diamond at the bottom."), 0, tokensOnly, 0), QString("words 0.86"));
        QCOMPARE(TextRenderer().error(captionRow("At the bottom, a small olive diamond."), 0, tokensOnly, 0), QString("words 0.57"));
        QCOMPARE(TextRenderer::differing({"a", "BIG", "olive"}, {"A", "small", "olive"}), (QVector<bool>{false, true, false}));
        // The truth says triangle (class 2): the predicted diamond's class is written in red.
        gw::shapes::Shape t = s;
        t.cls = 2;
        const auto b = gw::shapes::attributeVector(t);
        QVector<float> truthData = data;
        for (int i = 0; i < 11; ++i) truthData[16 + i] = b[size_t(i)];
        const PlainTensor truth = tensor({1, 2, 16}, truthData);
        auto draw = [&](const PlainTensor* against) {
            QImage canvas(160, 120, QImage::Format_RGB32);
            canvas.fill(Qt::white);
            QPainter p(&canvas);
            TextRenderer().paint(p, QRectF(0, 0, 160, 120), withAttr, 0, against, 0);
            p.end();
            int olive = 0, red = 0;
            for (int y = 80; y < 120; ++y)
                for (int x = 0; x < 160; ++x) {
                    const QColor c(canvas.pixel(x, y));
                    olive += c == QColor(106, 106, 2);
                    red += c.red() > 150 && c.green() < 90 && c.blue() < 90;
                }
            return std::make_pair(olive, red);
        };
        const auto same = draw(&withAttr), other = draw(&truth);
        QVERIFY2(same.first > 10, qPrintable(QString::number(same.first)));  // the shape, in its colour
        QCOMPARE(same.second, 0);
        QVERIFY2(other.second > 5, qPrintable(QString::number(other.second)));
    }

    void pairsCurvePlot() {
        QTemporaryDir dir;
        const QString csv = dir.path() + "/curve.csv", png = dir.path() + "/curve.png";
        auto write = [&](const QByteArray& text) {
            QFile f(csv);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(text);
        };
        QVector<CurvePoint> points;
        QStringList metrics;
        write("pairs,model,seed,image_mse\n200,full GW,0,0.03\n200,full GW,1,0.05\n2000,full GW,0,0.02\n");
        QCOMPARE(readCurveCsv(csv, points, metrics), QString());
        QCOMPARE(points.size(), 3);
        QCOMPARE(metrics, QStringList{"image_mse"});
        QCOMPARE(points[1].values.value("image_mse"), 0.05);
        QCOMPARE(plotPairsCurve(points, {{"image_mse", "image MSE", false}}, "t", png, 600, 300), QString());
        QImage img(png);
        QCOMPARE(img.size(), QSize(600, 300));
        int blue = 0;  // the full GW's line
        for (int y = 0; y < img.height(); ++y)
            for (int x = 0; x < img.width(); ++x) blue += QColor(img.pixel(x, y)) == QColor(25, 118, 210);
        QVERIFY(blue > 50);
        QVERIFY(plotPairsCurve(points, {{"accuracy", "a", true}}, "t", png).contains("no column 'accuracy'"));
        write("pairs,model,seed,image_mse\n200,full GW,zero,0.03\n");
        QCOMPARE(readCurveCsv(csv, points, metrics), csv + ":2: seed: expected an integer, found 'zero'");
        write("pairs,model,image_mse\n");
        QVERIFY(readCurveCsv(csv, points, metrics).contains(":1: expected the header pairs,model,seed,METRIC..."));
    }

    void explorerShowsWhatTheWorkerHandsOver() {
        ExplorerPanel panel;
        panel.resize(1100, 700);
        panel.show();
        QSignalSpy changed(&panel, &ExplorerPanel::requestChanged), refresh(&panel, &ExplorerPanel::refreshRequested);
        panel.setData(syntheticExplore());
        QCOMPARE(panel.grid()->columns(0), (QStringList{"input image", "demi-cycle", "→ label", "label (truth)", "cycle via label"}));
        QCOMPARE(panel.grid()->cellError("demi_cycle/image", 0), QString("MSE 0"));
        QCOMPARE(panel.grid()->cellError("demi_cycle/image", 1), QString("MSE 0.25"));
        QCOMPARE(panel.grid()->cellError("translation/image/label", 0), QString("right 0.70"));
        QCOMPARE(panel.grid()->cellError("translation/image/label", 1), QString("wrong 0.50"));
        QCOMPARE(panel.grid()->cellError("demi_cycle/label", 1), QString("wrong 0.60"));
        QCOMPARE(panel.grid()->cellError("input/image", 0), QString());
        const QSize hint = panel.grid()->sizeHint();
        QVERIFY(hint.width() > 5 * 92 && hint.height() > 4 * 92);  // 5 columns, 2 samples x 2 domains
        QCOMPARE(panel.describePoint(3), QString("domain label, sample 5, class 2\n(click: add it to the grid)"));
        // Hovering a point shows that sample's inputs in every domain.
        QCOMPARE(panel.preview()->row(), -1);
        QCOMPARE(panel.hoverPoint(3), panel.describePoint(3));
        QCOMPARE(panel.preview()->row(), 1);
        const QImage preview = panel.preview()->grab().toImage();
        bool black = false;  // sample 5's image is all zeros: drawn black in the preview
        for (int y = 0; y < preview.height() && !black; ++y)
            for (int x = 0; x < preview.width() / 2 && !black; ++x) black = QColor(preview.pixel(x, y)) == QColor(0, 0, 0);
        QVERIFY(black);
        // Points: one graph per class and domain; the legend: one entry per class and per domain, beside
        // the axes, never over the points.
        QCustomPlot* plot = panel.workspacePlot();
        QCOMPARE(plot->graphCount(), 4 + 2 + 2);
        QCOMPARE(plot->legend->itemCount(), 4);
        QStringList entries;
        for (int i = 0; i < plot->legend->itemCount(); ++i)
            entries << static_cast<QCPPlottableLegendItem*>(plot->legend->item(i))->plottable()->name();
        QCOMPARE(entries, (QStringList{"class 1", "class 2", "image", "label"}));
        plot->replot();
        QVERIFY(!plot->axisRect()->outerRect().intersects(plot->legend->outerRect()));
        // Classes the data name are called by their names.
        ExploreData named = syntheticExplore();
        named.classNames = {"Sandal", "Sneaker", "Ankle boot"};
        panel.setData(named);
        QCOMPARE(panel.describePoint(3), QString("domain label, sample 5, Ankle boot\n(click: add it to the grid)"));
        QCOMPARE(static_cast<QCPPlottableLegendItem*>(plot->legend->item(0))->plottable()->name(), QString("Sneaker"));
        panel.setData(syntheticExplore());
        panel.setColourBy("domain");
        QCOMPARE(panel.workspacePlot()->graphCount(), 2);
        panel.addSample(5);
        QCOMPARE(panel.request().mode, QString("indices"));
        QCOMPARE(panel.request().indices, (QVector<qint64>{3, 7, 5}));
        QVERIFY(changed.count() >= 1);
        QCOMPARE(refresh.count(), 1);
        QVERIFY(panel.exportGrid(dir_.path() + "/grid.png"));
        QImage grid(dir_.path() + "/grid.png");
        QCOMPARE(grid.size(), hint);
        QVERIFY(panel.exportWorkspace(dir_.path() + "/ws.png"));
        QVERIFY(QImage(dir_.path() + "/ws.png").width() == 900);
    }

    /// A broadcast from a chosen subset: one more row per sample, every domain's decoding beside its truth.
    void explorerShowsBroadcasts() {
        ExplorerPanel panel;
        panel.resize(1100, 700);
        ExploreData d = syntheticExplore();
        const QSize before = (panel.setData(d), panel.grid()->sizeHint());
        QVERIFY(panel.grid()->broadcastColumns().isEmpty());
        // Every non-empty subset is offered, singles first.
        QComboBox* broadcast = nullptr;
        for (auto* c : panel.findChildren<QComboBox*>())
            if (c->accessibleName() == "Broadcast from") broadcast = c;
        QVERIFY(broadcast);
        QCOMPARE(broadcast->count(), 4);
        QCOMPARE(broadcast->itemText(3), QString("image + label"));
        QSignalSpy changed(&panel, &ExplorerPanel::requestChanged);
        broadcast->setCurrentIndex(3);
        QCOMPARE(changed.count(), 1);
        QCOMPARE(panel.request().broadcastFrom, (QStringList{"image", "label"}));
        d.broadcastFrom = {"image", "label"};
        d.cells["broadcast/image"] = tensor({2, 1, 2, 2}, {0, 1, 0.5f, 0.25f, 1, 1, 1, 0});
        d.cells["broadcast/label"] = tensor({2, 3}, {0.1f, 0.8f, 0.1f, 0.6f, 0.1f, 0.3f});
        panel.setData(d);
        QCOMPARE(panel.grid()->broadcastColumns(),
                 (QStringList{"→ image", "image (truth)", "→ label", "label (truth)"}));
        QCOMPARE(panel.grid()->cellError("broadcast/image", 1), QString("MSE 0.25"));
        QCOMPARE(panel.grid()->cellError("broadcast/label", 0), QString("right 0.80"));
        QCOMPARE(panel.grid()->cellError("broadcast/label", 1), QString("wrong 0.60"));
        QVERIFY(panel.grid()->sizeHint().height() > before.height());  // one more row per sample
        QCOMPARE(broadcast->currentIndex(), 3);  // kept across refreshes
        QVERIFY(panel.exportGrid(dir_.path() + "/broadcast.png"));
        QCOMPARE(QImage(dir_.path() + "/broadcast.png").size(), panel.grid()->sizeHint());
    }

    /// Edit ▸ Settings writes the user's settings file, and the window's experiments are completed by
    /// it: a relative data file is found in the settings' data folder.
    void settingsDialogCompletesExperiments() {
        const QString settingsFile = dir_.path() + "/config/gw-studio/settings.yaml";
        const QByteArray before = qgetenv("GW_STUDIO_SETTINGS");
        qputenv("GW_STUDIO_SETTINGS", settingsFile.toUtf8());
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a-settings.yaml");
        QFile demo(demo_);
        QVERIFY(demo.open(QIODevice::ReadOnly));
        const QString text = QString::fromUtf8(demo.readAll());
        const QString elsewhere = dir_.path() + "/elsewhere";  // the same experiment without its data beside it
        QVERIFY(QDir().mkpath(elsewhere));
        QCOMPARE(w.form()->setYaml(text, elsewhere), QString());
        w.validate();
        QVERIFY2(w.startBlockedReason().contains(elsewhere + "/data.h5: no such file"), qPrintable(w.startBlockedReason()));

        SettingsDialog d(&w);
        QCOMPARE(d.lastError(), QString());
        SettingsData s = d.values();
        QCOMPARE(s.path, settingsFile);
        QCOMPARE(s.threads, -1);  // nothing set yet
        s.dataDir = QFileInfo(demo_).absolutePath();
        s.threads = 1;
        d.setValues(s);
        d.show();
        QVERIFY(QTest::qWaitForWindowExposed(&d));
        d.grab().save(QString(GW_ARTIFACTS_DIR) + "/settings-dialog.png");
        d.accept();
        QCOMPARE(d.result(), int(QDialog::Accepted));
        QString err;
        const SettingsData back = loadSettings(&err);
        QCOMPARE(err, QString());
        QCOMPARE(back.dataDir, s.dataDir);
        QCOMPARE(back.threads, 1);
        QCOMPARE(back.device, QString());
        w.validate();
        QCOMPARE(w.startBlockedReason(), QString());  // data.h5 now found in the data folder

        // A damaged file is named in the dialog and in the window's check.
        QFile f(settingsFile);
        QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
        f.write("threads: many\n");
        f.close();
        SettingsDialog damaged;
        QVERIFY2(damaged.lastError().contains(settingsFile + ": threads: expected a whole number, found 'many'"), qPrintable(damaged.lastError()));
        w.validate();
        QVERIFY2(w.startBlockedReason().contains("settings.yaml: threads"), qPrintable(w.startBlockedReason()));
        // A place that cannot be written: the dialog stays open and says why.
        qputenv("GW_STUDIO_SETTINGS", "/proc/gw-studio/settings.yaml");
        SettingsDialog unwritable;
        unwritable.accept();
        QVERIFY(unwritable.result() != int(QDialog::Accepted));
        QVERIFY2(unwritable.lastError().contains("/proc/gw-studio/settings.yaml"), qPrintable(unwritable.lastError()));
        if (before.isNull()) qunsetenv("GW_STUDIO_SETTINGS");
        else qputenv("GW_STUDIO_SETTINGS", before);
    }

    /// The Runs tab lists a sweep (its points, their states and the keys they differ by) and a plain run
    /// (its difference from the experiment in the form), overlays the curves of the selected runs from
    /// their metrics.csv, and plots a sweep's final metric against a swept key with seeds averaged.
    void runsPanelListsComparesAndPlotsSweeps() {
        const QString root = dir_.path() + "/runs-panel";
        QVERIFY(QDir().mkpath(root));
        const QString demoDir = QFileInfo(demo_).absolutePath();
        const QString gw = QString(GW_BINARY_DIR) + "/app/gw";
        auto run = [](const QString& program, const QStringList& args) {
            QProcess p;
            p.setProcessChannelMode(QProcess::MergedChannels);
            p.start(program, args);
            p.waitForFinished(240000);
            return std::make_pair(p.exitCode(), QString::fromUtf8(p.readAll()));
        };
        QFile sweepFile(root + "/pairs.yaml");
        QVERIFY(sweepFile.open(QIODevice::WriteOnly));
        sweepFile.write(QString("name: pairs\nexperiment: %1\nout: %2\noverrides: [training.steps=60, training.val_every=30]\n"
                                "axes:\n  data.paired_count: [16, 512]\n  seed: [0, 1]\n").arg(demo_, root).toUtf8());
        sweepFile.close();
        auto [code, out] = run(gw, {"sweep", root + "/pairs.yaml", "--local", "2"});
        QVERIFY2(code == 0, qPrintable(out));
        std::tie(code, out) = run(gw, {"train", demo_, "training.steps=40", "optimizer.lr=0.01", "--out", root + "/single"});
        QVERIFY2(code == 0, qPrintable(out));

        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a-runs.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        w.resize(1400, 900);
        w.show();
        w.showRuns();
        RunsPanel* panel = w.runsPanel();
        panel->setFolder(root);
        QVERIFY(panel->waitForRefresh());  // read on a worker thread
        const RunsListing& l = panel->listing();
        QCOMPARE(l.sweeps.size(), qsizetype(1));
        QCOMPARE(l.runs.size(), qsizetype(1));
        const SweepEntry& s = l.sweeps[0];
        QCOMPARE(s.name, QString("pairs"));
        QCOMPARE(s.axes, QStringList({"data.paired_count", "seed"}));
        QCOMPARE(s.points.size(), qsizetype(4));
        for (const auto& p : s.points) QCOMPARE(p.state, QString("finished"));
        QCOMPARE(s.points[2].differs, QStringList({"data.paired_count=512", "seed=0"}));
        // The plain run differs from the form's experiment by what was overridden, and only that.
        QStringList differs = l.runs[0].differs;
        differs.sort();
        QCOMPARE(differs, QStringList({"optimizer.lr=0.01", "training.steps=40"}));
        QCOMPARE(l.runs[0].state, QString("finished"));
        QCOMPARE(panel->tree()->topLevelItemCount(), 2);
        QCOMPARE(panel->tree()->topLevelItem(0)->childCount(), 4);
        QCOMPARE(panel->metric(), QString("val/loss"));

        // Two runs overlaid: one graph each, with every val/loss row of its metrics.csv.
        panel->selectRuns({s.points[0].dir, l.runs[0].dir});
        QCOMPARE(panel->plotMode(), QString("overlay"));
        QCOMPARE(panel->plot()->graphCount(), 2);
        int rows = 0;
        QFile csv(s.points[0].dir + "/metrics.csv");
        QVERIFY(csv.open(QIODevice::ReadOnly));
        while (!csv.atEnd())
            if (QString::fromUtf8(csv.readLine()).contains(",val/loss,")) ++rows;
        QCOMPARE(rows, 2);  // steps 30 and 60
        QCOMPARE(panel->plot()->graph(0)->data()->size(), rows);

        // The sweep: final val/loss against the paired count, the two seeds averaged per count.
        panel->selectSweep("pairs");
        QCOMPARE(panel->plotMode(), QString("sweep"));
        QCOMPARE(panel->plot()->graphCount(), 2);  // the mean line and the seeds' dots
        auto* mean = panel->plot()->graph(0);
        QCOMPARE(mean->data()->size(), 2);
        const double at16 = (s.points[0].final("val/loss", NAN) + s.points[1].final("val/loss", NAN)) / 2;
        const double at512 = (s.points[2].final("val/loss", NAN) + s.points[3].final("val/loss", NAN)) / 2;
        QCOMPARE(mean->data()->at(0)->key, 16.0);
        QVERIFY(qAbs(mean->data()->at(0)->value - at16) < 1e-9);
        QCOMPARE(mean->data()->at(1)->key, 512.0);
        QVERIFY(qAbs(mean->data()->at(1)->value - at512) < 1e-9);
        QCOMPARE(panel->plot()->xAxis->scaleType(), QCPAxis::stLogarithmic);  // 16 .. 512
        panel->setMetric("val/translation_vec_to_label_accuracy");
        QVERIFY(qAbs(panel->plot()->graph(0)->data()->at(0)->value -
                     (s.points[0].final("val/translation_vec_to_label_accuracy", NAN) +
                      s.points[1].final("val/translation_vec_to_label_accuracy", NAN)) / 2) < 1e-9);
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        w.grab().save(QString(GW_ARTIFACTS_DIR) + "/runs-panel-sweep.png");
        panel->selectRuns({s.points[0].dir, s.points[1].dir, s.points[2].dir, s.points[3].dir});
        panel->setMetric("train/loss");
        w.grab().save(QString(GW_ARTIFACTS_DIR) + "/runs-panel-overlay.png");

        // A point that fails is listed with its state and error.
        QFile status(s.points[3].dir + "/status.yaml");
        QVERIFY(status.open(QIODevice::WriteOnly | QIODevice::Truncate));
        status.write("state: failed\nstep: 20\ntotal_steps: 60\nerror: \"step 20: the loss is nan\"\n");
        status.close();
        panel->refresh();
        QVERIFY(panel->waitForRefresh());
        QCOMPARE(panel->listing().sweeps[0].points[3].state, QString("failed"));
        QCOMPARE(panel->tree()->topLevelItem(0)->child(3)->text(1), QString("failed"));
        QCOMPARE(panel->tree()->topLevelItem(0)->child(3)->toolTip(1), QString("step 20: the loss is nan"));
    }

    void anEditJustBeforeStartIsCheckedFirst() {
        // Start within the 150 ms of the debounced check: the edit is checked then, not skipped (and
        // no check runs once the worker holds the data files).
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a3.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        QCOMPARE(w.startBlockedReason(), QString());
        auto* steps = qobject_cast<QLineEdit*>(w.form()->fieldFor("training.steps"));
        steps->selectAll();
        QTest::keyClicks(steps, "lots");
        w.start();
        QVERIFY(!w.isRunning());
        QVERIFY2(w.startBlockedReason().contains("training.steps"), qPrintable(w.startBlockedReason()));
    }

    /// The GLOM tab: a 3 x 3 grid, 2 levels, states 0 to 2. At state 2 the left column of patches is one
    /// island (similarity 1 inside, -1 to the rest); at state 0 every column agrees. The maps must colour
    /// each cell by its similarity to the selected column, and clicks and arrow keys select.
    void glomViewShowsIslands() {
        GlomIslands g;
        g.channels = 1;
        g.imageSize = 6;
        g.side = 3;
        g.levels = 2;
        g.dim = 8;
        g.iterations = 2;
        g.readAt = 1;
        g.split = "test";
        g.noiseStd = 0.5;
        g.input = g.noisy = g.reconstruction = QVector<float>(36, 0.5f);
        const qint64 n = g.columns(), states = g.iterations + 1;
        g.similarity.resize(int(states * g.levels * n * n));
        g.agreement.resize(int(states * g.levels * n));
        auto island = [](qint64 column) { return column % 3 == 0; };
        for (qint64 s = 0; s < states; ++s)
            for (qint64 l = 0; l < g.levels; ++l) {
                for (qint64 a = 0; a < n; ++a) {
                    for (qint64 b = 0; b < n; ++b)
                        g.similarity[int(((s * g.levels + l) * n + a) * n + b)] = s == 2 && island(a) != island(b) ? -1.0f : 1.0f;
                    g.agreement[int((s * g.levels + l) * n + a)] = s == 2 ? 0.25f : 1.0f;
                }
            }
        GlomPanel panel;
        panel.setData(g, "training", 40);
        GlomIslandsView* view = panel.view();
        QCOMPARE(panel.stateSlider()->maximum(), 2);
        QCOMPARE(panel.stateSlider()->value(), 1);  // the state the reconstruction reads
        QCOMPARE(view->state(), 1);
        QCOMPARE(view->column(), 4);                // the centre column first
        panel.stateSlider()->setValue(2);
        QCOMPARE(view->state(), 2);
        view->setColumn(0);
        const QColor yes = similarityColour(1.0f), no = similarityColour(-1.0f);
        QVERIFY(yes != no);
        QImage img = view->render();
        for (int level = 0; level < 2; ++level)
            for (int b = 0; b < 9; ++b) {
                if (b == 0) continue;  // the selected cell carries its outline
                const QColor got = img.pixelColor(view->cellCentre(level, b));
                QVERIFY2(got == (island(b) ? yes : no), qPrintable(QString("level %1 column %2: %3").arg(level).arg(b).arg(got.name())));
            }
        panel.stateSlider()->setValue(0);  // before any iteration every column agrees
        img = view->render();
        QCOMPARE(img.pixelColor(view->cellCentre(1, 2)), yes);
        // Clicks and arrow keys choose the column the maps compare with.
        QSignalSpy changed(view, &GlomIslandsView::columnChanged);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        QTest::mouseClick(view, Qt::LeftButton, {}, view->cellCentre(0, 7));
        QCOMPARE(view->column(), 7);
        QCOMPARE(changed.size(), 1);
        QTest::keyClick(view, Qt::Key_Right);
        QCOMPARE(view->column(), 8);
        QTest::keyClick(view, Qt::Key_Right);  // the edge of the grid stops it
        QCOMPARE(view->column(), 8);
        QTest::keyClick(view, Qt::Key_Up);
        QCOMPARE(view->column(), 5);
        QCOMPARE(view->columnAt(QPoint(0, 0)), -1);
        // The panel's request names its split and sample.
        ExploreRequest r;
        panel.fillRequest(r);
        QCOMPARE(r.glomSplit, QString("test"));
        QCOMPARE(r.glomIndices, QVector<qint64>{0});
    }

    /// The window shows one refresh cadence in the Explorer and GLOM tabs.
    void glomAndExplorerShareTheRefreshCadence() {
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a3.yaml");
        QCOMPARE(qint64(w.glomPanel()->refreshEvery()->value()), w.explorer()->refreshEvery());
        w.glomPanel()->refreshEvery()->setValue(75);
        QCOMPARE(w.explorer()->refreshEvery(), qint64(75));
        w.explorer()->setRefreshEvery(300);
        QCOMPARE(w.glomPanel()->refreshEvery()->value(), 300);
    }

    /// A window run whose folder is on a full disk (a 64 KiB tmpfs): the run ends as failed, with a
    /// dialog naming the file and the cause, and status.yaml says so; the window, its unsaved edits and
    /// its form are as they were (LibTorch's checkpoint writer used to abort the whole session).
    void aFullDiskFailsTheRunNotTheWindow() {
        if (!gwtest::SmallDisk::canMount()) GW_SKIP_MISSING("root, to mount a small tmpfs");
        gwtest::SmallDisk disk(dir_.path() + "/full-disk", 64 * 1024);
        QVERIFY(disk.mounted());
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a-full.yaml");
        w.resize(1200, 800);
        w.show();
        QVERIFY(w.openExperiment(demo_, false));
        w.form()->setValue("training.steps", "400");
        w.form()->setValue("training.checkpoint_every", "50");
        w.form()->setValue("training.out", disk.path());
        w.validate();
        QVERIFY(w.isModified());
        const QString edited = w.form()->yaml();
        QSignalSpy ended(&w, &MainWindow::runEnded);
        w.start();
        QVERIFY(ended.wait(120000));
        QCOMPARE(ended.first().at(0).toBool(), false);
        QVERIFY(!w.isRunning());
        QCOMPARE(w.statusText(), QString("Failed"));
        auto* box = w.findChild<QMessageBox*>("errorDialog");
        QVERIFY(box);
        QTRY_VERIFY(box->isVisible());
        qInfo("dialog: %s", qPrintable(box->text()));
        // Whichever write meets the full disk first (the first checkpoint, or the TensorBoard events that the
        // validation's data-space scores fill faster), it is named with the cause.
        QVERIFY2(box->text().contains("cannot write") && box->text().contains("(no space left on the device, ENOSPC)") &&
                     box->text().contains(disk.path()),
                 qPrintable(box->text()));
        const QStringList runs = QDir(disk.path()).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
        QCOMPARE(runs.size(), 1);
        const QString status = slurp(disk.path() + "/" + runs[0] + "/status.yaml");
        QVERIFY2(status.contains("state: failed") && status.contains("no space left on the device"), qPrintable(status));
        // The session goes on: the form as edited, still unsaved, editable again.
        QCOMPARE(w.form()->yaml(), edited);
        QVERIFY(w.isModified());
        QVERIFY(w.form()->fieldFor("training.steps")->isEnabled());
        box->close();
    }

    void windowWhileTraining() {
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a2.yaml");
        w.resize(1400, 860);
        w.show();
        QVERIFY(w.openExperiment(demo_, false));
        w.form()->setValue("training.steps", "1000000");
        w.form()->setValue("training.out", dir_.path() + "/runs");
        w.validate();
        QSignalSpy ended(&w, &MainWindow::runEnded);
        w.start();
        QVERIFY(w.isRunning());
        QVERIFY(!w.form()->fieldFor("training.steps")->isEnabled());  // no edits while it trains
        QTRY_VERIFY_WITH_TIMEOUT(w.dashboard()->pointCount("train/loss") >= 30, 60000);
        QTRY_VERIFY_WITH_TIMEOUT(w.statusText().contains("steps/s"), 10000);
        QVERIFY(w.statusText().contains("ETA"));
        QTRY_VERIFY(w.dashboard()->framesDrawn() > 2);
        // The explorer follows the run (every 500 steps by default; the demo logs every 10).
        QTRY_VERIFY_WITH_TIMEOUT(!w.explorer()->data().isEmpty(), 60000);
        QCOMPARE(w.explorer()->data().source, QString("training"));
        QCOMPARE(w.explorer()->data().indices.size(), 4);  // one per class of the demo
        const QImage shot = w.grab().toImage();
        QVERIFY(!shot.isNull() && shot.width() >= 1000);
        QDir().mkpath(GW_ARTIFACTS_DIR);
        QVERIFY(shot.save(GW_ARTIFACTS_DIR "/main-window-training.png"));
        w.togglePause();
        QTRY_COMPARE(w.worker()->state(), TrainingWorker::Paused);
        QTRY_VERIFY(w.statusText().startsWith("Paused"));
        w.togglePause();
        QTRY_VERIFY(w.worker()->state() != TrainingWorker::Paused);
        w.stop();
        QVERIFY(ended.wait(30000));
        QCOMPARE(ended.first().at(0).toBool(), true);
        QVERIFY(!w.isRunning());
        QVERIFY(QFile::exists(w.lastCheckpoint()));
        QVERIFY(w.statusText().startsWith("Stopped"));
        QVERIFY(w.form()->fieldFor("training.steps")->isEnabled());
        // TensorBoard's view of the window's run: the engine's scalars and, from the window, the explorer
        // grid as an image at the step it was computed (read back with python3-protobuf).
        {
            const QString run = QFileInfo(w.lastCheckpoint()).dir().absolutePath().section('/', 0, -2);
            QProcess py;
            QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
            env.insert("PYTHONPATH", GW_BINARY_DIR "/tests/tb_python");
            py.setProcessEnvironment(env);
            py.start("/usr/bin/python3", {GW_SOURCE_DIR "/tests/python/tensorboard_events.py", run, "--dump", GW_ARTIFACTS_DIR "/tensorboard"});
            QVERIFY(py.waitForFinished(60000));
            const QByteArray out = py.readAllStandardOutput();
            QVERIFY2(py.exitCode() == 0, py.readAllStandardError().constData());
            const QJsonObject events = QJsonDocument::fromJson(out).object();
            QVERIFY(events.value("scalars").toObject().contains("train/loss"));
            const QJsonArray grids = events.value("images").toObject().value("explorer/translations").toArray();
            QVERIFY2(!grids.isEmpty(), out.left(300).constData());
            const QJsonArray first = grids[0].toArray();  // step, width, height, PNG bytes
            QVERIFY(first[1].toInt() > 100 && first[2].toInt() > 100 && first[3].toInt() > 1000);
        }
        // Export for Python from the window's run.
        QCOMPARE(exportForPython(w.lastCheckpoint(), dir_.path() + "/gw.pt"), QString());
        QVERIFY(QFile::exists(dir_.path() + "/gw.yaml"));
    }

    // ---- The Runs tab under load, the explorer's grid width, painting before the window shows ----

    /// The Runs tab reads on a worker thread and, on a refresh in which one run finishes and a new run
    /// folder appears, updates only those rows: the selected run stays selected (and plotted), a
    /// collapsed sweep stays collapsed and an expanded one expanded, the row at the top of the view stays
    /// there, and rows that did not change are the same rows.
    void runsTabKeepsSelectionExpansionAndScroll() {
        const QString root = dir_.path() + "/runs-keep";
        const QDateTime t0 = QDateTime::currentDateTime().addSecs(-3600);
        for (int i = 0; i < 40; ++i)
            writeRun(QString("%1/runs/run-%2").arg(root).arg(i, 2, 10, QChar('0')), i == 5 ? "running" : "finished",
                     i == 5 ? 50 : 100, t0.addSecs(10 * i));
        writeSweep(root + "/sweeps/alpha", 3);
        writeSweep(root + "/sweeps/beta", 3);
        RunsPanel panel;
        panel.resize(900, 600);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        panel.setFolder(root);
        QVERIFY(panel.isRefreshing());                  // the folder is read on the worker thread...
        QCOMPARE(panel.tree()->topLevelItemCount(), 0);  // ...and shown once read
        QVERIFY(panel.waitForRefresh());
        QTreeWidget* tree = panel.tree();
        QCOMPARE(tree->topLevelItemCount(), 2 + 40);
        auto row = [&](const QString& dir) -> QTreeWidgetItem* {
            for (QTreeWidgetItemIterator it(tree); *it; ++it)
                if ((*it)->data(0, Qt::UserRole).toString() == dir) return *it;
            return nullptr;
        };
        QTreeWidgetItem* alpha = tree->topLevelItem(0);
        QTreeWidgetItem* beta = tree->topLevelItem(1);
        QCOMPARE(alpha->text(0), QString("sweep alpha"));
        QCOMPARE(alpha->childCount(), 3);
        QVERIFY(alpha->isExpanded() && beta->isExpanded());  // expanded on the first listing
        alpha->setExpanded(false);
        const QString running = root + "/runs/run-05";
        QCOMPARE(tree->topLevelItem(2)->text(0), QString("run-39"));  // newest first
        panel.selectRuns({running});
        QCOMPARE(panel.plotMode(), QString("overlay"));
        QCOMPARE(panel.plot()->graphCount(), 1);
        QCOMPARE(row(running)->text(1), QString("running"));
        tree->setCurrentItem(row(running), 0, QItemSelectionModel::NoUpdate);
        tree->scrollToItem(row(root + "/runs/run-20"), QAbstractItemView::PositionAtTop);
        QVERIFY(tree->verticalScrollBar()->value() > 0);
        const QString top = tree->itemAt(1, 1)->data(0, Qt::UserRole).toString();
        QCOMPARE(top, root + "/runs/run-20");
        QTreeWidgetItem* untouched = row(root + "/runs/run-30");
        QTreeWidgetItem* untouchedPoint = beta->child(1);

        // The run finishes (its metrics.csv keeps its time, so it keeps its place) and a new run folder
        // appears, the newest: listed first among the runs, above the row at the top of the view.
        writeRun(running, "finished", 100, t0.addSecs(50));
        writeRun(root + "/runs/run-new", "running", 20, QDateTime::currentDateTime());
        panel.refresh();
        QVERIFY(panel.waitForRefresh());
        QCOMPARE(tree->topLevelItemCount(), 2 + 41);
        QCOMPARE(tree->topLevelItem(2)->text(0), QString("run-new"));
        QCOMPARE(tree->topLevelItem(2)->text(1), QString("running"));
        QCOMPARE(row(running)->text(1), QString("finished"));
        QCOMPARE(row(running)->text(2), QString("100/100"));
        QCOMPARE(tree->selectedItems().size(), 1);
        QCOMPARE(tree->selectedItems().first(), row(running));
        QCOMPARE(tree->currentItem(), row(running));
        QCOMPARE(panel.plotMode(), QString("overlay"));
        QCOMPARE(panel.plot()->graphCount(), 1);
        QCOMPARE(panel.plot()->graph(0)->data()->size(), 10);  // the curve read again: steps 10 to 100
        QVERIFY(!alpha->isExpanded());
        QVERIFY(beta->isExpanded());
        QCOMPARE(tree->itemAt(1, 1)->data(0, Qt::UserRole).toString(), top);
        QCOMPARE(row(root + "/runs/run-30"), untouched);  // the same rows, not a rebuilt tree
        QCOMPARE(beta->child(1), untouchedPoint);
        // A run folder removed: its row goes, the rest stay.
        QVERIFY(QDir(root + "/runs/run-31").removeRecursively());
        panel.refresh();
        QVERIFY(panel.waitForRefresh());
        QCOMPARE(tree->topLevelItemCount(), 2 + 40);
        QCOMPARE(row(root + "/runs/run-31"), nullptr);
        QCOMPARE(row(root + "/runs/run-30"), untouched);
        QCOMPARE(tree->selectedItems().first(), row(running));
    }

    /// With nothing selected the Runs chart shows no legend (no empty box); with a run, one entry.
    void runsChartShowsNoEmptyLegend() {
        const QString root = dir_.path() + "/runs-legend";
        writeRun(root + "/a", "finished", 100, QDateTime::currentDateTime().addSecs(-60));
        writeRun(root + "/b", "finished", 100, QDateTime::currentDateTime());
        RunsPanel panel;
        panel.resize(900, 600);
        panel.show();
        QVERIFY(QTest::qWaitForWindowExposed(&panel));
        panel.setFolder(root);
        QVERIFY(panel.waitForRefresh());
        QCOMPARE(panel.plotMode(), QString());
        QVERIFY(!panel.plot()->legend->visible());
        panel.selectRuns({root + "/a"});
        QVERIFY(panel.plot()->legend->visible());
        QCOMPARE(panel.plot()->legend->itemCount(), 1);
        panel.selectRuns({});
        QCOMPARE(panel.plotMode(), QString());
        QVERIFY(!panel.plot()->legend->visible());
        QCOMPARE(panel.plot()->legend->itemCount(), 0);
    }

    /// The Runs tab's headings are whole at the window's default size (the experiment dock 580 px wide),
    /// with a long metric name too, and when the window is narrower (the list scrolls sideways instead).
    void runsHeadingsAreWhole() {
        const QString root = dir_.path() + "/runs-headings";
        writeRun(root + "/a", "finished", 100, QDateTime::currentDateTime());
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a-headings.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        w.resize(1400, 860);  // the defaults of a first start
        w.resizeDocks({w.findChild<QDockWidget*>("ExperimentDock")}, {580}, Qt::Horizontal);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        RunsPanel* panel = w.runsPanel();
        panel->setFolder(root);
        w.showRuns();
        QVERIFY(panel->waitForRefresh());
        QHeaderView* header = panel->tree()->header();
        auto cut = [&] {
            QStringList out;
            const QFontMetrics fm(header->font());
            const int margins = 2 * header->style()->pixelMetric(QStyle::PM_HeaderMargin, nullptr, header);
            for (int c = 0; c < header->count(); ++c) {
                const QString text = panel->tree()->headerItem()->text(c);
                if (header->sectionSize(c) < fm.horizontalAdvance(text) + margins) out << text;
            }
            return out.join(", ");
        };
        QCOMPARE(panel->tree()->headerItem()->text(3), QString("Differs from the experiment"));
        QCOMPARE(cut(), QString());
        QCOMPARE(panel->tree()->horizontalScrollBar()->maximum(), 0);  // every column in view, val/loss included
        panel->setMetric("val/translation_vec_to_label_accuracy");
        QCOMPARE(panel->tree()->headerItem()->text(4), QString("val/translation_vec_to_label_accuracy"));
        QCOMPARE(cut(), QString());
        // "Differs" takes the rest of the width.
        QVERIFY(header->sectionPosition(3) + header->sectionSize(3) + header->sectionSize(4) >= panel->tree()->viewport()->width() - 1);
        w.resize(1000, 700);
        QTRY_COMPARE(cut(), QString());
    }

    /// At the window's default size the explorer's grid gets its columns' width: every column of two
    /// domains (no sideways scrolling; the workspace view beside keeps 160 px), and with three domains at
    /// least the first translation (input, demi-cycle, translation, truth, cycle); a splitter the user
    /// drags stays where it is put.
    void explorerGridGetsItsColumnsWidth() {
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a-grid.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        w.resize(1400, 860);
        w.resizeDocks({w.findChild<QDockWidget*>("ExperimentDock")}, {580}, Qt::Horizontal);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        ExplorerPanel* explorer = w.explorer();
        w.findChild<QTabWidget*>()->setCurrentWidget(explorer);
        explorer->setData(syntheticExplore());
        QScrollArea* area = explorer->gridArea();
        QCOMPARE(explorer->grid()->width(), ExplorerGrid::widthOfColumns(5));
        QTRY_VERIFY2(area->viewport()->width() >= explorer->grid()->width(),
                     qPrintable(QString("grid %1 px wide, shown %2 px").arg(explorer->grid()->width()).arg(area->viewport()->width())));
        QCOMPARE(area->horizontalScrollBar()->maximum(), 0);
        QVERIFY(explorer->workspacePlot()->width() >= 160);
        ExploreData three = syntheticExplore();
        three.domains << "extra";
        three.kinds << "identity";
        explorer->setData(three);
        QTRY_VERIFY(area->viewport()->width() >= ExplorerGrid::widthOfColumns(5));
        QVERIFY(explorer->workspacePlot()->width() >= 100);
        // The user's splitter position is theirs.
        auto* splitter = qobject_cast<QSplitter*>(area->parentWidget());
        QVERIFY(splitter);
        const int fitted = splitter->sizes()[0];
        QSplitterHandle* handle = splitter->handle(1);
        QTest::mousePress(handle, Qt::LeftButton, {}, QPoint(2, 10));
        QTest::mouseMove(handle, QPoint(-100, 10));
        QTest::mouseRelease(handle, Qt::LeftButton, {}, QPoint(-100, 10));
        const int dragged = splitter->sizes()[0];
        QVERIFY(dragged < fitted - 50);
        explorer->setData(syntheticExplore());
        QCOMPARE(splitter->sizes()[0], dragged);
    }

    /// `gw-studio --screenshot` offscreen: nothing is painted on a tab that was never shown (QCustomPlot
    /// would warn "QPainter::begin: Paint device returned engine == 0"): the explorer and the Runs tab
    /// take their data hidden, the grid is exported hidden, and they paint once shown.
    void nothingIsPaintedBeforeItIsShown() {
        QTest::failOnWarning(QRegularExpression("QPainter::begin|paint buffer returned inactive painter"));
        const QString root = dir_.path() + "/runs-hidden";
        writeRun(root + "/a", "finished", 100, QDateTime::currentDateTime());
        MainWindow w;
        w.setInteractive(false);
        w.setAutosaveFile(dir_.path() + "/a-hidden.yaml");
        QVERIFY(w.openExperiment(demo_, false));
        w.resize(1400, 860);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        ExplorerPanel* explorer = w.explorer();
        QVERIFY(!explorer->isVisible());
        explorer->setData(syntheticExplore());
        const QImage grid = explorer->gridImage();  // as the window sends it to TensorBoard while a run trains
        QCOMPARE(grid.size(), explorer->grid()->sizeHint());
        QVERIFY(QColor(grid.pixel(ExplorerGrid::widthOfColumns(0) + 20, 40)) != QColor(grid.pixel(2, 2)));  // a cell drawn
        RunsPanel* runs = w.runsPanel();
        runs->setFolder(root);
        QVERIFY(runs->waitForRefresh());
        runs->selectRuns({root + "/a"});
        QCoreApplication::processEvents();
        // Shown: painted, with what they were given.
        w.findChild<QTabWidget*>()->setCurrentWidget(explorer);
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QTRY_VERIFY(explorer->workspacePlot()->isVisible());
        QCOMPARE(explorer->workspacePlot()->graphCount(), 4 + 2 + 2);
        w.showRuns();
        QTRY_COMPARE(runs->plotMode(), QString("overlay"));
        QCOMPARE(runs->plot()->graphCount(), 1);
    }

private:
    /// A run folder as runTraining leaves it: config.yaml, status.yaml and metrics.csv (train/loss and
    /// val/translation_vec_to_label_accuracy every 10 steps up to `step`), metrics.csv dated `when`
    /// (the Runs tab lists runs newest first by it).
    static void writeRun(const QString& dir, const QString& state, int step, const QDateTime& when) {
        QVERIFY(QDir().mkpath(dir));
        auto put = [&](const QString& name, const QByteArray& text) {
            QSaveFile f(dir + "/" + name);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(text);
            QVERIFY(f.commit());
        };
        put("config.yaml", "name: demo\nseed: 0\ntraining:\n  steps: 100\n");
        put("status.yaml", QString("state: %1\nstep: %2\ntotal_steps: 100\npid: %3\nhost: %4\n")
                               .arg(state)
                               .arg(step)
                               .arg(QCoreApplication::applicationPid())
                               .arg(QSysInfo::machineHostName())
                               .toUtf8());
        QByteArray csv = "step,metric,value\n";
        for (int s = 10; s <= step; s += 10)
            csv += QString("%1,train/loss,%2\n%1,val/translation_vec_to_label_accuracy,%3\n").arg(s).arg(1.0 / s).arg(s / 100.0).toUtf8();
        put("metrics.csv", csv);
        QFile f(dir + "/metrics.csv");
        QVERIFY(f.open(QIODevice::ReadWrite));
        QVERIFY(f.setFileTime(when, QFileDevice::FileModificationTime));
    }

    /// A sweep folder of `points` finished points (plan.yaml as gw sweep writes it, one run folder each).
    static void writeSweep(const QString& dir, int points) {
        QString plan = QString("sweep_file: %1.yaml\nname: %2\nexperiment: /nowhere/demo.yaml\noverrides: []\nmethod: grid\n"
                               "axes: [seed]\npoints:\n")
                           .arg(dir, QFileInfo(dir).fileName());
        for (int i = 0; i < points; ++i) {
            const QString name = QString("%1-seed=%2").arg(i, 3, 10, QChar('0')).arg(i);
            plan += QString("  - {index: %1, name: \"%2\", values: {seed: \"%1\"}}\n").arg(i).arg(name);
            writeRun(dir + "/runs/" + name, "finished", 100, QDateTime::currentDateTime().addSecs(-7200));
        }
        QVERIFY(QDir().mkpath(dir));
        QSaveFile f(dir + "/plan.yaml");
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(plan.toUtf8());
        QVERIFY(f.commit());
    }
};

QTEST_MAIN(TestUi)
#include "tst_ui.moc"
