// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file h5_array.h
/// One HDF5 dataset with samples on the first axis, read whole or row by row (HDF5 C++ API).
/// Any layout HDF5 reads (contiguous, chunked, compressed) and the dtypes uint8, signed and unsigned
/// integers, float32 and float64, and fixed-length strings, whose bytes come back as one more axis of
/// uint8: the captions `/{split}/t` (N,) of 288-byte strings read as (N, 288) uint8, NUL-padded.
/// Format of GW files: docs/data-format.md.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/types.h>

namespace gw::data {

/// A data error: names the file, the dataset, the expected and the found value.
class DataError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class H5Array {
public:
    /// Opens `dataset` (an absolute path inside the file) read-only, after the file was checked in a
    /// child process (data/h5_check.h; once per file state).
    /// \throws DataError when the file is missing or not HDF5, the dataset is missing, has no rows
    ///         axis, or has an unsupported dtype; H5CheckError (a DataError) when HDF5 crashed, hung or
    ///         ran out of memory on the file in the child, or no `gw` was found to check it.
    H5Array(const std::string& file, const std::string& dataset);
    ~H5Array();
    H5Array(const H5Array&) = delete;
    H5Array& operator=(const H5Array&) = delete;

    const std::string& file() const { return file_; }
    const std::string& dataset() const { return dataset_; }
    /// Full shape (N, ...).
    const std::vector<int64_t>& shape() const { return shape_; }
    int64_t rows() const { return shape_.front(); }
    /// Bytes of one row in memory.
    int64_t rowBytes() const;
    /// uint8 | int64 | float32 | float64: the tensor dtype rows are returned in (integers widen to int64;
    /// fixed-length strings are uint8 bytes).
    torch::ScalarType dtype() const { return dtype_; }
    /// "uint8", "int32", ... as stored in the file; "string288" for fixed-length strings of 288 bytes.
    const std::string& storedType() const { return storedType_; }

    /// Every row: a (N, ...) tensor.
    torch::Tensor readAll() const;
    /// Rows `index` (any order, repeats allowed) as (len(index), ...): only those rows are read.
    /// \throws DataError for an index outside [0, N).
    torch::Tensor readRows(const std::vector<int64_t>& index) const;

    /// An integer attribute of the dataset, or `fallback` when absent.
    int64_t intAttribute(const std::string& name, int64_t fallback) const;
    /// A string-array attribute of the dataset (variable- or fixed-length strings, as h5py writes them),
    /// e.g. `class_names`; empty when absent or not strings.
    std::vector<std::string> stringsAttribute(const std::string& name) const;

    /// True when `dataset` exists in `file` (false also for a missing or unreadable file).
    /// \throws H5CheckError when the child-process check of the file failed (a crash, a hang, out of
    ///         memory, no `gw`): a damaged file is not answered as "no such dataset".
    static bool exists(const std::string& file, const std::string& dataset);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::string file_, dataset_, storedType_;
    std::vector<int64_t> shape_;
    torch::ScalarType dtype_;
};

/// One dataset of an HDF5 file, as a picker shows it.
struct DatasetInfo {
    std::string path;            ///< "/train/image"
    std::vector<int64_t> shape;  ///< (N, ...)
    std::string type;            ///< "uint8", "int64", "float32", ...
};
/// Every dataset of `file`, in name order, after the file was checked in a child process
/// (data/h5_check.h). \throws DataError naming the file when it is missing or not HDF5, H5CheckError
/// when the check failed.
std::vector<DatasetInfo> listDatasets(const std::string& file);

/// Writes `t` (contiguous CPU tensor, N rows) as dataset `path` of `file` (created when missing,
/// groups created on the way), chunked by rows and gzip-compressed at `level` (0 = no compression).
/// Integer attributes are attached to the dataset. The caller owns atomicity (write a temporary
/// file, then rename). \throws DataError naming the file and dataset.
void writeDataset(const std::string& file, const std::string& path, const torch::Tensor& t, int level = 4,
                  const std::vector<std::pair<std::string, int64_t>>& attributes = {});

/// Attaches the string-array attribute `name` (variable-length UTF-8 strings, what h5py reads as a list
/// of str) to dataset `path` of the existing `file`, replacing one of that name; e.g. `class_names`.
/// \throws DataError naming the file and dataset.
void writeStringsAttribute(const std::string& file, const std::string& path, const std::string& name,
                           const std::vector<std::string>& values);

/// Writes datasets of a new HDF5 file a block of rows at a time, so that a dataset larger than memory
/// can be produced (the Simple Shapes generator). Datasets are chunked by `chunkRows` rows and
/// gzip-compressed; objects carry no modification times, so the same content gives the same bytes.
/// Not thread-safe: one thread writes. \throws DataError naming the file and dataset on any HDF5 failure.
class H5RowWriter {
public:
    enum class Type { UInt8, Float32, Int64, Int8 };
    /// Creates `file` (an existing file is replaced: the caller writes to a temporary).
    explicit H5RowWriter(const std::string& file);
    ~H5RowWriter();
    H5RowWriter(const H5RowWriter&) = delete;
    H5RowWriter& operator=(const H5RowWriter&) = delete;
    /// Creates dataset `path` (groups on the way) of shape (rows, rowShape...), returns its handle.
    int create(const std::string& path, Type type, int64_t rows, const std::vector<int64_t>& rowShape, int64_t chunkRows,
               int level, const std::vector<std::pair<std::string, int64_t>>& attributes = {});
    /// Creates dataset `path` of `rows` fixed-length strings of `bytes` bytes each (UTF-8, padded with
    /// NULs: h5py reads each as a bytes object, `.decode()` gives the str), chunked and compressed as
    /// create(); write() takes `count` · `bytes` bytes. Returns its handle.
    int createStrings(const std::string& path, int64_t rows, int bytes, int64_t chunkRows, int level);
    /// Attaches a string-array attribute to dataset `handle` (as writeStringsAttribute).
    void addStrings(int handle, const std::string& name, const std::vector<std::string>& values);
    /// The same as fixed-length strings (UTF-8, NUL-padded to the longest): no global heap, so the
    /// reader never has to vouch for one to read them (H5Array::stringsAttribute reads both kinds).
    void addFixedStrings(int handle, const std::string& name, const std::vector<std::string>& values);
    /// Writes rows [start, start + count) of dataset `handle` from `data` (count rows, C order).
    void write(int handle, int64_t start, int64_t count, const void* data);
    /// Closes every dataset and the file (also done by the destructor, which never throws).
    void close();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// True once a file this process wrote could not be closed (a full disk took its last flush): HDF5 1.10
/// then keeps an id whose state it has freed, and its own clean-up at exit would fault on it. The error
/// itself was thrown as a DataError naming the file.
bool hdf5CloseFailed();
/// What a front end's main() returns through: `code`, or, after hdf5CloseFailed(), stdout and stderr
/// flushed and the process ended at once with `code` (std::_Exit), skipping HDF5's clean-up at exit.
/// Every file GW Studio writes is closed (or was removed) by then.
int endProcess(int code);

}  // namespace gw::data
