// SPDX-License-Identifier: GPL-3.0-or-later
#include "model/run/latent_cache.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "data/file_hash.h"
#include "data/h5_array.h"
#include "model/domains/domain_module.h"
#include "model/io/torch_file.h"

namespace gw {

std::string latentCacheFolder() {
    if (const char* off = std::getenv("GW_LATENT_CACHE"); off && std::strcmp(off, "0") == 0) return {};
    if (const char* dir = std::getenv("GW_LATENT_CACHE_DIR"); dir && dir[0] == '/') return dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && xdg[0] == '/') return std::string(xdg) + "/gw-studio/latents";
    if (const char* home = std::getenv("HOME"); home && home[0] == '/') return std::string(home) + "/.cache/gw-studio/latents";
    return {};
}

std::string latentModuleDigest(const DomainModule& mod, const std::string& kind, const OrderedMap<std::string>& params) {
    std::string key = std::string(kLatentCacheFormat) + "\nkind " + kind + "\n";
    for (const auto& [k, v] : params) key += "param " + k + "=" + v + "\n";
    auto tensor = [&](const std::string& name, const torch::Tensor& t) {
        const auto c = t.detach().to(torch::kCPU).contiguous();
        key += "tensor " + name + " " + std::string(c10::toString(c.scalar_type())) + " " + c10::str(c.sizes()) + "\n";
        key.append(static_cast<const char*>(c.data_ptr()), c.nbytes());
        key += "\n";
    };
    for (const auto& p : mod.named_parameters()) tensor(p.key(), p.value());
    for (const auto& b : mod.named_buffers()) tensor(b.key(), b.value());
    return data::sha256OfBytes(key);
}

std::string latentCacheFile(const std::string& moduleDigest, const data::H5Array& arr, const std::string& deviceType) {
    const std::string folder = latentCacheFolder();
    if (folder.empty()) return {};
    std::string key = std::string(kLatentCacheFormat) + "\nmodule " + moduleDigest + "\n";
    struct stat st {};
    if (::stat(arr.file().c_str(), &st) != 0)
        throw std::runtime_error(arr.file() + ": cannot read the file's state for the latent cache (" + std::strerror(errno) + ")");
    std::error_code ec;
    const auto real = std::filesystem::canonical(arr.file(), ec);
    key += "data " + (ec ? arr.file() : real.string()) + " size " + std::to_string(st.st_size) + " mtime " +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + " inode " +
           std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + "\ndataset " + arr.dataset() + " " +
           c10::str(c10::IntArrayRef(arr.shape())) + "\ndevice " + deviceType + "\n";
    return folder + "/" + data::sha256OfBytes(key) + ".pt";
}

std::optional<torch::Tensor> readCachedLatents(const std::string& file, int64_t rows, int64_t latentDim, std::string& why) {
    why.clear();
    std::error_code ec;
    if (file.empty() || !std::filesystem::exists(file, ec)) return std::nullopt;
    try {
        const auto f = readStateDict(file);
        const auto* t = f.tensors.find("latents");
        if (!t) {
            why = file + ": no 'latents' tensor";
            return std::nullopt;
        }
        if (t->dim() != 2 || t->size(0) != rows || t->size(1) != latentDim || t->scalar_type() != torch::kFloat32) {
            why = file + ": expected (" + std::to_string(rows) + ", " + std::to_string(latentDim) + ") float32 latents, found " +
                  c10::str(t->sizes()) + " " + std::string(c10::toString(t->scalar_type()));
            return std::nullopt;
        }
        return *t;
    } catch (const std::exception& e) {
        why = e.what();
        return std::nullopt;
    }
}

std::string writeCachedLatents(const std::string& file, const torch::Tensor& latents) {
    try {
        std::filesystem::create_directories(std::filesystem::path(file).parent_path());
        OrderedMap<torch::Tensor> t;
        t.set("latents", latents.detach().to(torch::kCPU, torch::kFloat32).contiguous());
        writeStateDict(file, t);
        return {};
    } catch (const std::exception& e) {
        return e.what();
    }
}

}  // namespace gw
