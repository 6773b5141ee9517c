// SPDX-License-Identifier: GPL-3.0-or-later
// The data library: HDF5 arrays (dtypes, chunked and compressed, row reads, errors), the check of
// every HDF5 file in a child process before it is opened (data/h5_check.h), the semi-supervised
// sampler, the paired subset, and the Fashion-MNIST IDX importer.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QtTest/QtTest>

#include <H5Cpp.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <zlib.h>

#include <fstream>
#include <map>
#include <set>

#include "data/fashion_mnist.h"
#include "data/h5_array.h"
#include "data/h5_check.h"
#include "data/npy.h"
#include "data/tensorboard.h"
#include "data/sampler.h"
#include "fixtures.h"
#include "skip.h"

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

/// The `gw` that checks HDF5 files (data/h5_check.h), or a skip when it is not built.
#define REQUIRE_H5_CHECKER()                                                                      \
    do {                                                                                          \
        try {                                                                                     \
            (void)h5CheckExecutable();                                                            \
        } catch (const std::exception& e) {                                                       \
            GW_SKIP_MISSING(QString("gw is not built (cmake --build --preset release): ") + e.what()); \
        }                                                                                         \
    } while (false)

/// A script that stands in for `gw check-data` (tests of how the parent reads what the child did).
std::string fakeChecker(const QString& dir, const char* name, const char* body) {
    const QString path = dir + "/" + name;
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly)) return {};
    f.write(QByteArray("#!/bin/sh\n") + body + "\n");
    f.close();
    f.setPermissions(QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner);
    return path.toStdString();
}

/// Sets the environment variable for the lifetime of the object, then restores it.
struct ScopedEnv {
    QByteArray name, old;
    bool had;
    ScopedEnv(const char* n, const QString& value) : name(n), old(qgetenv(n)), had(qEnvironmentVariableIsSet(n)) {
        qputenv(n, value.toLocal8Bit());
    }
    ~ScopedEnv() { had ? (void)qputenv(name, old) : (void)qunsetenv(name); }
};
}  // namespace

class TestData : public QObject {
    Q_OBJECT
private Q_SLOTS:
    /// The public Simple Shapes sample dataset (tests/data/simple-shapes-sample, as `shapesd create` wrote
    /// it): numbers, NumPy text and pickled object arrays read as NumPy reads them. Every element is
    /// compared with NumPy's own reading (/usr/bin/python3), and a few values are stated here as NumPy
    /// printed them.
    void readsThePublicSampleDataset() {
        using namespace gw::data;
        const std::string root = GW_SOURCE_DIR "/tests/data/simple-shapes-sample/";
        const auto labels = readNpy(root + "train_labels.npy");
        QCOMPARE(labels.dtype, std::string("f4"));
        QVERIFY((labels.shape == std::vector<int64_t>{4, 12}));
        QCOMPARE(labels.number(3), 10.0);              // size of sample 0, px
        QCOMPARE(labels.number(11), double(0.8700872659683228f));
        const auto captions = readNpy(root + "train_captions.npy");
        QCOMPARE(captions.dtype, std::string("U"));
        QCOMPARE(captions.text.size(), size_t(4));
        QCOMPARE(QString::fromStdString(captions.text[0]),
                 QString("A small olive object pointing to the northeast, it is located at the middle left. It looks like a diamond."));
        const auto odd = readNpy(root + "train_odd_one_out_labels.npy");
        QCOMPARE(odd.integer(2), int64_t(2));
        const auto choices = readNpy(root + "train_caption_choices.npy");
        QCOMPARE(choices.dtype, std::string("O"));
        QCOMPARE(choices.objects.size(), size_t(4));
        const auto& c0 = *choices.objects[0];
        QCOMPARE(c0.get("structure")->i, int64_t(1));
        QCOMPARE(c0.get("groups")->items.size(), size_t(2));
        QCOMPARE(c0.get("groups")->items[0]->i, int64_t(1));
        QCOMPARE(c0.get("writers")->get("location")->get("in_the")->i, int64_t(1));
        QCOMPARE(c0.get("variants")->get("object")->i, int64_t(1));
        // A domain split: a 0-d object array holding {frozenset of domains: int64 indices}.
        const auto split = readNpy(root + "domain_splits_v2/train_t:1.0_t,v:0.5_v:1.0_seed:0_ms:4_domain_split.npy");
        QVERIFY(split.shape.empty());
        const auto& d = *split.objects.at(0);
        QCOMPARE(d.kind, PyValue::Kind::Dict);
        QCOMPARE(d.dict.size(), size_t(3));
        std::map<std::string, std::vector<int64_t>> groups;
        for (const auto& [k, v] : d.dict) {
            QCOMPARE(k->kind, PyValue::Kind::Set);
            std::vector<std::string> names;
            for (const auto& x : k->items) names.push_back(x->s);
            std::sort(names.begin(), names.end());
            std::string key;
            for (const auto& n : names) key += (key.empty() ? "" : ",") + n;
            QCOMPARE(v->kind, PyValue::Kind::Array);
            for (int64_t i = 0; i < v->array->size(); ++i) groups[key].push_back(v->array->integer(i));
        }
        QVERIFY((groups["t,v"] == std::vector<int64_t>{0, 1}));
        QVERIFY((groups["v"] == std::vector<int64_t>{0, 1, 2, 3}));

        // Every numeric and text file, element by element, against NumPy.
        if (!fixtures::pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no NumPy (install python3-torch, which brings it)");
        const auto py = fixtures::python(
            {"-c", "import numpy as np, glob, json, os\n"
                   "out = {}\n"
                   "for f in sorted(glob.glob('" + QString::fromStdString(root) + "*.npy')):\n"
                   "    a = np.load(f, allow_pickle=True)\n"
                   "    out[os.path.basename(f)] = [str(x) for x in a.reshape(-1)] if a.dtype.kind in 'UO' else a.reshape(-1).astype('float64').tolist()\n"
                   "print(json.dumps(out))\n"});
        QVERIFY2(py.code == 0, qPrintable(py.out));
        const auto ref = QJsonDocument::fromJson(py.out.toUtf8()).object();
        QVERIFY(ref.size() >= 20);
        for (auto it = ref.begin(); it != ref.end(); ++it) {
            const auto a = readNpy(root + it.key().toStdString());
            const auto want = it.value().toArray();
            QCOMPARE(a.size(), int64_t(want.size()));
            for (int64_t i = 0; i < a.size(); ++i) {
                if (a.dtype == "U") QCOMPARE(QString::fromStdString(a.text[size_t(i)]), want[int(i)].toString());
                else if (a.dtype != "O") QCOMPARE(a.number(i), want[int(i)].toDouble());
            }
        }
    }

    /// NpyRowReader: blocks of rows equal the same rows of the whole file (numbers and text); object
    /// arrays and rows outside the file are refused by name.
    void npyRowsByBlocks() {
        using namespace gw::data;
        const std::string root = GW_SOURCE_DIR "/tests/data/simple-shapes-sample/";
        const auto whole = readNpy(root + "train_latent.npy");
        NpyRowReader latent(root + "train_latent.npy");
        QCOMPARE(latent.shape(), (std::vector<int64_t>{4, 768}));
        QCOMPARE(latent.rowElements(), int64_t(768));
        QCOMPARE(latent.dtype(), std::string("f4"));
        const auto mid = latent.read(1, 2);
        QCOMPARE(mid.shape, (std::vector<int64_t>{2, 768}));
        QVERIFY(std::equal(mid.bytes.begin(), mid.bytes.end(), whole.bytes.begin() + 768 * 4));
        QCOMPARE(latent.read(3, 1).number(767), whole.number(4 * 768 - 1));
        const auto captions = readNpy(root + "train_captions.npy");
        NpyRowReader text(root + "train_captions.npy");
        const auto last = text.read(2, 2);
        QCOMPARE(last.text, (std::vector<std::string>{captions.text[2], captions.text[3]}));
        QVERIFY(fixtures::errorOf([&] { text.read(3, 2); }).contains("train_captions.npy: rows 3 to 5 are outside its 4 rows"));
        QVERIFY(fixtures::errorOf([&] { NpyRowReader(root + "train_caption_choices.npy"); })
                    .contains("train_caption_choices.npy: holds Python objects (dtype |O), which are read whole"));
    }

    /// Files the reader refuses, each named with what was expected and found.
    void npyRefusesWhatItCannotRead() {
        using namespace gw::data;
        QTemporaryDir dir;
        const std::string base = dir.path().toStdString();
        auto write = [&](const std::string& name, const std::string& header, const std::string& data) {
            std::string h = header;
            while ((10 + h.size() + 1) % 64) h += ' ';
            h += '\n';
            std::ofstream f(base + "/" + name, std::ios::binary);
            f << std::string("\x93NUMPY\x01\x00", 8) << char(h.size() & 0xFF) << char(h.size() >> 8) << h << data;
            return base + "/" + name;
        };
        auto err = [](const std::string& path) { return fixtures::errorOf([&] { readNpy(path); }); };
        QVERIFY(err(write("big.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')))
                    .contains("big-endian data ('>f4') is not read"));
        QVERIFY(err(write("c8.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')))
                    .contains("unsupported NumPy type '<c8'"));
        QVERIFY(err(write("short.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", std::string(16, '\0')))
                    .contains("expected 24 bytes of data, found 16"));
        QVERIFY(err(write("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0')))
                    .contains("Fortran-ordered data is not read"));
        // A pickled object array whose element is an arbitrary class: named, never run.
        const std::string evil = std::string("\x80\x03" "cos\nsystem\nq\x00" "X\x02\x00\x00\x00" "lsq\x01\x85q\x02Rq\x03.", 31);
        QVERIFY(err(write("evil.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", evil))
                    .contains("the pickle builds a 'os system' object, which is not read"));
        std::ofstream(base + "/text.npy") << "not numpy";
        QVERIFY(err(base + "/text.npy").contains("expected a NumPy .npy file"));
        QVERIFY(err(base + "/missing.npy").contains("missing.npy: cannot read the file (No such file or directory)"));
    }

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

    /// HDF5 1.10's own faults on damaged files (docs/fuzzing.md, inputs kept in tests/data/fuzz/): opened
    /// through the normal API, each is an error naming the file, and this process is still here to say
    /// so because HDF5 met the file in a child process first.
    void hdf5FaultsBecomeErrors_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QString>("dataset");
        QTest::addColumn<QString>("says");
        // A B-tree node of 0x5000000000058 bytes: HDF5 writes through the NULL that malloc answers.
        QTest::newRow("B-tree node of a huge size") << "h5-btree-node-huge-size.h5" << "/train/image" << "HDF5 crashed while reading it (SIGSEGV";
        // Reading rows of a contiguous dataset copies through a NULL buffer.
        QTest::newRow("contiguous read into NULL") << "h5-contiguous-read-null-buffer.h5" << "/train/vec" << "HDF5 crashed while reading it (SIGSEGV";
        // An attribute message smaller than its dataspace claims: HDF5 copies past the header (a read of
        // unrelated memory without the sanitizer), so the check reads the header itself.
        QTest::newRow("attribute message over-read") << "h5-attribute-message-overread.h5" << "/train/y"
                                                     << "the attribute message at byte 4608 holds 120 bytes";
    }
    void hdf5FaultsBecomeErrors() {
        QFETCH(QString, file);
        QFETCH(QString, dataset);
        QFETCH(QString, says);
        REQUIRE_H5_CHECKER();
        QTemporaryDir cache;
        ScopedEnv env("XDG_CACHE_HOME", cache.path());
        const std::string path = GW_SOURCE_DIR "/tests/data/fuzz/" + file.toStdString();
        QVERIFY(QFile::exists(QString::fromStdString(path)));
        const auto before = h5CheckCounts();
        const QString opened = errorOf([&] { H5Array(path, dataset.toStdString()); });
        QVERIFY2(opened.startsWith(QString::fromStdString(path) + ":"), qPrintable(opened));
        QVERIFY2(opened.contains(says), qPrintable(opened));
        QVERIFY2(opened.contains("check-data"), qPrintable(opened));
        qInfo("%s", qPrintable(opened));
        const QString listed = errorOf([&] { listDatasets(path); });
        QVERIFY2(listed.startsWith(QString::fromStdString(path) + ":") && listed.contains(says), qPrintable(listed));
        // exists() does not answer "no such dataset" for a file that crashes HDF5: it throws the same.
        const QString exists = errorOf([&] { H5Array::exists(path, dataset.toStdString()); });
        QVERIFY2(exists.contains(says), qPrintable(exists));
        // A damaged answer is never kept: each open asked a child again.
        QCOMPARE(h5CheckCounts().spawned - before.spawned, int64_t(3));
        QCOMPARE(QDir(cache.path() + "/gw-studio/h5-checks").entryList(QDir::Files).size(), 0);
    }

    /// A healthy file is checked once: the second open in this process asks no child (memory), nor does
    /// the next process (the cache folder, simulated by forgetting the memory).
    void healthyFileIsCheckedOnce() {
        REQUIRE_H5_CHECKER();
        QTemporaryDir dir, cache;
        ScopedEnv env("XDG_CACHE_HOME", cache.path());
        const std::string f = dir.path().toStdString() + "/ok.h5";
        writeDataset(f, "/train/x", torch::arange(40, torch::kInt64).reshape({10, 4}), 4, {{"num_classes", 4}});
        const auto c0 = h5CheckCounts();
        QCOMPARE(H5Array(f, "/train/x").rows(), int64_t(10));
        const auto c1 = h5CheckCounts();
        QCOMPARE(c1.spawned - c0.spawned, int64_t(1));
        QCOMPARE(H5Array(f, "/train/x").intAttribute("num_classes", 0), int64_t(4));
        QCOMPARE(listDatasets(f).size(), size_t(1));
        QVERIFY(H5Array::exists(f, "/train/x"));
        const auto c2 = h5CheckCounts();
        QCOMPARE(c2.spawned, c1.spawned);
        QVERIFY(c2.memoryHits > c1.memoryHits);
        const QStringList kept = QDir(cache.path() + "/gw-studio/h5-checks").entryList(QDir::Files);
        QCOMPARE(kept.size(), 1);
        forgetH5ChecksInMemory();
        QCOMPARE(H5Array(f, "/train/x").rows(), int64_t(10));
        const auto c3 = h5CheckCounts();
        QCOMPARE(c3.spawned, c1.spawned);
        QCOMPARE(c3.diskHits - c2.diskHits, int64_t(1));
        // An answer on disk that does not name this file state exactly is no answer.
        forgetH5ChecksInMemory();
        {
            QFile entry(cache.path() + "/gw-studio/h5-checks/" + kept.front());
            QVERIFY(entry.open(QIODevice::WriteOnly | QIODevice::Truncate));
            entry.write("gw-h5-check 1\nsomething else\nhealthy\n");
        }
        QCOMPARE(H5Array(f, "/train/x").rows(), int64_t(10));
        QCOMPARE(h5CheckCounts().spawned - c3.spawned, int64_t(1));
    }

    /// A file whose size, time or inode changed is checked again.
    void changedFileIsCheckedAgain() {
        REQUIRE_H5_CHECKER();
        QTemporaryDir dir, cache;
        ScopedEnv env("XDG_CACHE_HOME", cache.path());
        const std::string f = dir.path().toStdString() + "/c.h5";
        writeDataset(f, "/x", torch::zeros({8, 2}), 0);
        auto spawned = [] { return h5CheckCounts().spawned; };
        int64_t n = spawned();
        H5Array(f, "/x");
        QCOMPARE(spawned(), ++n);
        H5Array(f, "/x");
        QCOMPARE(spawned(), n);
        // Size: another dataset.
        writeDataset(f, "/y", torch::zeros({8, 2}), 0);
        H5Array(f, "/y");
        QCOMPARE(spawned(), ++n);
        // Time only: same bytes, another modification time.
        struct stat st{};
        QCOMPARE(::stat(f.c_str(), &st), 0);
        timespec times[2] = {st.st_atim, st.st_mtim};
        times[1].tv_sec -= 100;
        QCOMPARE(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
        H5Array(f, "/x");
        QCOMPARE(spawned(), ++n);
        // Inode only: a copy renamed over it, with the same size and time.
        const std::string copy = f + ".copy";
        QVERIFY(QFile::copy(QString::fromStdString(f), QString::fromStdString(copy)));
        QCOMPARE(::stat(f.c_str(), &st), 0);
        const timespec same[2] = {st.st_atim, st.st_mtim};
        QCOMPARE(::utimensat(AT_FDCWD, copy.c_str(), same, 0), 0);
        QCOMPARE(::rename(copy.c_str(), f.c_str()), 0);
        H5Array(f, "/x");
        QCOMPARE(spawned(), ++n);
        H5Array(f, "/y");
        QCOMPARE(spawned(), n);
    }

    /// The child's address-space limit holds: a dataset whose one row is 3 GiB (never written, so the
    /// file is small and HDF5 reads the fill value) cannot be read there, and is refused here unread.
    void childMemoryIsLimited() {
        REQUIRE_H5_CHECKER();
        QTemporaryDir dir, cache;
        ScopedEnv env("XDG_CACHE_HOME", cache.path());
        const std::string f = dir.path().toStdString() + "/huge-row.h5";
        {
            H5::H5File h5(f, H5F_ACC_TRUNC);
            const hsize_t dims[2] = {1, hsize_t(3) << 30};
            H5::DataSpace space(2, dims);
            h5.createDataSet("/x", H5::PredType::STD_U8LE, space);
        }
        QVERIFY(QFileInfo(QString::fromStdString(f)).size() < 100000);
        const QString e = errorOf([&] { H5Array(f, "/x"); });
        QVERIFY2(e.startsWith(QString::fromStdString(f) + ": reading it needed more than the 2048 MiB") && e.contains("while checking /x"),
                 qPrintable(e));
    }

    /// What the parent makes of a child that crashed, hung, ran out of memory, or is missing; a stand-in
    /// script plays the child. The file is never opened here (it is not even HDF5).
    void checkFailuresAreNamed() {
        QTemporaryDir dir, cache;
        ScopedEnv env("XDG_CACHE_HOME", cache.path());
        const std::string f = dir.path().toStdString() + "/data.h5";
        std::ofstream(f) << "anything";
        struct Restore {
            ~Restore() {
                setH5CheckExecutable("");
                setH5CheckTimeout(60);
            }
        } restore;
        const QString file = QString::fromStdString(f);
        setH5CheckExecutable(fakeChecker(dir.path(), "segv", "echo checking /train/image; kill -SEGV $$"));
        QString e = errorOf([&] { listDatasets(f); });
        QVERIFY2(e.startsWith(file + ": HDF5 crashed while reading it (SIGSEGV in a child process that checked it, `segv check-data`, "
                                           "while checking /train/image); the file is damaged and was not opened"), qPrintable(e));
        setH5CheckExecutable(fakeChecker(dir.path(), "abrt", "kill -ABRT $$"));
        e = errorOf([&] { H5Array(f, "/x"); });
        QVERIFY2(e.startsWith(file + ": HDF5 crashed while reading it (SIGABRT"), qPrintable(e));
        setH5CheckExecutable(fakeChecker(dir.path(), "oom", "echo out of memory >&2; exit 3"));
        e = errorOf([&] { H5Array(f, "/x"); });
        QVERIFY2(e.startsWith(file + ": reading it needed more than the 2048 MiB"), qPrintable(e));
        setH5CheckExecutable(fakeChecker(dir.path(), "refuse", "echo \"$2: not an HDF5 file\" >&2; exit 2"));
        e = errorOf([&] { H5Array(f, "/x"); });
        QCOMPARE(e, file + ": not an HDF5 file");
        QVERIFY(!H5Array::exists(f, "/x"));  // a plain refusal still reads as "not there"
        setH5CheckExecutable(fakeChecker(dir.path(), "hang", "exec sleep 30"));
        setH5CheckTimeout(1);
        QElapsedTimer clock;
        clock.start();
        e = errorOf([&] { H5Array(f, "/x"); });
        QVERIFY2(e.startsWith(file + ": HDF5 did not finish reading it within 1 s"), qPrintable(e));
        QVERIFY2(clock.elapsed() < 10000, qPrintable(QString::number(clock.elapsed())));
        setH5CheckExecutable(dir.path().toStdString() + "/no-such-gw");
        e = errorOf([&] { H5Array(f, "/x"); });
        QVERIFY2(e.startsWith(file + ": not opened: the `gw` executable") && e.contains("no-such-gw"), qPrintable(e));
        // Nothing of the above was kept as healthy.
        QCOMPARE(QDir(cache.path() + "/gw-studio/h5-checks").entryList(QDir::Files).size(), 0);
        // A child that ends while something it started still holds its output: the parent does not wait
        // for that; the answer (healthy) stands, and the reader then refuses the file itself.
        setH5CheckExecutable(fakeChecker(dir.path(), "background", "sleep 5 & exit 0"));
        setH5CheckTimeout(60);
        clock.restart();
        e = errorOf([&] { listDatasets(f); });
        QVERIFY2(clock.elapsed() < 4000, qPrintable(QString::number(clock.elapsed())));
        QCOMPARE(e, file + ": not an HDF5 file");
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
