// SPDX-License-Identifier: GPL-3.0-or-later
// The Runs panel's view of run and sweep folders (runs_listing.h). Torch-free, though it lives in the
// bridge target: it reads what model/run/runs.h and model/run/sweep.h write.
#include "ui/bridge/runs_listing.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "model/experiment/config.h"
#include "model/run/runs.h"
#include "model/run/sweep.h"

namespace gw::studio {
namespace fs = std::filesystem;

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

/// A file's identity for the caches: size and modification time.
struct Stamp {
    std::uintmax_t size = 0;
    fs::file_time_type time{};
    bool operator==(const Stamp& o) const { return size == o.size && time == o.time; }
};
Stamp stampOf(const fs::path& p) {
    std::error_code ec;
    Stamp s;
    s.size = fs::file_size(p, ec);
    if (ec) return {};
    s.time = fs::last_write_time(p, ec);
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

struct Cache {
    std::mutex mutex;
    std::map<std::string, std::pair<Stamp, QVector<QPair<QString, double>>>> finals;  // metrics.csv
    std::map<std::string, std::pair<Stamp, Flat>> configs;                           // config.yaml
};
Cache& cache() {
    static Cache c;
    return c;
}

QVector<QPair<QString, double>> finalsOf(const fs::path& csv) {
    const Stamp st = stampOf(csv);
    std::lock_guard<std::mutex> lock(cache().mutex);
    auto& slot = cache().finals[csv.string()];
    if (slot.first == st && st.size > 0) return slot.second;
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
    slot = {st, out};
    return out;
}

const Flat* configOf(const fs::path& file) {
    const Stamp st = stampOf(file);
    std::lock_guard<std::mutex> lock(cache().mutex);
    auto& slot = cache().configs[file.string()];
    if (!(slot.first == st) || st.size == 0) {
        Flat f;
        try {
            flatten(YAML::LoadFile(file.string()), "", f);
        } catch (const std::exception&) {
            f.clear();
        }
        slot = {st, f};
    }
    return &slot.second;
}

RunEntry readRun(const fs::path& dir, const Flat* base) {
    RunEntry r;
    r.dir = q(dir.string());
    r.name = q(dir.filename().string());
    const RunStatus st = readRunStatus(dir.string());
    r.state = q(st.state);
    r.step = st.step;
    r.totalSteps = st.totalSteps;
    r.error = q(st.error);
    r.finals = finalsOf(dir / "metrics.csv");
    if (base && !base->empty()) {
        const Flat* own = configOf(dir / "config.yaml");
        for (const auto& [k, v] : *own) {
            if (incidental(k)) continue;
            auto it = base->find(k);
            if (it == base->end() || !sameValue(it->second, v)) r.differs << q(k + "=" + v);
        }
    }
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
    const auto [spec, points] = readPlan(dir.string());
    for (const auto& a : spec.axes) s.axes << q(a.key);
    for (const auto& p : points) {
        QHash<QString, QString> vals;
        QStringList differs;
        for (const auto& [k, v] : p.values) vals.insert(q(k), q(v)), differs << q(k + "=" + v);
        const fs::path run = sweepRunDir(spec.folder, p);
        RunEntry r;
        std::error_code ec;
        if (fs::exists(run / "config.yaml", ec) || fs::exists(run / "status.yaml", ec)) {
            r = readRun(run, nullptr);
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
    Flat base;
    if (!baseYaml.isEmpty()) {
        try {
            const UserSettings settings = loadUserSettings(userSettingsPath());
            flatten(YAML::Load(experimentToYaml(parseExperiment(baseYaml.toStdString(), "experiment", {}, baseDir.toStdString(), &settings))), "", base);
        } catch (const std::exception&) {
            base.clear();
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
                    runs.emplace_back(newest(p), readRun(p, &base));
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
