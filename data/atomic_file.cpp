// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace gw {
namespace fs = std::filesystem;

namespace {
/// fsync of a file or a folder (opened read-only, which Linux allows for both). \throws
/// std::system_error when it cannot be opened or synced.
void fsyncPath(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "fsync " + path);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) throw std::system_error(err, std::generic_category(), "fsync " + path);
}
}  // namespace

void writeAtomically(const std::string& path, const std::function<void(const std::string& tmp)>& write) {
    const fs::path target(path);
    const std::string tmp = path + ".partial";
    const auto removeTmp = [&] {
        std::error_code ec;
        fs::remove(tmp, ec);
    };
    try {
        if (target.has_parent_path()) fs::create_directories(target.parent_path());
        removeTmp();  // a leftover of an interrupted write is not to be appended to
        write(tmp);
        fsyncPath(tmp);
        fs::rename(tmp, target);
    } catch (const std::exception& e) {
        removeTmp();
        throw WriteError(path + ": cannot write the file (" + std::string(e.what()).substr(0, 300) + ")");
    } catch (...) {
        removeTmp();
        throw;
    }
    try {
        fsyncPath(target.has_parent_path() ? target.parent_path().string() : std::string("."));
    } catch (const std::exception&) {
        // The new file is in place; only the rename's durability across a crash is unsure.
    }
}

void writeFileAtomically(const std::string& path, const std::string& bytes) {
    writeAtomically(path, [&](const std::string& tmp) {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        f.close();
        if (!f) throw std::runtime_error("write failed");
    });
}

}  // namespace gw
