// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
// Test fixtures generated into a temporary folder: a small two-domain HDF5 file (8-d vectors around
// one centre per class, and the class labels) and an experiment file that trains on it.
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTemporaryDir>

#include <fstream>
#include <functional>
#include <string>

#include "data/h5_array.h"
#include "model/core/torch_fwd.h"
#include "skip.h"

namespace fixtures {

/// The message of the exception `f` throws, or an empty string when it throws none.
inline QString errorOf(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

/// What a child process did: its exit code (-1 timed out, -2 crashed) and its output, both channels.
struct Proc {
    int code;
    QString out;
};
/// Runs `program` to its end (4 minutes at most).
inline Proc runProcess(const QString& program, const QStringList& args) {
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start(program, args);
    if (!p.waitForFinished(240000)) {
        p.kill();
        return {-1, "timed out"};
    }
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2, QString::fromUtf8(p.readAll())};
}
#ifdef GW_BINARY_DIR
/// The `gw` command of this build.
inline Proc gwCli(const QStringList& args) { return runProcess(QStringLiteral(GW_BINARY_DIR "/app/gw"), args); }
#endif
/// Debian's Python, which has python3-torch (the `python3` first on PATH may not).
inline const QString kPython = QStringLiteral("/usr/bin/python3");
inline Proc python(const QStringList& args) { return runProcess(kPython, args); }
inline bool pythonHasTorch() { return python({"-c", "import torch"}).code == 0; }

/// Writes /{train,val,test}/vec (N, 8) float32 and /{split}/label (N,) int64 (num_classes 4).
inline void writeVectorsAndLabels(const std::string& file, int64_t nTrain = 512, int64_t nVal = 128, int64_t nTest = 128) {
    torch::manual_seed(42);
    auto centres = torch::randn({4, 8}) * 2;
    const std::pair<const char*, int64_t> splits[] = {{"train", nTrain}, {"val", nVal}, {"test", nTest}};
    for (const auto& [split, n] : splits) {
        auto label = torch::randint(0, 4, {n}, torch::kInt64);
        auto vec = centres.index_select(0, label) + 0.3 * torch::randn({n, 8});
        gw::data::writeDataset(file, std::string("/") + split + "/vec", vec, 4);
        gw::data::writeDataset(file, std::string("/") + split + "/label", label, 0, {{"num_classes", 4}});
    }
}

/// An experiment over that file (paths relative to the experiment's folder).
inline std::string experimentYaml(int64_t steps = 60) {
    return "name: tiny\n"
           "seed: 3\n"
           "threads: 1\n"
           "data: {file: data.h5, paired_fraction: 0.25}\n"
           "domains:\n"
           "  vec: {module: identity}\n"
           "  label: {module: class_label}\n"
           "workspace: {dim: 6, encoder: {hidden: 16, layers: 1}, decoder: {hidden: 16, layers: 1}}\n"
           "loss: {coefficients: {demi_cycles: 1.0, cycles: 1.0, translations: 1.0, contrastives: 0.1}}\n"
           "optimizer: {lr: 0.01}\n"
           "training: {steps: " + std::to_string(steps) + ", batch_size: 32, val_every: 20, checkpoint_every: 20, log_every: 10, out: runs}\n";
}

/// Writes data.h5 and tiny.yaml into `dir`; returns the experiment's path.
inline std::string makeExperiment(const QTemporaryDir& dir, int64_t steps = 60) {
    const std::string root = dir.path().toStdString();
    writeVectorsAndLabels(root + "/data.h5");
    std::ofstream(root + "/tiny.yaml") << experimentYaml(steps);
    return root + "/tiny.yaml";
}

}  // namespace fixtures
