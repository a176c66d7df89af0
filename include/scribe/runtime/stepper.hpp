// scribe/runtime/stepper.hpp — one sequence of a decoder stepped by hand: a
// prompt run, then tokens fed a few at a time, each giving its row of logits, and
// the last positions dropped again. What speculative decoding drives for the
// target and the draft (runtime/speculative.hpp), whatever their families:
// runtime::decoder<Family>::sequence implements it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace scribe::runtime {

class stepper {
public:
    virtual ~stepper() = default;

    // The model's token ids and positions.
    virtual std::int64_t vocab_size() const = 0;
    virtual std::int64_t max_positions() const = 0;

    // Builds (on first use) the graphs a start() with a prompt of `prompt_tokens`
    // and `room`, then extend()s of `tokens` tokens, run: so that timing them
    // counts running only.
    virtual void prepare(std::int64_t prompt_tokens, std::int64_t room, std::int64_t tokens) = 0;

    // Starts the sequence over with `prompt` (at least one token), keeping room
    // for `room` positions after it (as the model's positions allow): the logits
    // of the prompt's last token, [vocab] as f32. The prompt is padded to a bucket.
    virtual std::vector<float> start(const std::vector<std::int32_t>& prompt, std::int64_t room) = 0;

    // Feeds `tokens` at positions length() ..: the logits after each, [n][vocab]
    // row-major as f32. length() grows by n; at most capacity() - length() tokens.
    virtual std::vector<float> extend(std::span<const std::int32_t> tokens) = 0;

    // Drops the positions from `length` on (0 < length <= length()): the next
    // tokens fed replace them.
    virtual void rewind(std::int64_t length) = 0;

    // Positions that hold tokens; positions the cache has room for.
    virtual std::int64_t length() const = 0;
    virtual std::int64_t capacity() const = 0;
    // The prompt bucket of the last start().
    virtual std::int64_t bucket() const = 0;
};

}  // namespace scribe::runtime
