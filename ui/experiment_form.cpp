// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/experiment_form.h"

#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPalette>
#include <QLineEdit>
#include <QPushButton>
#include <QStandardItemModel>
#include <QTableWidget>
#include <QWheelEvent>
#include <QVBoxLayout>

#include "ui/bridge/bridge.h"
#include "ui/bridge/kinds.h"
#include "ui/bridge/metric_vocabulary.h"

namespace gw::studio {

namespace {
const QStringList kFamilies = familyMeans();

/// A wheel turned over a picker the user has not clicked scrolls the form instead of changing the
/// picker (seen under Xvfb: scrolling down the form switched the flavour to fusion on the way).
class WheelScrollsTheForm : public QObject {
public:
    using QObject::QObject;

protected:
    bool eventFilter(QObject* watched, QEvent* e) override {
        if (e->type() != QEvent::Wheel) return false;
        auto* w = qobject_cast<QWidget*>(watched);
        if (!w || w->hasFocus()) return false;
        e->ignore();  // not taken here: the application hands it on to the scroll area
        return true;
    }
};

/// Clicks and the keyboard still reach `picker`; a wheel does once it has the focus.
void scrollPast(QComboBox* picker) {
    static WheelScrollsTheForm* filter = new WheelScrollsTheForm(qApp);
    picker->setFocusPolicy(Qt::StrongFocus);
    picker->installEventFilter(filter);
}
const KindDescription* moduleKind(const QString& name) {
    static const QVector<KindDescription> kinds = registeredKinds("domain_module");
    for (const auto& k : kinds)
        if (k.name == name) return &k;
    return nullptr;
}
bool fromFile(const QString& kind) {
    const auto* k = moduleKind(kind);
    return k && k->fromFile;
}
/// The module picker's text for a kind: file-based kinds open a file dialog ("TorchScript file…").
QString pickerText(const KindDescription& k) {
    if (!k.fromFile) return k.name;
    return (k.name == "torchscript" ? QString("TorchScript") : k.name) + " file…";
}
enum DomainColumn { ColName, ColFile, ColDataset, ColModule, ColLatent, ColWeights, ColCount };
const char* kDomainKeys[] = {"", "file", "dataset", "module", "latent_dim", "weights"};

QString expandHome(const QString& p) { return p.startsWith("~/") ? QDir::homePath() + p.mid(1) : p; }

/// A boolean key's text as the engine's parser reads it (YAML's true/false, yes/no, on/off in their
/// spellings); `absent` for "" and for text that is no boolean (the parser names that one).
bool flagOf(const QString& text, bool absent) {
    if (text.isEmpty()) return absent;
    bool on = absent;
    return YAML::convert<bool>::decode(YAML::Node(text.toStdString()), on) ? on : absent;
}
}  // namespace

ExperimentForm::ExperimentForm(QWidget* parent) : QWidget(parent), doc_(new ExperimentDocument(this)) {
    connect(doc_, &ExperimentDocument::changed, this, &ExperimentForm::documentChanged);
    connect(doc_->undoStack(), &QUndoStack::canUndoChanged, this, &ExperimentForm::undoAvailable);
    connect(doc_->undoStack(), &QUndoStack::canRedoChanged, this, &ExperimentForm::redoAvailable);
    auto* layout = new QVBoxLayout(this);
    auto group = [&](const QString& title) {
        auto* box = new QGroupBox(title, this);
        box->setLayout(new QFormLayout);
        layout->addWidget(box);
        return box;
    };
    auto* general = group("Experiment");
    addLine(general, "&Name", "name", "experiment", "Names the run folder");
    addLine(general, "&Seed", "seed", "0", "Model initialisation, paired subset and samplers");
    auto* model = addCombo(general, "M&odel", "model", {}, "What trains");
    for (const auto& k : registeredKinds("model")) {
        model->addItem(k.name + ": " + k.doc, k.name);
        model->setItemData(model->count() - 1, k.doc, Qt::ToolTipRole);
        modelSections_.insert(k.name, QStringList(k.sections.begin(), k.sections.end()));
    }
    // A long description must not widen the form past the dock (it is elided; the list shows it whole).
    model->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    model->setMinimumContentsLength(24);
    device_ = addCombo(general, "&Device", "device", {"cpu"}, "Where the run trains");
    addLine(general, "&Threads", "threads", "0 = every core", "LibTorch and OpenBLAS threads on the CPU");

    auto* data = group("Data");
    auto* file = addLine(data, "HDF5 &file", "data.file", "", "Default HDF5 file of every domain");
    auto* browse = new QPushButton("Browse…", data);
    browse->setAccessibleName("Browse for the HDF5 file");
    connect(browse, &QPushButton::clicked, this, [this, file] {
        const QString f = QFileDialog::getOpenFileName(this, "HDF5 file", QFileInfo(expandHome(file->text())).absolutePath(),
                                                       "HDF5 (*.h5 *.hdf5 *.hdf);;All files (*)");
        if (!f.isEmpty()) setValue("data.file", f);
    });
    static_cast<QFormLayout*>(data->layout())->addRow("", browse);
    addLine(data, "&Paired fraction", "data.paired_fraction", "1.0",
            "Fraction of the training samples in the paired group (floor(N·p), as shimmer)");
    addLine(data, "Paired &count", "data.paired_count", "unset", "Exact number of pairs (wins over the fraction)");

    auto* domainsBox = new QGroupBox("Domains", this);
    auto* dl = new QVBoxLayout(domainsBox);
    domains_ = new QTableWidget(0, ColCount, domainsBox);
    // Short headings so that the six columns fit the dock's default width; the long names are tooltips.
    const QStringList headings = {"Name", "File", "Dataset", "Module", "Latent", "Weights"};
    const QStringList longHeadings = {"Domain name", "HDF5 file (empty: the experiment's data file)",
                                      "Dataset in the file (empty: /SPLIT/NAME)", "Domain module (or a TorchScript file)",
                                      "Latent dimension (greyed: read from the module)",
                                      "Pre-trained weights, or the TorchScript file of the module"};
    for (int c = 0; c < ColCount; ++c) {
        auto* h = new QTableWidgetItem(headings[c]);
        h->setToolTip(longHeadings[c]);
        domains_->setHorizontalHeaderItem(c, h);
    }
    domains_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
    for (int c : {ColName, ColModule, ColLatent}) domains_->horizontalHeader()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
    domains_->setColumnWidth(ColFile, 70);
    domains_->setColumnWidth(ColDataset, 70);
    // Paths keep their end (the file name) in view; the whole path is the cell's tooltip.
    domains_->setWordWrap(false);
    domains_->setTextElideMode(Qt::ElideLeft);
    domains_->horizontalHeader()->setStretchLastSection(true);
    domains_->setMinimumHeight(110);
    domains_->setAccessibleName("Domains");
    dl->addWidget(domains_);
    probeInfo_ = new QLabel(domainsBox);
    probeInfo_->setWordWrap(true);
    probeInfo_->setTextFormat(Qt::RichText);
    probeInfo_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    probeInfo_->setAccessibleName("Domain modules read from files");
    probeInfo_->hide();
    dl->addWidget(probeInfo_);
    auto* buttons = new QHBoxLayout;
    auto* add = new QPushButton("&Add domain", domainsBox);
    auto* remove = new QPushButton("Remo&ve domain", domainsBox);
    auto* pick = new QPushButton("Pick data&set…", domainsBox);
    pick->setToolTip("Choose the selected domain's dataset from its HDF5 file (shape, type and sample count shown)");
    buttons->addWidget(add);
    buttons->addWidget(remove);
    buttons->addWidget(pick);
    buttons->addStretch();
    dl->addLayout(buttons);
    layout->addWidget(domainsBox);
    fields_["domains"] = domains_;
    connect(add, &QPushButton::clicked, this, [this] {
        commit("Add domain", [this] {
            QString name = "domain";
            for (int i = 2; root()["domains"][name.toStdString()]; ++i) name = QString("domain%1").arg(i);
            root()["domains"][name.toStdString()]["module"] = "identity";
        });
    });
    connect(remove, &QPushButton::clicked, this, [this] {
        const int row = domains_->currentRow();
        if (row < 0) return;
        const std::string name = domains_->item(row, ColName)->text().toStdString();
        commit("Remove domain", [this, name] { root()["domains"].remove(name); });
    });
    connect(pick, &QPushButton::clicked, this, [this] { pickDataset(domains_->currentRow()); });

    // Groups (data.groups): which domains are seen together, and how many samples each group holds.
    auto* groupsBox = new QGroupBox("Groups", this);
    auto* gl = new QVBoxLayout(groupsBox);
    groups_ = new QTableWidget(0, 3, groupsBox);
    groups_->setHorizontalHeaderLabels({"Domains", "Proportion", "Count"});
    groups_->horizontalHeaderItem(0)->setToolTip("The group's domains, separated by commas");
    groups_->horizontalHeaderItem(1)->setToolTip("Fraction of the training samples (floored), or empty when a count is given");
    groups_->horizontalHeaderItem(2)->setToolTip("Exact number of training samples, or empty when a proportion is given");
    groups_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    groups_->setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    groups_->setAccessibleName("Groups");
    groups_->setToolTip("data.groups: a group's samples are also those of every group of some of its domains "
                        "(shimmer-ssd's domain proportions)");
    gl->addWidget(groups_);
    auto* groupsHint = new QLabel("No group: each domain alone with every sample, and all domains together on the paired "
                                  "fraction or count above.", groupsBox);
    groupsHint->setWordWrap(true);
    groupsHint->setObjectName("groupsHint");
    gl->addWidget(groupsHint);
    auto* gb = new QHBoxLayout;
    auto* addGroup = new QPushButton("Add &group", groupsBox);
    auto* removeGroup = new QPushButton("Remove gro&up", groupsBox);
    addGroup->setToolTip("The first group added also writes today's groups out (each domain alone, all together), "
                         "so that they can be edited");
    gb->addWidget(addGroup);
    gb->addWidget(removeGroup);
    gb->addStretch();
    gl->addLayout(gb);
    layout->addWidget(groupsBox);
    fields_["data.groups"] = groups_;
    connect(addGroup, &QPushButton::clicked, this, [this] {
        commit("Add group", [this] {
            YAML::Node data = root()["data"];
            YAML::Node groups = data["groups"];
            std::vector<std::string> names;
            if (root()["domains"].IsMap())
                for (const auto& kv : root()["domains"]) names.push_back(kv.first.as<std::string>());
            auto group = [](const std::vector<std::string>& d) {
                YAML::Node g;
                g.SetStyle(YAML::EmitterStyle::Flow);
                for (const auto& x : d) g["domains"].push_back(x);
                g["domains"].SetStyle(YAML::EmitterStyle::Flow);
                return g;
            };
            if (!groups || !groups.IsSequence() || groups.size() == 0) {
                // Today's groups, written out: each domain alone, then all of them on the paired subset.
                for (const auto& d : names) {
                    YAML::Node g = group({d});
                    g["proportion"] = 1.0;
                    data["groups"].push_back(g);
                }
                if (names.size() >= 2) {
                    YAML::Node g = group(names);
                    const YAML::Node count = data["paired_count"], fraction = data["paired_fraction"];
                    if (count && count.IsScalar() && count.as<double>(-1) >= 0) g["count"] = count.Scalar();
                    else g["proportion"] = fraction && fraction.IsScalar() ? fraction.Scalar() : std::string("1.0");
                    data["groups"].push_back(g);
                }
                for (const char* k : {"paired_fraction", "paired_count", "paired_indices"}) data.remove(k);
                return;
            }
            YAML::Node g = group(names.empty() ? std::vector<std::string>{"domain"} : std::vector<std::string>{names.front()});
            g["proportion"] = 1.0;
            data["groups"].push_back(g);
        });
    });
    connect(removeGroup, &QPushButton::clicked, this, [this] {
        const int row = groups_->currentRow() >= 0 ? groups_->currentRow() : groups_->rowCount() - 1;
        if (row < 0) return;
        commit("Remove group", [this, row] {
            YAML::Node data = root()["data"];
            YAML::Node kept;
            for (size_t i = 0; i < data["groups"].size(); ++i)
                if (int(i) != row) kept.push_back(data["groups"][i]);
            if (kept.size() == 0) data.remove("groups");
            else data["groups"] = kept;
        });
    });
    connect(groups_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
        if (!loading_) commitGroup(item->row());
    });
    connect(domains_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
        if (loading_) return;
        const QString old = item->data(Qt::UserRole).toString();  // the domain's name before the edit
        const QString text = item->text().trimmed();
        if (item->column() == ColName) {
            if (text == old || text.isEmpty()) return refreshDomains();
            commit("Rename domain", [&] {  // rename, keeping the order
                YAML::Node renamed(YAML::NodeType::Map);
                for (auto kv : root()["domains"]) {
                    const std::string k = kv.first.as<std::string>();
                    renamed[k == old.toStdString() ? text.toStdString() : k] = kv.second;
                }
                root()["domains"] = renamed;
            });
            return;
        }
        setValue("domains." + old + "." + (item->column() == ColWeights ? weightsKey(old) : QString(kDomainKeys[item->column()])),
                 text);
    });

    auto* ws = group("Workspace");
    workspaceBox_ = ws;
    addLine(ws, "Workspace &dimension", "workspace.dim", "12", "W, the size of the workspace state");
    addLine(ws, "Encoder hidden size", "workspace.encoder.hidden", "32", "GW encoders: hidden width");
    addLine(ws, "Encoder layers", "workspace.encoder.layers", "3", "GW encoders: extra hidden layers (shimmer n_layers)");
    addLine(ws, "Decoder hidden size", "workspace.decoder.hidden", "32", "GW decoders: hidden width");
    addLine(ws, "Decoder layers", "workspace.decoder.layers", "3", "GW decoders: extra hidden layers");
    addCheck(ws, "Linear encoders and decoders", "workspace.linear",
             "One Linear layer per GW encoder and decoder, no hidden layer: the sizes above are then unused "
             "(shimmer-ssd linear_domains)");
    addCheck(ws, "Linear layers with a bias", "workspace.linear_bias", "shimmer-ssd linear_domains_use_bias");
    addCombo(ws, "Fusion activation", "workspace.fusion_activation_fn", {"tanh", "identity", "sigmoid", "relu"},
             "Applied to the weighted sum of the encodings at fusion (shimmer fusion_activation_fn)");
    // Flavours and selections come from the engine's registries, with their parameters.
    flavour_ = addCombo(ws, "&Flavour", "workspace.flavour", {},
                        "The GW flavour: which losses train it (shimmer GlobalWorkspace2Domains, GlobalWorkspaceFusion, 0.4.0's "
                        "VariationalGlobalWorkspace or v0.5.1's GlobalWorkspaceBayesian)");
    for (const auto& f : registeredKinds("flavour")) {
        flavour_->addItem(f.name, f.name);
        flavour_->setItemData(flavour_->count() - 1, f.doc, Qt::ToolTipRole);
    }
    flavour_->disconnect(this);  // a flavour change may drop parameters the new default selection lacks
    connect(flavour_, &QComboBox::activated, this, [this](int i) { chooseSelection(flavour_->itemData(i).toString(), nullptr); });
    flavourParams_ = new QWidget(ws);
    flavourParams_->setLayout(new QFormLayout);
    flavourParams_->layout()->setContentsMargins(0, 0, 0, 0);
    static_cast<QFormLayout*>(ws->layout())->addRow(flavourParams_);
    selection_ = new QComboBox(ws);
    scrollPast(selection_);
    selection_->setAccessibleName("workspace.selection");
    selection_->setToolTip("How the domains of a group are weighed when fused into the workspace state (workspace.selection)");
    selection_->setProperty("gwTip", selection_->toolTip());
    selection_->addItem("the flavour's default", QString());
    for (const auto& k : registeredKinds("selection")) {
        selection_->addItem(k.name, k.name);
        selection_->setItemData(selection_->count() - 1, k.doc, Qt::ToolTipRole);
    }
    static_cast<QFormLayout*>(ws->layout())->addRow("Se&lection", selection_);
    fields_["workspace.selection"] = selection_;
    connect(selection_, &QComboBox::activated, this, [this](int i) {
        const QString id = selection_->itemData(i).toString();
        chooseSelection(QString(), &id);
    });
    selectionParams_ = new QWidget(ws);
    selectionParams_->setLayout(new QFormLayout);
    selectionParams_->layout()->setContentsMargins(0, 0, 0, 0);
    static_cast<QFormLayout*>(ws->layout())->addRow(selectionParams_);

    // The attention section (model: attention; shimmer AttentionBase): greyed for other model kinds.
    auto* att = group("Attention on corrupted inputs");
    attentionBox_ = att;
    auto* gwRun = addLine(att, "GW &run", "attention.gw_run", "a trained GW's run folder",
                          "The trained GW whose paired latents are corrupted (frozen with its domain modules)");
    auto* browseRun = new QPushButton("Browse…", att);
    browseRun->setAccessibleName("Browse for the GW run");
    connect(browseRun, &QPushButton::clicked, this, [this, gwRun] {
        const QString start = gwRun->text().isEmpty() ? baseDir() : QDir(baseDir()).absoluteFilePath(expandHome(gwRun->text()));
        const QString d = QFileDialog::getExistingDirectory(this, "GW run folder", start);
        if (!d.isEmpty()) setValue("attention.gw_run", d);
    });
    static_cast<QFormLayout*>(att->layout())->addRow("", browseRun);
    QStringList trainable = {"dynamic_query_attention"};
    for (const auto& k : registeredKinds("selection"))
        if (!k.params.empty() && !trainable.contains(k.name)) trainable << k.name;
    auto* attSel = addCombo(att, "Selection trained", "attention.selection", trainable,
                            "The selection the attention run trains (its parameters below)");
    attSel->disconnect(this);  // a new selection drops the parameters it lacks, in the same undo step
    connect(attSel, &QComboBox::activated, this, [this, attSel](int i) {
        const QString id = attSel->itemText(i);
        commit("Choose attention selection", [&] {
            root()["attention"]["selection"] = id.toStdString();
            keepParamsOf("selection", id, root()["attention"], "selection_params");
        });
    });
    attentionParams_ = new QWidget(att);
    attentionParams_->setLayout(new QFormLayout);
    attentionParams_->layout()->setContentsMargins(0, 0, 0, 0);
    static_cast<QFormLayout*>(att->layout())->addRow(attentionParams_);
    corruptionLevels_ = new QLineEdit(att);
    corruptionLevels_->setPlaceholderText("1 (one level)");
    corruptionLevels_->setAccessibleName("attention.corruption_scaling");
    corruptionLevels_->setToolTip("Corruption levels, separated by commas; one is drawn per batch (attention.corruption_scaling)");
    corruptionLevels_->setProperty("gwTip", corruptionLevels_->toolTip());
    static_cast<QFormLayout*>(att->layout())->addRow("Corruption &levels", corruptionLevels_);
    connect(corruptionLevels_, &QLineEdit::editingFinished, this, [this] {
        QStringList levels;
        for (const auto& x : corruptionLevels_->text().split(',', Qt::SkipEmptyParts))
            if (!x.trimmed().isEmpty()) levels << x.trimmed();
        commit("Set corruption levels", [&] {
            YAML::Node a = root()["attention"];
            if (levels.isEmpty()) {
                if (a.IsMap()) a.remove("corruption_scaling");
                return;
            }
            YAML::Node list(YAML::NodeType::Sequence);
            for (const auto& l : levels) list.push_back(l.toStdString());
            list.SetStyle(YAML::EmitterStyle::Flow);
            a["corruption_scaling"] = list;
        });
    });
    addLine(att, "Corrupted side", "attention.corrupt_single_side", "drawn per row",
            "A domain corrupted in every row; empty: one side drawn at random per row");
    addCheck(att, "Corrupt every side", "attention.corrupt_sides", "Both sides of each row corrupted (two-sided corruption)");

    auto* loss = group("Loss coefficients");
    lossBox_ = loss;
    for (const auto& f : kFamilies)
        addLine(loss, QString(f).replace('_', '-'), "loss.coefficients." + f, "unset",
                "Coefficient of the " + f + " family (the loss is the mean of coefficient × metric)");
    extraCoefs_ = new QTableWidget(0, 2, loss);
    extraCoefs_->setHorizontalHeaderLabels({"Metric", "Coefficient"});
    extraCoefs_->horizontalHeader()->setStretchLastSection(true);
    extraCoefs_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    extraCoefs_->setMaximumHeight(110);
    extraCoefs_->setToolTip("Any metric by its shimmer name, e.g. translation_image_to_label");
    auto* addCoef = new QPushButton("Add metric coefficient", loss);
    static_cast<QFormLayout*>(loss->layout())->addRow("Per metric", extraCoefs_);
    static_cast<QFormLayout*>(loss->layout())->addRow("", addCoef);
    connect(addCoef, &QPushButton::clicked, this, [this] {
        commit("Add metric coefficient", [this] { root()["loss"]["coefficients"]["translation_a_to_b"] = "1.0"; });
    });
    connect(extraCoefs_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
        if (loading_) return;
        const QString metric = extraCoefs_->item(item->row(), 0)->data(Qt::UserRole).toString();
        if (item->column() == 1) return setValue("loss.coefficients." + metric, item->text().trimmed());
        const QString renamed = item->text().trimmed();
        commit("Rename metric coefficient", [&] {
            YAML::Node c = root()["loss"]["coefficients"];
            const YAML::Node v = YAML::Clone(c[metric.toStdString()]);
            c.remove(metric.toStdString());
            if (!renamed.isEmpty()) c[renamed.toStdString()] = v;
        });
    });
    fields_["loss.coefficients"] = extraCoefs_;
    addLine(loss, "Logit scale (log)", "loss.logit_scale", "2.659 = log(1/0.07)", "Contrastive logit scale, as a logarithm");
    addCheck(loss, "Learn the logit scale", "loss.learn_logit_scale", "Train the contrastive's logit scale with the GW");
    // The contrastive losses come from the engine's registry, with their parameters.
    contrastive_ = new QComboBox(loss);
    scrollPast(contrastive_);
    contrastive_->setAccessibleName("loss.contrastive");
    contrastive_->setToolTip("The contrastive loss between the paired domains' encodings (loss.contrastive)");
    contrastive_->setProperty("gwTip", contrastive_->toolTip());
    for (const auto& k : registeredKinds("contrastive")) {
        contrastive_->addItem(k.name, k.name);
        contrastive_->setItemData(contrastive_->count() - 1, k.doc, Qt::ToolTipRole);
    }
    static_cast<QFormLayout*>(loss->layout())->addRow("Contrastive", contrastive_);
    fields_["loss.contrastive"] = contrastive_;
    connect(contrastive_, &QComboBox::activated, this,
            [this](int i) { chooseContrastive(i == 0 ? QString() : contrastive_->itemData(i).toString()); });
    contrastiveParams_ = new QWidget(loss);
    contrastiveParams_->setLayout(new QFormLayout);
    contrastiveParams_->layout()->setContentsMargins(0, 0, 0, 0);
    static_cast<QFormLayout*>(loss->layout())->addRow(contrastiveParams_);

    auto* opt = group("Optimiser (AdamW) and schedule");
    addLine(opt, "Learning &rate", "optimizer.lr", "1e-3");
    addLine(opt, "Weight decay", "optimizer.weight_decay", "0");
    addCombo(opt, "Schedule", "scheduler.kind", {"one_cycle", "none"}, "OneCycle (PyTorch's OneCycleLR) or a constant rate");
    addLine(opt, "OneCycle peak rate", "scheduler.max_lr", "the learning rate");
    addLine(opt, "OneCycle warm-up fraction", "scheduler.pct_start", "0.3");

    auto* training = group("Training");
    addLine(training, "S&teps", "training.steps", "5000");
    addLine(training, "&Batch size", "training.batch_size", "256", "Per group and step");
    addLine(training, "Validate every", "training.val_every", "500", "Steps between validations (0: never)");
    addLine(training, "Checkpoint every", "training.checkpoint_every", "1000", "Steps between checkpoints (0: at the end only)");
    addLine(training, "Log every", "training.log_every", "50", "Steps between metric points");
    addLine(training, "Runs folder", "training.out", "runs", "Parent folder of run folders");
    addCheck(training, "Score eac&h translation in data space", "training.val_data_metrics",
             "Validation also decodes each translation with the target's domain module and scores it in data space, "
             "as gw eval does (image MSE, attribute errors, caption accuracy: val/translation_v_to_attr_category_accuracy, "
             "...); off keeps validation to the latent losses, and is faster",
             true);
    layout->addStretch();
}

QLineEdit* ExperimentForm::addLine(QWidget* box, const QString& label, const QString& key, const QString& placeholder,
                                   const QString& tip) {
    auto* e = new QLineEdit(box);
    e->setPlaceholderText(placeholder);
    e->setToolTip(tip.isEmpty() ? key : tip + " (" + key + ")");
    e->setAccessibleName(key);
    e->setProperty("gwTip", e->toolTip());
    static_cast<QFormLayout*>(box->layout())->addRow(label, e);
    fields_[key] = e;
    connect(e, &QLineEdit::textEdited, this, [this, key](const QString& t) { setValue(key, t.trimmed()); });
    return e;
}

QCheckBox* ExperimentForm::addCheck(QWidget* box, const QString& text, const QString& key, const QString& tip,
                                   bool defaultOn) {
    auto* b = new QCheckBox(text, box);
    b->setToolTip(tip + " (" + key + (defaultOn ? ", on by default" : "") + ")");
    b->setAccessibleName(key);
    b->setProperty("gwTip", b->toolTip());
    b->setProperty("gwDefaultOn", defaultOn);
    static_cast<QFormLayout*>(box->layout())->addRow("", b);
    fields_[key] = b;
    connect(b, &QCheckBox::toggled, this, [this, key, defaultOn](bool on) {
        // Each click is an undo step of its own (two clicks are no typing to merge).
        if (!loading_) doc_->setValue(key, on == defaultOn ? QString() : on ? QString("true") : QString("false"), false);
    });
    return b;
}

QComboBox* ExperimentForm::addCombo(QWidget* box, const QString& label, const QString& key, const QStringList& items,
                                    const QString& tip) {
    auto* c = new QComboBox(box);
    scrollPast(c);
    c->addItems(items);
    c->setToolTip(tip.isEmpty() ? key : tip + " (" + key + ")");
    c->setAccessibleName(key);
    c->setProperty("gwTip", c->toolTip());
    static_cast<QFormLayout*>(box->layout())->addRow(label, c);
    fields_[key] = c;
    connect(c, &QComboBox::activated, this, [this, key, c](int i) {
        const QString id = c->itemData(i).toString();
        setValue(key, id.isEmpty() ? c->itemText(i) : id);
    });
    return c;
}

QString ExperimentForm::value(const QString& key) const { return doc_->value(key); }

void ExperimentForm::commit(const QString& what, const std::function<void()>& edit) {
    doc_->edit(what, [&](YAML::Node&) { edit(); });  // the edit writes through root()
}

void ExperimentForm::setValue(const QString& key, const QString& text) { doc_->setValue(key, text); }

void ExperimentForm::documentChanged(const QString& key) {
    // A field being typed in keeps its text (and cursor); anything else is shown afresh.
    if (!key.isEmpty() && qobject_cast<QLineEdit*>(fieldFor(key))) refreshDomains();
    else refreshFields();
    Q_EMIT changed();
}

QWidget* ExperimentForm::fieldFor(const QString& key) const {
    if (fields_.contains(key)) return fields_.value(key);
    if (key.startsWith("domains.")) return domains_;
    if (key.startsWith("loss.coefficients.")) return extraCoefs_;
    // The closest enclosing key that has a field ("workspace.encoder" -> none, "data.file" -> itself).
    return nullptr;
}

void ExperimentForm::showError(const QString& key, const QString& message) {
    for (auto* w : fields_) {
        w->setStyleSheet(QString());
        w->setToolTip(w->property("gwTip").toString());
    }
    domains_->setToolTip("Each row is a domain: its HDF5 data and its domain module");
    errorKey_ = message.isEmpty() ? QString() : key;
    if (message.isEmpty()) return;
    QWidget* w = fieldFor(key);
    if (!w) return;
    w->setStyleSheet(qobject_cast<QTableWidget*>(w) ? "QTableWidget { border: 2px solid #d32f2f; }"
                                                    : "background-color: #ffd6d6; border: 1px solid #d32f2f;");
    w->setToolTip(message);
}

void ExperimentForm::setDevices(const QStringList& ids, const QStringList& labels, const QList<bool>& available) {
    device_->clear();
    for (int i = 0; i < ids.size(); ++i) {
        device_->addItem(labels[i], ids[i]);
        if (!available.value(i, true)) {
            // Shown, not hidden, so that the user sees why CUDA is missing.
            auto* model = qobject_cast<QStandardItemModel*>(device_->model());
            if (model) model->item(i)->setEnabled(false);
        }
    }
    refreshFields();
}

void ExperimentForm::setEditable(bool on) {
    for (auto* w : fields_) w->setEnabled(on);
    for (auto* b : findChildren<QPushButton*>()) b->setEnabled(on);
}

QString ExperimentForm::setYaml(const QString& text, const QString& baseDir) { return doc_->setYaml(text, baseDir); }

QString ExperimentForm::yaml() const { return doc_->yaml(); }

QString ExperimentForm::effectiveSelection() const {
    const QString chosen = value("workspace.selection");
    if (!chosen.isEmpty()) return chosen;
    const QString flavour = value("workspace.flavour").isEmpty() ? QString("two_domains") : value("workspace.flavour");
    for (const auto& f : registeredKinds("flavour"))
        if (f.name == flavour) return f.defaultSelection;
    return {};
}

void ExperimentForm::chooseSelection(const QString& flavour, const QString* selection) {
    // One undo step: the flavour or the selection, and the selection parameters the new selection
    // does not have dropped (the parser would refuse them).
    commit(selection ? "Choose selection" : "Choose flavour", [&] {
        if (selection) {
            if (selection->isEmpty()) {
                if (root()["workspace"].IsMap()) root()["workspace"].remove("selection");
            } else {
                root()["workspace"]["selection"] = selection->toStdString();
            }
        } else {
            root()["workspace"]["flavour"] = flavour.toStdString();
            keepParamsOf("flavour", flavour, root()["workspace"], "flavour_params");
        }
        keepParamsOf("selection", effectiveSelection(), root()["workspace"], "selection_params");
    });
}

void ExperimentForm::keepParamsOf(const QString& point, const QString& kind, YAML::Node section, const std::string& key) {
    YAML::Node params = section[key];
    if (!params.IsMap()) return;
    QStringList known, drop;
    for (const auto& k : registeredKinds(point))
        if (k.name == kind)
            for (const auto& p : k.params) known << p.key;
    for (auto kv : params)
        if (!known.contains(QString::fromStdString(kv.first.as<std::string>())))
            drop << QString::fromStdString(kv.first.as<std::string>());
    for (const auto& k : drop) params.remove(k.toStdString());
    if (params.size() == 0) section.remove(key);
}

void ExperimentForm::refreshSelectionParams() {
    const QString sel = effectiveSelection();
    selection_->setItemText(0, "the flavour's default (" + sel + ")");
    if (sel == builtSelection_) return;
    builtSelection_ = sel;
    fillParamFields(selectionParams_, "selection", sel, "workspace.selection_params.", selection_->isEnabled());
}

void ExperimentForm::refreshFlavourParams() {
    const QString flavour = value("workspace.flavour").isEmpty() ? QString("two_domains") : value("workspace.flavour");
    if (flavour == builtFlavour_) return;
    builtFlavour_ = flavour;
    fillParamFields(flavourParams_, "flavour", flavour, "workspace.flavour_params.", flavour_->isEnabled());
}

void ExperimentForm::fillParamFields(QWidget* box, const QString& point, const QString& kind, const QString& prefix, bool enabled) {
    auto* form = static_cast<QFormLayout*>(box->layout());
    while (form->rowCount()) form->removeRow(0);
    for (auto it = fields_.begin(); it != fields_.end();) it = it.key().startsWith(prefix) ? fields_.erase(it) : std::next(it);
    for (const auto& k : registeredKinds(point)) {
        if (k.name != kind) continue;
        for (const auto& p : k.params) {
            const QString tip = p.doc + " (" + p.type + (p.range.isEmpty() ? "" : " " + p.range) +
                                (p.unit.isEmpty() ? "" : ", " + p.unit) + ")";
            addLine(box, "  " + p.key, prefix + p.key, p.defaultValue, tip)->setEnabled(enabled);
        }
    }
}

void ExperimentForm::chooseContrastive(const QString& kind) {
    commit("Choose contrastive loss", [&] {
        if (kind.isEmpty()) {
            if (root()["loss"].IsMap()) root()["loss"].remove("contrastive");
        } else {
            root()["loss"]["contrastive"] = kind.toStdString();
        }
        keepParamsOf("contrastive", kind.isEmpty() ? QString("clip") : kind, root()["loss"], "contrastive_params");
    });
}

void ExperimentForm::refreshContrastiveParams() {
    const QString kind = value("loss.contrastive").isEmpty() ? QString("clip") : value("loss.contrastive");
    if (kind == builtContrastive_) return;
    builtContrastive_ = kind;
    fillParamFields(contrastiveParams_, "contrastive", kind, "loss.contrastive_params.", contrastive_->isEnabled());
}

void ExperimentForm::refreshAttentionFields() {
    const QString sel = value("attention.selection").isEmpty() ? QString("dynamic_query_attention") : value("attention.selection");
    if (sel != builtAttentionSelection_) {
        builtAttentionSelection_ = sel;
        fillParamFields(attentionParams_, "selection", sel, "attention.selection_params.", true);
    }
    QStringList levels;
    const YAML::Node a = root()["attention"];
    if (a.IsMap() && a["corruption_scaling"] && a["corruption_scaling"].IsSequence())
        for (const auto& x : a["corruption_scaling"]) levels << QString::fromStdString(x.IsScalar() ? x.Scalar() : std::string("?"));
    if (!corruptionLevels_->hasFocus()) corruptionLevels_->setText(levels.join(", "));
}

void ExperimentForm::refreshFields() {
    refreshFlavourParams();
    refreshAttentionFields();
    refreshSelectionParams();
    refreshContrastiveParams();
    loading_ = true;
    for (auto it = fields_.begin(); it != fields_.end(); ++it) {
        const QString v = value(it.key());
        if (auto* e = qobject_cast<QLineEdit*>(it.value())) {
            if (e->text() != v) e->setText(v);
        } else if (auto* c = qobject_cast<QComboBox*>(it.value())) {
            int i = c->findData(v);
            if (i < 0) i = c->findText(v);
            if (v.isEmpty()) i = 0;
            if (i < 0) {  // a value the list does not offer (the parser will judge it)
                c->addItem(v, v);
                i = c->count() - 1;
            }
            c->setCurrentIndex(i);
        } else if (auto* b = qobject_cast<QCheckBox*>(it.value())) {
            b->setChecked(flagOf(v, b->property("gwDefaultOn").toBool()));
        }
    }
    loading_ = false;
    // Sections the model kind does not read (ModelKindImpl::sections) stay in the file, greyed.
    const QString model = value("model").isEmpty() ? "gw" : value("model");
    const QStringList reads = modelSections_.value(model);
    for (const auto& [section, box] : {std::pair<QString, QWidget*>{"workspace", workspaceBox_}, {"loss", lossBox_},
                                       {"attention", attentionBox_}}) {
        const bool used = reads.contains(section);
        box->setEnabled(used);
        box->setToolTip(used ? QString() : "Not used by a model: " + model + " experiment");
    }
    // Linear GW encoders have no hidden layer: their sizes are unused, and only they have a bias to choose.
    const bool linear = value("workspace.linear") == "true";
    for (const char* key : {"workspace.encoder.hidden", "workspace.encoder.layers", "workspace.decoder.hidden",
                            "workspace.decoder.layers"})
        fields_.value(key)->setEnabled(!linear);
    fields_.value("workspace.linear_bias")->setEnabled(linear);
    refreshDomains();
    refreshExtraCoefficients();
    refreshGroups();
}

void ExperimentForm::refreshGroups() {
    loading_ = true;
    const YAML::Node data = root()["data"];
    const YAML::Node groups = data.IsMap() ? data["groups"] : YAML::Node();
    const int n = groups && groups.IsSequence() ? int(groups.size()) : 0;
    groups_->setRowCount(n);
    for (int r = 0; r < n; ++r) {
        const YAML::Node g = groups[r];
        QStringList domains;
        if (g.IsMap() && g["domains"] && g["domains"].IsSequence())
            for (const auto& d : g["domains"]) domains << QString::fromStdString(d.IsScalar() ? d.Scalar() : std::string("?"));
        const auto scalar = [&](const char* k) {
            return g.IsMap() && g[k] && g[k].IsScalar() ? QString::fromStdString(g[k].Scalar()) : QString();
        };
        const QString cells[3] = {domains.join(", "), scalar("proportion"), scalar("count")};
        for (int c = 0; c < 3; ++c) {
            auto* item = groups_->item(r, c);
            if (!item) groups_->setItem(r, c, item = new QTableWidgetItem);
            item->setText(cells[c]);
        }
    }
    for (const char* key : {"data.paired_fraction", "data.paired_count"}) {
        fields_.value(key)->setEnabled(n == 0);
        fields_.value(key)->setToolTip(n == 0 ? fields_.value(key)->property("gwTip").toString()
                                              : "Not used: the groups below give every group its samples");
    }
    if (auto* hint = findChild<QLabel*>("groupsHint")) hint->setVisible(n == 0);
    groups_->setVisible(n > 0);
    // As tall as its rows (up to six), so that a few groups show whole.
    const int rows = std::min(n, 6);
    groups_->setFixedHeight(groups_->horizontalHeader()->sizeHint().height() + rows * groups_->verticalHeader()->defaultSectionSize() +
                            2 * groups_->frameWidth() + 2);
    loading_ = false;
}

void ExperimentForm::commitGroup(int row) {
    QStringList domains;
    for (const auto& d : groups_->item(row, 0) ? groups_->item(row, 0)->text().split(',') : QStringList())
        if (!d.trimmed().isEmpty()) domains << d.trimmed();
    const QString proportion = groups_->item(row, 1) ? groups_->item(row, 1)->text().trimmed() : QString();
    const QString count = groups_->item(row, 2) ? groups_->item(row, 2)->text().trimmed() : QString();
    commit("Edit group", [&] {
        YAML::Node g = root()["data"]["groups"][row];
        g["domains"] = YAML::Node(YAML::NodeType::Sequence);
        for (const auto& d : domains) g["domains"].push_back(d.toStdString());
        g["domains"].SetStyle(YAML::EmitterStyle::Flow);
        // The cell just typed in wins: a count clears the proportion and the other way round.
        g.remove("proportion");
        g.remove("count");
        if (!count.isEmpty() && (proportion.isEmpty() || groups_->currentColumn() == 2)) g["count"] = count.toStdString();
        else if (!proportion.isEmpty()) g["proportion"] = proportion.toStdString();
    });
}

void ExperimentForm::refreshDomains() {
    loading_ = true;
    const YAML::Node d = root()["domains"];
    const int n = d.IsMap() ? int(d.size()) : 0;
    if (domains_->rowCount() != n) domains_->setRowCount(n);
    int row = 0;
    if (d.IsMap()) {
        for (auto kv : d) {
            const QString name = QString::fromStdString(kv.first.as<std::string>());
            const QString given = value("domains." + name + ".module");
            const QString module = given.isEmpty() ? QString("identity") : given;
            for (int col = 0; col < ColCount; ++col) {
                const QString key = col == ColWeights ? weightsKey(name) : QString(kDomainKeys[col]);
                QString text = col == ColName ? name : value("domains." + name + "." + key);
                if (col == ColModule) {
                    auto* combo = qobject_cast<QComboBox*>(domains_->cellWidget(row, col));
                    if (!combo) {
                        combo = new QComboBox(domains_);
                        scrollPast(combo);
                        for (const auto& d : registeredKinds("domain_module")) {
                            combo->addItem(pickerText(d), d.name);
                            combo->setItemData(combo->count() - 1, d.doc, Qt::ToolTipRole);
                        }
                        combo->setSizeAdjustPolicy(QComboBox::AdjustToContents);
                        domains_->setCellWidget(row, col, combo);
                    }
                    combo->disconnect(this);
                    if (combo->findData(module) < 0) combo->addItem(module, module);
                    combo->setCurrentIndex(combo->findData(module));
                    combo->setAccessibleName("Domain module of " + name);
                    connect(combo, &QComboBox::activated, this, [this, name, combo](int i) {
                        const QString kind = combo->itemData(i).toString();
                        if (!fromFile(kind)) return chooseModule(name, kind);
                        const QString current = value("domains." + name + ".script");
                        const QString start = current.isEmpty() ? baseDir() : QDir(baseDir()).absoluteFilePath(expandHome(current));
                        const QString f = QFileDialog::getOpenFileName(this, "TorchScript domain module of " + name, start,
                                                                       "TorchScript (*.pt *.pth *.ts *.zip);;All files (*)");
                        if (f.isEmpty()) return refreshDomains();  // cancelled: the picker shows the module in force
                        chooseModule(name, kind, f);
                    });
                    continue;
                }
                auto* item = domains_->item(row, col);
                if (!item) {
                    item = new QTableWidgetItem;
                    domains_->setItem(row, col, item);
                }
                item->setData(Qt::UserRole, name);
                if (col == ColLatent && fromFile(module)) {
                    // Read from the module by the probe, not typed.
                    qint64 found = 0;
                    for (const auto& p : probes_)
                        if (p.domain == name) found = p.latentDim;
                    text = found > 0 ? QString::number(found) : QString("?");
                    item->setFlags(item->flags() & ~Qt::ItemIsEditable);
                    item->setForeground(palette().color(QPalette::PlaceholderText));
                    item->setToolTip("Read from the module: the width of encode's output on the first samples");
                } else if (col == ColLatent) {
                    item->setFlags(item->flags() | Qt::ItemIsEditable);
                    item->setForeground(palette().color(QPalette::Text));
                    item->setToolTip(QString());
                }
                if (item->text() != text) item->setText(text);
                const bool exists = col == ColWeights && !text.isEmpty() &&
                                    QFileInfo(QDir(baseDir()).absoluteFilePath(expandHome(text))).exists();
                if (col == ColWeights && fromFile(module)) {
                    item->setToolTip(text.isEmpty() ? "No TorchScript file: choose one with the module picker, or type its path"
                                     : exists     ? "TorchScript module: " + text
                                                  : "No such file: " + text);
                    item->setForeground(exists ? palette().color(QPalette::Text) : QColor(0xd3, 0x2f, 0x2f));
                    item->setData(Qt::AccessibleDescriptionRole, exists ? "TorchScript file" : "missing file");
                } else if (col == ColWeights) {
                    const QString w = expandHome(text);
                    item->setToolTip(text.isEmpty() ? "No weights file: the module has none to load, or trains from scratch"
                                     : exists     ? "Pre-trained weights: " + w
                                                  : "Pre-train first: the module is pre-trained on its data on Start, "
                                                    "then saved here");
                    item->setForeground(!text.isEmpty() && !exists ? QColor(0xb2, 0x6a, 0x00) : palette().color(QPalette::Text));
                    item->setData(Qt::AccessibleDescriptionRole, text.isEmpty() ? QString() : exists ? "pre-trained" : "pre-train first");
                }
                if (col == ColFile && text.isEmpty()) item->setToolTip("Empty: data.file");
                if (col == ColDataset && text.isEmpty()) item->setToolTip("Empty: /{split}/" + name);
            }
            ++row;
        }
    }
    loading_ = false;
}

QString ExperimentForm::weightsKey(const QString& domain) const {
    return fromFile(value("domains." + domain + ".module")) ? QString("script") : QString("weights");
}

void ExperimentForm::chooseModule(const QString& name, const QString& kind, const QString& file) {
    commit("Choose module of " + name, [&] {
        YAML::Node d = root()["domains"][name.toStdString()];
        const QString old = d["module"] ? QString::fromStdString(d["module"].as<std::string>()) : QString("identity");
        // Parameters of the old kind that the new one lacks would be refused by the parser.
        QStringList keep;
        if (const auto* k = moduleKind(kind))
            for (const auto& p : k->params) keep << p.key;
        if (const auto* k = moduleKind(old))
            for (const auto& p : k->params)
                if (!keep.contains(p.key)) d.remove(p.key.toStdString());
        d["module"] = kind.toStdString();
        if (!file.isEmpty()) {
            QString rel = QDir(baseDir()).relativeFilePath(file);
            d["script"] = (rel.startsWith("..") || baseDir().isEmpty() ? file : rel).toStdString();
        }
    });
}

void ExperimentForm::setDomainProbes(const QVector<DomainProbe>& probes) {
    probes_ = probes;
    QStringList lines;
    for (const auto& p : probes) {
        const QString text = (p.error.isEmpty() ? p.summary : p.error).toHtmlEscaped();
        lines << (p.error.isEmpty() ? "<b>" + p.domain.toHtmlEscaped() + "</b>: " + text
                                    : "<span style='color:#d32f2f'><b>" + p.domain.toHtmlEscaped() + "</b>: " + text + "</span>");
    }
    probeInfo_->setText(lines.join("<br>"));
    probeInfo_->setVisible(!lines.isEmpty());
    refreshDomains();
}

QString ExperimentForm::probeText() const { return probeInfo_->isHidden() ? QString() : probeInfo_->text(); }

void ExperimentForm::refreshExtraCoefficients() {
    loading_ = true;
    const YAML::Node c = root()["loss"]["coefficients"];
    QStringList metrics;
    if (c.IsMap())
        for (auto kv : c) {
            const QString k = QString::fromStdString(kv.first.as<std::string>());
            if (!kFamilies.contains(k)) metrics << k;
        }
    extraCoefs_->setRowCount(metrics.size());
    for (int i = 0; i < metrics.size(); ++i) {
        for (int col = 0; col < 2; ++col) {
            auto* item = extraCoefs_->item(i, col);
            if (!item) {
                item = new QTableWidgetItem;
                extraCoefs_->setItem(i, col, item);
            }
            item->setData(Qt::UserRole, metrics[i]);
            item->setText(col == 0 ? metrics[i] : value("loss.coefficients." + metrics[i]));
        }
    }
    loading_ = false;
}

void ExperimentForm::pickDataset(int row) {
    if (row < 0) return;
    const QString name = domains_->item(row, ColName)->text();
    QString file = value("domains." + name + ".file");
    if (file.isEmpty()) file = value("data.file");
    file = QDir(baseDir()).absoluteFilePath(expandHome(file));
    QString error;
    const auto sets = listDatasets(file, &error);
    QDialog dlg(this);
    dlg.setWindowTitle("Dataset of domain " + name);
    auto* l = new QVBoxLayout(&dlg);
    l->addWidget(new QLabel(error.isEmpty() ? file : error, &dlg));
    auto* table = new QTableWidget(sets.size(), 4, &dlg);
    table->setHorizontalHeaderLabels({"Dataset", "Shape", "Type", "Samples"});
    table->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    table->setSelectionBehavior(QAbstractItemView::SelectRows);
    table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    for (int i = 0; i < sets.size(); ++i) {
        QStringList dims;
        for (auto s : sets[i].shape) dims << QString::number(s);
        table->setItem(i, 0, new QTableWidgetItem(sets[i].path));
        table->setItem(i, 1, new QTableWidgetItem("(" + dims.join(", ") + ")"));
        table->setItem(i, 2, new QTableWidgetItem(sets[i].type));
        table->setItem(i, 3, new QTableWidgetItem(sets[i].shape.isEmpty() ? "-" : QString::number(sets[i].shape[0])));
    }
    l->addWidget(table);
    auto* split = new QCheckBox("Use {split} for the split folder (/train/x -> /{split}/x)", &dlg);
    split->setChecked(true);
    l->addWidget(split);
    auto* box = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dlg);
    connect(box, &QDialogButtonBox::accepted, &dlg, &QDialog::accept);
    connect(box, &QDialogButtonBox::rejected, &dlg, &QDialog::reject);
    connect(table, &QTableWidget::cellDoubleClicked, &dlg, &QDialog::accept);
    l->addWidget(box);
    dlg.resize(560, 360);
    if (dlg.exec() != QDialog::Accepted || table->currentRow() < 0) return;
    QString path = sets[table->currentRow()].path;
    if (split->isChecked())
        for (const QString s : {"train", "val", "test"})
            if (path.startsWith("/" + s + "/")) path = "/{split}/" + path.mid(s.size() + 2);
    setValue("domains." + name + ".dataset", path);
}

void ExperimentForm::undo() { doc_->undo(); }

void ExperimentForm::redo() { doc_->redo(); }

}  // namespace gw::studio
