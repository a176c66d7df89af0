// scribe/core/dim.hpp — named dimensions.
//
// A dimension is an object whose type has the same name, so diagnostics print
// `hidden`, not a template soup:
//
//     SCRIBE_DIM(hidden);            // inline constexpr struct hidden ... {} hidden;
//     f32[hidden, vocab]             // both extents dynamic: bound on the graph
//     f32[hidden.of<768>, vocab]     // `hidden` static (checked at compile time)
//
// `hidden` and `hidden.of<768>` are the same dimension; only the knowledge of the
// extent differs. Dynamic extents are bound at run time: g.bind(hidden(768)).
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "fixed_string.hpp"

namespace scribe {

inline constexpr std::int64_t dynamic_extent = -1;

// A dimension with its extent known at run time only, e.g. from config.json.
struct dim_binding {
    std::string_view name;
    std::int64_t extent;
};

template <class D, std::int64_t N>
struct static_dim;

template <class Derived, fixed_string Name>
struct dim_base {
    using dim_type = Derived;
    static constexpr std::string_view name() { return Name.view(); }
    // `hidden.of<768>`: the same dimension with a static extent.
    template <std::int64_t N>
    static constexpr static_dim<Derived, N> of{};
    // `hidden(768)`: a run-time binding, for graph::bind.
    constexpr dim_binding operator()(std::int64_t extent) const { return {Name.view(), extent}; }
};

template <class T>
concept Dim = requires { typename T::dim_type; } && std::same_as<typename T::dim_type, T> &&
              std::is_empty_v<T>;

template <class D, std::int64_t N>
struct static_dim {
    using dim_type = D;
    static constexpr std::int64_t extent = N;
    static constexpr std::string_view name() { return D::name(); }
    // If you end up here, you gave a dimension a static extent that is not positive.
    // (Last: Clang leaves out the members after a failed static_assert, and every
    // use of them would add an error.)
    static_assert(N > 0, "[scribe] a static extent must be positive");
};

namespace detail {
template <class T>
struct is_static_dim : std::false_type {};
template <class D, std::int64_t N>
struct is_static_dim<static_dim<D, N>> : std::true_type {};
}  // namespace detail

// A slot of a shape: a dimension, with or without a static extent.
template <class T>
concept DimSlot = Dim<T> || detail::is_static_dim<T>::value;

template <DimSlot S>
using dim_of = typename S::dim_type;

template <DimSlot S>
inline constexpr std::int64_t static_extent = [] {
    if constexpr (detail::is_static_dim<S>::value)
        return S::extent;
    else
        return dynamic_extent;
}();

}  // namespace scribe

// Declares a dimension named NAME (an object and a type of that name).
#define SCRIBE_DIM(NAME) inline constexpr struct NAME final : ::scribe::dim_base<NAME, #NAME> {} NAME
