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
#include <span>
#include <string>
#include <string_view>
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
        if (extent <= 0)
            throw error("bind: dimension " + detail::ticked(dim) + " needs a positive extent, got " +
                        std::to_string(extent));
        auto [it, inserted] = extents_.emplace(std::string(dim), extent);
        if (!inserted && it->second != extent)
            throw error("dimension " + detail::ticked(dim) + " is bound to " +
                        std::to_string(it->second) + ", cannot bind it to " + std::to_string(extent));
        return *this;
    }
    std::optional<std::int64_t> bound(std::string_view dim) const {
        auto it = extents_.find(std::string(dim));
        if (it == extents_.end()) return std::nullopt;
        return it->second;
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
    std::int64_t parameter_count() const { return parameters_; }

    // Untyped entry point for a parameter with a known shape.
    node_id add_parameter(dtype type, shape dims, std::string label) {
        for (const auto& n : nodes_)
            if (n.kind == op::parameter && n.label == label)
                throw error("parameter: the name " + detail::ticked(label) + " is used twice");
        node n;
        n.kind = op::parameter;
        n.type = type;
        n.dims = std::move(dims);
        n.label = std::move(label);
        n.parameter_number = parameters_;
        const auto id = add(std::move(n));
        ++parameters_;
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
        for (const auto& a : aliases_)
            if (a.output == output || a.parameter_number == p.parameter_number)
                throw error("alias: output " + std::to_string(output) + " or parameter " +
                            detail::ticked(p.label) + " is aliased twice");
        aliases_.push_back({output, p.parameter_number});
    }
    const std::vector<io_alias>& aliases() const { return aliases_; }

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

private:
    std::string name_;
    std::vector<node> nodes_;
    std::map<std::string, std::int64_t, std::less<>> extents_;
    std::vector<node_id> outputs_;
    std::vector<io_alias> aliases_;
    std::int64_t parameters_ = 0;
};

}  // namespace scribe
