// scribe/train/data.hpp — the training data of a causal language model: token
// ids packed into blocks of `seq` tokens (Hugging Face's run_clm group_texts:
// the ids of every text one after another, cut into blocks, the remainder
// dropped), the last blocks held out for validation, and the order each epoch
// visits the training blocks in: a permutation drawn from the seed and the
// epoch's number alone (counter-based), so a resumed run sees the same batches
// as one that never stopped.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "init.hpp"

namespace scribe::train {

class token_blocks {
public:
    // `what` names the data in errors ("--data kjv.txt").
    token_blocks(std::span<const std::int32_t> tokens, std::int64_t seq, double val_fraction, const std::string& what) : seq_(seq) {
        if (seq < 2) throw error("a block needs at least 2 tokens (one predicts the next), got " + std::to_string(seq));
        if (!(val_fraction >= 0 && val_fraction < 1))
            throw error("the validation fraction must be in [0, 1), got " + std::to_string(val_fraction));
        const auto blocks = static_cast<std::int64_t>(tokens.size()) / seq;
        const auto val = val_fraction > 0 ? std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(val_fraction * static_cast<double>(blocks)))) : 0;
        if (blocks - val < 1)
            throw error(what + " holds " + std::to_string(tokens.size()) + " tokens: " + std::to_string(blocks) + " blocks of " +
                        std::to_string(seq) + (val ? ", of which " + std::to_string(val) + " are held out for validation," : std::string()) +
                        " which leaves none to train on; give more text or a shorter --seq");
        const auto cut = static_cast<std::size_t>((blocks - val) * seq);
        train_.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(cut));
        val_.assign(tokens.begin() + static_cast<std::ptrdiff_t>(cut), tokens.begin() + static_cast<std::ptrdiff_t>(blocks * seq));
    }

    std::int64_t seq() const { return seq_; }
    std::int64_t train_blocks() const { return static_cast<std::int64_t>(train_.size()) / seq_; }
    std::int64_t val_blocks() const { return static_cast<std::int64_t>(val_.size()) / seq_; }
    std::span<const std::int32_t> train_block(std::int64_t i) const { return block(train_, i); }
    std::span<const std::int32_t> val_block(std::int64_t i) const { return block(val_, i); }
    // A hash of the blocks (FNV-1a over the block size and every token): ranks
    // that must read the same data compare it.
    std::uint64_t fingerprint() const {
        std::uint64_t h = 14695981039346656037ULL;
        auto mix = [&](std::uint64_t v) {
            for (int k = 0; k < 4; ++k, v >>= 8) h = (h ^ (v & 0xff)) * 1099511628211ULL;
        };
        mix(static_cast<std::uint64_t>(seq_));
        for (const auto* v : {&train_, &val_}) {
            mix(v->size());
            for (auto t : *v) mix(static_cast<std::uint32_t>(t));
        }
        return h;
    }

private:
    std::span<const std::int32_t> block(const std::vector<std::int32_t>& v, std::int64_t i) const {
        return std::span<const std::int32_t>(v).subspan(static_cast<std::size_t>(i * seq_), static_cast<std::size_t>(seq_));
    }
    std::int64_t seq_;
    std::vector<std::int32_t> train_, val_;
};

// The order epoch `epoch` visits n blocks in: sorted by a key drawn from
// (seed, epoch, block) by Threefry, a permutation that depends on nothing else.
inline std::vector<std::int64_t> epoch_order(std::int64_t n, std::uint64_t seed, std::int64_t epoch) {
    std::vector<std::uint64_t> key(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
        const auto w = threefry_2x32(static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32) ^ 0x9e3779b9u,
                                     static_cast<std::uint32_t>(epoch), static_cast<std::uint32_t>(i));
        key[static_cast<std::size_t>(i)] = (static_cast<std::uint64_t>(w[0]) << 32 | w[1]);
    }
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        const auto ka = key[static_cast<std::size_t>(a)], kb = key[static_cast<std::size_t>(b)];
        return ka != kb ? ka < kb : a < b;
    });
    return order;
}

}  // namespace scribe::train
