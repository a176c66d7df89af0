// scribe/runtime/speculative.hpp — speculative decoding (Leviathan et al. 2023,
// Chen et al. 2023) for one sequence: a small draft model proposes k tokens one
// at a time, the target scores all of them in one verify step (decode over k + 1
// tokens, models/blocks.hpp), and the longest prefix it agrees with is kept, plus
// one token of its own; the rest are rolled back.
//
//     runtime::decoder<models::gpt2_family> target(dir), draft(small_dir);
//     auto out = runtime::speculative_generate(target, draft, prompt, {.max_new_tokens = 64}, {.draft_tokens = 4});
//
// Acceptance: greedy, a draft token is kept while it is the target's argmax, and
// the first that is not is replaced by the target's argmax, so the output is the
// target's own greedy output. Sampled, draft token d (drawn from the draft's
// distribution q) is kept with probability min(1, p(d) / q(d)), p the target's;
// the first rejected is replaced by a draw from max(0, p - q) normalised, and
// after k kept the target's next distribution gives one more, so every token is
// distributed as the target alone would draw it. p and q are both the
// distribution `sampling` makes of the logits (temperature, top-k, top-p).
//
// The two models are any families (runtime/stepper.hpp) sharing the tokenizer:
// the same vocabulary, or generate_options::vocab_limit ids both read. Under
// tensor parallelism both run on the same ranks (threads, or MPI processes whose
// random draws agree because every rank sees rank 0's logits).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "decoder.hpp"
#include "sampling.hpp"
#include "stepper.hpp"

namespace scribe::runtime {

struct speculative_options {
    // Tokens the draft proposes per verify step (k; the verify graph checks k + 1).
    std::int64_t draft_tokens = 4;
};

struct speculative_generation : generation {  // tokens[0]: the one sequence's new tokens
    std::int64_t rounds = 0;    // verify steps of the target (decode_steps counts them too)
    std::int64_t drafted = 0;   // tokens the draft proposed
    std::int64_t accepted = 0;  // of those, kept
    double draft_seconds = 0, target_seconds = 0;  // within decode_seconds
    double acceptance() const { return drafted ? static_cast<double>(accepted) / static_cast<double>(drafted) : 0.0; }
    // New tokens per verify step (each round keeps its accepted drafts and one of the target's).
    double tokens_per_round() const {
        return rounds ? static_cast<double>(tokens.front().size() - 1) / static_cast<double>(rounds) : 0.0;
    }
};

namespace detail {

inline void check_row(std::span<const float> row, const char* model, std::int64_t position) {
    for (std::size_t v = 0; v < row.size(); ++v)
        if (!std::isfinite(row[v]))
            throw error(std::string("speculative decoding: the ") + model + "'s logits at position " + std::to_string(position) +
                        " are not finite (token " + std::to_string(v) + ": " + std::to_string(row[v]) +
                        "); the weights or the config make NaN or infinity");
}

}  // namespace detail

// Generates up to o.max_new_tokens after `prompt` with `target`, `draft`
// proposing; stops at any of `stops` (with o.stop_at_eos) or when o.on_token
// returns false. Both steppers are started over.
inline speculative_generation speculate(stepper& target, stepper& draft, const std::vector<std::int32_t>& prompt,
                                        const generate_options& o, const speculative_options& so,
                                        std::span<const std::int32_t> stops) {
    o.sample.check();
    const auto K = so.draft_tokens;
    if (K < 1 || K > 64) throw error("speculative decoding: the draft proposes 1 to 64 tokens a step, not " + std::to_string(K));
    if (o.max_new_tokens < 1) throw error("generate: max_new_tokens must be at least 1");
    const auto vt = target.vocab_size(), vd = draft.vocab_size();
    if (o.vocab_limit < 0 || o.vocab_limit > std::min(vt, vd))
        throw error("speculative decoding: vocab_limit " + std::to_string(o.vocab_limit) + " (the ids that may be chosen: the tokenizer's) is " +
                    (o.vocab_limit < 0 ? std::string("negative") : "more than the " + std::string(vd < vt ? "draft" : "target") +
                                                                       "'s vocabulary of " + std::to_string(std::min(vt, vd)) + " ids") +
                    "; the two models must share a tokenizer");
    if (!o.vocab_limit && vt != vd)
        throw error("speculative decoding: the draft's vocabulary has " + std::to_string(vd) + " ids, the target's " + std::to_string(vt) +
                    "; the two models must share a tokenizer (give vocab_limit, the ids the tokenizer has, when one is padded)");
    const auto choosable = static_cast<std::size_t>(o.vocab_limit ? o.vocab_limit : vt);
    const auto n = static_cast<std::int64_t>(prompt.size());
    for (auto t : prompt)
        if (t < 0 || static_cast<std::size_t>(t) >= std::min<std::size_t>(static_cast<std::size_t>(vt), static_cast<std::size_t>(vd)))
            throw error("generate: prompt has token " + std::to_string(t) + ", outside the vocabulary of " + std::to_string(std::min(vt, vd)));
    for (const auto& [model, positions] : {std::pair{"target", target.max_positions()}, std::pair{"draft", draft.max_positions()}})
        if (n + o.max_new_tokens > positions)
            throw error(std::string("generate: the prompt (") + std::to_string(n) + " tokens) + " + std::to_string(o.max_new_tokens) +
                        " new tokens exceeds the " + model + "'s " + std::to_string(positions) + " positions; ask for at most " +
                        std::to_string(std::max<std::int64_t>(positions - n, 0)) + " new tokens");

    speculative_generation out;
    out.tokens.assign(1, {});
    out.prompt_tokens = n;
    std::mt19937_64 rng(o.sample.seed);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    auto& made = out.tokens[0];
    bool stop = false;
    auto emit = [&](std::int32_t t) {
        made.push_back(t);
        if (o.stop_at_eos && std::find(stops.begin(), stops.end(), t) != stops.end()) stop = true;
        if (o.on_token && !o.on_token(0, t)) stop = true;
        if (static_cast<std::int64_t>(made.size()) >= o.max_new_tokens) stop = true;
    };
    // Row i of the target's logits (the draft's row 0), the ids that may be chosen.
    auto row = [&](const std::vector<float>& logits, std::size_t i) {
        return std::span<const float>(logits.data() + i * static_cast<std::size_t>(vt), choosable);
    };
    using clock = std::chrono::steady_clock;
    auto since = [](clock::time_point t) { return std::chrono::duration<double>(clock::now() - t).count(); };

    // Room for the new tokens and the drafts a verify step feeds beyond them. The
    // graphs are built first (on first use), so the times count running them.
    target.prepare(n, o.max_new_tokens + K, K + 1);
    draft.prepare(n, o.max_new_tokens + K, 1);
    const auto t0 = clock::now();
    const auto first = target.start(prompt, o.max_new_tokens + K);
    (void)draft.start(prompt, o.max_new_tokens + K);
    out.prefill_seconds = since(t0);
    out.bucket = target.bucket();
    out.capacity = target.capacity();
    detail::check_row(std::span<const float>(first.data(), choosable), "target", n - 1);
    emit(sample(std::span<const float>(first.data(), choosable), o.sample, rng));

    std::vector<std::int32_t> seq = prompt;  // the prompt and the tokens made so far
    seq.push_back(made.back());
    std::vector<std::int32_t> drafts, fed;
    std::vector<std::vector<double>> q;  // the draft's distribution of each drafted token
    const auto t1 = clock::now();
    while (!stop) {
        const auto size = static_cast<std::int64_t>(seq.size());
        // The target's cache holds seq but its last token; the verify step feeds it
        // and k drafts, and keeps its own next token even when all k are kept.
        auto k = std::min(K, o.max_new_tokens - static_cast<std::int64_t>(made.size()) - 1);
        k = std::max<std::int64_t>(0, std::min({k, target.capacity() - size, draft.capacity() - size + 1}));

        drafts.clear();
        q.clear();
        if (k > 0) {
            const auto td = clock::now();
            std::vector<float> logits;
            for (auto at = draft.length(); at < size; ++at)  // what the draft has not read yet (1 or 2 tokens)
                logits = draft.extend(std::span<const std::int32_t>(&seq[static_cast<std::size_t>(at)], 1));
            for (std::int64_t i = 0; i < k; ++i) {
                detail::check_row(row(logits, 0), "draft", size - 1 + i);
                q.push_back(probabilities(row(logits, 0), o.sample));
                drafts.push_back(o.sample.greedy() ? argmax(row(logits, 0)) : draw(q.back(), rng));
                if (i + 1 < k) logits = draft.extend(std::span<const std::int32_t>(&drafts.back(), 1));
            }
            out.draft_seconds += since(td);
        }

        // Verify: one step over the last token and the drafts, padded to K + 1 while
        // the cache has room, so every round runs the same graph.
        fed.assign(1, seq.back());
        fed.insert(fed.end(), drafts.begin(), drafts.end());
        const auto before = target.length();
        const auto width = before + K + 1 <= target.capacity() ? K + 1 : k + 1;
        const auto pad = fed.back();
        fed.resize(static_cast<std::size_t>(width), pad);
        const auto tv = clock::now();
        const auto p = target.extend(fed);
        out.target_seconds += since(tv);
        ++out.rounds;
        out.drafted += k;

        std::int64_t kept = 0;
        for (; kept < k && !stop; ++kept) {
            const auto r = row(p, static_cast<std::size_t>(kept));
            detail::check_row(r, "target", before + kept);
            const auto d = drafts[static_cast<std::size_t>(kept)];
            bool accept;
            if (o.sample.greedy()) {
                accept = argmax(r) == d;
            } else {
                const auto pd = probabilities(r, o.sample)[static_cast<std::size_t>(d)];
                accept = uniform(rng) * q[static_cast<std::size_t>(kept)][static_cast<std::size_t>(d)] < pd;
            }
            if (!accept) break;
            ++out.accepted;
            emit(d);
        }
        if (!stop) {
            // The target's own token: after a rejection from the residual max(0, p - q),
            // after k kept from its next distribution.
            const auto r = row(p, static_cast<std::size_t>(kept));
            detail::check_row(r, "target", before + kept);
            std::int32_t t;
            if (o.sample.greedy()) {
                t = argmax(r);
            } else {
                auto pr = probabilities(r, o.sample);
                if (kept < k) {
                    auto residual = pr;
                    double mass = 0;
                    for (std::size_t v = 0; v < residual.size(); ++v) mass += residual[v] = std::max(0.0, pr[v] - q[static_cast<std::size_t>(kept)][v]);
                    if (mass > 0) pr = std::move(residual);  // (no mass: p equals q, and q's token is never rejected)
                }
                t = draw(pr, rng);
            }
            emit(t);
        }
        if (stop) break;
        // Roll back what was not kept: the target keeps seq and the kept drafts; so
        // does the draft, as far as it had read them.
        target.rewind(before + 1 + kept);
        draft.rewind(std::min(draft.length(), size + kept));
        seq.insert(seq.end(), drafts.begin(), drafts.begin() + kept);
        seq.push_back(made.back());
    }
    out.decode_seconds = since(t1);
    out.decode_steps = out.rounds;
    return out;
}

// speculate() for two decoders: the target's end tokens unless o.eos names others.
template <class TargetFamily, class DraftFamily>
speculative_generation speculative_generate(decoder<TargetFamily>& target, decoder<DraftFamily>& draft,
                                            const std::vector<std::int32_t>& prompt, const generate_options& o,
                                            const speculative_options& so = {}) {
    typename decoder<TargetFamily>::sequence t(target);
    typename decoder<DraftFamily>::sequence d(draft);
    const auto& stops = o.eos.empty() ? target.eos_ids() : o.eos;
    return speculate(t, d, prompt, o, so, stops);
}

// Seconds of one plain decode step of `model` (one token fed, as generate()
// decodes without a draft): the mean of `steps` steps at its current position,
// after one untimed (the decode graph may be built on first use). Leaves the
// sequence's length as it was (one less when its cache was full). For reporting
// a speed-up measured in the same run.
inline double plain_step_seconds(stepper& model, int steps) {
    if (model.length() < 1 || model.capacity() < 2 || steps < 1)
        throw error("plain_step_seconds: start the sequence first, with room for two positions, and time at least one step");
    if (model.length() == model.capacity()) model.rewind(model.length() - 1);
    const auto at = model.length();
    const std::int32_t token = 0;
    model.extend(std::span<const std::int32_t>(&token, 1));
    model.rewind(at);
    const auto t = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
        model.extend(std::span<const std::int32_t>(&token, 1));
        model.rewind(at);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count() / steps;
}

}  // namespace scribe::runtime
