// SPDX-License-Identifier: GPL-3.0-or-later
#pragma once
/// \file bridge.h
/// The window's only door to the engine. This header is torch-free (ui/ includes it); the
/// implementation, in the target `gwstudio_bridge`, is the one Qt unit that includes LibTorch and sets
/// QT_NO_KEYWORDS. Everything crossing it is plain Qt data.
#include <QHash>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QVector>

#include <atomic>
#include <memory>
#include <mutex>
#include <condition_variable>

namespace gw::studio {

/// Metric points produced since the last batch: names[i] took values[i] at steps[i].
struct MetricBatch {
    QVector<QString> names;  ///< shimmer's names: train/translation_image_to_label, val/..., pretrain/image/loss
    QVector<double> steps;
    QVector<double> values;
};

/// Process set-up for the engine (OpenMP's passive wait policy, which may re-execute the program
/// once, and the allocator); call first thing in main().
void initEngineProcess(char** argv);
/// What main() returns through: `code`, or the process ended at once with `code` when an HDF5 file it
/// wrote could not be closed (a full disk), so that HDF5's own clean-up at exit does not fault
/// (data/h5_array.h endProcess).
int endEngineProcess(int code);

/// Writes a small generated experiment into `dir` (data.h5: 8-d vectors around 4 class centres and
/// their labels; demo.yaml: identity and class_label domains) and returns the YAML's path. For tests,
/// benchmarks and trying the window without data.
QString makeDemoExperiment(const QString& dir, qint64 steps = 2000);

/// A tensor as plain data: shape (B, ...) and row-major float values.
struct PlainTensor {
    QVector<qint64> shape;
    QVector<float> data;
    qint64 rows() const { return shape.isEmpty() ? 0 : shape[0]; }
    qint64 rowSize() const { return rows() ? data.size() / rows() : 0; }
    const float* row(qint64 i) const { return data.constData() + i * rowSize(); }
};

/// Which samples the explorer shows.
struct ExploreRequest {
    QString split = "test";
    QString mode = "per_class";      ///< per_class | random | first | indices
    qint64 count = 1;                ///< per class, or in all
    quint64 seed = 0;                ///< random
    QVector<qint64> indices;         ///< mode "indices"
    qint64 pcaSamples = 300;         ///< workspace view: samples of each domain
    QStringList broadcastFrom;       ///< fuse these domains and decode into every domain (empty: off)
    /// A GLOM run (model: glom): the samples of `glomSplit` whose islands to compute; empty: the samples
    /// that mode/count/seed pick from `split` (per_class, meaningless without classes, takes the first).
    QVector<qint64> glomIndices;
    QString glomSplit = "test";
    qint64 glomIterations = -1;      ///< states 0 to this (< 0: twice the levels)
};
/// The islands viewer's data of one image of a GLOM run (bridge of gw::GlomView, model/glom/glom.h): the
/// image, its noisy version and reconstruction, and for every state (0: the initial levels) and level
/// the cosine similarity of every pair of columns and each column's agreement with its 4-neighbours.
/// Columns are numbered row by row over the side × side patch grid.
struct GlomIslands {
    qint64 channels = 1, imageSize = 0, side = 0, levels = 0, dim = 0;
    qint64 iterations = 0;  ///< states 0 to iterations
    qint64 readAt = 0;      ///< the state the reconstruction is decoded from
    qint64 index = 0;       ///< the sample
    QString split;
    double noiseStd = 0;
    QVector<float> input, noisy, reconstruction;  ///< (C, S, S), pixels in [0, 1] (noisy not clipped)
    QVector<float> similarity;                    ///< (iterations + 1, L, n, n)
    QVector<float> agreement;                     ///< (iterations + 1, L, n)
    qint64 columns() const { return side * side; }
    float similarityAt(qint64 state, qint64 level, qint64 a, qint64 b) const {
        return similarity[int(((state * levels + level) * columns() + a) * columns() + b)];
    }
    float agreementAt(qint64 state, qint64 level, qint64 column) const {
        return agreement[int((state * levels + level) * columns() + column)];
    }
};

/// The explorer's data (bridge of gw::ExploreResult): every cell in data space.
struct ExploreData {
    QString split, source;           ///< source: the checkpoint, or "training"
    qint64 step = -1;
    QVector<qint64> indices;
    QStringList domains, kinds;      ///< kinds: the kind whose renderer draws each domain (DomainModule::rendersAs)
    QVector<qint64> classes;         ///< per domain: class count (class_label) or 0
    QVector<double> uncertainty;     ///< per domain: flavour variational's mean σ of its GW encoder, else -1
    /// input/{d}, demi_cycle/{d}, translation/{d}/{e}, cycle/{d}/{e} (rows: indices); pca_input/{d}
    /// (rows: pcaIndices)
    QHash<QString, PlainTensor> cells;
    QVector<qint64> labels;          ///< class of each sample, empty without a class domain
    QStringList classNames;          ///< names of those classes (the data's class_names), empty when unnamed
    /// "Ankle boot" for a named class, else "class 9".
    QString className(qint64 c) const { return c >= 0 && c < classNames.size() ? classNames[int(c)] : QString("class %1").arg(c); }
    QVector<float> pcaX, pcaY;       ///< domain-major: all samples of domain 0, then domain 1, ...
    QVector<qint64> pcaIndices, pcaLabels;
    QVector<double> pcaExplained;
    QStringList broadcastFrom;       ///< the domains fused for the broadcast/{e} cells (empty: none)
    QVector<GlomIslands> glom;       ///< a GLOM run: one per sample (and nothing above is set)
    bool isGlom() const { return !glom.isEmpty(); }
    bool isEmpty() const { return domains.isEmpty() && glom.isEmpty(); }
};

/// Explores a checkpoint here and now (for `gw explore`, tests; the window asks the worker).
/// On failure returns empty data and sets `error` (file, what is wrong).
ExploreData exploreCheckpoint(const QString& checkpoint, const ExploreRequest& request, QString* error);

/// A device the engine can train on.
struct DeviceInfo {
    QString id;      ///< "cpu", "cuda:0"
    QString label;   ///< "CPU: 2 cores, 2 threads", "cuda:0: NVIDIA H100, 79.1 GiB"
    bool available = true;
};
/// The CPU and every CUDA device; when LibTorch was built without CUDA, one unavailable entry says so.
QVector<DeviceInfo> listDevices();

/// One dataset of an HDF5 file (shape (N, ...), element type).
struct DatasetInfo {
    QString path;
    QVector<qint64> shape;
    QString type;
};
/// Every dataset of `file`; on failure an empty list and `error` set (file name, what is wrong).
QVector<DatasetInfo> listDatasets(const QString& file, QString* error);

/// What probing a domain module read from a file (torchscript) found: the file loaded, its methods
/// checked and run on the first samples of the training split.
struct DomainProbe {
    QString domain;
    QString summary;   ///< "fashion_ae.pt: encode, decode; input (B, 28, 28) float32, latent 12; ..." ("" on error)
    QString error;     ///< why it does not fit ("" when it does)
    qint64 latentDim = 0;  ///< 0 when unknown (an error, or no data yet)
};

/// The verdict on an experiment text.
struct Validation {
    QString message;  ///< empty when the experiment is valid
    QString key;      ///< the dotted key at fault when known ("training.steps"), else empty
    QVector<DomainProbe> probes;  ///< one per domain whose module is read from a file
};
/// Parses `yaml` as `gw train` would (relative paths against `baseDir`), then checks that each domain's
/// file exists (unless data.import will create it) and holds its training dataset, and probes every
/// domain module read from a file (kept per file, size and time, so that an unchanged file is not
/// loaded again on each edit); a probe that fails is the message, under `domains.NAME.script`.
Validation validateExperiment(const QString& yaml, const QString& baseDir, const QString& sourceName);

/// The user's settings file (model/experiment/config.h UserSettings): the lowest layer of every experiment the
/// window validates and runs, as of `gw`. Unset values are empty strings and threads -1.
struct SettingsData {
    QString path;     ///< the file (userSettingsPath(): $GW_STUDIO_SETTINGS or ~/.config/gw-studio/settings.yaml)
    QString device;   ///< "" | cpu | cuda | cuda:N
    int threads = -1; ///< -1 not set, 0 every core
    QString dataDir;  ///< folder of relative data files
    QString runsDir;  ///< training.out: where runs and sweeps go
};
/// Reads the settings file. A damaged file gives empty settings (with its path) and `error` set to
/// "FILE: KEY: expected ..., found ...".
SettingsData loadSettings(QString* error);
/// Writes `s` to `s.path` atomically (only the values set). Empty on success, else the error naming
/// the file or the bad value.
QString saveSettings(const SettingsData& s);

/// Writes `bytes` to `path` through the engine's one atomic write (temporary file beside it, fsync,
/// rename, fsync of the folder; data/atomic_file.h). Empty on success, else "PATH: cannot write the
/// file (why)"; a failure leaves any previous file intact.
QString saveFile(const QString& path, const QByteArray& bytes);

/// Adds a PNG (`width` × `height`, `channels` 3 or 4) as a TensorBoard image under `tag` at `step` to
/// the run folder `runDir`, in an events file of the window's own beside the engine's (one per run
/// folder and process, kept open; TensorBoard merges the files of a folder). Empty on success, else the
/// error. Called on the GUI thread.
QString addTensorBoardImage(const QString& runDir, const QString& tag, qint64 step, const QByteArray& png, int width,
                            int height, int channels);

/// `gw export`: a checkpoint's weights for Python plus the experiment beside. Empty on success, else the error.
QString exportForPython(const QString& checkpoint, const QString& out);

/// Runs one experiment on the thread it lives in (moveToThread), reporting in plain data.
/// run() returns when the run ends; pause, stop and checkpoint requests are thread-safe.
class TrainingWorker : public QObject {
    Q_OBJECT
public:
    enum State { Idle, Preparing, Pretraining, Training, Paused, Stopping };
    Q_ENUM(State)

    explicit TrainingWorker(QObject* parent = nullptr);
    ~TrainingWorker() override;

    /// Thread-safe: pauses between steps (pre-training included) or resumes.
    void requestPause(bool paused);
    /// Thread-safe: stops at the next step boundary; a training run saves its checkpoint first.
    void requestStop();
    /// Thread-safe: writes the engine's current checkpoint to `path` at the next step boundary
    /// (reported by checkpointWritten or failed-less logLine on error).
    void requestCheckpoint(const QString& path);
    State state() const { return state_.load(); }
    /// Thread-safe: while training, explore `request` every `everySteps` steps (0: never) and emit explored();
    /// once more when the run ends (completed or stopped), on its final weights.
    void setExploreRequest(const ExploreRequest& request, qint64 everySteps);

public Q_SLOTS:
    /// Trains the experiment `yaml` (relative paths against `baseDir`) into `runDir` (empty: a new
    /// folder under training.out), or resumes `resumeDir` when set. `overrides` are dotted key=value.
    void run(const QString& yaml, const QString& baseDir, const QString& sourceName, const QString& runDir,
             const QString& resumeDir = QString(), const QStringList& overrides = QStringList());
    /// Explores a checkpoint with the current request (when no run is going on); emits explored or exploreFailed.
    void exploreCheckpoint(const QString& checkpoint);

Q_SIGNALS:
    void stateChanged(int state);
    /// Phase "pretrain DOMAIN" or "train"; steps/s and the ETA in seconds.
    void progress(const QString& phase, qint64 step, qint64 total, double stepsPerSecond, double etaSeconds);
    void metrics(const gw::studio::MetricBatch& batch);
    void logLine(const QString& line);
    void runStarted(const QString& runDir);
    void explored(const gw::studio::ExploreData& data);
    void exploreFailed(const QString& message);
    void checkpointWritten(const QString& path);
    /// The run ended: completed or stopped on request (`stopped`); `checkpoint` may be empty.
    void finished(const QString& checkpoint, bool stopped);
    /// The run failed (NaN, out of memory, unreadable file, bad config); the last checkpoint, if any, is kept.
    void failed(const QString& message, const QString& lastCheckpoint);

private:
    bool poll();  // between steps: pause, checkpoint requests; true = stop
    void setState(State s);

    std::atomic<State> state_{Idle};
    std::atomic<bool> stop_{false}, pause_{false};
    std::mutex mutex_;
    std::condition_variable wake_;
    QStringList checkpointRequests_;
    ExploreRequest exploreRequest_;
    qint64 exploreEvery_ = 0;
    void exploreNow(qint64 step);
    struct Run;
    Run* current_ = nullptr;  // valid while run() runs, on the worker thread only
};

}  // namespace gw::studio

Q_DECLARE_METATYPE(gw::studio::MetricBatch)
Q_DECLARE_METATYPE(gw::studio::ExploreData)
