// scribe/cpu/packs.hpp — weights packed for the kernels (kernels::pack_plan: GEMM
// panels for prefill, [n, k] rows for decode), each made once and shared by every
// executor that binds the weight: a decoder's prefill graph of each bucket, its
// decode graph and its verify graph all read one copy. Packs saved by another
// process on a CPU with the same kernels (a compiled artifact, runtime/artifact.hpp)
// are borrowed instead of made.
//
//     cpu::weight_packs packs;                       // one per set of weights (a rank's)
//     cpu::executor prefill(g1, {.packs = &packs}), decode(g2, {.packs = &packs});
//
// A pack is found by its weight's parameter name and its form (pack_plan::key),
// so one weight_packs serves weights that one name always means: binding another
// array under a name already packed is refused.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "kernels.hpp"

namespace scribe::cpu {

class weight_packs {
public:
    using entry = std::shared_ptr<const kernels::packed_weight>;

    // The name a pack is kept and saved under.
    static std::string name_of(const std::string& weight, const kernels::pack_plan& p) { return weight + "@" + p.key(); }

    // Weight `weight` (whose elements are b's) packed as `plan`: made from b the
    // first time, then shared; a saved pack of that name is borrowed instead.
    entry get(const std::string& weight, const kernels::pack_plan& plan, const array& b) {
        const auto key = name_of(weight, plan);
        std::lock_guard lock(mutex_);
        if (const auto it = made_.find(key); it != made_.end()) {
            if (it->second.source && it->second.source != b.data())
                throw error("cpu: weight " + scribe::detail::ticked(weight) +
                            " is bound to another array than the one its pack was made from; give each set of weights its own "
                            "cpu::weight_packs (executor options::packs)");
            return it->second.pack;
        }
        if (const auto it = saved_.find(key); it != saved_.end()) {
            auto w = kernels::borrow_packed(plan, it->second.bytes, it->second.what);
            if (w.transposed && keep_rows_) w.transposed = keep_rows_(std::move(*w.transposed));
            auto p = std::make_shared<const kernels::packed_weight>(std::move(w));
            borrowed_bytes_ += it->second.bytes.size();
            made_[key] = {p, nullptr};
            saved_.erase(it);
            return p;
        }
        auto p = std::make_shared<const kernels::packed_weight>(kernels::pack(plan, b));
        made_bytes_ += p->bytes();
        made_[key] = {p, b.data()};
        return p;
    }

    // Offers a saved pack (kernels::packed_bytes of one, made on a CPU with the
    // same kernels) under its name; `bytes` must outlive this object. Checked
    // against the form asked for when first used; `what` names it in that error.
    void add_saved(std::string name, std::span<const std::byte> bytes, std::string what) {
        std::lock_guard lock(mutex_);
        saved_[std::move(name)] = {bytes, std::move(what)};
    }

    // Where saved rows packs (decode's [n, k] copies) go when first used: `keep`
    // returns the array to read (cpu::resident_weights::keep copies it into 2 MiB
    // pages, which decode streams faster than a file's 4 KiB pages). Unset: read
    // in place.
    void keep_rows_with(std::function<array(array)> keep) {
        std::lock_guard lock(mutex_);
        keep_rows_ = std::move(keep);
    }

    // Forgets the packs of `weight` (an executor rebinding a weight of its own).
    void forget(const std::string& weight) {
        std::lock_guard lock(mutex_);
        const auto prefix = weight + "@";
        for (auto it = made_.lower_bound(prefix); it != made_.end() && it->first.starts_with(prefix);) it = made_.erase(it);
    }

    // Every pack in use, by name (for saving them).
    std::map<std::string, entry> packs() const {
        std::lock_guard lock(mutex_);
        std::map<std::string, entry> out;
        for (const auto& [k, m] : made_) out[k] = m.pack;
        return out;
    }
    // Bytes packed by this process, and bytes borrowed from saved packs.
    std::size_t made_bytes() const {
        std::lock_guard lock(mutex_);
        return made_bytes_;
    }
    std::size_t borrowed_bytes() const {
        std::lock_guard lock(mutex_);
        return borrowed_bytes_;
    }

private:
    struct made {
        entry pack;
        const void* source = nullptr;  // the array it was made from; null: borrowed
    };
    struct saved {
        std::span<const std::byte> bytes;
        std::string what;
    };
    mutable std::mutex mutex_;
    std::map<std::string, made> made_;
    std::map<std::string, saved> saved_;
    std::function<array(array)> keep_rows_;
    std::size_t made_bytes_ = 0, borrowed_bytes_ = 0;
};

}  // namespace scribe::cpu
