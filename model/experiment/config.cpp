// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/experiment/config.h"

#include "data/atomic_file.h"
#include "data/printable.h"
#include "model/core/metric_names.h"
#include "model/core/mlp.h"
#include "model/core/registry.h"
#include "model/experiment/yaml_file.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace gw {
namespace fs = std::filesystem;

ExperimentConfig::ExperimentConfig() { loss.coefficients = defaultCoefficients(); }

const DomainConfig& ExperimentConfig::domain(const std::string& n) const {
    for (const auto& d : domains)
        if (d.name == n) return d;
    throw ConfigError(sourcePath + ": no domain named '" + n + "'");
}

std::string ExperimentConfig::resolvePath(const std::string& p) const {
    if (p.empty()) return p;
    std::string s = p;
    if (s[0] == '~') {
        const char* home = std::getenv("HOME");
        s = std::string(home ? home : "") + s.substr(1);
    }
    fs::path path(s);
    if (path.is_absolute()) return path.lexically_normal().string();
    fs::path base = sourcePath.empty() ? fs::path(".") : fs::path(sourcePath).parent_path();
    if (base.empty()) base = ".";
    return (base / path).lexically_normal().string();
}

namespace {

/// Walks one YAML mapping, reading known keys and rejecting the rest by name.
class MapReader {
public:
    MapReader(const YAML::Node& node, std::string path, const std::string& file) : node_(node), path_(std::move(path)), file_(file) {
        if (node_ && !node_.IsNull() && !node_.IsMap()) fail("", "a mapping", describe(node_));
    }
    [[noreturn]] void fail(const std::string& key, const std::string& expected, const std::string& found) const {
        throw ConfigError(file_ + ": " + full(key) + ": expected " + expected + ", found " + found);
    }
    std::string full(const std::string& key) const {
        if (key.empty()) return path_.empty() ? "(top level)" : path_;
        return path_.empty() ? key : path_ + "." + key;
    }
    static std::string describe(const YAML::Node& n) {
        if (!n || n.IsNull()) return "nothing";
        if (n.IsScalar()) return "'" + n.Scalar() + "'";
        if (n.IsSequence()) return "a list";
        return "a mapping";
    }
    /// The scalars of the mapping under `key` (a kind's parameters: selection_params, contrastive_params)
    /// added to `into`, as YAML text; nothing when it is missing or null.
    void readParams(const std::string& key, OrderedMap<std::string>& into) {
        YAML::Node p = get(key);
        if (!p || p.IsNull()) return;
        if (!p.IsMap()) fail(key, "a mapping of parameter names to values", describe(p));
        for (const auto& kv : p) {
            if (!kv.second.IsScalar()) fail(key + "." + kv.first.as<std::string>(), "a value", describe(kv.second));
            into.set(kv.first.as<std::string>(), kv.second.Scalar());
        }
    }
    YAML::Node get(const std::string& key) {
        seen_.insert(key);
        if (!node_ || node_.IsNull()) return YAML::Node();
        return node_[key];
    }
    template <class T>
    void read(const std::string& key, T& out, const char* expected) {
        YAML::Node n = get(key);
        if (!n || n.IsNull()) return;
        if (!n.IsScalar()) fail(key, expected, describe(n));
        try {
            out = n.as<T>();
        } catch (const YAML::Exception&) {
            fail(key, expected, describe(n));
        }
    }
    void readStr(const std::string& key, std::string& out) { read(key, out, "a string"); }
    void readInt(const std::string& key, int64_t& out, int64_t min) {
        read(key, out, "a whole number");
        if (out < min) fail(key, "a whole number >= " + std::to_string(min), std::to_string(out));
    }
    void readInt(const std::string& key, int& out, int min) {
        int64_t v = out;
        readInt(key, v, min);
        out = static_cast<int>(v);
    }
    void readDouble(const std::string& key, double& out, double min, bool strict = false) {
        read(key, out, "a number");
        if (strict ? !(out > min) : !(out >= min))
            fail(key, std::string("a number ") + (strict ? "> " : ">= ") + std::to_string(min), std::to_string(out));
    }
    void readBool(const std::string& key, bool& out) { read(key, out, "true or false"); }
    void readChoice(const std::string& key, std::string& out, const std::vector<std::string>& allowed) {
        readStr(key, out);
        for (const auto& a : allowed)
            if (a == out) return;
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(key, "one of " + list, "'" + out + "'");
    }
    /// Rejects every key that was not asked for.
    void finish() const {
        if (!node_ || !node_.IsMap()) return;
        for (const auto& kv : node_) {
            const std::string k = kv.first.as<std::string>();
            if (!seen_.count(k)) {
                std::string known;
                for (const auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
                throw ConfigError(file_ + ": " + full(k) + ": unknown key (known keys here: " + known + ")");
            }
        }
    }

private:
    YAML::Node node_;
    std::string path_;
    const std::string& file_;
    std::set<std::string> seen_;
};

/// A domain's name becomes part of metric names (`translation_NAME_to_...`), dataset paths (/SPLIT/NAME),
/// file names (RUN/domain_modules/NAME.pt) and dotted override keys (domains.NAME.key), so it is kept to
/// letters, digits, '_' and '-'. (Found by fuzzing: a name of 1,200 characters with NUL bytes was
/// accepted and written back as YAML that no parser reads.)
void requireDomainName(const std::string& name, const std::string& file) {
    bool ok = !name.empty() && name.size() <= 64 && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
    for (char ch : name) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-');
    if (ok) return;
    const std::string shown = data::printable(name, 40);
    throw ConfigError(file + ": domains: expected domain names of letters, digits, '_' or '-' that start with a letter or '_' "
                             "(at most 64 characters: they name metrics, datasets and files), found '" + shown + "'");
}

void readDomain(const std::string& name, const YAML::Node& node, const std::string& file, DomainConfig& d) {
    MapReader r(node, "domains." + name, file);
    d.name = name;
    r.readStr("module", d.module);
    if (!domainModuleRegistry().find(d.module))
        r.fail("module", "a domain module kind (" + domainModuleRegistry().knownNames() + ")", "'" + d.module + "'");
    r.readStr("file", d.file);
    r.readStr("dataset", d.dataset);
    // The kind's parameters. Files written before the registries hold all six of the old keys for
    // every domain, 0 meaning "the kind's default": those are taken as absent.
    const auto& kind = domainModuleRegistry().find(d.module)->info;
    OrderedMap<std::string> given;
    for (const auto& p : kind.params)
        if (YAML::Node v = r.get(p.key); v && !v.IsNull()) {
            if (!v.IsScalar()) r.fail(p.key, "a value", MapReader::describe(v));
            const bool legacyDefault = (p.key == "latent_dim" || p.key == "hidden_dim") && v.Scalar() == "0" && p.defaultValue != "0";
            if (!legacyDefault) given.set(p.key, v.Scalar());
        }
    for (const char* legacy : {"latent_dim", "hidden_dim", "num_classes", "channels", "image_size", "beta"})
        if (!kind.param(legacy)) r.get(legacy);  // accepted and ignored: not a parameter of this kind
    try {
        d.params = checkParams(kind, "domain module", given, "domains." + name).values();
    } catch (const std::invalid_argument& e) {
        throw ConfigError(file + ": " + e.what());
    }
    r.readStr("weights", d.weights);
    r.readBool("frozen", d.frozen);
    if (YAML::Node l = r.get("losses"); l && !l.IsNull()) {
        if (!l.IsSequence()) r.fail("losses", "a list of loss families", MapReader::describe(l));
        d.losses.clear();
        for (const auto& item : l) {
            const std::string f = item.as<std::string>();
            const auto* fam = metrics::familyOfTerm(f);
            if (!fam || !fam->perDomain) {
                std::string known;
                for (const auto& k : metrics::perDomainTerms()) known += (known.empty() ? "" : ", ") + k;
                r.fail("losses", "families among " + known, "'" + f + "'");
            }
            d.losses.push_back(f);
        }
    }
    MapReader p(r.get("pretrain"), "domains." + name + ".pretrain", file);
    p.readInt("steps", d.pretrain.steps, 0);
    p.readInt("batch_size", d.pretrain.batchSize, 1);
    p.readDouble("lr", d.pretrain.lr, 0.0, true);
    p.readDouble("weight_decay", d.pretrain.weightDecay, 0.0);
    p.finish();
    r.finish();
    if (d.dataset.empty()) d.dataset = "/{split}/" + name;
}

/// `data.groups`: a list of {domains: [names], proportion: p} or {domains: [...], count: k}.
std::vector<GroupConfig> readGroups(const YAML::Node& node, const ExperimentConfig& c, const std::string& file) {
    if (!node.IsSequence() || node.size() == 0)
        throw ConfigError(file + ": data.groups: expected a list of groups such as [{domains: [v], proportion: 1.0}, "
                                 "{domains: [v, t], count: 2000}], found " + MapReader::describe(node));
    std::vector<GroupConfig> out;
    for (size_t i = 0; i < node.size(); ++i) {
        const std::string where = "data.groups[" + std::to_string(i) + "]";
        MapReader r(node[i], where, file);
        if (!node[i].IsMap()) r.fail("", "a mapping with domains and proportion or count", MapReader::describe(node[i]));
        GroupConfig g;
        const YAML::Node d = r.get("domains");
        if (!d || !d.IsSequence() || d.size() == 0) r.fail("domains", "a list of domain names", MapReader::describe(d));
        for (const auto& x : d) {
            const std::string name = x.IsScalar() ? x.Scalar() : std::string();
            if (std::none_of(c.domains.begin(), c.domains.end(), [&](const DomainConfig& dc) { return dc.name == name; })) {
                std::string known;
                for (const auto& dc : c.domains) known += (known.empty() ? "" : ", ") + dc.name;
                r.fail("domains", "domains of this experiment (" + known + ")", MapReader::describe(x));
            }
            if (std::find(g.domains.begin(), g.domains.end(), name) != g.domains.end())
                r.fail("domains", "each domain once", "'" + name + "' twice");
            g.domains.push_back(name);
        }
        const bool hasP = r.get("proportion").IsDefined(), hasC = r.get("count").IsDefined();
        if (hasP == hasC) r.fail("", "exactly one of proportion and count", hasP ? "both" : "neither");
        if (hasP) {
            r.readDouble("proportion", g.proportion, 0.0);
            if (g.proportion > 1) r.fail("proportion", "a number in [0, 1]", std::to_string(g.proportion));
        } else {
            r.readInt("count", g.count, 0);
        }
        r.finish();
        const auto setOf = [](std::vector<std::string> d) {
            std::sort(d.begin(), d.end());
            return metrics::domainSet(d);
        };
        for (const auto& other : out)
            if (setOf(other.domains) == setOf(g.domains)) r.fail("domains", "a group not given before", setOf(g.domains) + " again");
        out.push_back(std::move(g));
    }
    return out;
}

/// Splits a dotted key; an empty part is an error naming the override.
std::vector<std::string> dottedParts(const std::string& key, const std::string& text, const std::string& file) {
    std::vector<std::string> parts;
    std::stringstream ss(key);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    if (key.empty() || key.back() == '.' || parts.empty())
        throw ConfigError(file + ": override '" + text + "': expected a dotted key such as training.steps");
    for (const auto& p : parts)
        if (p.empty()) throw ConfigError(file + ": override '" + text + "': expected a dotted key such as training.steps");
    return parts;
}

std::string shownValue(const YAML::Node& n) {
    if (!n || n.IsNull()) return "nothing";
    if (n.IsScalar()) return "'" + n.Scalar() + "'";
    return n.IsSequence() ? "a list" : "a mapping";
}

/// Applies one command-line override to the composed tree, in Hydra's forms: `key=value` sets (maps are
/// created on the way), `+key=value` adds a key no layer sets, `++key=value` sets or adds, `~key` removes
/// a key and `~key=value` removes it only when it holds that value.
void applyOverride(YAML::Node root, const std::string& text, const std::string& file) {
    enum class Op { Set, Add, Force, Remove } op = Op::Set;
    std::string body = text;
    if (body.rfind("++", 0) == 0) op = Op::Force, body = body.substr(2);
    else if (body.rfind('+', 0) == 0) op = Op::Add, body = body.substr(1);
    else if (body.rfind('~', 0) == 0) op = Op::Remove, body = body.substr(1);
    const auto eq = body.find('=');
    if (op != Op::Remove && (eq == std::string::npos || eq == 0))
        throw ConfigError(file + ": override '" + text + "': expected key=value with a dotted key (or +key=value, "
                                 "++key=value, ~key)");
    const std::string key = body.substr(0, eq);
    YAML::Node value;
    if (eq != std::string::npos) {
        try {
            value = YAML::Load(body.substr(eq + 1));
        } catch (const YAML::Exception& e) {
            throw ConfigError(file + ": override '" + text + "': the value is not YAML: " + e.msg);
        }
    }
    const std::vector<std::string> parts = dottedParts(key, text, file);
    if (op == Op::Remove) {
        YAML::Node parent = root;
        for (size_t i = 0; i + 1 < parts.size(); ++i) {
            YAML::Node next = parent[parts[i]];
            if (!next.IsDefined() || !next.IsMap())
                throw ConfigError(file + ": override '" + text + "': nothing to remove, " + key +
                                  " is not set by the file, its includes or the settings");
            parent.reset(next);  // (plain assignment would overwrite the node parent refers to)
        }
        const YAML::Node current = parent[parts.back()];
        if (!current.IsDefined())
            throw ConfigError(file + ": override '" + text + "': nothing to remove, " + key +
                              " is not set by the file, its includes or the settings");
        if (eq != std::string::npos && !(current.IsScalar() && value.IsScalar() && current.Scalar() == value.Scalar()))
            throw ConfigError(file + ": override '" + text + "': " + key + " holds " + shownValue(current) + ", not " +
                              shownValue(value));
        parent.remove(parts.back());
        return;
    }
    std::vector<YAML::Node> chain{root};
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
        YAML::Node next = chain.back()[parts[i]];
        if (next.IsDefined() && !next.IsNull() && !next.IsMap())
            throw ConfigError(file + ": override '" + text + "': '" + parts[i] + "' is not a mapping");
        if (!next.IsDefined() || next.IsNull()) chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
        chain.push_back(chain.back()[parts[i]]);
    }
    if (op == Op::Add && chain.back()[parts.back()].IsDefined())
        throw ConfigError(file + ": override '" + text + "': " + key + " is already set (to " +
                          shownValue(chain.back()[parts.back()]) + "); write " + key + "=VALUE to change it, or ++" + key +
                          "=VALUE");
    chain.back()[parts.back()] = value;
}

/// `over` merged onto `base`: mappings key by key (base's order, then over's new keys), anything else
/// replaced by over's value. Neither input is changed.
YAML::Node merged(const YAML::Node& base, const YAML::Node& over) {
    if (!over.IsDefined()) return base.IsDefined() ? YAML::Clone(base) : YAML::Node();
    if (!base.IsDefined() || !base.IsMap() || !over.IsMap()) return YAML::Clone(over);
    YAML::Node out = YAML::Clone(base);
    for (const auto& kv : over) {
        const std::string k = kv.first.as<std::string>();
        out[k] = merged(out[k], kv.second);
    }
    return out;
}

std::string expandHome(const std::string& p) {
    if (p.empty() || p[0] != '~') return p;
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + p.substr(1);
}

/// Makes the filesystem paths of an included file absolute against its own folder, so that they keep
/// meaning the same files once merged into a file elsewhere: data.file, data.dir, training.out, and each
/// domain's file, weights and path parameters (ParamInfo::Type::Path of any registered kind).
void absolutisePaths(YAML::Node tree, const fs::path& dir) {
    if (!tree.IsMap()) return;
    auto fix = [&](YAML::Node map, const std::string& key) {
        if (!map.IsMap()) return;
        YAML::Node v = map[key];
        if (!v.IsDefined() || !v.IsScalar() || v.Scalar().empty() || v.Scalar()[0] == '~' || v.Scalar()[0] == '/') return;
        map[key] = (dir / v.Scalar()).lexically_normal().string();
    };
    if (YAML::Node data = tree["data"]; data.IsDefined()) fix(data, "file"), fix(data, "dir");
    if (YAML::Node tr = tree["training"]; tr.IsDefined()) fix(tr, "out");
    if (YAML::Node doms = tree["domains"]; doms.IsDefined() && doms.IsMap()) {
        std::set<std::string> pathKeys{"file", "weights"};
        for (const auto& e : domainModuleRegistry().entries())
            for (const auto& p : e.info.params)
                if (p.type == ParamInfo::Type::Path) pathKeys.insert(p.key);
        for (auto kv : doms)
            for (const auto& k : pathKeys) fix(kv.second, k);
    }
}

/// Resolves `include:` (a file name or a list of them, relative to the including file), depth first;
/// later files and the including file win key by key.
class Composer {
public:
    explicit Composer(std::string topFile) { chain_.push_back(std::move(topFile)); }
    const std::vector<std::string>& read() const { return read_; }

    YAML::Node compose(YAML::Node root, const std::string& label, const fs::path& dir) {
        if (!root.IsMap() || !root["include"].IsDefined()) return root;
        const YAML::Node inc = root["include"];
        std::vector<std::string> names;
        if (inc.IsScalar()) names.push_back(inc.Scalar());
        else if (inc.IsSequence())
            for (const auto& n : inc) {
                if (!n.IsScalar() || n.Scalar().empty())
                    throw ConfigError(label + ": include: expected file names, found " + shownValue(n) + " in the list");
                names.push_back(n.Scalar());
            }
        else if (!inc.IsNull())
            throw ConfigError(label + ": include: expected a file name or a list of file names, found " + shownValue(inc));
        YAML::Node acc(YAML::NodeType::Map);
        for (const auto& name : names) {
            std::error_code ec;
            fs::path p(expandHome(name));
            if (p.is_relative()) p = dir / p;
            p = fs::absolute(p, ec).lexically_normal();  // its folder anchors its relative paths
            const std::string canon = fs::weakly_canonical(p, ec).string();
            for (size_t i = 0; i < chain_.size(); ++i)
                if (chain_[i] == canon) {
                    std::string cycle;
                    for (size_t j = i; j < chain_.size(); ++j) cycle += fs::path(chain_[j]).filename().string() + " -> ";
                    throw ConfigError(label + ": include: " + name + " makes a cycle (" + cycle +
                                      fs::path(canon).filename().string() + ")");
                }
            // Only regular files of experiment size: a device or a pipe (/dev/zero) would never end.
            std::ifstream in(p);
            if (!in || !fs::is_regular_file(p, ec))
                throw ConfigError(label + ": include: cannot open " + p.string() + " (expected an experiment file)");
            if (fs::file_size(p, ec) > (1u << 20))
                throw ConfigError(label + ": include: " + p.string() + " is larger than 1 MiB (expected an experiment file)");
            std::stringstream ss;
            ss << in.rdbuf();
            YAML::Node sub;
            try {
                sub = YAML::Load(ss.str());
            } catch (const YAML::Exception& e) {
                throw ConfigError(p.string() + " (included by " + label + "): not valid YAML: " + e.what());
            }
            if (!sub.IsDefined() || sub.IsNull()) sub = YAML::Node(YAML::NodeType::Map);
            if (!sub.IsMap())
                throw ConfigError(p.string() + " (included by " + label + "): expected a mapping of experiment keys, found " +
                                  shownValue(sub));
            chain_.push_back(canon);
            sub = compose(sub, p.string(), p.parent_path());
            chain_.pop_back();
            absolutisePaths(sub, p.parent_path());
            read_.push_back(p.string());
            acc = merged(acc, sub);
        }
        YAML::Node own = YAML::Clone(root);
        own.remove("include");
        return merged(acc, own);
    }

private:
    std::vector<std::string> chain_;  // canonical paths of the files being read, outermost first
    std::vector<std::string> read_;
};

/// A list of numbers under `key` (nothing when missing or null). \throws ConfigError naming the key.
std::vector<double> readNumbers(MapReader& m, const std::string& key, const std::string& expected) {
    std::vector<double> out;
    YAML::Node n = m.get(key);
    if (!n || n.IsNull()) return out;
    if (!n.IsSequence()) m.fail(key, expected, MapReader::describe(n));
    for (const auto& v : n) {
        if (!v.IsScalar()) m.fail(key, expected, "a list holding " + MapReader::describe(v));
        try {
            out.push_back(v.as<double>());
        } catch (const YAML::Exception&) {
            m.fail(key, expected, "a list holding '" + v.Scalar() + "'");
        }
    }
    return out;
}

/// The `attention:` section (model: attention; docs/experiment-format.md). What needs the GW run or the
/// domains (gw_run's kind and domains, corrupt_single_side) is checked by the kind (checkExperiment).
void readAttention(MapReader& top, ExperimentConfig& c, const std::string& file) {
    YAML::Node node = top.get("attention");
    if (node && !node.IsNull() && c.model != "attention")
        top.fail("attention", "no attention section (it belongs to model: attention; model is " + c.model + ")", "one");
    MapReader at(node, "attention", file);
    AttentionConfig& a = c.attention;
    at.readStr("gw_run", a.gwRun);
    at.readStr("selection", a.selection);
    const SelectionRegistry::Entry* sel = selectionRegistry().find(a.selection);
    if (!sel) {
        try {
            selectionRegistry().at(a.selection, "attention.selection");
        } catch (const std::invalid_argument& e) {
            throw ConfigError(file + ": " + e.what());
        }
    }
    OrderedMap<std::string> given;
    at.readParams("selection_params", given);
    try {
        a.selectionParams = checkParams(sel->info, "selection", given, "attention.selection_params");
    } catch (const std::invalid_argument& e) {
        throw ConfigError(file + ": " + e.what());
    }
    at.readStr("corrupt_single_side", a.corruptSingleSide);
    at.readBool("corrupt_sides", a.corruptSides);
    const bool scalingGiven = at.get("corruption_scaling").IsDefined() && !at.get("corruption_scaling").IsNull();
    a.corruptionScaling = readNumbers(at, "corruption_scaling", "a non-empty list of corruption levels >= 0");
    if (scalingGiven && a.corruptionScaling.empty())
        at.fail("corruption_scaling", "a non-empty list of corruption levels >= 0", "an empty list");
    for (double v : a.corruptionScaling)
        if (!(v >= 0) || !std::isfinite(v))
            at.fail("corruption_scaling", "a non-empty list of corruption levels >= 0", "the level " + metrics::levelText(v));
    a.fixedCorruptionVector = readNumbers(at, "fixed_corruption_vector", "a list of numbers (one per latent dimension)");
    if (!a.fixedCorruptionVector.empty()) {
        bool varies = false;
        for (double v : a.fixedCorruptionVector) {
            if (!std::isfinite(v)) at.fail("fixed_corruption_vector", "finite numbers", metrics::levelText(v));
            varies = varies || v != a.fixedCorruptionVector.front();
        }
        if (!varies)
            at.fail("fixed_corruption_vector", "numbers that are not all equal (the vector is normalised by its standard deviation)",
                    a.fixedCorruptionVector.size() == 1 ? "one number" : "every number equal");
    }
    if (YAML::Node two = at.get("two_sided_corruption"); two && !two.IsNull()) {
        if (!two.IsMap()) at.fail("two_sided_corruption", "a mapping of domain names to corruption levels", MapReader::describe(two));
        MapReader tr(two, "attention.two_sided_corruption", file);
        for (const auto& kv : two) {
            const std::string d = kv.first.as<std::string>();
            double v = 0;
            tr.readDouble(d, v, 0.0);
            a.twoSidedCorruption.set(d, v);
        }
    }
    if (a.corruptSides && !a.corruptSingleSide.empty())
        at.fail("corrupt_single_side", "nothing when corrupt_sides is true (every side is corrupted)", "'" + a.corruptSingleSide + "'");
    if (!a.twoSidedCorruption.empty() && !a.corruptSides)
        at.fail("two_sided_corruption", "nothing unless corrupt_sides is true (shimmer reads it for two-sided corruption only)",
                "a mapping");
    at.finish();
}

/// The settings as the lowest layer of an experiment tree.
YAML::Node settingsLayer(const UserSettings& s) {
    YAML::Node n(YAML::NodeType::Map);
    if (!s.device.empty()) n["device"] = s.device;
    if (s.threads >= 0) n["threads"] = s.threads;
    if (!s.dataDir.empty()) n["data"]["dir"] = s.dataDir;
    if (!s.runsDir.empty()) n["training"]["out"] = s.runsDir;
    return n;
}

}  // namespace

ExperimentConfig parseExperiment(const std::string& text, const std::string& sourceName,
                                 const std::vector<std::string>& overrides, const std::string& baseDir,
                                 const UserSettings* settings) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw ConfigError(sourceName + ": not valid YAML: " + e.what());
    }
    if (!root || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    ExperimentConfig c;
    c.sourcePath = (fs::path(baseDir) / fs::path(sourceName).filename()).string();
    std::error_code ec;
    Composer composer(fs::weakly_canonical(fs::path(c.sourcePath), ec).string());
    root = composer.compose(root, sourceName, baseDir.empty() ? fs::path(".") : fs::path(baseDir));
    c.includes = composer.read();
    if (settings && !settings->empty()) root = merged(settingsLayer(*settings), root);
    for (const auto& o : overrides) applyOverride(root, o, sourceName);
    // Messages name the included files too: the key may come from any of them.
    std::string label = sourceName;
    if (!c.includes.empty()) {
        label += " (with ";
        for (size_t i = 0; i < c.includes.size(); ++i) label += (i ? ", " : "") + fs::path(c.includes[i]).filename().string();
        label += ")";
    }
    const std::string file = label;
    // Registry look-ups and a kind's own checks throw std::invalid_argument without the file.
    auto checked = [&](auto&& f) {
        try {
            return f();
        } catch (const std::invalid_argument& e) {
            throw ConfigError(file + ": " + e.what());
        }
    };
    MapReader top(root, "", file);
    top.readStr("name", c.name);
    top.readStr("model", c.model);
    const auto& modelKind = checked([&]() -> const ModelRegistry::Entry& { return modelRegistry().at(c.model, "model"); });
    top.read("seed", c.seed, "a whole number >= 0");
    top.readStr("device", c.device);
    if (c.device != "cpu" && c.device != "cuda" && c.device.rfind("cuda:", 0) != 0)
        top.fail("device", "cpu, cuda or cuda:N", "'" + c.device + "'");
    top.readInt("threads", c.threads, 0);

    MapReader data(top.get("data"), "data", file);
    data.readStr("file", c.dataFile);
    data.readChoice("import", c.dataImport, {"", "fashion-mnist", "simple-shapes"});
    data.readStr("train_split", c.trainSplit);
    data.readStr("val_split", c.valSplit);
    data.readStr("test_split", c.testSplit);
    data.readDouble("paired_fraction", c.pairedFraction, 0.0);
    if (c.pairedFraction > 1) data.fail("paired_fraction", "a number in [0, 1]", std::to_string(c.pairedFraction));
    data.readInt("paired_count", c.pairedCount, -1);
    data.readStr("paired_indices", c.pairedDataset);
    data.readInt("cache_mb", c.cacheMb, 0);
    std::string dataDir;
    data.readStr("dir", dataDir);
    const YAML::Node groupsNode = data.get("groups");
    data.readStr("groups_file", c.groupsFile);
    if (!c.groupsFile.empty() && groupsNode && !groupsNode.IsNull())
        throw ConfigError(file + ": data.groups: data.groups_file gives the groups already; keep one of the two");
    if ((groupsNode && !groupsNode.IsNull()) || !c.groupsFile.empty())
        for (const char* k : {"paired_fraction", "paired_count", "paired_indices"})
            if (const YAML::Node p = data.get(k); p && !p.IsNull())
                throw ConfigError(file + ": data." + k + ": data.groups" + (c.groupsFile.empty() ? "" : "_file") +
                                  " sets every group's samples, so this key would not be used: " +
                                  "remove it (or, on the command line, add ~data." + k + ")");
    data.finish();

    YAML::Node doms = top.get("domains");
    if (!doms || !doms.IsMap() || doms.size() == 0)
        top.fail("domains", "a mapping of domain names to domain settings", MapReader::describe(doms));
    for (const auto& kv : doms) {
        DomainConfig d;
        const std::string name = kv.first.IsScalar() ? kv.first.as<std::string>() : std::string();
        requireDomainName(name, file);
        for (const auto& other : c.domains)
            if (other.name == name) throw ConfigError(file + ": domains." + name + ": the domain is named twice");
        readDomain(name, kv.second, file, d);
        c.domains.push_back(std::move(d));
    }

    if (groupsNode && !groupsNode.IsNull()) c.groups = readGroups(groupsNode, c, file);

    MapReader ws(top.get("workspace"), "workspace", file);
    ws.readInt("dim", c.workspaceDim, 1);
    MapReader enc(ws.get("encoder"), "workspace.encoder", file);
    enc.readInt("hidden", c.encoderHidden, 1);
    enc.readInt("layers", c.encoderLayers, 0);
    enc.finish();
    MapReader dec(ws.get("decoder"), "workspace.decoder", file);
    dec.readInt("hidden", c.decoderHidden, 1);
    dec.readInt("layers", c.decoderLayers, 0);
    dec.finish();
    ws.readBool("linear", c.linearGW);
    ws.readBool("linear_bias", c.linearGWBias);
    ws.readChoice("fusion_activation_fn", c.fusionActivation, fusionActivationNames());
    ws.readStr("flavour", c.flavour);
    const auto& flavour = checked([&]() -> const FlavourRegistry::Entry& {
        return flavourRegistry().at(c.flavour, "workspace.flavour");
    });
    OrderedMap<std::string> givenFlavour;
    ws.readParams("flavour_params", givenFlavour);
    c.flavourParams = checked([&] { return checkParams(flavour.info, "flavour", givenFlavour, "workspace.flavour_params"); });
    c.selection = flavour.impl.defaultSelection;
    ws.readStr("selection", c.selection);
    const auto& selection = checked([&]() -> const SelectionRegistry::Entry& {
        return selectionRegistry().at(c.selection, "workspace.selection");
    });
    OrderedMap<std::string> given;
    // Before selection_params existed, `random` read its temperature from selection_temperature; any
    // other selection ignored it, and run folders still hold it.
    double legacyTemperature = 0.2;
    ws.readDouble("selection_temperature", legacyTemperature, 0.0, true);
    if (ws.get("selection_temperature").IsDefined() && selection.info.param("temperature"))
        given.set("temperature", ws.get("selection_temperature").Scalar());
    ws.readParams("selection_params", given);
    const Params params = checked([&] { return checkParams(selection.info, "selection", given, "workspace.selection_params"); });
    c.selectionParams = params;
    ws.finish();

    MapReader loss(top.get("loss"), "loss", file);
    if (YAML::Node co = loss.get("coefficients"); co && !co.IsNull()) {
        if (!co.IsMap()) loss.fail("coefficients", "a mapping of metric names to numbers", MapReader::describe(co));
        c.loss.coefficients.clear();
        MapReader cr(co, "loss.coefficients", file);
        for (const auto& kv : co) {
            double v = 0;
            cr.readDouble(kv.first.as<std::string>(), v, 0.0);
            c.loss.coefficients.set(kv.first.as<std::string>(), v);
        }
    }
    loss.readDouble("logit_scale", c.loss.logitScale, -1e9);
    loss.readBool("learn_logit_scale", c.loss.learnLogitScale);
    loss.readStr("contrastive", c.loss.contrastive);
    const auto& contrastive = checked([&]() -> const ContrastiveRegistry::Entry& {
        return contrastiveRegistry().at(c.loss.contrastive, "loss.contrastive");
    });
    OrderedMap<std::string> givenContrastive;
    loss.readParams("contrastive_params", givenContrastive);
    c.loss.contrastiveParams =
        checked([&] { return checkParams(contrastive.info, "contrastive", givenContrastive, "loss.contrastive_params"); }).values();
    loss.finish();

    MapReader opt(top.get("optimizer"), "optimizer", file);
    opt.readDouble("lr", c.lr, 0.0, true);
    opt.readDouble("weight_decay", c.weightDecay, 0.0);
    opt.readDouble("beta1", c.beta1, 0.0);
    opt.readDouble("beta2", c.beta2, 0.0);
    opt.readDouble("eps", c.eps, 0.0, true);
    opt.finish();

    MapReader sch(top.get("scheduler"), "scheduler", file);
    sch.readChoice("kind", c.scheduler, {"one_cycle", "none"});
    sch.readDouble("max_lr", c.maxLr, 0.0);
    sch.readDouble("pct_start", c.pctStart, 0.0, true);
    if (c.pctStart >= 1) sch.fail("pct_start", "a number in (0, 1)", std::to_string(c.pctStart));
    sch.readDouble("div_factor", c.divFactor, 0.0, true);
    sch.readDouble("final_div_factor", c.finalDivFactor, 0.0, true);
    sch.readDouble("start_lr", c.startLr, 0.0);
    sch.readDouble("end_lr", c.endLr, 0.0);
    sch.readBool("cycle_momentum", c.cycleMomentum);
    sch.finish();

    MapReader tr(top.get("training"), "training", file);
    tr.readInt("steps", c.steps, 1);
    tr.readInt("batch_size", c.batchSize, 1);
    tr.readInt("val_every", c.valEvery, 0);
    tr.readInt("checkpoint_every", c.checkpointEvery, 0);
    tr.readInt("log_every", c.logEvery, 1);
    tr.readInt("val_batch_size", c.valBatchSize, 1);
    tr.readBool("val_data_metrics", c.valDataMetrics);
    tr.readStr("out", c.outDir);
    tr.finish();

    readAttention(top, c, file);
    top.finish();

    checked([&] { modelKind.impl.checkExperiment(c); });
    if (c.dataFile.empty()) {
        for (const auto& d : c.domains)
            if (d.file.empty()) throw ConfigError(file + ": domains." + d.name + ".file: expected an HDF5 file (or data.file), found nothing");
    }
    // data.dir: the folder that relative data files are in. Applied here, so the experiment holds the
    // joined paths and resolvePath stays one rule.
    if (!dataDir.empty()) {
        const std::string dir = c.resolvePath(dataDir);
        auto join = [&](std::string& f) {
            if (!f.empty() && f[0] != '~' && f[0] != '/') f = (fs::path(dir) / f).lexically_normal().string();
        };
        join(c.dataFile);
        for (auto& d : c.domains) join(d.file);
    }
    return c;
}

ExperimentConfig loadExperiment(const std::string& path, const std::vector<std::string>& overrides,
                                const UserSettings* settings) {
    std::ifstream in(path);
    if (!in) throw ConfigError(path + ": cannot open the experiment file");
    std::stringstream ss;
    ss << in.rdbuf();
    auto c = parseExperiment(ss.str(), path, overrides, fs::path(path).parent_path().string(), settings);
    c.sourcePath = path;
    return c;
}

std::string userSettingsPath() {
    if (const char* p = std::getenv("GW_STUDIO_SETTINGS"); p && *p) return p;
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return (fs::path(x) / "gw-studio" / "settings.yaml").string();
    return (fs::path(expandHome("~")) / ".config" / "gw-studio" / "settings.yaml").string();
}

UserSettings loadUserSettings(const std::string& path) {
    UserSettings s;
    s.path = path;
    std::error_code ec;
    if (!fs::exists(path, ec)) return s;
    const YAML::Node root = detail::loadYamlFile(path, "settings file");
    const fs::path dir = fs::path(path).parent_path();
    auto absolute = [&](const std::string& p) {
        const fs::path e(expandHome(p));
        return (e.is_absolute() ? e : dir / e).lexically_normal().string();
    };
    MapReader top(root, "", path);
    top.readStr("device", s.device);
    if (!s.device.empty() && s.device != "cpu" && s.device != "cuda" && s.device.rfind("cuda:", 0) != 0)
        top.fail("device", "cpu, cuda or cuda:N", "'" + s.device + "'");
    if (top.get("threads").IsDefined() && !top.get("threads").IsNull()) {
        s.threads = 0;
        top.readInt("threads", s.threads, 0);
    }
    MapReader data(top.get("data"), "data", path);
    data.readStr("dir", s.dataDir);
    data.finish();
    MapReader tr(top.get("training"), "training", path);
    tr.readStr("out", s.runsDir);
    tr.finish();
    top.finish();
    if (!s.dataDir.empty()) s.dataDir = absolute(s.dataDir);
    if (!s.runsDir.empty()) s.runsDir = absolute(s.runsDir);
    return s;
}

void saveUserSettings(const UserSettings& s) {
    YAML::Emitter e;
    e << YAML::Comment("GW Studio settings: the lowest layer of every experiment (docs/experiment-format.md, Layers)");
    e << settingsLayer(s);
    writeFileAtomically(s.path, std::string(e.c_str()) + "\n");
}

namespace {
/// A kind's parameters as YAML keys: numbers and booleans as they are, text quoted.
void emitParams(YAML::Emitter& e, const OrderedMap<std::string>& params, const KindInfo* kind) {
    for (const auto& [k, v] : params) {
        const ParamInfo* info = kind ? kind->param(k) : nullptr;
        e << YAML::Key << k << YAML::Value;
        if (info && (info->type == ParamInfo::Type::Text || info->type == ParamInfo::Type::Path)) e << YAML::DoubleQuoted << v;
        else e << v;
    }
}
}  // namespace

std::string experimentToYaml(const ExperimentConfig& c) {
    YAML::Emitter e;
    e.SetDoublePrecision(17);
    e << YAML::BeginMap;
    e << YAML::Key << "name" << YAML::Value << c.name;
    e << YAML::Key << "model" << YAML::Value << c.model;
    e << YAML::Key << "seed" << YAML::Value << c.seed;
    e << YAML::Key << "device" << YAML::Value << c.device;
    e << YAML::Key << "threads" << YAML::Value << c.threads;
    e << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "file" << YAML::Value << c.dataFile;
    e << YAML::Key << "import" << YAML::Value << c.dataImport;
    e << YAML::Key << "train_split" << YAML::Value << c.trainSplit;
    e << YAML::Key << "val_split" << YAML::Value << c.valSplit;
    e << YAML::Key << "test_split" << YAML::Value << c.testSplit;
    if (!c.groupsFile.empty()) {
        e << YAML::Key << "groups_file" << YAML::Value << c.groupsFile;
    } else if (c.groups.empty()) {
        e << YAML::Key << "paired_fraction" << YAML::Value << c.pairedFraction;
        e << YAML::Key << "paired_count" << YAML::Value << c.pairedCount;
        e << YAML::Key << "paired_indices" << YAML::Value << c.pairedDataset;
    } else {
        e << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
        for (const auto& g : c.groups) {
            e << YAML::Flow << YAML::BeginMap << YAML::Key << "domains" << YAML::Value << YAML::Flow << g.domains;
            if (g.count >= 0) e << YAML::Key << "count" << YAML::Value << g.count;
            else e << YAML::Key << "proportion" << YAML::Value << g.proportion;
            e << YAML::EndMap;
        }
        e << YAML::EndSeq;
    }
    e << YAML::Key << "cache_mb" << YAML::Value << c.cacheMb;
    e << YAML::EndMap;
    e << YAML::Key << "domains" << YAML::Value << YAML::BeginMap;
    for (const auto& d : c.domains) {
        e << YAML::Key << d.name << YAML::Value << YAML::BeginMap;
        e << YAML::Key << "module" << YAML::Value << d.module;
        e << YAML::Key << "file" << YAML::Value << d.file;
        e << YAML::Key << "dataset" << YAML::Value << d.dataset;
        const auto* kind = domainModuleRegistry().find(d.module);
        emitParams(e, d.params, kind ? &kind->info : nullptr);
        e << YAML::Key << "weights" << YAML::Value << d.weights;
        e << YAML::Key << "frozen" << YAML::Value << d.frozen;
        e << YAML::Key << "losses" << YAML::Value << YAML::Flow << d.losses;
        e << YAML::Key << "pretrain" << YAML::Value << YAML::BeginMap;
        e << YAML::Key << "steps" << YAML::Value << d.pretrain.steps;
        e << YAML::Key << "batch_size" << YAML::Value << d.pretrain.batchSize;
        e << YAML::Key << "lr" << YAML::Value << d.pretrain.lr;
        e << YAML::Key << "weight_decay" << YAML::Value << d.pretrain.weightDecay;
        e << YAML::EndMap << YAML::EndMap;
    }
    e << YAML::EndMap;
    e << YAML::Key << "workspace" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "dim" << YAML::Value << c.workspaceDim;
    e << YAML::Key << "encoder" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "hidden" << YAML::Value
      << c.encoderHidden << YAML::Key << "layers" << YAML::Value << c.encoderLayers << YAML::EndMap;
    e << YAML::Key << "decoder" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "hidden" << YAML::Value
      << c.decoderHidden << YAML::Key << "layers" << YAML::Value << c.decoderLayers << YAML::EndMap;
    e << YAML::Key << "linear" << YAML::Value << c.linearGW;
    e << YAML::Key << "linear_bias" << YAML::Value << c.linearGWBias;
    e << YAML::Key << "fusion_activation_fn" << YAML::Value << c.fusionActivation;
    e << YAML::Key << "flavour" << YAML::Value << c.flavour;
    const auto* fl = flavourRegistry().find(c.flavour);
    if (fl && !fl->info.params.empty()) {  // flavours without parameters write no flavour_params
        e << YAML::Key << "flavour_params" << YAML::Value << YAML::Flow << YAML::BeginMap;
        emitParams(e, c.flavourParams.values(), &fl->info);
        e << YAML::EndMap;
    }
    e << YAML::Key << "selection" << YAML::Value << c.selection;
    e << YAML::Key << "selection_params" << YAML::Value << YAML::Flow << YAML::BeginMap;
    const auto* sel = selectionRegistry().find(c.selection);
    emitParams(e, c.selectionParams.values(), sel ? &sel->info : nullptr);
    e << YAML::EndMap;
    e << YAML::EndMap;
    e << YAML::Key << "loss" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "coefficients" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, v] : c.loss.coefficients) e << YAML::Key << k << YAML::Value << v;
    e << YAML::EndMap;
    e << YAML::Key << "logit_scale" << YAML::Value << c.loss.logitScale;
    e << YAML::Key << "learn_logit_scale" << YAML::Value << c.loss.learnLogitScale;
    e << YAML::Key << "contrastive" << YAML::Value << c.loss.contrastive;
    if (!c.loss.contrastiveParams.empty()) {
        e << YAML::Key << "contrastive_params" << YAML::Value << YAML::Flow << YAML::BeginMap;
        const auto* con = contrastiveRegistry().find(c.loss.contrastive);
        emitParams(e, c.loss.contrastiveParams, con ? &con->info : nullptr);
        e << YAML::EndMap;
    }
    e << YAML::EndMap;
    e << YAML::Key << "optimizer" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "lr" << YAML::Value << c.lr << YAML::Key << "weight_decay" << YAML::Value << c.weightDecay;
    e << YAML::Key << "beta1" << YAML::Value << c.beta1 << YAML::Key << "beta2" << YAML::Value << c.beta2;
    e << YAML::Key << "eps" << YAML::Value << c.eps;
    e << YAML::EndMap;
    e << YAML::Key << "scheduler" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "kind" << YAML::Value << c.scheduler << YAML::Key << "max_lr" << YAML::Value << c.maxLr;
    e << YAML::Key << "pct_start" << YAML::Value << c.pctStart << YAML::Key << "div_factor" << YAML::Value << c.divFactor;
    e << YAML::Key << "final_div_factor" << YAML::Value << c.finalDivFactor;
    e << YAML::Key << "start_lr" << YAML::Value << c.startLr << YAML::Key << "end_lr" << YAML::Value << c.endLr;
    e << YAML::Key << "cycle_momentum" << YAML::Value << c.cycleMomentum;
    e << YAML::EndMap;
    e << YAML::Key << "training" << YAML::Value << YAML::BeginMap;
    e << YAML::Key << "steps" << YAML::Value << c.steps << YAML::Key << "batch_size" << YAML::Value << c.batchSize;
    e << YAML::Key << "val_every" << YAML::Value << c.valEvery;
    e << YAML::Key << "checkpoint_every" << YAML::Value << c.checkpointEvery;
    e << YAML::Key << "log_every" << YAML::Value << c.logEvery;
    e << YAML::Key << "val_batch_size" << YAML::Value << c.valBatchSize;
    e << YAML::Key << "val_data_metrics" << YAML::Value << c.valDataMetrics;
    e << YAML::Key << "out" << YAML::Value << c.outDir;
    e << YAML::EndMap;
    if (c.model == "attention") {
        const AttentionConfig& a = c.attention;
        e << YAML::Key << "attention" << YAML::Value << YAML::BeginMap;
        e << YAML::Key << "gw_run" << YAML::Value << a.gwRun;
        e << YAML::Key << "selection" << YAML::Value << a.selection;
        e << YAML::Key << "selection_params" << YAML::Value << YAML::Flow << YAML::BeginMap;
        const auto* asel = selectionRegistry().find(a.selection);
        emitParams(e, a.selectionParams.values(), asel ? &asel->info : nullptr);
        e << YAML::EndMap;
        e << YAML::Key << "corrupt_single_side" << YAML::Value << a.corruptSingleSide;
        e << YAML::Key << "corrupt_sides" << YAML::Value << a.corruptSides;
        if (!a.corruptionScaling.empty())
            e << YAML::Key << "corruption_scaling" << YAML::Value << YAML::Flow << a.corruptionScaling;
        if (!a.fixedCorruptionVector.empty())
            e << YAML::Key << "fixed_corruption_vector" << YAML::Value << YAML::Flow << a.fixedCorruptionVector;
        if (!a.twoSidedCorruption.empty()) {
            e << YAML::Key << "two_sided_corruption" << YAML::Value << YAML::Flow << YAML::BeginMap;
            for (const auto& [k, v] : a.twoSidedCorruption) e << YAML::Key << k << YAML::Value << v;
            e << YAML::EndMap;
        }
        e << YAML::EndMap;
    }
    e << YAML::EndMap;
    return std::string(e.c_str()) + "\n";
}

}  // namespace gw
