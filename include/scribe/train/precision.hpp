// scribe/train/precision.hpp — the arithmetic of a training run (scribe train
// --precision), PyTorch NeuronX's modes on the CPU and in the exported step:
//
//   f32          f32 weights, f32 everywhere
//   bf16         bf16 weights and activations, each update rounded to nearest
//                (updates under half a bf16 step are lost: the baseline the
//                next two fix)
//   bf16-sr      bf16 weights and activations, each update rounded
//                stochastically (rounding::stochastic, seeded)
//   bf16-master  bf16 weights and activations; the optimizer keeps f32 master
//                weights and rounds them to bf16 for the model after each update
//   autocast     f32 weights; the matrix products run in bf16
//                (graph::set_dot_autocast), softmax, norms, the loss and the
//                update in f32
//
// In every mode the gradients are accumulated and averaged in f32 and the loss is
// f32 (optimizer.hpp says how the update rounds).
//
//     auto loss = train::causal_lm_loss_in<models::gpt2_family>(train::precision::bf16_sr, g, c, {.batch = 8, .seq = 128});
//     train::apply(train::precision::bf16_sr, update, seed);  // update_options: rounding, masters, seed
#pragma once

#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>

#include "causal_lm.hpp"
#include "optimizer.hpp"

namespace scribe::train {

enum class precision { f32, bf16, bf16_sr, bf16_master, autocast };
inline constexpr std::string_view precision_names[] = {"f32", "bf16", "bf16-sr", "bf16-master", "autocast"};

inline std::string_view name(precision p) { return precision_names[static_cast<int>(p)]; }

// "bf16-sr" -> precision::bf16_sr; `flag` names the option in the error.
inline precision parse_precision(std::string_view s, std::string_view flag = "--precision") {
    for (std::size_t i = 0; i < std::size(precision_names); ++i)
        if (s == precision_names[i]) return static_cast<precision>(i);
    throw error(std::string(flag) + " \"" + std::string(s) + "\" is not a precision: give f32, bf16, bf16-sr, bf16-master or autocast");
}

// The dtype the weights are held in (and the model computes in).
inline dtype weight_type(precision p) { return p == precision::f32 || p == precision::autocast ? dtype::f32 : dtype::bf16; }

// Sets the update's rounding, master weights and rounding seed for mode p.
inline void apply(precision p, update_options& u, std::uint64_t seed) {
    u.round = p == precision::bf16_sr ? rounding::stochastic : rounding::nearest;
    u.master_weights = p == precision::bf16_master;
    u.seed = seed;
}

// The causal-LM loss of Family in mode p: its weights in weight_type(p), the
// products autocast to bf16 in autocast mode (the gradients taken of it after
// follow).
template <class Family>
tensor_of<f32[]> causal_lm_loss_in(precision p, graph& g, const typename Family::config& c, const batch_shape& b) {
    if (p == precision::autocast) g.set_dot_autocast(dtype::bf16);
    if (weight_type(p) == dtype::bf16) return causal_lm_loss<Family, bf16>(g, c, b);
    return causal_lm_loss<Family, f32>(g, c, b);
}

}  // namespace scribe::train
