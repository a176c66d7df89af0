// scribe/parallel/mesh.hpp — the tensor-parallel mesh: one named axis, `tp`, of
// `degree` ranks, and how a dimension is split over it.
//
//     parallel::mesh m{.degree = 4};
//     g.bind(heads(m.shard(heads, 12)));        // 3 heads per rank, or a clear error
//     parallel::sharded<heads.of<12>, 4>          // heads.of<3>, checked at compile time
//
// Data-parallel training runs `replicas` copies of the tensor-parallel group side
// by side (a dp x tp mesh): replica d * degree + t is rank t of copy d. The
// layers' collectives then combine within each copy (groups()), the gradients'
// across the copies (across()), and a rank finds its shard by rank(g), its
// number within the copy.
//
// A dimension split over the mesh must divide by its degree (heads, KV heads, the
// MLP's width); the vocabulary instead is padded up to a multiple of the degree
// (`padded`), the padding rows being zeros whose logits are cut off again.
#pragma once

#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "../core/diagnose.hpp"
#include "../core/dim.hpp"
#include "../core/error.hpp"
#include "../ops/collective.hpp"
#include "../ops/elementwise.hpp"

namespace scribe::parallel {

// The degrees 1..extent that divide `extent`, ascending (pairs k, extent / k up
// to the square root: extents come from config files and may be near 2^31).
inline std::vector<std::int64_t> divisors(std::int64_t extent) {
    std::vector<std::int64_t> low, high;
    for (std::int64_t k = 1; k <= extent / k; ++k)
        if (extent % k == 0) {
            low.push_back(k);
            if (k != extent / k) high.push_back(extent / k);
        }
    low.insert(low.end(), high.rbegin(), high.rend());
    return low;
}

inline std::string list(const std::vector<std::int64_t>& v) {
    std::string s;
    for (auto x : v) s += (s.empty() ? "" : ", ") + std::to_string(x);
    return s;
}

struct mesh {
    static constexpr std::string_view axis = "tp";  // the axis' name in errors and manifests
    std::int64_t degree = 1;
    std::int64_t replicas = 1;  // copies of the tensor-parallel group (data parallel)

    // The ranks of each copy: what the collectives of a TP layer combine.
    replica_groups groups() const {
        replica_groups r;
        for (std::int64_t d = 0; d < replicas; ++d) {
            std::vector<std::int64_t> g(static_cast<std::size_t>(degree));
            std::iota(g.begin(), g.end(), d * degree);
            r.groups.push_back(std::move(g));
        }
        return r;
    }
    // The same rank of every copy: what data parallelism averages over.
    replica_groups across() const {
        replica_groups r;
        for (std::int64_t t = 0; t < degree; ++t) {
            std::vector<std::int64_t> g;
            for (std::int64_t d = 0; d < replicas; ++d) g.push_back(d * degree + t);
            r.groups.push_back(std::move(g));
        }
        return r;
    }
    // This rank's number within its copy, u32[] (replica_id modulo the degree).
    tensor<dtype_of<u32>> rank(graph& g) const {
        auto id = replica_id(g);
        if (replicas == 1) return id;
        auto copy = id / static_cast<double>(degree);
        return id - copy * static_cast<double>(degree);
    }

    // The extent of `dim` on one rank; an error naming the dimension, both sizes and
    // the degrees that would work, when the degree does not divide it.
    std::int64_t shard(std::string_view dim, std::int64_t extent) const {
        check();
        if (extent % degree)
            throw error("tensor parallel: " + std::string(axis) + " degree " + std::to_string(degree) +
                        " does not divide " + std::string(dim) + " (" + std::to_string(extent) +
                        "); degrees that do: " + list(divisors(extent)));
        return extent / degree;
    }
    // The same for a dimension object: m.shard(heads, 12).
    template <Dim D>
    std::int64_t shard(const D&, std::int64_t extent) const {
        return shard(D::name(), extent);
    }
    // extent rounded up to a multiple of the degree (the vocabulary's padding).
    std::int64_t padded(std::int64_t extent) const {
        check();
        return (extent + degree - 1) / degree * degree;
    }
    void check() const {
        if (degree < 1) throw error("tensor parallel: the degree must be at least 1, got " + std::to_string(degree));
        if (replicas < 1) throw error("tensor parallel: the data-parallel copies must number at least 1, got " + std::to_string(replicas));
    }
};

namespace detail {
template <class Slot, std::int64_t Degree>
struct sharded_impl {
    static_assert(Degree >= 1, "[scribe] a TP degree must be at least 1");
    using type = Slot;  // a dynamic extent: checked at run time by mesh::shard
};
template <class D, std::int64_t N, std::int64_t Degree>
struct sharded_impl<static_dim<D, N>, Degree> {
    static constexpr bool divides = Degree >= 1 && N % Degree == 0;
    // Instantiates the diagnostic when Degree does not divide N. A static_assert, not
    // a member: a member whose type failed would leave Clang without `type` as well
    // (a second, follow-on error where sharded<...> is used).
    static_assert(sizeof(std::conditional_t<divides, int,
                                            scribe::diagnose::shards_do_not_divide<
                                                D, std::integral_constant<std::int64_t, N>,
                                                std::integral_constant<std::int64_t, Degree>>>) > 0);
    using type = static_dim<D, (divides ? N / Degree : 1)>;
};
}  // namespace detail

// The slot one rank holds when the dimension slot S is split over Degree ranks:
// sharded<heads.of<12>, 4> is heads.of<3>; sharded<heads.of<12>, 5> does not compile.
template <auto S, std::int64_t Degree>
using sharded = typename detail::sharded_impl<std::remove_cvref_t<decltype(S)>, Degree>::type;

}  // namespace scribe::parallel
