// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/run/runs.h"

#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iterator>
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

/// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot; 0 when unknown.
int64_t processStartTicks(long pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return 0;
    const auto close = line.rfind(')');  // the command name, in parentheses, may hold spaces
    if (close == std::string::npos) return 0;
    std::istringstream rest(line.substr(close + 1));
    std::string field;
    for (int i = 3; i <= 22 && (rest >> field); ++i)
        if (i == 22) {
            try {
                return std::stoll(field);
            } catch (const std::exception&) {
                return 0;
            }
        }
    return 0;
}

std::string bootId() {
    std::ifstream f("/proc/sys/kernel/random/boot_id");
    std::string id;
    std::getline(f, id);
    return id;
}

/// Sets what a status written now says of itself: `updated`, the host when unset, and, for this
/// process, its start time and the boot id when unset.
void stamp(RunStatus& s) {
    s.updated = utcNow();
    if (s.host.empty()) s.host = hostName();
    if (s.pid == static_cast<long>(::getpid())) {
        if (s.pidStart == 0) s.pidStart = processStartTicks(s.pid);
        if (s.bootId.empty()) s.bootId = bootId();
    }
}

/// Who could have killed a process outright, for the messages of an interrupted run.
const char* const kKilledOutright = "kill -9, or the kernel's out-of-memory killer: dmesg tells which";

/// status.yaml's text; `errorOverride`, when given, stands for the error (the crash recorder's marker).
std::string statusYaml(const RunStatus& s, const std::string* errorOverride = nullptr) {
    YAML::Emitter e;
    e << YAML::BeginMap;
    e << YAML::Key << "state" << YAML::Value << s.state;
    e << YAML::Key << "step" << YAML::Value << s.step;
    e << YAML::Key << "total_steps" << YAML::Value << s.totalSteps;
    e << YAML::Key << "pid" << YAML::Value << s.pid;
    if (s.pidStart > 0) e << YAML::Key << "pid_start" << YAML::Value << s.pidStart;
    if (!s.bootId.empty()) e << YAML::Key << "boot_id" << YAML::Value << s.bootId;
    e << YAML::Key << "host" << YAML::Value << s.host;
    e << YAML::Key << "started" << YAML::Value << s.started;
    e << YAML::Key << "updated" << YAML::Value << s.updated;
    if (s.signal != 0) e << YAML::Key << "signal" << YAML::Value << s.signal;
    const std::string& error = errorOverride ? *errorOverride : s.error;
    if (!error.empty()) e << YAML::Key << "error" << YAML::Value << YAML::DoubleQuoted << error;
    e << YAML::EndMap;
    return std::string(e.c_str()) + "\n";
}

/// status.yaml as written, without looking at the process.
RunStatus readStatusFile(const std::string& path) {
    RunStatus s;
    std::error_code ec;
    if (!fs::exists(path, ec)) return s;
    try {
        const YAML::Node n = YAML::LoadFile(path);
        auto str = [&](const char* k) { return n[k] && n[k].IsScalar() ? n[k].Scalar() : std::string(); };
        s.state = str("state");
        s.step = n["step"] ? n["step"].as<int64_t>() : 0;
        s.totalSteps = n["total_steps"] ? n["total_steps"].as<int64_t>() : 0;
        s.pid = n["pid"] ? n["pid"].as<long>() : 0;
        s.pidStart = n["pid_start"] ? n["pid_start"].as<int64_t>() : 0;
        s.bootId = str("boot_id");
        s.host = str("host");
        s.started = str("started");
        s.updated = str("updated");
        s.signal = n["signal"] ? n["signal"].as<int>() : 0;
        s.error = str("error");
    } catch (const std::exception& e) {
        s = RunStatus{};
        s.state = "failed";
        s.error = path + ": unreadable (" + e.what() + ")";
    }
    return s;
}
}  // namespace

const char* signalName(int sig) {
    switch (sig) {
        case SIGKILL: return "SIGKILL";
        case SIGTERM: return "SIGTERM";
        case SIGINT: return "SIGINT";
        case SIGSEGV: return "SIGSEGV";
        case SIGABRT: return "SIGABRT";
        case SIGBUS: return "SIGBUS";
        case SIGFPE: return "SIGFPE";
        case SIGILL: return "SIGILL";
        case SIGHUP: return "SIGHUP";
        case SIGXCPU: return "SIGXCPU";
        case SIGXFSZ: return "SIGXFSZ";
        case SIGPIPE: return "SIGPIPE";
        default: return nullptr;
    }
}

namespace {
std::string signalText(int sig) {
    const char* n = signalName(sig);
    return n ? std::string(n) : "signal " + std::to_string(sig);
}
}  // namespace

void writeRunStatus(const std::string& runDir, RunStatus s) {
    stamp(s);
    const std::string path = runStatusPath(runDir);
    const std::string text = statusYaml(s);
    try {
        writeFileAtomically(path, text);
    } catch (const WriteError&) {
        // A full disk cannot take the temporary file; the old file's block can take the news.
        std::error_code ec;
        if (text.size() > 4096 || !fs::is_regular_file(path, ec)) throw;
        overwriteFileInPlace(path, text);
    }
}

RunStatus readRunStatus(const std::string& runDir) {
    RunStatus s = readStatusFile(runStatusPath(runDir));
    if (s.state != "running" || s.pid <= 0 || s.host != hostName()) return s;
    const std::string who = "its process (pid " + std::to_string(s.pid) + " on " + s.host + ")";
    const std::string resume = "; its last checkpoint (step " + std::to_string(s.step) + ") resumes it";
    if (!s.bootId.empty() && s.bootId != bootId()) {
        s.state = "interrupted";
        s.error = who + " is gone: the machine has restarted since" + resume;
    } else if ((::kill(static_cast<pid_t>(s.pid), 0) != 0 && errno == ESRCH) ||
               (s.pidStart > 0 && processStartTicks(s.pid) != s.pidStart)) {
        s.state = "interrupted";
        s.error = who + " is gone without a word: killed outright (" + kKilledOutright + ")" + resume;
    }
    return s;
}

bool recordRunKilled(const std::string& runDir, long pid, int sig) {
    try {
        RunStatus s = readStatusFile(runStatusPath(runDir));
        if (s.state != "running" || s.pid != pid) return false;
        const bool outright = sig == SIGKILL || sig == SIGTERM || sig == SIGINT;
        s.state = outright ? "interrupted" : "failed";
        s.signal = sig;
        s.error = "the process (pid " + std::to_string(pid) + ") was ended by " + signalText(sig) + " after step " +
                  std::to_string(s.step) +
                  (sig == SIGKILL ? " (" + std::string(kKilledOutright) + ")"
                   : outright     ? ""
                                  : " (a crash: its log may say more)") +
                  "; its last checkpoint resumes it";
        writeRunStatus(runDir, s);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

// ---- RunCrashRecorder --------------------------------------------------------------------------------

namespace {
/// What the handler writes, prepared beforehand: two copies, so that update() never changes the one a
/// handler may be reading (the active index flips once the other is complete).
struct CrashText {
    char path[4096];
    char tmp[4200];
    char head[6144];  ///< status.yaml up to the signal's name in the error
    size_t headLength;
    char tail[512];  ///< the rest of the error and the line break before "signal: N"
    size_t tailLength;
};
CrashText gCrashTexts[2];
std::atomic<int> gCrashActive{-1};
std::atomic<bool> gCrashTaken{false};
constexpr int kCrashSignals[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
struct sigaction gCrashPrevious[5];

void writeAllSafe(int fd, const char* p, size_t n) { (void)writeAllTo(fd, p, n); }  // nothing to do on failure

void onCrashSignal(int sig) {
    const int i = gCrashActive.load();
    if (i >= 0) {
        const CrashText& t = gCrashTexts[i];
        const int fd = ::open(t.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            writeAllSafe(fd, t.head, t.headLength);
            const char* name = signalName(sig);
            writeAllSafe(fd, name ? name : "a signal", std::strlen(name ? name : "a signal"));
            writeAllSafe(fd, t.tail, t.tailLength);
            char num[16];
            int k = 0;
            for (int v = sig; v > 0 && k < 15; v /= 10) num[k++] = static_cast<char>('0' + v % 10);
            writeAllSafe(fd, "signal: ", 8);
            while (k > 0) writeAllSafe(fd, &num[--k], 1);
            writeAllSafe(fd, "\n", 1);
            ::fsync(fd);
            ::close(fd);
            ::rename(t.tmp, t.path);
        }
    }
    // Let the signal do what it would have done without us.
    for (size_t j = 0; j < std::size(kCrashSignals); ++j)
        if (kCrashSignals[j] == sig) ::sigaction(sig, &gCrashPrevious[j], nullptr);
    ::raise(sig);
}

bool copyInto(char* dst, size_t cap, const std::string& src) {
    if (src.size() + 1 > cap) return false;
    std::memcpy(dst, src.c_str(), src.size() + 1);
    return true;
}
}  // namespace

RunCrashRecorder::RunCrashRecorder(const std::string& runDir) {
    bool expected = false;
    if (!gCrashTaken.compare_exchange_strong(expected, true)) return;
    armed_ = true;
    const std::string path = runStatusPath(runDir);
    for (auto& t : gCrashTexts) {
        copyInto(t.path, sizeof t.path, path);
        copyInto(t.tmp, sizeof t.tmp, path + ".partial");
    }
    for (size_t j = 0; j < std::size(kCrashSignals); ++j) {
        struct sigaction sa {};
        sa.sa_handler = onCrashSignal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_NODEFER;
        ::sigaction(kCrashSignals[j], &sa, &gCrashPrevious[j]);
    }
}

RunCrashRecorder::~RunCrashRecorder() {
    if (!armed_) return;
    for (size_t j = 0; j < std::size(kCrashSignals); ++j) ::sigaction(kCrashSignals[j], &gCrashPrevious[j], nullptr);
    gCrashActive.store(-1);
    gCrashTaken.store(false);
}

void RunCrashRecorder::update(const RunStatus& status) {
    if (!armed_) return;
    RunStatus s = status;
    s.state = "failed";
    stamp(s);
    static const std::string marker = "@@GW_SIGNAL@@";
    const std::string error = "the process (pid " + std::to_string(s.pid) + ") died of " + marker + " after step " +
                              std::to_string(s.step) + " (a crash: its log may say more); its last checkpoint resumes it";
    const std::string text = statusYaml(s, &error);
    const auto at = text.find(marker);
    if (at == std::string::npos) return;
    const int next = gCrashActive.load() == 0 ? 1 : 0;
    CrashText& t = gCrashTexts[next];
    if (!copyInto(t.head, sizeof t.head, text.substr(0, at)) || !copyInto(t.tail, sizeof t.tail, text.substr(at + marker.size())))
        return;
    t.headLength = at;
    t.tailLength = text.size() - at - marker.size();
    gCrashActive.store(next);
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
