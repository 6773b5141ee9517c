// SPDX-License-Identifier: GPL-3.0-or-later
// The text domain: shimmer-ssd's byte-level BPE tokenizer restated (data/bpe_tokenizer.h) against an
// independent Python restatement (tests/python/bpe_reference.py) on the public sample's captions and on
// the generator's, round trips and errors; the `text` domain-module kind (model/domains/domain_text.cpp):
// shapes, errors, pre-training through the engine's `pretrain:` path to a stated caption accuracy.
#include <QtTest/QtTest>
#include <algorithm>
#include <fstream>
#include <cstring>
#include <torch/script.h>

#include "data/bpe_tokenizer.h"
#include "data/captions.h"
#include "data/h5_array.h"
#include "data/npy.h"
#include "data/shapes.h"
#include "data/simple_shapes.h"
#include "fixtures.h"
#include "skip.h"
#include "model/core/registry.h"
#include "model/domains/domain_module.h"
#include "model/core/process.h"
#include "model/experiment/config.h"
#include "model/gw/global_workspace.h"
#include "model/io/checkpoint.h"
#include "model/io/torch_file.h"
#include "model/run/engine.h"

using gw::data::BpeTokenizer;
using gw::data::TokenizerError;
namespace sh = gw::shapes;

namespace {
const std::string kSource = GW_SOURCE_DIR;

/// The captions of the public sample (tests/data/simple-shapes-sample/{split}_captions.npy).
std::vector<std::string> publicCaptions() {
    std::vector<std::string> out;
    for (const char* split : {"train", "val", "test"}) {
        auto a = gw::data::readNpy(kSource + "/tests/data/simple-shapes-sample/" + split + "_captions.npy");
        out.insert(out.end(), a.text.begin(), a.text.end());
    }
    return out;
}

/// Captions of the generator (data/captions.h) for `n` shapes drawn with `seed`.
std::vector<std::string> generatedCaptions(int n, uint64_t seed) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(sh::sampleCaption(sh::sampleShape(seed, 0, i), seed, 0, i).text);
    return out;
}

/// (B, 288) uint8 rows of fixed-length strings, as the engine reads `/{split}/t`.
torch::Tensor captionBytes(const std::vector<std::string>& captions) {
    auto t = torch::zeros({static_cast<int64_t>(captions.size()), sh::kCaptionBytes}, torch::kUInt8);
    for (size_t i = 0; i < captions.size(); ++i)
        std::memcpy(t[static_cast<int64_t>(i)].data_ptr<uint8_t>(), captions[i].data(), captions[i].size());
    return t;
}
}  // namespace

class TstText : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void tokenizerMatchesTheReference() {
        const auto& tok = BpeTokenizer::shimmerSsd();
        QCOMPARE(tok.vocabSize(), int64_t(822));  // shimmer-ssd's vocab_size
        QCOMPARE(tok.mergeCount(), int64_t(563));
        QCOMPARE(tok.padId(), int64_t(0));
        std::vector<std::string> caps = publicCaptions();
        QCOMPARE(caps.size(), size_t(8));
        const auto gen = generatedCaptions(300, 11);
        caps.insert(caps.end(), gen.begin(), gen.end());
        // Beyond the grammar: contractions, runs of spaces, digits, punctuation runs, '_', tabs, non-ASCII.
        caps.push_back("It's a big_shape's thing  with   spaces 42 x7 !!?\t. they'll've 'd");
        caps.push_back("  leading and trailing  ");
        caps.push_back("caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 ok");
        QTemporaryDir dir;
        const std::string file = dir.path().toStdString() + "/captions.txt";
        {
            std::ofstream f(file, std::ios::binary);
            for (const auto& c : caps) f << c << "\n";
        }
        const auto r = fixtures::python({QString::fromStdString(kSource + "/tests/python/bpe_reference.py"),
                                       QString::fromStdString(kSource + "/resources/tokenizer/vocab.json"),
                                       QString::fromStdString(kSource + "/resources/tokenizer/merges.txt"),
                                       QString::fromStdString(file)});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        const QStringList lines = r.out.trimmed().split('\n');
        QCOMPARE(lines.size(), static_cast<int>(caps.size()));
        for (size_t i = 0; i < caps.size(); ++i) {
            std::vector<int64_t> expected;
            for (const auto& w : lines[static_cast<int>(i)].split(' ', Qt::SkipEmptyParts)) expected.push_back(w.toLongLong());
            const auto ids = tok.tokenize(caps[i]);
            QVERIFY2(ids == expected, qPrintable(QString::fromStdString(caps[i]) + " -> " + lines[static_cast<int>(i)]));
        }
        // A known piece: " big" is one symbol ("Ġbig"), the sentence starts without a space.
        QCOMPARE(QString::fromStdString(tok.symbol(tok.tokenize(" big").at(0))), QString::fromUtf8("\xc4\xa0" "big"));
        QCOMPARE(tok.tokenize(" big").size(), size_t(1));
        const auto pieces = BpeTokenizer::pretokenize("A big shape.");
        QCOMPARE(pieces, (std::vector<std::string>{"A", " big", " shape", "."}));
    }

    void roundTripsAndPadding() {
        const auto& tok = BpeTokenizer::shimmerSsd();
        auto caps = publicCaptions();
        const auto gen = generatedCaptions(2000, 5);
        caps.insert(caps.end(), gen.begin(), gen.end());
        size_t longest = 0;
        for (const auto& c : caps) {
            const auto ids = tok.encode(c, 64);
            QCOMPARE(ids.size(), size_t(64));
            const size_t n = tok.tokenize(c).size();
            longest = std::max(longest, n);
            for (size_t k = n; k < ids.size(); ++k) QCOMPARE(ids[k], int64_t(0));
            QCOMPARE(QString::fromStdString(tok.decode(ids)), QString::fromStdString(c));
        }
        // The grammar's captions fit seq_length 64 with room (about 40 tokens at most).
        QVERIFY2(longest >= 20 && longest <= 56, qPrintable(QString::number(longest)));
        QCOMPARE(QString::fromStdString(tok.decode(tok.encode("caf\xc3\xa9 \xe2\x80\x94", 8))),
                 QString::fromUtf8("caf\xc3\xa9 \xe2\x80\x94"));
    }

    void tokenizerErrors() {
        const auto& tok = BpeTokenizer::shimmerSsd();
        QVERIFY(fixtures::errorOf([&] { tok.tokenize("bad \xff byte"); }).contains("not valid UTF-8 (byte 4"));
        QVERIFY(fixtures::errorOf([&] { tok.tokenize("overlong \xc0\xaf"); }).contains("not valid UTF-8"));
        const std::string words = "a b c d e f g h i j";
        const QString e = fixtures::errorOf([&] { tok.encode(words, 8); });
        const QString count = QString::number(tok.tokenize(words).size());
        QVERIFY2(tok.tokenize(words).size() >= 10 && e.contains("has " + count + " tokens, more than seq_length 8") &&
                     e.contains("'a b c d e f g h i j'"), qPrintable(e));
        QVERIFY(fixtures::errorOf([&] { tok.decode(std::vector<int64_t>{5, 900}); }).contains("outside the vocabulary"));
        QTemporaryDir dir;
        const std::string v = dir.path().toStdString() + "/vocab.json", m = dir.path().toStdString() + "/merges.txt";
        std::ofstream(v) << "{\"<pad>\": 0, \"a\": 1, \"b\": 2, \"ab\": 3}";
        std::ofstream(m) << "#version: 0.2\na b\na c\n";
        QString err = fixtures::errorOf([&] { BpeTokenizer::fromFiles(v, m); });
        QVERIFY2(err.contains("merges.txt:3: the symbol 'c' is not in") , qPrintable(err));
        std::ofstream(m) << "a b\n";
        const auto small = BpeTokenizer::fromFiles(v, m);
        QCOMPARE(small.tokenize("ab"), (std::vector<int64_t>{3}));
        QVERIFY(fixtures::errorOf([&] { small.tokenize("abc"); }).contains("the symbol 'c' is not in the vocabulary"));
        std::ofstream(v) << "{\"<pad>\": 0, \"a\": 1, \"b\" 2}";
        err = fixtures::errorOf([&] { BpeTokenizer::fromFiles(v, m); });
        QVERIFY2(err.contains("vocab.json: expected a JSON object") && err.contains("found no ':'"), qPrintable(err));
        std::ofstream(v) << "{\"a\": 0}";
        QVERIFY(fixtures::errorOf([&] { BpeTokenizer::fromFiles(v, m); }).contains("expected a '<pad>' symbol"));
        QVERIFY(fixtures::errorOf([&] { BpeTokenizer::fromFiles(v + "x", m); }).contains("vocab.jsonx: cannot open"));
    }

    /// z_every_step: the decoder GRU reads z beside every input token, in the teacher-forced loss and in
    /// greedy decoding alike; weights of the other layout are refused, naming the parameter.
    void zEveryStepDecoder() {
        torch::manual_seed(0);
        gw::DomainModuleSpec spec("text");
        spec.set("attributes_dataset", "").set("choices_dataset", "").set("latent_dim", 16).set("hidden_dim", 32);
        spec.set("z_every_step", "true").set("noise_std", "0");
        spec.inputDim = 288;
        auto m = gw::makeDomainModule(spec);
        torch::Tensor wih;
        for (const auto& p : m->named_parameters())
            if (p.key() == "decoder.weight_ih_l0") wih = p.value();
        QVERIFY(wih.defined());
        QCOMPARE(wih.sizes().vec(), (std::vector<int64_t>{3 * 32, 2 * 16}));  // token (or z) embedding, then z
        const auto x = m->prepare(captionBytes(generatedCaptions(6, 7)));
        torch::NoGradGuard ng;
        const auto z = m->encode(x);
        const auto before = m->decodeRaw(z);
        // The loss draws z = mu + sigma * eps: the same draw for both calls.
        auto tokenLoss = [&] {
            torch::manual_seed(3);
            return m->computeDomainLoss(x)->metrics.at("loss").item<double>();
        };
        const double loss = tokenLoss();
        QCOMPARE(tokenLoss(), loss);
        // Silence the columns that read z at every step: the greedy decoding and the loss both change.
        auto saved = wih.narrow(1, 16, 16).clone();
        wih.narrow(1, 16, 16).zero_();
        QVERIFY(!torch::equal(m->decodeRaw(z), before));
        QVERIFY2(std::abs(tokenLoss() - loss) > 1e-6, qPrintable(QString::number(loss)));
        wih.narrow(1, 16, 16).copy_(saved);
        QVERIFY(torch::equal(m->decodeRaw(z), before));
        QCOMPARE(tokenLoss(), loss);

        gw::DomainModuleSpec plainSpec = spec;
        plainSpec.set("z_every_step", "false");
        auto plain = gw::makeDomainModule(plainSpec);
        const QString e = fixtures::errorOf([&] { gw::loadModuleState(*m, gw::moduleState(*plain), "plain.pt"); });
        QVERIFY2(e.contains("plain.pt") && e.contains("decoder.weight_ih_l0"), qPrintable(e));
    }

    void moduleShapesAndErrors() {
        torch::manual_seed(0);
        gw::DomainModuleSpec spec("text");
        spec.set("attributes_dataset", "").set("choices_dataset", "").set("latent_dim", 16).set("hidden_dim", 32);
        spec.inputDim = 288;
        auto m = gw::makeDomainModule(spec);
        QCOMPARE(m->latentDim(), int64_t(16));
        QCOMPARE(QString::fromStdString(m->rendersAs()), QString("text"));
        const auto caps = generatedCaptions(5, 3);
        const auto x = m->prepare(captionBytes(caps));
        QCOMPARE(x.sizes().vec(), (std::vector<int64_t>{5, 64}));
        const auto& tok = BpeTokenizer::shimmerSsd();
        for (int i = 0; i < 5; ++i) {
            std::vector<int64_t> row(64);
            for (int k = 0; k < 64; ++k) row[static_cast<size_t>(k)] = x[i][k].item<int64_t>();
            QCOMPARE(QString::fromStdString(tok.decode(row)), QString::fromStdString(caps[static_cast<size_t>(i)]));
        }
        const auto z = m->encode(x);
        QCOMPARE(z.sizes().vec(), (std::vector<int64_t>{5, 16}));
        QVERIFY(torch::equal(z, m->encode(x)));  // the mean: deterministic
        const auto ids = m->decodeRaw(z);
        QCOMPARE(ids.sizes().vec(), (std::vector<int64_t>{5, 64}));
        QCOMPARE(ids.scalar_type(), torch::kInt64);
        auto out = m->computeDomainLoss(x);
        QVERIFY(out && out->metrics.contains("acc") && out->metrics.contains("kl_loss") && !out->metrics.contains("attr_attr"));
        const auto dm = m->dataMetrics(z, x);
        QVERIFY(dm.contains("caption_accuracy") && dm.contains("caption_exact") && !dm.contains("category_accuracy"));

        // A caption longer than seq_length, named with its row.
        gw::DomainModuleSpec shortSpec = spec;
        shortSpec.set("seq_length", 8);
        auto s = gw::makeDomainModule(shortSpec);
        QString e = fixtures::errorOf([&] { s->prepare(captionBytes({"a b", caps[0]})); });
        QVERIFY2(e.contains("caption 1 of the batch") && e.contains("more than seq_length 8"), qPrintable(e));
        // Unknown parameter, wrong embedding width, an encoder that does not exist.
        e = fixtures::errorOf([&] { gw::makeDomainModule(gw::DomainModuleSpec("text").set("vocab_size", 10)); });
        QVERIFY2(e.contains("vocab_size") && e.contains("unknown parameter"), qPrintable(e));
        gw::DomainModuleSpec emb("text");
        emb.set("encoder", "embeddings");
        emb.inputDim = 512;
        e = fixtures::errorOf([&] { gw::makeDomainModule(emb); });
        QVERIFY2(e.contains("expected sentence embeddings of 768 values per sample") && e.contains("found 512"), qPrintable(e));
        QVERIFY(!fixtures::errorOf([&] { gw::makeDomainModule(gw::DomainModuleSpec("text").set("encoder", "bert")); }).isEmpty());

        // The embeddings route: (B, 768) float then the captions' bytes (and here no heads).
        emb.inputDim = 768;
        emb.set("attributes_dataset", "").set("choices_dataset", "");
        auto me = gw::makeDomainModule(emb);
        const auto raw = torch::cat({torch::randn({5, 768}), captionBytes(caps).to(torch::kFloat32)}, 1);
        const auto xe = me->prepare(raw);
        QCOMPARE(xe.sizes().vec(), (std::vector<int64_t>{5, 768 + 64}));
        QCOMPARE(me->encode(xe).sizes().vec(), (std::vector<int64_t>{5, 64}));
        auto oe = me->computeDomainLoss(xe);
        QVERIFY(oe->metrics.contains("reconstruction_loss"));
        e = fixtures::errorOf([&] { me->prepare(torch::randn({5, 700})); });
        QVERIFY2(e.contains("expected sentence embeddings of shape (B, 768)"), qPrintable(e));
        // shimmer-ssd's parameter names, so its state dict maps onto the module.
        const auto names = me->named_parameters().keys();
        for (const char* k : {"projector.0.weight", "projector.4.bias", "q_mean.weight", "q_logvar.bias",
                              "projector_dec.4.weight", "embeddings.weight", "decoder.weight_ih_l0",
                              "decoder.weight_hh_l1", "decoder.bias_hh_l1", "text_head.weight"})
            QVERIFY2(std::find(names.begin(), names.end(), k) != names.end(), k);
    }

    /// `encoder: torchscript`: the token ids through the user's frozen sentence encoder; its output width
    /// sets the projector's; training moves the text module's own parameters, never the script's; a script
    /// that is missing or gives the wrong shape is named with the file.
    void torchscriptSentenceEncoder() {
        QTemporaryDir dir;
        const std::string file = dir.filePath("sentence.pt").toStdString();
        torch::manual_seed(0);
        {
            torch::jit::Module enc("SentenceEncoder");
            enc.register_parameter("table", torch::randn({822, 24}), false);
            enc.define("def forward(self, ids):\n    return torch.tanh(self.table[ids].mean(1))\n");
            enc.save(file);
        }
        gw::DomainModuleSpec spec("text");
        spec.set("encoder", "torchscript").set("encoder_script", file).set("attributes_dataset", "").set("choices_dataset", "");
        spec.set("latent_dim", 8).set("hidden_dim", 16);
        spec.inputDim = 288;
        auto m = gw::makeDomainModule(spec);
        QVERIFY2(m->describe().find("torchscript") != std::string::npos, m->describe().c_str());
        const auto caps = generatedCaptions(6, 5);
        const auto x = m->prepare(captionBytes(caps));
        QCOMPARE(m->encode(x).sizes().vec(), (std::vector<int64_t>{6, 8}));
        bool projectorReadsE = false;
        for (const auto& p : m->named_parameters())
            if (p.key() == "projector.0.weight") projectorReadsE = p.value().size(1) == 24;
        QVERIFY(projectorReadsE);
        for (const auto& p : m->named_parameters()) QVERIFY2(p.key().find("table") == std::string::npos, p.key().c_str());
        // One optimiser step moves the module but not the script's table.
        const auto before = torch::jit::load(file).attr("table").toTensor().clone();
        torch::optim::Adam opt(m->parameters(), 0.01);
        auto out = m->computeDomainLoss(x);
        out->loss.backward();
        opt.step();
        QVERIFY(torch::equal(before, torch::jit::load(file).attr("table").toTensor()));
        const auto z1 = m->encode(x);
        QVERIFY(z1.isfinite().all().item<bool>());
        // Errors: no script, a missing file, a script that returns (B, S, E), encoder_script with another encoder.
        QString e = fixtures::errorOf([&] { gw::makeDomainModule(gw::DomainModuleSpec("text").set("encoder", "torchscript")); });
        QVERIFY2(e.contains("needs encoder_script"), qPrintable(e));
        gw::DomainModuleSpec missing = spec;
        missing.set("encoder_script", dir.filePath("none.pt").toStdString());
        e = fixtures::errorOf([&] { gw::makeDomainModule(missing); });
        QVERIFY2(e.contains("none.pt") && e.contains("could not load it"), qPrintable(e));
        const std::string bad = dir.filePath("bad.pt").toStdString();
        {
            torch::jit::Module enc("PerToken");
            enc.register_parameter("table", torch::randn({822, 4}), false);
            enc.define("def forward(self, ids):\n    return self.table[ids]\n");
            enc.save(bad);
        }
        gw::DomainModuleSpec wrong = spec;
        wrong.set("encoder_script", bad);
        e = fixtures::errorOf([&] { gw::makeDomainModule(wrong); });
        QVERIFY2(e.contains("bad.pt") && e.contains("expected (2, E) float sentence embeddings, found [2, 64, 4] Float"), qPrintable(e));
        e = fixtures::errorOf([&] { gw::makeDomainModule(gw::DomainModuleSpec("text").set("encoder_script", file)); });
        QVERIFY2(e.contains("encoder_script is for encoder torchscript"), qPrintable(e));
    }

    void embeddingsRouteMatchesPython() {
        // One forward of the embeddings route (encode, greedy decode, the domain loss with its heads)
        // against tests/python/text_reference.py, shimmer-ssd's GRUTextDomainModule and TextDomainModule's
        // heads restated in PyTorch, on the same weights (loaded there with strict=True: the same names).
        if (!fixtures::pythonHasTorch()) GW_SKIP_MISSING("/usr/bin/python3 has no torch (install python3-torch)");
        torch::manual_seed(3);
        gw::DomainModuleSpec spec("text");
        spec.set("encoder", "embeddings").set("latent_dim", 16).set("hidden_dim", 32).set("noise_std", "0");
        spec.inputDim = 768;
        auto m = gw::makeDomainModule(spec);
        {
            torch::NoGradGuard ng;  // σ = exp(-40): z is the mean, so both sides compute the same loss
            for (auto& p : m->named_parameters()) {
                if (p.key() == "q_logvar.weight") p.value().zero_();
                if (p.key() == "q_logvar.bias") p.value().fill_(-80);
            }
        }
        const int B = 6;
        std::vector<std::string> caps;
        std::vector<torch::Tensor> attrs, choices;
        for (int i = 0; i < B; ++i) {
            const auto shape = sh::sampleShape(9, 0, i);
            const auto c = sh::sampleCaption(shape, 9, 0, i);
            caps.push_back(c.text);
            const auto a = sh::attributeVector(shape);
            attrs.push_back(torch::tensor(std::vector<float>(a.begin(), a.end())));
            std::vector<float> col(c.columns.begin(), c.columns.end());
            choices.push_back(torch::tensor(col));
        }
        const auto raw = torch::cat({torch::randn({B, 768}), captionBytes(caps).to(torch::kFloat32), torch::stack(attrs),
                                     torch::stack(choices)}, 1);
        const auto x = m->prepare(raw);
        QCOMPARE(x.size(1), int64_t(768 + 64 + 11 + 37));
        QTemporaryDir dir;
        const std::string d = dir.path().toStdString();
        {
            std::ofstream f(d + "/spec.json");
            f << "{\"latent\": 16, \"hidden\": 32, \"seq_length\": 64, \"vocab_size\": 822, \"embedding_dim\": 768, "
                 "\"reconstruction_coef\": 0.5, \"kl_coef\": 0.05, \"choices\": [";
            const auto& cols = sh::captionChoiceColumnInfo();
            for (int c = 0; c < sh::kCaptionCategoryColumns; ++c)
                f << (c ? ", " : "") << "[\"" << cols[static_cast<size_t>(c)].name << "\", " << cols[static_cast<size_t>(c)].categories << "]";
            f << "]}";
        }
        gw::writeStateDict(d + "/w.pt", gw::moduleState(*m));
        gw::OrderedMap<torch::Tensor> in;
        in.set("x", x);
        gw::writeStateDict(d + "/x.pt", in);
        const auto r = fixtures::python({QString::fromStdString(kSource + "/tests/python/text_reference.py"),
                                         QString::fromStdString(d + "/spec.json"), QString::fromStdString(d + "/w.pt"),
                                         QString::fromStdString(d + "/x.pt"), QString::fromStdString(d + "/r.pt")});
        QVERIFY2(r.code == 0, qPrintable(r.out));
        const auto ref = gw::readStateDict(d + "/r.pt").tensors;
        torch::NoGradGuard ng;
        const auto mean = m->encode(x);
        QVERIFY2(torch::allclose(mean.to(torch::kFloat64), ref.at("mean"), 1e-5, 1e-6), "encode");
        QVERIFY(torch::equal(m->decodeRaw(mean).to(torch::kFloat64), ref.at("tokens")));
        const auto out = m->computeDomainLoss(x);
        int compared = 0;
        for (const auto& [k, want] : ref) {
            if (k == "mean" || k == "tokens") continue;
            const auto* got = out->metrics.find(k);
            QVERIFY2(got, k.c_str());
            const double g = got->item<double>(), w = want.item<double>();
            QVERIFY2(std::abs(g - w) <= 1e-5 * std::max(1.0, std::abs(w)),
                     qPrintable(QString("%1: ours %2, reference %3").arg(QString::fromStdString(k)).arg(g, 0, 'g', 10).arg(w, 0, 'g', 10)));
            ++compared;
        }
        QCOMPARE(compared, 7 + sh::kCaptionCategoryColumns);
        QCOMPARE(out->loss.item<double>(), out->metrics.at("total_loss").item<double>());
    }

    void pretrainsOnGeneratedShapes() {
        // Pre-training through the experiment's `pretrain:` section (as gw pretrain), tokens route, with
        // the attribute and grammar heads, on 2,000 generated samples; then the caption accuracy of the
        // greedy decoding of the validation captions from their latent means.
        QTemporaryDir dir;
        const std::string root = dir.path().toStdString();
        gw::data::SimpleShapesOptions o;
        o.train = 2000;
        o.val = 200;
        o.test = 10;
        gw::data::generateSimpleShapes(root + "/ss.h5", o);
        std::ofstream(root + "/t.yaml") <<
            "name: t\nseed: 1\nthreads: 2\n"
            "data: {file: ss.h5}\n"
            "domains:\n"
            "  t: {module: text, latent_dim: 32, hidden_dim: 64, weights: t.pt, coef_grammar: 0.05, kl_coef: 0.005,\n"
            "      noise_std: 0.1, pretrain: {steps: 600, batch_size: 64, lr: 0.005}}\n";
        gw::Engine e(gw::loadExperiment(root + "/t.yaml", {}));
        const auto report = e.pretrainDomains(false);
        for (const char* k : {"t/loss", "t/acc", "t/kl_loss", "t/attr_category", "t/attr_attr", "t/structure_ce",
                              "t/variant_start_ce", "t/total_loss"})
            QVERIFY2(report.contains(k), k);
        QVERIFY(!report.contains("t/reconstruction_loss"));  // the tokens route reconstructs no embedding

        // The weights, into a module of the same parameters; validation captions with their heads' data.
        gw::DomainModuleSpec spec("text");
        spec.set("latent_dim", 32).set("hidden_dim", 64);
        spec.inputDim = 288;
        auto m = gw::makeDomainModule(spec);
        gw::loadModuleState(*m, gw::loadCheckpoint(root + "/t.pt").state, "t.pt");
        m->eval();
        const auto t = gw::data::H5Array(root + "/ss.h5", "/val/t").readAll();
        QCOMPARE(t.sizes().vec(), (std::vector<int64_t>{200, 288}));
        const auto raw = torch::cat({t.to(torch::kFloat32), gw::data::H5Array(root + "/ss.h5", "/val/attr").readAll().to(torch::kFloat32),
                                     gw::data::H5Array(root + "/ss.h5", "/val/caption_choices").readAll().to(torch::kFloat32)}, 1);
        torch::NoGradGuard ng;
        const auto x = m->prepare(raw);
        auto untrained = gw::makeDomainModule(spec);
        untrained->eval();
        const auto dmBefore = untrained->dataMetrics(untrained->encode(x), x);
        const double before = dmBefore.at("caption_accuracy").item<double>();
        const double wordsBefore = dmBefore.at("caption_word_accuracy").item<double>();
        const auto dm = m->dataMetrics(m->encode(x), x);
        const auto& declared = gw::domainModuleRegistry().at("text", "tst_text").info.dataScores;
        for (const auto& [k, v] : dm)  // each name the module returns is declared by its kind
            QVERIFY2(std::find(declared.begin(), declared.end(), k) != declared.end(), k.c_str());
        QCOMPARE(dm.size(), declared.size());
        const double acc = dm.at("caption_accuracy").item<double>();
        const double teacherForced = report.at("t/acc");
        const double category = dm.at("category_accuracy").item<double>();
        const double words = dm.at("caption_word_accuracy").item<double>();
        qInfo("after 600 steps: caption_accuracy %.3f (greedy, from the mean), caption_word_accuracy %.3f (untrained %.3f), "
              "acc %.3f (teacher forced, noisy z), attr_category %.3f, category_accuracy %.3f (attribute head on the mean), "
              "loss %.3f", acc, words, wordsBefore, teacherForced, report.at("t/attr_category"), category, report.at("t/loss"));
        // The latent carries the caption's shape: the attribute head leaves chance (ln 3 = 1.099, 1/3). Before
        // the tokens route's sentence vector held the mean token embedding (and with shimmer-ssd's final
        // ReLU and summed KL), it stayed at 1.098 after 2,000 steps of the experiment.
        QVERIFY2(category > 0.6, qPrintable(QString::number(category)));
        QVERIFY2(report.at("t/attr_category") < 0.8, qPrintable(QString::number(report.at("t/attr_category"))));
        // Measured on this set (seed 1, 2 threads): caption_accuracy 0.070 (untrained about 0.00), acc 0.458,
        // token loss 0.944 (ln 822 = 6.7 at the start). Greedy decoding from the mean is far harder than
        // the teacher-forced accuracy: one wrong token shifts the rest of the caption.
        QVERIFY2(before < 0.02, qPrintable(QString::number(before)));
        // By words (a longest common word sequence over the longer caption): 0.360 measured (untrained 0.000,
        // 2026-12-07, load 9): the decoder gets a third of the words, in order, though few at their place.
        QVERIFY2(wordsBefore < 0.05, qPrintable(QString::number(wordsBefore)));
        QVERIFY2(words > 0.25 && words > acc, qPrintable(QString::number(words)));
        QVERIFY2(acc > 0.04, qPrintable(QString::number(acc)));
        QVERIFY2(teacherForced > 0.35, qPrintable(QString::number(teacherForced)));
        QVERIFY2(report.at("t/loss") < 2.0, qPrintable(QString::number(report.at("t/loss"))));
        // The module's classes are the attribute vector's (the explorer colours by them).
        QCOMPARE(m->classCount(), int64_t(3));
        QVERIFY(torch::equal(m->classesOf(x), raw.narrow(1, 288, 3).argmax(1)));
    }
};

// As gw's main: OpenMP's idle threads sleep (spinning ones starve OpenBLAS's pool, and the GRUs make many
// small matrix products: pre-training here ran 6 times slower without it) and the allocator keeps memory.
int main(int argc, char** argv) {
    gw::ensurePassiveOpenMP(argv);
    gw::tuneAllocator();
    QCoreApplication app(argc, argv);
    TstText t;
    return QTest::qExec(&t, argc, argv);
}
#include "tst_text.moc"
