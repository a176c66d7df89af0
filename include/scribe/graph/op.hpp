// scribe/graph/op.hpp — the op set of the graph IR, one row of facts per op.
//
// The table is data, not enum ranges (as XLA's HLO_OPCODE_LIST and tinygrad's op
// groups are): each row says the op's name, its HLO opcode, how many operands it
// takes, its category, which dtypes its operands may have, whether it has a
// gradient rule and whether the CPU fuses it. The rules themselves are found by
// the op's name, one function or `case` per op in each place:
//
//   compile-time shape rule   ops/<family>.hpp      the op's function
//   run-time shape rule       graph/infer.hpp       infer(), a case per op
//   gradient (VJP) rule       graph/vjp.hpp         vjp_rule_for(), a function per op
//   HLO emission              hlo/lower.hpp         lowering::emit_node, a case per op
//   CPU kernel                cpu/executor.hpp      executor::evaluate, a case per op
//                             cpu/kernels.hpp       the kernel it calls
//
// The static_asserts below keep the table and the enum in step; graph/vjp.hpp
// asserts that every op marked differentiable has a gradient rule and no other
// op does.
#pragma once

#include <cstdint>
#include <string_view>

#include "../core/dtype.hpp"

namespace scribe {

enum class op : std::uint8_t {
    parameter, constant, iota, convert, bitcast_convert,
    // unary
    neg, abs, sign, exp, expm1, log, log1p, sqrt, rsqrt, tanh, logistic, sin, cos, erf, floor, bitwise_not,
    // binary
    add, sub, mul, div, max, min, pow,
    bitwise_and, bitwise_or, bitwise_xor, shift_left, shift_right_logical, shift_right_arithmetic,
    compare, select,
    // layout
    broadcast, transpose, reshape,
    dot, reduce,
    slice, dynamic_slice, dynamic_update_slice, concatenate, pad, gather, scatter, argmax,
    all_reduce, all_gather, replica_id,
    stop_gradient,
    count_
};

// What kind of op a row is: element-wise ops of one or two operands are `unary`
// and `binary` (the fused CPU kernel and the typed front treat them alike).
enum class op_category : std::uint8_t {
    leaf,         // no operands: parameter, constant, iota, replica_id
    unary,        // element-wise, one operand, same dtype out
    binary,       // element-wise, two operands of one dtype, same dtype out
    compare,      // element-wise, pred out
    select,       // element-wise choice by a pred
    convert,      // element-wise change of dtype (by value or by bits)
    layout,       // moves elements without arithmetic: broadcast, transpose, reshape, slices, pad
    contraction,  // dot
    reduction,    // reduce, argmax
    indexing,     // gather, scatter
    collective,   // across replicas
    identity,     // the operand itself (stop_gradient)
};

// The dtypes an op's (first, value) operands may have.
enum class operand_dtypes : std::uint8_t {
    any,               // every dtype, pred included
    numbers,           // every dtype but pred
    signed_or_float,   // s8, s32, s64 and the floats
    floats,            // f16, bf16, f32, f64
    integers_or_pred,  // bitwise ops
    integers,          // shifts
};

inline constexpr int variadic = -1;

struct op_info {
    op kind;
    std::string_view name;    // the op's name in scribe
    std::string_view opcode;  // the HLO opcode it lowers to ("" when it lowers to several, or none)
    int arity;                // operands, or `variadic`
    op_category category;
    operand_dtypes operands;
    bool differentiable;      // passes a gradient to its float operands (graph/vjp.hpp has its rule)
    bool fusible;             // the CPU's fused element-wise kernel evaluates it (f32/f16/bf16 values)
};

namespace detail {
using C = op_category;
using D = operand_dtypes;
}  // namespace detail

inline constexpr op_info op_table[] = {
    //  kind                          name                      HLO opcode                arity     category                        operand dtypes           grad   fused
    {op::parameter,              "parameter",              "parameter",              0,        detail::C::leaf,        detail::D::any,              false, false},
    {op::constant,               "constant",               "constant",               0,        detail::C::leaf,        detail::D::any,              false, false},
    {op::iota,                   "iota",                   "iota",                   0,        detail::C::leaf,        detail::D::numbers,          false, false},
    {op::convert,                "convert",                "convert",                1,        detail::C::convert,     detail::D::any,              true,  true},
    {op::bitcast_convert,        "bitcast_convert",        "bitcast-convert",        1,        detail::C::convert,     detail::D::any,              false, false},
    {op::neg,                    "neg",                    "negate",                 1,        detail::C::unary,       detail::D::signed_or_float,  true,  true},
    {op::abs,                    "abs",                    "abs",                    1,        detail::C::unary,       detail::D::signed_or_float,  true,  true},
    {op::sign,                   "sign",                   "sign",                   1,        detail::C::unary,       detail::D::signed_or_float,  false, true},
    {op::exp,                    "exp",                    "exponential",            1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::expm1,                  "expm1",                  "exponential-minus-one",  1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::log,                    "log",                    "log",                    1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::log1p,                  "log1p",                  "log-plus-one",           1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::sqrt,                   "sqrt",                   "sqrt",                   1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::rsqrt,                  "rsqrt",                  "rsqrt",                  1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::tanh,                   "tanh",                   "tanh",                   1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::logistic,               "logistic",               "logistic",               1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::sin,                    "sin",                    "sine",                   1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::cos,                    "cos",                    "cosine",                 1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::erf,                    "erf",                    "erf",                    1,        detail::C::unary,       detail::D::floats,           true,  true},
    {op::floor,                  "floor",                  "floor",                  1,        detail::C::unary,       detail::D::floats,           false, true},
    {op::bitwise_not,            "bitwise_not",            "not",                    1,        detail::C::unary,       detail::D::integers_or_pred, false, false},
    {op::add,                    "add",                    "add",                    2,        detail::C::binary,      detail::D::numbers,          true,  true},
    {op::sub,                    "subtract",               "subtract",               2,        detail::C::binary,      detail::D::numbers,          true,  true},
    {op::mul,                    "multiply",               "multiply",               2,        detail::C::binary,      detail::D::numbers,          true,  true},
    {op::div,                    "divide",                 "divide",                 2,        detail::C::binary,      detail::D::numbers,          true,  true},
    {op::max,                    "maximum",                "maximum",                2,        detail::C::binary,      detail::D::numbers,          true,  true},
    {op::min,                    "minimum",                "minimum",                2,        detail::C::binary,      detail::D::numbers,          true,  true},
    {op::pow,                    "power",                  "power",                  2,        detail::C::binary,      detail::D::numbers,          true,  true},
    {op::bitwise_and,            "bitwise_and",            "and",                    2,        detail::C::binary,      detail::D::integers_or_pred, false, false},
    {op::bitwise_or,             "bitwise_or",             "or",                     2,        detail::C::binary,      detail::D::integers_or_pred, false, false},
    {op::bitwise_xor,            "bitwise_xor",            "xor",                    2,        detail::C::binary,      detail::D::integers_or_pred, false, false},
    {op::shift_left,             "shift_left",             "shift-left",             2,        detail::C::binary,      detail::D::integers,         false, false},
    {op::shift_right_logical,    "shift_right_logical",    "shift-right-logical",    2,        detail::C::binary,      detail::D::integers,         false, false},
    {op::shift_right_arithmetic, "shift_right_arithmetic", "shift-right-arithmetic", 2,        detail::C::binary,      detail::D::integers,         false, false},
    {op::compare,                "compare",                "compare",                2,        detail::C::compare,     detail::D::any,              false, false},
    {op::select,                 "select",                 "select",                 3,        detail::C::select,      detail::D::any,              true,  true},
    {op::broadcast,              "broadcast",              "broadcast",              1,        detail::C::layout,      detail::D::any,              true,  false},
    {op::transpose,              "transpose",              "transpose",              1,        detail::C::layout,      detail::D::any,              true,  false},
    {op::reshape,                "reshape",                "reshape",                1,        detail::C::layout,      detail::D::any,              true,  false},
    {op::dot,                    "dot",                    "dot",                    2,        detail::C::contraction, detail::D::numbers,          true,  false},
    {op::reduce,                 "reduce",                 "reduce",                 1,        detail::C::reduction,   detail::D::any,              true,  false},
    {op::slice,                  "slice",                  "slice",                  1,        detail::C::layout,      detail::D::any,              true,  false},
    {op::dynamic_slice,          "dynamic_slice",          "dynamic-slice",          variadic, detail::C::layout,      detail::D::any,              true,  false},
    {op::dynamic_update_slice,   "dynamic_update_slice",   "dynamic-update-slice",   variadic, detail::C::layout,      detail::D::any,              true,  false},
    {op::concatenate,            "concatenate",            "concatenate",            variadic, detail::C::layout,      detail::D::any,              true,  false},
    {op::pad,                    "pad",                    "pad",                    2,        detail::C::layout,      detail::D::any,              true,  false},
    {op::gather,                 "gather",                 "gather",                 2,        detail::C::indexing,    detail::D::any,              true,  false},
    {op::scatter,                "scatter",                "scatter",                3,        detail::C::indexing,    detail::D::numbers,          true,  false},
    {op::argmax,                 "argmax",                 "",                       1,        detail::C::reduction,   detail::D::numbers,          false, false},
    {op::all_reduce,             "all_reduce",             "all-reduce",             1,        detail::C::collective,  detail::D::any,              true,  false},
    {op::all_gather,             "all_gather",             "all-gather",             1,        detail::C::collective,  detail::D::any,              true,  false},
    {op::replica_id,             "replica_id",             "replica-id",             0,        detail::C::leaf,        detail::D::any,              false, false},
    {op::stop_gradient,          "stop_gradient",          "",                       1,        detail::C::identity,    detail::D::any,              false, false},
};

// If this fails, an op was added to the enum without its row in op_table.
static_assert(std::size(op_table) == static_cast<std::size_t>(op::count_));
static_assert([] {
    for (std::size_t i = 0; i < std::size(op_table); ++i)
        if (static_cast<std::size_t>(op_table[i].kind) != i) return false;
    return true;
}(), "op_table rows must be in the enum's order");
// If this fails, a row's facts contradict each other.
static_assert([] {
    for (const auto& r : op_table) {
        if (r.category == op_category::unary && r.arity != 1) return false;
        if ((r.category == op_category::binary || r.category == op_category::compare) && r.arity != 2) return false;
        if (r.category == op_category::leaf && r.arity != 0) return false;
        if (r.fusible && r.category != op_category::unary && r.category != op_category::binary &&
            r.category != op_category::select && r.category != op_category::convert)
            return false;  // the fused kernel evaluates element-wise ops only
        if (r.differentiable && (r.operands == operand_dtypes::integers || r.operands == operand_dtypes::integers_or_pred))
            return false;  // no float operand to pass a gradient to
    }
    return true;
}(), "op_table: a row's facts contradict each other");

constexpr const op_info& info(op k) { return op_table[static_cast<std::size_t>(k)]; }

constexpr bool is_unary(op k) { return info(k).category == op_category::unary; }
constexpr bool is_binary(op k) { return info(k).category == op_category::binary; }

// Whether `t` is a dtype `kinds` admits.
constexpr bool admits(operand_dtypes kinds, dtype t) {
    switch (kinds) {
        case operand_dtypes::any: return true;
        case operand_dtypes::numbers: return t != dtype::pred;
        case operand_dtypes::signed_or_float: return is_float(t) || (is_integer(t) && info(t).is_signed);
        case operand_dtypes::floats: return is_float(t);
        case operand_dtypes::integers_or_pred: return !is_float(t);
        case operand_dtypes::integers: return is_integer(t);
    }
    return false;
}
// In words, for errors: "exp: takes float operands, got s32".
constexpr std::string_view describe(operand_dtypes kinds) {
    switch (kinds) {
        case operand_dtypes::any: return "operands of any dtype";
        case operand_dtypes::numbers: return "numeric operands (not pred)";
        case operand_dtypes::signed_or_float: return "signed integer or float operands";
        case operand_dtypes::floats: return "float operands";
        case operand_dtypes::integers_or_pred: return "integer or pred operands";
        case operand_dtypes::integers: return "integer operands";
    }
    return "";
}

// Names an op in diagnostics: scribe::op_tag<scribe::op::add>.
template <op K>
struct op_tag {};

enum class comparison : std::uint8_t { eq, ne, lt, le, gt, ge };
inline constexpr std::string_view comparison_names[] = {"EQ", "NE", "LT", "LE", "GT", "GE"};

enum class reducer : std::uint8_t { sum, max, min };
inline constexpr std::string_view reducer_names[] = {"sum", "max", "min"};

}  // namespace scribe
