// SPDX-License-Identifier: GPL-3.0-or-later
// The `text` domain module: shimmer-ssd's text VAE for Simple Shapes captions (SSD
// `shimmer_ssd/modules/domains/text.py`, class GRUTextDomainModule, with the auxiliary heads of its
// TextDomainModule; docs/experiment-format.md "The text domain module").
//
// Three encoders (`encoder`):
// - `tokens` (the default, ours): the caption strings as stored (`/{split}/t`, fixed-length UTF-8,
//   read as (B, 288) uint8) are tokenised by shimmer-ssd's byte-level BPE (data/bpe_tokenizer.h) into
//   (B, S) ids, embedded (`token_embeddings`, V × H) and read by a one-layer GRU (`sentence_encoder`,
//   H → H); its output at the caption's last token beside the mean of the caption's token embeddings is
//   the sentence vector (B, 2H).
// - `torchscript`: the token ids through the user's frozen TorchScript sentence encoder
//   (`encoder_script`, (B, S) int64 -> (B, E) float).
// - `embeddings`: a precomputed sentence embedding (B, 768) float (the public dataset's BERT vectors);
//   the module is then GRUTextDomainModule with its parameter names, so a shimmer-ssd state dict maps
//   onto it. Its token targets come from `tokens_dataset` (the captions) of the same samples.
// Then shimmer-ssd's `projector` (Linear(E→H) ReLU Linear(H→H) ReLU Linear(H→L) ReLU), `q_mean` and
// `q_logvar` (Linear(L→L)); the tokens and torchscript routes drop the projector's final ReLU.
// Decoder: `embeddings` (V × L), a 2-layer GRU `decoder` (L → H) and `text_head` (Linear(H→V)): greedy for seq_length steps from the latent (GRUTextDomainModule.decode),
// teacher-forced for the loss (text_token_loss). With `z_every_step` (ours; off, as shimmer-ssd) the
// GRU reads z beside every input token (input width 2L), not only as its first input: the decoder then
// learns to read the latent, which on our captions it otherwise does not (docs/results.md). The
// embeddings route also reconstructs the embedding
// (`projector_dec`: Linear(L→H) ReLU Linear(H→H) ReLU Linear(H→768)).
//
// Domain loss (GRUTextDomainModule.generic_step): z = μ + σ·ε, the token cross-entropy (mean over every
// position, padding included) on z + N(0, noise_std²), plus kl_coef · KL (a sum; per sample for the
// tokens and torchscript routes) and, for the embeddings route, reconstruction_coef · Σ gaussian_nll(projector_dec(z), log σ = 0, embedding). Plus the heads of
// TextDomainModule on μ: `attribute_cls` → `attribute_cls_cat` (3 classes, cross-entropy) and
// `attribute_cls_attr` (8 values, tanh, squared error), `grammar_cls` → one `grammar_heads.NAME` per
// public caption-choice category (cross-entropy); each a sum over the batch divided by B (TextDomainModule
// sums; divided here so that these heads weigh like the token loss, whatever B), times coef_attributes or
// coef_grammar. Their targets are the same samples' `attributes_dataset` and `choices_dataset`, read by
// the engine beside the captions (model/domains/auxiliary_data.h). The GW compares latents by MSE.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include <torch/script.h>

#include "data/bpe_tokenizer.h"
#include "data/captions.h"
#include "model/core/registry.h"
#include "model/domains/auxiliary_data.h"
#include "model/domains/domain_module.h"

namespace gw {
namespace {

namespace F = torch::nn::functional;
constexpr int64_t kAttrWidth = 11, kAttrClasses = 3, kAttrValues = 8;

struct TextOptions {
    bool embeddingsRoute = false;
    std::string encoderScript;  ///< encoder torchscript: the sentence encoder's file (else empty)
    int64_t latent = 64, hidden = 256, seqLength = 64, embeddingDim = 768;
    double reconstructionCoef = 0.5, klCoef = 0.05, noiseStd = 0.5, coefAttributes = 1, coefGrammar = 1;
    bool zEveryStep = false;  ///< the decoder reads the latent beside every input (`z_every_step`)
    std::string tokensDataset, attributesDataset, choicesDataset;
};

torch::nn::Sequential mlp3(int64_t in, int64_t hidden, int64_t out, bool lastRelu) {
    using namespace torch::nn;
    Sequential s(Linear(in, hidden), ReLU(), Linear(hidden, hidden), ReLU(), Linear(hidden, out));
    if (lastRelu) s->push_back(ReLU());
    return s;
}

class TextDomain : public DomainModule, public AuxiliaryData {
public:
    TextDomain(TextOptions o, const data::BpeTokenizer& tok)
        : DomainModule("text", o.latent), o_(std::move(o)), tok_(tok) {
        using namespace torch::nn;
        const int64_t V = tok_.vocabSize(), H = o_.hidden, L = o_.latent;
        int64_t encoderOut = o_.embeddingDim;
        if (!o_.encoderScript.empty()) {
            encoderOut = loadSentenceEncoder();
        } else if (!o_.embeddingsRoute) {
            tokenEmbeddings_ = register_module("token_embeddings", Embedding(V, H));
            sentenceEncoder_ = register_module("sentence_encoder", GRU(GRUOptions(H, H).num_layers(1).batch_first(true)));
            encoderOut = 2 * H;  // the GRU's last state beside the mean of the caption's token embeddings
        }
        projector_ = register_module("projector", mlp3(encoderOut, H, L, o_.embeddingsRoute));
        qMean_ = register_module("q_mean", Linear(L, L));
        qLogvar_ = register_module("q_logvar", Linear(L, L));
        if (o_.embeddingsRoute) projectorDec_ = register_module("projector_dec", mlp3(L, H, o_.embeddingDim, false));
        embeddings_ = register_module("embeddings", Embedding(V, L));
        decoder_ = register_module("decoder", GRU(GRUOptions(o_.zEveryStep ? 2 * L : L, H).num_layers(2).batch_first(true)));
        textHead_ = register_module("text_head", Linear(H, V));
        if (!o_.attributesDataset.empty()) {
            attributeCls_ = register_module("attribute_cls", Sequential(Linear(L, H), ReLU(), Linear(H, H), ReLU()));
            attributeClsCat_ = register_module("attribute_cls_cat", Linear(H, kAttrClasses));
            attributeClsAttr_ = register_module("attribute_cls_attr", Sequential(Linear(H, kAttrValues), Tanh()));
        }
        if (!o_.choicesDataset.empty()) {
            grammarCls_ = register_module("grammar_cls", Sequential(Linear(L, H), ReLU(), Linear(H, H), ReLU()));
            std::vector<std::pair<std::string, std::shared_ptr<Module>>> heads;
            const auto& cols = shapes::captionChoiceColumnInfo();
            for (int c = 0; c < shapes::kCaptionCategoryColumns; ++c) {
                grammarHeadList_.push_back(Linear(H, cols[static_cast<size_t>(c)].categories));
                heads.emplace_back(cols[static_cast<size_t>(c)].name, grammarHeadList_.back().ptr());
            }
            grammarHeads_ = register_module("grammar_heads", ModuleDict(heads));
        }
    }

    std::vector<std::string> auxiliaryDatasets() const override {
        std::vector<std::string> d;
        if (o_.embeddingsRoute) d.push_back(o_.tokensDataset);
        if (!o_.attributesDataset.empty()) d.push_back(o_.attributesDataset);
        if (!o_.choicesDataset.empty()) d.push_back(o_.choicesDataset);
        return d;
    }

    /// Raw (B, [768 +] bytes [+ 11] [+ 37]) as the engine hands it (auxiliary_data.h), or the captions
    /// alone (B, bytes) uint8 -> float32 (B, [768 +] S [+ 11] [+ 37]): the embedding, the token ids, the
    /// attribute vector, the choice columns.
    torch::Tensor prepare(const torch::Tensor& raw) const override {
        const int64_t aux = auxWidth(), emb = o_.embeddingsRoute ? o_.embeddingDim : 0;
        if (raw.dim() != 2 || raw.size(1) <= emb + aux)
            throw std::invalid_argument(layoutText() + ", found " + shapeString(raw));
        const int64_t B = raw.size(0), bytes = raw.size(1) - emb - aux;
        torch::Tensor r = raw.to(torch::kCPU);
        if (o_.embeddingsRoute && r.scalar_type() == torch::kUInt8)
            throw std::invalid_argument(layoutText() + ", found bytes (uint8) where the float embeddings belong");
        auto byteRows = r.narrow(1, emb, bytes).to(torch::kUInt8).contiguous();
        auto tokens = torch::empty({B, o_.seqLength}, torch::kInt64);
        const auto* src = byteRows.data_ptr<uint8_t>();
        auto* dst = tokens.data_ptr<int64_t>();
        for (int64_t b = 0; b < B; ++b) {
            const char* row = reinterpret_cast<const char*>(src + b * bytes);
            const std::string caption(row, strnlen(row, static_cast<size_t>(bytes)));
            std::vector<int64_t> ids;
            try {
                ids = tok_.encode(caption, o_.seqLength);
            } catch (const data::TokenizerError& e) {
                throw std::invalid_argument("text domain: caption " + std::to_string(b) + " of the batch: " + e.what());
            }
            std::memcpy(dst + b * o_.seqLength, ids.data(), ids.size() * sizeof(int64_t));
        }
        std::vector<torch::Tensor> parts;
        if (emb) parts.push_back(r.narrow(1, 0, emb).to(torch::kFloat32));
        parts.push_back(tokens.to(torch::kFloat32));
        if (aux) parts.push_back(r.narrow(1, emb + bytes, aux).to(torch::kFloat32));
        return torch::cat(parts, 1).to(raw.device()).contiguous();
    }

    torch::Tensor encode(const torch::Tensor& x) override { return posterior(x).first; }

    /// Latent (B, L) -> greedy token ids (B, seq_length) int64 (GRUTextDomainModule.decode).
    torch::Tensor decodeRaw(const torch::Tensor& z) override { return greedyLogits(z).argmax(-1); }
    /// The explorer's view of a latent: (B, S) greedy token ids as floats or, with the attribute heads,
    /// (B, 2, S): the token ids, then the attributes the heads read from the latent (3 class probabilities
    /// and 8 values in [-1, 1], the `attributes` layout; zeros after them). ui/cell_renderers.h TextRenderer.
    torch::Tensor display(const torch::Tensor& z) override {
        torch::NoGradGuard ng;
        const auto tokens = decodeRaw(z).to(torch::kFloat32);
        if (!showsAttributes()) return tokens;
        auto [logits, values] = readAttributes(z);
        auto attr = torch::cat({torch::softmax(logits, 1), values}, 1);
        return withAttributes(tokens, attr);
    }
    /// The sample's caption (B, S) or, with the attribute heads, (B, 2, S) with its true attributes.
    torch::Tensor displayInput(const torch::Tensor& x) override {
        const auto tokens = tokensOf(x).to(torch::kFloat32);
        if (!showsAttributes()) return tokens;
        return withAttributes(tokens, x.narrow(1, firstAuxColumn(), kAttrWidth).to(torch::kFloat32));
    }
    std::string rendersAs() const override { return "text"; }

    std::optional<LossOutput> computeDomainLoss(const torch::Tensor& x) override {
        auto [mean, logvar] = posterior(x);
        auto z = mean + torch::exp(0.5 * logvar) * torch::randn_like(mean);
        auto zText = z + torch::randn_like(z) * o_.noiseStd;
        const auto tokens = tokensOf(x);
        auto [tokenLoss, acc] = textTokenLoss(zText, tokens);
        // shimmer-ssd sums the KL over the batch, where the embedding's reconstruction (also a sum over the
        // batch) balances it; the tokens route has no such term, so its KL is per sample, like its losses.
        auto kl = klDivergenceLoss(mean, logvar);
        if (!o_.embeddingsRoute) kl = kl / static_cast<double>(x.size(0));
        auto total = tokenLoss + o_.klCoef * kl;
        TensorMap m;
        m.set("loss", tokenLoss.detach());
        m.set("acc", acc);
        m.set("kl_loss", kl.detach());
        if (o_.embeddingsRoute) {
            auto xHat = projectorDec_->forward(z);
            auto rec = gaussianNll(xHat, torch::zeros({}, xHat.options()), x.narrow(1, 0, o_.embeddingDim)).sum();
            total = total + o_.reconstructionCoef * rec;
            m.set("reconstruction_loss", rec.detach());
        }
        const double B = static_cast<double>(x.size(0));
        int64_t col = firstAuxColumn();
        if (!o_.attributesDataset.empty()) {
            auto [logits, predicted] = readAttributes(mean);
            const auto attr = x.narrow(1, col, kAttrWidth);
            auto cat = F::cross_entropy(logits, attr.narrow(1, 0, kAttrClasses).argmax(1),
                                        F::CrossEntropyFuncOptions().reduction(torch::kSum)) / B;
            auto values = F::mse_loss(predicted, attr.narrow(1, kAttrClasses, kAttrValues),
                                      F::MSELossFuncOptions().reduction(torch::kSum)) / B;
            total = total + o_.coefAttributes * (cat + values);
            m.set("attr_category", cat.detach());
            m.set("attr_attr", values.detach());
            col += kAttrWidth;
        }
        if (!o_.choicesDataset.empty()) {
            auto h = grammarCls_->forward(mean);
            const auto& cols = shapes::captionChoiceColumnInfo();
            for (int c = 0; c < shapes::kCaptionCategoryColumns; ++c) {
                const std::string name = cols[static_cast<size_t>(c)].name;
                auto target = x.select(1, col + c).to(torch::kInt64);
                auto ce = F::cross_entropy(grammarHeadList_[static_cast<size_t>(c)]->forward(h), target,
                                           F::CrossEntropyFuncOptions().reduction(torch::kSum)) / B;
                total = total + o_.coefGrammar * ce;
                m.set(name + "_ce", ce.detach());
            }
        }
        m.set("total_loss", total.detach());
        return LossOutput{total, m};
    }

    /// caption_accuracy: the greedy decoding's tokens against the sample's, over its non-padding
    /// positions; caption_exact: the share of captions decoded without a wrong token; caption_word_accuracy: the
    /// words of the two captions in a longest common word sequence, over the longer caption's word count,
    /// pooled over the batch (a word out of place costs that word, not the rest); with the attribute
    /// heads, category_accuracy: the attribute head's class on the latent against the sample's shape.
    TensorMap dataMetrics(const torch::Tensor& predLatent, const torch::Tensor& x) override {
        torch::NoGradGuard ng;
        const auto tokens = tokensOf(x);
        const auto pred = decodeRaw(predLatent);
        const auto real = tokens.ne(tok_.padId());
        const auto right = pred.eq(tokens).logical_and(real);
        TensorMap m;
        m.set("caption_accuracy", right.sum().to(torch::kFloat32) / real.sum().clamp_min(1).to(torch::kFloat32));
        m.set("caption_exact", right.eq(real).all(1).to(torch::kFloat32).mean());
        m.set("caption_word_accuracy", torch::tensor(captionWordScore(pred, tokens)));
        if (!o_.attributesDataset.empty()) {  // what the latent says of the shape, whatever the decoder makes of it
            m.set("category_accuracy", readAttributes(predLatent).first.argmax(1).eq(classesOf(x)).to(torch::kFloat32).mean());
        }
        return m;
    }

    int64_t classCount() const override { return o_.attributesDataset.empty() ? 0 : kAttrClasses; }
    torch::Tensor classesOf(const torch::Tensor& x) const override {
        return x.narrow(1, firstAuxColumn(), kAttrClasses).argmax(1);
    }
    bool needsPretraining() const override { return true; }
    std::string describe() const override {
        int64_t n = 0;
        for (const auto& p : parameters()) n += p.numel();
        return std::string("text (") + (o_.embeddingsRoute ? "embeddings" : script_ ? "torchscript" : "tokens") + "), latent " +
               std::to_string(latentDim()) + ", " + std::to_string(n) + " parameters";
    }

    /// The token ids (B, S) int64 of a prepared input.
    torch::Tensor tokensOf(const torch::Tensor& x) const {
        return x.narrow(1, o_.embeddingsRoute ? o_.embeddingDim : 0, o_.seqLength).to(torch::kInt64);
    }

private:
    /// Σ common words / Σ max(decoded words, sample's words) over the rows of (B, S) token ids (captionWords,
    /// commonWordCount of data/captions.h; the explorer's "words" score per caption). 1 for empty captions.
    double captionWordScore(const torch::Tensor& decoded, const torch::Tensor& tokens) const {
        const auto a = decoded.to(torch::kCPU, torch::kInt64).contiguous(), b = tokens.to(torch::kCPU, torch::kInt64).contiguous();
        const int64_t S = a.size(1);
        int64_t common = 0, longer = 0;
        for (int64_t r = 0; r < a.size(0); ++r) {
            const auto x = shapes::captionWords(tok_.decode(a.data_ptr<int64_t>() + r * S, static_cast<size_t>(S)));
            const auto y = shapes::captionWords(tok_.decode(b.data_ptr<int64_t>() + r * S, static_cast<size_t>(S)));
            common += shapes::commonWordCount(x, y);
            longer += static_cast<int64_t>(std::max(x.size(), y.size()));
        }
        return longer ? static_cast<double>(common) / static_cast<double>(longer) : 1.0;
    }
    /// The attribute heads on a latent (B, L): class logits (B, 3) and values (B, 8) in [-1, 1]
    /// (TextDomainModule.predict_attr).
    std::pair<torch::Tensor, torch::Tensor> readAttributes(const torch::Tensor& latent) {
        auto h = attributeCls_->forward(latent);
        return {attributeClsCat_->forward(h), attributeClsAttr_->forward(h)};
    }
    bool showsAttributes() const { return !o_.attributesDataset.empty() && o_.seqLength >= kAttrWidth; }
    /// (B, S) tokens and (B, 11) attributes -> (B, 2, S).
    static torch::Tensor withAttributes(const torch::Tensor& tokens, const torch::Tensor& attr) {
        auto second = torch::zeros_like(tokens);
        second.narrow(1, 0, kAttrWidth).copy_(attr.to(tokens.device()));
        return torch::stack({tokens, second}, 1);
    }
    int64_t auxWidth() const {
        return (o_.attributesDataset.empty() ? 0 : kAttrWidth) +
               (o_.choicesDataset.empty() ? 0 : shapes::kCaptionChoiceColumns);
    }
    int64_t firstAuxColumn() const { return (o_.embeddingsRoute ? o_.embeddingDim : 0) + o_.seqLength; }
    std::string layoutText() const {
        std::string s = "text domain (encoder: " + std::string(o_.embeddingsRoute ? "embeddings" : "tokens") +
                         "): expected ";
        if (o_.embeddingsRoute)
            s += "sentence embeddings of shape (B, " + std::to_string(o_.embeddingDim) + ") float, then the captions of " +
                 o_.tokensDataset;
        else
            s += "captions as fixed-length strings (B,), read as (B, bytes) uint8 (gw import simple-shapes: /{split}/t)";
        if (!o_.attributesDataset.empty()) s += ", then the attributes of " + o_.attributesDataset + " (11 values)";
        if (!o_.choicesDataset.empty())
            s += ", then the caption choices of " + o_.choicesDataset + " (" + std::to_string(shapes::kCaptionChoiceColumns) +
                 " columns)";
        return s;
    }

    std::pair<torch::Tensor, torch::Tensor> posterior(const torch::Tensor& x) {
        torch::Tensor features;
        if (o_.embeddingsRoute) {
            features = x.narrow(1, 0, o_.embeddingDim);
        } else if (script_) {
            features = scriptFeatures(tokensOf(x));
        } else {
            const auto tokens = tokensOf(x);
            const auto emb = tokenEmbeddings_->forward(tokens);                     // (B, S, H)
            auto out = std::get<0>(sentenceEncoder_->forward(emb));                  // (B, S, H)
            const auto real = tokens.ne(tok_.padId());                               // (B, S)
            const auto count = real.sum(1);                                          // (B,)
            auto last = (count - 1).clamp_min(0);
            auto lastState = out.gather(1, last.view({-1, 1, 1}).expand({-1, 1, out.size(2)})).squeeze(1);
            auto meanEmb = (emb * real.unsqueeze(-1).to(emb.dtype())).sum(1) / count.clamp_min(1).unsqueeze(1).to(emb.dtype());
            features = torch::cat({lastState, meanEmb}, 1);  // (B, 2H)
        }
        auto h = projector_->forward(features);
        return {qMean_->forward(h), qLogvar_->forward(h)};
    }

    /// Teacher-forced logits and the token cross-entropy (GRUTextDomainModule.text_token_loss): the
    /// decoder reads z, then the embeddings of tokens[:, :-1].
    /// With z_every_step, z also beside each of those inputs.
    std::pair<torch::Tensor, torch::Tensor> textTokenLoss(const torch::Tensor& z, const torch::Tensor& tokens) {
        auto seq = torch::cat({z.unsqueeze(1), embeddings_->forward(tokens.narrow(1, 0, o_.seqLength - 1))}, 1);
        auto logits = textHead_->forward(std::get<0>(decoder_->forward(decoderInput(seq, z))));  // (B, S, V)
        auto loss = F::cross_entropy(logits.transpose(1, 2), tokens);
        const auto real = tokens.ne(tok_.padId());
        auto right = logits.detach().argmax(-1).eq(tokens).logical_and(real);
        auto acc = right.sum().to(torch::kFloat32) / real.sum().clamp_min(1).to(torch::kFloat32);
        return {loss, acc};
    }

    /// Greedy decoding (B, S, V) logits: the decoder reads z, then each step's argmax token's embedding.
    torch::Tensor greedyLogits(const torch::Tensor& z) {
        torch::Tensor context = z.unsqueeze(1), hidden;
        std::vector<torch::Tensor> steps;
        for (int64_t s = 0; s < o_.seqLength; ++s) {
            auto [out, h] = decoder_->forward(decoderInput(context, z), hidden);
            hidden = h;
            auto logits = textHead_->forward(out);  // (B, 1, V)
            steps.push_back(logits);
            context = embeddings_->forward(logits.argmax(-1));
        }
        return torch::cat(steps, 1);
    }

    /// The decoder's inputs (B, T, L), with z_every_step as (B, T, 2L): each beside z (B, L).
    torch::Tensor decoderInput(const torch::Tensor& inputs, const torch::Tensor& z) const {
        if (!o_.zEveryStep) return inputs;
        return torch::cat({inputs, z.unsqueeze(1).expand({-1, inputs.size(1), -1})}, 2);
    }

    /// Loads `encoder_script` (frozen, eval mode) and returns the width E of what it gives for a probe
    /// batch of token ids. \throws std::invalid_argument naming the file: unreadable, or not (B, S) int64
    /// -> (B, E) float.
    int64_t loadSentenceEncoder() {
        const std::string where = "domain module 'text': encoder_script " + o_.encoderScript;
        try {
            script_ = std::make_shared<torch::jit::Module>(torch::jit::load(o_.encoderScript));
        } catch (const std::exception& e) {
            throw std::invalid_argument(where + ": expected a TorchScript module (torch.jit.save), could not load it: " +
                                        firstLine(e.what()));
        }
        script_->eval();
        for (auto p : script_->parameters()) p.set_requires_grad(false);
        torch::Tensor probe;
        try {
            probe = scriptFeatures(torch::full({2, o_.seqLength}, tok_.padId(), torch::kInt64));
        } catch (const std::invalid_argument&) {
            throw;
        } catch (const std::exception& e) {
            throw std::invalid_argument(where + ": forward(token ids (2, " + std::to_string(o_.seqLength) +
                                        ") int64) failed: " + firstLine(e.what()));
        }
        return probe.size(1);
    }

    /// The frozen sentence encoder on (B, S) int64 token ids -> (B, E) float32, without gradients.
    torch::Tensor scriptFeatures(const torch::Tensor& tokens) {
        torch::NoGradGuard ng;
        if (scriptDevice_ != tokens.device()) {
            script_->to(tokens.device());
            scriptDevice_ = tokens.device();
        }
        const torch::IValue out = script_->forward({tokens});
        if (!out.isTensor())
            throw std::invalid_argument("domain module 'text': encoder_script " + o_.encoderScript +
                                        ": expected forward to return a tensor (B, E), found " + out.tagKind());
        auto t = out.toTensor();
        if (t.dim() != 2 || t.size(0) != tokens.size(0) || !t.is_floating_point())
            throw std::invalid_argument("domain module 'text': encoder_script " + o_.encoderScript + ": expected (" +
                                        std::to_string(tokens.size(0)) + ", E) float sentence embeddings, found " + shapeString(t) +
                                        " " + std::string(c10::toString(t.scalar_type())));
        return t.to(torch::kFloat32);
    }
    static std::string firstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

    TextOptions o_;
    std::shared_ptr<torch::jit::Module> script_;  ///< encoder torchscript: the frozen sentence encoder
    torch::Device scriptDevice_{torch::kCPU};
    const data::BpeTokenizer& tok_;
    torch::nn::Embedding tokenEmbeddings_{nullptr}, embeddings_{nullptr};
    torch::nn::GRU sentenceEncoder_{nullptr}, decoder_{nullptr};
    torch::nn::Sequential projector_{nullptr}, projectorDec_{nullptr}, attributeCls_{nullptr}, attributeClsAttr_{nullptr},
        grammarCls_{nullptr};
    torch::nn::Linear qMean_{nullptr}, qLogvar_{nullptr}, textHead_{nullptr}, attributeClsCat_{nullptr};
    torch::nn::ModuleDict grammarHeads_{nullptr};
    std::vector<torch::nn::Linear> grammarHeadList_;  // grammarHeads_'s modules, in column order
};

/// Tokenizers read from files, kept for the life of the program (modules hold a reference).
const data::BpeTokenizer& tokenizerFor(const std::string& vocab, const std::string& merges) {
    if (vocab.empty() && merges.empty()) return data::BpeTokenizer::shimmerSsd();
    if (vocab.empty() || merges.empty())
        throw std::invalid_argument("domain module 'text': vocab and merges name a tokenizer together; found only " +
                                    std::string(vocab.empty() ? "merges" : "vocab"));
    static std::mutex mutex;
    static std::map<std::pair<std::string, std::string>, std::unique_ptr<data::BpeTokenizer>> loaded;
    std::lock_guard<std::mutex> lock(mutex);
    auto& t = loaded[{vocab, merges}];
    if (!t) {
        try {
            t = std::make_unique<data::BpeTokenizer>(data::BpeTokenizer::fromFiles(vocab, merges));
        } catch (...) {
            loaded.erase({vocab, merges});
            throw;
        }
    }
    return *t;
}

}  // namespace

void registerTextModule(DomainModuleRegistry& r) {
    using T = ParamInfo::Type;
    ParamInfo encoder{"encoder", T::Text, "tokens", 0, false, "", "tokens: the caption strings, tokenised, through an "
                      "embedding and a GRU; embeddings: precomputed sentence embeddings (B, 768), shimmer-ssd's GRUTextDomainModule; "
                      "torchscript: the token ids through your frozen sentence encoder (encoder_script)"};
    encoder.choices = {"tokens", "embeddings", "torchscript"};
    r.add({"text",
           "Simple Shapes captions: tokenised (byte-level BPE), VAE with a GRU decoder and attribute and grammar heads "
           "(shimmer-ssd's GRUTextDomainModule)",
           {encoder,
            {"latent_dim", T::Int, "64", 1, false, "", "latent size"},
            {"hidden_dim", T::Int, "256", 1, false, "", "hidden width (projector, GRUs, heads)"},
            {"seq_length", T::Int, "64", 2, false, "tokens", "captions are padded to this many tokens; a longer one is an error"},
            {"embedding_dim", T::Int, "768", 1, false, "", "encoder embeddings: width of the sentence embeddings"},
            {"tokens_dataset", T::Text, "/{split}/t", 0, false, "", "encoder embeddings: the captions of the same samples (the token targets)"},
            {"attributes_dataset", T::Text, "/{split}/attr", 0, false, "", "attribute vectors (B, 11) for the attribute heads; empty: no heads"},
            {"choices_dataset", T::Text, "/{split}/caption_choices", 0, false, "", "caption choices (B, 37) for the grammar heads; empty: no heads"},
            {"reconstruction_coef", T::Real, "0.5", 0, false, "", "encoder embeddings: weight of the embedding's Gaussian NLL"},
            {"kl_coef", T::Real, "0.05", 0, false, "", "weight of the KL term"},
            {"noise_std", T::Real, "0.5", 0, false, "", "standard deviation of the noise added to z for the token loss"},
            {"coef_attributes", T::Real, "1", 0, false, "", "weight of the attribute heads' losses"},
            {"coef_grammar", T::Real, "1", 0, false, "", "weight of the grammar heads' losses"},
            {"z_every_step", T::Bool, "false", 0, false, "", "the decoder GRU reads the latent beside every input token "
             "(input width 2 latent_dim); false: only as its first input, as shimmer-ssd"},
            {"encoder_script", T::Path, "", 0, false, "", "encoder torchscript: a TorchScript sentence encoder, token ids (B, seq_length) int64 -> (B, E) float, kept frozen"},
            {"vocab", T::Path, "", 0, false, "", "a tokenizer's vocab.json (with merges; empty: shimmer-ssd's, built in)"},
            {"merges", T::Path, "", 0, false, "", "a tokenizer's merges.txt (with vocab)"}},
           {"caption_accuracy", "caption_exact", "caption_word_accuracy", "category_accuracy"}},  // dataMetrics' names
          [](const DomainModuleSpec& s, const Params& p) -> std::shared_ptr<DomainModule> {
              TextOptions o;
              o.embeddingsRoute = p.text("encoder") == "embeddings";
              if (p.text("encoder") == "torchscript") {
                  o.encoderScript = p.text("encoder_script");
                  if (o.encoderScript.empty())
                      throw std::invalid_argument("domain module 'text': encoder torchscript needs encoder_script (a TorchScript "
                                                  "sentence encoder file), found it empty");
              } else if (!p.text("encoder_script").empty()) {
                  throw std::invalid_argument("domain module 'text': encoder_script is for encoder torchscript, found encoder " +
                                              p.text("encoder"));
              }
              o.latent = p.integer("latent_dim");
              o.hidden = p.integer("hidden_dim");
              o.seqLength = p.integer("seq_length");
              o.embeddingDim = p.integer("embedding_dim");
              o.tokensDataset = p.text("tokens_dataset");
              o.attributesDataset = p.text("attributes_dataset");
              o.choicesDataset = p.text("choices_dataset");
              o.reconstructionCoef = p.real("reconstruction_coef");
              o.klCoef = p.real("kl_coef");
              o.noiseStd = p.real("noise_std");
              o.coefAttributes = p.real("coef_attributes");
              o.coefGrammar = p.real("coef_grammar");
              o.zEveryStep = p.flag("z_every_step");
              if (o.embeddingsRoute && o.tokensDataset.empty())
                  throw std::invalid_argument("domain module 'text': encoder embeddings needs tokens_dataset (the captions "
                                              "that are its token targets), found it empty");
              if (o.embeddingsRoute && s.inputDim != 0 && s.inputDim != o.embeddingDim)
                  throw std::invalid_argument("domain module 'text': encoder embeddings: expected sentence embeddings of " +
                                              std::to_string(o.embeddingDim) + " values per sample (embedding_dim), found " +
                                              std::to_string(s.inputDim));
              return std::make_shared<TextDomain>(o, tokenizerFor(p.text("vocab"), p.text("merges")));
          });
}

}  // namespace gw
