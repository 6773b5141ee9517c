// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/run/runs.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "data/atomic_file.h"

#ifdef GW_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace gw {
namespace fs = std::filesystem;

std::string runConfigPath(const std::string& runDir) { return (fs::path(runDir) / "config.yaml").string(); }

std::string runCheckpointPath(const std::string& runDir) {
    return (fs::path(runDir) / "checkpoints" / "last.ckpt").string();
}

std::string runStatusPath(const std::string& runDir) { return (fs::path(runDir) / "status.yaml").string(); }

std::string utcNow() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

namespace {
std::string hostName() {
    char h[256] = {};
    if (::gethostname(h, sizeof h - 1) != 0) return "";
    return h;
}
}  // namespace

void writeRunStatus(const std::string& runDir, RunStatus s) {
    s.updated = utcNow();
    if (s.host.empty()) s.host = hostName();
    YAML::Emitter e;
    e << YAML::BeginMap;
    e << YAML::Key << "state" << YAML::Value << s.state;
    e << YAML::Key << "step" << YAML::Value << s.step;
    e << YAML::Key << "total_steps" << YAML::Value << s.totalSteps;
    e << YAML::Key << "pid" << YAML::Value << s.pid;
    e << YAML::Key << "host" << YAML::Value << s.host;
    e << YAML::Key << "started" << YAML::Value << s.started;
    e << YAML::Key << "updated" << YAML::Value << s.updated;
    if (!s.error.empty()) e << YAML::Key << "error" << YAML::Value << YAML::DoubleQuoted << s.error;
    e << YAML::EndMap;
    writeFileAtomically(runStatusPath(runDir), std::string(e.c_str()) + "\n");
}

RunStatus readRunStatus(const std::string& runDir) {
    RunStatus s;
    const std::string path = runStatusPath(runDir);
    std::error_code ec;
    if (!fs::exists(path, ec)) return s;
    try {
        const YAML::Node n = YAML::LoadFile(path);
        auto str = [&](const char* k) { return n[k] && n[k].IsScalar() ? n[k].Scalar() : std::string(); };
        s.state = str("state");
        s.step = n["step"] ? n["step"].as<int64_t>() : 0;
        s.totalSteps = n["total_steps"] ? n["total_steps"].as<int64_t>() : 0;
        s.pid = n["pid"] ? n["pid"].as<long>() : 0;
        s.host = str("host");
        s.started = str("started");
        s.updated = str("updated");
        s.error = str("error");
    } catch (const std::exception& e) {
        s.state = "failed";
        s.error = path + ": unreadable (" + e.what() + ")";
        return s;
    }
    if (s.state == "running" && s.pid > 0 && s.host == hostName() && ::kill(static_cast<pid_t>(s.pid), 0) != 0 && errno == ESRCH)
        s.state = "interrupted";
    return s;
}

std::string resolveCheckpointPath(const std::string& path) {
    return fs::is_directory(path) ? runCheckpointPath(path) : path;
}

std::string userDataDir() {
    const char* xdg = std::getenv("XDG_DATA_HOME");
    if (xdg && *xdg) return (fs::path(xdg) / "gw-studio").string();
    const char* home = std::getenv("HOME");
    return (fs::path(home && *home ? home : ".") / ".local" / "share" / "gw-studio").string();
}

bool writableFolder(const std::string& folder) {
    std::error_code ec;
    fs::path p = fs::absolute(folder, ec).lexically_normal();
    while (!p.empty() && !fs::exists(p, ec)) {
        if (p == p.parent_path()) break;
        p = p.parent_path();
    }
    if (!fs::is_directory(p, ec) || ::access(p.c_str(), W_OK) != 0) return false;
    // access() says yes to root everywhere, also on /proc or a read-only mount: create a file to be sure.
    std::string probe = (p / ".gw-studio-write-test-XXXXXX").string();
    const int fd = ::mkstemp(probe.data());
    if (fd < 0) return false;
    ::close(fd);
    ::unlink(probe.c_str());
    return true;
}

namespace {
void expectGwKind(const Checkpoint& c, const std::string& path) {
    if (c.kind != "gw") throw CheckpointError(path + ": expected a GW training checkpoint, found kind '" + c.kind + "'");
}
}  // namespace

OpenedCheckpoint openCheckpoint(const std::string& path, const std::vector<std::string>& overrides) {
    OpenedCheckpoint o;
    o.path = resolveCheckpointPath(path);
    o.checkpoint = loadCheckpoint(o.path);
    expectGwKind(o.checkpoint, o.path);
    o.config = parseExperiment(o.checkpoint.configYaml, o.path + " (embedded config)", overrides, "/");
    return o;
}

OpenedRun openRun(const std::string& runDir, const std::vector<std::string>& overrides) {
    OpenedRun o;
    o.dir = runDir;
    o.config = loadExperiment(runConfigPath(runDir), overrides);
    o.checkpointPath = runCheckpointPath(runDir);
    o.checkpoint = loadCheckpoint(o.checkpointPath);
    expectGwKind(o.checkpoint, o.checkpointPath);
    return o;
}

std::vector<DeviceInfo> listDevices() {
    std::vector<DeviceInfo> out;
    DeviceInfo cpu;
    cpu.id = "cpu";
    cpu.cores = std::thread::hardware_concurrency();
    cpu.threads = torch::get_num_threads();
    out.push_back(cpu);
#ifdef GW_WITH_CUDA
    const int n = static_cast<int>(torch::cuda::device_count());
    for (int i = 0; i < n; ++i) {
        const auto* p = at::cuda::getDeviceProperties(i);
        DeviceInfo d;
        d.id = "cuda:" + std::to_string(i);
        d.cudaBuild = true;
        d.name = p->name;
        d.memoryBytes = static_cast<std::uint64_t>(p->totalGlobalMem);
        d.major = p->major;
        d.minor = p->minor;
        out.push_back(d);
    }
    if (n == 0) {
        DeviceInfo none;
        none.id = "cuda";
        none.available = false;
        none.cudaBuild = true;
        out.push_back(none);
    }
#else
    DeviceInfo none;
    none.id = "cuda";
    none.available = false;
    out.push_back(none);
#endif
    return out;
}

}  // namespace gw
