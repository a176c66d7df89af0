// scribe/io/detail/post_processor.hpp — the special tokens a tokenizer puts around
// its input (tokenizer.json's "post_processor", what `add_special_tokens=True`
// adds): TemplateProcessing's "single" and "pair" lists (Llama's "<s> $A", BERT's
// "[CLS] $A [SEP] $B:1 [SEP]:1"), BertProcessing and RobertaProcessing, and a
// Sequence whose other steps are ByteLevel (offsets only). Read by the BPE
// tokenizer (io/tokenizer.hpp: BOS for the decoders) and the encoder tokenizer
// (io/encoder_tokenizer.hpp: templates with token types).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../core/error.hpp"

namespace scribe::io::detail {

// One item of a template: a special token's ids, or the first (0) or second (1)
// input's tokens; each with the type id its tokens get.
struct template_item {
    bool sequence = false;
    int input = 0;
    std::vector<std::int32_t> ids;
    std::int32_t type_id = 0;
};

struct templates {
    std::vector<template_item> single, pair;
};

// The templates of a post-processor, or none (null, ByteLevel alone). `path` names
// the file in errors; ids must lie below `vocab_size`.
inline std::optional<templates> read_post_processor(const nlohmann::json& p, const std::string& path, std::int64_t vocab_size) {
    if (p.is_null()) return std::nullopt;
    const auto type = p.is_object() && p.contains("type") && p["type"].is_string() ? p["type"].get<std::string>() : std::string("(no type)");
    if (type == "ByteLevel") return std::nullopt;
    if (type == "Sequence") {
        std::optional<templates> found;
        const auto it = p.find("processors");
        if (it == p.end() || !it->is_array()) throw error(path + ": the post-processor Sequence has no list of processors");
        for (const auto& q : *it) {
            auto t = read_post_processor(q, path, vocab_size);
            if (t && found) throw error(path + ": the post-processor Sequence has two templates");
            if (t) found = std::move(t);
        }
        return found;
    }
    auto token_pair = [&](const char* key) {
        const auto& v = p.at(key);
        if (!v.is_array() || v.size() != 2 || !v[0].is_string() || !v[1].is_number_integer())
            throw error(path + ": the post-processor's " + key + " must be [token, id]");
        const auto id = v[1].get<std::int64_t>();
        if (id < 0 || id >= vocab_size)
            throw error(path + ": the post-processor's " + key + " id " + std::to_string(id) + " is outside the vocabulary of " +
                        std::to_string(vocab_size));
        return static_cast<std::int32_t>(id);
    };
    templates t;
    if (type == "BertProcessing" || type == "RobertaProcessing") {
        if (!p.contains("cls") || !p.contains("sep")) throw error(path + ": the post-processor " + type + " has no cls or sep");
        const auto cls = token_pair("cls"), sep = token_pair("sep");
        const bool roberta = type == "RobertaProcessing";
        t.single = {{false, 0, {cls}, 0}, {true, 0, {}, 0}, {false, 0, {sep}, 0}};
        t.pair = t.single;
        const std::int32_t second = roberta ? 0 : 1;
        if (roberta) t.pair.push_back({false, 0, {sep}, 0});
        t.pair.push_back({true, 1, {}, second});
        t.pair.push_back({false, 0, {sep}, second});
        return t;
    }
    if (type != "TemplateProcessing")
        throw error(path + ": the post-processor " + type + " is not supported (TemplateProcessing, BertProcessing, RobertaProcessing, "
                    "ByteLevel and a Sequence of them are)");
    std::map<std::string, std::vector<std::int32_t>> specials;
    if (p.contains("special_tokens") && p["special_tokens"].is_object())
        for (const auto& [name, s] : p["special_tokens"].items()) {
            if (!s.is_object() || !s.contains("ids") || !s["ids"].is_array())
                throw error(path + ": the template's special token \"" + name + "\" has no ids");
            std::vector<std::int32_t> ids;
            for (const auto& id : s["ids"]) {
                if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() >= vocab_size)
                    throw error(path + ": the template's special token \"" + name + "\" has an id outside the vocabulary");
                ids.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
            }
            specials[name] = ids;
        }
    auto read = [&](const char* key) {
        std::vector<template_item> items;
        if (!p.contains(key) || !p[key].is_array()) throw error(path + ": the template has no \"" + key + "\" list");
        for (const auto& e : p[key]) {
            if (!e.is_object() || e.size() != 1) throw error(path + ": the template's " + key + " items must be objects of one entry");
            const auto kind = e.begin().key();
            const auto& v = e.begin().value();
            const auto type_id = v.is_object() && v.contains("type_id") && v["type_id"].is_number_unsigned()
                                     ? static_cast<std::int32_t>(std::min<std::uint64_t>(v["type_id"].get<std::uint64_t>(), 1 << 20))
                                     : 0;
            const auto id = v.is_object() && v.contains("id") && v["id"].is_string() ? v["id"].get<std::string>() : std::string();
            if (kind == "Sequence") {
                if (id != "A" && id != "B") throw error(path + ": the template's sequence \"" + id + "\" is neither A nor B");
                items.push_back({true, id == "A" ? 0 : 1, {}, type_id});
            } else if (kind == "SpecialToken") {
                const auto it = specials.find(id);
                if (it == specials.end()) throw error(path + ": the template's special token \"" + id + "\" is not in its special_tokens");
                items.push_back({false, 0, it->second, type_id});
            } else {
                throw error(path + ": the template's item " + kind + " is neither Sequence nor SpecialToken");
            }
        }
        return items;
    };
    t.single = read("single");
    t.pair = read("pair");
    return t;
}

}  // namespace scribe::io::detail
