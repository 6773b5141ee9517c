// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/h5_array.h"

#include "data/h5_check.h"

#include <H5Cpp.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <string_view>

#include "data/atomic_file.h"

namespace gw::data {

struct H5Array::Impl {
    H5::H5File file;
    H5::DataSet ds;
    H5::DataType memType = H5::PredType::NATIVE_UINT8;
    int64_t stringBytes = 0;  // fixed-length strings: bytes per string, read as one more axis of uint8
};

namespace {
struct Quiet {
    Quiet() { H5::Exception::dontPrint(); }
};
const Quiet quiet;

std::string where(const std::string& file, const std::string& ds) { return file + ":" + ds; }

/// What went wrong, as the C++ wrapper says it ("H5Dread failed") followed by the HDF5 library's own
/// messages from its error stack, innermost last ("... : filter returned failure during read;
/// inflate() failed"). Called right in the catch, before any other HDF5 call clears the stack.
std::string detail(const H5::Exception& e) {
    std::vector<std::string> msgs;
    H5Ewalk2(
        H5E_DEFAULT, H5E_WALK_DOWNWARD,
        [](unsigned, const H5E_error2_t* err, void* data) -> herr_t {
            auto& out = *static_cast<std::vector<std::string>*>(data);
            if (err && err->desc && *err->desc && std::find(out.begin(), out.end(), err->desc) == out.end())
                out.emplace_back(err->desc);
            return 0;
        },
        &msgs);
    std::string s = e.getDetailMsg();
    // The innermost three say what happened; the outer ones only which calls gave up.
    const size_t from = msgs.size() > 3 ? msgs.size() - 3 : 0;
    for (size_t i = from; i < msgs.size(); ++i) s += (i == from ? ": " : "; ") + msgs[i];
    return s;
}

/// detail(e), and the cause when the last system call failed for want of room or of a working disk
/// (HDF5's file driver leaves the write's errno behind): "H5Dwrite failed; no space left on the
/// device, ENOSPC". Called first thing in the catch.
std::string writeDetail(const H5::Exception& e) {
    const int err = errno;
    std::string s = detail(e);
    if (err == ENOSPC || err == EDQUOT || err == EIO || err == EROFS || err == EFBIG) s += "; " + writeErrorCause(err);
    return s;
}

/// HDF5 prints its error stack on stderr by default, per thread: writers may run on a worker thread.
void quietHere() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::atomic<bool> gCloseFailed{false};

/// Closes a file this process wrote, once. HDF5 1.10 frees a file's state in an H5Fclose that fails (a
/// full disk cannot take the last flush) yet keeps its id: closing it again, from H5File's destructor
/// or from HDF5's own clean-up at exit, faults. So a failed close leaks the object (never closed
/// again) and says so to hdf5CloseFailed(). Returns the failure, "" when closed.
std::string closeWrittenFile(std::unique_ptr<H5::H5File>& f) {
    if (!f) return {};
    try {
        f->close();
        f.reset();
        return {};
    } catch (const H5::Exception& e) {
        gCloseFailed = true;
        (void)f.release();
        return writeDetail(e);
    }
}

/// Refuses a dataset stored through a filter that this HDF5 cannot decode (h5py's lzf, blosc, ...),
/// naming it and the fix, before any read fails less clearly.
void requireFilters(const H5::DataSet& ds, const std::string& at) {
    H5::DSetCreatPropList plist = ds.getCreatePlist();
    const int n = H5Pget_nfilters(plist.getId());
    for (int i = 0; i < n; ++i) {
        unsigned flags = 0, config = 0;
        size_t nvalues = 0;
        char name[256] = {0};
        const H5Z_filter_t id = H5Pget_filter2(plist.getId(), static_cast<unsigned>(i), &flags, &nvalues, nullptr, sizeof name,
                                               name, &config);
        if (id < 0 || H5Zfilter_avail(id) > 0) continue;
        std::string label = name[0] ? std::string("'") + name + "'" : std::string("an unnamed filter");
        throw DataError(at + ": stored through the filter " + label + " (HDF5 filter " + std::to_string(id) +
                        "), which this HDF5 build cannot decode: re-write the dataset with gzip (in h5py: "
                        "f.create_dataset(name, data=old[()], compression=\"gzip\")), or install the filter's HDF5 "
                        "plugin and point HDF5_PLUGIN_PATH at it");
    }
}

std::string shapeText(const std::vector<hsize_t>& v) {
    std::string s = "(";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + (v[i] == H5S_UNLIMITED ? std::string("unlimited") : std::to_string(v[i]));
    return s + ")";
}

/// Whether the file's variable-length strings can be read without crashing HDF5 1.10. Such strings live
/// in global heap collections ("GCOL", version 1) and are referred to by heap IDs (length u32, collection
/// address u64, object index u32) stored with the attribute. Three faults of a damaged file were found by
/// fuzzing (docs/fuzzing.md), and h5py hangs or crashes on the same files:
/// - a free-space object smaller than its own header makes HDF5's decoder step by nothing, forever;
/// - a heap ID whose object index is not in its collection makes H5HG_read index past its table.
/// - a heap ID whose length differs from its object's size makes H5HG_read copy the object into a buffer
///   of the ID's length.
/// So every "GCOL" must be a collection that can be walked as HDF5 walks it, and every 16 bytes of the
/// file that read as a heap ID of one of them must name an object there of exactly the length it claims.
/// A false alarm only costs the class names, never data. The answer is kept per file, size and time.
bool globalHeapsAreSafe(const std::string& path) {
    static std::mutex mutex;
    static std::map<std::string, bool> known;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    const auto time = std::filesystem::last_write_time(path, ec);
    if (ec) return false;
    const std::string key = path + '\n' + std::to_string(size) + '\n' + std::to_string(time.time_since_epoch().count());
    {
        std::lock_guard<std::mutex> lock(mutex);
        if (auto it = known.find(key); it != known.end()) return it->second;
    }
    // Mapped, not read: dataset files run to gigabytes.
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0 || size == 0) {
        if (fd >= 0) ::close(fd);
        return false;
    }
    void* map = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (map == MAP_FAILED) return false;
    struct Unmap {
        void* p;
        size_t n;
        ~Unmap() { ::munmap(p, n); }
    } unmap{map, static_cast<size_t>(size)};
    const std::string_view bytes(static_cast<const char*>(map), static_cast<size_t>(size));
    auto le = [&](uint64_t at, int n) {
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(bytes[at + uint64_t(i)]);
        return v;
    };
    bool safe = true;
    std::map<uint64_t, std::map<uint64_t, uint64_t>> collections;  // address -> object index -> size
    for (size_t at = bytes.find("GCOL"); safe && at != std::string_view::npos; at = bytes.find("GCOL", at + 1)) {
        // HDF5 reads whatever a heap ID points at, so every "GCOL" must be a collection it can walk.
        if (at + 16 > bytes.size() || bytes[at + 4] != 1) {
            safe = false;
            break;
        }
        const uint64_t len = le(at + 8, 8);
        if (len < 4096 || len > bytes.size() - at) {
            safe = false;
            break;
        }
        auto& objects = collections[at];
        for (uint64_t p = 16; p < len;) {
            if (p + 16 > len) break;  // a tail too small for an object header is free space
            const uint64_t index = le(at + p, 2), objSize = le(at + p + 8, 8);
            if (index == 0) {
                if (objSize < 16 || objSize > len - p) safe = false;
                p += objSize;
            } else {
                const uint64_t need = 16 + ((objSize + 7) / 8) * 8;
                if (objSize > len || need > len - p) safe = false;
                objects[index] = objSize;
                p += need;
            }
            if (!safe) break;
        }
    }
    for (const auto& [address, objects] : collections) {
        char pattern[8];
        for (int i = 0; i < 8; ++i) pattern[i] = static_cast<char>((address >> (8 * i)) & 0xff);
        const std::string_view id(pattern, 8);
        for (size_t at = bytes.find(id); safe && at != std::string_view::npos; at = bytes.find(id, at + 1)) {
            if (at < 4 || at + 12 > bytes.size() || at == address) continue;
            const uint64_t length = le(at - 4, 4), index = le(at + 8, 4);
            const auto it = objects.find(index);
            // A string's object holds exactly its bytes; HDF5 copies the object into a buffer of `length`.
            if (it == objects.end() || length != it->second) safe = false;
        }
    }
    std::lock_guard<std::mutex> lock(mutex);
    known[key] = safe;
    return safe;
}

/// The storage of a dataset must hold its bytes; HDF5 1.10 does not check what a damaged file says and
/// copies past the end of what it read (found by fuzzing, docs/fuzzing.md). Refused up front:
/// - a chunk larger than the dataset's fixed maximum shape (H5Dcreate refuses to write one; HDF5's read
///   copies a whole chunk's worth from a smaller decompressed buffer);
/// - an unfiltered chunk whose stored size is not the chunk's size in bytes;
/// - a contiguous or compact dataset whose storage is smaller than its bytes (0, never written, reads
///   the fill value and is fine).
void requireSaneLayout(const H5::DataSet& ds, int rank, const std::vector<hsize_t>& dims,
                       const std::vector<hsize_t>& maxDims, const std::string& where) {
    H5::DSetCreatPropList plist = ds.getCreatePlist();
    const size_t typeSize = ds.getDataType().getSize();
    hsize_t elements = 1;
    for (auto d : dims) elements *= d;
    const H5D_layout_t layout = plist.getLayout();
    if (layout == H5D_CONTIGUOUS || layout == H5D_COMPACT) {
        const hsize_t stored = ds.getStorageSize();
        if (stored != 0 && stored < elements * typeSize)
            throw DataError(where + ": damaged file: its storage holds " + std::to_string(stored) + " bytes, the shape " +
                            shapeText(dims) + " needs " + std::to_string(elements * typeSize));
        return;
    }
    if (layout != H5D_CHUNKED) return;
    std::vector<hsize_t> chunk(static_cast<size_t>(rank));
    if (plist.getChunk(rank, chunk.data()) != rank)
        throw DataError(where + ": damaged file: the chunk shape's rank differs from the dataset's " + std::to_string(rank));
    hsize_t chunkElements = 1;
    for (int d = 0; d < rank; ++d) {
        const size_t i = static_cast<size_t>(d);
        if (chunk[i] == 0 || (maxDims[i] != H5S_UNLIMITED && chunk[i] > std::max(maxDims[i], dims[i])))
            throw DataError(where + ": damaged file: chunk shape " + shapeText(chunk) + " does not fit the dataset's shape " +
                            shapeText(dims) + " (maximum " + shapeText(maxDims) + ") in dimension " + std::to_string(d));
        chunkElements *= chunk[i];
    }
    if (plist.getNfilters() != 0) return;  // compressed chunks vary in size
    H5::DataSpace space = ds.getSpace();
    hsize_t n = 0;
    if (H5Dget_num_chunks(ds.getId(), space.getId(), &n) < 0) throw DataError(where + ": damaged file: its chunk index cannot be read");
    std::vector<hsize_t> offset(static_cast<size_t>(rank));
    for (hsize_t k = 0; k < n; ++k) {
        unsigned mask = 0;
        haddr_t addr = 0;
        hsize_t size = 0;
        if (H5Dget_chunk_info(ds.getId(), space.getId(), k, offset.data(), &mask, &addr, &size) < 0 ||
            size != chunkElements * typeSize)
            throw DataError(where + ": damaged file: chunk " + std::to_string(k) + " of " + std::to_string(n) + " holds " +
                            std::to_string(size) + " bytes, expected " + std::to_string(chunkElements * typeSize) +
                            " (uncompressed chunks of " + shapeText(chunk) + ")");
    }
}
}  // namespace

H5Array::H5Array(const std::string& file, const std::string& dataset)
    : impl_(std::make_unique<Impl>()), file_(file), dataset_(dataset) {
    if (!std::filesystem::exists(file)) throw DataError(file + ": no such file");
    requireCheckedHdf5(file);  // in a child process first (data/h5_check.h)
    try {
        if (!H5::H5File::isHdf5(file.c_str())) throw DataError(file + ": not an HDF5 file");
        impl_->file.openFile(file, H5F_ACC_RDONLY);
    } catch (const H5::Exception& e) {
        throw DataError(file + ": cannot open as HDF5 (" + detail(e) + ")");
    }
    if (!exists(file, dataset)) throw DataError(where(file, dataset) + ": no such dataset in the file");
    try {
        impl_->ds = impl_->file.openDataSet(dataset);
        requireFilters(impl_->ds, where(file, dataset));
        H5::DataSpace space = impl_->ds.getSpace();
        const int rank = space.getSimpleExtentNdims();
        if (rank < 1) throw DataError(where(file, dataset) + ": expected samples on the first axis, found a scalar");
        std::vector<hsize_t> dims(static_cast<size_t>(rank)), maxDims(static_cast<size_t>(rank));
        space.getSimpleExtentDims(dims.data(), maxDims.data());
        for (auto d : dims) shape_.push_back(static_cast<int64_t>(d));
        requireSaneLayout(impl_->ds, rank, dims, maxDims, where(file, dataset));
        const H5T_class_t cls = impl_->ds.getTypeClass();
        if (cls == H5T_INTEGER) {
            H5::IntType it = impl_->ds.getIntType();
            const size_t size = it.getSize();
            const bool isSigned = it.getSign() != H5T_SGN_NONE;
            storedType_ = std::string(isSigned ? "int" : "uint") + std::to_string(size * 8);
            if (size == 1 && !isSigned) {
                dtype_ = torch::kUInt8;
                impl_->memType = H5::PredType::NATIVE_UINT8;
            } else if (size <= 8) {
                dtype_ = torch::kInt64;
                impl_->memType = H5::PredType::NATIVE_INT64;
            } else {
                throw DataError(where(file, dataset) + ": expected integers of at most 64 bits, found " + storedType_);
            }
        } else if (cls == H5T_FLOAT) {
            H5::FloatType ft = impl_->ds.getFloatType();
            const size_t size = ft.getSize();
            storedType_ = "float" + std::to_string(size * 8);
            if (size <= 4) {
                dtype_ = torch::kFloat32;
                impl_->memType = H5::PredType::NATIVE_FLOAT;
            } else {
                dtype_ = torch::kFloat64;
                impl_->memType = H5::PredType::NATIVE_DOUBLE;
            }
        } else if (cls == H5T_STRING) {
            // Fixed-length strings (the captions of `/{split}/t`) come back as their bytes: (N, ..., S) uint8.
            H5::StrType st = impl_->ds.getStrType();
            if (st.isVariableStr())
                throw DataError(where(file, dataset) +
                                ": expected fixed-length strings (read as bytes), found variable-length strings");
            impl_->stringBytes = static_cast<int64_t>(st.getSize());
            storedType_ = "string" + std::to_string(impl_->stringBytes);
            dtype_ = torch::kUInt8;
            impl_->memType = st;
            shape_.push_back(impl_->stringBytes);
        } else {
            throw DataError(where(file, dataset) +
                            ": expected a numeric dtype (uint8, integers, float32, float64) or fixed-length strings, "
                            "found HDF5 type class " +
                            std::to_string(static_cast<int>(cls)));
        }
    } catch (const H5::Exception& e) {
        throw DataError(where(file, dataset) + ": cannot read (" + detail(e) + ")");
    }
}

H5Array::~H5Array() = default;

int64_t H5Array::rowBytes() const {
    int64_t n = torch::elementSize(dtype_);
    for (size_t i = 1; i < shape_.size(); ++i) n *= shape_[i];
    return n;
}

torch::Tensor H5Array::readAll() const {
    auto t = torch::empty(shape_, torch::TensorOptions().dtype(dtype_));
    if (t.numel() == 0) return t;
    try {
        impl_->ds.read(t.data_ptr(), impl_->memType);
    } catch (const H5::Exception& e) {
        throw DataError(where(file_, dataset_) + ": read failed (" + detail(e) + ")");
    }
    return t;
}

torch::Tensor H5Array::readRows(const std::vector<int64_t>& index) const {
    const int64_t n = rows();
    std::vector<int64_t> shape = shape_;
    shape[0] = static_cast<int64_t>(index.size());
    auto out = torch::empty(shape, torch::TensorOptions().dtype(dtype_));
    if (index.empty()) return out;
    for (int64_t i : index)
        if (i < 0 || i >= n)
            throw DataError(where(file_, dataset_) + ": row " + std::to_string(i) + " is outside the dataset's " +
                            std::to_string(n) + " rows");
    // Read the distinct rows in file order as runs of consecutive rows, then scatter to the request order.
    std::vector<int64_t> sorted(index);
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::vector<int64_t> us = shape_;
    us[0] = static_cast<int64_t>(sorted.size());
    auto uniq = torch::empty(us, torch::TensorOptions().dtype(dtype_));
    try {
        H5::DataSpace file = impl_->ds.getSpace();
        const size_t rank = shape_.size() - (impl_->stringBytes > 0 ? 1 : 0);  // the file's axes
        std::vector<hsize_t> start(rank, 0), count(rank);
        for (size_t d = 0; d < rank; ++d) count[d] = static_cast<hsize_t>(shape_[d]);
        file.selectNone();
        for (size_t i = 0; i < sorted.size();) {
            size_t j = i + 1;
            while (j < sorted.size() && sorted[j] == sorted[j - 1] + 1) ++j;
            start[0] = static_cast<hsize_t>(sorted[i]);
            count[0] = static_cast<hsize_t>(j - i);
            file.selectHyperslab(H5S_SELECT_OR, count.data(), start.data());
            i = j;
        }
        std::vector<hsize_t> mdims(rank);
        for (size_t d = 0; d < rank; ++d) mdims[d] = static_cast<hsize_t>(us[d]);
        H5::DataSpace mem(static_cast<int>(rank), mdims.data());
        impl_->ds.read(uniq.data_ptr(), impl_->memType, mem, file);
    } catch (const H5::Exception& e) {
        throw DataError(where(file_, dataset_) + ": read of " + std::to_string(sorted.size()) + " rows failed (" +
                        detail(e) + ")");
    }
    std::vector<int64_t> pos(index.size());
    for (size_t k = 0; k < index.size(); ++k)
        pos[k] = std::lower_bound(sorted.begin(), sorted.end(), index[k]) - sorted.begin();
    return uniq.index_select(0, torch::tensor(pos, torch::kInt64));
}

int64_t H5Array::intAttribute(const std::string& name, int64_t fallback) const {
    try {
        if (!impl_->ds.attrExists(name)) return fallback;
        H5::Attribute a = impl_->ds.openAttribute(name);
        int64_t v = fallback;
        a.read(H5::PredType::NATIVE_INT64, &v);
        return v;
    } catch (const H5::Exception&) {
        return fallback;
    }
}

std::vector<std::string> H5Array::stringsAttribute(const std::string& name) const {
    std::vector<std::string> out;
    try {
        if (!impl_->ds.attrExists(name)) return out;
        H5::Attribute a = impl_->ds.openAttribute(name);
        if (a.getTypeClass() != H5T_STRING) return out;
        H5::StrType type = a.getStrType();
        const hssize_t n = a.getSpace().getSimpleExtentNpoints();
        if (n <= 0 || n > 1 << 20) return out;
        if (type.isVariableStr()) {
            if (!globalHeapsAreSafe(file_)) return out;
            std::vector<char*> ptrs(static_cast<size_t>(n), nullptr);
            a.read(type, ptrs.data());
            for (char* p : ptrs) out.emplace_back(p ? p : "");
            H5::DataSpace space = a.getSpace();
            H5Dvlen_reclaim(type.getId(), space.getId(), H5P_DEFAULT, ptrs.data());
        } else {
            const size_t size = type.getSize();
            std::vector<char> buf(size * static_cast<size_t>(n));
            a.read(type, buf.data());
            for (hssize_t i = 0; i < n; ++i) {
                const char* p = buf.data() + size_t(i) * size;
                out.emplace_back(p, strnlen(p, size));
            }
        }
    } catch (const H5::Exception&) {
        out.clear();
    }
    return out;
}

namespace {
/// Writes `values` as the variable-length string attribute `name` of `obj` (replacing one).
void putStrings(H5::H5Object& obj, const std::string& name, const std::vector<std::string>& values) {
    if (obj.attrExists(name)) obj.removeAttr(name);
    H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
    type.setCset(H5T_CSET_UTF8);
    const hsize_t n = values.size();
    H5::DataSpace space(1, &n);
    std::vector<const char*> ptrs;
    for (const auto& v : values) ptrs.push_back(v.c_str());
    H5::Attribute a = obj.createAttribute(name, type, space);
    a.write(type, ptrs.data());
}
}  // namespace

void writeStringsAttribute(const std::string& file, const std::string& path, const std::string& name,
                           const std::vector<std::string>& values) {
    std::unique_ptr<H5::H5File> f;
    std::string failure;
    quietHere();
    try {
        f = std::make_unique<H5::H5File>(file, H5F_ACC_RDWR);
        H5::DataSet ds = f->openDataSet(path);
        putStrings(ds, name, values);
    } catch (const H5::Exception& e) {
        failure = writeDetail(e);
    }
    const std::string closing = closeWrittenFile(f);
    if (failure.empty()) failure = closing;
    if (!failure.empty()) throw DataError(file + ":" + path + ": cannot write the attribute " + name + " (" + failure + ")");
}

namespace {
std::string typeName(const H5::DataType& t) {
    const H5T_class_t c = t.getClass();
    const size_t bytes = t.getSize();
    if (c == H5T_FLOAT) return "float" + std::to_string(8 * bytes);
    if (c == H5T_INTEGER) {
        const bool isSigned = H5Tget_sign(t.getId()) == H5T_SGN_2;
        return std::string(isSigned ? "int" : "uint") + std::to_string(8 * bytes);
    }
    if (c == H5T_STRING) return "string";
    return "other";
}

herr_t collect(hid_t, const char* name, const H5O_info_t* info, void* out) {
    if (info->type == H5O_TYPE_DATASET && std::string(name) != ".")
        static_cast<std::vector<DatasetInfo>*>(out)->push_back({std::string("/") + name, {}, {}});
    return 0;
}
}  // namespace

std::vector<DatasetInfo> listDatasets(const std::string& file) {
    if (!std::filesystem::exists(file)) throw DataError(file + ": no such file");
    requireCheckedHdf5(file);  // in a child process first (data/h5_check.h)
    std::vector<DatasetInfo> out;
    try {
        H5::Exception::dontPrint();
        if (!H5::H5File::isHdf5(file.c_str())) throw DataError(file + ": not an HDF5 file");
        H5::H5File f(file, H5F_ACC_RDONLY);
        H5Ovisit(f.getId(), H5_INDEX_NAME, H5_ITER_INC, collect, &out);
        for (auto& d : out) {
            H5::DataSet ds = f.openDataSet(d.path);
            H5::DataSpace space = ds.getSpace();
            const int rank = space.getSimpleExtentNdims();
            std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
            if (rank > 0) space.getSimpleExtentDims(dims.data());
            d.shape.assign(dims.begin(), dims.end());
            d.type = typeName(ds.getDataType());
        }
    } catch (const H5::Exception& e) {
        throw DataError(file + ": cannot list its datasets (" + detail(e) + ")");
    }
    return out;
}

bool H5Array::exists(const std::string& file, const std::string& dataset) {
    if (!std::filesystem::exists(file)) return false;
    try {
        requireCheckedHdf5(file);  // in a child process first; H5CheckError (a crash there) goes through
    } catch (const H5CheckError&) {
        throw;
    } catch (const DataError&) {
        return false;  // not HDF5, or HDF5 cannot open it
    }
    try {
        if (!H5::H5File::isHdf5(file.c_str())) return false;
        H5::H5File f(file, H5F_ACC_RDONLY);
        // Check each link on the path, so that a missing group is no error.
        std::string path;
        size_t pos = 0;
        while (pos < dataset.size()) {
            size_t next = dataset.find('/', pos + 1);
            path = dataset.substr(0, next);
            if (path != "/" && !f.nameExists(path)) return false;
            if (next == std::string::npos) break;
            pos = next;
        }
        H5O_info_t info;
        H5Oget_info_by_name(f.getId(), dataset.c_str(), &info, H5P_DEFAULT);
        return info.type == H5O_TYPE_DATASET;
    } catch (const H5::Exception&) {
        return false;
    }
}

void writeDataset(const std::string& file, const std::string& path, const torch::Tensor& t, int level,
                  const std::vector<std::pair<std::string, int64_t>>& attributes) {
    auto c = t.contiguous().cpu();
    H5::PredType fileType = H5::PredType::NATIVE_UINT8, memType = H5::PredType::NATIVE_UINT8;
    switch (c.scalar_type()) {
        case torch::kUInt8: fileType = H5::PredType::STD_U8LE; memType = H5::PredType::NATIVE_UINT8; break;
        case torch::kInt64: fileType = H5::PredType::STD_I64LE; memType = H5::PredType::NATIVE_INT64; break;
        case torch::kInt32: fileType = H5::PredType::STD_I32LE; memType = H5::PredType::NATIVE_INT32; break;
        case torch::kFloat32: fileType = H5::PredType::IEEE_F32LE; memType = H5::PredType::NATIVE_FLOAT; break;
        case torch::kFloat64: fileType = H5::PredType::IEEE_F64LE; memType = H5::PredType::NATIVE_DOUBLE; break;
        default: throw DataError(file + ":" + path + ": cannot write dtype " + std::string(c.dtype().name()));
    }
    if (c.dim() < 1) throw DataError(file + ":" + path + ": expected a tensor with a rows axis, found a scalar");
    std::unique_ptr<H5::H5File> file_;
    std::string failure;
    quietHere();
    try {
        file_ = std::make_unique<H5::H5File>(file, std::filesystem::exists(file) ? H5F_ACC_RDWR : H5F_ACC_EXCL);
        H5::H5File& f = *file_;
        H5::LinkCreatPropList lcpl;
        H5Pset_create_intermediate_group(lcpl.getId(), 1);
        std::vector<hsize_t> dims(c.sizes().begin(), c.sizes().end());
        H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
        H5::DSetCreatPropList dcpl;
        if (dims[0] > 0) {
            std::vector<hsize_t> chunk(dims);
            int64_t rowBytes = c.element_size();
            for (size_t d = 1; d < dims.size(); ++d) rowBytes *= static_cast<int64_t>(dims[d]);
            chunk[0] = std::max<hsize_t>(1, std::min<hsize_t>(dims[0], static_cast<hsize_t>(std::max<int64_t>(1, (1 << 20) / std::max<int64_t>(1, rowBytes)))));
            dcpl.setChunk(static_cast<int>(chunk.size()), chunk.data());
            if (level > 0) dcpl.setDeflate(level);
        }
        H5::DataSet ds = f.createDataSet(path, fileType, space, dcpl, H5::DSetAccPropList::DEFAULT, lcpl);
        if (c.numel() > 0) ds.write(c.data_ptr(), memType);
        for (const auto& [name, value] : attributes) {
            H5::Attribute a = ds.createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR));
            a.write(H5::PredType::NATIVE_INT64, &value);
        }
    } catch (const H5::Exception& e) {
        failure = writeDetail(e);
    }
    const std::string closing = closeWrittenFile(file_);
    if (failure.empty()) failure = closing;
    if (!failure.empty()) throw DataError(file + ":" + path + ": write failed (" + failure + ")");
}

struct H5RowWriter::Impl {
    std::string file;
    std::unique_ptr<H5::H5File> f;  ///< closed by closeWrittenFile, once
    std::vector<H5::DataSet> sets;
    std::vector<std::string> paths;
    std::vector<H5::PredType> memTypes;
    std::vector<std::unique_ptr<H5::StrType>> strTypes;  ///< the memory type of a string dataset, else null
    std::vector<std::vector<hsize_t>> dims;
    bool open = false;
};

H5RowWriter::H5RowWriter(const std::string& file) : impl_(std::make_unique<Impl>()) {
    impl_->file = file;
    quietHere();
    try {
        H5::FileCreatPropList fcpl;
        impl_->f = std::make_unique<H5::H5File>(file, H5F_ACC_TRUNC, fcpl);
        impl_->open = true;
    } catch (const H5::Exception& e) {
        throw DataError(file + ": cannot create the HDF5 file (" + detail(e) + ")");
    }
}

H5RowWriter::~H5RowWriter() {
    try {
        close();
    } catch (...) {
    }
}

namespace {
/// Creates `path` of `file` (groups on the way, no modification times) with `fileType`.
H5::DataSet createRows(H5::H5File& f, const std::string& file, const std::string& path, const H5::DataType& fileType,
                       const std::vector<hsize_t>& dims, int64_t chunkRows, int level) {
    // Intermediate groups without modification times, so that two identical runs give identical bytes.
    std::string sofar;
    for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
        sofar = path.substr(0, pos);
        if (!f.nameExists(sofar)) {
            hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
            H5Pset_obj_track_times(gcpl, 0);
            hid_t g = H5Gcreate2(f.getId(), sofar.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT);
            H5Pclose(gcpl);
            if (g < 0) throw DataError(file + ":" + sofar + ": cannot create the group");
            H5Gclose(g);
        }
    }
    H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
    H5::DSetCreatPropList dcpl;
    H5Pset_obj_track_times(dcpl.getId(), 0);
    if (dims[0] > 0) {
        std::vector<hsize_t> chunk(dims);
        chunk[0] = static_cast<hsize_t>(std::clamp<int64_t>(chunkRows, 1, static_cast<int64_t>(dims[0])));
        dcpl.setChunk(static_cast<int>(chunk.size()), chunk.data());
        if (level > 0) dcpl.setDeflate(level);
    }
    return f.createDataSet(path, fileType, space, dcpl);
}
}  // namespace

int H5RowWriter::create(const std::string& path, Type type, int64_t rows, const std::vector<int64_t>& rowShape,
                        int64_t chunkRows, int level, const std::vector<std::pair<std::string, int64_t>>& attributes) {
    H5::PredType fileType = H5::PredType::STD_U8LE, memType = H5::PredType::NATIVE_UINT8;
    if (type == Type::Float32) fileType = H5::PredType::IEEE_F32LE, memType = H5::PredType::NATIVE_FLOAT;
    if (type == Type::Int64) fileType = H5::PredType::STD_I64LE, memType = H5::PredType::NATIVE_INT64;
    if (type == Type::Int8) fileType = H5::PredType::STD_I8LE, memType = H5::PredType::NATIVE_INT8;
    try {
        std::vector<hsize_t> dims{static_cast<hsize_t>(rows)};
        for (auto d : rowShape) dims.push_back(static_cast<hsize_t>(d));
        impl_->sets.push_back(createRows(*impl_->f, impl_->file, path, fileType, dims, chunkRows, level));
        for (const auto& [name, value] : attributes) {
            H5::Attribute a = impl_->sets.back().createAttribute(name, H5::PredType::STD_I64LE, H5::DataSpace(H5S_SCALAR));
            a.write(H5::PredType::NATIVE_INT64, &value);
        }
        impl_->paths.push_back(path);
        impl_->memTypes.push_back(memType);
        impl_->strTypes.push_back(nullptr);
        impl_->dims.push_back(dims);
    } catch (const H5::Exception& e) {
        throw DataError(impl_->file + ":" + path + ": cannot create the dataset (" + writeDetail(e) + ")");
    }
    return static_cast<int>(impl_->sets.size()) - 1;
}

int H5RowWriter::createStrings(const std::string& path, int64_t rows, int bytes, int64_t chunkRows, int level) {
    if (bytes < 1) throw DataError(impl_->file + ":" + path + ": expected a string width of at least 1 byte, found " + std::to_string(bytes));
    try {
        auto type = std::make_unique<H5::StrType>(H5::PredType::C_S1, static_cast<size_t>(bytes));
        type->setCset(H5T_CSET_UTF8);
        type->setStrpad(H5T_STR_NULLPAD);
        const std::vector<hsize_t> dims{static_cast<hsize_t>(rows)};
        impl_->sets.push_back(createRows(*impl_->f, impl_->file, path, *type, dims, chunkRows, level));
        impl_->paths.push_back(path);
        impl_->memTypes.push_back(H5::PredType::NATIVE_UINT8);
        impl_->strTypes.push_back(std::move(type));
        impl_->dims.push_back(dims);
    } catch (const H5::Exception& e) {
        throw DataError(impl_->file + ":" + path + ": cannot create the dataset (" + writeDetail(e) + ")");
    }
    return static_cast<int>(impl_->sets.size()) - 1;
}

void H5RowWriter::addStrings(int handle, const std::string& name, const std::vector<std::string>& values) {
    if (handle < 0 || handle >= static_cast<int>(impl_->sets.size()))
        throw DataError(impl_->file + ": no dataset with handle " + std::to_string(handle));
    try {
        putStrings(impl_->sets[static_cast<size_t>(handle)], name, values);
    } catch (const H5::Exception& e) {
        throw DataError(impl_->file + ":" + impl_->paths[static_cast<size_t>(handle)] + ": cannot write the attribute " +
                        name + " (" + detail(e) + ")");
    }
}

void H5RowWriter::addFixedStrings(int handle, const std::string& name, const std::vector<std::string>& values) {
    if (handle < 0 || handle >= static_cast<int>(impl_->sets.size()))
        throw DataError(impl_->file + ": no dataset with handle " + std::to_string(handle));
    try {
        size_t width = 1;
        for (const auto& v : values) width = std::max(width, v.size());
        std::vector<char> buf(width * values.size(), '\0');
        for (size_t i = 0; i < values.size(); ++i) std::copy(values[i].begin(), values[i].end(), buf.begin() + static_cast<std::ptrdiff_t>(i * width));
        H5::StrType type(H5::PredType::C_S1, width);
        type.setCset(H5T_CSET_UTF8);
        type.setStrpad(H5T_STR_NULLPAD);
        const hsize_t n = values.size();
        auto& ds = impl_->sets[static_cast<size_t>(handle)];
        if (ds.attrExists(name)) ds.removeAttr(name);
        H5::Attribute a = ds.createAttribute(name, type, H5::DataSpace(1, &n));
        a.write(type, buf.data());
    } catch (const H5::Exception& e) {
        throw DataError(impl_->file + ":" + impl_->paths[static_cast<size_t>(handle)] + ": cannot write the attribute " +
                        name + " (" + detail(e) + ")");
    }
}

void H5RowWriter::write(int handle, int64_t start, int64_t count, const void* data) {
    if (handle < 0 || handle >= static_cast<int>(impl_->sets.size()))
        throw DataError(impl_->file + ": no dataset with handle " + std::to_string(handle));
    const auto& dims = impl_->dims[static_cast<size_t>(handle)];
    const std::string& path = impl_->paths[static_cast<size_t>(handle)];
    if (start < 0 || count < 0 || static_cast<hsize_t>(start + count) > dims[0])
        throw DataError(impl_->file + ":" + path + ": rows " + std::to_string(start) + " to " + std::to_string(start + count) +
                        " are outside the dataset's " + std::to_string(dims[0]) + " rows");
    if (count == 0) return;
    quietHere();
    try {
        auto& ds = impl_->sets[static_cast<size_t>(handle)];
        H5::DataSpace fileSpace = ds.getSpace();
        std::vector<hsize_t> offset(dims.size(), 0), extent(dims);
        offset[0] = static_cast<hsize_t>(start);
        extent[0] = static_cast<hsize_t>(count);
        fileSpace.selectHyperslab(H5S_SELECT_SET, extent.data(), offset.data());
        H5::DataSpace memSpace(static_cast<int>(extent.size()), extent.data());
        if (const auto& str = impl_->strTypes[static_cast<size_t>(handle)])
            ds.write(data, *str, memSpace, fileSpace);
        else
            ds.write(data, impl_->memTypes[static_cast<size_t>(handle)], memSpace, fileSpace);
    } catch (const H5::Exception& e) {
        throw DataError(impl_->file + ":" + path + ": write failed (" + writeDetail(e) + ")");
    }
}

void H5RowWriter::close() {
    if (!impl_->open) return;
    impl_->open = false;
    quietHere();
    std::string failure;
    for (auto& ds : impl_->sets) {
        try {
            ds.close();
        } catch (const H5::Exception& e) {
            if (failure.empty()) failure = writeDetail(e);
        }
    }
    impl_->sets.clear();
    const std::string closing = closeWrittenFile(impl_->f);
    if (failure.empty()) failure = closing;
    if (!failure.empty()) throw DataError(impl_->file + ": cannot close the HDF5 file (" + failure + ")");
}

bool hdf5CloseFailed() { return gCloseFailed.load(); }

int endProcess(int code) {
    if (!gCloseFailed.load()) return code;
    std::fflush(nullptr);
    std::_Exit(code);
}

}  // namespace gw::data
