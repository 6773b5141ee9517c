// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file h5_check.h
/// HDF5 files are opened behind a process boundary first. HDF5 1.10 trusts sizes and addresses in a
/// file in places GW Studio cannot check beforehand, and a damaged file can crash the process that
/// opens it (docs/fuzzing.md, "Open"). So before this process opens a data file with HDF5 for the first
/// time in its present state, a child process (`gw check-data FILE`) opens it and walks what the reader
/// will read: every group and dataset, each dataset as `H5Array` opens it (filters, layout, chunk index),
/// its first and last rows (every row of a dataset of at most 8 MiB), the attributes the engine asks
/// for (`num_classes`, `class_names`, with the global-heap check), after reading each dataset's object
/// header itself to see that every attribute message holds what it claims. The child runs under a time limit (the
/// parent kills it) and an address-space limit (it sets its own). A crash, a hang, running out of memory
/// or a refusal there becomes a DataError naming the file, and the file is then not opened here.
///
/// Healthy answers are kept in memory for the process and on disk, one small file per file state, under
/// $XDG_CACHE_HOME/gw-studio/h5-checks/ (else ~/.cache/gw-studio/h5-checks/), keyed by the file's real
/// path, size, modification time (ns), device and inode: a healthy file pays once, a changed one is
/// checked again. data/h5_array.cpp calls requireCheckedHdf5 wherever it opens a file to read
/// (H5Array, H5Array::exists, listDatasets), so the engine, `gw` and the window's bridge are covered.
/// Files GW Studio writes itself (writeDataset, H5RowWriter, writeStringsAttribute) are not checked.
/// Qt-free and torch-free.
#include <cstdint>
#include <string>

#include "data/h5_array.h"

namespace gw::data {

/// The check itself failed: HDF5 crashed, hung or ran out of memory in the child, or no `gw` executable
/// was found to run it. Unlike a plain DataError from the child (not HDF5, cannot be opened), this is
/// never answered as "no such dataset": H5Array::exists lets it through.
class H5CheckError : public DataError {
public:
    using DataError::DataError;
};

/// Makes sure `file` was checked in a child process in its present state (path, size, mtime, inode),
/// running `gw check-data FILE` when it was not; returns at once inside that child (see
/// markH5CheckChild) and for a file already known healthy (memory or disk cache).
/// \throws DataError "FILE: no such file" when it cannot be stat'ed, and the child's own message
///         ("FILE: not an HDF5 file", "FILE: cannot list its datasets (...)") when it refused the file.
/// \throws H5CheckError naming the file and what failed: "HDF5 crashed while reading it (SIGSEGV in a
///         child process that checked it); the file is damaged", did not finish within the time limit,
///         ran out of the memory limit, or the `gw` executable to check it with was not found.
void requireCheckedHdf5(const std::string& file);

/// Counters of requireCheckedHdf5 since the process started (tests).
struct H5CheckCounts {
    int64_t spawned = 0;     ///< child processes started
    int64_t memoryHits = 0;  ///< answered from this process's memory
    int64_t diskHits = 0;    ///< answered from the cache folder
};
H5CheckCounts h5CheckCounts();
/// Forgets the answers kept in this process's memory (not those on disk). For tests.
void forgetH5ChecksInMemory();

/// The executable run as `EXE check-data FILE`. Found, in this order: the one given here; this process's
/// own executable (/proc/self/exe) when it is named `gw`; a `gw` beside it (gw-studio in /usr/bin or
/// build/release/app); the `gw` of the build tree this library was built in; `gw` on the PATH.
/// An empty `path` goes back to searching. gw's main sets its own path.
void setH5CheckExecutable(const std::string& path);
/// The executable that would run the check. \throws H5CheckError listing where it looked when none is.
std::string h5CheckExecutable();
/// Time limit of one check in seconds (default 60); the child is killed (SIGKILL) past it.
void setH5CheckTimeout(double seconds);
/// Address space the child may add to what it has mapped at start (LibTorch and the rest), in MiB
/// (default 2048): a damaged size that makes HDF5 allocate more is refused there, not here.
constexpr int64_t kH5CheckMemoryMiB = 2048;

/// Marks this process as the checker: requireCheckedHdf5 returns at once. Set by `gw check-data` and
/// by the fuzz targets, which exercise the in-process reader.
void markH5CheckChild();

/// `gw check-data FILE`: sets the memory limit, marks the process, walks FILE as described above and
/// prints what it found. Exit status 0: healthy (datasets the reader refuses, such as strings or a bad
/// layout, are listed and still 0: the reader refuses them safely in the parent); 2: refused (the
/// message on stderr, naming the file); 3: out of memory; 4: damaged in a way the check looks for
/// itself (an attribute message smaller than what it claims to hold, which HDF5 1.10 copies past);
/// 1: usage. A crash is the kernel's signal.
int h5CheckMain(int argc, char** argv);

}  // namespace gw::data
