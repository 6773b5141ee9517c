// SPDX-License-Identifier: GPL-3.0-or-later
// Sweep files, their expansion into points, the sweep folder's plan.yaml and summary.csv.
#include "model/run/sweep.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <sys/stat.h>

#include "data/atomic_file.h"
#include "model/run/runs.h"
#include "model/experiment/yaml_file.h"

namespace gw {
namespace fs = std::filesystem;

namespace {

std::string shown(const YAML::Node& n) {
    if (!n || n.IsNull()) return "nothing";
    if (n.IsScalar()) return "'" + n.Scalar() + "'";
    return n.IsSequence() ? "a list" : "a mapping";
}

/// A number as a short YAML scalar: whole numbers without a point, others with up to 10 digits.
std::string number(double v) {
    if (std::isfinite(v) && std::fabs(v) < 1e15 && v == std::floor(v)) return std::to_string(static_cast<long long>(v));
    char b[40];
    std::snprintf(b, sizeof b, "%.10g", v);
    return b;
}

class Reader {
public:
    Reader(YAML::Node node, std::string where, std::string file) : n_(std::move(node)), where_(std::move(where)), file_(std::move(file)) {
        if (n_ && !n_.IsNull() && !n_.IsMap()) fail("", "a mapping", shown(n_));
    }
    [[noreturn]] void fail(const std::string& key, const std::string& expected, const std::string& found) const {
        std::string k = where_.empty() ? key : (key.empty() ? where_ : where_ + "." + key);
        if (k.empty()) k = "(top level)";
        throw ConfigError(file_ + ": " + k + ": expected " + expected + ", found " + found);
    }
    YAML::Node get(const std::string& key) {
        seen_.insert(key);
        return n_ && n_.IsMap() ? n_[key] : YAML::Node();
    }
    bool has(const std::string& key) { return get(key).IsDefined() && !get(key).IsNull(); }
    std::string str(const std::string& key, const std::string& def = "") {
        const YAML::Node v = get(key);
        if (!v || v.IsNull()) return def;
        if (!v.IsScalar()) fail(key, "a string", shown(v));
        return v.Scalar();
    }
    double num(const std::string& key, double def) {
        const YAML::Node v = get(key);
        if (!v || v.IsNull()) return def;
        try {
            if (v.IsScalar()) return v.as<double>();
        } catch (const YAML::Exception&) {
        }
        fail(key, "a number", shown(v));
    }
    int64_t whole(const std::string& key, int64_t def, int64_t min) {
        const double d = num(key, static_cast<double>(def));
        if (d != std::floor(d) || d < static_cast<double>(min))
            fail(key, "a whole number >= " + std::to_string(min), shown(get(key)));
        return static_cast<int64_t>(d);
    }
    bool flag(const std::string& key, bool def) {
        const YAML::Node v = get(key);
        if (!v || v.IsNull()) return def;
        try {
            if (v.IsScalar()) return v.as<bool>();
        } catch (const YAML::Exception&) {
        }
        fail(key, "true or false", shown(v));
    }
    std::vector<std::string> list(const std::string& key) {
        const YAML::Node v = get(key);
        std::vector<std::string> out;
        if (!v || v.IsNull()) return out;
        if (v.IsScalar()) return {v.Scalar()};
        if (!v.IsSequence()) fail(key, "a list of strings", shown(v));
        for (const auto& i : v) {
            if (!i.IsScalar()) fail(key, "a list of strings", "an item that is " + shown(i));
            out.push_back(i.Scalar());
        }
        return out;
    }
    void finish() const {
        if (!n_ || !n_.IsMap()) return;
        for (const auto& kv : n_) {
            const std::string k = kv.first.as<std::string>();
            if (seen_.count(k)) continue;
            std::string known;
            for (const auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
            throw ConfigError(file_ + ": " + (where_.empty() ? k : where_ + "." + k) + ": unknown key (known keys here: " + known + ")");
        }
    }

private:
    YAML::Node n_;
    std::string where_, file_;
    std::set<std::string> seen_;
};

/// A mapping of named variants: every value a mapping of overrides (or empty), and none of the range
/// keys among the names.
bool isVariantAxis(const YAML::Node& v) {
    for (const auto& kv : v) {
        const std::string k = kv.first.as<std::string>();
        if (k == "start" || k == "stop" || k == "step" || k == "num" || k == "log" || k == "low" || k == "high") return false;
        if (!kv.second.IsMap() && !kv.second.IsNull()) return false;
    }
    return v.size() > 0;
}

/// One axis from its YAML: a list of values, a range mapping, or a mapping of named variants.
SweepAxis readAxis(const std::string& key, const YAML::Node& v, bool random, const std::string& file) {
    SweepAxis a;
    a.key = key;
    const std::string where = "axes." + key;
    if (v.IsScalar()) {
        a.values.push_back(v.Scalar());
    } else if (v.IsSequence()) {
        for (const auto& i : v) {
            if (!i.IsScalar()) throw ConfigError(file + ": " + where + ": expected scalar values, found " + shown(i) + " in the list");
            a.values.push_back(i.Scalar());
        }
    } else if (v.IsMap() && isVariantAxis(v)) {
        for (const auto& kv : v) {
            const std::string name = kv.first.as<std::string>();
            if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") != std::string::npos)
                throw ConfigError(file + ": " + where + "." + name + ": expected a variant name of letters, digits and ._+-, found '" + name + "'");
            std::vector<std::string> set;
            if (kv.second.IsMap())
                for (const auto& o : kv.second) {
                    if (!o.second.IsScalar())
                        throw ConfigError(file + ": " + where + "." + name + "." + o.first.as<std::string>() +
                                          ": expected a scalar value, found " + shown(o.second));
                    set.push_back(o.first.as<std::string>() + "=" + o.second.Scalar());
                }
            a.values.push_back(name);
            a.variants.push_back(std::move(set));
        }
        return a;
    } else if (v.IsMap()) {
        Reader r(v, where, file);
        if (random && r.has("low")) {
            a.range = true;
            a.low = r.num("low", 0);
            a.high = r.num("high", std::nan(""));
            if (!r.has("high")) r.fail("high", "a number (the range's upper bound)", "nothing");
            a.log = r.flag("log", false);
            if (!(a.high >= a.low)) r.fail("high", "a number >= low (" + number(a.low) + ")", number(a.high));
            if (a.log && !(a.low > 0)) r.fail("low", "a number > 0 for a log range", number(a.low));
            a.integer = !a.log && a.low == std::floor(a.low) && a.high == std::floor(a.high) &&
                        r.get("low").Scalar().find_first_of(".eE") == std::string::npos &&
                        r.get("high").Scalar().find_first_of(".eE") == std::string::npos;
            r.finish();
            return a;
        }
        if (!r.has("start") || !r.has("stop"))
            r.fail("", random ? "a list of values, {low, high[, log]} or {start, stop[, step | num[, log]]}"
                              : "a list of values or {start, stop[, step | num[, log]]}",
                   "a mapping without start and stop");
        const double start = r.num("start", 0), stop = r.num("stop", 0);
        if (r.has("num")) {
            const int64_t num = r.whole("num", 2, 1);
            const bool lg = r.flag("log", false);
            if (lg && !(start > 0 && stop > 0)) r.fail("start", "numbers > 0 for a log range", number(start) + " .. " + number(stop));
            for (int64_t i = 0; i < num; ++i) {
                const double t = num == 1 ? 0.0 : static_cast<double>(i) / static_cast<double>(num - 1);
                const double x = lg ? std::exp(std::log(start) + t * (std::log(stop) - std::log(start))) : start + t * (stop - start);
                a.values.push_back(number(i == num - 1 ? stop : x));
            }
        } else {
            const double step = r.num("step", 1);
            if (step == 0 || !std::isfinite(step)) r.fail("step", "a number other than 0", number(step));
            for (int64_t i = 0;; ++i) {
                const double x = start + static_cast<double>(i) * step;
                if ((step > 0 && x >= stop - 1e-12 * std::fabs(step)) || (step < 0 && x <= stop + 1e-12 * std::fabs(step))) break;
                if (i >= 100000) r.fail("", "at most 100,000 values", "more");
                a.values.push_back(number(x));
            }
        }
        r.finish();
    } else {
        throw ConfigError(file + ": " + where + ": expected a list of values or a range, found " + shown(v));
    }
    if (a.values.empty())
        throw ConfigError(file + ": " + where + ": expected at least one value, found an empty " + (v.IsMap() ? "range" : "list"));
    return a;
}

/// A sweep's `slurm:` mapping (the sweep file's, or plan.yaml's copy).
SlurmOptions readSlurm(const YAML::Node& node, const std::string& path) {
    Reader sl(node, "slurm", path);
    SlurmOptions o;
    o.partition = sl.str("partition");
    o.time = sl.str("time");
    o.cpusPerTask = static_cast<int>(sl.whole("cpus_per_task", 0, 0));
    o.gpus = static_cast<int>(sl.whole("gpus", 0, 0));
    o.mem = sl.str("mem");
    o.account = sl.str("account");
    o.qos = sl.str("qos");
    o.maxParallel = static_cast<int>(sl.whole("max_parallel", 0, 0));
    o.extra = sl.list("extra");
    sl.finish();
    return o;
}

/// Folder-name safe: letters, digits, '.', '_', '+', '-'; anything else becomes '_'.
std::string safe(const std::string& s) {
    std::string out;
    for (char ch : s.substr(0, 40)) out += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '+' || ch == '-') ? ch : '_';
    return out.empty() ? "_" : out;
}

std::string csvField(const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
}

}  // namespace

std::vector<std::string> SweepPoint::overrides(const SweepSpec& spec) const {
    std::vector<std::string> o = spec.overrides;
    for (const auto& [k, v] : values) {
        const std::vector<std::string>* set = nullptr;
        for (const auto& [axis, overrides] : sets)
            if (axis == k) set = &overrides;
        if (set) o.insert(o.end(), set->begin(), set->end());
        else o.push_back(k + "=" + v);
    }
    return o;
}

SweepSpec loadSweep(const std::string& path, const std::vector<std::string>& extraOverrides, const std::string& outFolder) {
    const YAML::Node root = detail::loadYamlFile(path, "sweep file");
    SweepSpec s;
    s.path = path;
    const fs::path dir = fs::absolute(fs::path(path)).parent_path();
    auto absolute = [&](const std::string& p) {
        std::string e = p;
        if (!e.empty() && e[0] == '~') {
            const char* home = std::getenv("HOME");
            e = std::string(home ? home : "") + e.substr(1);
        }
        const fs::path f(e);
        return (f.is_absolute() ? f : dir / f).lexically_normal().string();
    };
    Reader r(root, "", path);
    s.name = r.str("name", fs::path(path).stem().string());
    if (s.name.empty() || s.name.find('/') != std::string::npos || s.name == "." || s.name == "..")
        r.fail("name", "a folder name (no '/')", "'" + s.name + "'");
    const std::string exp = r.str("experiment");
    if (exp.empty()) r.fail("experiment", "the base experiment file", "nothing");
    s.experiment = absolute(exp);
    s.overrides = r.list("overrides");
    s.overrides.insert(s.overrides.end(), extraOverrides.begin(), extraOverrides.end());
    s.method = r.str("method", "grid");
    if (s.method != "grid" && s.method != "random") r.fail("method", "grid or random", "'" + s.method + "'");
    const bool random = s.method == "random";
    if (random) {
        if (!r.has("count")) r.fail("count", "the number of points to draw (random sweeps)", "nothing");
        s.count = r.whole("count", 0, 1);
        s.seed = static_cast<uint64_t>(r.whole("seed", 0, 0));
    } else {
        if (r.has("count")) r.fail("count", "nothing (count is for method: random)", shown(r.get("count")));
        if (r.has("seed")) r.fail("seed", "nothing (seed is for method: random; sweep the experiment's seed as an axis)", shown(r.get("seed")));
    }
    const YAML::Node axes = r.get("axes");
    if (!axes || !axes.IsMap() || axes.size() == 0)
        r.fail("axes", "a mapping of dotted experiment keys to values", shown(axes));
    for (const auto& kv : axes) {
        const std::string key = kv.first.as<std::string>();
        for (const auto& a : s.axes)
            if (a.key == key) throw ConfigError(path + ": axes." + key + ": the key is swept twice");
        s.axes.push_back(readAxis(key, kv.second, random, path));
    }
    const std::string out = r.str("out", "sweeps");
    s.folder = (fs::path(outFolder.empty() ? absolute(out) : fs::absolute(outFolder).lexically_normal().string()) / s.name).string();
    s.slurm = readSlurm(r.get("slurm"), path);
    r.finish();
    return s;
}

std::vector<SweepPoint> expandSweep(const SweepSpec& spec) {
    std::vector<std::vector<std::pair<std::string, std::string>>> combos;
    if (spec.method == "random") {
        std::mt19937_64 gen(spec.seed);
        auto uniform = [&] { return static_cast<double>(gen() >> 11) * (1.0 / 9007199254740992.0); };  // [0, 1)
        for (int64_t i = 0; i < spec.count; ++i) {
            std::vector<std::pair<std::string, std::string>> c;
            for (const auto& a : spec.axes) {
                std::string v;
                if (!a.range) {
                    v = a.values[std::min(a.values.size() - 1, static_cast<size_t>(uniform() * static_cast<double>(a.values.size())))];
                } else if (a.integer) {
                    const double n = a.high - a.low + 1;
                    v = number(a.low + std::min(n - 1, std::floor(uniform() * n)));
                } else if (a.log) {
                    v = number(std::exp(std::log(a.low) + uniform() * (std::log(a.high) - std::log(a.low))));
                } else {
                    v = number(a.low + uniform() * (a.high - a.low));
                }
                c.emplace_back(a.key, v);
            }
            combos.push_back(std::move(c));
        }
    } else {
        combos.push_back({});
        for (const auto& a : spec.axes) {
            std::vector<std::vector<std::pair<std::string, std::string>>> next;
            for (const auto& c : combos)
                for (const auto& v : a.values) {
                    auto d = c;
                    d.emplace_back(a.key, v);
                    next.push_back(std::move(d));
                }
            combos = std::move(next);
        }
    }
    // Short names: each axis's last key part, unless two axes share it.
    auto lastPart = [](std::string k) {
        while (!k.empty() && (k[0] == '+' || k[0] == '~')) k.erase(0, 1);
        const auto dot = k.rfind('.');
        return dot == std::string::npos ? k : k.substr(dot + 1);
    };
    std::map<std::string, int> uses;
    for (const auto& a : spec.axes) ++uses[lastPart(a.key)];
    const int width = std::max<int>(3, static_cast<int>(std::to_string(combos.empty() ? 0 : combos.size() - 1).size()));
    std::vector<SweepPoint> points;
    for (size_t i = 0; i < combos.size(); ++i) {
        SweepPoint p;
        p.index = static_cast<int>(i);
        p.values = combos[i];
        for (const auto& a : spec.axes)
            for (size_t v = 0; v < a.variants.size(); ++v)
                for (const auto& [k, val] : p.values)
                    if (k == a.key && val == a.values[v]) p.sets.emplace_back(a.key, a.variants[v]);
        std::string name = std::to_string(i);
        if (name.size() < static_cast<size_t>(width)) name.insert(0, static_cast<size_t>(width) - name.size(), '0');
        name += "-";
        for (size_t j = 0; j < p.values.size(); ++j) {
            const std::string& k = p.values[j].first;
            std::string label = uses[lastPart(k)] > 1 ? k : lastPart(k);
            while (!label.empty() && (label[0] == '+' || label[0] == '~')) label.erase(0, 1);
            name += (j ? "," : "") + safe(label) + "=" + safe(p.values[j].second);
        }
        p.name = name.substr(0, 200);
        points.push_back(std::move(p));
    }
    return points;
}

void checkSweepPoints(const SweepSpec& spec, const std::vector<SweepPoint>& points, const UserSettings* settings) {
    std::error_code ec;
    if (!fs::is_regular_file(spec.experiment, ec))
        throw ConfigError(spec.path + ": experiment: expected an experiment file, found nothing at " + spec.experiment);
    for (const auto& p : points) {
        try {
            loadExperiment(spec.experiment, p.overrides(spec), settings);
        } catch (const ConfigError& e) {
            throw ConfigError(spec.path + ": point " + std::to_string(p.index) + " (" + p.name + "): " + e.what());
        }
    }
}

std::string sweepPlanPath(const std::string& folder) { return (fs::path(folder) / "plan.yaml").string(); }
std::string sweepSummaryPath(const std::string& folder) { return (fs::path(folder) / "summary.csv").string(); }
std::string sweepRunDir(const std::string& folder, const SweepPoint& point) {
    return (fs::path(folder) / "runs" / point.name).string();
}

namespace {
std::string planYaml(const SweepSpec& s, const std::vector<SweepPoint>& points) {
    YAML::Emitter e;
    e << YAML::Comment("The sweep as planned: gw sweep reads it back; edit the sweep file, not this");
    e << YAML::BeginMap;
    e << YAML::Key << "sweep_file" << YAML::Value << fs::absolute(s.path).lexically_normal().string();
    e << YAML::Key << "name" << YAML::Value << s.name;
    e << YAML::Key << "experiment" << YAML::Value << s.experiment;
    e << YAML::Key << "overrides" << YAML::Value << YAML::Flow << s.overrides;
    e << YAML::Key << "method" << YAML::Value << s.method;
    if (s.method == "random") {
        e << YAML::Key << "count" << YAML::Value << s.count;
        e << YAML::Key << "seed" << YAML::Value << s.seed;
    }
    e << YAML::Key << "axes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& a : s.axes) e << a.key;
    e << YAML::EndSeq;
    e << YAML::Key << "slurm" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "partition" << YAML::Value << s.slurm.partition;
    e << YAML::Key << "time" << YAML::Value << s.slurm.time;
    e << YAML::Key << "cpus_per_task" << YAML::Value << s.slurm.cpusPerTask;
    e << YAML::Key << "gpus" << YAML::Value << s.slurm.gpus;
    e << YAML::Key << "mem" << YAML::Value << s.slurm.mem;
    e << YAML::Key << "account" << YAML::Value << s.slurm.account;
    e << YAML::Key << "qos" << YAML::Value << s.slurm.qos;
    e << YAML::Key << "max_parallel" << YAML::Value << s.slurm.maxParallel;
    e << YAML::Key << "extra" << YAML::Value << YAML::Flow << s.slurm.extra;
    e << YAML::EndMap;
    e << YAML::Key << "points" << YAML::Value << YAML::BeginSeq;
    for (const auto& p : points) {
        e << YAML::Flow << YAML::BeginMap << YAML::Key << "index" << YAML::Value << p.index << YAML::Key << "name" << YAML::Value
          << p.name << YAML::Key << "values" << YAML::Value << YAML::BeginMap;
        for (const auto& [k, v] : p.values) e << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
        e << YAML::EndMap;
        if (!p.sets.empty()) {
            e << YAML::Key << "sets" << YAML::Value << YAML::BeginMap;
            for (const auto& [k, o] : p.sets) e << YAML::Key << k << YAML::Value << YAML::Flow << o;
            e << YAML::EndMap;
        }
        e << YAML::EndMap;
    }
    e << YAML::EndSeq << YAML::EndMap;
    return std::string(e.c_str()) + "\n";
}
}  // namespace

std::pair<SweepSpec, std::vector<SweepPoint>> readPlan(const std::string& folder) {
    const std::string path = sweepPlanPath(folder);
    std::error_code ec;
    if (!fs::exists(path, ec)) throw ConfigError(path + ": no sweep plan here (is " + folder + " a sweep folder?)");
    YAML::Node root;
    try {
        root = YAML::LoadFile(path);
    } catch (const YAML::Exception& e) {
        throw ConfigError(path + ": not valid YAML: " + e.what());
    }
    SweepSpec s;
    std::vector<SweepPoint> points;
    Reader r(root, "", path);
    s.path = r.str("sweep_file");
    s.name = r.str("name");
    s.experiment = r.str("experiment");
    s.overrides = r.list("overrides");
    s.method = r.str("method", "grid");
    s.count = r.whole("count", 0, 0);
    s.seed = static_cast<uint64_t>(r.whole("seed", 0, 0));
    for (const auto& k : r.list("axes")) {
        SweepAxis a;
        a.key = k;
        s.axes.push_back(a);
    }
    s.slurm = readSlurm(r.get("slurm"), path);
    const YAML::Node ps = r.get("points");
    if (!ps || !ps.IsSequence() || ps.size() == 0) r.fail("points", "a list of points", shown(ps));
    for (const auto& n : ps) {
        Reader pr(n, "points[" + std::to_string(points.size()) + "]", path);
        SweepPoint p;
        p.index = static_cast<int>(pr.whole("index", -1, 0));
        if (p.index != static_cast<int>(points.size())) pr.fail("index", std::to_string(points.size()), shown(pr.get("index")));
        p.name = pr.str("name");
        if (p.name.empty() || p.name.find('/') != std::string::npos || p.name == "." || p.name == "..")
            pr.fail("name", "a folder name", "'" + p.name + "'");
        const YAML::Node v = pr.get("values");
        if (v && v.IsMap())
            for (const auto& kv : v) p.values.emplace_back(kv.first.as<std::string>(), kv.second.IsScalar() ? kv.second.Scalar() : "");
        if (const YAML::Node sets = pr.get("sets"); sets && sets.IsMap())
            for (const auto& kv : sets) {
                std::vector<std::string> o;
                if (kv.second.IsSequence())
                    for (const auto& x : kv.second) o.push_back(x.IsScalar() ? x.Scalar() : "");
                p.sets.emplace_back(kv.first.as<std::string>(), o);
            }
        pr.finish();
        points.push_back(std::move(p));
    }
    r.finish();
    s.folder = fs::absolute(folder).lexically_normal().string();
    return {s, points};
}

void writeOrCheckPlan(const SweepSpec& spec, const std::vector<SweepPoint>& points) {
    const std::string path = sweepPlanPath(spec.folder);
    std::error_code ec;
    if (fs::exists(path, ec)) {
        const auto [old, oldPoints] = readPlan(spec.folder);
        const std::string hint = "; give the sweep another name (name: or --out), or remove the folder";
        if (old.experiment != spec.experiment)
            throw ConfigError(path + ": this sweep folder was planned for " + old.experiment + ", not " + spec.experiment + hint);
        auto list = [](const std::vector<std::string>& v) {
            std::string s;
            for (const auto& o : v) s += (s.empty() ? "" : " ") + o;
            return s.empty() ? std::string("none") : s;
        };
        if (old.overrides != spec.overrides)
            throw ConfigError(path + ": this sweep folder was planned with the overrides '" + list(old.overrides) +
                              "', the sweep now gives '" + list(spec.overrides) + "'" + hint);
        if (oldPoints.size() != points.size())
            throw ConfigError(path + ": this sweep folder was planned with " + std::to_string(oldPoints.size()) +
                              " points, the sweep file now gives " + std::to_string(points.size()) + hint);
        for (size_t i = 0; i < points.size(); ++i)
            if (oldPoints[i].name != points[i].name || oldPoints[i].values != points[i].values || oldPoints[i].sets != points[i].sets)
                throw ConfigError(path + ": point " + std::to_string(i) + " was planned as '" + oldPoints[i].name +
                                  "', the sweep file now gives '" + points[i].name + "'" + hint);
        // The Slurm settings may change between submissions: keep the newest.
    }
    writeFileAtomically(path, planYaml(spec, points));
}

namespace {

/// What sweepRows knows of a point's metrics.csv: the file it read (inode, size and time when read), how
/// many bytes of it (whole lines) and the last value of each metric in them, in first-seen order.
struct FinalsRead {
    std::uint64_t inode = 0, size = 0, used = 0;
    std::int64_t time = 0;
    std::vector<std::pair<std::string, double>> finals;
};

/// SWEEP_DIR/.finals-cache: FinalsRead per point name, so that --status and each point's end read only
/// the metrics.csv bytes written since. A line "NAME\tINODE\tSIZE\tUSED\tTIME\tCOUNT", then COUNT lines
/// "METRIC\tVALUE". Anything unreadable is an empty cache (every file read whole).
std::string finalsCachePath(const std::string& folder) { return (fs::path(folder) / ".finals-cache").string(); }

std::map<std::string, FinalsRead> readFinalsCache(const std::string& folder) {
    std::map<std::string, FinalsRead> out;
    std::ifstream in(finalsCachePath(folder));
    std::string line;
    if (!std::getline(in, line) || line != "gw-sweep-finals 1") return {};
    while (std::getline(in, line)) {
        std::istringstream head(line);
        std::string name;
        FinalsRead f;
        size_t count = 0;
        if (!std::getline(head, name, '\t') || !(head >> f.inode >> f.size >> f.used >> f.time >> count)) return {};
        for (size_t i = 0; i < count; ++i) {
            if (!std::getline(in, line)) return {};
            const auto tab = line.rfind('\t');
            if (tab == std::string::npos) return {};
            char* end = nullptr;
            const double v = std::strtod(line.c_str() + tab + 1, &end);
            f.finals.emplace_back(line.substr(0, tab), v);
        }
        out[name] = std::move(f);
    }
    return out;
}

void writeFinalsCache(const std::string& folder, const std::map<std::string, FinalsRead>& cache) {
    std::ostringstream o;
    o << "gw-sweep-finals 1\n";
    o.precision(17);
    for (const auto& [name, f] : cache) {
        o << name << '\t' << f.inode << '\t' << f.size << '\t' << f.used << '\t' << f.time << '\t' << f.finals.size() << '\n';
        for (const auto& [m, v] : f.finals) o << m << '\t' << v << '\n';
    }
    try {
        writeFileAtomically(finalsCachePath(folder), o.str());
    } catch (const std::exception&) {
        // A folder that cannot be written: the next reader reads the files whole, as without a cache.
    }
}

/// Brings `f` up to date with the metrics.csv at `path`: nothing read when the file is unchanged, only
/// the lines appended since when it grew (the engine appends to it; a resumed run's truncation
/// replaces the file, a new inode), else the whole file. Only whole lines are taken, so that a line being
/// written is read once complete. Returns whether `f` changed.
bool updateFinals(const std::string& path, FinalsRead& f) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const bool had = f.size > 0 || !f.finals.empty();
        f = FinalsRead{};
        return had;
    }
    const std::uint64_t inode = static_cast<std::uint64_t>(st.st_ino), size = static_cast<std::uint64_t>(st.st_size);
    const std::int64_t time = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    if (inode == f.inode && size == f.size && time == f.time) return false;
    if (inode != f.inode || size < f.used) f = FinalsRead{};
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(f.used));
    std::string chunk(size - f.used, '\0');
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    chunk.resize(static_cast<size_t>(in.gcount()));
    std::map<std::string, size_t> at;
    for (size_t i = 0; i < f.finals.size(); ++i) at[f.finals[i].first] = i;
    size_t pos = 0;
    if (f.used == 0) {  // header: step,metric,value
        const auto nl = chunk.find('\n');
        pos = nl == std::string::npos ? chunk.size() : nl + 1;
        if (nl == std::string::npos) chunk.clear(), pos = 0;
    }
    size_t usedHere = pos;
    while (pos < chunk.size()) {
        const auto nl = chunk.find('\n', pos);
        if (nl == std::string::npos) break;  // a line still being written
        const std::string line = chunk.substr(pos, nl - pos);
        pos = usedHere = nl + 1;
        const auto a = line.find(','), b = line.rfind(',');
        if (a == std::string::npos || b == a) continue;
        const std::string metric = line.substr(a + 1, b - a - 1);
        double v = 0;
        try {
            v = std::stod(line.substr(b + 1));
        } catch (const std::exception&) {
            v = std::nan("");
        }
        if (auto it = at.find(metric); it != at.end()) f.finals[it->second].second = v;
        else at[metric] = f.finals.size(), f.finals.emplace_back(metric, v);
    }
    f.inode = inode;
    f.size = size;
    f.time = time;
    f.used += usedHere;
    return true;
}

}  // namespace

std::vector<SweepRow> sweepRows(const SweepSpec& spec, const std::vector<SweepPoint>& points) {
    std::map<std::string, FinalsRead> cache = readFinalsCache(spec.folder);
    bool changed = false;
    std::vector<SweepRow> rows;
    std::error_code ec;
    const bool anyRun = fs::is_directory(fs::path(spec.folder) / "runs", ec);
    for (const auto& p : points) {
        SweepRow row;
        row.point = p;
        const std::string dir = sweepRunDir(spec.folder, p);
        if (!anyRun || !fs::is_directory(dir, ec)) {  // not started: nothing to read
            row.state = "pending";
            changed = cache.erase(p.name) > 0 || changed;
            rows.push_back(std::move(row));
            continue;
        }
        const RunStatus st = readRunStatus(dir);
        row.state = st.state.empty() ? "pending" : st.state;
        row.step = st.step;
        row.totalSteps = st.totalSteps;
        FinalsRead& f = cache[p.name];
        changed = updateFinals((fs::path(dir) / "metrics.csv").string(), f) || changed;
        row.finals = f.finals;
        rows.push_back(std::move(row));
    }
    // Names of points no longer in the plan go (a folder planned again from scratch).
    std::set<std::string> planned;
    for (const auto& p : points) planned.insert(p.name);
    for (auto it = cache.begin(); it != cache.end();) {
        if (planned.count(it->first)) ++it;
        else it = cache.erase(it), changed = true;
    }
    if (changed) writeFinalsCache(spec.folder, cache);
    return rows;
}

void writeSweepSummary(const SweepSpec& spec, const std::vector<SweepRow>& rows) {
    std::vector<std::string> metrics;
    std::set<std::string> seen;
    for (const auto& r : rows)
        for (const auto& [k, v] : r.finals)
            if (seen.insert(k).second) metrics.push_back(k);
    std::ostringstream o;
    o << "index,name,state,step,total_steps";
    for (const auto& a : spec.axes) o << "," << csvField(a.key);
    for (const auto& m : metrics) o << "," << csvField(m);
    o << "\n";
    o.precision(9);
    for (const auto& r : rows) {
        o << r.point.index << "," << csvField(r.point.name) << "," << r.state << "," << r.step << "," << r.totalSteps;
        for (const auto& a : spec.axes) {
            std::string v;
            for (const auto& [k, val] : r.point.values)
                if (k == a.key) v = val;
            o << "," << csvField(v);
        }
        for (const auto& m : metrics) {
            o << ",";
            for (const auto& [k, v] : r.finals)
                if (k == m && std::isfinite(v)) o << v;
        }
        o << "\n";
    }
    writeFileAtomically(sweepSummaryPath(spec.folder), o.str());
}

}  // namespace gw
