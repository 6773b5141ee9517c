// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/io/checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <filesystem>
#include <fstream>

#include "data/zip_check.h"

namespace gw {
namespace fs = std::filesystem;

namespace {
std::vector<std::string> splitLines(const std::string& s) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t end = s.find('\n', pos);
        if (end == std::string::npos) end = s.size();
        out.push_back(s.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

c10::List<std::string> toList(const std::vector<std::string>& v) {
    c10::List<std::string> l;
    for (const auto& s : v) l.push_back(s);
    return l;
}

/// A checkpoint's fields as they stand at `version`, between reading and decoding.
struct RawCheckpoint {
    int64_t version = 0;
    OrderedMap<c10::IValue> fields;
    const c10::IValue& at(const std::string& path, const std::string& key) const {
        if (const auto* v = fields.find(key)) return *v;
        throw CheckpointError(path + ": field '" + key + "' is missing");
    }
};

using MigrationFn = void (*)(RawCheckpoint&, const std::string& path);

/// 1 -> 2: tensors by name in one dictionary (v1: a newline-joined `state_keys` string and a nested
/// archive of tensors `state/t0`, `state/t1`, ...), sampler states and migrations as string lists.
void migrateNamedStateAndLists(RawCheckpoint& r, const std::string& path) {
    const auto keys = splitLines(r.at(path, "state_keys").toStringRef());
    c10::Dict<std::string, at::Tensor> state;
    for (size_t i = 0; i < keys.size(); ++i) {
        const std::string slot = "state/t" + std::to_string(i);
        state.insert(keys[i], r.at(path, slot).toTensor());
    }
    OrderedMap<c10::IValue> f;
    for (auto& [k, v] : r.fields) {
        if (k == "state_keys" || k.rfind("state/", 0) == 0) continue;
        if (k == "sampler_states") f.set(k, toList(splitLines(v.toStringRef())));
        else f.set(k, v);
    }
    f.set("state", state);
    f.set("migrations", c10::List<std::string>());
    r.fields = std::move(f);
}

struct MigrationStep {
    CheckpointMigration info;
    MigrationFn apply;
};
const std::vector<MigrationStep>& steps() {
    static const std::vector<MigrationStep> s = {{{1, "2_named_state_and_lists"}, migrateNamedStateAndLists}};
    return s;
}

/// Reads the fields of the file's own version; returns them unmigrated.
RawCheckpoint readRaw(torch::serialize::InputArchive& a, const std::string& path) {
    RawCheckpoint r;
    c10::IValue v;
    if (!a.try_read("gw_studio_checkpoint", v) || !v.isString())
        throw CheckpointError(path + ": not a GW Studio checkpoint (field 'gw_studio_checkpoint' is missing)");
    if (!a.try_read("format_version", v) || !v.isInt()) throw CheckpointError(path + ": field 'format_version' is missing");
    r.version = v.toInt();
    if (r.version > kCheckpointFormatVersion)
        throw CheckpointError(path + ": format_version " + std::to_string(r.version) + " is newer than this build reads (" +
                              std::to_string(kCheckpointFormatVersion) + "); update GW Studio");
    if (r.version < 1)
        throw CheckpointError(path + ": format_version: expected 1 to " + std::to_string(kCheckpointFormatVersion) +
                              ", found " + std::to_string(r.version));
    auto field = [&](const std::string& key, bool required, const char* type) {
        c10::IValue x;
        if (!a.try_read(key, x)) {
            if (required) throw CheckpointError(path + ": field '" + key + "' is missing");
            return;
        }
        const std::string t = type;
        const bool ok = (t == "str" && x.isString()) || (t == "int" && x.isInt()) ||
                        (t == "dict" && x.isGenericDict()) || (t == "list" && x.isList());
        if (!ok) throw CheckpointError(path + ": field '" + key + "': expected " + t + ", found " + x.tagKind());
        r.fields.set(key, x);
    };
    auto tensor = [&](const std::string& key, bool required) {
        torch::Tensor t;
        if (a.try_read(key, t)) r.fields.set(key, t);
        else if (required) throw CheckpointError(path + ": field '" + key + "' is missing");
    };
    field("kind", true, "str");
    field("config", true, "str");
    field("step", true, "int");
    field("note", true, "str");
    if (r.version == 1) {
        field("state_keys", true, "str");
        torch::serialize::InputArchive state;
        if (!a.try_read("state", state)) throw CheckpointError(path + ": field 'state' is missing");
        const auto keys = splitLines(r.fields.at("state_keys").toStringRef());
        for (size_t i = 0; i < keys.size(); ++i) {
            torch::Tensor t;
            if (!state.try_read("t" + std::to_string(i), t)) throw CheckpointError(path + ": tensor '" + keys[i] + "' is missing");
            r.fields.set("state/t" + std::to_string(i), t);
        }
        field("sampler_states", true, "str");
    } else {
        field("state", true, "dict");
        field("migrations", true, "list");
        field("sampler_states", true, "list");
    }
    tensor("adam_exp_avg", false);
    if (r.fields.contains("adam_exp_avg")) {
        tensor("adam_exp_avg_sq", true);
        field("adam_step", true, "int");
    }
    tensor("cpu_rng_state", false);
    return r;
}

std::vector<std::string> stringList(const c10::IValue& v, const std::string& path, const std::string& key) {
    std::vector<std::string> out;
    for (const auto& x : v.toListRef()) {
        if (!x.isString()) throw CheckpointError(path + ": field '" + key + "': expected strings, found " + x.tagKind());
        out.push_back(x.toStringRef());
    }
    return out;
}

/// Decodes current-version fields.
Checkpoint decode(const RawCheckpoint& r, const std::string& path) {
    Checkpoint c;
    c.formatVersion = r.version;
    c.kind = r.at(path, "kind").toStringRef();
    c.configYaml = r.at(path, "config").toStringRef();
    c.step = r.at(path, "step").toInt();
    c.note = r.at(path, "note").toStringRef();
    for (const auto& kv : r.at(path, "state").toGenericDict()) {
        if (!kv.key().isString() || !kv.value().isTensor())
            throw CheckpointError(path + ": field 'state': expected tensors by name, found " + kv.key().tagKind() + " -> " +
                                  kv.value().tagKind());
        c.state.set(kv.key().toStringRef(), kv.value().toTensor());
    }
    c.migrations = stringList(r.at(path, "migrations"), path, "migrations");
    c.samplerStates = stringList(r.at(path, "sampler_states"), path, "sampler_states");
    if (const auto* m = r.fields.find("adam_exp_avg")) {
        c.adamExpAvg = m->toTensor();
        c.adamExpAvgSq = r.at(path, "adam_exp_avg_sq").toTensor();
        c.adamStep = r.at(path, "adam_step").toInt();
    }
    if (const auto* g = r.fields.find("cpu_rng_state")) c.cpuRngState = g->toTensor();
    return c;
}
}  // namespace

const std::vector<CheckpointMigration>& checkpointMigrations() {
    static const std::vector<CheckpointMigration> list = [] {
        std::vector<CheckpointMigration> l;
        for (const auto& s : steps()) l.push_back(s.info);
        return l;
    }();
    return list;
}

void saveCheckpoint(const std::string& path, const Checkpoint& c) {
    torch::serialize::OutputArchive a;
    a.write("gw_studio_checkpoint", c10::IValue(std::string("GW Studio checkpoint")));
    a.write("format_version", c10::IValue(kCheckpointFormatVersion));
    a.write("kind", c10::IValue(c.kind));
    a.write("config", c10::IValue(c.configYaml));
    a.write("step", c10::IValue(c.step));
    a.write("note", c10::IValue(c.note));
    c10::Dict<std::string, at::Tensor> state;
    for (const auto& [k, t] : c.state) state.insert(k, t.detach().cpu());
    a.write("state", c10::IValue(state));
    a.write("migrations", c10::IValue(toList(c.migrations)));
    if (c.adamExpAvg.defined()) {
        a.write("adam_exp_avg", c.adamExpAvg.detach().cpu());
        a.write("adam_exp_avg_sq", c.adamExpAvgSq.detach().cpu());
        a.write("adam_step", c10::IValue(c.adamStep));
    }
    if (c.cpuRngState.defined()) a.write("cpu_rng_state", c.cpuRngState);
    a.write("sampler_states", c10::IValue(toList(c.samplerStates)));
    // To memory first: LibTorch's zip writer finishes the archive in its destructor, and a write that
    // fails there (a full disk) would terminate the process; a buffer cannot fail that way.
    std::string bytes;
    a.save_to([&bytes](const void* data, size_t n) {
        bytes.append(static_cast<const char*>(data), n);
        return n;
    });
    writeFileAtomically(path, bytes);
}

void checkRecords(const std::string& path, const std::string& what) {
    std::string damage;
    uint64_t version = 0;
    try {
        damage = data::checkZipFile(path, &version);
    } catch (const std::runtime_error& e) {
        throw CheckpointError(e.what());
    }
    if (damage.empty()) {
        // Out of range, LibTorch 1.13's reader throws from its constructor and leaks (docs/fuzzing.md).
        if (version < caffe2::serialize::kMinSupportedFileFormatVersion || version > caffe2::serialize::kMaxSupportedFileFormatVersion)
            throw CheckpointError(path + ": file format version " + std::to_string(version) + "; this GW Studio's LibTorch reads " +
                                  std::to_string(caffe2::serialize::kMinSupportedFileFormatVersion) + " to " +
                                  std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion) +
                                  " (a newer torch wrote it, or the file is damaged)");
        return;
    }
    if (damage.rfind("not a zip archive", 0) == 0 || damage.rfind("not a LibTorch archive", 0) == 0 ||
        damage.find("expected a file format version") != std::string::npos)
        throw CheckpointError(path + ": not a readable " + what + " (" + damage + ")");
    throw CheckpointError(path + ": " + damage + ": the file changed after it was written (a disk or copy error); nothing "
                                 "was loaded from it");
}

Checkpoint loadCheckpoint(const std::string& path, int64_t* foundVersion) {
    if (!fs::exists(path)) throw CheckpointError(path + ": no such checkpoint file");
    checkRecords(path, "GW Studio checkpoint");
    torch::serialize::InputArchive a;
    try {
        a.load_from(path);
    } catch (const std::exception& e) {
        std::string msg = e.what();
        msg = msg.substr(0, msg.find('\n'));
        throw CheckpointError(path + ": not a readable GW Studio checkpoint (expected a LibTorch archive; " + msg + ")");
    }
    try {
        RawCheckpoint r = readRaw(a, path);
        if (foundVersion) *foundVersion = r.version;
        std::vector<std::string> applied;
        for (const auto& s : steps()) {
            if (s.info.from != r.version) continue;
            s.apply(r, path);
            r.version = s.info.from + 1;
            applied.push_back(s.info.name);
        }
        if (r.version != kCheckpointFormatVersion)
            throw CheckpointError(path + ": no migration from format_version " + std::to_string(r.version));
        Checkpoint c = decode(r, path);
        c.migrations.insert(c.migrations.end(), applied.begin(), applied.end());
        return c;
    } catch (const CheckpointError&) {
        throw;
    } catch (const std::exception& e) {
        std::string msg = e.what();
        throw CheckpointError(path + ": damaged checkpoint (" + msg.substr(0, msg.find('\n')) + ")");
    }
}

MigrationResult migrateCheckpointFile(const std::string& path) {
    MigrationResult r;
    Checkpoint c = loadCheckpoint(path, &r.fromVersion);
    r.toVersion = c.formatVersion;
    if (r.fromVersion == r.toVersion) return r;
    r.applied.assign(c.migrations.end() - (r.toVersion - r.fromVersion), c.migrations.end());
    const fs::path p(path);
    for (int n = 1; r.backup.empty(); ++n) {
        const fs::path b = p.parent_path() / (p.stem().string() + "-" + std::to_string(n) + p.extension().string());
        if (!fs::exists(b)) r.backup = b.string();
    }
    try {
        writeAtomically(r.backup, [&](const std::string& tmp) { fs::copy_file(path, tmp); });
    } catch (const std::exception& e) {
        throw CheckpointError(r.backup + ": cannot keep a backup (" + std::string(e.what()) + "); nothing was changed");
    }
    saveCheckpoint(path, c);
    return r;
}

}  // namespace gw
