// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/file_hash.h"

#include <openssl/evp.h>

#include "data/atomic_file.h"

#include <cctype>
#include <cerrno>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

namespace gw::data {
namespace {

/// One EVP digest context, freed on every path out.
class Sha256 {
public:
    Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
            throw std::runtime_error("SHA-256: OpenSSL could not start a digest");
    }
    void add(const char* data, size_t n) {
        if (n && EVP_DigestUpdate(ctx_.get(), data, n) != 1) throw std::runtime_error("SHA-256: OpenSSL digest update failed");
    }
    std::string hex() {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1) throw std::runtime_error("SHA-256: OpenSSL digest failed");
        static const char* digits = "0123456789abcdef";
        std::string s;
        for (unsigned int i = 0; i < len; ++i) {
            s += digits[md[i] >> 4];
            s += digits[md[i] & 15];
        }
        return s;
    }

private:
    std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

}  // namespace

std::string sha256OfFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read the file (" + std::strerror(errno) + ")");
    Sha256 h;
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        h.add(buf.data(), static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) throw std::runtime_error(path + ": cannot read the file (read error)");
    return h.hex();
}

std::string sha256OfBytes(const std::string& bytes) {
    Sha256 h;
    h.add(bytes.data(), bytes.size());
    return h.hex();
}

std::string sha256SidecarOf(const std::string& path) { return path + ".sha256"; }

void writeSha256Sidecar(const std::string& path) {
    const std::string line = sha256OfFile(path) + "  " + std::filesystem::path(path).filename().string() + "\n";
    writeFileAtomically(sha256SidecarOf(path), line);
}

std::string checkSha256Sidecar(const std::string& path) {
    const std::string side = sha256SidecarOf(path);
    std::error_code ec;
    if (!std::filesystem::exists(side, ec)) return {};
    std::ifstream in(side);
    std::string expected, name;
    if (!in || !(in >> expected)) throw std::runtime_error(side + ": cannot read the checksum file (" + std::strerror(errno) + ")");
    in >> name;
    bool hex = expected.size() == 64;
    for (char c : expected) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
    if (!hex)
        throw std::runtime_error(side + ": expected a SHA-256 (64 hexadecimal digits) and the file name, as sha256sum writes, found '" +
                                 expected.substr(0, 80) + "'");
    for (auto& c : expected) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string found = sha256OfFile(path);
    if (found != expected)
        throw std::runtime_error(path + ": SHA-256 is " + found + ", but " + side + " expects " + expected +
                                 " (the weights changed after their checksum was written: restore them, pre-train "
                                 "afresh, or delete the .sha256 file to accept these weights)");
    return found;
}

}  // namespace gw::data
