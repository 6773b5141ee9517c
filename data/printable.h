// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file printable.h
/// A name read from a file, made safe to print in an error message: bytes outside printable ASCII as
/// \xNN, and at most `max` characters, then "... (N characters)". Qt-free and torch-free.
#include <cstdio>
#include <string>

namespace gw::data {

inline std::string printable(const std::string& s, size_t max = 80) {
    std::string out;
    for (char ch : s.substr(0, max)) {
        const unsigned char u = static_cast<unsigned char>(ch);
        if (u >= 0x20 && u < 0x7f) {
            out += ch;
        } else {
            char b[8];
            std::snprintf(b, sizeof b, "\\x%02x", u);
            out += b;
        }
    }
    if (s.size() > max) out += "... (" + std::to_string(s.size()) + " characters)";
    return out;
}

}  // namespace gw::data
