// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file file_hash.h
/// SHA-256 digests of files, by OpenSSL's libcrypto (EVP interface). A run folder records the digest
/// of every file it copied in (a TorchScript domain module, docs/own-domain-module.md), so that a file
/// that changed afterwards is named rather than used. Qt-free and torch-free.
#include <stdexcept>
#include <string>

namespace gw::data {

/// The SHA-256 of the file at `path` as 64 lower-case hexadecimal digits, read in 1 MiB blocks.
/// \throws std::runtime_error "PATH: cannot read the file (cause)" for a missing or unreadable file.
std::string sha256OfFile(const std::string& path);

/// The SHA-256 of `bytes`, as sha256OfFile.
std::string sha256OfBytes(const std::string& bytes);

}  // namespace gw::data
