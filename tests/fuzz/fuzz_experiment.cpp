// SPDX-License-Identifier: GPL-3.0-or-later
// libFuzzer target: the experiment parser (model/experiment/config.cpp) on arbitrary YAML text. Every input either
// parses or throws (ConfigError or another std::exception with a message); what parses is written back
// (experimentToYaml) and must parse again to the same YAML.
#include <stdexcept>
#include <string>

#include "fuzz_common.h"
#include "model/experiment/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    gw::ExperimentConfig cfg;
    try {
        cfg = gw::parseExperiment(text, "fuzz.yaml", {}, "/nonexistent");
    } catch (const std::exception& e) {
        gw::fuzz::require(e.what() && *e.what(), "an error without a message");
        return 0;
    }
    const std::string yaml = gw::experimentToYaml(cfg);
    std::string again;
    try {
        again = gw::experimentToYaml(gw::parseExperiment(yaml, "fuzz-written.yaml", {}, "/nonexistent"));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "written back:\n%s\nerror: %s\n", yaml.c_str(), e.what());
        gw::fuzz::require(false, "an accepted experiment, written back, does not parse");
    }
    gw::fuzz::require(again == yaml, "an accepted experiment does not survive writing and reading");
    return 0;
}
