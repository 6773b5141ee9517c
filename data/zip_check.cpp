// SPDX-License-Identifier: GPL-3.0-or-later
// The zip layout read here (PKWARE's APPNOTE): the end-of-central-directory record at the end of the
// file (and, for large archives, its zip64 form), then one central-directory entry per record with
// its CRC-32, sizes and the offset of its local header, after which the record's bytes follow.
#include "data/zip_check.h"

#include "data/printable.h"

#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace gw::data {
namespace {

class Source {
public:
    virtual ~Source() = default;
    virtual uint64_t size() const = 0;
    /// Reads n bytes at off; false when they are not all there.
    virtual bool read(uint64_t off, size_t n, char* out) = 0;
};

class FileSource : public Source {
public:
    explicit FileSource(const std::string& path) : in_(path, std::ios::binary) {
        if (!in_) throw std::runtime_error(path + ": cannot read the file (" + std::strerror(errno) + ")");
        in_.seekg(0, std::ios::end);
        size_ = static_cast<uint64_t>(in_.tellg());
    }
    uint64_t size() const override { return size_; }
    bool read(uint64_t off, size_t n, char* out) override {
        if (off > size_ || n > size_ - off) return false;
        in_.clear();
        in_.seekg(static_cast<std::streamoff>(off));
        in_.read(out, static_cast<std::streamsize>(n));
        return static_cast<size_t>(in_.gcount()) == n;
    }

private:
    std::ifstream in_;
    uint64_t size_ = 0;
};

class BytesSource : public Source {
public:
    explicit BytesSource(const std::string& b) : b_(b) {}
    uint64_t size() const override { return b_.size(); }
    bool read(uint64_t off, size_t n, char* out) override {
        if (off > b_.size() || n > b_.size() - off) return false;
        std::memcpy(out, b_.data() + off, n);
        return true;
    }

private:
    const std::string& b_;
};

uint32_t u16(const char* p) { return uint32_t(uint8_t(p[0])) | uint32_t(uint8_t(p[1])) << 8; }
uint32_t u32(const char* p) { return u16(p) | u16(p + 2) << 16; }
uint64_t u64(const char* p) { return uint64_t(u32(p)) | uint64_t(u32(p + 4)) << 32; }

std::string hex(uint32_t v) {
    char b[16];
    std::snprintf(b, sizeof b, "0x%08x", v);
    return b;
}

/// A record name as a message shows it: printable ASCII kept, other bytes as \xNN, at most 80 characters.
std::string shown(const std::string& name) { return printable(name, 80); }

struct Entry {
    std::string name;
    uint32_t method = 0, crc = 0;
    uint64_t csize = 0, usize = 0, offset = 0;
};

/// CRC-32 of a record's bytes (inflated when stored compressed); false when they cannot be read.
bool recordCrc(Source& src, const Entry& e, uint32_t& crc, std::string& why) {
    char lh[30];
    if (!src.read(e.offset, sizeof lh, lh) || u32(lh) != 0x04034b50) {
        why = "its local header is missing or damaged";
        return false;
    }
    uint64_t pos = e.offset + 30 + u16(lh + 26) + u16(lh + 28);
    if (pos > src.size() || e.csize > src.size() - pos) {
        why = "it runs past the end of the file";
        return false;
    }
    crc = static_cast<uint32_t>(::crc32(0L, Z_NULL, 0));
    std::vector<char> buf(1 << 20), out;
    z_stream z{};
    const bool inflating = e.method == 8;
    if (inflating) {
        if (inflateInit2(&z, -MAX_WBITS) != Z_OK) {
            why = "zlib could not start inflating it";
            return false;
        }
        out.resize(1 << 20);
    } else if (e.method != 0) {
        why = "it is compressed with method " + std::to_string(e.method) + ", which this reader does not know";
        return false;
    }
    uint64_t left = e.csize, produced = 0;
    bool ok = true;
    while (left > 0 && ok) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
        if (!src.read(pos, n, buf.data())) {
            why = "it cannot be read";
            ok = false;
            break;
        }
        pos += n;
        left -= n;
        if (!inflating) {
            crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n)));
            produced += n;
            continue;
        }
        z.next_in = reinterpret_cast<Bytef*>(buf.data());
        z.avail_in = static_cast<uInt>(n);
        while (z.avail_in > 0) {
            z.next_out = reinterpret_cast<Bytef*>(out.data());
            z.avail_out = static_cast<uInt>(out.size());
            const int r = inflate(&z, Z_NO_FLUSH);
            if (r != Z_OK && r != Z_STREAM_END) {
                why = "its compressed bytes are damaged";
                ok = false;
                break;
            }
            const size_t got = out.size() - z.avail_out;
            crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(got)));
            produced += got;
            if (r == Z_STREAM_END) break;
        }
    }
    if (inflating) inflateEnd(&z);
    if (ok && produced != e.usize) {
        why = "it holds " + std::to_string(produced) + " bytes, the directory says " + std::to_string(e.usize);
        ok = false;
    }
    return ok;
}

/// The bytes of a small record stored uncompressed (LibTorch's "version"); false when it is not one.
bool smallStoredRecord(Source& src, const Entry& e, std::string& out) {
    char lh[30];
    if (e.method != 0 || e.usize > 64 || !src.read(e.offset, sizeof lh, lh)) return false;
    out.resize(static_cast<size_t>(e.usize));
    return src.read(e.offset + 30 + u16(lh + 26) + u16(lh + 28), out.size(), out.data());
}

std::string check(Source& src, uint64_t* version) {
    const uint64_t size = src.size();
    if (size < 22) return "not a zip archive: " + std::to_string(size) + " bytes";
    // The end-of-central-directory record: 22 bytes plus a comment of up to 65,535 bytes.
    const uint64_t tail = std::min<uint64_t>(size, 22 + 65535);
    std::vector<char> t(static_cast<size_t>(tail));
    if (!src.read(size - tail, t.size(), t.data())) return "not a zip archive: its end cannot be read";
    int64_t at = -1;
    for (int64_t i = int64_t(tail) - 22; i >= 0; --i)
        if (u32(&t[size_t(i)]) == 0x06054b50) {
            at = i;
            break;
        }
    if (at < 0) return "not a zip archive: no end-of-central-directory record";
    const char* eocd = &t[size_t(at)];
    uint64_t entries = u16(eocd + 10), cdSize = u32(eocd + 12), cdOffset = u32(eocd + 16);
    const uint64_t eocdPos = size - tail + uint64_t(at);
    // A zip64 locator just before the end record: readers (LibTorch's miniz among them) then take the
    // zip64 record's counts, so it must exist and agree with the end record wherever that one is not
    // saturated (a disagreement made LibTorch's reader throw from its constructor and leak).
    char loc[20];
    const bool hasLocator = eocdPos >= 20 && src.read(eocdPos - 20, 20, loc) && u32(loc) == 0x07064b50;
    const bool needs64 = entries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF;
    if (needs64 && !hasLocator) return "damaged zip64 end-of-central-directory locator";
    if (hasLocator) {
        char z64[56];
        if (!src.read(u64(loc + 8), 56, z64) || u32(z64) != 0x06064b50) return "damaged zip64 end-of-central-directory record";
        const uint64_t e64 = u64(z64 + 32), s64 = u64(z64 + 40), o64 = u64(z64 + 48);
        if ((entries != 0xFFFF && e64 != entries) || (cdSize != 0xFFFFFFFF && s64 != cdSize) ||
            (cdOffset != 0xFFFFFFFF && o64 != cdOffset))
            return "damaged zip64 end-of-central-directory record (" + std::to_string(e64) + " records at offset " +
                   std::to_string(o64) + "; the end record says " + std::to_string(entries) + " at " + std::to_string(cdOffset) + ")";
        entries = e64;
        cdSize = s64;
        cdOffset = o64;
    }
    if (cdOffset > size || cdSize > size - cdOffset || entries > cdSize / 46 + 1)
        return "damaged central directory (offset " + std::to_string(cdOffset) + ", size " + std::to_string(cdSize) +
               ", " + std::to_string(entries) + " records, in a file of " + std::to_string(size) + " bytes)";
    std::vector<char> cd(static_cast<size_t>(cdSize));
    if (!src.read(cdOffset, cd.size(), cd.data())) return "cannot read the central directory";
    size_t p = 0;
    std::string folder, versionText;
    bool versionFound = false, preferred = false;
    for (uint64_t i = 0; i < entries; ++i) {
        if (p + 46 > cd.size() || u32(&cd[p]) != 0x02014b50)
            return "damaged central directory (entry " + std::to_string(i + 1) + " of " + std::to_string(entries) + ")";
        const char* h = &cd[p];
        Entry e;
        e.method = u16(h + 10);
        // Encrypted, strongly encrypted or patch data: no LibTorch archive has them, and its reader throws
        // from its constructor on them (and leaks).
        if (u16(h + 8) & 0x61)
            return "record '" + shown(std::string(h + 46, std::min<size_t>(u16(h + 28), cd.size() - p - 46))) +
                   "' is marked encrypted or as patch data (flags " + hex(u16(h + 8)) + "), which no LibTorch archive is";
        e.crc = u32(h + 16);
        e.csize = u32(h + 20);
        e.usize = u32(h + 24);
        e.offset = u32(h + 42);
        const size_t nlen = u16(h + 28), xlen = u16(h + 30), clen = u16(h + 32);
        if (p + 46 + nlen + xlen + clen > cd.size())
            return "damaged central directory (entry " + std::to_string(i + 1) + " runs past its end)";
        e.name.assign(h + 46, nlen);
        const std::string name = shown(e.name);
        // zip64 sizes and offset, in this order, for the fields that say 0xFFFFFFFF.
        for (size_t x = p + 46 + nlen; x + 4 <= p + 46 + nlen + xlen;) {
            const uint32_t id = u16(&cd[x]), len = u16(&cd[x + 2]);
            if (x + 4 + len > p + 46 + nlen + xlen) break;
            if (id == 1) {
                size_t q = x + 4;
                auto take = [&](uint64_t& field) {
                    if (field == 0xFFFFFFFF && q + 8 <= x + 4 + len) {
                        field = u64(&cd[q]);
                        q += 8;
                    }
                };
                take(e.usize);
                take(e.csize);
                take(e.offset);
            }
            x += 4 + len;
        }
        p += 46 + nlen + xlen + clen;
        uint32_t crc = 0;
        std::string why;
        if (!recordCrc(src, e, crc, why)) return "record '" + name + "' is damaged (" + why + ")";
        if (crc != e.crc) return "record '" + name + "' is damaged (CRC-32 " + hex(crc) + ", expected " + hex(e.crc) + ")";
        // LibTorch's layout: one top folder, named by the first record.
        if (i == 0) {
            const size_t slash = e.name.find('/');
            if (slash == std::string::npos || slash == 0)
                return "not a LibTorch archive: its first record '" + name + "' is not inside a folder";
            folder = e.name.substr(0, slash + 1);
        } else if (e.name.compare(0, folder.size(), folder) != 0) {
            return "not a LibTorch archive: record '" + name + "' is outside the archive's folder '" + shown(folder) + "'";
        }
        // LibTorch reads ".data/version" when there is one, else "version".
        const bool dataVersion = e.name == folder + ".data/version";
        if (dataVersion || (e.name == folder + "version" && !preferred)) {
            versionFound = true;
            preferred = preferred || dataVersion;
            if (!smallStoredRecord(src, e, versionText))
                return "record '" + name + "' is not a LibTorch version record (expected a short number stored uncompressed)";
        }
    }
    if (p != cd.size())
        return "damaged central directory (" + std::to_string(entries) + " records take " + std::to_string(p) + " of its " +
               std::to_string(cd.size()) + " bytes)";
    if (entries == 0) return "not a LibTorch archive: it holds no records";
    if (!versionFound) return "not a LibTorch archive: no record '" + shown(folder) + "version'";
    while (!versionText.empty() && (versionText.back() == '\n' || versionText.back() == '\r')) versionText.pop_back();
    uint64_t v = 0;
    bool digits = !versionText.empty() && versionText.size() <= 18;
    for (char c : versionText) {
        digits = digits && c >= '0' && c <= '9';
        if (digits) v = v * 10 + uint64_t(c - '0');
    }
    if (!digits) return "record '" + shown(folder) + "version' holds '" + shown(versionText.substr(0, 20)) + "', expected a file format version number";
    if (version) *version = v;
    return {};
}

}  // namespace

std::string checkZipFile(const std::string& path, uint64_t* version) {
    FileSource src(path);
    return check(src, version);
}

std::string checkZipBytes(const std::string& bytes, uint64_t* version) {
    BytesSource src(bytes);
    return check(src, version);
}

}  // namespace gw::data
