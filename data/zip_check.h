// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file zip_check.h
/// Checks every record of a zip archive against the CRC-32 the archive carries for it. GW Studio
/// checkpoints, the state dicts of `torch.save` and `gw export`, and TorchScript modules are zip
/// archives whose writer (LibTorch's PyTorchStreamWriter, or Python's zipfile) stores each record
/// uncompressed with its CRC-32 in the central directory, but LibTorch 1.13's reader never compares
/// them: a flipped byte inside a tensor loads as another number. Calling this before reading such a
/// file turns any damaged record into an error that names it. CRC-32 catches every error of 32 bits
/// or fewer, so every single flipped byte. Qt-free and torch-free (zlib's crc32).
#include <cstdint>
#include <string>

namespace gw::data {

/// "" when every record's bytes match its CRC-32 and the records form a LibTorch archive, else what
/// is wrong, e.g. "record 'last.ckpt/data/3' is damaged (CRC-32 0x1a2b3c4d, expected 0x5e6f7a8b)" or
/// "not a zip archive: no end-of-central-directory record". Records stored compressed (method other
/// than 0) are checked after inflating. A LibTorch archive (what PyTorchStreamReader reads: checkpoints,
/// torch.save files, TorchScript modules) keeps every record in one top folder ("last/...") and has a
/// "version" record (or ".data/version") holding a decimal number; LibTorch 1.13's reader refuses other
/// layouts from its constructor and leaks the archive's state when it does (found by fuzzing,
/// docs/fuzzing.md), so they are refused here, before it runs. `version`, when given, receives that
/// number. Reads the file in blocks; never throws for bad content.
/// \throws std::runtime_error "PATH: cannot read the file (cause)" when the file cannot be opened.
std::string checkZipFile(const std::string& path, uint64_t* version = nullptr);

/// The same for an archive held in memory.
std::string checkZipBytes(const std::string& bytes, uint64_t* version = nullptr);

}  // namespace gw::data
