// scribe/models/declare.hpp — a family declares each weight once: the graph
// parameter the forward pass reads (its dtype, dims and Hugging Face name) and,
// in the same call, what the loader, the sharder, `scribe inspect` and training
// from scratch need of it (the shape the checkpoint stores, the dim split over
// tensor-parallel ranks, how it is initialised). The weight list is made by
// running the same declarations on a scratch graph, so it cannot disagree with
// the graphs.
//
//     template <DtypeTag T>
//     auto declare(models::declaration d, const config& c, const parallel::mesh& m) {
//         d.graph().bind(hidden(c.n_embd), heads(m.shard("n_head", c.n_head)), ...);
//         auto wq = d(T{}[heads, head_dim, hidden], "q_proj.weight", {.split = "heads", .stored = {2, 1}});
//         ...
//         return weights{wq, ...};   // a struct of the typed parameters
//     }
//     // build():   const auto w = declare<T>(models::declaration(g), c, m);
//     // weights(): return models::list_weights(degree, c, declare<dtype_of<f32>>);
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../graph/tensor.hpp"
#include "../ops/quantize.hpp"
#include "../parallel/mesh.hpp"
#include "common.hpp"

namespace scribe::models {

// What a declaration says of a weight besides its type and name.
struct weight_layout {
    // The dim divided over tensor-parallel ranks; empty: every rank holds it whole.
    std::string_view split{};
    // The checkpoint's shape as runs of consecutive dims, each run one stored
    // dimension: {2, 1} stores [heads, head_dim, hidden] as [heads * head_dim,
    // hidden], as nn.Linear's [out, in] lies. Empty: one stored dimension per dim.
    std::vector<int> stored{};
    weight_init init{};
    // The dims a product contracts the weight over, where they are not the last
    // stored dimension's (nn.Linear's [out, in]): GPT-2's Conv1D weights are
    // [in, out]. Stored as q8 or q4, the blocks run along them.
    std::vector<std::string_view> in{};
};

inline constexpr weight_init zeros{.kind = weight_init::fill::zeros};
inline constexpr weight_init ones{.kind = weight_init::fill::ones};

// Makes weight parameters on a graph and, when given a list, records each one.
// With weight_format::q8 or q4, a matrix whose contracted extent is a multiple of 32
// becomes two parameters, `name` (s8, or u8 for q4) and `name.scale` (f16), read back as the
// declared float tensor (ops/quantize.hpp); the rest stay float parameters.
class declaration {
public:
    explicit declaration(scribe::graph& g, std::vector<weight_spec>* list = nullptr) : g_(g), list_(list) {}
    declaration(scribe::graph& g, weight_format format) : g_(g), list_(nullptr), format_(format) {}

    scribe::graph& graph() const { return g_; }

    template <DtypeTag T, DimSlot... S>
    tensor<T, S...> operator()(tensor_spec<T, S...> spec, std::string name, weight_layout l = {}) const {
        if (format_ != weight_format::plain) {
            const std::string context = "weight " + scribe::detail::ticked(name);
            scribe::detail::bind_static<S...>(g_, context);
            const auto dims = scribe::detail::spec_shape<S...>(g_, context);
            if (const auto q = q8::plan(dims, in_dims(dims, l), format_))
                return {g_, q8::dequantize(g_, g_.add_parameter(q8::storage(format_).type, q->q, name),
                                           g_.add_parameter(dtype::f16, q->scale, q8::scale_name(name)), *q, T::id)};
        }
        auto p = g_.parameter(spec, name);
        if (list_) list_->push_back(entry(g_[p.id()].dims, std::move(name), l));
        return p;
    }

private:
    // The names of the dims the weight is contracted over (weight_spec::in).
    static std::vector<std::string> in_dims(const shape& dims, const weight_layout& l) {
        std::vector<std::string> in(l.in.begin(), l.in.end());
        if (!in.empty() || dims.size() < 2) return in;
        const int last = l.stored.empty() ? 1 : l.stored.back();
        for (std::size_t i = dims.size() - static_cast<std::size_t>(std::clamp<int>(last, 0, static_cast<int>(dims.size())));
             i < dims.size(); ++i)
            in.push_back(dims[i].name);
        return in;
    }

    static weight_spec entry(const shape& dims, std::string name, const weight_layout& l) {
        weight_spec w{.name = std::move(name), .stored = {}, .dims = dims, .split = std::string(l.split), .init = l.init,
                      .in = in_dims(dims, l)};
        for (const auto& d : w.in)
            if (std::none_of(dims.begin(), dims.end(), [&](const dim_extent& e) { return e.name == d; }))
                throw error("weight " + scribe::detail::ticked(w.name) + ": contracted dim `" + d + "` is not one of its dims " +
                            to_string(dims));
        if (!l.split.empty() && std::none_of(dims.begin(), dims.end(), [&](const dim_extent& d) { return d.name == l.split; }))
            throw error("weight " + scribe::detail::ticked(w.name) + ": split dim `" + w.split + "` is not one of its dims " +
                        to_string(dims));
        std::size_t at = 0;
        for (const int run : l.stored.empty() ? std::vector<int>(dims.size(), 1) : l.stored) {
            if (run < 1 || at + static_cast<std::size_t>(run) > dims.size()) break;
            std::int64_t extent = 1;
            for (int k = 0; k < run; ++k) extent *= dims[at++].extent;
            w.stored.push_back(extent);
        }
        if (at != dims.size() || (!l.stored.empty() && w.stored.size() != l.stored.size()))
            throw error("weight " + scribe::detail::ticked(w.name) + ": its stored runs do not cover its dims " + to_string(dims));
        return w;
    }

    scribe::graph& g_;
    std::vector<weight_spec>* list_;
    weight_format format_ = weight_format::plain;
};

// The weight list of a family's declarations for config c, `declare(declaration,
// c, mesh)`: names, stored shapes, dims and initialisation of the whole model
// (as declared for one rank of degree 1), each split as the declarations decide
// for `degree` ranks (LLaMA's key/value heads are split only when the degree
// divides them).
template <class Config, class Declare>
std::vector<weight_spec> list_weights(std::int64_t degree, const Config& c, Declare&& declare) {
    auto run = [&](std::int64_t d) {
        std::vector<weight_spec> list;
        scribe::graph g("weights");
        (void)declare(declaration(g, &list), c, parallel::mesh{.degree = d});
        return list;
    };
    auto whole = run(1);
    if (degree == 1) return whole;
    const auto ranked = run(degree);
    for (std::size_t i = 0; i < whole.size(); ++i) whole[i].split = ranked[i].split;
    return whole;
}

}  // namespace scribe::models
