// SPDX-License-Identifier: GPL-3.0-or-later
// The public Simple Shapes folder (`shapesd create`) into GW Studio's HDF5 layout: PNGs decoded by
// libpng on every core a block at a time, while the previous block is compressed and written.
#include "data/public_folder.h"

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include "data/atomic_file.h"
#include "data/captions.h"
#include "data/h5_array.h"
#include "data/npy.h"
#include "data/public_captions.h"
#include "data/shapes.h"

namespace gw::data {
namespace fs = std::filesystem;
namespace sh = gw::shapes;

namespace {

constexpr int kSide = sh::kImageSize;
constexpr int64_t kPixels = int64_t(kSide) * kSide * 3;
constexpr int64_t kBlock = 4096;  // images decoded between two writes (12 MiB of pixels)

/// An error in the input folder: carried past writeAtomically (which would call it a write error).
class FolderError : public DataError {
public:
    using DataError::DataError;
};

[[noreturn]] void failIn(const std::string& path, const std::string& where, const std::string& msg) {
    throw FolderError(path + " (" + where + "): " + msg);
}

/// An NpyError "PATH: msg" restated as "PATH (where): msg".
[[noreturn]] void rethrowNpy(const NpyError& e, const std::string& path, const std::string& where) {
    std::string msg = e.what();
    if (msg.rfind(path + ": ", 0) == 0) msg = msg.substr(path.size() + 2);
    failIn(path, where, msg);
}

// ---- PNG decoding (libpng's classic API; its errors longjmp, so that part keeps to plain C) -----------

struct PngSource {
    const unsigned char* data = nullptr;
    size_t size = 0, pos = 0;
};
struct PngError {
    char msg[200] = {0};
};
struct PngHeader {
    png_uint_32 width = 0, height = 0;
    int bitDepth = 0, colorType = 0;
};

void pngRead(png_structp png, png_bytep out, png_size_t n) {
    auto* s = static_cast<PngSource*>(png_get_io_ptr(png));
    if (n > s->size - s->pos) png_error(png, "the file ends early");
    std::memcpy(out, s->data + s->pos, n);
    s->pos += n;
}
void pngFail(png_structp png, png_const_charp msg) {
    auto* e = static_cast<PngError*>(png_get_error_ptr(png));
    std::snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}
void pngWarn(png_structp, png_const_charp) {}

/// 0: decoded into `rgba` (kSide rows of kSide · channels bytes, channels 3 or 4 per header.colorType);
/// 1: libpng failed (err); 2: not an 8-bit RGB or RGBA image of kSide × kSide (header says what it is).
/// No C++ object with a destructor lives in this frame, so the longjmp of libpng's errors is safe.
int decodePngC(const unsigned char* data, size_t size, unsigned char* rgba, PngHeader* header, PngError* err) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, err, pngFail, pngWarn);
    if (!png) {
        std::snprintf(err->msg, sizeof err->msg, "libpng cannot start (out of memory)");
        return 1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        std::snprintf(err->msg, sizeof err->msg, "libpng cannot start (out of memory)");
        return 1;
    }
    PngSource src;
    src.data = data;
    src.size = size;
    png_bytep rows[kSide];
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        return 1;
    }
    png_set_read_fn(png, &src, pngRead);
    png_read_info(png, info);
    header->width = png_get_image_width(png, info);
    header->height = png_get_image_height(png, info);
    header->bitDepth = png_get_bit_depth(png, info);
    header->colorType = png_get_color_type(png, info);
    if (header->width != png_uint_32(kSide) || header->height != png_uint_32(kSide) || header->bitDepth != 8 ||
        (header->colorType != PNG_COLOR_TYPE_RGB && header->colorType != PNG_COLOR_TYPE_RGB_ALPHA)) {
        png_destroy_read_struct(&png, &info, nullptr);
        return 2;
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const size_t rowBytes = size_t(kSide) * (header->colorType == PNG_COLOR_TYPE_RGB ? 3 : 4);
    for (int r = 0; r < kSide; ++r) rows[r] = rgba + size_t(r) * rowBytes;
    png_read_image(png, rows);
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return 0;
}

std::string pngKind(const PngHeader& h) {
    std::string kind;
    switch (h.colorType) {
        case PNG_COLOR_TYPE_GRAY: kind = "grey"; break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: kind = "grey with alpha"; break;
        case PNG_COLOR_TYPE_PALETTE: kind = "palette"; break;
        case PNG_COLOR_TYPE_RGB: kind = "RGB"; break;
        case PNG_COLOR_TYPE_RGB_ALPHA: kind = "RGBA"; break;
        default: kind = "colour type " + std::to_string(h.colorType);
    }
    return std::to_string(h.bitDepth) + "-bit " + kind;
}

/// The whole file at `path` into `buf`. False (and errno) when it cannot be read.
bool readWholeFile(const std::string& path, std::vector<unsigned char>& buf) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return false;
    }
    buf.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < buf.size()) {
        const ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            const int e = r < 0 ? errno : EIO;
            ::close(fd);
            errno = e;
            return false;
        }
        got += static_cast<size_t>(r);
    }
    ::close(fd);
    return true;
}

// ---- The folder's files ---------------------------------------------------------------------------------

std::string join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

void requireFile(const std::string& path, const std::string& where, const std::string& what) {
    std::error_code ec;
    if (!fs::exists(path, ec)) failIn(path, where, "the file is missing (expected " + what + ", as shapesd create writes it)");
    if (!fs::is_regular_file(path, ec)) failIn(path, where, "expected a file (" + what + "), found something else");
}

std::string shapeText(const std::vector<int64_t>& shape) {
    std::string s = "(";
    for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

std::string dtypeText(const std::string& dtype) {
    if (dtype == "U") return "text (<U)";
    if (dtype == "O") return "Python objects (|O)";
    return dtype;
}

std::string numberText(double v) {
    char f[64];
    std::snprintf(f, sizeof f, "%.9g", v);
    return f;
}

bool isFloat(const std::string& dtype) { return dtype == "f4" || dtype == "f8"; }
bool isNumber(const std::string& dtype) { return !dtype.empty() && dtype != "U" && dtype != "O"; }

std::unique_ptr<NpyRowReader> openRows(const std::string& path, const std::string& where) {
    try {
        return std::make_unique<NpyRowReader>(path);
    } catch (const NpyError& e) {
        rethrowNpy(e, path, where);
    }
}

NpyArray readRows(NpyRowReader& r, int64_t start, int64_t count, const std::string& where) {
    try {
        return r.read(start, count);
    } catch (const NpyError& e) {
        rethrowNpy(e, r.path(), where);
    }
}

NpyArray readWhole(const std::string& path, const std::string& where) {
    try {
        return readNpy(path);
    } catch (const NpyError& e) {
        rethrowNpy(e, path, where);
    }
}

/// Everything known about one split before its images are decoded.
struct SplitPlan {
    std::string name, where;
    std::string pngDir, labelsPath, captionsPath, choicesPath, latentPath, unpairedPath;
    int64_t n = 0;
    int64_t labelColumns = 0;
    int64_t bertDim = 0, unpairedDim = 0;
};

/// The BERT statistics shared by every split.
struct BertStats {
    std::vector<float> mean32, std32;
    std::vector<double> mean64, std64;
    bool float32 = true;  ///< mean and std are float32 (then latents in float32 are standardised in float32)
    int64_t dim = 0;
};

/// Counts the `.png` files of `dir`, as the public SimpleShapesImages counts its dataset.
int64_t countPngs(const std::string& dir, const std::string& where) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        if (!fs::exists(dir, ec)) failIn(dir, where, "the folder of PNG images is missing (expected {i}.png for each label row)");
        failIn(dir, where, "expected the folder of PNG images, found a file");
    }
    int64_t count = 0;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().extension() == ".png") ++count;
    if (ec) failIn(dir, where, "cannot list the folder (" + ec.message() + ")");
    return count;
}

SplitPlan planSplit(const std::string& dir, const std::string& split, bool text) {
    SplitPlan p;
    p.name = split;
    p.where = "split " + split;
    p.pngDir = join(dir, split);
    p.labelsPath = join(dir, split + "_labels.npy");
    requireFile(p.labelsPath, p.where, "the (N, 12) float32 labels");
    {
        const auto reader = openRows(p.labelsPath, p.where);
        const NpyRowReader& labels = *reader;
        if (!isNumber(labels.dtype()))
            failIn(p.labelsPath, p.where, "expected numbers (float32), found " + dtypeText(labels.dtype()));
        if (labels.shape().size() != 2 || (labels.shape()[1] != 11 && labels.shape()[1] != 12))
            failIn(p.labelsPath, p.where,
                   "expected (N, 12) labels (class, x, y, size, rotation, r, g, b, h, l, s, unpaired; or the first 11), found " +
                       shapeText(labels.shape()));
        p.n = labels.rows();
        p.labelColumns = labels.shape()[1];
    }
    if (p.n == 0) failIn(p.labelsPath, p.where, "expected at least one sample, found 0 rows");
    const int64_t pngs = countPngs(p.pngDir, p.where);
    if (pngs != p.n)
        failIn(p.pngDir, p.where, "found " + std::to_string(pngs) + " PNG files, but " + split + "_labels.npy has " +
                                      std::to_string(p.n) + " rows (expected one {i}.png per row)");
    if (text) {
        p.captionsPath = join(dir, split + "_captions.npy");
        p.choicesPath = join(dir, split + "_caption_choices.npy");
        p.latentPath = join(dir, split + "_latent.npy");
        requireFile(p.captionsPath, p.where, "the (N,) captions; --no-text imports without the text");
        requireFile(p.choicesPath, p.where, "the (N,) caption-choice dicts; --no-text imports without the text");
        requireFile(p.latentPath, p.where, "the (N, 768) BERT vectors; --no-text imports without the text");
        const auto captionsReader = openRows(p.captionsPath, p.where);
        const NpyRowReader& captions = *captionsReader;
        if (captions.dtype() != "U") failIn(p.captionsPath, p.where, "expected text (<U), found " + dtypeText(captions.dtype()));
        if (captions.shape() != std::vector<int64_t>{p.n})
            failIn(p.captionsPath, p.where, "expected " + shapeText({p.n}) + " captions (one per label row), found " + shapeText(captions.shape()));
        const auto latentReader = openRows(p.latentPath, p.where);
        const NpyRowReader& latent = *latentReader;
        if (!isFloat(latent.dtype()))
            failIn(p.latentPath, p.where, "expected float32 BERT vectors, found " + dtypeText(latent.dtype()));
        if (latent.shape().size() != 2 || latent.rows() != p.n || latent.shape()[1] < 1)
            failIn(p.latentPath, p.where, "expected (" + std::to_string(p.n) + ", D) BERT vectors (one per label row), found " +
                                              shapeText(latent.shape()));
        p.bertDim = latent.shape()[1];
    }
    const std::string unpaired = join(dir, split + "_unpaired.npy");
    std::error_code ec;
    if (fs::exists(unpaired, ec)) {
        p.unpairedPath = unpaired;
        const auto reader = openRows(unpaired, p.where);
        const NpyRowReader& u = *reader;
        if (!isFloat(u.dtype())) failIn(unpaired, p.where, "expected float64 or float32 values, found " + dtypeText(u.dtype()));
        if (u.shape().size() != 2 || u.rows() != p.n || u.shape()[1] < 1)
            failIn(unpaired, p.where, "expected (" + std::to_string(p.n) + ", K) values (one row per label row), found " + shapeText(u.shape()));
        p.unpairedDim = u.shape()[1];
    }
    return p;
}

BertStats readBertStats(const std::string& dir, int64_t dim) {
    BertStats s;
    s.dim = dim;
    const std::string where = "the BERT statistics of every split";
    std::vector<NpyArray> both;
    for (const char* name : {"latent_mean.npy", "latent_std.npy"}) {
        const std::string path = join(dir, name);
        requireFile(path, where, std::string("the (") + std::to_string(dim) + ",) " + (both.empty() ? "mean" : "standard deviation") +
                                     " of the training split's BERT vectors");
        NpyArray a = readWhole(path, where);
        if (!isFloat(a.dtype)) failIn(path, where, "expected float32 values, found " + dtypeText(a.dtype));
        if (a.shape != std::vector<int64_t>{dim}) failIn(path, where, "expected " + shapeText({dim}) + " (the BERT vectors' width), found " + shapeText(a.shape));
        both.push_back(std::move(a));
    }
    s.float32 = both[0].dtype == "f4" && both[1].dtype == "f4";
    for (int64_t k = 0; k < dim; ++k) {
        const double m = both[0].number(k), d = both[1].number(k);
        if (!std::isfinite(m)) failIn(join(dir, "latent_mean.npy"), where, "element " + std::to_string(k) + " is not finite");
        if (!(d > 0) || !std::isfinite(d))
            failIn(join(dir, "latent_std.npy"), where,
                   "element " + std::to_string(k) + ": expected a positive standard deviation, found " + numberText(d));
        s.mean64.push_back(m);
        s.std64.push_back(d);
        s.mean32.push_back(static_cast<float>(m));
        s.std32.push_back(static_cast<float>(d));
    }
    return s;
}

/// A label row as a Shape, checked against the public generator's values.
sh::Shape shapeOfLabels(const NpyArray& labels, int64_t i, int64_t columns, const std::string& path, const std::string& where) {
    double v[12];
    for (int64_t k = 0; k < columns; ++k) v[k] = labels.number(i * columns + k);
    auto bad = [&](const std::string& column, const std::string& expected, double found) {
        failIn(path, where, "row " + std::to_string(i) + ", column " + column + ": expected " + expected + ", found " + numberText(found));
    };
    for (int64_t k = 0; k < columns; ++k)
        if (!std::isfinite(v[k])) bad(std::to_string(k), "a finite number", v[k]);
    sh::Shape s;
    if (v[0] != std::floor(v[0]) || v[0] < 0 || v[0] >= sh::kClasses) bad("0 (class)", "0, 1 or 2", v[0]);
    s.cls = static_cast<int>(v[0]);
    s.x = v[1];
    s.y = v[2];
    s.size = v[3];
    s.rotation = v[4];
    static const char* const names[] = {"5 (r)", "6 (g)", "7 (b)", "8 (h)", "9 (l)", "10 (s)"};
    for (int c = 0; c < 6; ++c) {
        const double x = v[5 + c];
        const double top = c == 3 ? 180 : 255;
        if (x != std::floor(x) || x < 0 || x > top) bad(names[c], c == 3 ? "a whole number in 0..180" : "a whole number in 0..255", x);
        (c < 3 ? s.rgb[size_t(c)] : s.hls[size_t(c - 3)]) = static_cast<uint8_t>(x);
    }
    return s;
}

/// One block of rows: inputs read by the main thread, outputs filled by the decoders.
struct Block {
    int64_t start = 0, count = 0;
    NpyArray captions, latent, unpaired;
    std::vector<uint8_t> v;
    std::vector<float> attr, labels, labelsUnpaired, bert, unpairedOut;
    std::vector<char> t;
    std::vector<int8_t> choices;
};

/// Captions that differ from what the composer makes of their labels and choices, in some rows.
struct Mismatches {
    int64_t count = 0, first = -1;
};

struct SplitInputs {
    const SplitPlan* plan = nullptr;
    const NpyArray* labels = nullptr;
    const std::vector<sh::CaptionChoice>* choices = nullptr;
    const BertStats* bert = nullptr;
};

/// Rows [lo, hi) of block `b` (indices within the block); threads fill disjoint ranges.
Mismatches fillRows(Block& b, int64_t lo, int64_t hi, const SplitInputs& in, const std::atomic<bool>& failed) {
    const SplitPlan& p = *in.plan;
    Mismatches m;
    std::vector<unsigned char> file;
    for (int64_t j = lo; j < hi && !failed.load(std::memory_order_relaxed); ++j) {
        const int64_t i = b.start + j;
        const std::string png = join(p.pngDir, std::to_string(i) + ".png");
        if (!readWholeFile(png, file)) {
            if (errno == ENOENT) failIn(png, p.where, "the file is missing (expected one PNG per label row, named by its row)");
            failIn(png, p.where, std::string("cannot read the file (") + std::strerror(errno) + ")");
        }
        decodeShapesPng(png, p.where, file.data(), file.size(), b.v.data() + j * kPixels);
        const sh::Shape s = shapeOfLabels(*in.labels, i, p.labelColumns, p.labelsPath, p.where);
        const auto a = sh::attributeVector(s);
        std::copy(a.begin(), a.end(), b.attr.begin() + j * sh::kAttributeDim);
        // The first 11 columns as they are (not through the Shape, which holds the colours as bytes).
        for (int k = 0; k < sh::kLabelColumns; ++k)
            b.labels[size_t(j * sh::kLabelColumns + k)] = static_cast<float>(in.labels->number(i * p.labelColumns + k));
        if (p.labelColumns == 12) b.labelsUnpaired[size_t(j)] = static_cast<float>(in.labels->number(i * 12 + 11));
        if (in.choices) {
            const std::string& caption = b.captions.text[size_t(j)];
            if (caption.size() > size_t(sh::kCaptionBytes))
                failIn(p.captionsPath, p.where, "caption " + std::to_string(i) + ": expected at most " + std::to_string(sh::kCaptionBytes) +
                                                    " bytes of UTF-8, found " + std::to_string(caption.size()));
            std::copy(caption.begin(), caption.end(), b.t.begin() + j * sh::kCaptionBytes);
            sh::Caption c;
            try {
                c = sh::makeCaption(sh::captionInput(s), (*in.choices)[size_t(i)]);
            } catch (const std::exception& e) {
                failIn(p.choicesPath, p.where, "element " + std::to_string(i) + ": the choices do not fit the caption grammar (" + e.what() + ")");
            }
            std::copy(c.columns.begin(), c.columns.end(), b.choices.begin() + j * sh::kCaptionChoiceColumns);
            if (c.text != caption) {
                ++m.count;
                if (m.first < 0) m.first = i;
            }
            const BertStats& st = *in.bert;
            const int64_t d = st.dim;
            float* out = b.bert.data() + j * d;
            if (st.float32 && b.latent.dtype == "f4") {
                // float32 arithmetic, one rounding per operation, as torch computes (bert - mean) / std.
                const float* x = reinterpret_cast<const float*>(b.latent.bytes.data()) + j * d;
                for (int64_t k = 0; k < d; ++k) out[k] = (x[k] - st.mean32[size_t(k)]) / st.std32[size_t(k)];
            } else {
                for (int64_t k = 0; k < d; ++k)
                    out[k] = static_cast<float>((b.latent.number(j * d + k) - st.mean64[size_t(k)]) / st.std64[size_t(k)]);
            }
        }
        if (p.unpairedDim > 0)
            for (int64_t k = 0; k < p.unpairedDim; ++k)
                b.unpairedOut[size_t(j * p.unpairedDim + k)] = static_cast<float>(b.unpaired.number(j * p.unpairedDim + k));
    }
    return m;
}

/// The caption choices of a split, read whole (one pickle) and turned into CaptionChoices.
std::vector<sh::CaptionChoice> readChoices(const SplitPlan& p) {
    NpyArray a = readWhole(p.choicesPath, p.where);
    if (a.dtype != "O")
        failIn(p.choicesPath, p.where, "expected pickled caption-choice dicts (an object array, |O), found " + dtypeText(a.dtype));
    if (a.shape != std::vector<int64_t>{p.n})
        failIn(p.choicesPath, p.where, "expected " + shapeText({p.n}) + " caption-choice dicts (one per label row), found " + shapeText(a.shape));
    std::vector<sh::CaptionChoice> out;
    out.reserve(size_t(p.n));
    for (int64_t i = 0; i < p.n; ++i) {
        const PyValue& v = *a.objects[size_t(i)];
        try {
            out.push_back(captionChoiceOfPublic(v, "element " + std::to_string(i)));
        } catch (const NpyError& e) {
            failIn(p.choicesPath, p.where, std::string(e.what()) + " (expected the caption choices that shapesd create pickles)");
        }
    }
    return out;
}

}  // namespace

void decodeShapesPng(const std::string& path, const std::string& where, const unsigned char* bytes, size_t size, uint8_t* rgb) {
    unsigned char raw[kSide * kSide * 4];
    PngHeader h;
    PngError err;
    const int rc = decodePngC(bytes, size, raw, &h, &err);
    if (rc == 1) failIn(path, where, std::string("cannot decode the PNG (libpng: ") + err.msg + ")");
    if (rc == 2) {
        if (h.width != png_uint_32(kSide) || h.height != png_uint_32(kSide))
            failIn(path, where, "expected a " + std::to_string(kSide) + " x " + std::to_string(kSide) + " PNG, found " +
                                    std::to_string(h.width) + " x " + std::to_string(h.height));
        failIn(path, where, "expected an 8-bit RGB or RGBA PNG, found " + pngKind(h));
    }
    if (h.colorType == PNG_COLOR_TYPE_RGB) {
        std::memcpy(rgb, raw, size_t(kPixels));
        return;
    }
    for (int64_t p = 0; p < int64_t(kSide) * kSide; ++p) {
        rgb[3 * p] = raw[4 * p];
        rgb[3 * p + 1] = raw[4 * p + 1];
        rgb[3 * p + 2] = raw[4 * p + 2];
    }
}

std::vector<PublicFolderSplit> importSimpleShapesFolder(
    const std::string& dir, const std::string& outFile, const PublicFolderOptions& o,
    const std::function<void(const std::string&, int64_t, int64_t)>& progress, const std::function<bool()>& stop) {
    if (outFile.empty()) throw DataError("simple-shapes-folder: expected an output file, found an empty path");
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw DataError(dir + ": expected the folder written by shapesd create, found " + (fs::exists(dir, ec) ? "a file" : "nothing"));
    if (fs::exists(outFile, ec) && !o.force) throw DataError(outFile + ": the file exists (expected a new path, or --force to replace it)");
    const int threads = o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));

    // Everything that can be checked without decoding, before the output is created.
    std::vector<SplitPlan> plans;
    for (const char* split : {"train", "val", "test"}) plans.push_back(planSplit(dir, split, o.text));
    BertStats bert;
    if (o.text) {
        for (const auto& p : plans)
            if (p.bertDim != plans[0].bertDim)
                failIn(p.latentPath, p.where, "expected BERT vectors of width " + std::to_string(plans[0].bertDim) + " (as " +
                                                  plans[0].name + "'s), found " + std::to_string(p.bertDim));
        bert = readBertStats(dir, plans[0].bertDim);
    }

    std::vector<PublicFolderSplit> report;
    std::exception_ptr inputError;
    struct InputFailed {};  // not a std::exception: writeAtomically removes the temporary and lets it through
    try {
        writeAtomically(outFile, [&](const std::string& tmp) {
            try {
                H5RowWriter w(tmp);
                for (const SplitPlan& p : plans) {
                    PublicFolderSplit r;
                    r.name = p.name;
                    r.samples = p.n;
                    r.bertDim = p.bertDim;
                    r.unpairedDim = p.unpairedDim;
                    r.labelsUnpaired = p.labelColumns == 12;
                    const NpyArray labels = readWhole(p.labelsPath, p.where);
                    std::vector<sh::CaptionChoice> choices;
                    if (o.text) choices = readChoices(p);
                    std::unique_ptr<NpyRowReader> captions, latent, unpaired;
                    if (o.text) {
                        captions = openRows(p.captionsPath, p.where);
                        latent = openRows(p.latentPath, p.where);
                    }
                    if (p.unpairedDim > 0) unpaired = openRows(p.unpairedPath, p.where);

                    const std::string g = "/" + p.name + "/";
                    const int v = w.create(g + "v", H5RowWriter::Type::UInt8, p.n, {kSide, kSide, 3}, 1024, o.compression);
                    const int attr = w.create(g + "attr", H5RowWriter::Type::Float32, p.n, {sh::kAttributeDim}, 8192, o.compression,
                                              {{"num_classes", sh::kClasses}});
                    w.addStrings(attr, "class_names", {sh::className(0), sh::className(1), sh::className(2)});
                    const int lab = w.create(g + "labels", H5RowWriter::Type::Float32, p.n, {sh::kLabelColumns}, 8192, o.compression);
                    int labU = -1, t = -1, cc = -1, tb = -1, un = -1;
                    if (r.labelsUnpaired) labU = w.create(g + "labels_unpaired", H5RowWriter::Type::Float32, p.n, {}, 8192, o.compression);
                    if (o.text) {
                        t = w.createStrings(g + "t", p.n, sh::kCaptionBytes, 8192, o.compression);
                        cc = w.create(g + "caption_choices", H5RowWriter::Type::Int8, p.n, {sh::kCaptionChoiceColumns}, 8192,
                                      o.compression, {{"public_categories", sh::kCaptionCategoryColumns}});
                        std::vector<std::string> names;
                        for (const auto& c : sh::captionChoiceColumnInfo()) names.emplace_back(c.name);
                        w.addFixedStrings(cc, "column_names", names);
                        // Standardised BERT vectors and normal draws are all mantissa: gzip saves some 6% of
                        // their size and would cost more time than the rest of the import; stored as they are.
                        tb = w.create(g + "t_bert", H5RowWriter::Type::Float32, p.n, {p.bertDim}, 1024, 0);
                    }
                    if (p.unpairedDim > 0) un = w.create(g + "unpaired", H5RowWriter::Type::Float32, p.n, {p.unpairedDim}, 8192, 0);

                    const SplitInputs in{&p, &labels, o.text ? &choices : nullptr, &bert};
                    Block blocks[2];  // declared first: the future's destructor waits for a write that reads them
                    std::future<void> writing;
                    int cur = 0;
                    if (progress) progress(p.name, 0, p.n);
                    for (int64_t start = 0; start < p.n; start += kBlock) {
                        if (stop && stop()) {
                            if (writing.valid()) writing.wait();
                            throw ImportStopped(outFile + ": import stopped; nothing was written");
                        }
                        Block& b = blocks[cur];
                        b.start = start;
                        b.count = std::min(kBlock, p.n - start);
                        b.v.resize(size_t(b.count * kPixels));
                        b.attr.resize(size_t(b.count * sh::kAttributeDim));
                        b.labels.resize(size_t(b.count * sh::kLabelColumns));
                        if (r.labelsUnpaired) b.labelsUnpaired.resize(size_t(b.count));
                        // This block's inputs; the block being written is the other one.
                        if (o.text) {
                            b.captions = readRows(*captions, start, b.count, p.where);
                            b.latent = readRows(*latent, start, b.count, p.where);
                            b.t.assign(size_t(b.count * sh::kCaptionBytes), '\0');
                            b.choices.resize(size_t(b.count * sh::kCaptionChoiceColumns));
                            b.bert.resize(size_t(b.count * p.bertDim));
                        }
                        if (unpaired) {
                            b.unpaired = readRows(*unpaired, start, b.count, p.where);
                            b.unpairedOut.resize(size_t(b.count * p.unpairedDim));
                        }
                        // Decode on every core, each thread a range of rows; the error of the first range that failed is
                        // the one reported (the others stop at their next row).
                        const int64_t nt = std::max<int64_t>(1, std::min<int64_t>(threads, b.count / 16));
                        std::atomic<bool> failed{false};
                        std::vector<Mismatches> tallies(static_cast<size_t>(nt));
                        std::vector<std::exception_ptr> errors(static_cast<size_t>(nt));
                        auto work = [&](int64_t k) {
                            try {
                                tallies[size_t(k)] = fillRows(b, k * b.count / nt, (k + 1) * b.count / nt, in, failed);
                            } catch (...) {
                                errors[size_t(k)] = std::current_exception();
                                failed = true;
                            }
                        };
                        std::vector<std::future<void>> running;
                        for (int64_t k = 1; k < nt; ++k) running.push_back(std::async(std::launch::async, work, k));
                        work(0);
                        for (auto& f : running) f.get();
                        for (const auto& e : errors)
                            if (e) std::rethrow_exception(e);
                        for (const auto& m : tallies) {
                            r.captionMismatches += m.count;
                            if (m.first >= 0 && (r.firstMismatch < 0 || m.first < r.firstMismatch)) r.firstMismatch = m.first;
                        }
                        if (writing.valid()) writing.get();  // the previous block, written while this one decoded
                        writing = std::async(std::launch::async, [&w, &b, v, attr, lab, labU, t, cc, tb, un] {
                            w.write(v, b.start, b.count, b.v.data());
                            w.write(attr, b.start, b.count, b.attr.data());
                            w.write(lab, b.start, b.count, b.labels.data());
                            if (labU >= 0) w.write(labU, b.start, b.count, b.labelsUnpaired.data());
                            if (t >= 0) {
                                w.write(t, b.start, b.count, b.t.data());
                                w.write(cc, b.start, b.count, b.choices.data());
                                w.write(tb, b.start, b.count, b.bert.data());
                            }
                            if (un >= 0) w.write(un, b.start, b.count, b.unpairedOut.data());
                        });
                        cur ^= 1;
                        if (progress) progress(p.name, start + b.count, p.n);
                    }
                    if (writing.valid()) writing.get();
                    report.push_back(r);
                }
                w.close();
            } catch (const FolderError&) {
                inputError = std::current_exception();
                throw InputFailed{};
            } catch (const ImportStopped&) {
                inputError = std::current_exception();
                throw InputFailed{};
            }
        });
    } catch (const InputFailed&) {
        std::rethrow_exception(inputError);
    }
    return report;
}

}  // namespace gw::data
