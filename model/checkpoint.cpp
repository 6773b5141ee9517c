// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

namespace gw {
namespace fs = std::filesystem;

namespace {
void fsyncFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

std::string keyList(const OrderedMap<torch::Tensor>& m) {
    std::string s;
    for (const auto& k : m.keys()) s += (s.empty() ? "" : "\n") + k;
    return s;
}
}  // namespace

void saveCheckpoint(const std::string& path, const Checkpoint& c) {
    torch::serialize::OutputArchive a;
    a.write("gw_studio_checkpoint", c10::IValue(std::string("GW Studio checkpoint")));
    a.write("format_version", c10::IValue(c.formatVersion));
    a.write("kind", c10::IValue(c.kind));
    a.write("config", c10::IValue(c.configYaml));
    a.write("step", c10::IValue(c.step));
    a.write("note", c10::IValue(c.note));
    a.write("state_keys", c10::IValue(keyList(c.state)));
    torch::serialize::OutputArchive state;
    int64_t i = 0;
    for (const auto& [k, t] : c.state) state.write("t" + std::to_string(i++), t.detach().cpu());
    a.write("state", state);
    if (c.adamExpAvg.defined()) {
        a.write("adam_exp_avg", c.adamExpAvg.detach().cpu());
        a.write("adam_exp_avg_sq", c.adamExpAvgSq.detach().cpu());
        a.write("adam_step", c10::IValue(c.adamStep));
    }
    if (c.cpuRngState.defined()) a.write("cpu_rng_state", c.cpuRngState);
    std::string samplers;
    for (const auto& s : c.samplerStates) samplers += s + "\n";
    a.write("sampler_states", c10::IValue(samplers));

    const fs::path target(path);
    if (target.has_parent_path()) fs::create_directories(target.parent_path());
    const std::string tmp = path + ".partial";
    try {
        a.save_to(tmp);
        fsyncFile(tmp);
        fs::rename(tmp, target);
    } catch (const std::exception& e) {
        std::error_code ec;
        fs::remove(tmp, ec);
        throw CheckpointError(path + ": cannot write the checkpoint (" + std::string(e.what()).substr(0, 300) + ")");
    }
}

Checkpoint loadCheckpoint(const std::string& path) {
    if (!fs::exists(path)) throw CheckpointError(path + ": no such checkpoint file");
    torch::serialize::InputArchive a;
    try {
        a.load_from(path);
    } catch (const std::exception& e) {
        std::string msg = e.what();
        msg = msg.substr(0, msg.find('\n'));
        throw CheckpointError(path + ": not a readable GW Studio checkpoint (expected a LibTorch archive; " + msg + ")");
    }
    auto read = [&](const char* key) {
        c10::IValue v;
        if (!a.try_read(key, v)) throw CheckpointError(path + ": field '" + key + "' is missing");
        return v;
    };
    Checkpoint c;
    try {
        c10::IValue magic;
        if (!a.try_read("gw_studio_checkpoint", magic) || !magic.isString())
            throw CheckpointError(path + ": not a GW Studio checkpoint (field 'gw_studio_checkpoint' is missing)");
        c.formatVersion = read("format_version").toInt();
        if (c.formatVersion > kCheckpointFormatVersion)
            throw CheckpointError(path + ": format_version " + std::to_string(c.formatVersion) +
                                  " is newer than this build reads (" + std::to_string(kCheckpointFormatVersion) + ")");
        if (c.formatVersion < 1)
            throw CheckpointError(path + ": format_version: expected >= 1, found " + std::to_string(c.formatVersion));
        c.kind = read("kind").toStringRef();
        c.configYaml = read("config").toStringRef();
        c.step = read("step").toInt();
        c.note = read("note").toStringRef();
        const std::string keys = read("state_keys").toStringRef();
        torch::serialize::InputArchive state;
        if (!a.try_read("state", state)) throw CheckpointError(path + ": field 'state' is missing");
        size_t pos = 0;
        int64_t i = 0;
        while (pos < keys.size()) {
            size_t end = keys.find('\n', pos);
            if (end == std::string::npos) end = keys.size();
            torch::Tensor t;
            const std::string slot = "t" + std::to_string(i++);
            if (!state.try_read(slot, t)) throw CheckpointError(path + ": tensor '" + keys.substr(pos, end - pos) + "' is missing");
            c.state.set(keys.substr(pos, end - pos), t);
            pos = end + 1;
        }
        torch::Tensor m;
        if (a.try_read("adam_exp_avg", m)) {
            c.adamExpAvg = m;
            if (!a.try_read("adam_exp_avg_sq", c.adamExpAvgSq)) throw CheckpointError(path + ": field 'adam_exp_avg_sq' is missing");
            c.adamStep = read("adam_step").toInt();
        }
        torch::Tensor rng;
        if (a.try_read("cpu_rng_state", rng)) c.cpuRngState = rng;
        const std::string samplers = read("sampler_states").toStringRef();
        pos = 0;
        while (pos < samplers.size()) {
            size_t end = samplers.find('\n', pos);
            if (end == std::string::npos) end = samplers.size();
            c.samplerStates.push_back(samplers.substr(pos, end - pos));
            pos = end + 1;
        }
    } catch (const CheckpointError&) {
        throw;
    } catch (const std::exception& e) {
        std::string msg = e.what();
        throw CheckpointError(path + ": damaged checkpoint (" + msg.substr(0, msg.find('\n')) + ")");
    }
    return c;
}

}  // namespace gw
