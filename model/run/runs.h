// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file runs.h
/// Run folders, checkpoints and devices as the front ends open them: `gw` (app/gw.cpp) and the
/// window's bridge (ui/bridge/bridge.cpp) both call these, so that they agree. A run folder, as
/// runTraining writes it, holds config.yaml (the resolved experiment, absolute paths), metrics.csv and
/// checkpoints/last.ckpt. Plain structs, no Qt.
#include <cstdint>
#include <string>
#include <vector>

#include "model/io/checkpoint.h"
#include "model/experiment/config.h"

namespace gw {

/// RUN_DIR/config.yaml: the experiment a run folder was trained with.
std::string runConfigPath(const std::string& runDir);
/// RUN_DIR/checkpoints/last.ckpt: a run folder's checkpoint.
std::string runCheckpointPath(const std::string& runDir);
/// RUN_DIR/status.yaml: how far a run got and whether it is going on (RunStatus).
std::string runStatusPath(const std::string& runDir);

/// What a run folder says of its run. runTraining writes RUN_DIR/status.yaml when it starts, at each
/// validation and checkpoint, and when it stops, finishes or fails; sweeps (sweep.h) and the Runs panel
/// read it. A process that dies of a crash signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) writes
/// "failed" and the signal on its way out (RunCrashRecorder); one killed outright (SIGKILL, the
/// out-of-memory killer) leaves "running": readRunStatus then checks the process, and a local sweep,
/// which saw it end, records the signal (recordRunKilled).
struct RunStatus {
    /// "running", "stopped" (asked to stop; its checkpoint resumes it), "finished", "failed",
    /// "interrupted" ("running" but its process is gone: killed outright, or the machine restarted;
    /// its checkpoint resumes it), or "" (no status file).
    std::string state;
    int64_t step = 0;        ///< last step reached (checkpointed when stopped or finished)
    int64_t totalSteps = 0;  ///< training.steps
    long pid = 0;            ///< the training process
    std::string host;        ///< the host it runs on (gethostname)
    std::string started;     ///< when this start of the run began, UTC, ISO 8601
    std::string updated;     ///< when the file was written, UTC, ISO 8601
    std::string error;       ///< failed or interrupted: what happened, for a person
    int signal = 0;          ///< the signal that ended the process, 0 when none or unknown
    /// The process's start time (clock ticks since boot, /proc/PID/stat field 22) and the kernel's boot
    /// id: a pid the system has given to another process since, or a restarted machine, is not taken
    /// for the run still going. Empty/0 in files of older versions (then only the pid is checked).
    int64_t pidStart = 0;
    std::string bootId;
};
/// Writes RUN_DIR/status.yaml atomically (`updated` set to now; `pidStart` and `bootId` of this
/// process when `pid` is this process). When the atomic write fails (a full disk cannot take even the
/// temporary file), a status that fits in the existing file's block is written over it in place, so
/// that a failure is still recorded. \throws WriteError naming the file when neither works.
void writeRunStatus(const std::string& runDir, RunStatus status);
/// Reads RUN_DIR/status.yaml; a folder without one gives state "". A "running" status whose process
/// on this host is gone (no such pid, a pid started at another time, another boot) reads as
/// "interrupted", with `error` saying so. Throws nothing: an unreadable file reads as state "failed"
/// with the reason in `error`.
RunStatus readRunStatus(const std::string& runDir);
/// A parent that saw its child `pid` end by `signal` (a local sweep's runner): when RUN_DIR/status.yaml
/// still says "running" for that pid, it becomes "interrupted" (SIGKILL, SIGTERM, SIGINT: resumable as
/// it is) or "failed" (any other signal) with the signal and what it usually means. Throws nothing;
/// true when it wrote the file.
bool recordRunKilled(const std::string& runDir, long pid, int signal);
/// "SIGKILL", "SIGSEGV", ... ("signal N" for one without a name here). Async-signal-safe.
const char* signalName(int signal);

/// While alive, a crash signal (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL) in this process writes
/// RUN_DIR/status.yaml as "failed" with the signal and the last step (from `update`), then lets the
/// signal end the process as it would have; the handler uses only async-signal-safe calls (open,
/// write, rename) on text prepared by update(). One recorder per process (a second one records
/// nothing, see armed()); runTraining keeps one for the run it trains.
class RunCrashRecorder {
public:
    explicit RunCrashRecorder(const std::string& runDir);
    ~RunCrashRecorder();
    RunCrashRecorder(const RunCrashRecorder&) = delete;
    RunCrashRecorder& operator=(const RunCrashRecorder&) = delete;
    /// Prepares the text the handler would write for `status` (state and error are replaced).
    void update(const RunStatus& status);
    /// False when another recorder of this process was armed first.
    bool armed() const { return armed_; }

private:
    bool armed_ = false;
};
/// The current time, UTC, as ISO 8601 ("2026-12-01T05:30:00Z").
std::string utcNow();

/// A path given where a checkpoint is expected: a run folder stands for its checkpoints/last.ckpt;
/// any other path is returned as it is (whether it exists or not).
std::string resolveCheckpointPath(const std::string& path);

/// The user's data folder: $XDG_DATA_HOME/gw-studio, else ~/.local/share/gw-studio (not created here).
std::string userDataDir();
/// True when files can be created in `folder`, or in its nearest existing ancestor when it does not exist
/// yet (so that it could be created), tried by creating and removing a temporary file there. False for
/// a read-only place such as an installed experiment's folder under /usr/share.
bool writableFolder(const std::string& folder);

/// A GW training checkpoint and the experiment it was trained with.
struct OpenedCheckpoint {
    std::string path;         ///< the checkpoint file read (a run folder resolved)
    Checkpoint checkpoint;    ///< migrated in memory when the file is older
    ExperimentConfig config;  ///< the experiment embedded in the checkpoint, overrides applied
};
/// Reads the checkpoint at `path` (or a run folder's checkpoints/last.ckpt) and parses the experiment
/// embedded in it, with `overrides` (dotted key=value), as `gw eval` and the explorer do. Relative
/// paths in that experiment are taken from the filesystem root (a run saves them absolute).
/// \throws CheckpointError naming the file when it is missing, unreadable or damaged, or holds
/// something other than a GW training checkpoint (kind "gw"); ConfigError naming
/// "PATH (embedded config)" and the key when the embedded experiment does not parse.
OpenedCheckpoint openCheckpoint(const std::string& path, const std::vector<std::string>& overrides = {});

/// A run folder to resume: its experiment and its last checkpoint.
struct OpenedRun {
    std::string dir;             ///< the run folder, as given
    ExperimentConfig config;     ///< RUN_DIR/config.yaml, overrides applied
    std::string checkpointPath;  ///< RUN_DIR/checkpoints/last.ckpt
    Checkpoint checkpoint;       ///< that checkpoint, migrated in memory when older
};
/// Opens `runDir` for `gw train --resume` and the window's resume: reads RUN_DIR/config.yaml with
/// `overrides` (dotted key=value, e.g. a longer training.steps), then RUN_DIR/checkpoints/last.ckpt.
/// \throws ConfigError naming RUN_DIR/config.yaml (missing, or a bad key or value); CheckpointError
/// naming RUN_DIR/checkpoints/last.ckpt when it is missing, unreadable, damaged or not of kind "gw".
OpenedRun openRun(const std::string& runDir, const std::vector<std::string>& overrides = {});

/// A device the engine can train on, or the one entry that says why no CUDA device is listed.
struct DeviceInfo {
    std::string id;              ///< "cpu", "cuda:N"; "cuda" for the entry saying why there is none
    bool available = true;       ///< false only for that entry
    bool cudaBuild = false;      ///< this LibTorch has CUDA (the unavailable entry: no device visible)
    unsigned cores = 0;          ///< cpu: hardware threads
    int threads = 0;             ///< cpu: LibTorch's intra-op thread count now
    std::string name;            ///< cuda:N: the device's name
    std::uint64_t memoryBytes = 0;  ///< cuda:N: total memory
    int major = 0, minor = 0;    ///< cuda:N: compute capability
};
/// The CPU first, then every visible CUDA device; when there is none (no device visible, or a
/// LibTorch built without CUDA), one entry with id "cuda" and available false says which. Throws
/// nothing.
std::vector<DeviceInfo> listDevices();

}  // namespace gw
