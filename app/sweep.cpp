// SPDX-License-Identifier: GPL-3.0-or-later
// `gw sweep`: local processes or one Slurm job array over a sweep folder (docs/sweeps.md).
#include "app/sweep.h"
#include "data/atomic_file.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/run/runs.h"

namespace gw {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> gStop{false};
void onStop(int) { gStop = true; }

/// SIGINT/SIGTERM set gStop without SA_RESTART, so that waitpid and sleeps return early.
void catchStops() {
    struct sigaction sa {};
    sa.sa_handler = onStop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
}

void say(const std::string& s) { std::cout << s << std::endl; }

std::string selfExe() {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) throw std::runtime_error("cannot find the gw executable (/proc/self/exe)");
    return std::string(buf, static_cast<size_t>(n));
}

std::string joined(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
    return s;
}

/// A command's exit code and its stdout and stderr together; `ran` false when it could not start.
struct Answer {
    int code = -1;
    bool ran = false;
    std::string out;
};

Answer capture(const std::vector<std::string>& argv) {
    Answer a;
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error(joined(argv) + ": cannot make a pipe (" + std::strerror(errno) + ")");
    int report[2];  // tells the parent whether execvp failed
    if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error(joined(argv) + ": cannot make a pipe");
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(joined(argv) + ": cannot start it (" + std::strerror(errno) + ")");
    if (pid == 0) {
        ::close(fds[0]);
        ::close(report[0]);
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        std::vector<char*> args;
        for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        const int e = errno;
        (void)!::write(report[1], &e, sizeof e);
        ::_exit(127);
    }
    ::close(fds[1]);
    ::close(report[1]);
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        a.out.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    int execErr = 0;
    a.ran = ::read(report[0], &execErr, sizeof execErr) != static_cast<ssize_t>(sizeof execErr);
    ::close(report[0]);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    a.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (!a.ran) a.out = std::strerror(execErr);
    while (!a.out.empty() && (a.out.back() == '\n' || a.out.back() == ' ')) a.out.pop_back();
    return a;
}

/// An exclusive lock on a file (flock), held until destroyed.
class FileLock {
public:
    FileLock(const std::string& path, bool wait) {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) throw std::runtime_error(path + ": cannot open the lock file (" + std::strerror(errno) + ")");
        while (::flock(fd_, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
            if (errno == EINTR) continue;
            ::close(fd_);
            fd_ = -1;
            break;
        }
    }
    ~FileLock() {
        if (fd_ >= 0) ::close(fd_);
    }
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    bool held() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

void updateSummary(const SweepSpec& spec, const std::vector<SweepPoint>& points) {
    FileLock lock((fs::path(spec.folder) / ".summary.lock").string(), true);
    writeSweepSummary(spec, sweepRows(spec, points));
}

/// The last non-empty line of a file (a failed point's log), or "".
std::string lastLine(const std::string& path) {
    std::ifstream in(path);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return last;
}

/// True when the point would import data or pre-train shared weights: it runs alone first, so that
/// the others find the files instead of making them at the same time.
bool needsPreparation(const SweepSpec& spec, const SweepPoint& p, const UserSettings* settings) {
    const ExperimentConfig cfg = loadExperiment(spec.experiment, p.overrides(spec), settings);
    std::error_code ec;
    if (!cfg.dataFile.empty() && !fs::exists(cfg.resolvePath(cfg.dataFile), ec)) return true;
    for (const auto& d : cfg.domains)
        if (!d.weights.empty() && !fs::exists(cfg.resolvePath(d.weights), ec)) return true;
    return false;
}

/// "0-3,5,7-9"
std::string arraySpec(const std::vector<int>& idx) {
    std::string s;
    for (size_t i = 0; i < idx.size();) {
        size_t j = i;
        while (j + 1 < idx.size() && idx[j + 1] == idx[j] + 1) ++j;
        s += (s.empty() ? "" : ",") + std::to_string(idx[i]) + (j > i ? "-" + std::to_string(idx[j]) : "");
        i = j + 1;
    }
    return s;
}

std::string quoted(const std::string& s) {
    std::string q = "'";
    for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    return q + "'";
}

std::vector<int> unfinished(const SweepSpec& spec, const std::vector<SweepPoint>& points, size_t* finished) {
    std::vector<int> todo;
    *finished = 0;
    for (const auto& r : sweepRows(spec, points)) {
        if (r.state == "finished") ++*finished;
        else todo.push_back(r.point.index);
    }
    return todo;
}

// ---- one point ------------------------------------------------------------------------------------

int runPoint(const SweepCommand& cmd, const TrainFn& train) {
    const auto [spec, points] = readPlan(cmd.target);
    if (cmd.point < 0 || cmd.point >= static_cast<int>(points.size()))
        throw ConfigError(sweepPlanPath(cmd.target) + ": point " + std::to_string(cmd.point) + ": the plan has " +
                          std::to_string(points.size()) + " points (0 to " + std::to_string(points.size() - 1) + ")");
    const SweepPoint& p = points[static_cast<size_t>(cmd.point)];
    const std::string dir = sweepRunDir(spec.folder, p);
    fs::create_directories(dir);
    FileLock lock((fs::path(dir) / ".lock").string(), false);
    if (!lock.held()) {
        const RunStatus st = readRunStatus(dir);
        say("point " + std::to_string(p.index) + " (" + p.name + ") is being trained by another process (pid " +
            std::to_string(st.pid) + " on " + st.host + "); skipped");
        return 0;
    }
    if (readRunStatus(dir).state == "finished") {
        say("point " + std::to_string(p.index) + " (" + p.name + ") has finished already; skipped");
        updateSummary(spec, points);
        return 0;
    }
    std::vector<std::string> flags;
    if (cmd.threads >= 0) flags.push_back("threads=" + std::to_string(cmd.threads));
    if (!cmd.device.empty()) flags.push_back("device=" + cmd.device);
    int code = 1;
    try {
        if (fs::exists(runCheckpointPath(dir))) {
            say("point " + std::to_string(p.index) + " (" + p.name + "): resuming " + dir);
            code = train("", dir, flags, dir);
        } else {
            say("point " + std::to_string(p.index) + " (" + p.name + "): " + joined(p.overrides(spec)));
            std::vector<std::string> ov = p.overrides(spec);
            ov.insert(ov.end(), flags.begin(), flags.end());
            code = train(spec.experiment, "", ov, dir);
        }
    } catch (const std::exception& e) {
        // Errors before the first step (data, weights) leave no status: say it here.
        RunStatus st = readRunStatus(dir);
        if (st.state != "failed") {
            st.state = "failed";
            st.error = e.what();
            st.pid = static_cast<long>(::getpid());
            st.host.clear();
            if (st.started.empty()) st.started = utcNow();
            try {
                writeRunStatus(dir, st);
            } catch (const std::exception&) {
            }
        }
        try {
            updateSummary(spec, points);
        } catch (const std::exception&) {
        }
        throw;
    }
    updateSummary(spec, points);
    return code;
}

// ---- planning -------------------------------------------------------------------------------------

struct Planned {
    SweepSpec spec;
    std::vector<SweepPoint> points;
    UserSettings settings;
};

Planned plan(const SweepCommand& cmd) {
    Planned p;
    p.settings = loadUserSettings(userSettingsPath());
    std::error_code ec;
    if (fs::is_directory(cmd.target, ec)) {
        if (!cmd.overrides.empty())
            throw ConfigError(cmd.target + ": a sweep folder runs as planned; overrides belong to the sweep file");
        auto [spec, points] = readPlan(cmd.target);
        p.spec = std::move(spec);
        p.points = std::move(points);
        return p;
    }
    p.spec = loadSweep(cmd.target, cmd.overrides, cmd.out);
    p.points = expandSweep(p.spec);
    checkSweepPoints(p.spec, p.points, &p.settings);
    if (!cmd.dryRun) writeOrCheckPlan(p.spec, p.points);
    return p;
}

// ---- local processes ------------------------------------------------------------------------------

int runLocal(const SweepCommand& cmd, const Planned& pl) {
    const SweepSpec& spec = pl.spec;
    size_t finished = 0;
    const std::vector<int> todo = unfinished(spec, pl.points, &finished);
    if (todo.empty()) {
        say("sweep " + spec.name + ": all " + std::to_string(pl.points.size()) + " points have finished; nothing to run (" +
            spec.folder + ")");
        updateSummary(spec, pl.points);
        return 0;
    }
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (cmd.local > cores && cmd.threads < 0)
        throw std::runtime_error("--local " + std::to_string(cmd.local) + ": this machine has " + std::to_string(cores) +
                                 " cores and each point needs one (use --local " + std::to_string(cores) +
                                 " or fewer, or give --threads to oversubscribe on purpose)");
    const int n = std::max(1, std::min(cmd.local, static_cast<int>(todo.size())));
    const int threads = cmd.threads >= 0 ? cmd.threads : std::max(1, cores / n);
    say("sweep " + spec.name + ": " + std::to_string(pl.points.size()) + " points, " + std::to_string(finished) +
        " finished, " + std::to_string(todo.size()) + " to run, " + std::to_string(n) + " at a time with " +
        std::to_string(threads) + (threads == 1 ? " thread" : " threads") + " each; folder " + spec.folder);
    bool serialFirst = needsPreparation(spec, pl.points[static_cast<size_t>(todo.front())], &pl.settings);
    if (serialFirst && n > 1) say("point " + std::to_string(todo.front()) + " runs alone first: it imports the data or pre-trains weights the others share");

    catchStops();
    const std::string self = selfExe();
    std::map<pid_t, std::pair<int, std::chrono::steady_clock::time_point>> running;
    size_t next = 0, done = 0;
    int failed = 0;
    bool forwarded = false;
    auto launch = [&](int idx) {
        const SweepPoint& p = pl.points[static_cast<size_t>(idx)];
        const std::string dir = sweepRunDir(spec.folder, p);
        fs::create_directories(dir);
        const std::string log = (fs::path(dir) / "train.log").string();
        std::vector<std::string> args = {self, "sweep", spec.folder, "--point", std::to_string(idx), "--threads", std::to_string(threads)};
        if (!cmd.device.empty()) args.insert(args.end(), {"--device", cmd.device});
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("cannot start a gw process (" + std::string(std::strerror(errno)) + ")");
        if (pid == 0) {
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ::dup2(fd, 1);
                ::dup2(fd, 2);
            }
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(self.c_str(), argv.data());
            ::_exit(127);
        }
        running[pid] = {idx, std::chrono::steady_clock::now()};
        say("[" + std::to_string(done + running.size()) + "/" + std::to_string(todo.size()) + "] started " + p.name +
            " (pid " + std::to_string(pid) + "; log " + log + ")");
    };
    while ((next < todo.size() && !gStop) || !running.empty()) {
        while (!gStop && next < todo.size() && static_cast<int>(running.size()) < (serialFirst ? 1 : n)) launch(todo[next++]);
        if (gStop && !forwarded) {
            say("stopping: each running point saves a checkpoint (run the sweep again to resume)");
            for (const auto& [pid, info] : running) ::kill(pid, SIGINT);
            forwarded = true;
        }
        if (running.empty()) break;
        int st = 0;
        const pid_t pid = ::waitpid(-1, &st, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        auto it = running.find(pid);
        if (it == running.end()) continue;
        const int idx = it->second.first;
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.second).count();
        running.erase(it);
        ++done;
        const SweepPoint& p = pl.points[static_cast<size_t>(idx)];
        const std::string dir = sweepRunDir(spec.folder, p);
        // A point killed outright could not say so itself: its status.yaml gets the signal from here.
        if (WIFSIGNALED(st)) recordRunKilled(dir, static_cast<long>(pid), WTERMSIG(st));
        const RunStatus rs = readRunStatus(dir);
        const int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        std::ostringstream line;
        line << "[" << done << "/" << todo.size() << "] " << p.name << ": ";
        if (code == 0 && rs.state == "finished") {
            line << "finished, " << rs.step << " steps in " << std::fixed << std::setprecision(1) << secs << " s";
        } else if (rs.state == "stopped") {
            line << "stopped at step " << rs.step << " (checkpoint kept; run the sweep again to resume)";
        } else {
            ++failed;
            const std::string why = !rs.error.empty() ? rs.error : lastLine((fs::path(dir) / "train.log").string());
            line << (WIFSIGNALED(st) ? "killed by signal " + std::to_string(WTERMSIG(st)) + " (" +
                                           (signalName(WTERMSIG(st)) ? signalName(WTERMSIG(st)) : "?") + ")"
                                     : "failed (exit " + std::to_string(code) + ")")
                 << (why.empty() ? "" : ": " + why) << " (log " << (fs::path(dir) / "train.log").string() << ")";
        }
        say(line.str());
        if (serialFirst) {
            serialFirst = false;
            if (code != 0) {
                say("the first point failed while the others would need what it prepares; not starting them");
                break;
            }
        }
    }
    updateSummary(spec, pl.points);
    size_t nowFinished = 0;
    unfinished(spec, pl.points, &nowFinished);
    say("sweep " + spec.name + ": " + std::to_string(nowFinished) + " of " + std::to_string(pl.points.size()) +
        " points finished; summary " + sweepSummaryPath(spec.folder));
    if (gStop) return 130;
    return failed > 0 || nowFinished < pl.points.size() ? 1 : 0;
}

// ---- Slurm ----------------------------------------------------------------------------------------

bool onPath(const std::string& cmd) {
    if (cmd.find('/') != std::string::npos) return ::access(cmd.c_str(), X_OK) == 0;
    const char* path = std::getenv("PATH");
    std::stringstream ss(path ? path : "");
    for (std::string d; std::getline(ss, d, ':');)
        if (!d.empty() && ::access((fs::path(d) / cmd).c_str(), X_OK) == 0) return true;
    return false;
}

void requireCommand(const std::string& cmd) {
    if (!onPath(cmd))
        throw std::runtime_error(cmd + ": not found on PATH. --slurm needs Slurm's client commands: run gw sweep on a "
                                       "login node of the cluster, or start a one-machine cluster with "
                                       "packaging/slurm-local.sh (docs/sweeps.md)");
}

SlurmOptions merged(SlurmOptions file, const SlurmOptions& flags) {
    if (!flags.partition.empty()) file.partition = flags.partition;
    if (!flags.time.empty()) file.time = flags.time;
    if (flags.cpusPerTask > 0) file.cpusPerTask = flags.cpusPerTask;
    if (flags.gpus > 0) file.gpus = flags.gpus;
    if (!flags.mem.empty()) file.mem = flags.mem;
    if (!flags.account.empty()) file.account = flags.account;
    if (!flags.qos.empty()) file.qos = flags.qos;
    if (flags.maxParallel > 0) file.maxParallel = flags.maxParallel;
    file.extra.insert(file.extra.end(), flags.extra.begin(), flags.extra.end());
    return file;
}

std::string jobsPath(const std::string& folder) { return (fs::path(folder) / "slurm" / "jobs.txt").string(); }

/// Job ids submitted for this sweep folder, oldest first.
std::vector<std::string> submittedJobs(const std::string& folder) {
    std::vector<std::string> ids;
    std::ifstream in(jobsPath(folder));
    for (std::string line; std::getline(in, line);) {
        const std::string id = line.substr(0, line.find('\t'));
        if (!id.empty()) ids.push_back(id);
    }
    return ids;
}

std::string submit(const SweepCommand& cmd, const std::string& script, const std::vector<int>& idx, int maxParallel,
                   const std::string& dependency) {
    std::vector<std::string> argv = {cmd.sbatch, "--parsable"};
    if (!dependency.empty()) argv.push_back("--dependency=afterok:" + dependency);
    argv.push_back("--array=" + arraySpec(idx) + (maxParallel > 0 ? "%" + std::to_string(maxParallel) : ""));
    argv.push_back(script);
    const Answer a = capture(argv);
    if (!a.ran) throw std::runtime_error(joined(argv) + ": cannot run it (" + a.out + ")");
    if (a.code != 0)
        throw std::runtime_error(joined(argv) + " failed (exit " + std::to_string(a.code) + "); sbatch answered: " +
                                 (a.out.empty() ? "nothing" : a.out));
    // --parsable prints "JOBID" or "JOBID;CLUSTER", possibly after warnings on earlier lines.
    std::string last = a.out.substr(a.out.rfind('\n') == std::string::npos ? 0 : a.out.rfind('\n') + 1);
    const std::string id = last.substr(0, last.find(';'));
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw std::runtime_error(joined(argv) + ": expected a job id, sbatch answered '" + a.out + "'");
    AppendFile(jobsPath(fs::path(script).parent_path().parent_path().string())).append(id + "\t" + arraySpec(idx) + "\t" + utcNow() + "\n");
    return id;
}

/// Array task index -> Slurm state, from squeue (queued and running) then sacct (ended), newest job
/// last so that it wins. `notes` gathers what a command answered when it could not tell.
std::map<int, std::string> slurmStates(const SweepCommand& cmd, const std::vector<std::string>& jobs, std::vector<std::string>& notes) {
    std::map<int, std::string> states;
    if (jobs.empty()) return states;
    std::string list;
    for (const auto& j : jobs) list += (list.empty() ? "" : ",") + j;
    auto parse = [&](const std::string& out, char sep, bool sacct) {
        std::stringstream ss(out);
        for (std::string line; std::getline(ss, line);) {
            const auto bar = line.find(sep);
            if (bar == std::string::npos) continue;
            const std::string id = line.substr(0, bar);
            std::string state = line.substr(bar + 1);
            state = state.substr(0, state.find(sep));
            const auto us = id.find('_');
            if (us == std::string::npos) continue;
            const std::string task = id.substr(us + 1);
            if (task.empty() || task.find_first_not_of("0123456789") != std::string::npos) continue;
            const int t = std::stoi(task);
            if (sacct && states.count(t)) continue;  // squeue is fresher
            states[t] = state.substr(0, state.find(' '));
        }
    };
    if (onPath(cmd.squeue)) {
        const Answer q = capture({cmd.squeue, "-h", "-r", "-j", list, "-o", "%i|%T"});
        if (q.code == 0) parse(q.out, '|', false);
        else notes.push_back(cmd.squeue + " answered (exit " + std::to_string(q.code) + "): " + q.out);
    } else {
        notes.push_back(cmd.squeue + ": not found on PATH; states from the run folders only");
    }
    if (onPath(cmd.sacct)) {
        const Answer s = capture({cmd.sacct, "-n", "-P", "-X", "-j", list, "-o", "JobID,State"});
        if (s.code == 0) parse(s.out, '|', true);
        else notes.push_back(cmd.sacct + " answered (exit " + std::to_string(s.code) + "): " + s.out.substr(0, s.out.find('\n')));
    }
    return states;
}

int printStatus(const SweepCommand& cmd, const Planned& pl) {
    const SweepSpec& spec = pl.spec;
    // The run folders are read once, for the lines below and summary.csv (sweepRows reads only what
    // changed in each metrics.csv since the last time).
    std::vector<SweepRow> rows;
    {
        FileLock lock((fs::path(spec.folder) / ".summary.lock").string(), true);
        rows = sweepRows(spec, pl.points);
        writeSweepSummary(spec, rows);
    }
    std::vector<std::string> notes;
    const auto jobs = submittedJobs(spec.folder);
    const auto slurm = slurmStates(cmd, jobs, notes);
    std::map<std::string, int> counts;
    for (const auto& r : rows) ++counts[r.state];
    std::string tally;
    for (const auto& [k, v] : counts) tally += (tally.empty() ? "" : ", ") + std::to_string(v) + " " + k;
    say("sweep " + spec.name + " (" + spec.folder + "): " + std::to_string(rows.size()) + " points: " + tally +
        (jobs.empty() ? "" : "; Slurm jobs " + jobs.back() + (jobs.size() > 1 ? " and " + std::to_string(jobs.size() - 1) + " before" : "")));
    for (const auto& r : rows) {
        std::ostringstream o;
        o << "  " << std::setw(4) << r.point.index << "  " << std::left << std::setw(11) << r.state << std::right << std::setw(8)
          << r.step << "/" << std::left << std::setw(8) << r.totalSteps << std::right;
        if (auto it = slurm.find(r.point.index); it != slurm.end()) o << "  " << std::left << std::setw(10) << it->second << std::right;
        else if (!jobs.empty()) o << "  " << std::setw(10) << std::left << "-" << std::right;
        o << "  " << r.point.name;
        say(o.str());
    }
    for (const auto& n : notes) say("note: " + n);
    say("summary " + sweepSummaryPath(spec.folder));
    return 0;
}

int runSlurm(const SweepCommand& cmd, const Planned& pl) {
    const SweepSpec& spec = pl.spec;
    const SlurmOptions o = merged(spec.slurm, cmd.slurmFlags);
    size_t finished = 0;
    const std::vector<int> todo = unfinished(spec, pl.points, &finished);
    if (todo.empty()) {
        say("sweep " + spec.name + ": all " + std::to_string(pl.points.size()) + " points have finished; nothing to submit");
        updateSummary(spec, pl.points);
        return 0;
    }
    requireCommand(cmd.sbatch);
    const std::string dir = (fs::path(spec.folder) / "slurm").string();
    fs::create_directories(dir);
    const std::string script = (fs::path(dir) / "array.sbatch").string();
    std::ostringstream s;
    s << "#!/bin/bash\n";
    s << "#SBATCH --job-name=gw-" << spec.name << "\n";
    s << "#SBATCH --output=" << dir << "/%A_%a.out\n";
    if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << "\n";
    if (!o.time.empty()) s << "#SBATCH --time=" << o.time << "\n";
    if (o.cpusPerTask > 0) s << "#SBATCH --cpus-per-task=" << o.cpusPerTask << "\n";
    if (o.gpus > 0) s << "#SBATCH --gpus-per-task=" << o.gpus << "\n";
    if (!o.mem.empty()) s << "#SBATCH --mem=" << o.mem << "\n";
    if (!o.account.empty()) s << "#SBATCH --account=" << o.account << "\n";
    if (!o.qos.empty()) s << "#SBATCH --qos=" << o.qos << "\n";
    for (const auto& line : o.extra) s << "#SBATCH " << line << "\n";
    s << "# Written by gw sweep (docs/sweeps.md): array task I trains point I of " << sweepPlanPath(spec.folder) << ";\n";
    s << "# a point that has finished is skipped, an interrupted one resumes from its checkpoint.\n";
    std::string threads = cmd.threads >= 0 ? std::to_string(cmd.threads)
                                           : (o.cpusPerTask > 0 ? std::to_string(o.cpusPerTask) : "${SLURM_CPUS_PER_TASK:-0}");
    s << "exec " << quoted(selfExe()) << " sweep " << quoted(spec.folder) << " --point \"$SLURM_ARRAY_TASK_ID\" --threads \"" << threads << "\"";
    if (!cmd.device.empty()) s << " --device " << quoted(cmd.device);
    else if (o.gpus > 0) s << " --device cuda";
    s << "\n";
    writeFileAtomically(script, s.str());
    fs::permissions(script, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);

    const bool prepare = needsPreparation(spec, pl.points[static_cast<size_t>(todo.front())], &pl.settings);
    std::vector<std::string> ids;
    if (prepare && todo.size() > 1) {
        const std::string first = submit(cmd, script, {todo.front()}, 0, "");
        say("submitted job " + first + " (point " + std::to_string(todo.front()) +
            " alone: it imports the data or pre-trains the weights the others share)");
        const std::vector<int> rest(todo.begin() + 1, todo.end());
        const std::string second = submit(cmd, script, rest, o.maxParallel, first);
        say("submitted job " + second + " (array " + arraySpec(rest) + ", after job " + first + " succeeds)");
        ids = {first, second};
    } else {
        const std::string id = submit(cmd, script, todo, o.maxParallel, "");
        say("submitted job " + id + " (array " + arraySpec(todo) + ", " + std::to_string(todo.size()) + " points; " +
            std::to_string(finished) + " finished before)");
        ids = {id};
    }
    say("script " + script + "; task logs " + dir + "/JOB_TASK.out; follow with: gw sweep " + spec.folder + " --status");
    if (!cmd.wait) return 0;

    catchStops();
    requireCommand(cmd.squeue);
    std::string list;
    for (const auto& j : ids) list += (list.empty() ? "" : ",") + j;
    while (!gStop) {
        const Answer q = capture({cmd.squeue, "-h", "-r", "-j", list, "-o", "%i"});
        if (q.code != 0) throw std::runtime_error(cmd.squeue + " -j " + list + " failed (exit " + std::to_string(q.code) + "); it answered: " + q.out);
        if (q.out.empty()) break;
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (gStop) {
        say("stopped waiting; the jobs go on (gw sweep " + spec.folder + " --status)");
        return 130;
    }
    printStatus(cmd, pl);
    size_t nowFinished = 0;
    unfinished(spec, pl.points, &nowFinished);
    return nowFinished == pl.points.size() ? 0 : 1;
}

void printPlan(const Planned& pl) {
    say("sweep " + pl.spec.name + ": " + std::to_string(pl.points.size()) + " points (" + pl.spec.method + ") of " +
        pl.spec.experiment + "; folder " + pl.spec.folder);
    for (const auto& p : pl.points) say("  " + p.name + "    " + joined(p.overrides(pl.spec)));
}

}  // namespace

int runSweep(const SweepCommand& cmd, const TrainFn& train) {
    if (cmd.point >= 0) return runPoint(cmd, train);
    const Planned pl = plan(cmd);
    if (cmd.dryRun) {
        printPlan(pl);
        return 0;
    }
    if (cmd.status) return printStatus(cmd, pl);
    if (cmd.slurm) return runSlurm(cmd, pl);
    SweepCommand local = cmd;
    if (local.local <= 0) local.local = 1;
    return runLocal(local, pl);
}

}  // namespace gw
