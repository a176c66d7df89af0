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
};

inline constexpr weight_init zeros{.kind = weight_init::fill::zeros};
inline constexpr weight_init ones{.kind = weight_init::fill::ones};

// Makes weight parameters on a graph and, when given a list, records each one.
class declaration {
public:
    explicit declaration(scribe::graph& g, std::vector<weight_spec>* list = nullptr) : g_(g), list_(list) {}

    scribe::graph& graph() const { return g_; }

    template <DtypeTag T, DimSlot... S>
    tensor<T, S...> operator()(tensor_spec<T, S...> spec, std::string name, weight_layout l = {}) const {
        auto p = g_.parameter(spec, name);
        if (list_) list_->push_back(entry(g_[p.id()].dims, std::move(name), l));
        return p;
    }

private:
    static weight_spec entry(const shape& dims, std::string name, const weight_layout& l) {
        weight_spec w{.name = std::move(name), .stored = {}, .dims = dims, .split = std::string(l.split), .init = l.init};
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
