// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file sweep.h
/// `gw sweep`: plans a sweep (model/run/sweep.h) and runs its points, either as local `gw` processes
/// (--local N) or as one Slurm job array (--slurm, through sbatch); --status reads the run folders and
/// squeue/sacct; --point I is what each process or array task runs. docs/sweeps.md.
#include <functional>
#include <string>
#include <vector>

#include "model/run/sweep.h"

namespace gw {

struct SweepCommand {
    std::string target;                  ///< a sweep file, or a sweep folder (--status, --point)
    std::vector<std::string> overrides;  ///< added to every point
    std::string out;                     ///< parent of the sweep folder ("" = the file's `out`)
    int local = 0;                       ///< --local N: N points at once on this machine
    bool slurm = false;                  ///< --slurm: submit a job array
    bool status = false;                 ///< --status
    bool dryRun = false;                 ///< --dry-run: print the plan only
    bool wait = false;                   ///< --slurm --wait: return when every task has left the queue
    int point = -1;                      ///< --point I: train point I (array tasks, local children)
    int threads = -1;                    ///< --threads for every point (-1: split the cores / cpus_per_task)
    std::string device;                  ///< --device for every point
    SlurmOptions slurmFlags;             ///< --partition, --time, ... (win over the sweep file's)
    std::string sbatch = "sbatch", squeue = "squeue", sacct = "sacct";  ///< the Slurm commands
};

/// Trains one run: `experiment` with `overrides` into `out`, or resumes the run folder `resume`
/// (gw.cpp's `gw train`). Returns the exit code (130 when stopped by a signal).
using TrainFn = std::function<int(const std::string& experiment, const std::string& resume,
                                  const std::vector<std::string>& overrides, const std::string& out)>;

/// Runs `gw sweep` as `cmd` says. Returns the exit code: 0 when every point finished (or, with
/// --slurm, was submitted), 1 when one failed, 130 when stopped. \throws ConfigError (sweep file,
/// plan, experiment), std::runtime_error naming a Slurm command and what it answered.
int runSweep(const SweepCommand& cmd, const TrainFn& train);

}  // namespace gw
