// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file fuzz_common.h
/// Shared by the libFuzzer targets (tests/fuzz/, docs/fuzzing.md): the readers under test take file
/// paths, so each input is written to a private scratch file first (in /dev/shm when it exists).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

/// AddressSanitizer's defaults for every target: a request for an impossible amount of memory (a damaged
/// size field asking for petabytes) gets NULL, as glibc's malloc answers it and as the libraries expect,
/// instead of ending the run; they then report the failure as an error.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

namespace gw::fuzz {

/// One scratch file per process, rewritten with each input.
inline const std::string& scratchPath(const char* suffix) {
    static const std::string path = [suffix] {
        const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        return std::string(dir) + "/gw-fuzz-" + std::to_string(getpid()) + suffix;
    }();
    return path;
}

inline const std::string& writeScratch(const uint8_t* data, size_t size, const char* suffix) {
    const std::string& path = scratchPath(suffix);
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    return path;
}

/// A property the target checks beyond "no crash": a failure is a finding (libFuzzer keeps the input).
inline void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "gw fuzz: property violated: %s\n", what);
        std::abort();
    }
}

}  // namespace gw::fuzz
