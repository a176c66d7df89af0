// scribe/graph/graph.hpp — the graph: an append-only list of IR nodes, the extents
// bound to dynamic dimensions, and the outputs.
//
// Nodes are only ever appended and every operand precedes its users, so the node
// list is already a valid HLO instruction order. The typed entry points (parameter,
// constant, iota, outputs) are declared here and defined in graph/tensor.hpp, where
// the typed handle is.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/tensor_spec.hpp"
#include "infer.hpp"
#include "node.hpp"

namespace scribe {

template <DtypeTag T, DimSlot... S>
class tensor;

// An output that reuses a parameter's buffer (a KV cache updated in place).
struct io_alias {
    std::size_t output;
    std::int64_t parameter_number;
};

class graph {
public:
    explicit graph(std::string name = "main") : name_(std::move(name)) {}

    const std::string& name() const { return name_; }

    // Binds dynamic extents: g.bind(hidden(768), vocab(50257)). Binding a dimension
    // again to another extent throws.
    template <std::same_as<dim_binding>... B>
    graph& bind(B... b) {
        (bind(b.name, b.extent), ...);
        return *this;
    }
    graph& bind(std::string_view dim, std::int64_t extent) {
        check_binding(dim, extent);
        extents_.emplace(std::string(dim), extent);
        return *this;
    }
    // Like bind, for extents shared by several graphs (a model's dimensions, one
    // table for many test graphs): a tensor that needs one takes it, and one that no
    // tensor uses is not an error. A later bind of the same dimension must agree.
    template <std::same_as<dim_binding>... B>
    graph& bind_if_used(B... b) {
        (bind_if_used(b.name, b.extent), ...);
        return *this;
    }
    graph& bind_if_used(std::string_view dim, std::int64_t extent) {
        check_binding(dim, extent);
        optional_extents_.emplace(std::string(dim), extent);
        return *this;
    }
    std::optional<std::int64_t> bound(std::string_view dim) const {
        if (auto it = extents_.find(dim); it != extents_.end()) return it->second;
        if (auto it = optional_extents_.find(dim); it != optional_extents_.end()) return it->second;
        return std::nullopt;
    }

    // Throws if a dimension bound with bind() is used by no tensor of the graph: a
    // misspelt name (g.bind(tokenz(7))) would otherwise pass silently. hlo::lower
    // and cpu::executor call it.
    void check_bindings() const {
        std::set<std::string_view> used;
        for (const auto& n : nodes_)
            for (const auto& d : n.dims) used.insert(d.name);
        std::string unused;
        for (const auto& [name, extent] : extents_)
            if (!used.contains(name)) unused += (unused.empty() ? "" : ", ") + detail::ticked(name) + " (" + std::to_string(extent) + ")";
        if (unused.empty()) return;
        std::string have;
        for (auto d : used) have += (have.empty() ? "" : ", ") + std::string(d);
        throw error("graph " + detail::ticked(name_) + ": g.bind gives an extent to " + unused +
                    " but no tensor of the graph has that dimension (a misspelt name?); its dimensions are " +
                    (have.empty() ? std::string("none") : have) + ". Extents shared by several graphs go to g.bind_if_used");
    }
    // The bound extent of `dim`; `context` says who asked, for the error.
    std::int64_t extent(std::string_view dim, std::string_view context) const {
        if (auto e = bound(dim)) return *e;
        throw error(std::string(context) + ": dimension " + detail::ticked(dim) +
                    " has no extent; give it a static one (" + std::string(dim) +
                    ".of<N>) or bind it (g.bind(" + std::string(dim) + "(N)))");
    }

    // Appends a node after checking it and inferring its shape; returns its id.
    node_id add(node n) {
        infer(nodes_, n);
        nodes_.push_back(std::move(n));
        return static_cast<node_id>(nodes_.size() - 1);
    }
    const node& operator[](node_id id) const { return nodes_.at(static_cast<std::size_t>(id)); }
    const std::vector<node>& nodes() const { return nodes_; }
    std::int64_t parameter_count() const { return static_cast<std::int64_t>(parameters_.size()); }

    // Parameter numbers follow the byte order of the parameters' names (as JAX
    // flattens a dict of arrays), never the order of creation: C++ leaves the order
    // in which function arguments are evaluated unspecified, so two parameters made
    // in one expression (f(g.parameter(a, "x"), g.parameter(b, "w"))) would
    // otherwise be numbered differently by different compilers. Adding a parameter
    // renumbers the ones whose names sort after it.
    //
    // The parameters' node ids in parameter-number order.
    std::vector<node_id> parameters() const {
        std::vector<node_id> ids;
        ids.reserve(parameters_.size());
        for (const auto& [_, id] : parameters_) ids.push_back(id);
        return ids;
    }
    // The parameter called `label`, or nullopt.
    std::optional<node_id> find_parameter(std::string_view label) const {
        auto it = parameters_.find(label);
        if (it == parameters_.end()) return std::nullopt;
        return it->second;
    }

    // Untyped entry point for a parameter with a known shape.
    node_id add_parameter(dtype type, shape dims, std::string label) {
        if (label.empty()) throw error("parameter: a parameter needs a name");
        if (parameters_.contains(label))
            throw error("parameter: the name " + detail::ticked(label) + " is used twice");
        node n;
        n.kind = op::parameter;
        n.type = type;
        n.dims = std::move(dims);
        n.label = label;
        const auto id = add(std::move(n));
        parameters_.emplace(std::move(label), id);
        std::int64_t number = 0;
        for (const auto& [_, p] : parameters_) nodes_[static_cast<std::size_t>(p)].parameter_number = number++;
        return id;
    }

    void set_outputs(std::vector<node_id> ids) {
        if (ids.empty()) throw error("outputs: a graph needs at least one output");
        for (auto id : ids) (void)(*this)[id];
        outputs_ = std::move(ids);
        aliases_.clear();
    }
    const std::vector<node_id>& outputs() const { return outputs_; }

    // Output `output` may reuse parameter `param`'s buffer; their shapes must agree.
    void alias_output(std::size_t output, node_id param) {
        if (output >= outputs_.size())
            throw error("alias: output " + std::to_string(output) + " does not exist (the graph has " +
                        std::to_string(outputs_.size()) + ")");
        const auto& p = (*this)[param];
        if (p.kind != op::parameter) throw error("alias: only a parameter can be aliased to an output");
        const auto& o = (*this)[outputs_[output]];
        if (o.type != p.type || o.dims != p.dims)
            throw error("alias: output " + std::to_string(output) + " is " + std::string(scribe::name(o.type)) +
                        to_string(o.dims) + " but parameter " + detail::ticked(p.label) + " is " +
                        std::string(scribe::name(p.type)) + to_string(p.dims));
        for (const auto& [o, q] : aliases_)
            if (o == output || q == param)
                throw error("alias: output " + std::to_string(output) + " or parameter " +
                            detail::ticked(p.label) + " is aliased twice");
        aliases_.emplace_back(output, param);
    }
    // The aliases with the parameters' current numbers.
    std::vector<io_alias> aliases() const {
        std::vector<io_alias> out;
        for (const auto& [o, p] : aliases_) out.push_back({o, (*this)[p].parameter_number});
        return out;
    }

    // Typed entry points, defined in graph/tensor.hpp.
    template <DtypeTag T, DimSlot... S>
    tensor<T, S...> parameter(tensor_spec<T, S...> spec, std::string label);
    template <DtypeTag T, DimSlot... S>
    tensor<T, S...> constant(tensor_spec<T, S...> spec, std::span<const double> values);
    template <DtypeTag T>
    tensor<T> constant(T type, double value);
    template <DtypeTag T, DimSlot... S, DimSlot A>
    tensor<T, S...> iota(tensor_spec<T, S...> spec, A along);
    // Sets the outputs: g.outputs(logits, cache). With no arguments, outputs() reads them.
    template <class T0, class... Ts>
    void outputs(const T0& t0, const Ts&... ts);
    template <class Param>
    void alias(std::size_t output, const Param& param);

    // Autocast of matrix products, torch.autocast's rule for them: while a dtype
    // is set, a dot of two f32 operands made by ir::dot (so by scribe::dot) runs
    // in that dtype: both operands are converted to it and the product back to
    // f32. Everything else (element-wise ops, reductions, softmax, norms, the
    // loss) stays f32. Gradients taken while it is set follow the converts, so
    // the backward pass's products run in the narrow dtype as well.
    void set_dot_autocast(std::optional<dtype> t) { dot_autocast_ = t; }
    std::optional<dtype> dot_autocast() const { return dot_autocast_; }

private:
    void check_binding(std::string_view dim, std::int64_t extent) const {
        if (extent <= 0)
            throw error("bind: dimension " + detail::ticked(dim) + " needs a positive extent, got " +
                        std::to_string(extent));
        if (auto e = bound(dim); e && *e != extent)
            throw error("dimension " + detail::ticked(dim) + " is bound to " + std::to_string(*e) +
                        ", cannot bind it to " + std::to_string(extent));
    }

    std::string name_;
    std::vector<node> nodes_;
    std::optional<dtype> dot_autocast_;
    std::map<std::string, std::int64_t, std::less<>> extents_;           // bind: each must be used
    std::map<std::string, std::int64_t, std::less<>> optional_extents_;  // bind_if_used
    std::vector<node_id> outputs_;
    std::vector<std::pair<std::size_t, node_id>> aliases_;  // output, parameter node
    std::map<std::string, node_id, std::less<>> parameters_;  // by name: the numbering
};

}  // namespace scribe
