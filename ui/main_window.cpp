// SPDX-License-Identifier: GPL-3.0-or-later
#include "ui/main_window.h"

#include <QBuffer>

#include <QAction>
#include <QApplication>
#include <QUndoStack>
#include <QCloseEvent>
#include <QDateTime>
#include <QDir>
#include <QDockWidget>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QProgressDialog>
#include <QSpinBox>
#include <QScrollArea>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTabWidget>
#include <QToolBar>

#include "ui/experiment_form.h"
#include "ui/explorer_panel.h"
#include "ui/glom_panel.h"
#include "ui/metrics_dashboard.h"
#include "ui/bridge/runs_listing.h"
#include "ui/runs_panel.h"
#include "ui/save_file.h"
#include "ui/settings_dialog.h"

namespace gw::studio {

namespace {
QString duration(double s) {
    const qint64 t = qint64(s + 0.5);
    return t >= 3600 ? QString("%1h%2m").arg(t / 3600).arg((t % 3600) / 60, 2, 10, QChar('0'))
                     : QString("%1:%2").arg(t / 60).arg(t % 60, 2, 10, QChar('0'));
}
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
    setObjectName("MainWindow");
    qRegisterMetaType<gw::studio::MetricBatch>();
    dashboard_ = new MetricsDashboard(this);
    log_ = new QPlainTextEdit(this);
    log_->setReadOnly(true);
    log_->setMaximumBlockCount(20000);
    log_->setAccessibleName("Log");
    auto* tabs = new QTabWidget(this);
    tabs->addTab(dashboard_, "&Losses");
    explorer_ = new ExplorerPanel(this);
    tabs->addTab(explorer_, "E&xplorer");
    glom_ = new GlomPanel(this);
    tabs->addTab(glom_, "GLO&M");
    tabs->addTab(log_, "Lo&g");
    runs_ = new RunsPanel(this);
    tabs->addTab(runs_, "R&uns");
    tabs_ = tabs;
    setCentralWidget(tabs);
    // The Runs tab compares against the experiment in the form and opens on its runs folder.
    connect(tabs, &QTabWidget::currentChanged, this, [this](int index) {
        if (tabs_->widget(index) != runs_) return;
        runs_->setBase(form_->yaml(), form_->baseDir());
        if (runs_->folder().isEmpty()) runs_->setFolder(defaultRunsFolder(form_->yaml(), form_->baseDir()));
    });
    connect(runs_, &RunsPanel::exploreRequested, this, [this](const QString& checkpoint) {
        exploreCheckpoint(checkpoint);
        tabs_->setCurrentWidget(explorer_);
    });

    form_ = new ExperimentForm(this);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(form_);
    scroll->setWidgetResizable(true);
    auto* dock = new QDockWidget("Experiment", this);
    dock->setObjectName("ExperimentDock");
    dock->setWidget(scroll);
    dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    addDockWidget(Qt::LeftDockWidgetArea, dock);

    progress_ = new QProgressBar(this);
    progress_->setMaximumWidth(260);
    progress_->setFormat("%p%");
    progressText_ = new QLabel("Idle", this);
    statusBar()->addWidget(progressText_, 1);
    statusBar()->addPermanentWidget(progress_);

    QStringList ids, labels;
    QList<bool> available;
    for (const auto& d : listDevices()) {
        ids << d.id;
        labels << d.label;
        available << d.available;
    }
    form_->setDevices(ids, labels, available);

    worker_ = new TrainingWorker;
    worker_->moveToThread(&thread_);
    connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
    thread_.setObjectName("training");
    thread_.start();

    connect(worker_, &TrainingWorker::metrics, dashboard_, &MetricsDashboard::append);
    connect(worker_, &TrainingWorker::logLine, this, &MainWindow::appendLog);
    connect(worker_, &TrainingWorker::runStarted, this, [this](const QString& dir) {
        runDir_ = dir;
        appendLog("run folder " + dir);
    });
    connect(worker_, &TrainingWorker::progress, this,
            [this](const QString& phase, qint64 step, qint64 total, double sps, double eta) {
                progress_->setMaximum(int(std::max<qint64>(total, 1)));
                progress_->setValue(int(step));
                progressText_->setText(QString("%1: step %2/%3, %4 steps/s, ETA %5")
                                           .arg(phase)
                                           .arg(step)
                                           .arg(total)
                                           .arg(sps, 0, 'f', 1)
                                           .arg(duration(eta)));
            });
    connect(worker_, &TrainingWorker::stateChanged, this, [this](int s) {
        const bool preparing = s == TrainingWorker::Preparing;
        if (preparing && !preparing_) {
            preparing_ = new QProgressDialog("Preparing the data and the domain modules…", "Stop", 0, 0, this);
            preparing_->setWindowTitle("Preparing");
            preparing_->setMinimumDuration(700);
            preparing_->setAutoClose(false);
            preparing_->setAutoReset(false);
            connect(preparing_, &QProgressDialog::canceled, this, &MainWindow::stop);
        }
        if (!preparing && preparing_) {
            preparing_->hide();
            preparing_->deleteLater();
            preparing_ = nullptr;
        }
        pauseAct_->setText(s == TrainingWorker::Paused ? "&Resume" : "&Pause");
        if (s == TrainingWorker::Paused) progressText_->setText("Paused at " + progressText_->text().section(':', 0, 0));
    });
    connect(worker_, &TrainingWorker::checkpointWritten, this, [this](const QString& p) {
        appendLog("checkpoint written: " + p);
        statusBar()->showMessage("Checkpoint written to " + p, 5000);
    });
    connect(worker_, &TrainingWorker::finished, this, [this](const QString& ckpt, bool stopped) {
        if (!ckpt.isEmpty()) lastCheckpoint_ = ckpt;
        setRunning(false);
        progressText_->setText(stopped ? (ckpt.isEmpty() ? "Stopped" : "Stopped; checkpoint " + ckpt) : "Done; checkpoint " + ckpt);
        appendLog(stopped ? "stopped" : "done: " + ckpt);
        Q_EMIT runEnded(true);
    });
    connect(worker_, &TrainingWorker::failed, this, [this](const QString& message, const QString& ckpt) {
        if (!ckpt.isEmpty()) lastCheckpoint_ = ckpt;
        setRunning(false);
        progressText_->setText("Failed");
        appendLog("error: " + message);
        showError("The run stopped", message + (ckpt.isEmpty() ? QString() : "\n\nThe last checkpoint is kept: " + ckpt));
        Q_EMIT runEnded(false);
    });

    // A GW's translations go to the explorer, a GLOM run's islands to the GLOM tab.
    connect(worker_, &TrainingWorker::explored, this, [this](const ExploreData& d) {
        if (!d.isGlom()) {
            explorer_->setData(d);
            return;
        }
        glom_->setData(d.glom.front(), d.source, d.step);
        if (tabs_->currentWidget() == explorer_) tabs_->setCurrentWidget(glom_);
    });
    // Every grid computed during a run also goes to TensorBoard, as an image at its step.
    connect(worker_, &TrainingWorker::explored, this, [this](const ExploreData& d) {
        if (d.source != "training" || runDir_.isEmpty()) return;
        const QImage grid = (d.isGlom() ? glom_->view()->render() : explorer_->gridImage()).convertToFormat(QImage::Format_RGB888);
        if (grid.isNull()) return;
        QByteArray png;
        QBuffer buffer(&png);
        buffer.open(QIODevice::WriteOnly);
        grid.save(&buffer, "PNG");
        const QString err = addTensorBoardImage(runDir_, d.isGlom() ? "glom/islands" : "explorer/translations", d.step, png, grid.width(), grid.height(), 3);
        if (!err.isEmpty()) appendLog("TensorBoard: " + err);
    });
    connect(worker_, &TrainingWorker::exploreFailed, this, [this](const QString& message) {
        setExploreStatus("Cannot explore: " + message);
        appendLog("explorer: " + message);
    });
    auto pushRequest = [this] { worker_->setExploreRequest(exploreRequest(), explorer_->refreshEvery()); };
    connect(explorer_, &ExplorerPanel::requestChanged, this, pushRequest);
    connect(glom_, &GlomPanel::requestChanged, this, pushRequest);
    // One refresh cadence, shown in both tabs (setValue does not signal an unchanged value: no loop).
    glom_->refreshEvery()->setValue(int(explorer_->refreshEvery()));
    connect(glom_->refreshEvery(), &QSpinBox::valueChanged, explorer_, &ExplorerPanel::setRefreshEvery);
    connect(explorer_, &ExplorerPanel::requestChanged, this, [this] { glom_->refreshEvery()->setValue(int(explorer_->refreshEvery())); });
    pushRequest();
    connect(glom_, &GlomPanel::refreshRequested, explorer_, &ExplorerPanel::refreshRequested);
    connect(explorer_, &ExplorerPanel::refreshRequested, this, [this] {
        if (running_) {
            setExploreStatus(QString("Refreshes every %1 steps while the run trains").arg(explorer_->refreshEvery()));
            return;
        }
        const QString ckpt = lastCheckpoint_.isEmpty() && !runDir_.isEmpty() ? runDir_ + "/checkpoints/last.ckpt" : lastCheckpoint_;
        if (ckpt.isEmpty()) setExploreStatus("No checkpoint yet: start a run, or explore a checkpoint file");
        else exploreCheckpoint(ckpt);
    });
    connect(explorer_, &ExplorerPanel::openCheckpointRequested, this, &MainWindow::exploreCheckpoint);

    validateTimer_.setSingleShot(true);
    validateTimer_.setInterval(150);
    connect(&validateTimer_, &QTimer::timeout, this, &MainWindow::validate);
    connect(form_, &ExperimentForm::changed, this, [this] {
        modified_ = true;
        updateTitle();
        validateTimer_.start();
    });
    autosaveTimer_.setInterval(5000);
    connect(&autosaveTimer_, &QTimer::timeout, this, &MainWindow::autosaveTick);
    autosaveTimer_.start();
    autosave_ = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/autosave.yaml";

    buildMenus();
    QSettings settings;
    restoreGeometry(settings.value("window/geometry").toByteArray());
    restoreState(settings.value("window/state").toByteArray());
    if (!settings.contains("window/geometry")) resize(1400, 860);
    // Wide enough for the domains table's six columns at the default window size.
    if (!settings.contains("window/state")) resizeDocks({findChild<QDockWidget*>("ExperimentDock")}, {580}, Qt::Horizontal);
    setRunning(false);
    updateTitle();
}

MainWindow::~MainWindow() {
    worker_->requestStop();
    thread_.quit();
    thread_.wait();
}

void MainWindow::buildMenus() {
    auto* file = menuBar()->addMenu("&File");
    file->addAction("&Open experiment…", QKeySequence::Open, this, [this] {
        if (!maybeSave()) return;
        const QString p = QFileDialog::getOpenFileName(this, "Open experiment", QFileInfo(path_).absolutePath(),
                                                       "Experiments (*.yaml *.yml);;All files (*)");
        if (!p.isEmpty()) openExperiment(p);
    });
    recentMenu_ = file->addMenu("Open &recent");
    rebuildRecentMenu();
    file->addAction("&Save", QKeySequence::Save, this, [this] {
        if (path_.isEmpty()) {
            const QString p = QFileDialog::getSaveFileName(this, "Save experiment", QString(), "Experiments (*.yaml)");
            if (!p.isEmpty()) saveExperiment(p);
        } else {
            saveExperiment(path_);
        }
    });
    file->addAction("Save &as…", QKeySequence::SaveAs, this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Save experiment as", path_, "Experiments (*.yaml)");
        if (!p.isEmpty()) saveExperiment(p);
    });
    file->addSeparator();
    exportCkptAct_ = file->addAction("Export &checkpoint…", this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Export checkpoint", runDir_ + "/export.ckpt", "Checkpoints (*.ckpt)");
        if (p.isEmpty()) return;
        if (running_) {
            worker_->requestCheckpoint(p);  // written by the worker at the next step
            return;
        }
        if (const QString err = copyFile(lastCheckpoint_, p); !err.isEmpty()) showError("Export checkpoint", err);
        else statusBar()->showMessage("Checkpoint written to " + p, 5000);
    });
    exportPyAct_ = file->addAction("Export for &Python…", this, [this] {
        const QString ckpt = lastCheckpoint_.isEmpty() ? runDir_ + "/checkpoints/last.ckpt" : lastCheckpoint_;
        const QString p = QFileDialog::getSaveFileName(this, "Export for Python (shimmer's state_dict layout)",
                                                       runDir_ + "/gw.pt", "PyTorch state dict (*.pt)");
        if (p.isEmpty()) return;
        const QString err = exportForPython(ckpt, p);
        if (!err.isEmpty()) showError("Export for Python", err);
        else statusBar()->showMessage("Wrote " + p + " and its .yaml", 5000);
    });
    file->addAction("Export plot as P&NG…", this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Export plot", "losses.png", "PNG (*.png)");
        if (!p.isEmpty() && !dashboard_->exportPng(p)) showError("Export plot", "Cannot write " + p);
    });
    file->addAction("Export plot as P&DF…", this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Export plot", "losses.pdf", "PDF (*.pdf)");
        if (!p.isEmpty() && !dashboard_->exportPdf(p)) showError("Export plot", "Cannot write " + p);
    });
    file->addAction("Export &metrics as CSV…", this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, "Export metrics", "metrics.csv", "CSV (*.csv)");
        if (p.isEmpty()) return;
        const QString err = dashboard_->exportCsv(p);
        if (!err.isEmpty()) showError("Export metrics", err);
    });
    file->addSeparator();
    file->addAction("&Quit", QKeySequence::Quit, this, &QWidget::close);

    auto* edit = menuBar()->addMenu("&Edit");
    // The document's own undo stack: the actions name the step ("Undo Set training.steps").
    undoAct_ = form_->document()->undoStack()->createUndoAction(this, "&Undo");
    redoAct_ = form_->document()->undoStack()->createRedoAction(this, "&Redo");
    undoAct_->setShortcut(QKeySequence::Undo);
    redoAct_->setShortcut(QKeySequence::Redo);
    edit->addAction(undoAct_);
    edit->addAction(redoAct_);
    edit->addSeparator();
    settingsAct_ = edit->addAction("&Settings…", this, &MainWindow::editSettings);
    settingsAct_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Comma));

    auto* runMenu = menuBar()->addMenu("&Run");
    startAct_ = runMenu->addAction("&Start", this, &MainWindow::start);
    startAct_->setShortcuts({QKeySequence(Qt::Key_F5), QKeySequence(Qt::CTRL | Qt::Key_Return)});
    pauseAct_ = runMenu->addAction("&Pause", this, &MainWindow::togglePause);
    pauseAct_->setShortcut(QKeySequence(Qt::Key_F6));
    stopAct_ = runMenu->addAction("S&top (saves a checkpoint)", this, &MainWindow::stop);
    stopAct_->setShortcut(QKeySequence(Qt::SHIFT | Qt::Key_F5));
    auto* bar = addToolBar("Run");
    bar->setObjectName("RunToolBar");
    bar->addAction(startAct_);
    bar->addAction(pauseAct_);
    bar->addAction(stopAct_);
}

QString MainWindow::statusText() const { return progressText_->text(); }

void MainWindow::appendLog(const QString& line) {
    log_->appendPlainText(QDateTime::currentDateTime().toString("HH:mm:ss ") + line);
    if (preparing_) preparing_->setLabelText(line.left(120));
}

void MainWindow::showError(const QString& title, const QString& text) {
    auto* box = new QMessageBox(QMessageBox::Critical, title, text, QMessageBox::Ok, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setObjectName("errorDialog");
    box->open();  // not exec(): the window keeps running
}

bool MainWindow::openExperiment(const QString& path, bool interactive) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly | QIODevice::Text)) {
        if (interactive) showError("Open experiment", path + ": " + f.errorString());
        return false;
    }
    const QString err = form_->setYaml(QString::fromUtf8(f.readAll()), QFileInfo(path).absolutePath());
    if (!err.isEmpty()) {
        if (interactive) showError("Open experiment", path + ": " + err);
        return false;
    }
    path_ = QFileInfo(path).absoluteFilePath();
    modified_ = false;
    addRecent(path_);
    QSettings().setValue("lastExperiment", path_);
    validate();
    updateTitle();
    return true;
}

bool MainWindow::saveExperiment(const QString& path) {
    if (const QString err = saveFile(path, form_->yaml().toUtf8()); !err.isEmpty()) {
        showError("Save experiment", err);
        return false;
    }
    const QString oldBase = form_->baseDir();
    path_ = QFileInfo(path).absoluteFilePath();
    form_->setBaseDir(QFileInfo(path).absolutePath());
    if (oldBase != form_->baseDir()) validate();
    modified_ = false;
    QFile::remove(autosave_);
    addRecent(path_);
    updateTitle();
    statusBar()->showMessage("Saved " + path_, 3000);
    return true;
}

void MainWindow::showRuns() { tabs_->setCurrentWidget(runs_); }

void MainWindow::editSettings() {
    SettingsDialog dialog(this);
    if (dialog.exec() != QDialog::Accepted) return;
    statusBar()->showMessage("Settings saved to " + dialog.values().path, 5000);
    validate();
}

void MainWindow::validate() {
    // While a run trains the form is read-only, and the worker reads the data files: HDF5 serialises
    // every call in the process, so a check here (it opens the files) would wait for the worker's
    // reads (a 250 ms stall measured when a debounced check fired just after Start).
    if (running_) return;
    const QString source = path_.isEmpty() ? QString("untitled.yaml") : path_;
    const Validation v = validateExperiment(form_->yaml(), form_->baseDir(), source);
    form_->setDomainProbes(v.probes);
    form_->showError(v.key, v.message);
    blocked_ = v.message;
    if (blocked_.startsWith(source + ": ")) blocked_ = blocked_.mid(source.size() + 2);
    startAct_->setEnabled(blocked_.isEmpty());
    startAct_->setToolTip(blocked_.isEmpty() ? "Start training (F5)" : "Cannot start: " + blocked_);
    if (!blocked_.isEmpty()) progressText_->setText("Cannot start: " + blocked_);
    else if (progressText_->text().startsWith("Cannot start")) progressText_->setText("Ready");
}

void MainWindow::start() {
    if (running_) return;
    if (validateTimer_.isActive()) {  // an edit in the last 150 ms: check it now, before the worker opens the data
        validateTimer_.stop();
        validate();
    }
    if (!blocked_.isEmpty()) return;
    dashboard_->clear();
    lastCheckpoint_.clear();
    runDir_.clear();
    setRunning(true);
    progressText_->setText("Preparing…");
    const QString source = path_.isEmpty() ? QString("untitled.yaml") : path_;
    QMetaObject::invokeMethod(worker_, "run", Qt::QueuedConnection, Q_ARG(QString, form_->yaml()),
                              Q_ARG(QString, form_->baseDir()), Q_ARG(QString, source), Q_ARG(QString, QString()),
                              Q_ARG(QString, QString()), Q_ARG(QStringList, QStringList()));
}

void MainWindow::setExploreStatus(const QString& text) {
    explorer_->setStatus(text);
    glom_->setStatus(text);
}

ExploreRequest MainWindow::exploreRequest() const {
    ExploreRequest r = explorer_->request();
    glom_->fillRequest(r);
    return r;
}

void MainWindow::exploreCheckpoint(const QString& path) {
    if (running_) {
        setExploreStatus("A run is training: the explorer follows it; stop it to explore another checkpoint");
        return;
    }
    setExploreStatus("Exploring " + path + "…");
    worker_->setExploreRequest(exploreRequest(), explorer_->refreshEvery());
    QMetaObject::invokeMethod(worker_, "exploreCheckpoint", Qt::QueuedConnection, Q_ARG(QString, path));
}

void MainWindow::togglePause() {
    if (!running_) return;
    const bool pause = worker_->state() != TrainingWorker::Paused;
    worker_->requestPause(pause);
}

void MainWindow::stop() {
    if (!running_) return;
    progressText_->setText("Stopping (saving a checkpoint)…");
    worker_->requestStop();
}

void MainWindow::setRunning(bool on) {
    running_ = on;
    form_->setEditable(!on);
    startAct_->setEnabled(!on && blocked_.isEmpty());
    pauseAct_->setEnabled(on);
    stopAct_->setEnabled(on);
    pauseAct_->setText("&Pause");
}

void MainWindow::updateTitle() {
    const QString name = path_.isEmpty() ? QString("untitled") : QFileInfo(path_).fileName();
    setWindowTitle(name + (modified_ ? " *" : "") + " — GW Studio");
}

void MainWindow::addRecent(const QString& path) {
    QSettings s;
    QStringList recent = s.value("recentFiles").toStringList();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > 8) recent.removeLast();
    s.setValue("recentFiles", recent);
    rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
    recentMenu_->clear();
    const QStringList recent = QSettings().value("recentFiles").toStringList();
    for (const auto& p : recent)
        recentMenu_->addAction(QFileInfo(p).fileName() + "  (" + QFileInfo(p).absolutePath() + ")", this, [this, p] {
            if (maybeSave()) openExperiment(p);
        });
    recentMenu_->setEnabled(!recent.isEmpty());
}

bool MainWindow::maybeSave() {
    if (!modified_ || !interactive_) return true;
    const auto answer = QMessageBox::warning(this, "Unsaved changes", "The experiment has unsaved changes. Save them?",
                                             QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel);
    if (answer == QMessageBox::Cancel) return false;
    if (answer == QMessageBox::Save) {
        if (path_.isEmpty()) {
            const QString p = QFileDialog::getSaveFileName(this, "Save experiment", QString(), "Experiments (*.yaml)");
            return !p.isEmpty() && saveExperiment(p);
        }
        return saveExperiment(path_);
    }
    QFile::remove(autosave_);
    return true;
}

void MainWindow::writeAutosave() {
    const QString err = saveFile(autosave_, ("# gw-studio autosave of " + (path_.isEmpty() ? QString("untitled") : path_) + "\n").toUtf8() +
                                                form_->yaml().toUtf8());
    // A full disk: the edits are still in the window; say that the safety copy is not being kept.
    if (!err.isEmpty()) statusBar()->showMessage("Autosave failed: " + err, 15000);
}

void MainWindow::autosaveTick() {
    if (modified_ && interactive_) writeAutosave();
}

void MainWindow::offerAutosaveRestore() {
    QFile f(autosave_);
    if (!f.open(QIODevice::ReadOnly | QIODevice::Text)) return;
    const QString text = QString::fromUtf8(f.readAll());
    const QString header = text.section('\n', 0, 0);
    const QString source = header.section(" of ", 1);
    if (interactive_ &&
        QMessageBox::question(this, "Restore unsaved changes",
                              "GW Studio did not close cleanly. Restore the unsaved changes to " + source + "?") !=
            QMessageBox::Yes) {
        f.remove();
        return;
    }
    if (source != "untitled" && QFileInfo::exists(source)) openExperiment(source, false);
    form_->setYaml(text, source != "untitled" ? QFileInfo(source).absolutePath() : QDir::currentPath());
    modified_ = true;
    updateTitle();
    validate();
}

void MainWindow::closeEvent(QCloseEvent* e) {
    if (running_ && interactive_ &&
        QMessageBox::question(this, "Training in progress", "Stop the run (a checkpoint is saved) and quit?") != QMessageBox::Yes) {
        e->ignore();
        return;
    }
    if (!maybeSave()) {
        e->ignore();
        return;
    }
    if (running_) {
        worker_->requestStop();
        QEventLoop wait;
        connect(this, &MainWindow::runEnded, &wait, &QEventLoop::quit);
        if (running_) wait.exec();
    }
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/state", saveState());
    if (!modified_) QFile::remove(autosave_);
    e->accept();
}

}  // namespace gw::studio
