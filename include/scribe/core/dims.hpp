// scribe/core/dims.hpp — ordered lists of dimension slots, and the algebra the
// compile-time shape rules are written in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "dim.hpp"

namespace scribe {

template <DimSlot... S>
struct dims {
    static constexpr std::size_t rank = sizeof...(S);
};

namespace detail {

template <class D, class List>
struct has_dim_impl;
template <class D, class... S>
struct has_dim_impl<D, dims<S...>> : std::bool_constant<(std::is_same_v<dim_of<S>, dim_of<D>> || ...)> {};

// Position of dimension D in a list (rank if absent).
template <class D, class List>
struct index_of_impl;
template <class D, class... S>
struct index_of_impl<D, dims<S...>> {
    static constexpr std::size_t value = [] {
        constexpr bool hits[] = {std::is_same_v<dim_of<S>, dim_of<D>>..., false};
        std::size_t i = 0;
        while (i < sizeof...(S) && !hits[i]) ++i;
        return i;
    }();
};

template <class List>
struct all_unique_impl;
template <class... S>
struct all_unique_impl<dims<S...>> {
    static constexpr bool value = [] {
        constexpr std::size_t n = sizeof...(S);
        if constexpr (n == 0) {
            return true;
        } else {
            constexpr std::size_t idx[] = {index_of_impl<S, dims<S...>>::value...};
            for (std::size_t i = 0; i < n; ++i)
                if (idx[i] != i) return false;
            return true;
        }
    }();
};

// The first dimension of a list that appears twice (void if none).
template <class List, class Seen = dims<>>
struct first_duplicate {
    using type = void;
};
template <class H, class... T, class... Seen>
struct first_duplicate<dims<H, T...>, dims<Seen...>> {
    using type = std::conditional_t<has_dim_impl<H, dims<Seen...>>::value, dim_of<H>,
                                    typename first_duplicate<dims<T...>, dims<Seen..., H>>::type>;
};

template <class A, class B>
struct concat_impl;
template <class... A, class... B>
struct concat_impl<dims<A...>, dims<B...>> {
    using type = dims<A..., B...>;
};

// Keeps the slots of List whose dimension is not in Drop.
template <class List, class Drop>
struct remove_impl;
template <class Drop>
struct remove_impl<dims<>, Drop> {
    using type = dims<>;
};
template <class H, class... T, class Drop>
struct remove_impl<dims<H, T...>, Drop> {
    using rest = typename remove_impl<dims<T...>, Drop>::type;
    using type = std::conditional_t<has_dim_impl<H, Drop>::value, rest,
                                    typename concat_impl<dims<H>, rest>::type>;
};

// Keeps the slots of List whose dimension is in Keep, in List's order.
template <class List, class Keep>
struct keep_impl;
template <class Keep>
struct keep_impl<dims<>, Keep> {
    using type = dims<>;
};
template <class H, class... T, class Keep>
struct keep_impl<dims<H, T...>, Keep> {
    using rest = typename keep_impl<dims<T...>, Keep>::type;
    using type = std::conditional_t<has_dim_impl<H, Keep>::value,
                                    typename concat_impl<dims<H>, rest>::type, rest>;
};

template <std::size_t I, class List>
struct at_impl;
template <std::size_t I, class H, class... T>
struct at_impl<I, dims<H, T...>> : at_impl<I - 1, dims<T...>> {};
template <class H, class... T>
struct at_impl<0, dims<H, T...>> {
    using type = H;
};

// The slot of dimension D in List.
template <class D, class List>
struct slot_impl {
    using type = typename at_impl<index_of_impl<D, List>::value, List>::type;
};

// Two slots of one dimension combined: a static extent wins over a dynamic one.
template <class A, class B>
using merged_slot = std::conditional_t<is_static_dim<A>::value, A, B>;

// For each slot of A, the slot merged with B's slot of the same dimension (if B has it).
template <class A, class B>
struct merge_impl;
template <class S, class B, bool = has_dim_impl<S, B>::value>
struct merge_one {
    using type = S;
};
template <class S, class B>
struct merge_one<S, B, true> {
    using type = merged_slot<S, typename slot_impl<S, B>::type>;
};
template <class... S, class B>
struct merge_impl<dims<S...>, B> {
    using type = dims<typename merge_one<S, B>::type...>;
};

// Replaces the slot of dimension From with To, in place.
template <class List, class From, class To>
struct replace_impl;
template <class... S, class From, class To>
struct replace_impl<dims<S...>, From, To> {
    using type = dims<std::conditional_t<std::is_same_v<dim_of<S>, dim_of<From>>, To, S>...>;
};

// Makes the slot of dimension D dynamic.
template <class List, class D>
using make_dynamic = typename replace_impl<List, D, dim_of<D>>::type;

// Two slots of the same dimension whose static extents disagree (void if none).
template <class A, class B>
struct extent_conflict;
template <class... S, class B>
struct extent_conflict<dims<S...>, B> {
    template <class X>
    static constexpr bool conflicts() {
        if constexpr (!has_dim_impl<X, B>::value) {
            return false;
        } else {
            using Y = typename slot_impl<X, B>::type;
            return static_extent<X> != dynamic_extent && static_extent<Y> != dynamic_extent &&
                   static_extent<X> != static_extent<Y>;
        }
    }
    static constexpr bool value = (conflicts<S>() || ...);
};

// The first slot of New whose dimension List already has (void if none).
template <class New, class List>
struct first_present {
    using type = void;
};
template <class H, class... T, class List>
struct first_present<dims<H, T...>, List> {
    using type = std::conditional_t<has_dim_impl<H, List>::value, dim_of<H>, typename first_present<dims<T...>, List>::type>;
};

// The first slot of Want whose dimension List lacks (void if none).
template <class Want, class List>
using first_missing = typename first_present<typename remove_impl<Want, List>::type, Want>::type;

}  // namespace detail

template <class D, class List>
inline constexpr bool has_dim = detail::has_dim_impl<D, List>::value;
template <class D, class List>
inline constexpr std::size_t index_of = detail::index_of_impl<D, List>::value;
template <class List>
inline constexpr bool all_unique = detail::all_unique_impl<List>::value;
template <class New, class List>
using first_present_t = typename detail::first_present<New, List>::type;
template <class A, class B>
using concat_dims = typename detail::concat_impl<A, B>::type;
template <class List, class Drop>
using remove_dims = typename detail::remove_impl<List, Drop>::type;
template <class List, class Keep>
using keep_dims = typename detail::keep_impl<List, Keep>::type;
template <class D, class List>
using slot_in = typename detail::slot_impl<D, List>::type;

namespace detail {
template <class D, class List, bool = has_dim_impl<D, List>::value>
struct slot_or_self {
    using type = D;
};
template <class D, class List>
struct slot_or_self<D, List, true> {
    using type = typename slot_impl<D, List>::type;
};
}  // namespace detail

// The slot of D in List, or D itself when List lacks it (for checks that run
// before the op has verified D is there).
template <class D, class List>
using slot_or_self = typename detail::slot_or_self<D, List>::type;

// Every dimension of A is in B (and ranks agree): the same set, maybe reordered.
template <class A, class B>
inline constexpr bool same_dim_set =
    A::rank == B::rank && std::is_same_v<remove_dims<A, B>, dims<>>;

// Every dimension of A is in B.
template <class A, class B>
inline constexpr bool subset_of = std::is_same_v<remove_dims<A, B>, dims<>>;

}  // namespace scribe
