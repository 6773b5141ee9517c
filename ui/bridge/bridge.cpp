// SPDX-License-Identifier: GPL-3.0-or-later
// The one Qt unit that includes LibTorch (through model/): built with QT_NO_KEYWORDS.
#include "ui/bridge/bridge.h"

#include <filesystem>
#include <map>
#include <memory>
#include <cstring>

#include "data/h5_array.h"
#include "data/tensorboard.h"
#include "model/run/engine.h"
#include "model/run/interop.h"
#include "model/models/glom_model.h"
#include "model/core/registry.h"
#include "model/run/runs.h"

namespace gw::studio {
namespace fs = std::filesystem;

namespace {
QString q(const std::string& s) { return QString::fromStdString(s); }

MetricBatch toBatch(const ProgressReport& r) {
    MetricBatch b;
    for (const auto& [k, v] : r.metrics) {
        b.names.push_back(q(k));
        b.steps.push_back(static_cast<double>(r.step));
        b.values.push_back(v);
    }
    return b;
}

PlainTensor plain(const torch::Tensor& t) {
    PlainTensor p;
    auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    for (auto s : c.sizes()) p.shape.push_back(s);
    p.data.resize(c.numel());
    std::memcpy(p.data.data(), c.data_ptr<float>(), sizeof(float) * size_t(c.numel()));
    return p;
}

ExploreData toPlain(const ExploreResult& r) {
    ExploreData d;
    d.split = q(r.split);
    for (auto i : r.indices) d.indices.push_back(i);
    for (const auto& dom : r.domains) {
        d.domains << q(dom.name);
        d.kinds << q(dom.rendersAs.empty() ? dom.kind : dom.rendersAs);  // what the explorer draws them as
        d.classes << dom.classes;
        d.uncertainty << dom.uncertainty;
    }
    for (const auto& n : r.classNames) d.classNames << q(n);
    for (const auto& [k, t] : r.cells) d.cells.insert(q(k), plain(t));
    if (r.labels.defined())
        for (int64_t i = 0; i < r.labels.numel(); ++i) d.labels << r.labels[i].item<int64_t>();
    if (r.pcaCoords.defined()) {
        auto c = r.pcaCoords.contiguous();
        for (int64_t i = 0; i < c.size(0); ++i) {
            d.pcaX << c[i][0].item<float>();
            d.pcaY << c[i][1].item<float>();
        }
    }
    for (auto i : r.pcaIndices) d.pcaIndices << i;
    if (r.pcaLabels.defined())
        for (int64_t i = 0; i < r.pcaLabels.numel(); ++i) d.pcaLabels << r.pcaLabels[i].item<int64_t>();
    for (auto v : r.pcaExplained) d.pcaExplained << v;
    for (const auto& b : r.broadcastFrom) d.broadcastFrom << q(b);
    return d;
}

QVector<float> qvec(const std::vector<float>& v) { return QVector<float>(v.begin(), v.end()); }

/// The "islands" view (a GLOM run, models/glom_model.h) of the request's samples.
ExploreData runIslands(Engine& e, const ExploreRequest& req) {
    ExploreData d;
    std::vector<int64_t> idx(req.glomIndices.begin(), req.glomIndices.end());
    d.split = req.glomIndices.isEmpty() ? req.split : req.glomSplit;
    if (idx.empty() && req.mode == "indices") idx.assign(req.indices.begin(), req.indices.end());
    else if (idx.empty())
        idx = e.pickSamples(d.split.toStdString(), req.mode == "per_class" ? "first" : req.mode.toStdString(), req.count, req.seed);
    for (int64_t i : idx) {
        const GlomView v = exploreGlom(e, d.split.toStdString(), i, req.glomIterations, static_cast<uint64_t>(i));
        GlomIslands g;
        g.channels = v.channels;
        g.imageSize = v.imageSize;
        g.side = v.side;
        g.levels = v.levels;
        g.dim = v.dim;
        g.iterations = v.iterations;
        g.readAt = v.readAt;
        g.index = v.index;
        g.split = q(v.split);
        g.noiseStd = v.noiseStd;
        g.input = qvec(v.input);
        g.noisy = qvec(v.noisy);
        g.reconstruction = qvec(v.reconstruction);
        g.similarity = qvec(v.similarity);
        g.agreement = qvec(v.agreement);
        d.indices.push_back(i);
        d.glom.push_back(std::move(g));
    }
    return d;
}

/// The "translations" view (a GW, Engine::explore) of the request's samples.
ExploreData runTranslations(Engine& e, const ExploreRequest& req) {
    std::vector<int64_t> idx;
    if (req.mode == "indices") {
        for (auto i : req.indices) idx.push_back(i);
    } else {
        idx = e.pickSamples(req.split.toStdString(), req.mode.toStdString(), req.count, req.seed);
    }
    std::vector<std::string> from;
    for (const auto& b : req.broadcastFrom) from.push_back(b.toStdString());
    return toPlain(e.explore(req.split.toStdString(), idx, req.pcaSamples, from));
}

/// The view the run's model kind answers (ModelKindImpl::explorerView), by name.
ExploreData runExplore(Engine& e, const ExploreRequest& req) {
    using View = ExploreData (*)(Engine&, const ExploreRequest&);
    static const std::map<std::string, View> views = {{"translations", runTranslations}, {"islands", runIslands}};
    const auto it = views.find(e.explorerView());
    if (it == views.end()) throw std::logic_error("the window has no explorer view '" + e.explorerView() + "'");
    return it->second(e, req);
}

/// "exp.yaml: training.steps: expected ..." -> "training.steps"
QString keyOf(const QString& message, const QString& source) {
    QString rest = message;
    if (rest.startsWith(source + ": ")) rest = rest.mid(source.size() + 2);
    const int colon = rest.indexOf(':');
    if (colon <= 0) return {};
    const QString key = rest.left(colon);
    for (const QChar c : key)
        if (c.isSpace()) return {};
    return key;
}
}  // namespace

void initEngineProcess(char** argv) {
    ensurePassiveOpenMP(argv);
    tuneAllocator();
}

int endEngineProcess(int code) { return data::endProcess(code); }

QString makeDemoExperiment(const QString& dir, qint64 steps) {
    const std::string root = dir.toStdString();
    fs::create_directories(root);
    torch::manual_seed(42);
    auto centres = torch::randn({4, 8}) * 2;
    const std::pair<const char*, int64_t> splits[] = {{"train", 2048}, {"val", 256}, {"test", 256}};
    writeAtomically(root + "/data.h5", [&](const std::string& tmp) {
        fs::remove(tmp);  // a temporary left by a crash: writeDataset would add to it
        for (const auto& [split, n] : splits) {
            auto label = torch::randint(0, 4, {n}, torch::kInt64);
            auto vec = centres.index_select(0, label) + 0.3 * torch::randn({n, 8});
            data::writeDataset(tmp, std::string("/") + split + "/vec", vec, 4);
            data::writeDataset(tmp, std::string("/") + split + "/label", label, 0, {{"num_classes", 4}});
        }
    });
    const std::string yaml = root + "/demo.yaml";
    writeFileAtomically(yaml, "# A generated two-domain experiment: 8-d vectors and their class (4 classes).\n"
                              "name: demo\nseed: 0\nthreads: 0\n"
                              "data: {file: data.h5, paired_fraction: 0.1}\n"
                              "domains:\n  vec: {module: identity}\n  label: {module: class_label}\n"
                              "workspace: {dim: 6, encoder: {hidden: 32, layers: 1}, decoder: {hidden: 32, layers: 1}}\n"
                              "loss: {coefficients: {demi_cycles: 1.0, cycles: 1.0, translations: 1.0, contrastives: 0.1}}\n"
                              "optimizer: {lr: 0.003}\n"
                              "training: {steps: " +
                                  std::to_string(steps) +
                                  ", batch_size: 64, val_every: 200, checkpoint_every: 500, log_every: 10, out: runs}\n");
    return QString::fromStdString(yaml);
}

QVector<DeviceInfo> listDevices() {
    QVector<DeviceInfo> out;
    for (const auto& d : gw::listDevices()) {
        if (d.id == "cpu")
            out.push_back({"cpu", QString("CPU: %1 cores (threads: see Threads)").arg(d.cores), true});
        else if (!d.available)
            out.push_back({"cuda", d.cudaBuild ? "CUDA: no device visible" : "CUDA: not available (this build's LibTorch has no CUDA)",
                           false});
        else
            out.push_back({q(d.id), QString("%1: %2, %3 GiB").arg(q(d.id), q(d.name)).arg(double(d.memoryBytes) / (1 << 30), 0, 'f', 1),
                           true});
    }
    return out;
}

QVector<DatasetInfo> listDatasets(const QString& file, QString* error) {
    QVector<DatasetInfo> out;
    try {
        for (const auto& d : data::listDatasets(file.toStdString())) {
            DatasetInfo i;
            i.path = q(d.path);
            i.type = q(d.type);
            for (auto s : d.shape) i.shape.push_back(s);
            out.push_back(i);
        }
    } catch (const std::exception& e) {
        if (error) *error = q(e.what());
    }
    return out;
}

namespace {
/// Loads and probes one file-based domain module (makeDomainModule with the first 4 samples of its
/// training dataset, or without data when the file does not exist yet).
DomainProbe probeDomain(const ExperimentConfig& cfg, const DomainConfig& d) {
    DomainProbe p;
    p.domain = q(d.name);
    const std::string file = cfg.resolvePath(d.file.empty() ? cfg.dataFile : d.file);
    std::string dataset = d.dataset;
    if (auto at = dataset.find("{split}"); at != std::string::npos) dataset.replace(at, 7, cfg.trainSplit);
    DomainModuleSpec spec = domainModuleSpec(cfg, d);
    const bool haveData = !file.empty() && fs::exists(file) && data::H5Array::exists(file, dataset);
    try {
        if (haveData) {
            data::H5Array arr(file, dataset);
            std::vector<int64_t> first;
            for (int64_t i = 0; i < std::min<int64_t>(4, arr.rows()); ++i) first.push_back(i);
            spec.probe = arr.readRows(first);
            spec.dataClasses = arr.intAttribute("num_classes", 0);
        }
        auto mod = makeDomainModule(spec);
        p.summary = haveData ? q(mod->describe())
                             : q(fs::path(spec.params.at("script")).filename().string()) +
                                   ": loads, methods found; its latent size is read from the data on Start";
        p.latentDim = haveData ? mod->latentDim() : 0;
    } catch (const std::exception& e) {
        p.error = q(e.what());
    }
    return p;
}

/// Probes kept per file state and settings, so that an edit elsewhere does not load the module again.
DomainProbe cachedProbe(const ExperimentConfig& cfg, const DomainConfig& d) {
    static QHash<QString, DomainProbe> cache;
    std::string key = d.name + "|" + cfg.resolvePath(d.file.empty() ? cfg.dataFile : d.file) + "|" + d.dataset + "|" +
                      cfg.trainSplit;
    for (const auto& [k, v] : domainModuleSpec(cfg, d).params) {
        key += "|" + k + "=" + v;
        std::error_code ec;
        if (k == "script" && fs::exists(v, ec))
            key += "@" + std::to_string(fs::file_size(v, ec)) + ":" +
                   std::to_string(fs::last_write_time(v, ec).time_since_epoch().count());
    }
    const QString k = q(key);
    if (auto it = cache.constFind(k); it != cache.constEnd()) return *it;
    DomainProbe p = probeDomain(cfg, d);
    if (cache.size() > 64) cache.clear();
    cache.insert(k, p);
    return p;
}
}  // namespace

Validation validateExperiment(const QString& yaml, const QString& baseDir, const QString& sourceName) {
    Validation v;
    try {
        const UserSettings settings = loadUserSettings(userSettingsPath());
        const auto cfg = parseExperiment(yaml.toStdString(), sourceName.toStdString(), {}, baseDir.toStdString(), &settings);
        for (const auto& d : cfg.domains) {
            const auto* kind = domainModuleRegistry().find(d.module);
            if (!kind || !kind->info.fromFile) continue;
            v.probes.push_back(cachedProbe(cfg, d));
        }
        for (const auto& d : cfg.domains) {
            const std::string file = cfg.resolvePath(d.file.empty() ? cfg.dataFile : d.file);
            const QString fileKey = d.file.empty() ? QString("data.file") : q("domains." + d.name + ".file");
            if (file.empty()) return {q("domain " + d.name + ": no HDF5 file (set data.file or the domain's file)"), fileKey, v.probes};
            if (!fs::exists(file)) {
                if (d.file.empty() && !cfg.dataImport.empty()) continue;  // imported on Start
                return {q(file + ": no such file"), fileKey, v.probes};
            }
            std::string path = d.dataset;
            if (auto p = path.find("{split}"); p != std::string::npos) path.replace(p, 7, cfg.trainSplit);
            if (!data::H5Array::exists(file, path))
                return {q(file + ": no dataset " + path + " for domain " + d.name), q("domains." + d.name + ".dataset"), v.probes};
        }
        for (const auto& p : v.probes)
            if (!p.error.isEmpty()) return {"domains." + p.domain + ": " + p.error, "domains." + p.domain + ".script", v.probes};
    } catch (const std::exception& e) {
        v.message = q(e.what());
        v.key = keyOf(v.message, sourceName);
    }
    return v;
}

struct TrainingWorker::Run {
    Engine* engine = nullptr;
    bool trained = false;  // the GW exists (after prepare)
};

ExploreData exploreCheckpoint(const QString& checkpoint, const ExploreRequest& request, QString* error) {
    try {
        const OpenedCheckpoint opened = openCheckpoint(checkpoint.toStdString());
        Engine e(opened.config);
        e.prepare(&opened.checkpoint);
        e.restore(opened.checkpoint, opened.path);
        ExploreData d = runExplore(e, request);
        d.source = checkpoint;
        d.step = opened.checkpoint.step;
        return d;
    } catch (const std::exception& e) {
        if (error) *error = q(e.what());
    }
    return {};
}

void TrainingWorker::setExploreRequest(const ExploreRequest& request, qint64 everySteps) {
    std::lock_guard<std::mutex> lock(mutex_);
    exploreRequest_ = request;
    exploreEvery_ = everySteps;
}

void TrainingWorker::exploreNow(qint64 step) {
    if (!current_ || !current_->trained) return;
    ExploreRequest req;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        req = exploreRequest_;
    }
    try {
        ExploreData d = runExplore(*current_->engine, req);
        d.source = "training";
        d.step = step;
        Q_EMIT explored(d);
    } catch (const std::exception& e) {
        Q_EMIT exploreFailed(q(e.what()));
    }
}

void TrainingWorker::exploreCheckpoint(const QString& checkpoint) {
    ExploreRequest req;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        req = exploreRequest_;
    }
    QString error;
    ExploreData d = gw::studio::exploreCheckpoint(checkpoint, req, &error);
    if (!error.isEmpty()) Q_EMIT exploreFailed(error);
    else Q_EMIT explored(d);
}

QString addTensorBoardImage(const QString& runDir, const QString& tag, qint64 step, const QByteArray& png, int width,
                            int height, int channels) {
    static std::map<std::string, std::unique_ptr<data::EventWriter>> writers;
    try {
        auto& w = writers[runDir.toStdString()];
        if (!w) w = std::make_unique<data::EventWriter>(runDir.toStdString());
        w->addImage(tag.toStdString(), step, std::string(png.constData(), size_t(png.size())), width, height, channels);
        w->flush();
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

SettingsData loadSettings(QString* error) {
    SettingsData d;
    d.path = q(userSettingsPath());
    try {
        const UserSettings s = loadUserSettings(userSettingsPath());
        d.device = q(s.device);
        d.threads = s.threads;
        d.dataDir = q(s.dataDir);
        d.runsDir = q(s.runsDir);
    } catch (const std::exception& e) {
        if (error) *error = q(e.what());
    }
    return d;
}

QString saveSettings(const SettingsData& d) {
    UserSettings s;
    s.path = d.path.toStdString();
    s.device = d.device.trimmed().toStdString();
    s.threads = d.threads;
    s.dataDir = d.dataDir.trimmed().toStdString();
    s.runsDir = d.runsDir.trimmed().toStdString();
    if (!s.device.empty() && s.device != "cpu" && s.device != "cuda" && s.device.rfind("cuda:", 0) != 0)
        return q(s.path + ": device: expected cpu, cuda or cuda:N, found '" + s.device + "'");
    try {
        saveUserSettings(s);
        loadUserSettings(s.path);  // what was written reads back
    } catch (const std::exception& e) {
        return q(e.what());
    }
    return {};
}

QString saveFile(const QString& path, const QByteArray& bytes) {
    try {
        writeFileAtomically(path.toStdString(), std::string(bytes.constData(), size_t(bytes.size())));
    } catch (const std::exception& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

QString exportForPython(const QString& checkpoint, const QString& out) {
    try {
        gw::exportForPython(checkpoint.toStdString(), out.toStdString());
    } catch (const std::exception& e) {
        return q(e.what());
    }
    return {};
}

TrainingWorker::TrainingWorker(QObject* parent) : QObject(parent) {
    qRegisterMetaType<gw::studio::MetricBatch>();
    qRegisterMetaType<gw::studio::ExploreData>();
}

TrainingWorker::~TrainingWorker() = default;

void TrainingWorker::requestPause(bool paused) {
    pause_ = paused;
    wake_.notify_all();
}

void TrainingWorker::requestStop() {
    stop_ = true;
    wake_.notify_all();
}

void TrainingWorker::requestCheckpoint(const QString& path) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        checkpointRequests_.push_back(path);
    }
    wake_.notify_all();
}

void TrainingWorker::setState(State s) {
    if (state_.exchange(s) != s) Q_EMIT stateChanged(int(s));
}

bool TrainingWorker::poll() {
    auto serveCheckpoints = [&] {
        QStringList paths;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            paths.swap(checkpointRequests_);
        }
        for (const auto& p : paths) {
            if (!current_ || !current_->trained) {
                Q_EMIT logLine("no checkpoint yet: the GW is built after pre-training (" + p + " not written)");
                continue;
            }
            try {
                saveCheckpoint(p.toStdString(), current_->engine->makeCheckpoint());
                Q_EMIT checkpointWritten(p);
            } catch (const std::exception& e) {
                Q_EMIT logLine(q(e.what()));
            }
        }
    };
    serveCheckpoints();
    if (pause_ && !stop_) {
        const State before = state_.load();
        setState(Paused);
        std::unique_lock<std::mutex> lock(mutex_);
        while (pause_ && !stop_) {
            wake_.wait(lock, [&] { return !pause_ || stop_ || !checkpointRequests_.empty(); });
            lock.unlock();
            serveCheckpoints();
            lock.lock();
        }
        lock.unlock();
        setState(before);
    }
    if (stop_) {
        setState(Stopping);
        return true;
    }
    return false;
}

void TrainingWorker::run(const QString& yaml, const QString& baseDir, const QString& sourceName, const QString& runDir,
                         const QString& resumeDir, const QStringList& overrides) {
    stop_ = false;
    pause_ = false;
    setState(Preparing);
    std::string out;
    std::vector<std::string> ov;
    for (const auto& o : overrides) ov.push_back(o.toStdString());
    try {
        ExperimentConfig cfg;
        Checkpoint ckpt;
        std::string ckptPath;
        if (!resumeDir.isEmpty()) {
            out = resumeDir.toStdString();
            OpenedRun opened = openRun(out, ov);
            ckptPath = opened.checkpointPath;
            cfg = std::move(opened.config);
            ckpt = std::move(opened.checkpoint);
        } else {
            const UserSettings settings = loadUserSettings(userSettingsPath());
            cfg = parseExperiment(yaml.toStdString(), sourceName.toStdString(), ov, baseDir.toStdString(), &settings);
            out = runDir.isEmpty() ? defaultRunDir(cfg) : runDir.toStdString();
        }
        Engine engine(cfg, [this](const std::string& line) { Q_EMIT logLine(q(line)); });
        Run r;
        r.engine = &engine;
        current_ = &r;
        engine.setHooks(
            [this](const ProgressReport& p) {
                setState(state_.load() == Paused ? Paused : Pretraining);
                QString phase = "pre-training";
                if (!p.metrics.empty()) phase += " " + q(p.metrics.keys().front()).section('/', 1, 1);
                Q_EMIT progress(phase, p.step, p.totalSteps, p.stepsPerSecond, p.etaSeconds);
                Q_EMIT metrics(toBatch(p));
            },
            [this] { return poll(); });
        engine.setRunDir(out);
        engine.prepare(ckptPath.empty() ? nullptr : &ckpt);
        if (!ckptPath.empty()) engine.restore(ckpt, ckptPath);
        r.trained = true;
        Q_EMIT runStarted(q(out));
        setState(Training);
        RunCallbacks cb;
        qint64 lastExplore = -1;
        cb.progress = [&](const ProgressReport& p) {
            if (!p.validation) Q_EMIT progress("training", p.step, p.totalSteps, p.stepsPerSecond, p.etaSeconds);
            Q_EMIT metrics(toBatch(p));
            qint64 every;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                every = exploreEvery_;
            }
            if (!p.validation && every > 0 && (lastExplore < 0 || p.step - lastExplore >= every)) {
                lastExplore = p.step;
                exploreNow(p.step);
            }
        };
        cb.stopRequested = [this] { return poll(); };
        const RunResult res = runTraining(engine, out, cb);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (exploreEvery_ <= 0) lastExplore = res.step;  // explorer off: nothing to refresh
        }
        if (lastExplore != res.step) exploreNow(res.step);  // once more, on the final weights
        current_ = nullptr;
        setState(Idle);
        Q_EMIT finished(q(res.checkpoint), res.stopped);
        return;
    } catch (const RunStopped& e) {
        current_ = nullptr;
        setState(Idle);
        Q_EMIT logLine(q(e.what()));
        Q_EMIT finished(QString(), true);
        return;
    } catch (const std::exception& e) {
        current_ = nullptr;
        std::string last;
        if (!out.empty()) {
            const std::string p = runCheckpointPath(out);
            if (fs::exists(p)) last = p;
        }
        setState(Idle);
        std::string msg = e.what();
        if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) msg = "out of memory: " + msg.substr(0, msg.find('\n'));
        else if (dynamic_cast<const c10::Error*>(&e)) msg = msg.substr(0, msg.find('\n'));
        Q_EMIT failed(q(msg), q(last));
    }
}

}  // namespace gw::studio
