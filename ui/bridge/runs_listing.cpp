// SPDX-License-Identifier: GPL-3.0-or-later
// The Runs panel's view of run and sweep folders (runs_listing.h). Torch-free, though it lives in the
// bridge target: it reads what model/run/runs.h and model/run/sweep.h write. The panel calls listRuns
// on a worker thread every 2 s: each file is read again only when its size or time changed, so a
// refresh of an unchanged folder is a directory walk and a few stat calls per run.
#include "ui/bridge/runs_listing.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>

#include <sys/stat.h>

#include "model/experiment/config.h"
#include "model/run/runs.h"
#include "model/run/sweep.h"

namespace gw::studio {
namespace fs = std::filesystem;

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

/// A file's identity for the caches: inode, size and modification time (one stat call). The engine
/// replaces status.yaml and config.yaml by a rename (a new inode) and appends to metrics.csv (a new
/// size and time).
struct Stamp {
    std::uintmax_t size = 0, inode = 0;
    std::int64_t time = 0;  ///< ns since the epoch
    bool operator==(const Stamp& o) const { return size == o.size && inode == o.inode && time == o.time; }
};
Stamp stampOf(const fs::path& p) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
    Stamp s;
    s.size = std::uintmax_t(st.st_size);
    s.inode = std::uintmax_t(st.st_ino);
    s.time = std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    return s;
}

using Flat = std::map<std::string, std::string>;

/// A YAML tree as dotted keys -> scalar text (lists in flow style).
void flatten(const YAML::Node& n, const std::string& prefix, Flat& out) {
    if (n.IsMap()) {
        for (const auto& kv : n) flatten(kv.second, prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(), out);
    } else if (n.IsSequence()) {
        YAML::Emitter e;
        e << YAML::Flow << n;
        out[prefix] = e.c_str();
    } else if (n.IsScalar()) {
        out[prefix] = n.Scalar();
    }
}

/// Keys that differ between any two runs without saying anything about the model: names and paths.
bool incidental(const std::string& k) {
    static const char* exact[] = {"name", "data.file", "data.import", "training.out"};
    for (const char* e : exact)
        if (k == e) return true;
    for (const char* suffix : {".file", ".weights", ".script", ".sha256"})
        if (k.size() > std::strlen(suffix) && k.compare(k.size() - std::strlen(suffix), std::string::npos, suffix) == 0) return true;
    return false;
}

bool sameValue(const std::string& a, const std::string& b) {
    if (a == b) return true;
    char* ea = nullptr;
    char* eb = nullptr;
    const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
    return ea && eb && *ea == 0 && *eb == 0 && !a.empty() && !b.empty() && x == y;
}

/// What the caches keep per file: its stamp when read and what was made of it. Slots are shared
/// pointers to constant data, so that a caller keeps what it was handed while another thread replaces
/// the slot.
template <class T>
struct Slot {
    Stamp stamp;
    std::shared_ptr<const T> value;
};

struct Cache {
    std::mutex mutex;
    std::map<std::string, Slot<QVector<QPair<QString, double>>>> finals;  // metrics.csv
    std::map<std::string, Slot<Flat>> configs;                           // config.yaml
    std::map<std::string, Slot<RunStatus>> statuses;                     // status.yaml
    std::map<std::string, Slot<std::pair<SweepSpec, std::vector<SweepPoint>>>> plans;  // plan.yaml
    /// RunEntry::differs of a config.yaml against one base: the config's slot and the base it was
    /// measured against (the same pointers: nothing changed).
    struct Differs {
        std::shared_ptr<const Flat> config, base;
        QStringList differs;
    };
    std::map<std::string, Differs> differs;
    /// The base experiment, flattened: the form's text, its folder and the settings file's stamp.
    std::string baseKey;
    std::shared_ptr<const Flat> base;
};
Cache& cache() {
    static Cache c;
    return c;
}

/// The slot's value when the file's stamp is unchanged, else `read()` of it, kept under the new stamp
/// when `keep` says so. `read` runs without the lock, so that two threads may read files at once.
template <class T, class Read, class Keep>
std::shared_ptr<const T> cached(std::map<std::string, Slot<T>>& slots, const fs::path& file, Read read, Keep keep) {
    const Stamp st = stampOf(file);
    {
        std::lock_guard<std::mutex> lock(cache().mutex);
        auto it = slots.find(file.string());
        if (it != slots.end() && it->second.stamp == st && st.size > 0) return it->second.value;
    }
    auto value = std::make_shared<const T>(read());
    if (keep(*value)) {
        std::lock_guard<std::mutex> lock(cache().mutex);
        slots[file.string()] = {st, value};
    }
    return value;
}

std::shared_ptr<const QVector<QPair<QString, double>>> finalsOf(const fs::path& csv) {
    return cached(
        cache().finals, csv,
        [&] {
            QVector<QPair<QString, double>> out;
            QHash<QString, int> at;
            std::ifstream in(csv);
            std::string line;
            std::getline(in, line);
            while (std::getline(in, line)) {
                const auto a = line.find(','), b = line.rfind(',');
                if (a == std::string::npos || b == a) continue;
                const QString metric = q(line.substr(a + 1, b - a - 1));
                const double v = std::strtod(line.c_str() + b + 1, nullptr);
                if (auto it = at.find(metric); it != at.end()) out[*it].second = v;
                else at.insert(metric, int(out.size())), out.push_back({metric, v});
            }
            return out;
        },
        [](const auto&) { return true; });
}

std::shared_ptr<const Flat> configOf(const fs::path& file) {
    return cached(
        cache().configs, file,
        [&] {
            Flat f;
            try {
                flatten(YAML::LoadFile(file.string()), "", f);
            } catch (const std::exception&) {
                f.clear();
            }
            return f;
        },
        [](const auto&) { return true; });
}

/// readRunStatus, kept per status.yaml stamp except while it says "running" (readRunStatus then asks
/// whether the process is still there, which the file's stamp does not tell).
RunStatus statusOf(const fs::path& dir) {
    return *cached(
        cache().statuses, dir / "status.yaml", [&] { return readRunStatus(dir.string()); },
        [](const RunStatus& s) { return s.state != "running" && s.state != "interrupted"; });
}

QStringList differsOf(const fs::path& config, const std::shared_ptr<const Flat>& base) {
    const auto own = configOf(config);
    {
        std::lock_guard<std::mutex> lock(cache().mutex);
        auto it = cache().differs.find(config.string());
        if (it != cache().differs.end() && it->second.config == own && it->second.base == base) return it->second.differs;
    }
    QStringList out;
    for (const auto& [k, v] : *own) {
        if (incidental(k)) continue;
        auto it = base->find(k);
        if (it == base->end() || !sameValue(it->second, v)) out << q(k + "=" + v);
    }
    std::lock_guard<std::mutex> lock(cache().mutex);
    cache().differs[config.string()] = {own, base, out};
    return out;
}

RunEntry readRun(const fs::path& dir, const std::shared_ptr<const Flat>& base) {
    RunEntry r;
    r.dir = q(dir.string());
    r.name = q(dir.filename().string());
    const RunStatus st = statusOf(dir);
    r.state = q(st.state);
    r.step = st.step;
    r.totalSteps = st.totalSteps;
    r.error = q(st.error);
    r.finals = *finalsOf(dir / "metrics.csv");
    if (base && !base->empty()) r.differs = differsOf(dir / "config.yaml", base);
    return r;
}

fs::file_time_type newest(const fs::path& dir) {
    std::error_code ec;
    auto t = fs::last_write_time(dir / "metrics.csv", ec);
    if (ec) t = fs::last_write_time(dir / "config.yaml", ec);
    return ec ? fs::file_time_type{} : t;
}

SweepEntry readSweepFolder(const fs::path& dir) {
    SweepEntry s;
    s.dir = q(dir.string());
    s.name = q(dir.filename().string());
    // A bad plan.yaml throws (the caller lists it as a problem) and is not kept.
    const auto plan = cached(
        cache().plans, dir / "plan.yaml", [&] { return readPlan(dir.string()); }, [](const auto&) { return true; });
    const auto& [spec, points] = *plan;
    for (const auto& a : spec.axes) s.axes << q(a.key);
    for (const auto& p : points) {
        QHash<QString, QString> vals;
        QStringList differs;
        for (const auto& [k, v] : p.values) vals.insert(q(k), q(v)), differs << q(k + "=" + v);
        const fs::path run = sweepRunDir(spec.folder, p);
        RunEntry r;
        std::error_code ec;
        if (fs::exists(run / "config.yaml", ec) || fs::exists(run / "status.yaml", ec)) {
            r = readRun(run, {});
        } else {
            r.dir = q(run.string());
            r.name = q(p.name);
            r.state = "pending";
        }
        if (r.state.isEmpty()) r.state = "pending";
        r.sweep = s.name;
        r.differs = differs;
        s.values.push_back(vals);
        s.points.push_back(r);
    }
    return s;
}

}  // namespace

RunsListing listRuns(const QString& folder, const QString& baseYaml, const QString& baseDir) {
    RunsListing out;
    out.folder = folder;
    std::shared_ptr<const Flat> base;
    if (!baseYaml.isEmpty()) {
        // Parsed once per text, folder and settings file, not on each refresh.
        const std::string settingsPath = userSettingsPath();
        const Stamp st = stampOf(settingsPath);
        const std::string key = baseYaml.toStdString() + '\0' + baseDir.toStdString() + '\0' + settingsPath + '\0' +
                                std::to_string(st.size) + '\0' + std::to_string(st.time) + '\0' + std::to_string(st.inode);
        {
            std::lock_guard<std::mutex> lock(cache().mutex);
            if (cache().baseKey == key) base = cache().base;
        }
        if (!base) {
            Flat flat;
            try {
                const UserSettings settings = loadUserSettings(settingsPath);
                flatten(YAML::Load(experimentToYaml(parseExperiment(baseYaml.toStdString(), "experiment", {}, baseDir.toStdString(), &settings))), "", flat);
            } catch (const std::exception&) {
                flat.clear();
            }
            base = std::make_shared<const Flat>(std::move(flat));
            std::lock_guard<std::mutex> lock(cache().mutex);
            cache().baseKey = key;
            cache().base = base;
        }
    }
    std::vector<std::pair<fs::file_time_type, RunEntry>> runs;
    std::error_code ec;
    auto visit = [&](const fs::path& dir, int depth, auto&& self) -> void {
        std::error_code e2;
        for (fs::directory_iterator it(dir, e2), end; !e2 && it != end; it.increment(e2)) {
            const fs::path p = it->path();
            if (!it->is_directory(e2) || p.filename().string().rfind('.', 0) == 0) continue;
            try {
                if (fs::exists(p / "plan.yaml", e2)) {
                    out.sweeps.push_back(readSweepFolder(p));
                } else if (fs::exists(p / "config.yaml", e2)) {
                    runs.emplace_back(newest(p), readRun(p, base));
                } else if (depth == 0) {
                    self(p, 1, self);
                }
            } catch (const std::exception& e) {
                out.problems << q(p.string() + ": " + e.what());
            }
        }
        if (e2 && depth == 0) out.problems << q(dir.string() + ": " + e2.message());
    };
    if (!fs::is_directory(folder.toStdString(), ec)) {
        out.problems << folder + ": no such folder";
        return out;
    }
    visit(fs::path(folder.toStdString()), 0, visit);
    std::stable_sort(runs.begin(), runs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (auto& [t, r] : runs) out.runs.push_back(std::move(r));
    std::sort(out.sweeps.begin(), out.sweeps.end(), [](const SweepEntry& a, const SweepEntry& b) { return a.name < b.name; });
    return out;
}

QHash<QString, QPair<QVector<double>, QVector<double>>> readRunCurves(const QString& runDir, QString* error) {
    QHash<QString, QPair<QVector<double>, QVector<double>>> out;
    const std::string path = (fs::path(runDir.toStdString()) / "metrics.csv").string();
    std::ifstream in(path);
    if (!in) {
        if (error) *error = q(path + ": cannot read it");
        return out;
    }
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        const auto a = line.find(','), b = line.rfind(',');
        if (a == std::string::npos || b == a) continue;
        auto& c = out[q(line.substr(a + 1, b - a - 1))];
        c.first.push_back(std::strtod(line.c_str(), nullptr));
        c.second.push_back(std::strtod(line.c_str() + b + 1, nullptr));
    }
    return out;
}

QString defaultRunsFolder(const QString& yaml, const QString& baseDir) {
    try {
        const UserSettings settings = loadUserSettings(userSettingsPath());
        if (!settings.runsDir.empty()) return q(settings.runsDir);
        const ExperimentConfig cfg = parseExperiment(yaml.toStdString(), "experiment", {}, baseDir.toStdString(), &settings);
        const std::string out = cfg.resolvePath(cfg.outDir);
        if (writableFolder(out)) return q(fs::absolute(out).lexically_normal().string());
        return q((fs::path(userDataDir()) / "runs").string());
    } catch (const std::exception&) {
        return q((fs::absolute(baseDir.isEmpty() ? "." : baseDir.toStdString()) / "runs").lexically_normal().string());
    }
}

}  // namespace gw::studio
