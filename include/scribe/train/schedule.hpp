// scribe/train/schedule.hpp — learning-rate schedules, as transformers'
// get_constant_schedule_with_warmup, get_linear_schedule_with_warmup and
// get_cosine_schedule_with_warmup define them (LambdaLR over the count of
// optimizer steps already taken, from 0):
//
//   warmup   step < warmup:  lr * step / max(1, warmup)   (so the first step's is 0)
//   constant afterwards:     lr
//   linear   afterwards:     lr * max(0, (total - step) / max(1, total - warmup))
//   cosine   afterwards:     lr * max(0, (1 + cos(pi * (step - warmup) / max(1, total - warmup))) / 2)
//
// With a floor min_lr, the cosine ends there instead of at 0: min_lr + (lr -
// min_lr) times its factor (transformers' get_cosine_with_min_lr_schedule_with_warmup).
//
// at() gives the rate on the host (in double, for logs); in_graph() computes it
// in the step graph from the step counter (f32), so an exported step module
// carries its own schedule and needs nothing from the host but the batch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "../core/checked.hpp"
#include "../core/error.hpp"
#include "../graph/ir.hpp"

namespace scribe::train {

struct schedule {
    enum class decay { constant, linear, cosine };
    decay kind = decay::constant;
    double lr = 1e-3;           // the peak rate
    std::int64_t warmup = 0;    // steps of linear warmup from 0
    std::int64_t total = 0;     // steps of the whole run (linear and cosine decay to 0 there)
    double min_lr = 0;          // where cosine decays to instead

    static decay parse(const std::string& s) {
        if (s == "constant") return decay::constant;
        if (s == "linear") return decay::linear;
        if (s == "cosine") return decay::cosine;
        throw error("schedule \"" + s + "\" is not one of constant, linear, cosine");
    }
    static const char* name(decay d) {
        return d == decay::constant ? "constant" : d == decay::linear ? "linear" : "cosine";
    }

    // Throws naming the setting that cannot work.
    void check() const {
        if (!std::isfinite(lr) || lr < 0) throw error("learning rate " + checked::shown(lr) + " must be a finite number >= 0");
        if (!std::isfinite(min_lr) || min_lr < 0 || min_lr > lr)
            throw error("the least learning rate " + checked::shown(min_lr) + " must be from 0 to the peak rate " + checked::shown(lr));
        if (min_lr > 0 && kind != decay::cosine)
            throw error(std::string("a least learning rate is the cosine schedule's (transformers' cosine_with_min_lr), not ") +
                        name(kind) + "'s");
        if (warmup < 0) throw error("warmup " + std::to_string(warmup) + " must be >= 0 steps");
        if (kind != decay::constant && total <= 0)
            throw error(std::string("the ") + name(kind) + " schedule decays to 0 at the last step, so it needs the run's "
                        "length in steps (total), got " + std::to_string(total));
        if (kind != decay::constant && warmup > total)
            throw error("warmup " + std::to_string(warmup) + " is longer than the run's " + std::to_string(total) + " steps");
    }

    // The multiplier of lr for the step taken after `step` others.
    double factor(std::int64_t step) const {
        const auto s = static_cast<double>(step), w = static_cast<double>(warmup);
        if (step < warmup) return s / std::max(1.0, w);
        const double span = std::max(1.0, static_cast<double>(total - warmup));
        const double floor = lr > 0 ? min_lr / lr : 0.0;
        switch (kind) {
            case decay::constant: return 1.0;
            case decay::linear: return std::max(0.0, (static_cast<double>(total) - s) / span);
            case decay::cosine: return floor + (1 - floor) * std::max(0.0, 0.5 * (1.0 + std::cos(3.141592653589793 * (s - w) / span)));
        }
        return 1.0;
    }
    double at(std::int64_t step) const { return lr * factor(step); }

    // The rate as an f32 scalar of g, from `step` (f32 scalar: steps already taken).
    node_id in_graph(graph& g, node_id step) const {
        using ir::binary;
        const auto f32 = dtype::f32;
        const auto w = static_cast<double>(warmup);
        const auto warm = binary(g, op::mul, step, 1.0 / std::max(1.0, w));
        const double span = std::max(1.0, static_cast<double>(total - warmup));
        node_id after = ir::scalar(g, f32, 1.0);
        if (kind == decay::linear) {
            after = binary(g, op::div, binary(g, op::sub, static_cast<double>(total), step), span);
            after = binary(g, op::max, after, 0.0);
        } else if (kind == decay::cosine) {
            const auto progress = binary(g, op::div, binary(g, op::sub, step, w), span);
            const auto c = ir::unary(g, op::cos, binary(g, op::mul, progress, 3.141592653589793));
            after = binary(g, op::max, binary(g, op::mul, binary(g, op::add, c, 1.0), 0.5), 0.0);
        }
        if (kind == decay::cosine && min_lr > 0 && lr > 0)
            after = binary(g, op::add, binary(g, op::mul, after, 1.0 - min_lr / lr), min_lr / lr);
        const auto f = warmup > 0 ? ir::select(g, ir::compare(g, comparison::lt, step, ir::scalar(g, f32, w)), warm, after) : after;
        return binary(g, op::mul, f, lr);
    }
};

}  // namespace scribe::train
