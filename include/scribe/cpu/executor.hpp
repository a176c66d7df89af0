// scribe/cpu/executor.hpp — runs a graph on the CPU.
//
//     cpu::executor run(g);                       // g has its outputs set
//     auto outs = run({{"x", cpu::borrow(x)}, {"w", cpu::borrow(w)}});   // inputs by name
//     auto same = run({cpu::borrow(w), cpu::borrow(x)});   // or in parameter order
//
// Parameter order is the byte order of the parameters' names (graph::parameters),
// whatever order they were made in; input_names() lists the inputs run() takes.
// Inputs are borrowed, never copied: a weight in an mmapped file stays where it is.
// cpu::executor(g, {.threads = 2}) sets the worker threads (default: one per
// hardware thread); results depend only on the thread count. Chains of
// element-wise ops run fused (fusion_report() lists them), each intermediate is
// freed after its last reader (or written over by it, when that reader is an
// element-wise group), and stats() tells the last run's peak bytes. One
// executor runs one graph at a time.
// A graph with collectives runs as several replicas in one process:
// run_replicas(inputs[r][k]) evaluates every replica node by node, so all_reduce
// and all_gather combine the replicas of each group directly. Or each rank runs
// its own executor, on its own thread or in its own process, with
// options::comm (cpu/communicator.hpp): its collectives then meet the other
// ranks' through the communicator, and replica_id is the communicator's rank.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../graph/graph.hpp"
#include "../graph/tensor.hpp"
#include "../ops/random.hpp"
#include "communicator.hpp"
#include "fusion.hpp"
#include "kernels.hpp"
#include "packs.hpp"
#include "quantized.hpp"

namespace scribe::cpu {

struct options {
    unsigned threads = 0;  // worker threads for the heavy kernels; 0: one per hardware thread
    bool fuse = true;      // run chains of element-wise ops in one pass (cpu/fusion.hpp)
    bool profile = false;  // time every node: stats().node_seconds
    // Debugging: check every float value as it is computed and stop at the first
    // that holds a NaN or an infinity, naming the node and the weights it reads.
    bool check_finite = false;
    // This executor is one rank of a parallel run: collectives go through comm
    // (which must outlive the executor). Replica groups that cut its ranks into
    // several (a data- x tensor-parallel mesh) go through comm.split's parts,
    // made when the executor is (so every rank must make it at the same point).
    communicator* comm = nullptr;
    // Where bound weights' packed forms are kept (cpu/packs.hpp): share one among
    // the executors of graphs that bind the same weights, so each weight is packed
    // once (it must outlive them). Null: this executor keeps its own.
    weight_packs* packs = nullptr;
};

// An input given by its parameter's name: run({{"ids", ids}, {"mask", mask}}). The
// array is read where it is, not copied, so it must outlive the call.
struct input {
    std::string_view name;
    const array& value;
};

// What the last run used: buffers it allocated and the most bytes live at once.
// Inputs are borrowed and not counted; outputs are.
struct run_stats {
    std::size_t buffers = 0;
    std::size_t peak_bytes = 0;
    // The bytes of every buffer the run made: what it would hold at the end if it
    // freed nothing (each value is freed after its last reader, so a training
    // step's activations go as the backward pass reads them for the last time).
    std::size_t allocated_bytes = 0;
    std::size_t packed_bytes = 0;  // weights packed by bind(), kept between runs
    // Buffers that had to come from the heap: freed intermediates are recycled
    // within a run and across runs, so a repeated run needs only its outputs'.
    std::size_t fresh_buffers = 0;
    // Values that depend on no parameter (a causal mask from iota, say) are
    // computed once, by the first run, and kept: their bytes.
    std::size_t folded_values = 0, folded_bytes = 0;
    // With options::profile: seconds spent computing each node (a fused group's
    // time is its root's), indexed by node id.
    std::vector<double> node_seconds;
};

class executor {
public:
    explicit executor(const graph& g, options opt = {})
        : g_(g), pool_(std::make_unique<thread_pool>(opt.threads)), profile_(opt.profile), check_finite_(opt.check_finite), comm_(opt.comm),
          own_packs_(opt.packs ? nullptr : std::make_unique<weight_packs>()), packs_(opt.packs ? opt.packs : own_packs_.get()) {
        if (g_.outputs().empty())
            throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " has no outputs; call g.outputs(...)");
        g_.check_bindings();
        for (std::size_t i = 0; i < g_.nodes().size(); ++i)
            if (g_.nodes()[i].kind == op::parameter) parameter_nodes_.push_back(static_cast<node_id>(i));
        // What each node reads: its operands, but a product or gather of a q8
        // weight reads the weight's q and scale (cpu/quantized.hpp), and the nodes
        // that would make the f32 weight are then not run; and a q8 product's
        // input is one kernel reading x in blocks, not the nodes of its rule.
        reads_.resize(g_.nodes().size());
        for (std::size_t i = 0; i < g_.nodes().size(); ++i) {
            const auto& n = g_.nodes()[i];
            reads_[i] = n.operands;
            if (const auto p = kernels::q8_product_of(g_, n)) {
                reads_[i] = p->gather ? std::vector<node_id>{p->weight.q, p->weight.scale, p->other}
                                      : std::vector<node_id>{p->other, p->weight.q, p->weight.scale};
                q8_.emplace(i, *p);
            } else if (const auto xb = q8::match_input(g_, static_cast<node_id>(i))) {  // a q8 product's input: one kernel
                reads_[i] = {*xb};
                q8_inputs_.emplace(i, *xb);
            } else if (const auto sr = match_stochastic_round(g_, static_cast<node_id>(i))) {  // one pass, not its integer ops
                reads_[i] = {sr->x, sr->noise};
                rounded_.emplace(i, *sr);
            }
        }
        // The communicator's parts for collectives within groups (comm.split), made
        // in node order, the same on every rank.
        if (comm_)
            for (std::size_t i = 0; i < g_.nodes().size(); ++i) {
                const auto& n = g_.nodes()[i];
                if ((n.kind != op::all_reduce && n.kind != op::all_gather) || parts_.count(n.replica_groups)) continue;
                if (whole_group(n.replica_groups) || alone(n.replica_groups)) continue;
                try {
                    parts_.emplace(n.replica_groups, comm_->split(n.replica_groups));
                } catch (const error& e) {
                    throw error("cpu: " + std::string(info(n.kind).name) + " with replica groups " + detail::groups_text(n.replica_groups) +
                                " on a run of " + std::to_string(comm_->size()) + " ranks: " + e.what());
                }
            }
        // Values no output depends on (a gradient rule's discarded share, say) are never computed.
        needed_.assign(g_.nodes().size(), false);
        for (auto o : g_.outputs()) needed_[static_cast<std::size_t>(o)] = true;
        for (std::size_t i = g_.nodes().size(); i-- > 0;)
            if (needed_[i])
                for (auto o : reads_[i]) needed_[static_cast<std::size_t>(o)] = true;
        // Each float dot's offsets and strides, found once here rather than in every run.
        for (std::size_t i = 0; i < g_.nodes().size(); ++i) {
            const auto& n = g_.nodes()[i];
            if (n.kind == op::dot && needed_[i] && !q8_.count(i) && (n.type == dtype::f32 || n.type == dtype::f16 || n.type == dtype::bf16))
                dot_plans_.emplace(i, kernels::dot_plan(n, g_[n.operands[0]].dims, g_[n.operands[1]].dims));
        }
        if (opt.fuse) {
            std::vector<bool> apart(g_.nodes().size(), false);
            for (const auto& [i, xb] : q8_inputs_) apart[i] = true;
            for (const auto& [i, sr] : rounded_) apart[i] = true;
            fusion_ = plan_fusion(g_, &needed_, &apart);
        } else {
            fusion_.group_of.assign(g_.nodes().size(), -1);
            fusion_.inlined.assign(g_.nodes().size(), false);
        }
        plan_lifetimes();
    }

    unsigned threads() const { return pool_->size(); }
    const fusion_plan& fusion() const { return fusion_; }
    // One line per fused group: which nodes run in one pass.
    std::string fusion_report() const { return fusion_.report(g_); }
    const run_stats& stats() const { return stats_; }

    // The most bytes of intermediate values one run of one replica holds at once,
    // planned from the graph before anything runs, as a run counts them in
    // stats().peak_bytes: each value from the node that makes it to its last
    // reader, views and in-place updates free, the values kept between runs
    // (computed once from no parameter) throughout. The inputs are not counted.
    std::size_t planned_peak_bytes() const { return planned_peak().bytes; }

    // The same plan at its peak: the node that makes it and the values live then
    // (each with its bytes, largest first), to see where a step's memory goes.
    struct peak_plan {
        std::size_t bytes = 0;
        node_id at = -1;
        std::vector<std::pair<node_id, std::size_t>> live;
    };
    peak_plan planned_peak() const {
        const auto& nodes = g_.nodes();
        // Replays the plan up to node `stop` (all of it with -1): what each node
        // holds then, and the peak on the way.
        auto replay = [&](std::int64_t stop, peak_plan& p) {
            std::vector<std::size_t> held(nodes.size(), 0);
            std::size_t live = 0;
            for (std::size_t i = 0; i < nodes.size(); ++i) {
                const auto& n = nodes[i];
                const auto root = fusion_.group_of[i];
                if ((root >= 0 && static_cast<std::size_t>(root) != i) || fusion_.inlined[i] || n.kind == op::parameter) continue;
                const auto bytes = static_cast<std::size_t>(element_count(n.dims)) * static_cast<std::size_t>(info(n.type).bytes);
                const auto reused = reuse_[i];
                if (!needed_[i]) continue;
                if (relabels(n) || (updates_operand(n) && last_reader_[i])) {
                    if (last_reader_[i]) std::swap(held[i], held[static_cast<std::size_t>(n.operands[0])]);  // takes its buffer over
                } else if (reused >= 0 && (nodes[static_cast<std::size_t>(reused)].kind != op::parameter ||
                                           aliased_[static_cast<std::size_t>(nodes[static_cast<std::size_t>(reused)].parameter_number)])) {
                    std::swap(held[i], held[static_cast<std::size_t>(reused)]);  // writes over an operand's (or a donated input's) buffer
                } else {
                    held[i] = bytes;
                    live += bytes;
                }
                if (live > p.bytes || p.at < 0) {
                    p.bytes = live;
                    p.at = static_cast<node_id>(i);
                }
                if (static_cast<std::int64_t>(i) == stop) return held;
                for (auto o : consumed_at_[i]) {
                    const auto k = static_cast<std::size_t>(o);
                    if (keep_[k]) continue;  // kept for the next runs
                    live -= held[k];
                    held[k] = 0;
                }
            }
            return held;
        };
        peak_plan best;
        (void)replay(-1, best);
        if (best.at < 0) return best;
        peak_plan again;
        const auto held = replay(best.at, again);
        for (std::size_t k = 0; k < held.size(); ++k)
            if (held[k]) best.live.emplace_back(static_cast<node_id>(k), held[k]);
        std::sort(best.live.begin(), best.live.end(), [](const auto& x, const auto& y) {
            return x.second != y.second ? x.second > y.second : x.first < y.first;  // largest first, then by node
        });
        return best;
    }

    // Binds parameter `number` to a value the executor keeps, typically a weight:
    // run() then takes only the unbound parameters, still in parameter order. The
    // value is borrowed as given (an mmapped weight stays where it is); a matrix
    // that a float dot reads as its right operand, with 8 or more rows on the left,
    // is also packed once here for the GEMM (stats().packed_bytes), or found
    // packed in options::packs. Binding again replaces the value.
    void bind(std::int64_t number, array value) {
        const auto& nodes = g_.nodes();
        const auto it = std::find_if(nodes.begin(), nodes.end(), [&](const node& n) {
            return n.kind == op::parameter && n.parameter_number == number;
        });
        if (it == nodes.end())
            throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " has no parameter " + std::to_string(number));
        check_value(*it, value, "bound value");
        const auto id = static_cast<node_id>(it - nodes.begin());
        bound_.resize(static_cast<std::size_t>(g_.parameter_count()));
        bound_[static_cast<std::size_t>(number)] = std::move(value);
        const auto& v = *bound_[static_cast<std::size_t>(number)];
        // The right operand may also be the weight reshaped (a Conv1D weight viewed
        // as [hidden, qkv, heads, head_dim]): the same bytes under the dot's shape.
        auto reshaped_from = [&](node_id o) {
            while (g_[o].kind == op::reshape && o != id) o = g_[o].operands[0];
            return o == id;
        };
        // Packed under the parameter's name (its number where it has none), once
        // for every executor sharing packs_.
        const auto weight = it->label.empty() ? "#" + std::to_string(number) : it->label;
        if (own_packs_) own_packs_->forget(weight);  // binding again replaces the value
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto& n = nodes[i];
            if (n.kind != op::dot || q8_.contains(i) || !reshaped_from(n.operands[1]) || fusion_.inlined[static_cast<std::size_t>(n.operands[0])])
                continue;
            const auto& rhs = g_[n.operands[1]];
            const auto plan = kernels::plan_pack(n, g_[n.operands[0]].dims, g_[n.operands[0]].type, rhs.dims, v.type(), v.borrowed());
            if (plan.kind == kernels::pack_plan::form::none) packed_.erase(i);
            else packed_[i] = packs_->get(weight, plan, v.view().relabel(rhs.dims));
        }
        packed_bytes_ = 0;
        std::vector<const kernels::packed_weight*> counted;  // a pack two dots share counts once
        for (const auto& [_, p] : packed_)
            if (std::find(counted.begin(), counted.end(), p.get()) == counted.end()) {
                counted.push_back(p.get());
                packed_bytes_ += p->bytes();
            }
    }
    template <Tensor T>
    void bind(const T& parameter, array value) {
        const auto& n = parameter.ir();
        if (n.kind != op::parameter)
            throw error("cpu: bind needs a parameter, not a " + std::string(info(n.kind).name) + " node");
        bind(n.parameter_number, std::move(value));
    }
    // Binds the parameter called `name`: bind("wte", weights.at("wte")).
    void bind(std::string_view name, array value) { bind(g_[parameter_called(name)].parameter_number, std::move(value)); }
    // The parameters run() takes: those not bound, in parameter order.
    std::int64_t unbound_parameters() const {
        std::int64_t k = 0;
        for (std::int64_t p = 0; p < g_.parameter_count(); ++p) k += !is_bound(p);
        return k;
    }
    // Their names, in the order run() takes them.
    std::vector<std::string> input_names() const {
        std::vector<std::string> names;
        for (auto id : g_.parameters())
            if (!is_bound(g_[id].parameter_number)) names.push_back(g_[id].label);
        return names;
    }

    // One replica, inputs by name: every unbound parameter exactly once.
    std::vector<array> operator()(std::span<const input> inputs) const {
        std::vector<std::vector<array>> per_replica{in_order(inputs)};
        return std::move(run(std::move(per_replica), false).front());
    }
    std::vector<array> operator()(std::initializer_list<input> inputs) const {
        return (*this)(std::span<const input>(inputs.begin(), inputs.size()));
    }

    // One replica; inputs in parameter order. Returns the outputs in order. An
    // output that is a parameter itself is returned as a view of that input.
    std::vector<array> operator()(std::span<const array> inputs) const {
        std::vector<std::vector<array>> per_replica(1);
        for (const auto& a : inputs) per_replica[0].push_back(a.view());  // borrowed, not copied
        return std::move(run(std::move(per_replica), false).front());
    }
    std::vector<array> operator()(std::initializer_list<array> inputs) const {
        return (*this)(std::span<const array>(inputs.begin(), inputs.size()));
    }

    // Like operator(), but an input for a parameter that the graph aliases to an
    // output (graph::alias: a KV cache) is donated when it owns its buffer: the
    // executor writes into that buffer where it can (a dynamic_update_slice that is
    // the cache's last reader writes only the update) and the aliased output comes
    // back in it. The caller's donated arrays are left empty.
    std::vector<array> run_donating(std::vector<array> inputs) const {
        std::vector<std::vector<array>> per_replica(1);
        for (std::int64_t p = 0, k = 0; p < g_.parameter_count(); ++p) {
            if (is_bound(p)) continue;
            if (static_cast<std::size_t>(k) >= inputs.size()) break;  // the count is checked in run()
            auto& a = inputs[static_cast<std::size_t>(k++)];
            per_replica[0].push_back(aliased_[static_cast<std::size_t>(p)] ? std::move(a) : a.view());
        }
        for (std::size_t k = per_replica[0].size(); k < inputs.size(); ++k) per_replica[0].push_back(inputs[k].view());
        return std::move(run(std::move(per_replica), true).front());
    }

    // run_donating with the inputs by name: {{"ids", ids}, {"cache", std::move(cache)}}.
    std::vector<array> run_donating(named_arrays inputs) const {
        std::vector<input> named;
        for (const auto& [name, value] : inputs) named.push_back({name, value});
        const auto order = positions(named);
        std::vector<array> in;
        for (auto k : order) in.push_back(std::move(inputs[k].second));
        return run_donating(std::move(in));
    }

    // inputs[r][k]: parameter k of replica r. Returns outputs[r][k].
    std::vector<std::vector<array>> run_replicas(const std::vector<std::vector<array>>& inputs) const {
        std::vector<std::vector<array>> views(inputs.size());
        for (std::size_t r = 0; r < inputs.size(); ++r)
            for (const auto& a : inputs[r]) views[r].push_back(a.view());
        return run(std::move(views), false);
    }
    // inputs[r]: replica r's inputs by name.
    std::vector<std::vector<array>> run_replicas(const std::vector<std::vector<input>>& inputs) const {
        std::vector<std::vector<array>> views;
        for (const auto& r : inputs) views.push_back(in_order(r));
        return run(std::move(views), false);
    }

private:
    node_id parameter_called(std::string_view name) const {
        if (auto id = g_.find_parameter(name)) return *id;
        std::string known;
        for (auto id : g_.parameters()) known += (known.empty() ? "" : ", ") + scribe::detail::ticked(g_[id].label);
        throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " has no parameter " + scribe::detail::ticked(name) +
                    (known.empty() ? std::string(" (it has none)") : " (it has " + known + ")"));
    }
    // For named inputs: positions[k] is the index in `inputs` of the k-th input run() takes.
    std::vector<std::size_t> positions(std::span<const input> inputs) const {
        std::vector<std::optional<std::size_t>> at(static_cast<std::size_t>(g_.parameter_count()));
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            const auto& n = g_[parameter_called(inputs[k].name)];
            const auto p = static_cast<std::size_t>(n.parameter_number);
            if (is_bound(n.parameter_number))
                throw error("cpu: parameter " + scribe::detail::ticked(n.label) + " is bound (executor::bind); it is not an input");
            if (at[p]) throw error("cpu: input " + scribe::detail::ticked(n.label) + " is given twice");
            at[p] = k;
        }
        std::vector<std::size_t> order;
        std::string missing;
        for (auto id : g_.parameters()) {
            const auto p = g_[id].parameter_number;
            if (is_bound(p)) continue;
            if (at[static_cast<std::size_t>(p)]) order.push_back(*at[static_cast<std::size_t>(p)]);
            else missing += (missing.empty() ? "" : ", ") + scribe::detail::ticked(g_[id].label);
        }
        if (!missing.empty()) throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " needs input " + missing);
        return order;
    }
    std::vector<array> in_order(std::span<const input> inputs) const {
        std::vector<array> views;
        for (auto k : positions(inputs)) views.push_back(inputs[k].value.view());
        return views;
    }

    std::vector<std::vector<array>> run(std::vector<std::vector<array>> inputs, bool donate) const {
        const auto replicas = inputs.size();
        if (replicas == 0) throw error("cpu: run_replicas needs at least one replica");
        if (comm_ && replicas != 1)
            throw error("cpu: an executor with a communicator runs one rank; run_replicas needs one without");
        const auto& nodes = g_.nodes();
        std::vector<std::vector<array>> full;
        auto* all = &inputs;
        if (!bound_.empty()) {  // put the bound values in their places
            full.resize(replicas);
            for (std::size_t r = 0; r < replicas; ++r) {
                if (static_cast<std::int64_t>(inputs[r].size()) != unbound_parameters())
                    throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " takes " +
                                std::to_string(unbound_parameters()) + " unbound inputs, replica " + std::to_string(r) +
                                " got " + std::to_string(inputs[r].size()));
                for (std::int64_t p = 0, k = 0; p < g_.parameter_count(); ++p)
                    full[r].push_back(is_bound(p) ? bound_[static_cast<std::size_t>(p)]->view()
                                                  : std::move(inputs[r][static_cast<std::size_t>(k++)]));
            }
            all = &full;
        }
        for (std::size_t r = 0; r < replicas; ++r) check_inputs((*all)[r], r);
        buffer_pool::scope scope(&buffers_);
        // The values by node live in the executor between runs, emptied at the end
        // of each (a run is not reentrant: the buffers and stats are the
        // executor's too): a fresh vector of a q4 decoder's 6000 values came from
        // new pages on every step, 0.3 ms of its 4.5.
        values_.resize(replicas);
        for (auto& v : values_) v.resize(nodes.size());
        auto& values = values_;
        struct emptied {
            std::vector<std::vector<array>>& values;
            ~emptied() {
                for (auto& v : values)
                    for (auto& a : v) a = array();
            }
        } empty_at_exit{values_};
        const auto fresh_before = buffers_.fresh();
        stats_ = {};
        stats_.packed_bytes = packed_bytes_;
        if (profile_) stats_.node_seconds.assign(nodes.size(), 0.0);
        std::size_t live = 0;
        std::vector<bool> took_over(replicas);  // by replica: the node's value took over its operand's buffer
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto& n = nodes[i];
            if (!needed_[i]) continue;  // no output depends on it
            const auto root = fusion_.group_of[i];
            if (root >= 0 && static_cast<std::size_t>(root) != i) continue;  // computed by its group's root
            if (fusion_.inlined[i]) continue;                                   // read in place by its users
            if (constant_[i] && folded_) {  // computed by the first run
                if (keep_[i])
                    for (std::size_t r = 0; r < replicas; ++r) values[r][i] = folded_values_[i].view();
                continue;
            }
            const auto started = profile_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
            // A reshape or update that takes over its operand's buffer adds no bytes.
            std::fill(took_over.begin(), took_over.end(), false);
            if ((n.kind == op::all_reduce || n.kind == op::all_gather) && comm_) {
                values[0][i] = exchanged(n, values[0][static_cast<std::size_t>(n.operands[0])]);
            } else if (n.kind == op::all_reduce || n.kind == op::all_gather) {
                collective(n, i, values, replicas);
            } else if (n.kind == op::replica_id) {
                for (std::size_t r = 0; r < replicas; ++r) {
                    values[r][i] = array(dtype::u32, {});
                    const auto id = static_cast<std::uint32_t>(comm_ ? comm_->rank() : static_cast<int>(r));
                    std::memcpy(values[r][i].mutable_data(), &id, 4);
                }
            } else {
                for (std::size_t r = 0; r < replicas; ++r) {
                    auto operand = [&](std::size_t k) -> const array& {
                        return values[r][static_cast<std::size_t>(n.operands[k])];
                    };
                    if (n.kind == op::parameter) {
                        auto& input = (*all)[r][static_cast<std::size_t>(n.parameter_number)];
                        if (donate && aliased_[static_cast<std::size_t>(n.parameter_number)])
                            values[r][i] = std::move(input);  // donated: owned by the run from here on
                        else
                            values[r][i] = input.view();
                    } else if (relabels(n) || (updates_operand(n) && last_reader_[i])) {
                        auto& x = values[r][static_cast<std::size_t>(n.operands[0])];
                        took_over[r] = last_reader_[i] && x.owns();
                        values[r][i] = relabels(n) ? reshaped(n, i, x) : updated_in_place(n, values[r]);
                    } else if (root >= 0) {
                        array* reuse = nullptr;
                        if (reuse_[i] >= 0) {
                            auto& x = values[r][static_cast<std::size_t>(reuse_[i])];
                            if (x.owns()) reuse = &x;
                        }
                        took_over[r] = reuse != nullptr;
                        const auto k = static_cast<std::size_t>(group_index_[i]);
                        values[r][i] = run_fused(g_, fusion_.groups[k], fused_layouts_[k],
                                                 [&](node_id o) -> const array& { return values[r][static_cast<std::size_t>(o)]; },
                                                 pool_.get(), reuse, reuse_[i]);
                    } else if (const auto q = q8_.find(i); q != q8_.end()) {
                        values[r][i] = quantized(n, q->second, values[r]);
                    } else if (const auto in = q8_inputs_.find(i); in != q8_inputs_.end()) {
                        values[r][i] = kernels::q8_input(n, values[r][static_cast<std::size_t>(in->second)], pool_.get());
                    } else if (const auto sr = rounded_.find(i); sr != rounded_.end()) {
                        values[r][i] = kernels::stochastic_round_bf16(n, values[r][static_cast<std::size_t>(sr->second.x)],
                                                                      values[r][static_cast<std::size_t>(sr->second.noise)], pool_.get());
                    } else {
                        values[r][i] = evaluate(n, operand);
                    }
                }
            }
            if (profile_)
                stats_.node_seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            if (check_finite_)
                for (std::size_t r = 0; r < replicas; ++r) check_finite(i, values[r][i]);
            if (keep_[i]) {  // a value that depends on no parameter: kept for the next runs
                folded_values_[i] = std::move(values[0][i]);
                folded_bytes_ += folded_values_[i].bytes();
                ++folded_count_;
                for (std::size_t r = 0; r < replicas; ++r) values[r][i] = folded_values_[i].view();
            }
            // Account the new buffers, then free the values this node was the last to read.
            for (std::size_t r = 0; r < replicas; ++r)
                if (values[r][i].owns() && !took_over[r]) {
                    live += values[r][i].bytes();
                    stats_.allocated_bytes += values[r][i].bytes();
                    ++stats_.buffers;
                }
            stats_.peak_bytes = std::max(stats_.peak_bytes, live);
            for (auto o : consumed_at_[i])
                for (std::size_t r = 0; r < replicas; ++r) {
                    auto& v = values[r][static_cast<std::size_t>(o)];
                    if (v.owns()) {
                        live -= v.bytes();
                        v.recycle_into(buffers_);  // the next node of this run, or of the next run, takes it
                    }
                    v = array();
                }
        }
        stats_.fresh_buffers = buffers_.fresh() - fresh_before;
        folded_ = true;
        stats_.folded_values = folded_count_;
        stats_.folded_bytes = folded_bytes_;
        std::vector<std::vector<array>> out(replicas);
        for (std::size_t r = 0; r < replicas; ++r)
            for (std::size_t k = 0; k < g_.outputs().size(); ++k) {
                auto& v = values[r][static_cast<std::size_t>(g_.outputs()[k])];
                const auto& rest = g_.outputs();
                const bool again = std::find(rest.begin() + static_cast<std::ptrdiff_t>(k) + 1, rest.end(), rest[k]) != rest.end();
                if (constant_[static_cast<std::size_t>(rest[k])]) {  // a kept value: the caller gets a copy
                    auto copy = array::uninitialized(v.type(), v.dims());
                    if (copy.bytes()) std::memcpy(copy.mutable_data(), v.data(), copy.bytes());
                    out[r].push_back(std::move(copy));
                    continue;
                }
                out[r].push_back(again ? v : std::move(v));  // move unless the same node is a later output too
            }
        return out;
    }

    // options::check_finite: the first node whose value holds a NaN or an infinity.
    void check_finite(std::size_t i, const array& a) const {
        const auto t = a.type();
        if (!a.data() || (t != dtype::f32 && t != dtype::f16 && t != dtype::bf16 && t != dtype::f64)) return;
        const auto each = static_cast<std::size_t>(info(t).bytes);
        std::int64_t at = -1;
        for (std::int64_t k = 0; k < a.size() && at < 0; ++k)
            if (!std::isfinite(load_as_double(t, a.data() + static_cast<std::size_t>(k) * each))) at = k;
        if (at < 0) return;
        const auto& n = g_[static_cast<node_id>(i)];
        if (n.kind == op::parameter)
            throw error("cpu: input " + scribe::detail::ticked(n.label) + " holds a non-finite value (element " + std::to_string(at) + ")");
        // The weights nearest to the node (breadth first through its operands) say where in the model it is.
        std::vector<std::string> near;
        std::vector<bool> seen(g_.nodes().size(), false);
        std::vector<node_id> queue{static_cast<node_id>(i)};
        for (std::size_t q = 0; q < queue.size() && near.size() < 2; ++q)
            for (auto o : g_[queue[q]].operands) {
                if (seen[static_cast<std::size_t>(o)]) continue;
                seen[static_cast<std::size_t>(o)] = true;
                const auto& m = g_[o];
                if (m.kind == op::parameter && m.label.find("weight") != std::string::npos) near.push_back(m.label);
                else queue.push_back(o);
            }
        std::string reads;
        for (const auto& w : near) reads += (reads.empty() ? "" : ", ") + scribe::detail::ticked(w);
        throw error("cpu: the first non-finite value (NaN or infinity) is made by node " + std::to_string(i) + ", " +
                    std::string(info(n.kind).name) + " " + to_string(n.dims) + " in " + std::string(name(t)) + " (element " +
                    std::to_string(at) + ")" + (reads.empty() ? "" : ", which reads " + reads));
    }

    void check_inputs(const std::vector<array>& in, std::size_t replica) const {
        if (static_cast<std::int64_t>(in.size()) != g_.parameter_count())
            throw error("cpu: graph " + scribe::detail::ticked(g_.name()) + " takes " +
                        std::to_string(g_.parameter_count()) + " inputs, replica " + std::to_string(replica) +
                        " got " + std::to_string(in.size()));
        // The parameters only (a scan of every node reads the whole graph from memory
        // on each run, about 0.3 ms for a q4 decoder's 6000 nodes); bound values were
        // checked when bound.
        for (const auto id : parameter_nodes_) {
            const auto& n = g_[id];
            if (!is_bound(n.parameter_number)) check_value(n, in[static_cast<std::size_t>(n.parameter_number)], "input", n.parameter_number);
        }
    }

    // `what` (and `number`, when not -1) names the value in the error.
    void check_value(const node& n, const array& a, const char* what, std::int64_t number = -1) const {
        bool same = a.type() == n.type && a.dims().size() == n.dims.size();
        for (std::size_t k = 0; same && k < n.dims.size(); ++k)
            same = a.dims()[k].extent == n.dims[k].extent &&
                   (a.dims()[k].name.empty() || a.dims()[k].name == n.dims[k].name);
        if (!same)
            throw error("cpu: parameter " + scribe::detail::ticked(n.label) + " is " + std::string(name(n.type)) +
                        to_string(n.dims) + " but " + what + (number >= 0 ? " " + std::to_string(number) : std::string()) + " is " +
                        std::string(name(a.type())) + to_string(a.dims()));
    }

    bool is_bound(std::int64_t p) const {
        return static_cast<std::size_t>(p) < bound_.size() && bound_[static_cast<std::size_t>(p)].has_value();
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
            case op::bitcast_convert: return k::bitcast_convert(n, operand(0));
            case op::bitwise_not: return k::bitwise(n, operand(0), nullptr, pool_.get());
            case op::bitwise_and: case op::bitwise_or: case op::bitwise_xor:
            case op::shift_left: case op::shift_right_logical: case op::shift_right_arithmetic:
                return k::bitwise(n, operand(0), &operand(1), pool_.get());
            case op::compare:
            case op::add: case op::sub: case op::mul: case op::div:
            case op::max: case op::min: case op::pow: return k::binary(n, operand(0), operand(1), pool_.get());
            case op::select: return k::select(n, operand(0), operand(1), operand(2));
            case op::broadcast: return k::broadcast(n, operand(0));
            case op::transpose: return k::transpose(n, operand(0));
            case op::reshape:
            case op::stop_gradient: return k::reshape(n, operand(0));
            case op::dot: {
                const auto at = static_cast<std::size_t>(&n - g_.nodes().data());
                const auto p = packed_.find(at);
                const auto plan = dot_plans_.find(at);
                return k::dot(n, operand(0), operand(1), pool_.get(), p == packed_.end() ? nullptr : p->second.get(),
                              plan == dot_plans_.end() ? nullptr : &plan->second);
            }
            case op::reduce: return k::reduce(n, operand(0), pool_.get());
            case op::argmax: return k::argmax(n, operand(0));
            case op::slice: return k::slice(n, operand(0));
            case op::dynamic_slice: return k::dynamic_slice(n, operand(0), rest(1));
            case op::dynamic_update_slice: return k::dynamic_update_slice(n, operand(0), operand(1), rest(2));
            case op::concatenate: return k::concatenate(n, rest(0));
            case op::pad: return k::pad(n, operand(0), operand(1));
            case op::gather: return k::gather(n, operand(0), operand(1));
            case op::scatter: return k::scatter(n, operand(0), operand(1), operand(2));
            default:
                if (is_unary(n.kind)) return k::unary(n, operand(0));
                throw error("cpu: no kernel for " + std::string(info(n.kind).name));
        }
    }

    // A product or gather of a q8 weight, from its q and scale.
    array quantized(const node& n, const kernels::q8_product& p, const std::vector<array>& values) const {
        auto value = [&](node_id id) -> const array& { return values[static_cast<std::size_t>(id)]; };
        const auto& w = p.weight;
        if (p.gather) return kernels::q8_gather(n, value(w.q), value(w.scale), value(p.other), w.rows, w.k, w.format);
        return kernels::q8_dot(n, value(p.other), value(w.q), value(w.scale), g_[n.operands[1]].dims, w.format, pool_.get(), &p.lhs);
    }

    // Ops whose value is their operand's elements under new dimension names:
    // reshape, and stop_gradient (the identity; it matters to grad only).
    static bool relabels(const node& n) { return n.kind == op::reshape || n.kind == op::stop_gradient; }

    // A reshape keeps the elements in place: it relabels a borrowed input, and
    // takes over an intermediate's buffer when it is that value's last reader.
    // It is also a view of a value that outlives every reader of the reshape (a
    // KV cache that is an output, renamed for attention), and copies otherwise.
    array reshaped(const node& n, std::size_t i, array& x) const {
        if (x.borrowed() || outlived_[i]) return x.view().relabel(n.dims);
        if (last_reader_[i]) return std::move(x).relabel(n.dims);
        return array(x).relabel(n.dims);
    }

    // Ops that write into a copy of operand 0: a dynamic_update_slice, a scatter.
    static bool updates_operand(const node& n) { return n.kind == op::dynamic_update_slice || n.kind == op::scatter; }

    // Such an op that is its operand's last reader writes into the operand's
    // buffer when the run owns it (an intermediate, or a donated input).
    array updated_in_place(const node& n, std::vector<array>& values) const {
        auto& x = values[static_cast<std::size_t>(n.operands[0])];
        if (n.kind == op::scatter)
            return kernels::scatter(n, x, values[static_cast<std::size_t>(n.operands[1])], values[static_cast<std::size_t>(n.operands[2])], &x);
        std::vector<const array*> starts;
        for (std::size_t j = 2; j < n.operands.size(); ++j) starts.push_back(&values[static_cast<std::size_t>(n.operands[j])]);
        return kernels::dynamic_update_slice(n, x, values[static_cast<std::size_t>(n.operands[1])], starts, &x);
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

    // Groups of one: every rank by itself.
    static bool alone(const std::vector<std::vector<std::int64_t>>& groups) {
        return std::all_of(groups.begin(), groups.end(), [](const auto& gr) { return gr.size() == 1; });
    }
    // One group of all the communicator's ranks, in order.
    bool whole_group(const std::vector<std::vector<std::int64_t>>& groups) const {
        bool all = groups.size() == 1 && static_cast<int>(groups[0].size()) == comm_->size();
        for (int k = 0; all && k < comm_->size(); ++k) all = groups[0][static_cast<std::size_t>(k)] == k;
        return all;
    }

    // A collective of this rank through the communicator, or the part of it that
    // its group is.
    array exchanged(const node& n, const array& x) const {
        if (alone(n.replica_groups) || comm_->size() == 1) {  // each rank by itself
            const std::vector<const array*> one = {&x};
            return n.kind == op::all_reduce ? kernels::all_reduce(n, one) : kernels::all_gather(n, one);
        }
        communicator* comm = comm_;
        if (!whole_group(n.replica_groups)) comm = parts_.at(n.replica_groups).get();
        const auto ranks = comm->size();
        if (n.kind == op::all_reduce) {
            auto out = array::uninitialized(x.type(), x.dims());
            if (x.bytes()) std::memcpy(out.mutable_data(), x.data(), x.bytes());
            comm->all_reduce(x.type(), n.reduction, out.mutable_data(), out.size());
            return out;
        }
        auto gathered = array::uninitialized(x.type(), {{"ranks", static_cast<std::int64_t>(ranks) * x.size()}});
        comm->all_gather(x.data(), gathered.mutable_data(), x.bytes());
        std::vector<array> parts;
        std::vector<const array*> ptrs;
        for (int k = 0; k < ranks; ++k)
            parts.push_back(array::borrow(x.type(), x.dims(), gathered.data() + static_cast<std::size_t>(k) * x.bytes(), x.bytes()));
        for (const auto& p : parts) ptrs.push_back(&p);
        return kernels::all_gather(n, ptrs);
    }

    // For each evaluated node, the values it is the last to read (never outputs).
    void plan_lifetimes() {
        const auto& nodes = g_.nodes();
        group_index_.assign(nodes.size(), -1);
        fused_layouts_.clear();
        for (std::size_t k = 0; k < fusion_.groups.size(); ++k) {
            group_index_[static_cast<std::size_t>(fusion_.groups[k].members.back())] = static_cast<int>(k);
            fused_layouts_.push_back(layout_of(g_, fusion_, fusion_.groups[k]));
        }
        std::vector<std::int64_t> last(nodes.size(), -1);
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            if (fusion_.inlined[i] || !needed_[i]) continue;  // its source is read where its users run; or never run
            const auto root = fusion_.group_of[i];
            // A group member's operands are read when its root runs; an inlined
            // view's operand, by whoever reads the view.
            const auto at = root >= 0 ? static_cast<std::int64_t>(root) : static_cast<std::int64_t>(i);
            for (auto o : reads_[i]) {
                if (root >= 0 && fusion_.group_of[static_cast<std::size_t>(o)] == root) continue;
                const auto m = static_cast<std::size_t>(materialized(g_, fusion_, o));
                last[m] = std::max(last[m], at);
            }
        }
        for (std::size_t o = 0; o < nodes.size(); ++o)
            if (last[o] < 0) last[o] = static_cast<std::int64_t>(o);  // read by nobody: free at once
        for (auto o : g_.outputs()) last[static_cast<std::size_t>(o)] = static_cast<std::int64_t>(nodes.size());
        last_reader_.assign(nodes.size(), false);
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto& n = nodes[i];
            const bool takes = relabels(n) ||
                               (updates_operand(n) &&
                                std::count(n.operands.begin(), n.operands.end(), n.operands[0]) == 1 &&
                                !fusion_.inlined[static_cast<std::size_t>(n.operands[0])]);
            if (takes && fusion_.group_of[i] < 0 && !fusion_.inlined[i])
                last_reader_[i] = last[static_cast<std::size_t>(n.operands[0])] == static_cast<std::int64_t>(i);
        }
        outlived_.assign(nodes.size(), false);
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto& n = nodes[i];
            if (!relabels(n) || fusion_.group_of[i] >= 0 || fusion_.inlined[i] || last_reader_[i]) continue;
            // Not an output itself, and its operand is read (or kept) strictly after the
            // reshape's last reader: neither freed nor updated in place while the view is read.
            const auto end = static_cast<std::int64_t>(nodes.size());
            outlived_[i] = last[i] < end && last[static_cast<std::size_t>(n.operands[0])] > last[i];
        }
        aliased_.assign(static_cast<std::size_t>(g_.parameter_count()), false);
        for (const auto& a : g_.aliases()) aliased_[static_cast<std::size_t>(a.parameter_number)] = true;
        // Values that depend on no parameter (iota, constants and what is computed
        // from them only, such as a causal mask) are computed by the first run; the
        // ones that later nodes read are kept, the rest are not computed again.
        constant_.assign(nodes.size(), false);
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto& n = nodes[i];
            if (n.kind == op::parameter || n.kind == op::all_reduce || n.kind == op::all_gather || n.kind == op::replica_id)
                continue;
            constant_[i] = std::all_of(reads_[i].begin(), reads_[i].end(),
                                       [&](node_id o) { return constant_[static_cast<std::size_t>(o)]; });
        }
        keep_.assign(nodes.size(), false);
        for (std::size_t i = 0; i < nodes.size(); ++i) {
            const auto root = fusion_.group_of[i];
            // A constant member of a group whose root is not constant is computed
            // with its group on every run, so what it reads must be kept too.
            const bool every_run = !constant_[i] || (root >= 0 && !constant_[static_cast<std::size_t>(root)]);
            if (!every_run || fusion_.inlined[i] || !needed_[i]) continue;
            for (auto o : reads_[i]) {
                if (root >= 0 && fusion_.group_of[static_cast<std::size_t>(o)] == root) continue;
                const auto m = static_cast<std::size_t>(materialized(g_, fusion_, o));
                if (constant_[m]) keep_[m] = true;
            }
        }
        for (auto o : g_.outputs()) {
            const auto m = static_cast<std::size_t>(materialized(g_, fusion_, o));
            if (constant_[m]) keep_[m] = true;
        }
        folded_values_.assign(nodes.size(), array());
        consumed_at_.assign(nodes.size(), {});
        for (std::size_t o = 0; o < nodes.size(); ++o)
            if (last[o] >= 0 && last[o] < static_cast<std::int64_t>(nodes.size()))
                consumed_at_[static_cast<std::size_t>(last[o])].push_back(static_cast<node_id>(o));
        // A fused group that is the last reader of an operand of its own type and
        // size, read element for element only, writes over that operand's buffer
        // when the run owns it (an intermediate, or a donated input): AdamW's new
        // weights and moments take the old ones' places, a gradient sum its
        // operand's, and no second buffer of that size is made.
        reuse_.assign(nodes.size(), -1);
        for (const auto& grp : fusion_.groups) {
            const auto root = static_cast<std::size_t>(grp.members.back());
            const auto& r = nodes[root];
            std::vector<node_id> direct, through_view;
            for (auto m : grp.members)
                for (auto o : nodes[static_cast<std::size_t>(m)].operands) {
                    if (fusion_.group_of[static_cast<std::size_t>(o)] == static_cast<node_id>(root)) continue;
                    const auto src = materialized(g_, fusion_, o);
                    (src == o ? direct : through_view).push_back(src);
                }
            for (auto o : direct) {
                const auto k = static_cast<std::size_t>(o);
                const auto& n = nodes[k];
                if (last[k] != static_cast<std::int64_t>(root) || keep_[k] || constant_[k] || n.type != r.type ||
                    element_count(n.dims) != element_count(r.dims) || n.dims.size() != r.dims.size() ||
                    std::find(through_view.begin(), through_view.end(), o) != through_view.end())
                    continue;
                if (!detail::same_extents(n.dims, r.dims)) continue;
                reuse_[root] = o;
                break;
            }
        }
    }

    const graph& g_;
    std::unique_ptr<thread_pool> pool_;
    bool profile_ = false;
    bool check_finite_ = false;
    communicator* comm_ = nullptr;
    std::map<std::vector<std::vector<std::int64_t>>, std::shared_ptr<communicator>> parts_;  // comm_'s, by replica groups
    fusion_plan fusion_;
    std::vector<int> group_index_;
    std::vector<fused_layout> fused_layouts_;  // by group, as fusion_.groups
    std::vector<std::vector<node_id>> consumed_at_;
    std::vector<node_id> parameter_nodes_;  // the graph's parameters, in node order
    mutable std::vector<std::vector<array>> values_;  // run's values by replica and node, empty between runs
    std::vector<bool> last_reader_;  // a reshape or update that is its operand's last reader
    std::vector<node_id> reuse_;     // by fused group root: the operand whose buffer it writes over, or -1
    std::vector<std::vector<node_id>> reads_;  // by node: the values it reads (its operands, a q8 weight's q and scale, a q8 input's x)
    std::map<std::size_t, kernels::q8_product> q8_;  // by node: the products and gathers of q8 weights
    std::map<std::size_t, node_id> q8_inputs_;       // by node: the q8 product inputs, run from x in blocks
    std::map<std::size_t, stochastic_round_operands> rounded_;  // by node: stochastic roundings to bf16, run in one pass
    std::vector<bool> needed_;       // an output depends on it (the rest is never run)
    std::vector<bool> outlived_;     // a reshape whose operand outlives its readers: a view
    std::vector<bool> aliased_;      // by parameter number: aliased to an output
    std::vector<bool> constant_;     // depends on no parameter
    std::vector<bool> keep_;         // a constant that a non-constant node or an output reads
    mutable std::vector<array> folded_values_;  // by node: the kept constants, after the first run
    mutable bool folded_ = false;
    mutable std::size_t folded_bytes_ = 0, folded_count_ = 0;
    mutable run_stats stats_;
    mutable buffer_pool buffers_;
    std::vector<std::optional<array>> bound_;
    std::unique_ptr<weight_packs> own_packs_;  // options::packs, or these
    weight_packs* packs_;
    std::map<std::size_t, weight_packs::entry> packed_;  // by dot node
    std::map<std::size_t, kernels::dot_plan> dot_plans_;     // by float dot node
    std::size_t packed_bytes_ = 0;
};

}  // namespace scribe::cpu
