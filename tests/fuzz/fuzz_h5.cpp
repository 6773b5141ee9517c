// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target: the HDF5 reader (data/h5_array.cpp) on arbitrary files: list the datasets, open
// each, read its first and last row, its attributes. Errors must be exceptions with a message; the
// HDF5 library's own error printing is switched off (the reader collects its stack itself).
// Exploring, the reader runs in this process as it does inside `gw check-data` (data/h5_check.h), so
// that libFuzzer sees its coverage and HDF5's own faults. With GW_FUZZ_H5_CHECK=1 (tst_fuzz's replay of
// the inputs kept in tests/data/fuzz) every file goes through the child-process check first, as in
// GW Studio: HDF5's faults that the check turns into errors must then be errors here.
#include <H5Epublic.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "data/h5_array.h"
#include "data/h5_check.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool quiet = [] {
        const char* check = std::getenv("GW_FUZZ_H5_CHECK");
        if (!check || std::strcmp(check, "1") != 0) gw::data::markH5CheckChild();
        return H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr) >= 0;
    }();
    (void)quiet;
    const std::string& path = gw::fuzz::writeScratch(data, size, ".h5");
    try {
        for (const auto& info : gw::data::listDatasets(path)) {
            try {
                gw::data::H5Array a(path, info.path);
                if (a.rows() > 0) {
                    auto rows = a.readRows({0, a.rows() - 1});
                    gw::fuzz::require(rows.size(0) == 2, "readRows returned another row count");
                }
                a.intAttribute("num_classes", -1);
                a.stringsAttribute("class_names");
            } catch (const std::exception& e) {
                gw::fuzz::require(e.what() && *e.what(), "an error without a message");
            }
        }
    } catch (const std::exception& e) {
        gw::fuzz::require(e.what() && *e.what(), "an error without a message");
    }
    return 0;
}
