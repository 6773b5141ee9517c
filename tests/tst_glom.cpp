// SPDX-License-Identifier: GPL-3.0-or-later
// GLOM against a restatement of glom-pytorch's forward (tests/python/glom_reference.py, Debian's
// python3-torch): its weights loaded here give its levels to 1e-5, our weights loaded there give ours,
// for several configurations; and the errors of bad sizes and of a state dict of another configuration.
#include <QtTest/QtTest>

#include <QJsonDocument>
#include <QJsonObject>
#include <QScopeGuard>

#include <fstream>

#include "data/h5_array.h"
#include "fixtures.h"
#include "model/run/engine.h"
#include "model/glom/glom.h"
#include "model/core/optim.h"
#include "model/cpu_step/glom_step.h"
#include "model/models/glom_model.h"
#include "model/run/interop.h"
#include "model/run/runs.h"
#include "model/io/torch_file.h"

using namespace gw;
using fixtures::errorOf;

namespace {
const QString kScript = QStringLiteral(GW_SOURCE_DIR "/tests/python/glom_reference.py");

struct Case {
    GlomOptions o;
    int64_t iters;
};

QStringList args(const Case& c) {
    QStringList a = {"--dim", QString::number(c.o.dim), "--levels", QString::number(c.o.levels), "--image", QString::number(c.o.imageSize),
                     "--patch", QString::number(c.o.patchSize), "--channels", QString::number(c.o.channels), "--radius",
                     QString::number(c.o.localRadius), "--iters", QString::number(c.iters)};
    if (c.o.consensusSelf) a << "--self";
    return a;
}

/// /{train,val,test}/image (N, 12, 12) uint8: a bright 4 x 4 or 6 x 6 square on a dark, slightly noisy
/// background, somewhere in the image.
void writeSquares(const std::string& file) {
    torch::manual_seed(5);
    const std::pair<const char*, int64_t> splits[] = {{"train", 256}, {"val", 64}, {"test", 64}};
    for (const auto& [split, n] : splits) {
        auto img = (torch::rand({n, 12, 12}) * 40).to(torch::kUInt8);
        for (int64_t i = 0; i < n; ++i) {
            const int64_t size = i % 2 ? 4 : 6, y = (i * 7) % (12 - size), x = (i * 5) % (12 - size);
            img[i].narrow(0, y, size).narrow(1, x, size).fill_(230);
        }
        gw::data::writeDataset(file, std::string("/") + split + "/image", img, 4);
    }
}

/// A model: glom experiment over those images: 16-wide levels, 3 levels, 4 x 4 columns of 3-pixel patches.
std::string glomExperiment(int64_t steps) {
    return "name: islands\n"
           "model: glom\n"
           "seed: 2\n"
           "threads: 1\n"
           "data: {file: squares.h5}\n"
           "domains:\n"
           "  image: {module: glom, dim: 16, levels: 3, image_size: 12, patch_size: 3, channels: 1, noise_std: 0.3}\n"
           "optimizer: {lr: 0.003}\n"
           "scheduler: {kind: none}\n"
           "training: {steps: " + std::to_string(steps) + ", batch_size: 16, val_every: 20, checkpoint_every: 20, log_every: 10, "
           "val_batch_size: 64, out: runs}\n";
}

std::string writeGlomExperiment(const QTemporaryDir& dir, int64_t steps) {
    const std::string root = dir.path().toStdString();
    if (!QFile::exists(dir.filePath("squares.h5"))) writeSquares(root + "/squares.h5");
    std::ofstream(root + "/islands.yaml") << glomExperiment(steps);
    return root + "/islands.yaml";
}

/// metrics.csv as metric -> (step -> value).
QMap<QString, QMap<qint64, double>> readMetrics(const QString& csv) {
    QMap<QString, QMap<qint64, double>> m;
    QFile f(csv);
    if (!f.open(QIODevice::ReadOnly)) return m;
    while (!f.atEnd()) {
        const QStringList parts = QString::fromUtf8(f.readLine()).trimmed().split(',');
        if (parts.size() == 3 && parts[0] != "step") m[parts[1]][parts[0].toLongLong()] = parts[2].toDouble();
    }
    return m;
}
}  // namespace

class TestGlom : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void bothWays_data() {
        QTest::addColumn<int>("which");
        QTest::newRow("d32 L4 16px p4 rgb") << 0;
        QTest::newRow("local radius 1.5") << 1;
        QTest::newRow("self-attention, grey, L2") << 2;
        QTest::newRow("radius 2 with self, 28px p7") << 3;
    }
    /// glom-pytorch's weights give its levels here, every iteration, and ours give ours there.
    void bothWays() {
        if (!fixtures::pythonHasTorch()) GW_SKIP_MISSING("needs Debian's python3-torch (/usr/bin/python3 with torch)");
        QFETCH(int, which);
        std::vector<Case> cases(4);
        cases[0].o = GlomOptions{32, 4, 16, 4, 3, false, 0};
        cases[0].iters = 5;
        cases[1].o = GlomOptions{32, 4, 16, 4, 3, false, 1.5};
        cases[1].iters = 6;
        cases[2].o = GlomOptions{24, 2, 12, 3, 1, true, 0};
        cases[2].iters = 4;
        cases[3].o = GlomOptions{16, 3, 28, 7, 3, true, 2.0};
        cases[3].iters = 8;
        const Case c = cases[static_cast<size_t>(which)];
        QTemporaryDir dir;
        const auto made = fixtures::python(QStringList{kScript, "make", dir.path()} + args(c));
        QVERIFY2(made.code == 0, qPrintable(made.out));
        // Theirs here.
        Glom g(c.o);
        g->loadStateDict(readStateDict(dir.filePath("glom.pt").toStdString()).tensors, "glom.pt");
        const torch::Tensor img = readStateDict(dir.filePath("input.pt").toStdString()).tensors.at("img");
        const torch::Tensor expected = readStateDict(dir.filePath("expected.pt").toStdString()).tensors.at("all");
        torch::NoGradGuard noGrad;
        const torch::Tensor ours = g->forward(img, c.iters, {}, true);
        QCOMPARE(ours.sizes().vec(), expected.sizes().vec());
        const double gap = (ours - expected).abs().max().item<double>();
        QVERIFY2(gap <= 1e-5, qPrintable(QString("largest difference %1").arg(gap)));
        // The last state alone, and a state passed back in (glom-pytorch's `levels` argument).
        QVERIFY((g->forward(img, c.iters) - expected[c.iters]).abs().max().item<double>() <= 1e-5);
        QVERIFY((g->forward(img, 2, expected[c.iters - 2]) - expected[c.iters]).abs().max().item<double>() <= 1e-4);
        // Ours there: a fresh GLOM of the same sizes, written as a state_dict that load_state_dict(strict=True) takes.
        torch::manual_seed(7);
        Glom mine(c.o);
        writeStateDict(dir.filePath("mine.pt").toStdString(), mine->stateDict());
        OrderedMap<torch::Tensor> out;
        out.set("all", mine->forward(img, c.iters, {}, true));
        writeStateDict(dir.filePath("ours.pt").toStdString(), out);
        const auto checked = fixtures::python(QStringList{kScript, "check", dir.path(), dir.filePath("mine.pt"), dir.filePath("ours.pt")} + args(c));
        QVERIFY2(checked.code == 0, qPrintable(checked.out));
    }

    /// The denoiser puts each patch's pixels back where GlomImpl::tokens took them from, and reads the
    /// top level of state L + 1 however many iterations are computed.
    void denoiserReadsTheRightState() {
        torch::manual_seed(3);
        const GlomOptions o{16, 3, 12, 3, 3, false, 0};
        GlomDenoiser m(o);
        const auto img = torch::randn({2, 3, 12, 12});
        // The patches of glom-pytorch's cut: (b, c, h·p, w·p) -> (b, h·w, p·p·c).
        const auto patches = img.reshape({2, 3, 4, 3, 4, 3}).permute({0, 2, 4, 3, 5, 1}).reshape({2, 16, 27});
        QVERIFY(m->unpatchify(patches).equal(img));
        torch::NoGradGuard noGrad;
        const auto lean = m->reconstruct(img);  // 4 iterations, state 4 read
        const auto full = m->reconstruct(img, -1, 6);  // 6 computed, state 4 read
        QVERIFY((lean - full).abs().max().item<double>() < 1e-6);
        const auto top = m->glom->forward(img, 4, {}, true)[4].select(2, 2);
        QVERIFY((m->unpatchify(m->toPixels->forward(top)) - lean).abs().max().item<double>() < 1e-6);
        QVERIFY((m->reconstruct(img, 2) - lean).abs().max().item<double>() > 1e-4);  // another state, another image
    }

    void handWrittenStep_data() {
        QTest::addColumn<int>("which");
        QTest::addColumn<int>("threads");
        QTest::newRow("rgb, L3, every column, 2 extra iterations, 1 thread") << 0 << 1;
        QTest::newRow("rgb, L3, every column, 2 extra iterations, 2 threads") << 0 << 2;
        QTest::newRow("grey, L4, local radius 1.5, self-attention, 2 threads") << 1 << 2;
        QTest::newRow("grey, L2, local radius 1, read at 2, 1 thread") << 2 << 1;
        QTest::newRow("grey, L2, local radius 1, read at 2, 3 threads") << 2 << 3;
    }
    /// The hand-written step (model/cpu_step/glom_step.h) against autograd on the same weights and
    /// images: the loss, every parameter's gradient and the parameters after one AdamW update agree to
    /// 1e-5 (relative to the largest entry of each tensor). On two or more intra-op threads the step
    /// splits the rows (B·n: 48, 32 and 100 here) into blocks, one per thread, and its products over the
    /// threads.
    void handWrittenStep() {
        QFETCH(int, which);
        QFETCH(int, threads);
        const int threadsBefore = torch::get_num_threads();
        torch::set_num_threads(threads);
        const auto restore = qScopeGuard([&] { torch::set_num_threads(threadsBefore); });
        struct Config {
            GlomOptions o;
            int64_t batch, readAt, computeIters;
        };
        const Config cs[] = {{{16, 3, 12, 3, 3, false, 0}, 3, -1, 6},
                             {{8, 4, 16, 4, 1, true, 1.5}, 2, -1, -1},
                             {{12, 2, 15, 3, 1, false, 1}, 4, 2, -1}};
        const Config& c = cs[which];
        torch::manual_seed(17 + which);
        GlomDenoiser ours(c.o), ref(c.o);
        {
            torch::NoGradGuard noGrad;
            const auto a = ours->parameters(), b = ref->parameters();
            for (size_t i = 0; i < a.size(); ++i) b[i].copy_(a[i]);
        }
        const auto clean = torch::rand({c.batch, c.o.channels, c.o.imageSize, c.o.imageSize});
        const auto noisy = clean + 0.5 * torch::randn_like(clean);
        // eps 1e-6, not 1e-8: AdamW's first update is lr·g / (|g| + eps), about ±lr for any |g| >> eps, so with
        // 1e-8 an entry of a dead GELU unit's gradient (|g| near 1e-8, its last digits set by the order of a
        // float sum) would move its weight by a visible share of lr on either side.
        FlatAdamW optOurs(ours->parameters(), 1e-2, 0.9, 0.999, 1e-6, 1e-2), optRef(ref->parameters(), 1e-2, 0.9, 0.999, 1e-6, 1e-2);
        QCOMPARE(QString::fromStdString(cpu::GlomStep::unsupported(*ours, noisy, c.readAt)), QString());
        cpu::GlomStep step;
        optOurs.zeroGrad();
        torch::Tensor loss;
        for (int run = 0; run < 2; ++run) {  // the second run reuses the arena: the same numbers
            optOurs.zeroGrad();
            loss = step.run(*ours, noisy, clean, c.readAt, c.computeIters);
        }
        optRef.zeroGrad();
        const auto lossRef = torch::mse_loss(ref->reconstruct(noisy, c.readAt, c.computeIters), clean);
        lossRef.backward();
        auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
            return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
        };
        QVERIFY2(rel(loss, lossRef.detach()) < 1e-5, qPrintable(QString("loss %1 vs %2").arg(loss.item<double>()).arg(lossRef.item<double>())));
        const auto a = ours->named_parameters(), b = ref->named_parameters();
        QCOMPARE(a.size(), b.size());
        for (size_t i = 0; i < a.size(); ++i) {
            const auto& ga = a[i].value().grad();
            const auto& gb = b[i].value().grad();
            QVERIFY2(ga.defined() && gb.defined(), a[i].key().c_str());
            QVERIFY2(gb.abs().max().item<double>() > 0, a[i].key().c_str());  // every parameter is trained
            QVERIFY2(rel(ga, gb) < 1e-5, qPrintable(QString("%1: gradient off by %2").arg(a[i].key().c_str()).arg(rel(ga, gb))));
        }
        optOurs.step();
        optRef.step();
        for (size_t i = 0; i < a.size(); ++i) {
            const double r = rel(a[i].value().detach(), b[i].value().detach());
            QVERIFY2(r < 1e-5, qPrintable(QString("%1 after AdamW: off by %2").arg(a[i].key().c_str()).arg(r)));
        }
        // The domain module's step takes the same path, and GW_CPU_STEP=0 sends it to autograd, saying so.
        const auto dom = std::make_shared<GlomDomain>(c.o, c.readAt > 0 ? c.readAt : c.o.levels + 1, 0.3);
        cpu::GlomDomainStep ds;
        const auto out = ds.run(*dom, clean);
        QCOMPARE(QString::fromStdString(ds.lastPath()), QString("hand-written"));
        QVERIFY(out.metrics.find("denoise_mse") && std::isfinite(out.loss.item<double>()));
        qputenv("GW_CPU_STEP", "0");
        ds.run(*dom, clean);
        qunsetenv("GW_CPU_STEP");
        QCOMPARE(QString::fromStdString(ds.lastPath()), QString("autograd (switched off)"));
    }

    /// `gw bench glom` runs both variants of the step (and would run the reference beside them).
    void benchRuns() {
        const auto r = fixtures::gwCli({"bench", "glom", "--steps", "1", "--repeats", "1", "--threads", "1", "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        const auto json = QJsonDocument::fromJson(r.out.trimmed().split('\n').last().toUtf8()).object();
        QVERIFY2(json.value("steps_per_s").toDouble() > 0 && json.value("steps_per_s_lean").toDouble() > 0, qPrintable(r.out));
        // The lean step computes 5 of the 8 iterations: fewer FLOPs per step, counted from the shapes.
        QVERIFY2(json.value("gflops_lean").toDouble() / json.value("steps_per_s_lean").toDouble() <
                     json.value("gflops").toDouble() / json.value("steps_per_s").toDouble(), qPrintable(r.out));
        QVERIFY(std::isfinite(json.value("loss").toDouble()));
        // The matrix product beside it names OpenBLAS's kernels (the yardstick's own speed depends on
        // them), and follows OPENBLAS_CORETYPE where the environment forces a set.
        const QString kernels = json.value("blas_kernels").toString();
        QVERIFY2(json.contains("blas_kernels"), qPrintable(r.out));
        if (qEnvironmentVariable("CI") == "true") QVERIFY2(!kernels.isEmpty(), "no OpenBLAS kernels named under CI");
        const QString forced = qEnvironmentVariable("OPENBLAS_CORETYPE");
        if (!forced.isEmpty() && !kernels.isEmpty())
            QVERIFY2(kernels.compare(forced, Qt::CaseInsensitive) == 0, qPrintable(kernels + " with OPENBLAS_CORETYPE=" + forced));
    }

    /// Sizes that cannot work, and a state dict of another configuration, are named.
    void badInput() {
        QVERIFY2(errorOf([] { Glom(GlomOptions{32, 4, 30, 4, 3, false, 0}); }).contains("image_size: expected a multiple of patch_size (4), found 30"),
                 qPrintable(errorOf([] { Glom(GlomOptions{32, 4, 30, 4, 3, false, 0}); })));
        QVERIFY(errorOf([] { Glom(GlomOptions{32, 1, 16, 4, 3, false, 0}); }).contains("levels: expected a whole number >= 2"));
        QVERIFY(errorOf([] { Glom(GlomOptions{32, 4, 16, 4, 2, false, 0}); }).contains("channels: expected 1 or 3, found 2"));
        Glom a(GlomOptions{32, 4, 16, 4, 3, false, 0});
        Glom b(GlomOptions{48, 4, 16, 4, 3, false, 0});
        const QString e = errorOf([&] { a->loadStateDict(b->stateDict(), "other.pt"); });
        QVERIFY2(e.contains("other.pt: init_levels: expected shape (4, 32) for dim 32, levels 4, image_size 16, patch_size 4, channels 3, "
                            "found (4, 48)"),
                 qPrintable(e));
        Glom local(GlomOptions{32, 4, 16, 4, 3, false, 1.5});
        QVERIFY(errorOf([&] { a->loadStateDict(local->stateDict(), "local.pt"); }).contains("local.pt: not the state_dict of this GLOM (unexpected: attention.non_local_mask)"));
        QVERIFY(errorOf([&] { a->forward(torch::zeros({1, 3, 8, 8})); }).contains("GLOM input: expected images (B, 3, 16, 16), found (1, 3, 8, 8)"));
    }

    /// A model: glom run trains the GLOM alone: the denoising loss falls, metrics.csv and status.yaml
    /// are written, and a run stopped at 20 steps and resumed to 40 ends with the same weights, bit for
    /// bit, as one that ran 40 steps at once.
    void trainsAndResumesExactly() {
        QTemporaryDir dir;
        const std::string exp = writeGlomExperiment(dir, 40);
        Engine whole(loadExperiment(exp));
        whole.prepare();
        QCOMPARE(whole.explorerView(), std::string("islands"));  // the glom model kind's registration
        QVERIFY_THROWS_EXCEPTION(std::logic_error, whole.model());
        QVERIFY(glomOf(whole).readAt() >= 1);  // its GLOM module, through the kind's own accessor
        const double before = whole.evaluate("val").at("val/denoise_mse");
        QCOMPARE(whole.evaluate("val").at("val/denoise_mse"), before);  // the same noise at every evaluation
        const std::string run = dir.filePath("whole").toStdString();
        QCOMPARE(runTraining(whole, run).step, int64_t(40));
        const double after = whole.evaluate("val").at("val/denoise_mse");
        QVERIFY2(after < 0.7 * before, qPrintable(QString("val/denoise_mse %1 -> %2").arg(before).arg(after)));
        const auto metrics = readMetrics(QString::fromStdString(run + "/metrics.csv"));
        QVERIFY(metrics.contains("train/denoise_mse") && metrics["train/denoise_mse"].contains(40));
        QVERIFY(metrics.contains("val/denoise_mse") && metrics["val/denoise_mse"].contains(20));
        QVERIFY(std::abs(metrics["val/denoise_mse"][40] - after) < 1e-6 * after);  // metrics.csv keeps 9 digits
        QCOMPARE(QString::fromStdString(readRunStatus(run).state), QString("finished"));

        // 20 steps, then a resume to 40 from the run folder, as `gw train --resume` does.
        const std::string part = dir.filePath("part").toStdString();
        {
            Engine first(loadExperiment(exp, {"training.steps=20"}));
            runTraining(first, part);
        }
        OpenedRun opened = openRun(part, {"training.steps=40"});
        Engine second(opened.config);
        second.prepare(&opened.checkpoint);
        second.restore(opened.checkpoint, opened.checkpointPath);
        QCOMPARE(second.step(), int64_t(20));
        runTraining(second, part);
        const auto a = whole.makeCheckpoint().state, b = second.makeCheckpoint().state;
        QCOMPARE(a.size(), b.size());
        for (const auto& [k, t] : a) QVERIFY2(t.equal(b.at(k)), k.c_str());
        QVERIFY(a.contains("gw_mod.domain_mods.image.denoiser.glom.init_levels"));
    }

    /// `gw train` and `gw eval` take a GLOM experiment; `gw explore` writes its islands.
    void commandLine() {
        QTemporaryDir dir;
        const std::string exp = writeGlomExperiment(dir, 20);
        const QString run = dir.filePath("cli");
        auto r = fixtures::gwCli({"train", QString::fromStdString(exp), "--out", run});
        QVERIFY2(r.code == 0 && r.out.contains("done: 20 steps"), qPrintable(r.out));
        r = fixtures::gwCli({"eval", run, "--split", "test"});
        QVERIFY2(r.code == 0 && r.out.contains("test/denoise_mse"), qPrintable(r.out));
        if (!QFile::exists(GW_BINARY_DIR "/app/gw-studio")) GW_SKIP_MISSING("gw-studio not built (GW_BUILD_GUI=OFF)");
        r = fixtures::gwCli({"explore", run, "--out", dir.filePath("png"), "--samples", "indices:3,5"});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        for (const QString f : {"islands-test-3-state4.png", "islands-test-3-state6.png", "islands-test-5-state4.png"}) {
            // A PNG's IHDR: the signature, then width and height as big-endian 32-bit numbers at bytes 16 and 20.
            QFile png(dir.filePath("png/" + f));
            QVERIFY2(png.open(QIODevice::ReadOnly), qPrintable(f + "\n" + r.out));
            const QByteArray head = png.read(24);
            QVERIFY(head.startsWith("\x89PNG"));
            auto be32 = [&](int at) { return (uchar(head[at]) << 24) | (uchar(head[at + 1]) << 16) | (uchar(head[at + 2]) << 8) | uchar(head[at + 3]); };
            QVERIFY2(be32(16) > 200 && be32(20) > 300, qPrintable(QString("%1: %2 x %3").arg(f).arg(be32(16)).arg(be32(20))));
        }
        QVERIFY2(r.out.contains("state 6: neighbour agreement level 2 "), qPrintable(r.out));
    }

    /// The islands viewer's numbers: every column is its own island (similarity 1), similarities are
    /// symmetric and within [-1, 1], agreement is the mean over the grid neighbours, and the view is the
    /// same for the same seed without touching the run's random numbers.
    void islands() {
        QTemporaryDir dir;
        Engine e(loadExperiment(writeGlomExperiment(dir, 10)));
        e.prepare();
        const torch::Tensor rngBefore = at::detail::getDefaultCPUGenerator().get_state();
        const GlomView v = exploreGlom(e, "test", 7, -1, 11);
        QVERIFY(at::detail::getDefaultCPUGenerator().get_state().equal(rngBefore));
        QCOMPARE(v.iterations, int64_t(6));  // 2 L
        QCOMPARE(v.readAt, int64_t(4));      // L + 1
        QCOMPARE(v.side, int64_t(4));
        QCOMPARE(int64_t(v.similarity.size()), int64_t(7 * 3 * 16 * 16));
        QCOMPARE(int64_t(v.agreement.size()), int64_t(7 * 3 * 16));
        QCOMPARE(int64_t(v.input.size()), int64_t(144));
        for (int64_t s = 0; s <= v.iterations; ++s)
            for (int64_t l = 0; l < 3; ++l)
                for (int64_t a = 0; a < 16; ++a) {
                    QVERIFY(std::abs(v.similarityAt(s, l, a, a) - 1.0f) < 1e-4f);
                    for (int64_t b = 0; b < 16; ++b) {
                        QVERIFY(std::abs(v.similarityAt(s, l, a, b) - v.similarityAt(s, l, b, a)) < 1e-5f);
                        QVERIFY(v.similarityAt(s, l, a, b) <= 1.0001f && v.similarityAt(s, l, a, b) >= -1.0001f);
                    }
                }
        // Column 5 = (1, 1): neighbours 1, 4, 6, 9. Column 0: neighbours 1 and 4.
        const float mean5 = (v.similarityAt(3, 1, 5, 1) + v.similarityAt(3, 1, 5, 4) + v.similarityAt(3, 1, 5, 6) + v.similarityAt(3, 1, 5, 9)) / 4;
        QVERIFY(std::abs(v.agreementAt(3, 1, 5) - mean5) < 1e-5f);
        QVERIFY(std::abs(v.agreementAt(3, 1, 0) - (v.similarityAt(3, 1, 0, 1) + v.similarityAt(3, 1, 0, 4)) / 2) < 1e-5f);
        // State 0 is the learned initial levels, the same in every column: one island per level.
        QVERIFY(std::abs(v.similarityAt(0, 2, 0, 15) - 1.0f) < 1e-4f);
        const GlomView again = exploreGlom(e, "test", 7, -1, 11);
        QVERIFY(again.noisy == v.noisy && again.similarity == v.similarity);
        QVERIFY(exploreGlom(e, "test", 7, -1, 12).noisy != v.noisy);
        QVERIFY(errorOf([&] { exploreGlom(e, "test", 64); }).contains("split 'test': sample 64 is out of range (it has 64 samples)"));
    }

    /// Weights both ways through the commands: a glom-pytorch state_dict imported as a glom domain's
    /// weights gives glom-pytorch's states here; a run trained from it and exported loads into the
    /// reference with strict=True and gives the trained run's states there.
    void importAndExport() {
        if (!fixtures::pythonHasTorch()) GW_SKIP_MISSING("needs Debian's python3-torch (/usr/bin/python3 with torch)");
        QTemporaryDir dir;
        const Case c{GlomOptions{16, 3, 12, 3, 1, false, 0}, 6};
        const auto made = fixtures::python(QStringList{kScript, "make", dir.path()} + args(c));
        QVERIFY2(made.code == 0, qPrintable(made.out));
        const std::string exp = writeGlomExperiment(dir, 20);
        const QString weights = dir.filePath("imported.pt");
        auto r = fixtures::gwCli({"glom", "import-weights", dir.filePath("glom.pt"), QString::fromStdString(exp), "--out", weights});
        QVERIFY2(r.code == 0 && r.out.contains("the GLOM of domain image"), qPrintable(r.out));
        // Trained from those weights: the engine starts from glom-pytorch's states.
        Engine e(loadExperiment(exp, {"domains.image.weights=" + weights.toStdString()}));
        e.prepare();
        const torch::Tensor img = readStateDict(dir.filePath("input.pt").toStdString()).tensors.at("img");
        const torch::Tensor expected = readStateDict(dir.filePath("expected.pt").toStdString()).tensors.at("all");
        {
            torch::NoGradGuard ng;
            const double gap = (glomOf(e).denoiser->glom->forward(img, c.iters, {}, true) - expected).abs().max().item<double>();
            QVERIFY2(gap <= 1e-5, qPrintable(QString("imported: largest difference %1").arg(gap)));
        }
        const std::string run = dir.filePath("tuned").toStdString();
        runTraining(e, run);
        r = fixtures::gwCli({"glom", "export", QString::fromStdString(run), dir.filePath("mine.pt")});
        QVERIFY2(r.code == 0 && QFile::exists(dir.filePath("mine.to_pixels.pt")), qPrintable(r.out));
        OrderedMap<torch::Tensor> ours;
        {
            torch::NoGradGuard ng;
            ours.set("all", glomOf(e).denoiser->glom->forward(img, c.iters, {}, true));
        }
        QVERIFY((ours.at("all") - expected).abs().max().item<double>() > 1e-4);  // training changed the weights
        writeStateDict(dir.filePath("ours.pt").toStdString(), ours);
        const auto checked = fixtures::python(QStringList{kScript, "check", dir.path(), dir.filePath("mine.pt"), dir.filePath("ours.pt")} + args(c));
        QVERIFY2(checked.code == 0, qPrintable(checked.out));
        // `gw export` of a GLOM run writes the same glom-pytorch state_dict.
        r = fixtures::gwCli({"export", QString::fromStdString(run), dir.filePath("same.pt")});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        // ... through the glom model kind's export: the layout named, the Python hint, the experiment beside it.
        QVERIFY2(r.out.contains("GLOM as glom-pytorch's state_dict") && r.out.contains("in Python: Glom(") &&
                     r.out.contains("same.to_pixels.pt"),
                 qPrintable(r.out));
        QFile yaml(dir.filePath("same.yaml"));
        QVERIFY(yaml.open(QIODevice::ReadOnly));
        const QString head = QString::fromUtf8(yaml.readAll());
        QVERIFY2(head.startsWith("# Exported by GW Studio") && head.contains("glom-pytorch's Glom(") && head.contains("model: glom"),
                 qPrintable(head.left(400)));
        const auto x = readStateDict(dir.filePath("mine.pt").toStdString()).tensors, y = readStateDict(dir.filePath("same.pt").toStdString()).tensors;
        QCOMPARE(x.size(), y.size());
        for (const auto& [k, t] : x) QVERIFY(t.equal(y.at(k)));
        // A state dict of another configuration is named by key and shapes.
        r = fixtures::gwCli({"glom", "import-weights", dir.filePath("glom.pt"), QString::fromStdString(exp), "domains.image.dim=24",
                             "--out", dir.filePath("bad.pt")});
        QVERIFY2(r.code == 1 && r.out.contains("glom.pt: init_levels: expected shape (3, 24) for dim 24") && r.out.contains("found (3, 16)"),
                 qPrintable(r.out));
        QVERIFY(!QFile::exists(dir.filePath("bad.pt")));
    }

    /// GLOM as a GW domain module: `gw pretrain` trains it to denoise, and a GW sits on its latent (the
    /// top level's mean over the columns, (B, dim)).
    void asDomainModule() {
        QTemporaryDir dir;
        writeSquares(dir.filePath("squares.h5").toStdString());
        torch::manual_seed(1);
        for (const char* split : {"train", "val", "test"}) {
            const int64_t n = std::string(split) == "train" ? 256 : 64;
            auto label = (torch::arange(n) % 2).to(torch::kInt64);  // the square's size: 6 (even) or 4 (odd)
            gw::data::writeDataset(dir.filePath("squares.h5").toStdString(), std::string("/") + split + "/size", label, 0, {{"num_classes", 2}});
        }
        std::ofstream(dir.filePath("gw.yaml").toStdString())
            << "name: glom-gw\nseed: 1\nthreads: 1\ndata: {file: squares.h5, paired_fraction: 0.5}\n"
               "domains:\n"
               "  image: {module: glom, dim: 16, levels: 3, image_size: 12, patch_size: 3, noise_std: 0.3, weights: glom.pt,\n"
               "          pretrain: {steps: 30, batch_size: 16, lr: 0.003}}\n"
               "  size: {module: class_label}\n"
               "workspace: {dim: 8, encoder: {hidden: 16, layers: 1}, decoder: {hidden: 16, layers: 1}}\n"
               "training: {steps: 10, batch_size: 16, val_every: 0, checkpoint_every: 0, log_every: 5}\n";
        const auto r = fixtures::gwCli({"pretrain", dir.filePath("gw.yaml")});
        QVERIFY2(r.code == 0 && r.out.contains("val image/denoise_mse") && QFile::exists(dir.filePath("glom.pt")), qPrintable(r.out));
        Engine e(loadExperiment(dir.filePath("gw.yaml").toStdString()));
        e.prepare();
        QCOMPARE(e.model().gwMod().domainModule("image").latentDim(), int64_t(16));
        for (int i = 0; i < 10; ++i) QVERIFY(std::isfinite(e.trainStep().out.loss.item<double>()));
        QVERIFY(e.evaluate("val").contains("val/translation_image_to_size"));
    }

    /// Bad GLOM experiments are named by key.
    void badExperiments() {
        QTemporaryDir dir;
        const std::string exp = writeGlomExperiment(dir, 10);
        QVERIFY2(errorOf([&] { Engine(loadExperiment(exp, {"domains.image.patch_size=5"})).prepare(); })
                     .contains("domains.image (") &&
                     errorOf([&] { Engine(loadExperiment(exp, {"domains.image.patch_size=5"})).prepare(); })
                         .contains("image_size: expected a multiple of patch_size (5), found 12"),
                 qPrintable(errorOf([&] { Engine(loadExperiment(exp, {"domains.image.patch_size=5"})).prepare(); })));
        QVERIFY(errorOf([&] { loadExperiment(exp, {"domains.image.levels=1"}); }).contains("levels"));
        QVERIFY2(errorOf([&] { loadExperiment(exp, {"+domains.label.module=class_label"}); })
                     .contains("domains: a model: glom experiment trains one domain of module glom; found 2 domains"),
                 qPrintable(errorOf([&] { loadExperiment(exp, {"+domains.label.module=class_label"}); })));
        // The model kinds come from their registry, which names them.
        QVERIFY2(errorOf([&] { loadExperiment(exp, {"model=glam"}); }).contains("model: unknown model 'glam' (known: gw, glom, attention)"),
                 qPrintable(errorOf([&] { loadExperiment(exp, {"model=glam"}); })));
        const QString size = errorOf([&] { Engine(loadExperiment(exp, {"domains.image.image_size=15"})).prepare(); });
        QVERIFY2(size.contains("glom domain: expected images of shape (B, 15, 15)") && size.contains("squares.h5:/train/image") && size.contains("12, 12]"), qPrintable(size));
    }
};

QTEST_APPLESS_MAIN(TestGlom)
#include "tst_glom.moc"
