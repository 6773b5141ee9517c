// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file yaml_file.h
/// Internal to model/: reading a YAML file of ours (a settings file, a sweep file) with the errors every
/// one of them gives. Not installed; model/ and data/ headers stay free of yaml-cpp.
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "model/experiment/config.h"

namespace gw::detail {

/// The YAML document at `path`. \throws ConfigError "PATH: cannot open the WHAT" when it cannot be
/// read (or is a folder), "PATH: not valid YAML: ..." when it does not parse.
inline YAML::Node loadYamlFile(const std::string& path, const std::string& what) {
    std::error_code ec;
    std::ifstream in(path);
    if (!in || std::filesystem::is_directory(path, ec)) throw ConfigError(path + ": cannot open the " + what);
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return YAML::Load(ss.str());
    } catch (const YAML::Exception& e) {
        throw ConfigError(path + ": not valid YAML: " + e.what());
    }
}

}  // namespace gw::detail
