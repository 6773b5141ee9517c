// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file tensorboard.h
/// TensorBoard event files, written beside a run's metrics.csv so that `tensorboard --logdir runs/`
/// shows GW Studio runs. The format is TensorBoard's own: TFRecord framing (a little-endian u64 length,
/// the masked CRC-32C of those 8 bytes, the record, the masked CRC-32C of the record) around Event
/// messages of TensorBoard's schema (data/tensorboard_event.proto, compiled with Debian's protobuf); the
/// first record is the file version "brain.Event:2". CRC-32C by Boost.CRC. Qt-free and torch-free.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

namespace gw::data {

/// CRC-32C (Castagnoli) of `n` bytes, masked as TFRecord stores it: ((c >> 15) | (c << 17)) + 0xa282ead8.
uint32_t maskedCrc32c(const void* data, size_t n);

/// Appends events to one new file in a folder. Not thread-safe; one writer per run.
class EventWriter {
public:
    /// Creates `folder` if needed and a new file events.out.tfevents.SECONDS.HOST.PID.N.gw-studio in it
    /// (N numbers the writers of one process, so that two never share a file), starting with the
    /// file-version record.
    /// \throws WriteError (data/atomic_file.h) "FOLDER: cannot write TensorBoard events (cause)".
    explicit EventWriter(const std::string& folder);
    ~EventWriter();
    EventWriter(const EventWriter&) = delete;
    EventWriter& operator=(const EventWriter&) = delete;

    const std::string& path() const { return path_; }

    /// A scalar (TensorBoard's simple_value, float32) under `tag` at `step`.
    void addScalar(const std::string& tag, int64_t step, double value);
    /// A PNG image of `width` × `height` pixels with `channels` (1, 3 or 4) under `tag` at `step`.
    void addImage(const std::string& tag, int64_t step, const std::string& png, int width, int height, int channels);
    /// Says that the run goes on from `step`: TensorBoard then drops what earlier files recorded at `step`
    /// or later (SessionLog START).
    void restartAt(int64_t step);
    /// Hands what was written to the operating system. \throws WriteError "PATH: cannot write TensorBoard
    /// events (cause)" on a write error (a full disk: the file may end in a part record, which TensorBoard
    /// skips).
    void flush();

private:
    void write(const std::string& record);
    std::string path_;
    std::FILE* file_ = nullptr;
};

}  // namespace gw::data
