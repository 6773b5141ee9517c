// SPDX-License-Identifier: GPL-3.0-or-later
// The data library: HDF5 arrays (dtypes, chunked and compressed, row reads, errors), the
// semi-supervised sampler, the paired subset, and the Fashion-MNIST IDX importer.
#include <QtTest/QtTest>

#include <zlib.h>

#include <fstream>
#include <set>

#include "data/fashion_mnist.h"
#include "data/h5_array.h"
#include "data/tensorboard.h"
#include "data/sampler.h"
#include "fixtures.h"

using namespace gw::data;
using fixtures::errorOf;

namespace {

/// Writes an IDX file of unsigned bytes, gzip-compressed.
void writeIdx(const std::string& path, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& bytes,
              uint8_t magicType = 0x08) {
    gzFile f = gzopen(path.c_str(), "wb");
    const unsigned char head[4] = {0, 0, magicType, static_cast<unsigned char>(dims.size())};
    gzwrite(f, head, 4);
    for (uint32_t d : dims) {
        const unsigned char be[4] = {static_cast<unsigned char>(d >> 24), static_cast<unsigned char>(d >> 16),
                                     static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
        gzwrite(f, be, 4);
    }
    if (!bytes.empty()) gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
}
}  // namespace

class TestData : public QObject {
    Q_OBJECT
private Q_SLOTS:
    /// Two event writers of one process started in the same second write two files, never one (the
    /// window's image writer and the engine's once interleaved their records in a single file).
    void eventWritersNeverShareAFile() {
        QTemporaryDir dir;
        gw::data::EventWriter a(dir.path().toStdString());
        gw::data::EventWriter b(dir.path().toStdString());
        QVERIFY(a.path() != b.path());
        a.addScalar("train/loss", 1, 0.5);
        b.addScalar("train/loss", 1, 0.25);
        a.flush();
        b.flush();
        QCOMPARE(QDir(dir.path()).entryList(QDir::Files).size(), 2);
    }

    void dtypes_data() {
        QTest::addColumn<int>("dtype");
        QTest::addColumn<int>("expected");
        QTest::newRow("uint8") << int(torch::kUInt8) << int(torch::kUInt8);
        QTest::newRow("int32 widens to int64") << int(torch::kInt32) << int(torch::kInt64);
        QTest::newRow("int64") << int(torch::kInt64) << int(torch::kInt64);
        QTest::newRow("float32") << int(torch::kFloat32) << int(torch::kFloat32);
        QTest::newRow("float64") << int(torch::kFloat64) << int(torch::kFloat64);
    }
    void dtypes() {
        QFETCH(int, dtype);
        QFETCH(int, expected);
        QTemporaryDir dir;
        const std::string f = dir.path().toStdString() + "/d.h5";
        auto src = torch::arange(0, 5 * 3 * 2).reshape({5, 3, 2}).to(static_cast<torch::ScalarType>(dtype));
        writeDataset(f, "/g/sub/x", src, 6);
        H5Array a(f, "/g/sub/x");
        QCOMPARE(a.shape(), (std::vector<int64_t>{5, 3, 2}));
        QCOMPARE(int(a.dtype()), expected);
        QVERIFY(torch::equal(a.readAll(), src.to(a.dtype())));
        // Any order, repeats allowed: only those rows, in the order asked.
        auto rows = a.readRows({4, 0, 4, 2});
        QVERIFY(torch::equal(rows, src.index_select(0, torch::tensor({4, 0, 4, 2})).to(a.dtype())));
    }

    void errorsNameFileAndDataset() {
        QTemporaryDir dir;
        const std::string f = dir.path().toStdString() + "/d.h5";
        writeDataset(f, "/x", torch::zeros({3, 2}));
        QVERIFY(errorOf([&] { H5Array(dir.path().toStdString() + "/missing.h5", "/x"); }).contains("missing.h5: no such file"));
        const std::string text = dir.path().toStdString() + "/text.h5";
        std::ofstream(text) << "not hdf5";
        QVERIFY(errorOf([&] { H5Array(text, "/x"); }).contains("text.h5: not an HDF5 file"));
        QVERIFY(errorOf([&] { H5Array(f, "/y/z"); }).contains("d.h5:/y/z: no such dataset"));
        H5Array a(f, "/x");
        QVERIFY(errorOf([&] { a.readRows({1, 3}); }).contains("row 3 is outside the dataset's 3 rows"));
        QVERIFY(H5Array::exists(f, "/x"));
        QVERIFY(!H5Array::exists(f, "/nope/x"));
        QCOMPARE(a.intAttribute("num_classes", -1), int64_t(-1));
    }

    /// A filter this HDF5 cannot decode is named with the fix; other failures carry HDF5's own words.
    void filtersAndLibraryMessages() {
        const std::string lzf = GW_SOURCE_DIR "/tests/data/lzf-labels.h5";  // written by h5py, compression="lzf"
        const QString e = errorOf([&] { H5Array(lzf, "/train/label").readAll(); });
        if (e.isEmpty()) {
            // This HDF5 has an lzf plugin (HDF5_PLUGIN_PATH): then the labels read as written.
            const auto t = H5Array(lzf, "/train/label").readAll();
            QVERIFY(t.size(0) == 64 && t.min().item<int64_t>() >= 0 && t.max().item<int64_t>() < 4);
        } else {
            for (const char* want : {"lzf-labels.h5:/train/label", "filter 'lzf'", "32000", "cannot decode", "gzip"})
                QVERIFY2(e.contains(want), qPrintable(e));
        }
        QCOMPARE(H5Array(lzf, "/train/vec").readAll().size(0), int64_t(64));  // the unfiltered dataset beside it reads

        // A damaged gzip chunk: the library's own explanation, not only the call that failed.
        QTemporaryDir dir;
        const std::string f = dir.path().toStdString() + "/z.h5";
        writeDataset(f, "/z", torch::randn({256, 64}), 4);
        std::string bytes;
        {
            std::ifstream in(f, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(in), {});
        }
        for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] ^= 0x5a;
        std::ofstream(f, std::ios::binary | std::ios::trunc) << bytes;
        const QString damaged = errorOf([&] { H5Array(f, "/z").readAll(); });
        QVERIFY2(damaged.startsWith(QString::fromStdString(f) + ":/z: read failed (H5Dread failed: "), qPrintable(damaged));
        QVERIFY2(damaged.contains("filter"), qPrintable(damaged));
    }

    /// Class names: written as h5py reads them, read back whether h5py wrote them variable-length or fixed.
    void classNamesAttribute() {
        QTemporaryDir dir;
        const std::string f = dir.path().toStdString() + "/c.h5";
        writeDataset(f, "/train/label", torch::tensor({0, 2, 1}, torch::kInt64), 0, {{"num_classes", 3}});
        const std::vector<std::string> names = {"diamond", "egg", "triangle"};
        writeStringsAttribute(f, "/train/label", "class_names", names);
        QCOMPARE(H5Array(f, "/train/label").stringsAttribute("class_names"), names);
        QVERIFY(H5Array(f, "/train/label").stringsAttribute("missing").empty());
        QCOMPARE(H5Array(f, "/train/label").intAttribute("num_classes", 0), int64_t(3));
        writeStringsAttribute(f, "/train/label", "class_names", {"a", "b", "c"});  // replaced, not added
        QCOMPARE(H5Array(f, "/train/label").stringsAttribute("class_names"), (std::vector<std::string>{"a", "b", "c"}));
        const std::string py = GW_SOURCE_DIR "/tests/data/lzf-labels.h5";  // h5py: fixed-length on train, str on val
        QCOMPARE(H5Array(py, "/train/vec").stringsAttribute("class_names"), (std::vector<std::string>{"zero", "one"}));
        QCOMPARE(H5Array(py, "/val/vec").stringsAttribute("class_names"), (std::vector<std::string>{"zero", "one"}));
        QVERIFY(errorOf([&] { writeStringsAttribute(f, "/nope", "x", {"y"}); }).contains("c.h5:/nope: cannot write the attribute x"));
    }

    void samplerIsDeterministicAndResumable() {
        std::vector<int64_t> idx(100);
        std::iota(idx.begin(), idx.end(), 0);
        GroupSampler a(idx, 100, 7), b(idx, 100, 7), c(idx, 100, 8);
        QCOMPARE(a.next(32), b.next(32));
        QVERIFY(a.next(32) != c.next(32));
        // State round trip mid-epoch: the copy draws what the original draws.
        GroupSampler d(idx, 100, 1);
        d.loadState(a.saveState());
        for (int i = 0; i < 10; ++i) QCOMPARE(d.next(32), a.next(32));
        GroupSampler other({1, 2}, 2, 1);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, other.loadState(a.saveState()));
    }

    void samplerEpochs() {
        // drop_last: an epoch of 100 gives three batches of 32, each sample at most once.
        std::vector<int64_t> idx(100);
        std::iota(idx.begin(), idx.end(), 0);
        GroupSampler s(idx, 100, 3);
        std::set<int64_t> seen;
        for (int i = 0; i < 3; ++i)
            for (auto v : s.next(32)) QVERIFY(seen.insert(v).second);
        QCOMPARE(s.epoch(), int64_t(1));
        s.next(32);
        QCOMPARE(s.epoch(), int64_t(2));
        // A small (paired) group repeats up to the largest group's size.
        GroupSampler small({5, 6, 7}, 100, 3);
        auto b = small.next(64);
        QCOMPARE(b.size(), size_t(64));
        for (auto v : b) QVERIFY(v >= 5 && v <= 7);
        // A batch larger than every group still fills.
        GroupSampler tiny({1, 2}, 2, 3);
        QCOMPARE(tiny.next(5).size(), size_t(5));
    }

    void pairedSubsetCounts() {
        auto p = pairedSubset(1000, 0.01, -1, 0);
        QCOMPARE(p.size(), size_t(10));
        QVERIFY(std::is_sorted(p.begin(), p.end()));
        QCOMPARE(std::set<int64_t>(p.begin(), p.end()).size(), size_t(10));
        QCOMPARE(pairedSubset(1000, 0.5, 3, 0).size(), size_t(3));  // a count wins over the fraction
        QCOMPARE(pairedSubset(1000, 0.01, -1, 0), p);
        QVERIFY(pairedSubset(1000, 0.01, -1, 1) != p);
        QCOMPARE(pairedSubset(7, 1.0, -1, 0).size(), size_t(7));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, pairedSubset(10, 0.5, 11, 0));
    }

    void importFashionMnistLayout() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        std::vector<uint8_t> img(12 * 28 * 28), lab(12), timg(4 * 28 * 28), tlab(4);
        for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i % 251);
        for (size_t i = 0; i < lab.size(); ++i) lab[i] = static_cast<uint8_t>(i % 10);
        for (size_t i = 0; i < tlab.size(); ++i) tlab[i] = static_cast<uint8_t>(9 - i);
        writeIdx(d + "/train-images-idx3-ubyte.gz", {12, 28, 28}, img);
        writeIdx(d + "/train-labels-idx1-ubyte.gz", {12}, lab);
        writeIdx(d + "/t10k-images-idx3-ubyte.gz", {4, 28, 28}, timg);
        writeIdx(d + "/t10k-labels-idx1-ubyte.gz", {4}, tlab);
        int calls = 0;
        importFashionMnist(d, d + "/out/fm.h5", 2, [&](int, int) { ++calls; });
        QCOMPARE(calls, 6);
        H5Array trainX(d + "/out/fm.h5", "/train/image"), valY(d + "/out/fm.h5", "/val/label"),
            testY(d + "/out/fm.h5", "/test/label");
        QCOMPARE(trainX.shape(), (std::vector<int64_t>{10, 28, 28}));
        QCOMPARE(int(trainX.dtype()), int(torch::kUInt8));
        QCOMPARE(trainX.readRows({1})[0][0][0].item<int>(), 28 * 28 % 251);
        QVERIFY(torch::equal(valY.readAll(), torch::tensor({0, 1}, torch::kInt64)));  // samples 10, 11
        QCOMPARE(testY.intAttribute("num_classes", 0), int64_t(10));
        QCOMPARE(testY.stringsAttribute("class_names").size(), size_t(10));
        QCOMPARE(testY.stringsAttribute("class_names").back(), std::string("Ankle boot"));
        QCOMPARE(testY.readAll()[0].item<int64_t>(), int64_t(9));
        QVERIFY(!QFile::exists(QString::fromStdString(d + "/out/fm.h5.partial")));
    }

    void importRejectsMalformedIdx() {
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        writeIdx(d + "/bad.gz", {4}, {1, 2, 3, 4}, 0x0D);  // float magic
        QVERIFY(errorOf([&] { readIdx(d + "/bad.gz"); }).contains("expected an IDX file of unsigned bytes"));
        writeIdx(d + "/short.gz", {10}, {1, 2, 3});
        QVERIFY(errorOf([&] { readIdx(d + "/short.gz"); }).contains("expected 10 data bytes, found 3"));
        // A missing source file: the output is not created.
        QVERIFY(errorOf([&] { importFashionMnist(d, d + "/fm.h5"); }).contains("cannot open"));
        QVERIFY(!QFile::exists(QString::fromStdString(d + "/fm.h5")));
    }

    void realFashionMnistWhenInstalled() {
        const std::string f = std::string(kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz";
        if (!QFile::exists(QString::fromStdString(f))) GW_SKIP_MISSING("dataset-fashion-mnist is not installed");
        auto labels = readIdx(f);
        QCOMPARE(labels.size(0), int64_t(10000));
        QCOMPARE(labels.max().item<int>(), 9);
        QCOMPARE(torch::bincount(labels.to(torch::kInt64)).min().item<int64_t>(), int64_t(1000));  // balanced
    }

    /// Installed without Recommends there is no /usr/share/datasets/fashion-mnist: the import's error
    /// names the missing file, the Debian package that provides it and the command that installs it.
    void importWithoutTheDatasetNamesItsPackage() {
        QTemporaryDir empty;
        const std::string d = empty.path().toStdString();
        const QString e = errorOf([&] { importFashionMnist(d, d + "/fm.h5"); });
        QVERIFY2(e.startsWith(QString::fromStdString(d + "/train-images-idx3-ubyte.gz: cannot open")), qPrintable(e));
        QVERIFY2(e.contains("Debian package dataset-fashion-mnist"), qPrintable(e));
        QVERIFY2(e.contains("sudo apt-get install dataset-fashion-mnist"), qPrintable(e));
        QVERIFY(!QFile::exists(QString::fromStdString(d + "/fm.h5")));
        // Only the first file there: the next missing one is named.
        std::vector<uint8_t> img(28 * 28);
        writeIdx(d + "/train-images-idx3-ubyte.gz", {1, 28, 28}, img);
        QVERIFY(errorOf([&] { importFashionMnist(d, d + "/fm.h5"); }).startsWith(QString::fromStdString(d + "/train-labels-idx1-ubyte.gz: cannot open")));
    }
};

QTEST_APPLESS_MAIN(TestData)
#include "tst_data.moc"
