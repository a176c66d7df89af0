// Encoders (BERT, RoBERTa, DistilBERT) against Hugging Face: tests/data/*-tiny-cls
// and bert-tiny-embed were made by scripts/reference/make_encoder_golden.py with
// transformers (golden.json: each input's ids and token types from the Hugging
// Face tokenizer, and the logits, the mean-pooled and the first token's last
// hidden state). Run alone, as one padded batch, over several buckets, and at
// tensor-parallel degrees 2 and 4 (ranks as threads), the CPU backend must give
// the same values within 1e-4.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "golden.hpp"
#include "scribe/models/bert.hpp"
#include "scribe/runtime/encoder.hpp"

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_encoders {

using namespace scribe;
using Catch::Matchers::Contains;
using scribe_test::data;
using scribe_test::max_diff;

namespace {

struct golden_input {
    runtime::encoder_input in;
    std::vector<float> logits, mean, first;
};

std::vector<golden_input> encoder_golden(const std::string& model) {
    std::ifstream f(data / model / "golden.json");
    const auto j = nlohmann::json::parse(f);
    std::vector<golden_input> out;
    auto floats = [](const nlohmann::json& a) {
        std::vector<float> v;
        for (const auto& x : a) v.push_back(std::stof(x.get<std::string>()));
        return v;
    };
    for (const auto& r : j["inputs"]) {
        golden_input g{{r["ids"].get<std::vector<std::int32_t>>(), r["token_types"].get<std::vector<std::int32_t>>()}, {}, floats(r["mean"]),
                       floats(r["cls"])};
        if (r.contains("logits")) g.logits = floats(r["logits"]);
        out.push_back(std::move(g));
    }
    return out;
}

template <class Family>
void check_encoder(const std::string& model, runtime::load_options o) {
    const auto cases = encoder_golden(model);
    runtime::encoder<Family> m(data / model, o);
    std::vector<runtime::encoder_input> all;
    for (const auto& c : cases) all.push_back(c.in);
    const auto together = m.encode(all);
    // Without the mean (classification): the last layer's query and all after its
    // attention run on each input's first token only.
    const auto firsts = m.encode(all, {.mean = false});
    REQUIRE(together.size() == cases.size());
    REQUIRE(firsts.size() == cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
        INFO(model << " input " << i << " (" << cases[i].in.ids.size() << " tokens), tp " << o.tp);
        const auto alone = m.encode({cases[i].in});
        const auto alone_first = m.encode({cases[i].in}, {.mean = false});
        for (const auto* e : {&together[i], &alone[0], &firsts[i], &alone_first[0]}) {
            if (e == &firsts[i] || e == &alone_first[0]) CHECK(e->mean.empty());
            else CHECK(max_diff(e->mean, cases[i].mean) < 1e-4);
            CHECK(max_diff(e->first, cases[i].first) < 1e-4);
            CHECK(e->logits.size() == cases[i].logits.size());
            if (!cases[i].logits.empty()) CHECK(max_diff(e->logits, cases[i].logits) < 1e-4);
            CHECK(e->bucket == m.bucket_for(static_cast<std::int64_t>(cases[i].in.ids.size())));
        }
    }
}

}  // namespace

TEST_CASE("encoders: BERT, RoBERTa and DistilBERT equal Hugging Face alone and in padded batches") {
    check_encoder<models::bert_family>("bert-tiny-cls", {.threads = 1});
    check_encoder<models::roberta_family>("roberta-tiny-cls", {.threads = 1});
    check_encoder<models::distilbert_family>("distilbert-tiny-cls", {.threads = 1});
    check_encoder<models::bert_family>("bert-tiny-embed", {.threads = 1});
}

TEST_CASE("encoders: several buckets in one call, and tensor parallelism at 2 and 4") {
    check_encoder<models::bert_family>("bert-tiny-cls", {.threads = 1, .buckets = {8, 16, 32, 48}});
    check_encoder<models::roberta_family>("roberta-tiny-cls", {.threads = 2, .buckets = {10, 48}, .tp = 2});
    check_encoder<models::distilbert_family>("distilbert-tiny-cls", {.threads = 2, .tp = 4});
    check_encoder<models::bert_family>("bert-tiny-embed", {.threads = 2, .buckets = {24, 48}, .tp = 4});
}

TEST_CASE("encoders: buckets default to 128 and 512 below the model's positions, and the positions") {
    runtime::encoder<models::bert_family> m(data / "bert-tiny-cls", {.threads = 1});
    CHECK(m.buckets() == std::vector<std::int64_t>{48});
    CHECK(m.has_classifier());
    CHECK(m.labels() == std::vector<std::string>{"not_paraphrase", "paraphrase", "unsure"});
    runtime::encoder<models::bert_family> e(data / "bert-tiny-embed", {.threads = 1, .buckets = {16, 48}});
    CHECK_FALSE(e.has_classifier());
    CHECK(e.bucket_for(1) == 16);
    CHECK(e.bucket_for(17) == 48);
    const auto out = e.encode({{.ids = {2, 40, 41, 3}}, {.ids = std::vector<std::int32_t>(20, 40)}});
    CHECK(out[0].bucket == 16);
    CHECK(out[1].bucket == 48);
    CHECK(out[0].logits.empty());
    CHECK(e.padded_tokens_run() == 16 + 48);
    CHECK(e.tokens_run() == 24);
}

TEST_CASE("encoders: the scores are the softmax of the logits, and bad inputs are refused by name") {
    runtime::encoder<models::bert_family> m(data / "bert-tiny-cls", {.threads = 1, .buckets = {16, 48}});
    const auto e = m.encode({{.ids = {2, 40, 41, 3}}})[0];
    double sum = 0;
    for (std::size_t i = 0; i < e.scores.size(); ++i) {
        sum += e.scores[i];
        CHECK(std::log(e.scores[i] / e.scores[0]) == Approx(e.logits[i] - e.logits[0]).margin(1e-5));
    }
    CHECK(sum == Approx(1.0));
    CHECK_THROWS_WITH(m.encode({}), Contains("no inputs"));
    CHECK_THROWS_WITH(m.encode({{.ids = {}}}), Contains("input 0 is empty"));
    CHECK_THROWS_WITH(m.encode({{.ids = {2, 3}}, {.ids = std::vector<std::int32_t>(49, 5)}}),
                      Contains("input 1 has 49 tokens but the model reads at most 48"));
    const auto V = static_cast<std::int32_t>(m.model_config().vocab_size);
    CHECK_THROWS_WITH(m.encode({{.ids = {2, V}}}),
                      Contains("token " + std::to_string(V) + ", outside the vocabulary of " + std::to_string(V)));
    CHECK_THROWS_WITH(m.encode({{.ids = {2, 3}, .token_types = {0, 2}}}), Contains("token type 2 but the model has 2"));
    CHECK_THROWS_WITH(m.encode({{.ids = {2, 3}, .token_types = {0}}}), Contains("1 token types for 2 tokens"));
    runtime::encoder<models::distilbert_family> d(data / "distilbert-tiny-cls", {.threads = 1});
    CHECK_THROWS_WITH(d.encode({{.ids = {2, 3}, .token_types = {0, 1}}}), Contains("no token types, only 0"));
}

TEST_CASE("encoders: configs Scribe does not run are refused, naming the field") {
    auto parse = [](nlohmann::json j) { return models::bert::config::parse(j, "config.json"); };
    const nlohmann::json base = {{"model_type", "bert"}, {"vocab_size", 100}, {"hidden_size", 8}, {"num_attention_heads", 2},
                                 {"num_hidden_layers", 1}, {"intermediate_size", 16}, {"max_position_embeddings", 32}};
    CHECK(parse(base).n_positions == 32);
    CHECK(parse(base).classifier == models::bert::config::head::none);
    auto with = [&](const char* k, nlohmann::json v) {
        auto j = base;
        j[k] = v;
        return j;
    };
    CHECK_THROWS_WITH(parse(with("position_embedding_type", "relative_key")),
                      Contains("position_embedding_type \"relative_key\" is not supported"));
    CHECK_THROWS_WITH(parse(with("is_decoder", true)), Contains("is_decoder = true is not supported"));
    CHECK_THROWS_WITH(parse(with("architectures", {"BertForQuestionAnswering"})),
                      Contains("architecture BertForQuestionAnswering is not supported"));
    CHECK_THROWS_WITH(parse(with("hidden_size", 9)), Contains("hidden_size 9 is not divisible by num_attention_heads 2"));
    CHECK_THROWS_WITH(parse(with("model_type", "gpt2")), Contains("the encoder loader reads"));
    auto cls = with("architectures", {"BertForSequenceClassification"});
    CHECK(parse(cls).labels == std::vector<std::string>{"LABEL_0", "LABEL_1"});
    cls["id2label"] = {{"0", "no"}, {"2", "yes"}};
    CHECK_THROWS_WITH(parse(cls), Contains("id2label key \"2\" must be a label id from 0 to 1"));
    cls["id2label"] = {{"0", "no"}, {"1", "yes"}};
    cls["num_labels"] = 3;
    CHECK_THROWS_WITH(parse(cls), Contains("num_labels 3 disagrees with id2label's 2 labels"));
    cls.erase("num_labels");
    cls["problem_type"] = "multi_label_classification";
    CHECK(parse(cls).problem_type == models::bert::config::problem::multi_label);
    auto roberta = with("model_type", "roberta");
    roberta["pad_token_id"] = 1;
    CHECK(parse(roberta).n_positions == 30);  // positions start at pad_token_id + 1
    roberta["max_position_embeddings"] = 2;
    CHECK_THROWS_WITH(parse(roberta), Contains("leaves no positions after pad_token_id 1"));
    CHECK_THROWS_WITH(runtime::encoder<models::bert_family>(data / "bert-tiny-cls", {.threads = 1, .tp = 3}),
                      Contains("tp degree 3 does not divide num_attention_heads (4)"));
}

}  // namespace test_encoders
