// SPDX-License-Identifier: GPL-3.0-or-later
// gw: the GW Studio engine from the command line (train, eval, pretrain, import, devices, bench).
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <cerrno>
#include <cstring>

#include "app/bench.h"
#include "app/sweep.h"
#include "data/fashion_mnist.h"
#include "data/file_hash.h"
#include "data/h5_array.h"
#include "data/h5_check.h"
#include "data/public_folder.h"
#include "data/simple_shapes.h"
#include "model/run/distributed.h"
#include "model/run/engine.h"
#include "model/run/interop.h"
#include "model/core/metric_names.h"
#include "model/core/registry.h"
#include "model/models/attention_model.h"
#include "model/run/runs.h"

namespace fs = std::filesystem;

namespace {

std::atomic<bool> gStop{false};
void onSignal(int) { gStop = true; }

void say(const std::string& s) { std::cout << s << std::endl; }

int cmdSimpleShapes(const std::string& outFile, gw::data::SimpleShapesOptions o, bool valGiven, int64_t val) {
    if (valGiven) o.val = val;
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t last = 0;
    try {
        gw::data::generateSimpleShapes(outFile, o, [&](int64_t done, int64_t total) {
            if (done - last < 50000 && done != total) return;
            last = done;
            const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::cout << "\rgenerated " << done << "/" << total << " samples  " << std::fixed << std::setprecision(0)
                      << done / std::max(el, 1e-9) << " samples/s" << std::flush;
        }, [] { return gStop.load(); });
    } catch (const gw::data::GenerationStopped& e) {
        std::cout << std::endl;
        std::cerr << "gw: " << e.what() << std::endl;
        return 130;
    }
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "\nwrote " << outFile << " (" << o.train << " train, " << o.val << " val, " << o.test << " test"
              << (o.captions ? ", with captions" : "") << "; "
              << std::fixed << std::setprecision(1) << el << " s)" << std::endl;
    return 0;
}

/// A progress bar on stderr, one per phase: "train  [#########...........]  2048/4000 images  3120/s".
/// On a terminal it is redrawn in place at most ten times a second; otherwise one line at each quarter.
class ProgressBar {
public:
    explicit ProgressBar(std::string unit) : unit_(std::move(unit)), tty_(::isatty(STDERR_FILENO) == 1) {}
    void update(const std::string& label, int64_t done, int64_t total) {
        const auto now = std::chrono::steady_clock::now();
        if (label != label_) {
            label_ = label;
            start_ = now;
            quarter_ = -1;
            last_ = {};
        }
        const bool finished = done >= total;
        if (tty_) {
            if (!finished && now - last_ < std::chrono::milliseconds(100)) return;
        } else {
            const int q = total > 0 ? static_cast<int>(4 * done / total) : 4;
            if (q == quarter_) return;
            quarter_ = q;
        }
        last_ = now;
        const double el = std::chrono::duration<double>(now - start_).count();
        constexpr int kWidth = 30;
        const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
        std::ostringstream o;
        o << (tty_ ? "\r" : "") << std::left << std::setw(6) << label << "[" << std::string(size_t(filled), '#')
          << std::string(size_t(kWidth - filled), '.') << "]  " << done << "/" << total << " " << unit_;
        if (el > 0.05 && done > 0) o << "  " << std::fixed << std::setprecision(0) << done / el << "/s";
        std::cerr << o.str() << (tty_ ? (finished ? "\n" : "") : "\n") << std::flush;
        open_ = tty_ && !finished;
    }
    /// Ends a bar left half-drawn on a terminal, so that what follows starts on its own line.
    void endLine() {
        if (open_) std::cerr << std::endl;
        open_ = false;
    }

private:
    std::string unit_, label_;
    bool tty_ = false, open_ = false;
    int quarter_ = -1;
    std::chrono::steady_clock::time_point start_{}, last_{};
};

int cmdSimpleShapesFolder(const std::string& dir, const std::string& outFile, const gw::data::PublicFolderOptions& o) {
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    const auto t0 = std::chrono::steady_clock::now();
    ProgressBar bar("images");
    std::vector<gw::data::PublicFolderSplit> splits;
    try {
        splits = gw::data::importSimpleShapesFolder(
            dir, outFile, o, [&](const std::string& split, int64_t done, int64_t total) { bar.update(split, done, total); },
            [] { return gStop.load(); });
    } catch (const gw::data::ImportStopped& e) {
        bar.endLine();
        std::cerr << "gw: " << e.what() << std::endl;
        return 130;
    } catch (...) {
        bar.endLine();
        throw;
    }
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int64_t images = 0;
    std::ostringstream counts;
    for (const auto& s : splits) {
        counts << (images ? ", " : "") << s.samples << " " << s.name;
        images += s.samples;
    }
    const auto& first = splits.front();
    std::cout << "wrote " << outFile << " (" << counts.str() << "; images, attributes, labels"
              << (o.text ? ", captions, caption choices, BERT vectors of " + std::to_string(first.bertDim) : std::string())
              << (first.unpairedDim > 0 ? ", unpaired " + std::to_string(first.unpairedDim) : std::string()) << "; " << std::fixed
              << std::setprecision(1) << el << " s, " << std::setprecision(0) << 1e6 * el / double(std::max<int64_t>(images, 1))
              << " us per sample)" << std::endl;
    for (const auto& s : splits)
        if (s.captionMismatches > 0)
            std::cerr << "gw: note: split " << s.name << ": " << s.captionMismatches << " of " << s.samples
                      << " stored captions differ from what GW Studio's composer makes of their labels and choices (first: sample "
                      << s.firstMismatch << "); the stored captions are kept, their choice columns are the public ones" << std::endl;
    std::string splitsDir;
    for (const char* d : {"domain_splits_v2", "domain_splits"})
        if (splitsDir.empty() && fs::is_directory(fs::path(dir) / d)) splitsDir = (fs::absolute(dir) / d).string();
    std::cout << "train on it: data.file=" << fs::absolute(outFile).string();
    if (!splitsDir.empty()) std::cout << " (a public domain split: '~data.paired_count' 'data.groups_file=" << splitsDir << "/train_...npy')";
    std::cout << std::endl;
    return 0;
}

std::string duration(double seconds) {
    const auto s = static_cast<int64_t>(seconds + 0.5);
    std::ostringstream o;
    if (s >= 3600) o << s / 3600 << "h" << std::setw(2) << std::setfill('0') << (s % 3600) / 60 << "m";
    else o << s / 60 << ":" << std::setw(2) << std::setfill('0') << s % 60;
    return o.str();
}

/// "step 500/5000  loss 0.1234  demi_cycles 0.01 ...  312.4 steps/s  ETA 0:14"
void printProgress(const gw::ProgressReport& r) {
    std::ostringstream o;
    o << std::setprecision(4);
    if (r.validation) {
        o << "  val @ " << r.step << ":";
        for (const auto& [k, v] : r.metrics) {
            const std::string name = k.substr(k.find('/') + 1);
            bool shown = name == gw::metrics::kLoss || name.find("accuracy") != std::string::npos;
            for (const auto& f : gw::metrics::families()) shown = shown || name == f.mean;
            if (shown) o << "  " << name << " " << v;
        }
    } else {
        o << "step " << r.step << "/" << r.totalSteps;
        std::vector<std::string> shown = {gw::metrics::kLoss};
        for (const auto& f : gw::metrics::families()) shown.push_back(f.mean);
        for (const auto& k : shown)
            if (const double* v = r.metrics.find(gw::metrics::withSplit("train", k))) o << "  " << k << " " << *v;
        o << std::fixed << std::setprecision(r.stepsPerSecond < 10 ? 3 : 1) << "  " << r.stepsPerSecond << " steps/s  ETA "
          << duration(r.etaSeconds);
    }
    say(o.str());
}

std::string json(const gw::OrderedMap<double>& m) {
    std::ostringstream o;
    o << std::setprecision(10) << "{";
    bool first = true;
    for (const auto& [k, v] : m) {
        o << (first ? "" : ", ") << "\"" << k << "\": ";
        if (std::isfinite(v)) o << v;
        else o << "null";
        first = false;
    }
    o << "}";
    return o.str();
}

int cmdTrain(const std::string& experiment, const std::string& resume, const std::vector<std::string>& overrides,
             std::string out) {
    gw::Checkpoint ckpt;
    bool resuming = !resume.empty();
    gw::ExperimentConfig cfg;
    std::string ckptPath;
    if (resuming) {
        out = resume;
        gw::OpenedRun run = gw::openRun(resume, overrides);
        ckptPath = run.checkpointPath;
        cfg = std::move(run.config);
        ckpt = std::move(run.checkpoint);
    } else {
        const gw::UserSettings settings = gw::loadUserSettings(gw::userSettingsPath());
        cfg = gw::loadExperiment(experiment, overrides, &settings);
    }
    // One of several ranks (gw train --nproc, torchrun, srun): join the group; rank 0 names the run
    // folder and prepares the data and weights first, the others then find them.
    const gw::DistributedEnv denv = gw::distributedFromEnvironment();
    std::shared_ptr<gw::ProcessGroup> group;
    if (denv.active()) {
        if (cfg.device == "cuda") cfg.device = "cuda:" + std::to_string(denv.localRank);
        group = std::make_shared<gw::ProcessGroup>(denv, cfg.device, std::chrono::minutes(30));
        if (!resuming && out.empty() && denv.rank == 0) out = gw::defaultRunDir(cfg);
        out = group->shareFromRank0("run_dir", out);
    } else if (!resuming && out.empty()) {
        out = gw::defaultRunDir(cfg);
    }
    const bool lead = !group || group->rank() == 0;
    gw::Engine engine(cfg, lead ? gw::LogFn(say) : gw::LogFn{});
    engine.setProcessGroup(group);
    engine.setRunDir(out);
    if (group && !lead) group->barrier();
    engine.prepare(resuming ? &ckpt : nullptr);
    if (group && lead) group->barrier();
    if (resuming) {
        engine.restore(ckpt, ckptPath);
        if (lead) say("resumed " + ckptPath + " at step " + std::to_string(engine.step()));
    }
    const int64_t startStep = engine.step();
    if (lead) say("run folder " + out + (group ? " (" + std::to_string(group->size()) + " ranks, " + denv.source + ")" : ""));
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    gw::RunCallbacks cb;
    cb.progress = printProgress;
    cb.stopRequested = [] { return gStop.load(); };
    const auto r = gw::runTraining(engine, out, cb);
    if (group && lead && r.step > startStep) {
        std::ostringstream o;
        o << std::fixed << std::setprecision(3) << "data-parallel: " << group->size() << " ranks; rank 0 spent "
          << 1000.0 * r.collectiveSeconds / static_cast<double>(r.step - startStep) << " ms per step in collectives ("
          << r.collectiveCalls << " calls, " << std::setprecision(1) << r.collectiveSeconds << " s in all)";
        say(o.str());
    }
    if (!lead) return r.stopped ? 130 : 0;
    if (r.stopped) {
        say("stopped at step " + std::to_string(r.step) + "; checkpoint " + r.checkpoint +
            " (resume with: gw train --resume " + out + ")");
        return 130;
    }
    say("done: " + std::to_string(r.step) + " steps; checkpoint " + r.checkpoint);
    return 0;
}

/// `gw train --nproc N`: N ranks of this same command on this machine, joined through a TCPStore on a
/// free loopback port (the variables torchrun sets), each with its share of the cores.
int launchRanks(int n, std::vector<std::string> args) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    if (n > cores)
        throw std::runtime_error("--nproc " + std::to_string(n) + ": this machine has " + std::to_string(cores) +
                                 " cores and each rank needs one (use --nproc " + std::to_string(cores) + " or fewer)");
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw std::runtime_error(std::string("cannot find a free port on 127.0.0.1 for the ranks (") + std::strerror(errno) + ")");
    const int port = ntohs(addr.sin_port);
    ::close(fd);
    char self[4096];
    const ssize_t sn = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (sn <= 0) throw std::runtime_error("cannot find the gw executable (/proc/self/exe)");
    const std::string exe(self, static_cast<size_t>(sn));
    args[0] = exe;
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    std::vector<pid_t> pids;
    for (int r = 0; r < n; ++r) {
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error(std::string("cannot start rank ") + std::to_string(r) + " (" + std::strerror(errno) + ")");
        if (pid == 0) {
            ::setenv("RANK", std::to_string(r).c_str(), 1);
            ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
            ::setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
            ::setenv("MASTER_ADDR", "127.0.0.1", 1);
            ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(exe.c_str(), argv.data());
            ::_exit(127);
        }
        pids.push_back(pid);
        say("rank " + std::to_string(r) + ": pid " + std::to_string(pid));
    }
    std::vector<int> codes(static_cast<size_t>(n), -1);
    std::vector<std::string> how(static_cast<size_t>(n));
    int left = n;
    bool forwarded = false;
    auto firstFailure = std::chrono::steady_clock::time_point::max();
    while (left > 0) {
        if (gStop && !forwarded) {
            for (size_t r = 0; r < pids.size(); ++r)
                if (codes[r] < 0) ::kill(pids[r], SIGINT);
            forwarded = true;
        }
        // After a rank fails the others stop on their own (their next collective fails); give them a
        // minute, then end them.
        if (firstFailure != std::chrono::steady_clock::time_point::max() &&
            std::chrono::steady_clock::now() - firstFailure > std::chrono::seconds(60))
            for (size_t r = 0; r < pids.size(); ++r)
                if (codes[r] < 0) ::kill(pids[r], SIGKILL);
        int st = 0;
        const pid_t pid = ::waitpid(-1, &st, WNOHANG);
        if (pid == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            continue;
        }
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (size_t r = 0; r < pids.size(); ++r) {
            if (pids[r] != pid) continue;
            --left;
            codes[r] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            how[r] = WIFSIGNALED(st) ? "was killed by signal " + std::to_string(WTERMSIG(st)) : "exited with " + std::to_string(codes[r]);
            if (codes[r] != 0 && codes[r] != 130 && firstFailure == std::chrono::steady_clock::time_point::max())
                firstFailure = std::chrono::steady_clock::now();
        }
    }
    std::string failures;
    for (size_t r = 0; r < codes.size(); ++r)
        if (codes[r] != 0 && codes[r] != 130)
            failures += (failures.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + " (pid " + std::to_string(pids[r]) + ") " + how[r];
    if (!failures.empty()) {
        std::cerr << "gw: error: " << failures << std::endl;
        return 1;
    }
    for (int c : codes)
        if (c == 130) return 130;
    return 0;
}

int cmdEval(const std::string& path, const std::string& split, bool asJson, int64_t maxSamples,
            const std::vector<std::string>& overrides) {
    const gw::OpenedCheckpoint opened = gw::openCheckpoint(path, overrides);
    const gw::Checkpoint& ckpt = opened.checkpoint;
    gw::Engine engine(opened.config, asJson ? gw::LogFn{} : gw::LogFn(say));
    engine.prepare(&ckpt);
    engine.restore(ckpt, opened.path);
    const auto m = engine.evaluate(split, maxSamples, true);
    if (asJson) {
        std::cout << json(m) << std::endl;
    } else {
        say("checkpoint " + path + " (step " + std::to_string(ckpt.step) + "), split " + split);
        for (const auto& [k, v] : m) std::cout << "  " << std::left << std::setw(48) << k << " " << std::setprecision(6) << v << "\n";
        // An attention run: its scores against the corruption of each side, as one table.
        if (opened.config.model == "attention") std::cout << gw::attentionLevelsTable(m);
    }
    return 0;
}

/// `gw kinds`: what each extension point offers, read from the registries.
int cmdKinds(bool markdown) {
    if (markdown) {
        std::cout << gw::kindsMarkdown();
        return 0;
    }
    auto list = [](const char* title, const char* key, const auto& reg) {
        std::cout << title << " (" << key << "):\n";
        for (const auto& e : reg.entries()) {
            std::cout << "  " << e.info.name << ": " << e.info.doc << "\n";
            for (const auto& p : e.info.params)
                std::cout << "      " << p.key << " = " << p.defaultValue << (p.unit.empty() ? "" : " (" + p.unit + ")")
                          << ": " << p.doc << "\n";
            if (!e.info.dataScores.empty()) {
                std::cout << "      scores in data space:";
                for (const auto& n : e.info.dataScores) std::cout << " " << n;
                std::cout << "\n";
            }
        }
    };
    list("Trainable models", "model", gw::modelRegistry());
    list("GW flavours", "workspace.flavour", gw::flavourRegistry());
    list("Selections", "workspace.selection, parameters under workspace.selection_params", gw::selectionRegistry());
    list("Contrastive losses", "loss.contrastive, parameters under loss.contrastive_params", gw::contrastiveRegistry());
    list("Domain-module kinds", "domains.NAME.module", gw::domainModuleRegistry());
    return 0;
}

int cmdDevices() {
    for (const auto& d : gw::listDevices()) {
        if (d.id == "cpu") {
            std::cout << "cpu      " << d.cores << " cores, LibTorch intra-op threads " << d.threads
                      << " (set by `threads` in the experiment)\n";
        } else if (!d.available) {
            std::cout << (d.cudaBuild ? "cuda     no CUDA device visible\n"
                                      : "cuda     unavailable: this build's LibTorch has no CUDA (build against a CUDA "
                                        "LibTorch to train on GPUs)\n");
        } else {
            std::cout << d.id << "   " << d.name << ", " << std::fixed << std::setprecision(1)
                      << static_cast<double>(d.memoryBytes) / (1024.0 * 1024 * 1024) << " GiB, compute capability "
                      << d.major << "." << d.minor << "\n";
        }
    }
    return 0;
}

int cmdGlomExport(const std::string& checkpoint, const std::string& out, const std::string& domain) {
    const auto r = gw::exportGlomWeights(gw::resolveCheckpointPath(checkpoint), out, domain);
    say("wrote " + r.weights + " (" + std::to_string(r.tensors) + " tensors: domain " + r.domain + "'s GLOM as glom-pytorch's state_dict)");
    for (const auto& line : gw::glomExportNotes(r)) say(line);
    return 0;
}

int cmdGlomImport(const std::string& stateDict, const std::string& experiment, std::string out, const std::string& domain,
                  const std::string& toPixels, bool overwrite, const std::vector<std::string>& overrides) {
    if (out.empty()) out = (fs::path(stateDict).parent_path() / (fs::path(stateDict).stem().string() + ".weights.pt")).string();
    if (fs::exists(out) && !overwrite) throw std::runtime_error(out + " exists (choose another --out, or --force to replace it)");
    const gw::UserSettings settings = gw::loadUserSettings(gw::userSettingsPath());
    const auto cfg = gw::loadExperiment(experiment, overrides, &settings);
    const auto c = gw::importGlomWeights(stateDict, cfg, domain, toPixels);
    gw::saveCheckpoint(out, c);
    gw::data::writeSha256Sidecar(out);
    const std::string name = gw::glomDomainOf(cfg, domain).name;
    say("wrote " + out + " (" + std::to_string(c.state.size()) + " tensors: the GLOM of domain " + name + (toPixels.empty() ? ", its to_pixels layer freshly initialised" : "") + ")");
    say("use it with: gw train " + experiment + " domains." + name + ".weights=" + fs::absolute(out).string());
    return 0;
}

int cmdExport(const std::string& checkpoint, const std::string& out) {
    const auto r = gw::exportForPython(gw::resolveCheckpointPath(checkpoint), out);
    say("wrote " + r.weights + " (" + std::to_string(r.tensors) + " tensors, " + r.layout + ") and " + r.config);
    for (const auto& line : r.notes) say(line);
    return 0;
}

int cmdImportWeights(const std::string& stateDict, const std::string& experiment, std::string out, bool keepDomains,
                     bool overwrite, const std::vector<std::string>& overrides) {
    if (out.empty()) out = fs::path(stateDict).replace_extension(".ckpt").string();
    if (fs::exists(out) && !overwrite) throw std::runtime_error(out + " exists (choose another --out, or --force to replace it)");
    const gw::UserSettings settings = gw::loadUserSettings(gw::userSettingsPath());
    const auto cfg = gw::loadExperiment(experiment, overrides, &settings);
    const auto c = gw::importShimmerWeights(stateDict, cfg, keepDomains, say);
    gw::saveCheckpoint(out, c);
    say("wrote " + out + " (" + std::to_string(c.state.size()) + " tensors; evaluate with: gw eval " + out + ")");
    return 0;
}

/// `gw explore` draws with Qt, which `gw` does not link (it must build on GPU servers without Qt): it
/// runs gw-studio's offscreen renderer from the same folder.
int cmdExplore(const std::string& checkpoint, const std::string& out, const std::string& split, const std::string& samples,
               const std::string& broadcast) {
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    const fs::path dir = n > 0 ? fs::path(std::string(self, size_t(n))).parent_path() : fs::path(".");
    const std::string studio = (dir / "gw-studio").string();
    if (!fs::exists(studio))
        throw std::runtime_error("gw explore draws with the window's renderers: " + studio +
                                 " is missing (build with GW_BUILD_GUI=ON, which needs Qt 6 and QCustomPlot)");
    ::setenv("QT_QPA_PLATFORM", "offscreen", 0);
    std::vector<std::string> args = {studio, "--explore", gw::resolveCheckpointPath(checkpoint), "--out", out, "--split", split,
                                     "--samples", samples};
    if (!broadcast.empty()) args.insert(args.end(), {"--broadcast", broadcast});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(studio.c_str(), argv.data());
    throw std::runtime_error(studio + ": cannot run it (" + std::strerror(errno) + ")");
}

int cmdMigrate(const std::string& path) {
    const auto r = gw::migrateCheckpointFile(gw::resolveCheckpointPath(path));
    if (r.applied.empty()) {
        say(path + " is already at format_version " + std::to_string(r.toVersion) + "; nothing to do");
        return 0;
    }
    std::string names;
    for (const auto& n : r.applied) names += (names.empty() ? "" : ", ") + n;
    say("migrated " + path + " from format_version " + std::to_string(r.fromVersion) + " to " +
        std::to_string(r.toVersion) + " (" + names + "); the original is kept as " + r.backup);
    return 0;
}

}  // namespace

namespace {
int gwMain(int argc, char** argv) {
    // `gw check-data FILE` (hidden): the child process that opens an HDF5 file before GW Studio does
    // (data/h5_check.h). Before anything else, so that it starts as fast as it can.
    if (argc >= 2 && std::strcmp(argv[1], "check-data") == 0) return gw::data::h5CheckMain(argc, argv);
    gw::data::setH5CheckExecutable("/proc/self/exe");
    gw::ensurePassiveOpenMP(argv);
    gw::tuneAllocator();
    CLI::App app{"gw: Global Workspace experiments from the command line (GW Studio engine)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "gw 0.1.0");

    auto* train = app.add_subcommand("train", "Train an experiment (EXPERIMENT.yaml [key=value ...]) or resume a run");
    std::string experiment, resume, out;
    std::vector<std::string> overrides;
    train->add_option("experiment", experiment, "Experiment file (YAML)");
    train->add_option("overrides", overrides, "Overrides with dotted keys, e.g. training.steps=100");
    train->add_option("--resume", resume, "Run folder to continue (its config.yaml and checkpoints/last.ckpt)")
        ->check(CLI::ExistingDirectory);
    train->add_option("--out", out, "Run folder (default: training.out/NAME-TIMESTAMP)");
    int nproc = 1;
    train->add_option("--nproc", nproc, "Train data-parallel with N processes on this machine (torch.distributed, Gloo); "
                                        "each takes batch_size/N of every group's batch")
        ->check(CLI::PositiveNumber);
    std::string device;
    int threads = -1;
    auto deviceAndThreads = [&](CLI::App* sub) {
        sub->add_option("--device", device, "cpu, cuda or cuda:N (the experiment's `device`)");
        sub->add_option("--threads", threads, "Intra-op threads, 0 = every core (the experiment's `threads`)");
    };
    deviceAndThreads(train);
    // `gw train --resume RUN key=value`: the first positional is then an override.
    train->callback([&] {
        if (!resume.empty() && !experiment.empty()) {
            if (experiment.find('=') == std::string::npos)
                throw CLI::ValidationError("give either EXPERIMENT.yaml or --resume RUN_DIR, not both");
        }
        if (resume.empty() && experiment.empty()) throw CLI::RequiredError("experiment (or --resume RUN_DIR)");
    });

    auto* eval = app.add_subcommand("eval", "Every metric of a checkpoint on a split");
    std::string ckptPath, split = "test";
    bool asJson = false;
    int64_t maxSamples = -1;
    eval->add_option("checkpoint", ckptPath, "A run folder or a checkpoint (a run folder stands for its checkpoints/last.ckpt)")
        ->required()->check(CLI::ExistingPath);
    eval->add_option("--split", split, "train, val or test")->check(CLI::IsMember({"train", "val", "test"}));
    eval->add_flag("--json", asJson, "Print one JSON object");
    eval->add_option("--max-samples", maxSamples, "Evaluate the first N samples only");
    deviceAndThreads(eval);

    auto* pretrain = app.add_subcommand("pretrain", "Pre-train the domain modules of an experiment on their own data");
    std::string ptExperiment;
    std::vector<std::string> ptOverrides, ptDomains;
    bool force = false;
    pretrain->add_option("experiment", ptExperiment, "Experiment file (YAML)")->required()->check(CLI::ExistingFile);
    pretrain->add_option("overrides", ptOverrides, "Overrides with dotted keys");
    pretrain->add_option("--domain", ptDomains, "Only this domain (repeat for more)")
        ->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    pretrain->add_flag("--force", force, "Retrain even when the weights file exists");
    deviceAndThreads(pretrain);

    auto* imp = app.add_subcommand("import", "Import (fashion-mnist, simple-shapes-folder) or generate (simple-shapes) a dataset in the GW HDF5 layout");
    std::string source, sourceDir = gw::data::kFashionMnistDir;
    std::vector<std::string> importPaths;
    int64_t valCount = -1;
    gw::data::SimpleShapesOptions shapesOpt;
    imp->add_option("source", source, "Dataset name: fashion-mnist, simple-shapes, or simple-shapes-folder (a folder written by "
                                      "the public dataset's `shapesd create`)")
        ->required()->check(CLI::IsMember({"fashion-mnist", "simple-shapes", "simple-shapes-folder"}));
    imp->add_option("paths", importPaths, "OUT.h5, the output HDF5 file (simple-shapes-folder: DIR OUT.h5)")->required()->expected(1, 2);
    imp->add_option("--from", sourceDir, "fashion-mnist: folder of the IDX files")->check(CLI::ExistingDirectory);
    imp->add_option("--val", valCount, "fashion-mnist: training samples held out as val (5000); simple-shapes: val samples (1000)");
    imp->add_option("--train", shapesOpt.train, "simple-shapes: training samples")->capture_default_str();
    imp->add_option("--test", shapesOpt.test, "simple-shapes: test samples")->capture_default_str();
    imp->add_option("--seed", shapesOpt.seed, "simple-shapes: random seed")->capture_default_str();
    imp->add_option("--threads", shapesOpt.threads, "simple-shapes: rendering threads; simple-shapes-folder: decoding threads (0 = every core)")
        ->capture_default_str();
    imp->add_flag("--force", shapesOpt.force, "simple-shapes, simple-shapes-folder: replace an existing output file");
    bool noCaptions = false, noText = false;
    imp->add_flag("--no-captions", noCaptions, "simple-shapes: leave out the captions (/{split}/t, /{split}/caption_choices)");
    imp->add_flag("--no-text", noText, "simple-shapes-folder: images, attributes and labels only (no captions, caption choices "
                                        "or BERT vectors; their files are then not needed)");

    auto* exp = app.add_subcommand("export", "Write a checkpoint's weights for Python (shimmer's state_dict layout) and its experiment");
    std::string exCkpt, exOut;
    exp->add_option("checkpoint", exCkpt, "A checkpoint, or a run folder (its checkpoints/last.ckpt)")->required()
        ->check(CLI::ExistingPath);
    exp->add_option("out", exOut, "Output .pt file (torch.load reads it; OUT.yaml is written beside it)")->required();

    auto* impw = app.add_subcommand("import-weights", "Turn a torch.save'd shimmer state_dict into a GW Studio checkpoint");
    std::string iwState, iwExperiment, iwOut;
    std::vector<std::string> iwOverrides;
    bool keepDomains = false, iwForce = false;
    impw->add_option("state_dict", iwState, "STATE_DICT.pt (a state_dict, or a Lightning checkpoint holding one)")
        ->required()->check(CLI::ExistingFile);
    impw->add_option("experiment", iwExperiment, "The experiment (YAML) whose sizes the weights have")->required()
        ->check(CLI::ExistingFile);
    impw->add_option("overrides", iwOverrides, "Overrides with dotted keys");
    impw->add_option("--out", iwOut, "Checkpoint to write (default: STATE_DICT with the extension .ckpt)");
    impw->add_flag("--keep-domain-modules", keepDomains,
                   "Ignore the file's gw_mod.domain_mods.* tensors; take the domain modules from the experiment");
    impw->add_flag("--force", iwForce, "Replace an existing --out file");

    auto* glom = app.add_subcommand("glom", "GLOM weights to and from glom-pytorch (import-weights, export)");
    glom->require_subcommand(1);
    auto* glomImp = glom->add_subcommand("import-weights", "Turn a torch.save'd glom-pytorch Glom state_dict into a glom domain's weights file");
    std::string gState, gExperiment, gOut, gDomain, gToPixels;
    std::vector<std::string> gOverrides;
    bool gForce = false;
    glomImp->add_option("state_dict", gState, "STATE_DICT.pt: torch.save(glom.state_dict(), ...)")->required()->check(CLI::ExistingFile);
    glomImp->add_option("experiment", gExperiment, "The experiment (YAML) with the glom domain of those sizes")->required()
        ->check(CLI::ExistingFile);
    glomImp->add_option("overrides", gOverrides, "Overrides with dotted keys");
    glomImp->add_option("--domain", gDomain, "The glom domain (default: the only one)");
    glomImp->add_option("--to-pixels", gToPixels, "The README's patches_to_images state_dict (0.weight, 0.bias)")->check(CLI::ExistingFile);
    glomImp->add_option("--out", gOut, "Weights file to write (default: STATE_DICT.weights.pt)");
    glomImp->add_flag("--force", gForce, "Replace an existing --out file");
    auto* glomExp = glom->add_subcommand("export", "Write the GLOM of a run as glom-pytorch's Glom state_dict");
    std::string geCkpt, geOut, geDomain;
    glomExp->add_option("checkpoint", geCkpt, "A checkpoint, or a run folder")->required()->check(CLI::ExistingPath);
    glomExp->add_option("out", geOut, "Output .pt (Glom(...).load_state_dict(torch.load(OUT)) takes it)")->required();
    glomExp->add_option("--domain", geDomain, "The glom domain of a GW run (default: the only one)");

    auto* mig = app.add_subcommand("migrate", "Rewrite an older checkpoint in the current format, keeping a backup");
    std::string migPath;
    mig->add_option("checkpoint", migPath, "A checkpoint, or a run folder")->required()->check(CLI::ExistingPath);

    auto* explore = app.add_subcommand("explore", "Translations, demi-cycles and cycles of samples, and the workspace in 2-D, as PNG files");
    std::string exCheckpoint, exDir = ".", exSplit = "test", exSamples = "per_class:1";
    explore->add_option("checkpoint", exCheckpoint, "A checkpoint, or a run folder")->required()->check(CLI::ExistingPath);
    explore->add_option("--out", exDir, "Folder for translations.png and workspace.png");
    explore->add_option("--split", exSplit, "train, val or test")->check(CLI::IsMember({"train", "val", "test"}));
    explore->add_option("--samples", exSamples, "per_class:K, random:N[:SEED], first:N or indices:I,J,...");
    std::string exBroadcast;
    explore->add_option("--broadcast", exBroadcast,
                        "Also fuse these domains (comma-separated) and decode the state into every domain");

    auto* sweep = app.add_subcommand("sweep", "Run a sweep (SWEEP.yaml [key=value ...]) here or on Slurm, or show a sweep's state");
    gw::SweepCommand sw;
    sweep->add_option("sweep", sw.target, "Sweep file (YAML), or a sweep folder (with --status or --point)")->required()
        ->check(CLI::ExistingPath);
    sweep->add_option("overrides", sw.overrides, "Overrides for every point, with dotted keys");
    sweep->add_option("--out", sw.out, "Parent folder of the sweep folder (default: the sweep file's `out`)");
    auto* localOpt = sweep->add_option("--local", sw.local, "Train N points at once on this machine, the cores split between them (default 1)")
        ->check(CLI::PositiveNumber);
    auto* slurmOpt = sweep->add_flag("--slurm", sw.slurm, "Submit the points not yet finished as one Slurm job array (sbatch)");
    localOpt->excludes(slurmOpt);
    sweep->add_flag("--status", sw.status, "Each point's state (run folders, squeue, sacct) and summary.csv");
    sweep->add_flag("--dry-run", sw.dryRun, "Print the points and their overrides; run nothing");
    sweep->add_flag("--wait", sw.wait, "--slurm: wait until every task has left the queue, then print the state");
    sweep->add_option("--point", sw.point, "Train point I of a sweep folder (what each local process and array task runs)");
    sweep->add_option("--partition", sw.slurmFlags.partition, "Slurm partition (the sweep file's slurm.partition)");
    sweep->add_option("--time", sw.slurmFlags.time, "Slurm time limit per point, e.g. 02:00:00");
    sweep->add_option("--cpus-per-task", sw.slurmFlags.cpusPerTask, "Slurm CPUs per point (also its threads)");
    sweep->add_option("--gpus", sw.slurmFlags.gpus, "Slurm GPUs per point (the points train on cuda)");
    sweep->add_option("--mem", sw.slurmFlags.mem, "Slurm memory per point, e.g. 8G");
    sweep->add_option("--max-parallel", sw.slurmFlags.maxParallel, "At most N array tasks at once");
    sweep->add_option("--sbatch-line", sw.slurmFlags.extra, "A further #SBATCH line, e.g. --sbatch-line=--qos=short (repeatable)")
        ->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    sweep->add_option("--device", sw.device, "cpu, cuda or cuda:N for every point");
    sweep->add_option("--threads", sw.threads, "Intra-op threads of every point (default: the cores split, or cpus-per-task)");

    app.add_subcommand("devices", "List the CPU and every CUDA device");

    auto* kinds = app.add_subcommand("kinds", "GW flavours, selections and domain-module kinds, with their parameters");
    bool kindsMarkdown = false;
    kinds->add_flag("--markdown", kindsMarkdown, "As the tables of docs/experiment-format.md");

    auto* bench = app.add_subcommand("bench", "Steps/s of the reference GW training step (tutorial, ssd, wide), of "
                                              "pre-training the conv VAE (pretrain) or of GLOM's denoising step (glom)");
    gw::BenchOptions bo;
    bench->add_option("configs", bo.configs, "tutorial, ssd, wide (default: all), or pretrain or glom alone")
        ->check(CLI::IsMember({"tutorial", "ssd", "wide", "pretrain", "glom"}));
    bench->add_option("--steps", bo.steps, "Timed steps per repeat");
    bench->add_option("--repeats", bo.repeats, "Repeats (the median is reported)");
    bench->add_option("--threads", bo.threads,
                      "Intra-op threads of both sides (0: each count from 1 to the cores, interleaved, and each side's best compared)");
    bench->add_option("--device", bo.device, "cpu or cuda[:N]");
    bench->add_flag("--no-matmul", bo.skipMatmul, "Skip the matrix-product FLOP/s measurement");
    bench->add_flag("--json", bo.json, "Print JSON lines");
    bench->add_flag("--autograd", bo.autograd, "Time the autograd step where the hand-written CPU step would run (A/B)");
    bench->add_option("--flavour", bo.flavour, "GW flavour: two_domains or fusion (shimmer GlobalWorkspaceFusion)")
        ->check(CLI::IsMember({"two_domains", "fusion"}));
    bench->add_option("--reference", bo.reference,
                      "Also run this PyTorch reference script side by side (pytorch_reference.py; pytorch_vae_reference.py for pretrain)")
        ->check(CLI::ExistingFile);
    bench->add_option("--python", bo.python, "Interpreter for the reference (needs torch)");
    bench->add_flag("--reference-tuned", bo.referenceTuned, "Also run the reference with gw's OpenMP and allocator settings");

    const std::vector<std::string> originalArgs(argv, argv + argc);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    // --device and --threads are overrides like any other, applied last.
    std::vector<std::string> flags;
    if (!device.empty()) flags.push_back("device=" + device);
    if (threads >= 0) flags.push_back("threads=" + std::to_string(threads));
    overrides.insert(overrides.end(), flags.begin(), flags.end());
    ptOverrides.insert(ptOverrides.end(), flags.begin(), flags.end());
    try {
        if (*train && nproc > 1) {
            // The ranks run this same command line without --nproc, with one run folder and their
            // share of the cores.
            std::vector<std::string> args;
            for (size_t i = 0; i < originalArgs.size(); ++i) {
                if (originalArgs[i] == "--nproc") {
                    ++i;
                    continue;
                }
                if (originalArgs[i].rfind("--nproc=", 0) == 0) continue;
                args.push_back(originalArgs[i]);
            }
            if (out.empty() && resume.empty()) {
                const gw::UserSettings settings = gw::loadUserSettings(gw::userSettingsPath());
                std::vector<std::string> ov = overrides;
                args.insert(args.end(), {"--out", gw::defaultRunDir(gw::loadExperiment(experiment, ov, &settings))});
            }
            if (threads < 0) {
                const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
                args.insert(args.end(), {"--threads", std::to_string(std::max(1, cores / nproc))});
            }
            return launchRanks(nproc, args);
        }
        if (*train) {
            if (!resume.empty() && !experiment.empty()) overrides.insert(overrides.begin(), experiment);
            return cmdTrain(resume.empty() ? experiment : "", resume, overrides, out);
        }
        if (*eval) return cmdEval(ckptPath, split, asJson, maxSamples, flags);
        if (*pretrain) {
            const gw::UserSettings settings = gw::loadUserSettings(gw::userSettingsPath());
            gw::Engine engine(gw::loadExperiment(ptExperiment, ptOverrides, &settings), say);
            const auto report = engine.pretrainDomains(force, ptDomains);
            for (const auto& [k, v] : report) say("  val " + k + " " + std::to_string(v));
            return 0;
        }
        if (*imp && importPaths.size() != (source == "simple-shapes-folder" ? 2u : 1u))
            throw std::runtime_error(source == "simple-shapes-folder"
                                         ? "import simple-shapes-folder: expected DIR OUT.h5 (the folder written by shapesd create, then the output file)"
                                         : "import " + source + ": expected one output file, found " + std::to_string(importPaths.size()) + " paths");
        const std::string outFile = importPaths.empty() ? std::string() : importPaths.back();
        if (*imp && source == "simple-shapes-folder") {
            for (const char* only : {"--train", "--test", "--val", "--seed", "--from", "--no-captions"})
                if (imp->get_option(only)->count() > 0)
                    throw std::runtime_error(std::string("import simple-shapes-folder: ") + only +
                                             " is not an option of the folder import (the folder sets the splits)");
            gw::data::PublicFolderOptions fo;
            fo.force = shapesOpt.force;
            fo.threads = shapesOpt.threads;
            fo.text = !noText;
            return cmdSimpleShapesFolder(importPaths.front(), outFile, fo);
        }
        if (*imp && source == "simple-shapes") {
            shapesOpt.captions = !noCaptions;
            return cmdSimpleShapes(outFile, shapesOpt, imp->get_option("--val")->count() > 0, valCount);
        }
        if (*imp) {
            gw::data::importFashionMnist(sourceDir, outFile, imp->get_option("--val")->count() > 0 ? valCount : 5000, [](int done, int total) {
                std::cout << "\rwriting datasets " << done << "/" << total << std::flush;
            });
            std::cout << "\nwrote " << outFile << "\n";
            return 0;
        }
        if (*sweep) {
            return gw::runSweep(sw, [](const std::string& experiment, const std::string& resume,
                                       const std::vector<std::string>& ov, const std::string& out) {
                return cmdTrain(experiment, resume, ov, out);
            });
        }
        if (*exp) return cmdExport(exCkpt, exOut);
        if (*impw) return cmdImportWeights(iwState, iwExperiment, iwOut, keepDomains, iwForce, iwOverrides);
        if (*mig) return cmdMigrate(migPath);
        if (*glomImp) return cmdGlomImport(gState, gExperiment, gOut, gDomain, gToPixels, gForce, gOverrides);
        if (*glomExp) return cmdGlomExport(geCkpt, geOut, geDomain);
        if (*explore) return cmdExplore(exCheckpoint, exDir, exSplit, exSamples, exBroadcast);
        if (app.got_subcommand("devices")) return cmdDevices();
        if (*kinds) return cmdKinds(kindsMarkdown);
        if (*bench) return gw::runBench(bo);
    } catch (const std::exception& e) {
        const char* rank = std::getenv("RANK");
        const char* world = std::getenv("WORLD_SIZE");
        std::cerr << "gw: error: " << (rank && world && std::string(world) != "1" ? "rank " + std::string(rank) + ": " : "")
                  << e.what() << std::endl;
        return 1;
    }
    return 0;
}
}  // namespace

// A failed HDF5 close (a full disk) leaves HDF5 a state its clean-up at exit would fault on: end past it.
int main(int argc, char** argv) { return gw::data::endProcess(gwMain(argc, argv)); }
