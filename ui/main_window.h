// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file main_window.h
/// The gw-studio window: the experiment form (a dock), the live loss dashboard, a log panel, and the
/// run controls. Training runs on a worker QThread (bridge TrainingWorker); this class never calls
/// LibTorch (ui/ does not include torch headers).
#include <QElapsedTimer>
#include <QMainWindow>
#include <QThread>
#include <QTimer>

#include "ui/bridge/bridge.h"

class QAction;
class QLabel;
class QMenu;
class QPlainTextEdit;
class QProgressBar;
class QProgressDialog;
class QTabWidget;

namespace gw::studio {

class ExperimentForm;
class ExplorerPanel;
class GlomPanel;
class MetricsDashboard;
class RunsPanel;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(QWidget* parent = nullptr);
    ~MainWindow() override;

    /// Opens an experiment file into the form. On failure shows why (when `interactive`) and returns false.
    bool openExperiment(const QString& path, bool interactive = true);
    /// Writes the form's YAML atomically; false with a message on failure.
    bool saveExperiment(const QString& path);
    QString experimentPath() const { return path_; }
    bool isModified() const { return modified_; }

    /// Why Start is disabled ("" when it is enabled).
    QString startBlockedReason() const { return blocked_; }
    /// The Runs tab (runs_panel.h).
    RunsPanel* runsPanel() const { return runs_; }
    /// Shows the Runs tab (as clicking it does).
    void showRuns();
    bool isRunning() const { return running_; }
    /// The run folder of the current or last run.
    QString runDir() const { return runDir_; }
    QString lastCheckpoint() const { return lastCheckpoint_; }

    ExperimentForm* form() const { return form_; }
    MetricsDashboard* dashboard() const { return dashboard_; }
    ExplorerPanel* explorer() const { return explorer_; }
    GlomPanel* glomPanel() const { return glom_; }
    /// Explores a checkpoint on the worker thread (when no run trains); the panel shows the result.
    void exploreCheckpoint(const QString& path);
    TrainingWorker* worker() const { return worker_; }
    QPlainTextEdit* logPanel() const { return log_; }
    QString statusText() const;

    /// Where unsaved edits are kept (QStandardPaths' app data folder by default).
    void setAutosaveFile(const QString& path) { autosave_ = path; }
    QString autosaveFile() const { return autosave_; }
    /// Offers to restore an autosave left by a session that did not end cleanly.
    void offerAutosaveRestore();
    /// Writes the autosave now (the timer does it every few seconds while there are unsaved edits).
    void writeAutosave();
    /// What the autosave timer does: writes the autosave when there are unsaved edits and the window is
    /// interactive. A scripted window (--screenshot, tests) keeps its edits to itself: its exit would
    /// otherwise leave an autosave behind and the next session would offer to restore it.
    void autosaveTick();
    /// Dialogs that would wait for a click (errors, prompts) are shown without blocking when false.
    void setInteractive(bool on) { interactive_ = on; }

public Q_SLOTS:
    void start();
    void togglePause();
    void stop();
    void validate();
    /// Edit ▸ Settings: the settings dialog (settings_dialog.h); the experiment is checked again after a save.
    void editSettings();

Q_SIGNALS:
    void runEnded(bool ok);

protected:
    void closeEvent(QCloseEvent* e) override;

private:
    void buildMenus();
    void setRunning(bool on);
    void updateTitle();
    void addRecent(const QString& path);
    void rebuildRecentMenu();
    bool maybeSave();
    void showError(const QString& title, const QString& text);
    void appendLog(const QString& line);

    ExperimentForm* form_;
    MetricsDashboard* dashboard_;
    /// The explorer's request with the GLOM tab's choice of sample.
    ExploreRequest exploreRequest() const;
    void setExploreStatus(const QString& text);  ///< on the explorer and the GLOM tab
    ExplorerPanel* explorer_;
    GlomPanel* glom_;
    QPlainTextEdit* log_;
    QProgressBar* progress_;
    QLabel* progressText_;
    QProgressDialog* preparing_ = nullptr;
    QAction *startAct_, *pauseAct_, *stopAct_, *undoAct_, *redoAct_, *exportCkptAct_, *exportPyAct_;
    QAction* settingsAct_ = nullptr;
    RunsPanel* runs_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    QMenu* recentMenu_;
    QThread thread_;
    TrainingWorker* worker_;
    QTimer validateTimer_, autosaveTimer_;
    QString path_, runDir_, lastCheckpoint_, blocked_, autosave_;
    bool modified_ = false, running_ = false, interactive_ = true;
};

}  // namespace gw::studio
