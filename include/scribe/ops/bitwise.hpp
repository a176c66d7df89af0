// scribe/ops/bitwise.hpp — bitwise ops and shifts: bitwise_not, bitwise_and,
// bitwise_or, bitwise_xor on integers and pred; shift_left, shift_right_logical,
// shift_right_arithmetic on integers.
//
// The shape rule is the binary element-wise ops' (ops/elementwise.hpp): operands
// aligned by name, a rank-0 operand broadcast, a C++ number on either side made a
// scalar of the tensor's dtype. The dtypes are the op table's; a float operand
// does not compile.
//
// Shifts have XLA's semantics at every width: the amount is read as an unsigned
// number of the element's width, and an amount of the width or more shifts every
// bit out (0, or the sign for shift_right_arithmetic). shift_right_logical works
// on the element's own bits (s8 -1 >> 1 is 127); shift_right_arithmetic copies
// the top bit, also of an unsigned element.
#pragma once

#include "elementwise.hpp"

namespace scribe {

template <Tensor X> auto bitwise_not(const X& x) { return detail::unary<op::bitwise_not>(x); }

template <Tensor A, Tensor B> auto bitwise_and(const A& a, const B& b) { return detail::binary<op::bitwise_and>(a, b); }
template <Tensor A, Tensor B> auto bitwise_or(const A& a, const B& b) { return detail::binary<op::bitwise_or>(a, b); }
template <Tensor A, Tensor B> auto bitwise_xor(const A& a, const B& b) { return detail::binary<op::bitwise_xor>(a, b); }
template <Tensor A, Tensor B> auto shift_left(const A& a, const B& b) { return detail::binary<op::shift_left>(a, b); }
template <Tensor A, Tensor B> auto shift_right_logical(const A& a, const B& b) {
    return detail::binary<op::shift_right_logical>(a, b);
}
template <Tensor A, Tensor B> auto shift_right_arithmetic(const A& a, const B& b) {
    return detail::binary<op::shift_right_arithmetic>(a, b);
}

template <Tensor A, Number N> auto bitwise_and(const A& a, N v) { return bitwise_and(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto bitwise_and(N v, const A& a) { return bitwise_and(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto bitwise_or(const A& a, N v) { return bitwise_or(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto bitwise_or(N v, const A& a) { return bitwise_or(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto bitwise_xor(const A& a, N v) { return bitwise_xor(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto bitwise_xor(N v, const A& a) { return bitwise_xor(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto shift_left(const A& a, N v) { return shift_left(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto shift_left(N v, const A& a) { return shift_left(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto shift_right_logical(const A& a, N v) {
    return shift_right_logical(a, detail::scalar_like(a, static_cast<double>(v)));
}
template <Number N, Tensor A> auto shift_right_logical(N v, const A& a) {
    return shift_right_logical(detail::scalar_like(a, static_cast<double>(v)), a);
}
template <Tensor A, Number N> auto shift_right_arithmetic(const A& a, N v) {
    return shift_right_arithmetic(a, detail::scalar_like(a, static_cast<double>(v)));
}
template <Number N, Tensor A> auto shift_right_arithmetic(N v, const A& a) {
    return shift_right_arithmetic(detail::scalar_like(a, static_cast<double>(v)), a);
}

// Operators for the bitwise ops. Shifts have none: whether >> is logical or
// arithmetic is spelled out.
template <Tensor A> auto operator~(const A& a) { return bitwise_not(a); }
template <Tensor A, Tensor B> auto operator&(const A& a, const B& b) { return bitwise_and(a, b); }
template <Tensor A, Tensor B> auto operator|(const A& a, const B& b) { return bitwise_or(a, b); }
template <Tensor A, Tensor B> auto operator^(const A& a, const B& b) { return bitwise_xor(a, b); }
template <Tensor A, Number N> auto operator&(const A& a, N v) { return bitwise_and(a, v); }
template <Tensor A, Number N> auto operator|(const A& a, N v) { return bitwise_or(a, v); }
template <Tensor A, Number N> auto operator^(const A& a, N v) { return bitwise_xor(a, v); }
template <Number N, Tensor A> auto operator&(N v, const A& a) { return bitwise_and(v, a); }
template <Number N, Tensor A> auto operator|(N v, const A& a) { return bitwise_or(v, a); }
template <Number N, Tensor A> auto operator^(N v, const A& a) { return bitwise_xor(v, a); }

}  // namespace scribe
