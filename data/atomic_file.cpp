// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace gw {
namespace fs = std::filesystem;

std::string writeErrorCause(int e) {
    switch (e) {
        case ENOSPC: return "no space left on the device, ENOSPC";
        case EDQUOT: return "disk quota exceeded, EDQUOT";
        case EROFS: return "read-only file system, EROFS";
        case EIO: return "input/output error, EIO";
        case ENOENT: return "no such file or folder (was the folder removed?), ENOENT";
        case EACCES: return "permission denied, EACCES";
        case EFBIG: return "file too large, EFBIG";
        default: return std::string(std::strerror(e)) + ", errno " + std::to_string(e);
    }
}

namespace {
/// A failed system call on `what`, carried to writeAtomically's catch with its errno.
struct SysFailure {
    int err;
};

/// fsync of a file or a folder (opened read-only, which Linux allows for both).
void fsyncPath(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw SysFailure{errno};
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) throw SysFailure{err};
}

std::string cannotWrite(const std::string& path, const std::string& cause) {
    return path + ": cannot write the file (" + cause + ")";
}

[[noreturn]] void failWrite(const std::string& path, int err) { throw WriteError(cannotWrite(path, writeErrorCause(err)), err); }
}  // namespace

int writeAllTo(int fd, const char* data, size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (w == 0) return EIO;
        data += w;
        n -= static_cast<size_t>(w);
    }
    return 0;
}

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
        std::error_code ec;
        fs::rename(tmp, target, ec);
        if (ec) throw SysFailure{ec.value()};
    } catch (const SysFailure& f) {
        removeTmp();
        throw WriteError(cannotWrite(path, writeErrorCause(f.err)), f.err);
    } catch (const WriteError& e) {
        removeTmp();
        // The callback's own WriteError names the temporary; the reader knows the file by its name.
        std::string cause = e.what();
        const std::string prefix = tmp + ": cannot write the file (";
        if (cause.rfind(prefix, 0) == 0 && cause.back() == ')') cause = cause.substr(prefix.size(), cause.size() - prefix.size() - 1);
        throw WriteError(cannotWrite(path, cause), e.errorNumber());
    } catch (const fs::filesystem_error& e) {
        removeTmp();
        throw WriteError(cannotWrite(path, writeErrorCause(e.code().value())), e.code().value());
    } catch (const std::exception& e) {
        removeTmp();
        throw WriteError(cannotWrite(path, std::string(e.what()).substr(0, 300)));
    } catch (...) {
        removeTmp();
        throw;
    }
    try {
        fsyncPath(target.has_parent_path() ? target.parent_path().string() : std::string("."));
    } catch (const SysFailure&) {
        // The new file is in place; only the rename's durability across a crash is unsure.
    }
}

void writeFileAtomically(const std::string& path, const std::string& bytes) {
    writeAtomically(path, [&](const std::string& tmp) {
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) throw SysFailure{errno};
        int err = writeAllTo(fd, bytes.data(), bytes.size());
        if (err == 0 && ::fsync(fd) != 0) err = errno;
        if (::close(fd) != 0 && err == 0) err = errno;
        if (err != 0) throw SysFailure{err};
    });
}

void overwriteFileInPlace(const std::string& path, const std::string& bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) failWrite(path, errno);
    int err = writeAllTo(fd, bytes.data(), bytes.size());
    if (err == 0 && ::ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) err = errno;
    if (err == 0 && ::fsync(fd) != 0) err = errno;
    if (::close(fd) != 0 && err == 0) err = errno;
    if (err != 0) failWrite(path, err);
}

AppendFile::AppendFile(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) failWrite(path, errno);
}

AppendFile::~AppendFile() {
    if (fd_ >= 0) ::close(fd_);
}

AppendFile::AppendFile(AppendFile&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; }

AppendFile& AppendFile::operator=(AppendFile&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        path_ = std::move(o.path_);
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

void AppendFile::append(const std::string& bytes) {
    if (fd_ < 0) throw WriteError(cannotWrite(path_, "the file is not open"));
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && st.st_nlink == 0)
        throw WriteError(path_ + ": the file was removed while it was being written (was its folder deleted?)", ENOENT);
    // With O_APPEND each write lands at the end; a short write (a disk filling up) is finished, or the
    // file is cut back to where this append began, so that it ends with a whole line.
    const off_t before = ::lseek(fd_, 0, SEEK_END);
    if (const int err = writeAllTo(fd_, bytes.data(), bytes.size()); err != 0) {
        if (before >= 0 && ::ftruncate(fd_, before) != 0) {
            // Cutting never needs space; should it fail all the same, the reader skips a broken last line.
        }
        failWrite(path_, err);
    }
}

}  // namespace gw
