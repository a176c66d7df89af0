// scribe/cpu/executor.hpp — runs a graph on the CPU.
//
//     cpu::executor run(g);                       // g has its outputs set
//     auto outs = run({cpu::borrow(x), cpu::borrow(w)});   // inputs in parameter order
//
// Inputs are borrowed, never copied: a weight in an mmapped file stays where it is.
// cpu::executor(g, {.threads = 2}) sets the worker threads (default: one per
// hardware thread); results depend only on the thread count. Chains of
// element-wise ops run fused (fusion_report() lists them), each intermediate is
// freed after its last reader, and stats() tells the last run's peak bytes. One
// executor runs one graph at a time.
// A graph with collectives runs as several replicas in one process:
// run_replicas(inputs[r][k]) evaluates every replica node by node, so all_reduce
// and all_gather combine the replicas of each group directly.
#pragma once

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "../graph/graph.hpp"
#include "fusion.hpp"
#include "kernels.hpp"

namespace scribe::cpu {

struct options {
    unsigned threads = 0;  // worker threads for the heavy kernels; 0: one per hardware thread
    bool fuse = true;      // run chains of element-wise ops in one pass (cpu/fusion.hpp)
};

// What the last run used: buffers it allocated and the most bytes live at once.
// Inputs are borrowed and not counted; outputs are.
struct run_stats {
    std::size_t buffers = 0;
    std::size_t peak_bytes = 0;
};

class executor {
public:
    explicit executor(const graph& g, options opt = {}) : g_(g), pool_(std::make_unique<thread_pool>(opt.threads)) {
        if (g_.outputs().empty())
            throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " has no outputs; call g.outputs(...)");
        if (opt.fuse) fusion_ = plan_fusion(g_);
        else fusion_.group_of.assign(g_.nodes().size(), -1);
        plan_lifetimes();
    }

    unsigned threads() const { return pool_->size(); }
    const fusion_plan& fusion() const { return fusion_; }
    // One line per fused group: which nodes run in one pass.
    std::string fusion_report() const { return fusion_.report(g_); }
    const run_stats& stats() const { return stats_; }

    // One replica; inputs in parameter order. Returns the outputs in order. An
    // output that is a parameter itself is returned as a view of that input.
    std::vector<array> operator()(std::span<const array> inputs) const {
        std::vector<std::vector<array>> per_replica(1, std::vector<array>(inputs.begin(), inputs.end()));
        return std::move(run_replicas(per_replica).front());
    }
    std::vector<array> operator()(std::initializer_list<array> inputs) const {
        return (*this)(std::span<const array>(inputs.begin(), inputs.size()));
    }

    // inputs[r][k]: parameter k of replica r. Returns outputs[r][k].
    std::vector<std::vector<array>> run_replicas(const std::vector<std::vector<array>>& inputs) const {
        const auto replicas = inputs.size();
        if (replicas == 0) throw error("cpu: run_replicas needs at least one replica");
        const auto& nodes = g_.nodes();
        std::vector<std::vector<array>> values(replicas, std::vector<array>(nodes.size()));
        for (std::size_t r = 0; r < replicas; ++r) check_inputs(inputs[r], r);
        stats_ = {};
        std::size_t live = 0;
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto& n = nodes[i];
            const auto root = fusion_.group_of[i];
            if (root >= 0 && static_cast<std::size_t>(root) != i) continue;  // computed by its group's root
            if (n.kind == op::all_reduce || n.kind == op::all_gather) {
                collective(n, i, values, replicas);
            } else {
                for (std::size_t r = 0; r < replicas; ++r) {
                    auto operand = [&](std::size_t k) -> const array& {
                        return values[r][static_cast<std::size_t>(n.operands[k])];
                    };
                    if (n.kind == op::parameter)
                        values[r][i] = inputs[r][static_cast<std::size_t>(n.parameter_number)];
                    else if (root >= 0)
                        values[r][i] = run_fused(g_, fusion_.groups[static_cast<std::size_t>(group_index_[i])],
                                                 [&](node_id o) -> const array& { return values[r][static_cast<std::size_t>(o)]; });
                    else
                        values[r][i] = evaluate(n, operand);
                }
            }
            // Account the new buffers, then free the values this node was the last to read.
            for (std::size_t r = 0; r < replicas; ++r)
                if (!values[r][i].borrowed()) {
                    live += values[r][i].bytes();
                    ++stats_.buffers;
                }
            stats_.peak_bytes = std::max(stats_.peak_bytes, live);
            for (auto o : consumed_at_[i])
                for (std::size_t r = 0; r < replicas; ++r) {
                    auto& v = values[r][static_cast<std::size_t>(o)];
                    if (!v.borrowed()) live -= v.bytes();
                    v = array();
                }
        }
        std::vector<std::vector<array>> out(replicas);
        for (std::size_t r = 0; r < replicas; ++r)
            for (auto id : g_.outputs()) out[r].push_back(values[r][static_cast<std::size_t>(id)]);
        return out;
    }

private:
    void check_inputs(const std::vector<array>& in, std::size_t replica) const {
        if (static_cast<std::int64_t>(in.size()) != g_.parameter_count())
            throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " takes " +
                        std::to_string(g_.parameter_count()) + " inputs, replica " + std::to_string(replica) +
                        " got " + std::to_string(in.size()));
        for (const auto& n : g_.nodes()) {
            if (n.kind != op::parameter) continue;
            const auto& a = in[static_cast<std::size_t>(n.parameter_number)];
            bool same = a.type() == n.type && a.dims().size() == n.dims.size();
            for (std::size_t k = 0; same && k < n.dims.size(); ++k)
                same = a.dims()[k].extent == n.dims[k].extent &&
                       (a.dims()[k].name.empty() || a.dims()[k].name == n.dims[k].name);
            if (!same)
                throw error("cpu: parameter " + scribe::detail::ticked(n.label) + " is " + std::string(name(n.type)) +
                            to_string(n.dims) + " but input " + std::to_string(n.parameter_number) + " is " +
                            std::string(name(a.type())) + to_string(a.dims()));
        }
    }

    // The one switch from op to kernel.
    template <class Operand>
    array evaluate(const node& n, Operand&& operand) const {
        namespace k = kernels;
        auto rest = [&](std::size_t from) {
            std::vector<const array*> v;
            for (std::size_t j = from; j < n.operands.size(); ++j) v.push_back(&operand(j));
            return v;
        };
        switch (n.kind) {
            case op::constant: return k::constant(n);
            case op::iota: return k::iota(n);
            case op::convert: return k::convert(n, operand(0));
            case op::compare:
            case op::add: case op::sub: case op::mul: case op::div:
            case op::max: case op::min: case op::pow: return k::binary(n, operand(0), operand(1));
            case op::select: return k::select(n, operand(0), operand(1), operand(2));
            case op::broadcast: return k::broadcast(n, operand(0));
            case op::transpose: return k::transpose(n, operand(0));
            case op::reshape: return k::reshape(n, operand(0));
            case op::dot: return k::dot(n, operand(0), operand(1), pool_.get());
            case op::reduce: return k::reduce(n, operand(0));
            case op::argmax: return k::argmax(n, operand(0));
            case op::slice: return k::slice(n, operand(0));
            case op::dynamic_slice: return k::dynamic_slice(n, operand(0), rest(1));
            case op::dynamic_update_slice: return k::dynamic_update_slice(n, operand(0), operand(1), rest(2));
            case op::concatenate: return k::concatenate(n, rest(0));
            case op::pad: return k::pad(n, operand(0), operand(1));
            case op::gather: return k::gather(n, operand(0), operand(1));
            default:
                if (is_unary(n.kind)) return k::unary(n, operand(0));
                throw error("cpu: no kernel for " + std::string(info(n.kind).name));
        }
    }

    void collective(const node& n, std::size_t i, std::vector<std::vector<array>>& values, std::size_t replicas) const {
        std::vector<bool> done(replicas, false);
        for (const auto& group : n.replica_groups) {
            std::vector<const array*> xs;
            for (auto r : group) {
                if (r < 0 || static_cast<std::size_t>(r) >= replicas)
                    throw error("cpu: " + std::string(info(n.kind).name) + " names replica " + std::to_string(r) +
                                " but the run has " + std::to_string(replicas));
                xs.push_back(&values[static_cast<std::size_t>(r)][static_cast<std::size_t>(n.operands[0])]);
            }
            const auto result = n.kind == op::all_reduce ? kernels::all_reduce(n, xs) : kernels::all_gather(n, xs);
            for (auto r : group) {
                values[static_cast<std::size_t>(r)][i] = result;
                done[static_cast<std::size_t>(r)] = true;
            }
        }
        for (std::size_t r = 0; r < replicas; ++r)
            if (!done[r])
                throw error("cpu: replica " + std::to_string(r) + " is in no replica group of " +
                            std::string(info(n.kind).name));
    }

    // For each evaluated node, the values it is the last to read (never outputs).
    void plan_lifetimes() {
        const auto& nodes = g_.nodes();
        group_index_.assign(nodes.size(), -1);
        for (std::size_t k = 0; k < fusion_.groups.size(); ++k)
            group_index_[static_cast<std::size_t>(fusion_.groups[k].members.back())] = static_cast<int>(k);
        std::vector<std::int64_t> last(nodes.size(), -1);
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto root = fusion_.group_of[i];
            // A group member's operands are read when its root runs.
            const auto at = root >= 0 ? static_cast<std::int64_t>(root) : static_cast<std::int64_t>(i);
            for (auto o : nodes[i].operands)
                if (fusion_.group_of[static_cast<std::size_t>(o)] != root || root < 0)
                    last[static_cast<std::size_t>(o)] = std::max(last[static_cast<std::size_t>(o)], at);
        }
        for (std::size_t o = 0; o < nodes.size(); ++o)
            if (last[o] < 0) last[o] = static_cast<std::int64_t>(o);  // read by nobody: free at once
        for (auto o : g_.outputs()) last[static_cast<std::size_t>(o)] = static_cast<std::int64_t>(nodes.size());
        consumed_at_.assign(nodes.size(), {});
        for (std::size_t o = 0; o < nodes.size(); ++o)
            if (last[o] >= 0 && last[o] < static_cast<std::int64_t>(nodes.size()))
                consumed_at_[static_cast<std::size_t>(last[o])].push_back(static_cast<node_id>(o));
    }

    const graph& g_;
    std::unique_ptr<thread_pool> pool_;
    fusion_plan fusion_;
    std::vector<int> group_index_;
    std::vector<std::vector<node_id>> consumed_at_;
    mutable run_stats stats_;
};

}  // namespace scribe::cpu
