// scribe/runtime/trainer.hpp — runs training steps on the CPU: the graphs of
// train::append_update (one, or first/middle/last for accumulated micro-batches),
// with the weights and the optimizer state held here and donated to each run, so
// every step updates them in place.
//
//     runtime::trainer t([&](graph& g) { return loss_of(g); }, weights, {.update = {...}, .threads = 2});
//     auto r = t.step({{{"ids", ids}, {"lengths", lengths}}});   // one micro-batch
//     // r.loss, r.grad_norm, r.lr; t.weights(), t.state() for a checkpoint
//
// The loss builder makes the same loss graph each time it is called (one per pass);
// its parameters are the weights (by name), the batch's inputs, and nothing else.
//
// Data parallel: one trainer per rank, each with the rank's communicator
// (options::comm; update.dp.replicas = its size) and its own slice of every
// batch. The first step's weights are rank 0's (broadcast when the trainer is
// made), and the step averages the ranks' gradients, so the ranks' weights stay
// identical, bit for bit. Under tensor parallelism too (a dp x tp mesh), the
// loss graph is one rank's, its weights the rank's shards, update.dp.groups the
// ranks that hold the same shards (parallel::mesh::across): the weights are
// broadcast from the first of each group, and the gradients averaged within it.
#pragma once

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../cpu/executor.hpp"
#include "../train/optimizer.hpp"

namespace scribe::runtime {

class trainer {
public:
    struct options {
        train::update_options update{};
        unsigned threads = 0;
        bool profile = false;  // time every node: last_stats().node_seconds
        // This trainer is one rank of a data-parallel run (update.dp.replicas ranks).
        cpu::communicator* comm = nullptr;
        // The weights that are this rank's shards under tensor parallelism (by
        // name; spmd::varying): their gradients are the shards of the whole's.
        std::vector<std::string> shards{};
    };
    struct result {
        double loss = 0;       // the mean of the micro-batches' losses
        double grad_norm = 0;  // the global gradient norm before clipping
        double lr = 0;         // the rate this step used
        std::int64_t step = 0; // steps taken, this one included
    };
    using batch = cpu::named_arrays;  // one micro-batch's inputs by name (views are fine)

    // `weights`: every trained weight by its parameter name (owned arrays are
    // updated in place; borrowed ones, mmapped from a checkpoint, are read by the
    // first step, whose outputs then hold the weights).
    trainer(std::function<node_id(graph&)> loss, cpu::named_arrays weights, options o) : o_(std::move(o)) {
        const int ranks = o_.comm ? o_.comm->size() : 1;
        const auto copies = o_.update.dp.replicas;
        // (One replica on several ranks: tensor-parallel ranks, nothing averaged.)
        if (o_.update.dp.groups.empty() ? ranks != copies && copies != 1 : ranks % copies != 0)
            throw error("trainer: the step averages over " + std::to_string(copies) + " data-parallel replicas, the run has " +
                        std::to_string(ranks) + " rank" + (ranks == 1 ? "" : "s"));
        for (const auto p : train::passes(o_.update.accumulate)) {
            auto g = std::make_unique<graph>(std::string("train_") + train::name(p));
            const auto l = loss(*g);
            std::vector<node_id> ids;
            spmd parallel;
            for (const auto& [name, _] : weights) {
                const auto id = g->find_parameter(name);
                if (!id) throw error("trainer: the loss graph has no parameter " + scribe::detail::ticked(name));
                ids.push_back(*id);
                if (std::find(o_.shards.begin(), o_.shards.end(), name) != o_.shards.end()) parallel.varying.push_back(*id);
            }
            plan_ = train::append_update(*g, l, ids, o_.update, p, parallel);
            graphs_.push_back(std::move(g));
            runs_.push_back(std::make_unique<cpu::executor>(
                *graphs_.back(), cpu::options{.threads = o_.threads, .profile = o_.profile, .comm = ranks > 1 ? o_.comm : nullptr}));
        }
        weights_ = std::move(weights);
        if (copies > 1) {  // every rank starts from the weights of the first rank of its data-parallel group
            std::shared_ptr<cpu::communicator> part;
            auto* group = o_.comm;
            if (!o_.update.dp.groups.empty()) {
                part = o_.comm->split(o_.update.dp.groups);
                group = part.get();
            }
            for (auto& [name, w] : weights_) {
                if (!w.owns()) {  // borrowed (mapped from a file): this rank's own copy, to be written
                    cpu::array own(w.type(), w.dims());
                    if (w.bytes() && group->rank() == 0) std::memcpy(own.mutable_data(), w.data(), w.bytes());
                    w = std::move(own);
                }
                if (w.bytes()) group->broadcast(w.mutable_data(), w.bytes(), 0);
            }
        }
        for (const auto& name : plan_.state) {
            const auto& n = (*graphs_.back())[*graphs_.back()->find_parameter(name)];
            state_.emplace_back(name, cpu::array(n.type, n.dims));  // zeros: step 0, empty moments
        }
    }

    // One optimizer step over `micro` (update.accumulate micro-batches).
    result step(std::span<const batch> micro) {
        const auto k = static_cast<std::size_t>(o_.update.accumulate);
        if (micro.size() != k)
            throw error("trainer: a step takes " + std::to_string(k) + " micro-batches, got " + std::to_string(micro.size()));
        result r;
        r.lr = o_.update.lr.at(steps());
        cpu::named_arrays acc;
        for (std::size_t j = 0; j < k; ++j) {
            const bool last = j + 1 == k;
            const auto& run = *runs_[k == 1 ? 0 : j == 0 ? 0 : last ? runs_.size() - 1 : 1];
            cpu::named_arrays in;
            for (const auto& [name, value] : micro[j]) in.emplace_back(name, value.view());
            for (auto& [name, w] : weights_) in.emplace_back(name, last ? std::move(w) : w.view());
            if (j > 0)
                for (auto& a : acc) in.push_back(std::move(a));
            if (last)
                for (auto& s : state_) in.emplace_back(s.first, std::move(s.second));
            auto out = run.run_donating(std::move(in));
            r.loss += out[0].template values<float>()[0];
            if (!last) {
                acc.clear();
                for (std::size_t i = 0; i < plan_.weights.size(); ++i) acc.emplace_back(plan_.accumulators[i], std::move(out[1 + i]));
                continue;
            }
            r.grad_norm = out[1].template values<float>()[0];
            for (std::size_t i = 0; i < weights_.size(); ++i) weights_[i].second = std::move(out[2 + i]);
            for (std::size_t i = 0; i < state_.size(); ++i) state_[i].second = std::move(out[2 + weights_.size() + i]);
        }
        r.loss /= static_cast<double>(k);
        r.step = steps();
        return r;
    }
    result step(const batch& one) { return step(std::span<const batch>(&one, 1)); }

    // Steps taken so far.
    std::int64_t steps() const { return state_.front().second.template values<std::int32_t>()[0]; }
    const cpu::named_arrays& weights() const { return weights_; }
    const cpu::named_arrays& state() const { return state_; }
    // Replaces the optimizer state (a resumed run's), each array by name.
    void set_state(cpu::named_arrays s) {
        for (auto& [name, value] : s) {
            auto it = std::find_if(state_.begin(), state_.end(), [&](const auto& e) { return e.first == name; });
            if (it == state_.end()) throw error("trainer: the optimizer has no state " + scribe::detail::ticked(name));
            if (value.type() != it->second.type() || value.dims() != it->second.dims())
                throw error("trainer: optimizer state " + scribe::detail::ticked(name) + " is " + std::string(scribe::name(value.type())) +
                            to_string(value.dims()) + ", the optimizer's is " + std::string(scribe::name(it->second.type())) +
                            to_string(it->second.dims()));
            it->second = std::move(value);
        }
    }
    const train::update_plan& plan() const { return plan_; }
    // The most bytes of intermediate values one of the step's graphs holds at
    // once, planned before any runs (cpu::executor::planned_peak_bytes).
    std::size_t planned_peak_bytes() const {
        std::size_t most = 0;
        for (const auto& r : runs_) most = std::max(most, r->planned_peak_bytes());
        return most;
    }
    // The last pass's plan at its peak: which values are live then.
    cpu::executor::peak_plan planned_peak() const { return runs_.back()->planned_peak(); }
    // What the last pass's run used (and, with options::profile, each node's time).
    const cpu::run_stats& last_stats() const { return runs_.back()->stats(); }
    // The graph of the last (or only) pass: the whole step's update.
    const graph& step_graph() const { return *graphs_.back(); }

private:
    options o_;
    std::vector<std::unique_ptr<graph>> graphs_;
    std::vector<std::unique_ptr<cpu::executor>> runs_;
    train::update_plan plan_;
    cpu::named_arrays weights_, state_;
};

}  // namespace scribe::runtime
