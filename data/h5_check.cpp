// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/h5_check.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <new>
#include <set>
#include <sstream>
#include <vector>

#include <H5Cpp.h>

#include "data/atomic_file.h"

extern char** environ;

namespace gw::data {
namespace {

// Raised whenever the walk changes, so that answers of an older checker are not trusted.
constexpr const char* kCheckVersion = "gw-h5-check 1";
// A dataset of at most this many bytes is read whole in the child, as the engine's cache reads it.
constexpr int64_t kReadWholeBytes = 8 << 20;

std::atomic<bool> insideChild{false};
std::mutex mutex;  // guards everything below; also makes two threads checking one file spawn once
std::set<std::string> healthy;
H5CheckCounts counts;
std::string chosenExecutable;
double timeoutSeconds = 60;

bool isExecutableFile(const std::string& path) {
    struct stat st{};
    return !path.empty() && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string selfExecutable() {
    char buf[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string baseName(const std::string& p) {
    const auto at = p.rfind('/');
    return at == std::string::npos ? p : p.substr(at + 1);
}

std::string dirName(const std::string& p) {
    const auto at = p.rfind('/');
    return at == std::string::npos ? std::string(".") : p.substr(0, at);
}

/// The executable, searched as h5CheckExecutable says; `looked` collects where.
std::string findExecutable(std::vector<std::string>& looked) {
    if (!chosenExecutable.empty()) {
        looked.push_back(chosenExecutable + " (set by the program)");
        return isExecutableFile(chosenExecutable) ? chosenExecutable : std::string();
    }
    const std::string self = selfExecutable();
    if (!self.empty()) {
        if (baseName(self) == "gw") return self;
        const std::string sibling = dirName(self) + "/gw";
        looked.push_back(sibling);
        if (isExecutableFile(sibling)) return sibling;
    }
#ifdef GW_BUILD_TREE_GW
    looked.push_back(GW_BUILD_TREE_GW);
    if (isExecutableFile(GW_BUILD_TREE_GW)) return GW_BUILD_TREE_GW;
#endif
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path ? path : "");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        if (dir.empty()) continue;
        const std::string candidate = dir + "/gw";
        if (isExecutableFile(candidate)) return candidate;
    }
    looked.push_back("gw on the PATH");
    return {};
}

std::string locate() {
    std::vector<std::string> looked;
    std::string exe = findExecutable(looked);
    if (exe.empty()) {
        std::string where;
        for (const auto& l : looked) where += (where.empty() ? "" : ", ") + l;
        throw H5CheckError("the `gw` executable that checks HDF5 files in a child process was not found (looked at: " +
                           where + "); install gw beside this program or put it on the PATH");
    }
    return exe;
}

/// The file's identity as the cache keys it: real path, size, mtime in ns, device and inode.
std::string stateKey(const std::string& file) {
    struct stat st{};
    if (::stat(file.c_str(), &st) != 0) throw DataError(file + ": no such file");
    char* real = ::realpath(file.c_str(), nullptr);
    const std::string path = real ? real : file;
    std::free(real);
    return std::string(kCheckVersion) + "\n" + path + "\nsize " + std::to_string(st.st_size) + "\nmtime " +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "\ninode " +
           std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + "\n";
}

std::string cacheFolder() {
    const char* xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg && xdg[0] == '/') return std::string(xdg) + "/gw-studio/h5-checks";
    const char* home = std::getenv("HOME");
    if (home && home[0] == '/') return std::string(home) + "/.cache/gw-studio/h5-checks";
    return {};
}

/// One cache file per file state, named by a 64-bit FNV-1a hash of the key; the content is the key
/// itself, so a collision reads as a miss.
std::string cacheFile(const std::string& key) {
    const std::string folder = cacheFolder();
    if (folder.empty()) return {};
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
    char name[32];
    std::snprintf(name, sizeof name, "%016llx.ok", static_cast<unsigned long long>(h));
    return folder + "/" + name;
}

bool cachedOnDisk(const std::string& key) {
    const std::string path = cacheFile(key);
    if (path.empty()) return false;
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return content == key + "healthy\n";
}

void rememberOnDisk(const std::string& key) {
    const std::string path = cacheFile(key);
    if (path.empty()) return;
    try {
        writeFileAtomically(path, key + "healthy\n");
    } catch (const std::exception&) {
        // Only a cache: the next process checks again.
    }
}

std::string signalName(int sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

/// The last non-empty lines of the child's output, at most `n`, joined by "; ".
std::string lastLines(const std::string& out, int n) {
    std::vector<std::string> lines;
    std::stringstream s(out);
    for (std::string l; std::getline(s, l);)
        if (l.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(l);
    std::string r;
    for (size_t i = lines.size() > size_t(n) ? lines.size() - size_t(n) : 0; i < lines.size(); ++i)
        r += (r.empty() ? "" : "; ") + lines[i];
    return r;
}

struct ChildResult {
    bool timedOut = false;
    int status = 0;  // waitpid's
    std::string output;
};

/// Runs `exe check-data file` with stdout and stderr into one pipe, stdin from /dev/null; kills it
/// past the time limit. No shell.
ChildResult runChild(const std::string& exe, const std::string& file, double seconds) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw H5CheckError(file + ": cannot check the HDF5 file (pipe: " + std::strerror(errno) + ")");
    // Our end never blocks: a grandchild that kept the pipe open must not hold the parent after the child ended.
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);   // a GUI thread may block signals; the child starts clean
    posix_spawnattr_setsigdefault(&attr, &all);  // and with default handlers (SIGPIPE ignored by a parent)
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    // A path starting with '-' would read as an option.
    const std::string arg = !file.empty() && file[0] == '-' ? "./" + file : file;
    std::vector<char*> argv{const_cast<char*>(exe.c_str()), const_cast<char*>("check-data"), const_cast<char*>(arg.c_str()), nullptr};
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        throw H5CheckError(file + ": cannot check the HDF5 file: starting " + exe + " failed (" + std::strerror(rc) + ")");
    }
    ++counts.spawned;

    ChildResult r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    bool open = true, reaped = false;
    char buf[4096];
    while (!reaped) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            r.timedOut = true;
            break;
        }
        if (open) {
            pollfd p{fds[0], POLLIN, 0};
            const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
            if (ready > 0) {
                const ssize_t n = ::read(fds[0], buf, sizeof buf);
                if (n > 0) {
                    r.output.append(buf, static_cast<size_t>(n));
                    if (r.output.size() > 64 * 1024) r.output.erase(0, r.output.size() - 32 * 1024);  // keep the tail
                } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                    open = false;
                }
            }
        } else {
            ::poll(nullptr, 0, static_cast<int>(std::min<long long>(left, 10)));
        }
        int status = 0;
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            r.status = status;
            reaped = true;
        }
    }
    if (!reaped) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        r.status = status;
    }
    // Whatever the child wrote before it ended.
    for (ssize_t n; open && (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.output.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    return r;
}

std::string formatSeconds(double s) {
    char b[32];
    std::snprintf(b, sizeof b, s == static_cast<int64_t>(s) ? "%.0f" : "%.1f", s);
    return b;
}

}  // namespace

void requireCheckedHdf5(const std::string& file) {
    if (insideChild.load()) return;
    const std::string key = stateKey(file);  // DataError "no such file"
    std::lock_guard<std::mutex> lock(mutex);
    if (healthy.count(key)) {
        ++counts.memoryHits;
        return;
    }
    if (cachedOnDisk(key)) {
        ++counts.diskHits;
        if (healthy.size() > 4096) healthy.clear();
        healthy.insert(key);
        return;
    }
    std::string exe;
    try {
        exe = locate();
    } catch (const H5CheckError& e) {
        throw H5CheckError(file + ": not opened: " + e.what());
    }
    const ChildResult r = runChild(exe, file, timeoutSeconds);
    const std::string said = lastLines(r.output, 2);
    const std::string child = "a child process that checked it, `" + baseName(exe) + " check-data`";
    // The child says what it is about to do ("listing the datasets", "checking /train/image").
    std::string step;
    {
        std::stringstream lines(r.output);
        for (std::string l; std::getline(lines, l);)
            if (l.rfind("checking ", 0) == 0 || l.rfind("listing ", 0) == 0) step = l;
    }
    const std::string during = step.empty() ? std::string() : ", while " + step;
    if (r.timedOut)
        throw H5CheckError(file + ": HDF5 did not finish reading it within " + formatSeconds(timeoutSeconds) + " s (in " + child +
                           during + ", which was stopped); the file is damaged (a hang) or on a very slow disk, and was not opened");
    if (WIFSIGNALED(r.status))
        throw H5CheckError(file + ": HDF5 crashed while reading it (" + signalName(WTERMSIG(r.status)) + " in " + child + during +
                           "); the file is damaged and was not opened");
    const int code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
    if (code == 0) {
        if (healthy.size() > 4096) healthy.clear();
        healthy.insert(key);
        rememberOnDisk(key);
        return;
    }
    if (code == 2) {
        // The reader's own refusal, already naming the file.
        const std::string line = lastLines(r.output, 1);
        throw DataError(line.empty() ? file + ": refused by the HDF5 check" : line);
    }
    if (code == 4)  // a damage the child found before HDF5 met it
        throw H5CheckError((said.empty() ? file + ": damaged file" : lastLines(r.output, 1)) + " (found by " + child +
                           "); the file was not opened");
    if (code == 3)
        throw H5CheckError(file + ": reading it needed more than the " + std::to_string(kH5CheckMemoryMiB) + " MiB that " + child +
                           " may use" + during + "; the file is damaged (a size out of range) or its rows are too large, and was not opened");
    throw H5CheckError(file + ": the HDF5 check failed in " + child + during + " (exit status " + std::to_string(code) + ")" +
                       (said.empty() ? std::string() : ": " + said) + "; the file was not opened");
}

H5CheckCounts h5CheckCounts() {
    std::lock_guard<std::mutex> lock(mutex);
    return counts;
}

void forgetH5ChecksInMemory() {
    std::lock_guard<std::mutex> lock(mutex);
    healthy.clear();
}

void setH5CheckExecutable(const std::string& path) {
    std::string resolved = path;  // "/proc/self/exe" becomes the file it names now
    if (char* real = path.empty() ? nullptr : ::realpath(path.c_str(), nullptr)) {
        resolved = real;
        std::free(real);
    }
    std::lock_guard<std::mutex> lock(mutex);
    chosenExecutable = resolved;
}

std::string h5CheckExecutable() {
    std::lock_guard<std::mutex> lock(mutex);
    return locate();
}

void setH5CheckTimeout(double seconds) {
    std::lock_guard<std::mutex> lock(mutex);
    timeoutSeconds = seconds > 0 ? seconds : 60;
}

void markH5CheckChild() { insideChild.store(true); }

namespace {
/// Bytes of address space mapped now (/proc/self/status VmSize), or 0.
int64_t mappedBytes() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmSize:", 0) == 0) return std::atoll(line.c_str() + 7) * 1024;
    return 0;
}

/// A damage the check finds itself, beyond what the reader refuses: the child exits with status 4.
struct Damaged : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Every attribute message in the object header of `dataset` must hold the name, datatype and
/// dataspace it says it has. HDF5 1.10 decodes such a message without comparing those sizes with the
/// message's own, and copies past the end of the header it read (docs/fuzzing.md,
/// h5-attribute-message-overread.h5): a crash or a read of unrelated memory. It does so in the first
/// H5Aexists, so this reads the header's bytes itself (object header versions 1 and 2, 8-byte
/// addresses and lengths: what HDF5 and h5py write; anything else is left to HDF5).
void requireAttributeMessagesFit(const std::string& file, const H5::H5File& f, const std::string& dataset) {
    H5O_info_t info{};
    if (H5Oget_info_by_name(f.getId(), dataset.c_str(), &info, H5P_DEFAULT) < 0) return;
    hsize_t userblock = 0;
    size_t addrBytes = 0, lenBytes = 0;
    {
        H5::FileCreatPropList fcpl = f.getCreatePlist();
        if (H5Pget_userblock(fcpl.getId(), &userblock) < 0 || H5Pget_sizes(fcpl.getId(), &addrBytes, &lenBytes) < 0) return;
    }
    if (addrBytes != 8 || lenBytes != 8) return;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct Close {
        int fd;
        ~Close() { ::close(fd); }
    } closer{fd};
    struct stat st{};
    if (::fstat(fd, &st) != 0) return;
    const uint64_t fileSize = static_cast<uint64_t>(st.st_size);
    auto bytes = [&](uint64_t at, uint64_t n) {
        if (at > fileSize || n > fileSize - at || n > (64u << 20))
            throw Damaged(file + ":" + dataset + ": damaged file: its object header lies past the end of the file");
        std::string b(static_cast<size_t>(n), '\0');
        if (n && ::pread(fd, b.data(), static_cast<size_t>(n), static_cast<off_t>(at)) != static_cast<ssize_t>(n))
            throw Damaged(file + ":" + dataset + ": its object header cannot be read");
        return b;
    };
    auto le = [](const std::string& b, size_t at, int n) {
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(b[at + size_t(i)]);
        return v;
    };
    auto pad8 = [](uint64_t n) { return (n + 7) / 8 * 8; };
    auto attribute = [&](const std::string& chunk, size_t at, uint64_t size, uint64_t where) {
        if (size < 8) throw Damaged(file + ":" + dataset + ": damaged file: an attribute message of " + std::to_string(size) + " bytes");
        const unsigned version = static_cast<unsigned char>(chunk[at]);
        const uint64_t name = le(chunk, at + 2, 2), type = le(chunk, at + 4, 2), space = le(chunk, at + 6, 2);
        uint64_t need = 0;
        if (version == 1) need = 8 + pad8(name) + pad8(type) + pad8(space);
        else if (version == 2) need = 8 + name + type + space;
        else if (version == 3) need = 9 + name + type + space;
        else return;  // HDF5 refuses other versions itself
        if (need > size)
            throw Damaged(file + ":" + dataset + ": damaged file: the attribute message at byte " + std::to_string(where) + " holds " +
                          std::to_string(size) + " bytes, and its name, datatype and dataspace claim " + std::to_string(need));
    };
    const uint64_t base = userblock;
    std::vector<std::pair<uint64_t, uint64_t>> chunks;  // address, length (continuations)
    std::set<uint64_t> seen;
    const std::string head = bytes(base + info.addr, 16);
    const bool v2 = head.compare(0, 4, "OHDR") == 0;
    if (!v2 && head[0] != 1) return;
    size_t start = 16;
    uint64_t firstSize = 0;
    if (v2) {
        const unsigned flags = static_cast<unsigned char>(head[5]);
        size_t at = 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
        const int width = 1 << (flags & 3);
        const std::string pre = bytes(base + info.addr, at + size_t(width));
        firstSize = le(pre, at, width);
        start = at + size_t(width);
    } else {
        firstSize = le(head, 8, 4);
    }
    chunks.emplace_back(info.addr, start + firstSize);
    for (size_t c = 0; c < chunks.size() && c < 4096; ++c) {
        const auto [address, length] = chunks[c];
        if (!seen.insert(address).second) continue;
        const std::string chunk = bytes(base + address, length);
        size_t p = c == 0 ? start : (v2 ? 4 : 0);  // a version 2 continuation chunk starts with "OCHK"
        // A version 2 continuation chunk ends with a checksum; chunk 0's length above stops before its own.
        const size_t end = v2 && c > 0 ? (length >= 4 ? static_cast<size_t>(length) - 4 : 0) : static_cast<size_t>(length);
        const size_t headBytes = v2 ? ((static_cast<unsigned char>(head[5]) & 0x04) ? 6 : 4) : 8;
        while (p + headBytes <= end) {
            const uint64_t type = v2 ? static_cast<unsigned char>(chunk[p]) : le(chunk, p, 2);
            const uint64_t size = v2 ? le(chunk, p + 1, 2) : le(chunk, p + 2, 2);
            const size_t data = p + headBytes;
            if (size > end - data)
                throw Damaged(file + ":" + dataset + ": damaged file: a message of its object header (type " + std::to_string(type) +
                              ", " + std::to_string(size) + " bytes) runs past the end of its chunk");
            if (type == 0x0C) attribute(chunk, data, size, base + address + data);
            if (type == 0x10 && size >= 16) chunks.emplace_back(le(chunk, data, 8), le(chunk, data + 8, 8));
            p = data + static_cast<size_t>(size);
        }
    }
}

/// The walk: what the engine, gw and the window read of a data file, in the same calls.
int walk(const std::string& file) {
    std::vector<DatasetInfo> sets;
    std::cout << "listing the datasets" << std::endl;
    try {
        sets = listDatasets(file);  // opens the file, visits every group and object
    } catch (const DataError& e) {
        std::cerr << e.what() << std::endl;
        return 2;
    }
    int refused = 0;
    for (const auto& info : sets) {
        std::cout << "checking " << info.path << std::endl;
        {
            H5::H5File f(file, H5F_ACC_RDONLY);
            requireAttributeMessagesFit(file, f, info.path);
        }
        try {
            H5Array a(file, info.path);  // filters, layout, chunk index, dtype
            int64_t bytes = 0;  // a damaged shape may overflow: then it is large
            if (__builtin_mul_overflow(a.rows(), a.rowBytes(), &bytes)) bytes = INT64_MAX;
            if (bytes > 0 && bytes <= kReadWholeBytes)
                a.readAll();
            else if (a.rows() > 0)
                a.readRows({0, a.rows() - 1});
            a.intAttribute("num_classes", 0);
            a.stringsAttribute("class_names");  // with the global-heap check
        } catch (const DataError& e) {
            ++refused;
            std::cout << info.path << ": refused by the reader (" << e.what() << ")" << std::endl;
        }
    }
    std::cout << file << ": healthy (" << sets.size() << " datasets, " << refused << " refused by the reader)" << std::endl;
    return 0;
}
}  // namespace

int h5CheckMain(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: gw check-data FILE   (opens FILE with HDF5 as GW Studio reads it; exit 0 when it reads, "
                     "2 when it is refused, 3 when out of memory, 4 when damaged)"
                  << std::endl;
        return 1;
    }
    if (const int64_t mapped = mappedBytes(); mapped > 0) {
        const rlim_t limit = static_cast<rlim_t>(mapped + (kH5CheckMemoryMiB << 20));
        rlimit rl{limit, limit};
        ::setrlimit(RLIMIT_AS, &rl);
    }
    markH5CheckChild();
    try {
        return walk(argv[2]);
    } catch (const Damaged& e) {
        std::cerr << e.what() << std::endl;
        return 4;
    } catch (const H5::Exception& e) {
        std::cerr << argv[2] << ": cannot open as HDF5 (" << e.getDetailMsg() << ")" << std::endl;
        return 2;
    } catch (const std::bad_alloc&) {
        std::cerr << argv[2] << ": out of memory while reading it" << std::endl;
        return 3;
    } catch (const std::exception& e) {
        // LibTorch's allocator says "can't allocate memory" for a tensor past the limit.
        const std::string what = e.what();
        if (what.find("allocate") != std::string::npos) {
            std::cerr << argv[2] << ": out of memory while reading it (" << lastLines(what, 1) << ")" << std::endl;
            return 3;
        }
        std::cerr << (what.rfind(argv[2], 0) == 0 ? what : std::string(argv[2]) + ": " + what) << std::endl;
        return 2;
    }
}

}  // namespace gw::data
