// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file atomic_file.h
/// The one way GW Studio writes a file: checkpoints, weights files, exports, a run's config.yaml, the
/// rewrite of metrics.csv on resume, imported datasets, generated experiments, and through the bridge
/// the window's saves and exports. It lives in the lowest layer (data/) so that every layer above uses
/// the same function. Qt-free and torch-free.
#include <functional>
#include <stdexcept>
#include <string>

namespace gw {

/// A file could not be written; any previous file at that path is intact.
class WriteError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Creates `path`'s folder if needed, lets `write(tmp)` fill the temporary file `path`.partial beside
/// the target, fsyncs it, renames it over `path`, then fsyncs the folder so that the rename itself
/// survives a crash. Readers see the old file or the new one, never a part. When `write` throws (or
/// the fsync or rename fails) the temporary is removed and any previous file at `path` is intact. (An
/// error from the folder's fsync, after the rename, is ignored: the new file is in place.)
/// \throws WriteError "PATH: cannot write the file (cause)".
void writeAtomically(const std::string& path, const std::function<void(const std::string& tmp)>& write);
/// writeAtomically with `bytes` as the file's whole content. \throws WriteError as writeAtomically.
void writeFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace gw
