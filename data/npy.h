// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file npy.h
/// NumPy's `.npy` files as the public Simple Shapes dataset ships them (`shapesd create` of
/// ruflab/simple-shapes-dataset: `{split}_labels.npy`, `{split}_captions.npy`,
/// `{split}_caption_choices.npy`, `{split}_latent.npy`, `domain_splits/*.npy`), read without Python.
///
/// The format (NumPy's `numpy/lib/format.py`, versions 1.0 to 3.0): the magic "\x93NUMPY", a version,
/// a header length, a Python-literal header dict {'descr', 'fortran_order', 'shape'}, then the data.
/// Read here: little-endian or single-byte numbers (b1, i1..i8, u1..u8, f4, f8), NumPy unicode strings
/// (`<U n`, UTF-32, turned into UTF-8) and object arrays (`|O`), which NumPy stores as a pickle of the
/// whole array. Only what those files hold is unpickled: None, booleans, integers, floats, strings,
/// bytes, lists, tuples, dicts, sets and frozensets, NumPy arrays and scalars; any other object is
/// refused by name, and no pickled code runs. Fortran-ordered and big-endian files are refused.
/// Qt-free and torch-free.
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace gw::data {

/// A malformed or unsupported NumPy file: the message names the file and what was expected and found.
class NpyError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct PyValue;
using PyValuePtr = std::shared_ptr<const PyValue>;

/// An array read from a file or from a pickle.
struct NpyArray {
    /// NumPy's type string without the byte order: "b1", "i8", "u1", "f4", "f8", "U" (text), "O" (objects).
    std::string dtype;
    int64_t itemSize = 0;          ///< bytes per element (UTF-32 code units × 4 for "U")
    std::vector<int64_t> shape;    ///< C order
    std::vector<char> bytes;       ///< numbers: the elements, little-endian, C order
    std::vector<std::string> text; ///< "U": each element in UTF-8, trailing NULs removed
    std::vector<PyValuePtr> objects;  ///< "O": each element

    int64_t size() const;
    /// Element i as a double (numbers only). \throws NpyError for text or objects.
    double number(int64_t i) const;
    /// Element i as an integer (integers and booleans only). \throws NpyError otherwise.
    int64_t integer(int64_t i) const;
};

/// A value of the pickle subset above.
struct PyValue {
    enum class Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Set, Array };
    Kind kind = Kind::None;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;                                   ///< Str (UTF-8) and Bytes
    std::vector<PyValuePtr> items;                   ///< List, Tuple, Set (frozenset too)
    std::vector<std::pair<PyValuePtr, PyValuePtr>> dict;  ///< Dict, in insertion order
    std::shared_ptr<NpyArray> array;                 ///< Array

    /// "int", "str", "dict", "numpy array", ... for messages.
    std::string typeName() const;
    /// The value of key `k` (a Str key) in a Dict, or null.
    PyValuePtr get(const std::string& k) const;
};

/// Reads a whole `.npy` file. \throws NpyError "FILE: ..." naming what was expected and found (a
/// missing file, a bad magic or header, an unsupported dtype or byte order, Fortran order, a short data
/// part, a pickle with an object outside the subset above).
NpyArray readNpy(const std::string& path);

/// A `.npy` file of numbers or text read a block of rows at a time, for files larger than one wants in
/// memory (`{split}_latent.npy` of 500,000 BERT vectors is 1.5 GB). Rows are the first axis of the
/// shape. Same types and refusals as readNpy; object arrays are refused (they are one pickle, read
/// whole by readNpy). Not thread-safe.
class NpyRowReader {
public:
    /// Opens `path` and reads its header. \throws NpyError "PATH: ..." as readNpy, also for an object
    ///         array, a single value (shape ()), or data shorter than the header announces.
    explicit NpyRowReader(const std::string& path);
    ~NpyRowReader();
    NpyRowReader(const NpyRowReader&) = delete;
    NpyRowReader& operator=(const NpyRowReader&) = delete;
    const std::string& path() const { return path_; }
    /// As NpyArray::dtype: "f4", "i8", "U", ...
    const std::string& dtype() const { return dtype_; }
    int64_t itemSize() const { return itemSize_; }
    const std::vector<int64_t>& shape() const { return shape_; }
    int64_t rows() const { return shape_.front(); }
    /// Elements per row (the product of the shape after the first axis).
    int64_t rowElements() const { return rowElements_; }
    /// Rows [start, start + count) as an array of shape (count, ...).
    /// \throws NpyError for rows outside the file or a read that fails.
    NpyArray read(int64_t start, int64_t count);

private:
    std::string path_, dtype_;
    int64_t itemSize_ = 0, rowElements_ = 0;
    std::vector<int64_t> shape_;
    size_t dataAt_ = 0;
    std::unique_ptr<std::ifstream> in_;
};

/// Unpickles `bytes` (protocols 2 to 5) into the subset above; `what` starts every message.
/// \throws NpyError.
PyValuePtr unpickle(const std::string& bytes, const std::string& what);

}  // namespace gw::data
