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

/// The checksum file of a weights file: `path` + ".sha256", one line as `sha256sum` writes it
/// ("<64 hex digits>  <file name>"), so that `sha256sum -c` checks it too. Pre-training writes one beside
/// every weights file; the weights that ship with GW Studio carry theirs.
std::string sha256SidecarOf(const std::string& path);

/// Writes `path`.sha256 for the file at `path` (atomically). \throws WriteError, std::runtime_error.
void writeSha256Sidecar(const std::string& path);

/// When `path`.sha256 exists, checks the file at `path` against it; without one, does nothing (weights
/// made before checksums were written). Returns the digest checked, or "" when there was none.
/// \throws std::runtime_error "PATH: SHA-256 is X, but PATH.sha256 expects Y (...)" on a mismatch, or
/// naming the checksum file when it is not one line of 64 hexadecimal digits and a file name.
std::string checkSha256Sidecar(const std::string& path);

}  // namespace gw::data
