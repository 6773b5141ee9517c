// SPDX-License-Identifier: GPL-3.0-or-later
// GLOM against a restatement of glom-pytorch's forward (tests/python/glom_reference.py, Debian's
// python3-torch): its weights loaded here give its levels to 1e-5, our weights loaded there give ours,
// for several configurations; and the errors of bad sizes and of a state dict of another configuration.
#include <QtTest/QtTest>

#include <QJsonDocument>
#include <QJsonObject>

#include "fixtures.h"
#include "model/glom.h"
#include "model/torch_file.h"

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
}  // namespace

class TestGlom : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void initTestCase() {
        if (!fixtures::pythonHasTorch()) QSKIP("needs Debian's python3-torch (/usr/bin/python3 with torch)");
    }

    void bothWays_data() {
        QTest::addColumn<int>("which");
        QTest::newRow("d32 L4 16px p4 rgb") << 0;
        QTest::newRow("local radius 1.5") << 1;
        QTest::newRow("self-attention, grey, L2") << 2;
        QTest::newRow("radius 2 with self, 28px p7") << 3;
    }
    /// glom-pytorch's weights give its levels here, every iteration, and ours give ours there.
    void bothWays() {
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

    /// `gw bench glom` runs both variants of the step (and would run the reference beside them).
    void benchRuns() {
        const auto r = fixtures::gwCli({"bench", "glom", "--steps", "1", "--repeats", "1", "--threads", "1", "--json"});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        const auto json = QJsonDocument::fromJson(r.out.trimmed().split('\n').last().toUtf8()).object();
        QVERIFY2(json.value("steps_per_s").toDouble() > 0 && json.value("steps_per_s_all_iterations").toDouble() > 0, qPrintable(r.out));
        QVERIFY(std::isfinite(json.value("loss").toDouble()));
    }

    /// Sizes that cannot work, and a state dict of another configuration, are named.
    void badInput() {
        QVERIFY2(errorOf([] { Glom(GlomOptions{32, 4, 30, 4, 3, false, 0}); }).contains("model.image_size: expected a multiple of model.patch_size (4), found 30"),
                 qPrintable(errorOf([] { Glom(GlomOptions{32, 4, 30, 4, 3, false, 0}); })));
        QVERIFY(errorOf([] { Glom(GlomOptions{32, 1, 16, 4, 3, false, 0}); }).contains("model.levels: expected a whole number >= 2"));
        QVERIFY(errorOf([] { Glom(GlomOptions{32, 4, 16, 4, 2, false, 0}); }).contains("model.channels: expected 1 or 3, found 2"));
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
};

QTEST_APPLESS_MAIN(TestGlom)
#include "tst_glom.moc"
