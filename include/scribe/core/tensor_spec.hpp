// scribe/core/tensor_spec.hpp — dtype tags and the `f32[hidden, vocab]` spelling.
//
// `f32` is an object whose type is also named `f32`. Subscripting it with dimension
// objects gives a tensor_spec: a value naming a dtype and a shape, which
// graph::parameter, graph::constant and graph::iota take.
#pragma once

#include <concepts>
#include <cstdint>
#include <type_traits>

#include "diagnose.hpp"
#include "dims.hpp"
#include "dtype.hpp"

namespace scribe {

template <class T, DimSlot... S>
struct tensor_spec;

template <class Derived, dtype Id, class Value>
struct dtype_base {
    using dtype_type = Derived;
    using value_type = Value;  // the element's storage type
    static constexpr dtype id = Id;
    static constexpr std::string_view name() { return scribe::name(Id); }

#ifdef __cpp_multidimensional_subscript
    // f32[hidden, vocab] — and f32[] for a scalar.
    template <DimSlot... S>
    constexpr tensor_spec<Derived, S...> operator[](S...) const {
        return {};
    }
#endif
    // f32(hidden, vocab): the spelling for compilers without multidimensional subscript.
    template <DimSlot... S>
    constexpr tensor_spec<Derived, S...> operator()(S...) const {
        return {};
    }
};

template <class T>
concept DtypeTag = requires { typename T::dtype_type; } && std::same_as<typename T::dtype_type, T> &&
                   std::is_empty_v<T>;
template <class T>
concept FloatDtype = DtypeTag<T> && is_float(T::id);
template <class T>
concept IntegerDtype = DtypeTag<T> && is_integer(T::id);

inline constexpr struct pred final : dtype_base<pred, dtype::pred, bool> {} pred;
inline constexpr struct s8 final : dtype_base<s8, dtype::s8, std::int8_t> {} s8;
inline constexpr struct u8 final : dtype_base<u8, dtype::u8, std::uint8_t> {} u8;
inline constexpr struct s32 final : dtype_base<s32, dtype::s32, std::int32_t> {} s32;
inline constexpr struct s64 final : dtype_base<s64, dtype::s64, std::int64_t> {} s64;
inline constexpr struct u32 final : dtype_base<u32, dtype::u32, std::uint32_t> {} u32;
inline constexpr struct f16 final : dtype_base<f16, dtype::f16, half> {} f16;
inline constexpr struct bf16 final : dtype_base<bf16, dtype::bf16, bfloat16> {} bf16;
inline constexpr struct f32 final : dtype_base<f32, dtype::f32, float> {} f32;
inline constexpr struct f64 final : dtype_base<f64, dtype::f64, double> {} f64;

// The tag type of a dtype object: dtype_of<f32>.
template <auto Tag>
using dtype_of = std::remove_cvref_t<decltype(Tag)>;

template <class T, DimSlot... S>
struct tensor_spec {
    using dtype_type = T;
    using dims_type = dims<S...>;
    static constexpr bool valid = all_unique<dims<S...>>;
    // Instantiating tensor_spec<T, S...> reports a bad shape (below); check() is a
    // way to ask for that (tensor<T, S...> does).
    static constexpr bool check() { return valid; }
    // The diagnostic when a dimension is named twice. By sizeof, not made inside a
    // constexpr function (Clang 15 reports that function's failure again), and last
    // (Clang leaves out the members after a failed static_assert).
    static_assert(sizeof(std::conditional_t<valid, int,
                                            diagnose::duplicate_dimension_in_shape<
                                                typename detail::first_duplicate<dims<S...>>::type, dims<S...>>>) > 0);
};

}  // namespace scribe
