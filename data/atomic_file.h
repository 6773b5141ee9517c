// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file atomic_file.h
/// The ways GW Studio writes a file: checkpoints, weights files, exports, a run's config.yaml and
/// status.yaml, metrics.csv, imported datasets, generated experiments, and through the bridge the
/// window's saves and exports. It lives in the lowest layer (data/) so that every layer above uses the
/// same functions. Every failure, a full disk (ENOSPC), a quota (EDQUOT), a read-only file system
/// (EROFS), an I/O error (EIO) or a folder removed under the writer (ENOENT) included, is a WriteError
/// naming the file and the cause; nothing here throws from a destructor. Qt-free and torch-free.
#include <functional>
#include <stdexcept>
#include <string>

namespace gw {

/// A file could not be written; any previous file at that path is intact (writeAtomically,
/// writeFileAtomically) or ends at its last whole append (AppendFile). The message names the file and
/// the cause: "PATH: cannot write the file (no space left on the device, ENOSPC)".
class WriteError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
    /// The errno behind it, 0 when there was none (a callback's own exception).
    int errorNumber() const { return errno_; }
    WriteError(const std::string& message, int errorNumber) : std::runtime_error(message), errno_(errorNumber) {}

private:
    int errno_ = 0;
};

/// What an errno means to someone whose file could not be written: "no space left on the device,
/// ENOSPC", "disk quota exceeded, EDQUOT", "read-only file system, EROFS", "input/output error, EIO",
/// "no such file or folder (was the folder removed?), ENOENT"; otherwise strerror and the number.
std::string writeErrorCause(int errorNumber);

/// Writes the `n` bytes at `data` to `fd` (at its offset, or its end with O_APPEND), going on after a
/// short write or EINTR. Returns 0, or the errno of the first failure (EIO for a write of nothing).
/// Async-signal-safe: write(2) and errno only (the crash recorder of model/run/runs.h uses it).
int writeAllTo(int fd, const char* data, size_t n);

/// Creates `path`'s folder if needed, lets `write(tmp)` fill the temporary file `path`.partial beside
/// the target, fsyncs it, renames it over `path`, then fsyncs the folder so that the rename itself
/// survives a crash. Readers see the old file or the new one, never a part. When `write` throws (or
/// the fsync or rename fails) the temporary is removed and any previous file at `path` is intact. (An
/// error from the folder's fsync, after the rename, is ignored: the new file is in place.) `write` must
/// report its own failures by throwing (a WriteError keeps its cause); a writer that can fail only in a
/// destructor (LibTorch's zip writer) must write to memory and use writeFileAtomically instead.
/// \throws WriteError "PATH: cannot write the file (cause)".
void writeAtomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);
/// writeAtomically with `bytes` as the file's whole content, written with POSIX calls whose every
/// failure is seen (write, fsync, close). \throws WriteError as writeAtomically.
void writeFileAtomically(const std::string& path, const std::string& bytes);
/// Writes `bytes` to the file at `path`, its whole content, through the path's own descriptor: only
/// for a small file that must record a failure when even a new file cannot be created (a full disk):
/// RUN_DIR/status.yaml after writeFileAtomically failed. It reuses the file's existing blocks (a file
/// of up to one block, 4 KiB, needs none more) but is not atomic: a crash during it can leave a part.
/// \throws WriteError naming the file when the file is missing or the write fails.
void overwriteFileInPlace(const std::string& path, const std::string& bytes);

/// A file appended to line by line as a run goes (RUN_DIR/metrics.csv): each append is one write(2)
/// whose failure is seen at once, and a file or folder removed under the writer is noticed at the
/// next append instead of writing into a file no one can open any more. Not thread-safe.
class AppendFile {
public:
    AppendFile() = default;
    /// Opens (creating it if missing) `path` for appending. \throws WriteError naming the file.
    explicit AppendFile(const std::string& path);
    ~AppendFile();
    AppendFile(AppendFile&& other) noexcept;
    AppendFile& operator=(AppendFile&& other) noexcept;
    AppendFile(const AppendFile&) = delete;
    AppendFile& operator=(const AppendFile&) = delete;

    bool isOpen() const { return fd_ >= 0; }
    const std::string& path() const { return path_; }
    /// Appends `bytes`, all of them or none (a write cut short is undone). \throws WriteError "PATH: cannot write the file (cause)", and "PATH: the file
    /// was removed while it was being written" when it no longer has a name (its folder deleted).
    void append(const std::string& bytes);

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace gw
