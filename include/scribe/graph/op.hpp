// scribe/graph/op.hpp — the op set of the graph IR, one row per op.
//
// The table is the index of where each op lives: its compile-time shape rule is in
// ops/<family>.hpp, its run-time shape rule in graph/infer.hpp, its HLO emission in
// hlo/lower.hpp; each is a switch or a function named after the op, and the
// static_asserts below keep the table and the enum in step.
#pragma once

#include <cstdint>
#include <string_view>

namespace scribe {

enum class op : std::uint8_t {
    parameter, constant, iota, convert,
    // unary
    neg, abs, exp, log, sqrt, rsqrt, tanh, logistic, sin, cos, erf, floor,
    // binary
    add, sub, mul, div, max, min, pow,
    compare, select,
    // layout
    broadcast, transpose, reshape,
    dot, reduce,
    slice, dynamic_slice, dynamic_update_slice, concatenate, pad, gather, argmax,
    all_reduce, all_gather, replica_id,
    count_
};

struct op_info {
    op kind;
    std::string_view name;    // the op's name in scribe
    std::string_view opcode;  // the HLO opcode it lowers to ("" when it lowers to several)
};

inline constexpr op_info op_table[] = {
    {op::parameter, "parameter", "parameter"},
    {op::constant, "constant", "constant"},
    {op::iota, "iota", "iota"},
    {op::convert, "convert", "convert"},
    {op::neg, "neg", "negate"},
    {op::abs, "abs", "abs"},
    {op::exp, "exp", "exponential"},
    {op::log, "log", "log"},
    {op::sqrt, "sqrt", "sqrt"},
    {op::rsqrt, "rsqrt", "rsqrt"},
    {op::tanh, "tanh", "tanh"},
    {op::logistic, "logistic", "logistic"},
    {op::sin, "sin", "sine"},
    {op::cos, "cos", "cosine"},
    {op::erf, "erf", "erf"},
    {op::floor, "floor", "floor"},
    {op::add, "add", "add"},
    {op::sub, "subtract", "subtract"},
    {op::mul, "multiply", "multiply"},
    {op::div, "divide", "divide"},
    {op::max, "maximum", "maximum"},
    {op::min, "minimum", "minimum"},
    {op::pow, "power", "power"},
    {op::compare, "compare", "compare"},
    {op::select, "select", "select"},
    {op::broadcast, "broadcast", "broadcast"},
    {op::transpose, "transpose", "transpose"},
    {op::reshape, "reshape", "reshape"},
    {op::dot, "dot", "dot"},
    {op::reduce, "reduce", "reduce"},
    {op::slice, "slice", "slice"},
    {op::dynamic_slice, "dynamic_slice", "dynamic-slice"},
    {op::dynamic_update_slice, "dynamic_update_slice", "dynamic-update-slice"},
    {op::concatenate, "concatenate", "concatenate"},
    {op::pad, "pad", "pad"},
    {op::gather, "gather", "gather"},
    {op::argmax, "argmax", ""},
    {op::all_reduce, "all_reduce", "all-reduce"},
    {op::all_gather, "all_gather", "all-gather"},
    {op::replica_id, "replica_id", "replica-id"},
};

// If this fails, an op was added to the enum without its row in op_table.
static_assert(std::size(op_table) == static_cast<std::size_t>(op::count_));
static_assert([] {
    for (std::size_t i = 0; i < std::size(op_table); ++i)
        if (static_cast<std::size_t>(op_table[i].kind) != i) return false;
    return true;
}(), "op_table rows must be in the enum's order");

constexpr const op_info& info(op k) { return op_table[static_cast<std::size_t>(k)]; }

constexpr bool is_unary(op k) { return k >= op::neg && k <= op::floor; }
constexpr bool is_binary(op k) { return k >= op::add && k <= op::pow; }
// Unary ops defined on floats only.
constexpr bool is_transcendental(op k) {
    return k == op::exp || k == op::log || k == op::sqrt || k == op::rsqrt || k == op::tanh ||
           k == op::logistic || k == op::sin || k == op::cos || k == op::erf || k == op::floor;
}

// Names an op in diagnostics: scribe::op_tag<scribe::op::add>.
template <op K>
struct op_tag {};

enum class comparison : std::uint8_t { eq, ne, lt, le, gt, ge };
inline constexpr std::string_view comparison_names[] = {"EQ", "NE", "LT", "LE", "GT", "GE"};

enum class reducer : std::uint8_t { sum, max, min };
inline constexpr std::string_view reducer_names[] = {"sum", "max", "min"};

}  // namespace scribe
