// SPDX-License-Identifier: GPL-3.0-or-later
#include "data/tensorboard.h"

#include <unistd.h>

#include <boost/crc.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "data/atomic_file.h"
#include "data/tensorboard_event.pb.h"

namespace gw::data {

uint32_t maskedCrc32c(const void* data, size_t n) {
    // CRC-32C: polynomial 0x1EDC6F41, reflected, initial and final XOR 0xFFFFFFFF.
    boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
    crc.process_bytes(data, n);
    const uint32_t c = crc.checksum();
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

namespace {
double now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string le(uint64_t v, int bytes) {
    std::string s(static_cast<size_t>(bytes), '\0');
    for (int i = 0; i < bytes; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}
}  // namespace

EventWriter::EventWriter(const std::string& folder) {
    std::error_code ec;
    std::filesystem::create_directories(folder, ec);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    const auto seconds = static_cast<long long>(now());
    // Two writers of one process may start in the same second (the window's image writer beside the
    // engine's, found when their records interleaved in one file): a per-process number keeps the names
    // apart, as TensorBoard's own writers do, and the file is created exclusively.
    static std::atomic<unsigned> counter{0};
    for (;;) {
        path_ = (std::filesystem::path(folder) / ("events.out.tfevents." + std::to_string(seconds) + "." + host + "." +
                                                  std::to_string(getpid()) + "." + std::to_string(counter++) + ".gw-studio"))
                    .string();
        file_ = std::fopen(path_.c_str(), "wbx");
        if (file_ || errno != EEXIST) break;
    }
    if (!file_) {
        const int err = errno;
        throw WriteError(folder + ": cannot write TensorBoard events (" + writeErrorCause(err) + ")", err);
    }
    tensorboard::Event e;
    e.set_wall_time(now());
    e.set_file_version("brain.Event:2");
    write(e.SerializeAsString());
    flush();
}

EventWriter::~EventWriter() {
    if (file_) std::fclose(file_);
}

void EventWriter::write(const std::string& record) {
    const std::string length = le(record.size(), 8);
    const std::string framed = length + le(maskedCrc32c(length.data(), 8), 4) + record +
                               le(maskedCrc32c(record.data(), record.size()), 4);
    if (std::fwrite(framed.data(), 1, framed.size(), file_) != framed.size()) {
        const int err = errno;
        throw WriteError(path_ + ": cannot write TensorBoard events (" + writeErrorCause(err) + ")", err);
    }
}

void EventWriter::addScalar(const std::string& tag, int64_t step, double value) {
    tensorboard::Event e;
    e.set_wall_time(now());
    e.set_step(step);
    auto* v = e.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(static_cast<float>(value));
    write(e.SerializeAsString());
}

void EventWriter::addImage(const std::string& tag, int64_t step, const std::string& png, int width, int height, int channels) {
    tensorboard::Event e;
    e.set_wall_time(now());
    e.set_step(step);
    auto* v = e.mutable_summary()->add_value();
    v->set_tag(tag);
    auto* image = v->mutable_image();
    image->set_width(width);
    image->set_height(height);
    image->set_colorspace(channels);
    image->set_encoded_image_string(png);
    write(e.SerializeAsString());
}

void EventWriter::restartAt(int64_t step) {
    tensorboard::Event e;
    e.set_wall_time(now());
    e.set_step(step);
    e.mutable_session_log()->set_status(tensorboard::SessionLog::START);
    write(e.SerializeAsString());
}

void EventWriter::flush() {
    if (std::fflush(file_) != 0) {
        const int err = errno;
        throw WriteError(path_ + ": cannot write TensorBoard events (" + writeErrorCause(err) + ")", err);
    }
}

}  // namespace gw::data
