// scribe/ops/elementwise.hpp — unary and binary element-wise ops, compare, select,
// convert, bitcast_convert (the bitwise ops and shifts are in ops/bitwise.hpp).
//
// Shape rule: the operands of a binary op have the same set of dimensions, aligned
// by name (the rhs is transposed into the lhs's order when they differ); a rank-0
// operand broadcasts. Anything else is a compile error that names both dimension
// lists: broadcasting to new dimensions is asked for with broadcast<...>. The
// dtypes must be the same: there is no implicit promotion.
#pragma once

#include <type_traits>

#include "common.hpp"

namespace scribe {

namespace detail {

template <op K, class TA, class... A, class TB, class... B>
auto binary_impl(const tensor<TA, A...>& a, const tensor<TB, B...>& b, op kind, comparison dir) {
    using LA = dims<A...>;
    using LB = dims<B...>;
    if constexpr (!std::is_same_v<TA, TB>) {
        (void)diagnose::dtype_mismatch<op_tag<K>, TA, TB>{};
        return detail::rejected<tensor<std::conditional_t<K == op::compare, dtype_of<pred>, TA>, A...>>();
    } else if constexpr (!admits(info(K).operands, TA::id)) {  // the op table's dtypes (no add of pred)
        (void)diagnose::unsupported_dtype<op_tag<K>, TA>{};
        return detail::rejected<tensor<std::conditional_t<K == op::compare, dtype_of<pred>, TA>, A...>>();
    } else if constexpr (LA::rank == 0 && LB::rank != 0) {
        same_graph(a.owner(), b.owner(), info(kind).name);
        return binary_impl<K>(tensor<TB, B...>(b.owner(), ir::broadcast(b.owner(), a.id(), b.shape(), {})), b,
                              kind, dir);
    } else if constexpr (LB::rank == 0 && LA::rank != 0) {
        same_graph(a.owner(), b.owner(), info(kind).name);
        return binary_impl<K>(a, tensor<TA, A...>(a.owner(), ir::broadcast(a.owner(), b.id(), a.shape(), {})),
                              kind, dir);
    } else if constexpr (!same_dim_set<LA, LB>) {
        (void)diagnose::elementwise_dims_differ<op_tag<K>, LA, LB>{};
        return detail::rejected<tensor<std::conditional_t<K == op::compare, dtype_of<pred>, TA>, A...>>();
    } else if constexpr (extent_conflict<LA, LB>::value) {
        (void)diagnose::static_extent_conflict<LA, LB>{};
        return detail::rejected<tensor<std::conditional_t<K == op::compare, dtype_of<pred>, TA>, A...>>();
    } else {
        same_graph(a.owner(), b.owner(), info(kind).name);
        using R = typename merge_impl<LA, LB>::type;
        using T = std::conditional_t<K == op::compare, dtype_of<pred>, TA>;
        node n;
        n.kind = kind;
        n.direction = dir;
        n.operands = {a.id(), align<LA, LB>(a.owner(), b.id())};
        return emit<T, R>(a.owner(), std::move(n));
    }
}

template <op K, class TA, class... A, class TB, class... B>
auto binary(const tensor<TA, A...>& a, const tensor<TB, B...>& b) {
    return binary_impl<K>(a, b, K, comparison::eq);
}

// The dtypes the op table admits (XLA's rules): neg and abs take signed numbers
// and floats, exp and the other transcendental ops floats only.
template <op K, class T>
inline constexpr bool unary_accepts = admits(info(K).operands, T::id);

template <op K, class T, class... S>
auto unary(const tensor<T, S...>& x) {
    if constexpr (!unary_accepts<K, T>) {
        (void)diagnose::unsupported_dtype<op_tag<K>, T>{};
        return detail::rejected<tensor<T, S...>>();
    } else {
        node n;
        n.kind = K;
        n.operands = {x.id()};
        return emit<T, dims<S...>>(x.owner(), std::move(n));
    }
}

// A C++ number as a scalar of x's dtype. Floats round to the dtype; an integer
// dtype takes only the integers it can hold (x * 0.5 on s32 would be x * 0).
template <class T, class... S>
tensor<T> scalar_like(const tensor<T, S...>& x, double value) {
    if constexpr (!is_float(T::id)) {
        unsigned char bytes[8];
        store_as(T::id, value, bytes);
        if (load_as_double(T::id, bytes) != value)
            throw error("the number " + std::to_string(value) + " is not a value of " + std::string(T::name()) +
                        "; convert the tensor or use a number it can hold");
    }
    return x.owner().constant(T{}, value);
}

}  // namespace detail

// Unary ops. neg, abs and sign take signed integers and floats; exp, expm1, log,
// log1p, sqrt, rsqrt, tanh, logistic, sin, cos, erf, floor take floats only.
// sign(x) is -1, 0 or 1 (a float's zero keeps its sign, NaN stays NaN, as XLA);
// expm1(x) = exp(x) - 1 and log1p(x) = log(1 + x), exact near 0.
template <Tensor X> auto neg(const X& x) { return detail::unary<op::neg>(x); }
template <Tensor X> auto abs(const X& x) { return detail::unary<op::abs>(x); }
template <Tensor X> auto sign(const X& x) { return detail::unary<op::sign>(x); }
template <Tensor X> auto exp(const X& x) { return detail::unary<op::exp>(x); }
template <Tensor X> auto expm1(const X& x) { return detail::unary<op::expm1>(x); }
template <Tensor X> auto log(const X& x) { return detail::unary<op::log>(x); }
template <Tensor X> auto log1p(const X& x) { return detail::unary<op::log1p>(x); }
template <Tensor X> auto sqrt(const X& x) { return detail::unary<op::sqrt>(x); }
template <Tensor X> auto rsqrt(const X& x) { return detail::unary<op::rsqrt>(x); }
template <Tensor X> auto tanh(const X& x) { return detail::unary<op::tanh>(x); }
template <Tensor X> auto logistic(const X& x) { return detail::unary<op::logistic>(x); }
template <Tensor X> auto sin(const X& x) { return detail::unary<op::sin>(x); }
template <Tensor X> auto cos(const X& x) { return detail::unary<op::cos>(x); }
template <Tensor X> auto erf(const X& x) { return detail::unary<op::erf>(x); }
template <Tensor X> auto floor(const X& x) { return detail::unary<op::floor>(x); }

// A C++ number where a tensor is expected: a scalar of the tensor's dtype.
template <class N>
concept Number = std::is_arithmetic_v<N>;

// Binary ops, aligned by dimension name. Each also takes a C++ number on either
// side (maximum(x, 0.0), pow(2.0, x)), made a scalar of the tensor's dtype as the
// operators do (detail::scalar_like: rounded for floats, refused by integer
// dtypes that cannot hold it exactly).
template <Tensor A, Tensor B> auto add(const A& a, const B& b) { return detail::binary<op::add>(a, b); }
template <Tensor A, Tensor B> auto subtract(const A& a, const B& b) { return detail::binary<op::sub>(a, b); }
template <Tensor A, Tensor B> auto multiply(const A& a, const B& b) { return detail::binary<op::mul>(a, b); }
template <Tensor A, Tensor B> auto divide(const A& a, const B& b) { return detail::binary<op::div>(a, b); }
template <Tensor A, Tensor B> auto maximum(const A& a, const B& b) { return detail::binary<op::max>(a, b); }
template <Tensor A, Tensor B> auto minimum(const A& a, const B& b) { return detail::binary<op::min>(a, b); }
template <Tensor A, Tensor B> auto pow(const A& a, const B& b) { return detail::binary<op::pow>(a, b); }

template <Tensor A, Number N> auto add(const A& a, N v) { return add(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto add(N v, const A& a) { return add(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto subtract(const A& a, N v) { return subtract(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto subtract(N v, const A& a) { return subtract(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto multiply(const A& a, N v) { return multiply(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto multiply(N v, const A& a) { return multiply(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto divide(const A& a, N v) { return divide(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto divide(N v, const A& a) { return divide(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto maximum(const A& a, N v) { return maximum(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto maximum(N v, const A& a) { return maximum(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto minimum(const A& a, N v) { return minimum(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto minimum(N v, const A& a) { return minimum(detail::scalar_like(a, static_cast<double>(v)), a); }
template <Tensor A, Number N> auto pow(const A& a, N v) { return pow(a, detail::scalar_like(a, static_cast<double>(v))); }
template <Number N, Tensor A> auto pow(N v, const A& a) { return pow(detail::scalar_like(a, static_cast<double>(v)), a); }

// clamp(x, lo, hi) = minimum(maximum(x, lo), hi); lo and hi are tensors or C++
// numbers, as for maximum and minimum (a NaN stays NaN).
template <Tensor X, class L, class H>
auto clamp(const X& x, const L& lo, const H& hi) {
    return minimum(maximum(x, lo), hi);
}

// Operators: tensor with tensor, or with a C++ number taken as a scalar of the
// tensor's dtype (x * 0.5).
template <Tensor A, Tensor B> auto operator+(const A& a, const B& b) { return add(a, b); }
template <Tensor A, Tensor B> auto operator-(const A& a, const B& b) { return subtract(a, b); }
template <Tensor A, Tensor B> auto operator*(const A& a, const B& b) { return multiply(a, b); }
template <Tensor A, Tensor B> auto operator/(const A& a, const B& b) { return divide(a, b); }
template <Tensor A> auto operator-(const A& a) { return neg(a); }

template <Tensor A, Number N> auto operator+(const A& a, N v) { return add(a, v); }
template <Tensor A, Number N> auto operator-(const A& a, N v) { return subtract(a, v); }
template <Tensor A, Number N> auto operator*(const A& a, N v) { return multiply(a, v); }
template <Tensor A, Number N> auto operator/(const A& a, N v) { return divide(a, v); }
template <Number N, Tensor A> auto operator+(N v, const A& a) { return add(v, a); }
template <Number N, Tensor A> auto operator-(N v, const A& a) { return subtract(v, a); }
template <Number N, Tensor A> auto operator*(N v, const A& a) { return multiply(v, a); }
template <Number N, Tensor A> auto operator/(N v, const A& a) { return divide(v, a); }

// compare<comparison::lt>(a, b) and its short forms; the result is pred. Either
// operand may be a C++ number, as for the binary ops (lt(x, 0.0)).
template <comparison C, Tensor A, Tensor B>
auto compare(const A& a, const B& b) {
    return detail::binary_impl<op::compare>(a, b, op::compare, C);
}
template <comparison C, Tensor A, Number N>
auto compare(const A& a, N v) {
    return compare<C>(a, detail::scalar_like(a, static_cast<double>(v)));
}
template <comparison C, Number N, Tensor A>
auto compare(N v, const A& a) {
    return compare<C>(detail::scalar_like(a, static_cast<double>(v)), a);
}
template <class A, class B>
concept CompareOperands = (Tensor<A> && (Tensor<B> || Number<B>)) || (Number<A> && Tensor<B>);
template <class A, class B> requires CompareOperands<A, B> auto eq(const A& a, const B& b) { return compare<comparison::eq>(a, b); }
template <class A, class B> requires CompareOperands<A, B> auto ne(const A& a, const B& b) { return compare<comparison::ne>(a, b); }
template <class A, class B> requires CompareOperands<A, B> auto lt(const A& a, const B& b) { return compare<comparison::lt>(a, b); }
template <class A, class B> requires CompareOperands<A, B> auto le(const A& a, const B& b) { return compare<comparison::le>(a, b); }
template <class A, class B> requires CompareOperands<A, B> auto gt(const A& a, const B& b) { return compare<comparison::gt>(a, b); }
template <class A, class B> requires CompareOperands<A, B> auto ge(const A& a, const B& b) { return compare<comparison::ge>(a, b); }

// select(condition, on_true, on_false): all three with one set of dimensions, the
// condition pred, the branches of one dtype; the result in on_true's order.
template <class TP, class... P, class TA, class... A, class TB, class... B>
auto select(const tensor<TP, P...>& c, const tensor<TA, A...>& a, const tensor<TB, B...>& b) {
    using LA = dims<A...>;
    if constexpr (!std::is_same_v<TP, dtype_of<pred>>) {
        (void)diagnose::unsupported_dtype<op_tag<op::select>, TP>{};
        return detail::rejected<tensor<TA, A...>>();
    } else if constexpr (!std::is_same_v<TA, TB>) {
        (void)diagnose::dtype_mismatch<op_tag<op::select>, TA, TB>{};
        return detail::rejected<tensor<TA, A...>>();
    } else if constexpr (!same_dim_set<LA, dims<B...>>) {
        (void)diagnose::elementwise_dims_differ<op_tag<op::select>, LA, dims<B...>>{};
        return detail::rejected<tensor<TA, A...>>();
    } else if constexpr (!same_dim_set<LA, dims<P...>>) {
        (void)diagnose::elementwise_dims_differ<op_tag<op::select>, dims<P...>, LA>{};
        return detail::rejected<tensor<TA, A...>>();
    } else {
        detail::same_graph(a.owner(), b.owner(), "select");
        detail::same_graph(a.owner(), c.owner(), "select");
        graph& g = a.owner();
        node n;
        n.kind = op::select;
        n.operands = {detail::align<LA, dims<P...>>(g, c.id()), a.id(), detail::align<LA, dims<B...>>(g, b.id())};
        return detail::emit<TA, LA>(g, std::move(n));
    }
}

// convert<f16>(x): the only way to change a dtype (to x's own dtype: x itself).
template <auto To, class T, class... S>
    requires DtypeTag<std::remove_cvref_t<decltype(To)>>
auto convert(const tensor<T, S...>& x) {
    using R = std::remove_cvref_t<decltype(To)>;
    if constexpr (std::is_same_v<R, T>) {
        return x;
    } else {
        node n;
        n.kind = op::convert;
        n.type = R::id;
        n.operands = {x.id()};
        return detail::emit<R, dims<S...>>(x.owner(), std::move(n));
    }
}

// bitcast_convert<u32>(x): x's elements with their bits read as another dtype of
// the same width (f32 <-> s32/u32, f64 <-> s64, s8 <-> u8, f16 <-> bf16, ...).
// Other widths do not compile (XLA would change the shape).
template <auto To, class T, class... S>
    requires DtypeTag<std::remove_cvref_t<decltype(To)>>
auto bitcast_convert(const tensor<T, S...>& x) {
    using R = std::remove_cvref_t<decltype(To)>;
    if constexpr (info(R::id).bytes != info(T::id).bytes) {
        (void)diagnose::bitcast_widths_differ<T, R>{};
        return detail::rejected<tensor<R, S...>>();
    } else {
        node n;
        n.kind = op::bitcast_convert;
        n.type = R::id;
        n.operands = {x.id()};
        return detail::emit<R, dims<S...>>(x.owner(), std::move(n));
    }
}

}  // namespace scribe
