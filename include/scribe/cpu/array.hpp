// scribe/cpu/array.hpp — the CPU backend's n-dimensional array: a dtype, a shape and
// row-major bytes, either owned or borrowed read-only from the caller (weights in an
// mmapped file are never copied).
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>
#include <utility>

#include <xtensor/xadapt.hpp>

// xtensor up to 0.25 (Debian bookworm ships 0.24.3) does not compile xt::xarray
// under Clang >= 19: Clang's relaxed template template argument matching (P0522,
// on by default since 19) lets its generic rebind_container<X, C<T, N>> match
// svector as well as svector's own specialization, and the two are ambiguous
// (xtensor issue 2804; fixed in 0.26). This more specialized one, for the
// svector that xarray's shapes use, settles it. It counts where it is declared
// before a translation unit first uses xt::xarray (including xtensor's headers
// earlier is fine; using xarray before including Scribe's CPU backend is not).
#if defined(__clang__) && __clang_major__ >= 19 && XTENSOR_VERSION_MAJOR == 0 && XTENSOR_VERSION_MINOR <= 25
namespace xt {
template <class X, class T, std::size_t N>
struct rebind_container<X, svector<T, N, std::allocator<T>, true>> {
    using type = svector<X, N, std::allocator<X>, true>;
};
}  // namespace xt
#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "../core/tensor_spec.hpp"
#include "../graph/node.hpp"

namespace scribe::cpu {

class array;

// Recycles the storage of freed intermediates: the executor returns them here and
// kernels' new arrays take them back, so a run in steady state maps no fresh
// pages. Active on one thread while an executor runs (buffer_pool::scope).
class buffer_pool {
public:
    // Blocks of 4 MiB or more (weights, KV caches, large activations) are aligned
    // to 2 MiB and marked for transparent huge pages where Linux offers them: a
    // stream through 4 KiB pages reads at about half the speed on Zen 4 (the
    // prefetchers stop at every page), through 2 MiB pages near the memory's limit.
    static constexpr std::size_t huge_threshold = std::size_t{4} << 20, huge_page = std::size_t{2} << 20;
    static std::size_t alignment_for(std::size_t bytes, bool huge = false) {
        return huge || bytes >= huge_threshold ? huge_page : 64;
    }
    struct release {
        void operator()(unsigned char* p) const { ::operator delete[](p, std::align_val_t{alignment}); }
        std::size_t alignment = 64;
    };
    using storage = std::unique_ptr<unsigned char[], release>;
    // `huge`: in 2 MiB pages whatever the size (a weight copy that is streamed).
    static storage allocate(std::size_t bytes, bool huge = false) {
        const auto align = alignment_for(bytes, huge);
        const auto size = align == huge_page ? (bytes + huge_page - 1) / huge_page * huge_page : bytes;
        unsigned char* p = nullptr;
        try {
            p = static_cast<unsigned char*>(::operator new[](size, std::align_val_t{align}));
        } catch (const std::bad_alloc&) {
            throw error("out of memory: cannot allocate " + std::to_string(size) + " bytes (" +
                        std::to_string(size >> 20) + " MiB) for a tensor");
        }
#ifdef MADV_HUGEPAGE
        if (align == huge_page) ::madvise(p, size, MADV_HUGEPAGE);
#endif
        return storage(p, release{align});
    }

    // Storage of at least `bytes` (a recycled block up to a quarter larger, or a
    // new one); `capacity` receives the block's real size.
    storage take(std::size_t bytes, std::size_t& capacity) {
        const auto it = free_.lower_bound(bytes);
        if (it != free_.end() && it->first <= bytes + bytes / 4) {
            auto s = std::move(it->second);
            capacity = it->first;
            held_ -= it->first;
            free_.erase(it);
            return s;
        }
        ++fresh_;
        capacity = bytes;
        return allocate(bytes);
    }
    void give(storage s, std::size_t bytes) {
        if (!s) return;
        held_ += bytes;
        free_.emplace(bytes, std::move(s));
    }
    std::size_t fresh() const { return fresh_; }   // blocks taken from the heap so far
    std::size_t held() const { return held_; }     // bytes waiting for reuse

    // Makes `pool` the one new arrays on this thread draw from, for the scope's life.
    class scope {
    public:
        explicit scope(buffer_pool* pool) : saved_(current()) { current() = pool; }
        ~scope() { current() = saved_; }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;

    private:
        buffer_pool* saved_;
    };
    static buffer_pool*& current() {
        thread_local buffer_pool* p = nullptr;
        return p;
    }

private:
    std::multimap<std::size_t, storage> free_;
    std::size_t fresh_ = 0, held_ = 0;
};

class array {
public:
    array() = default;

    // Zero-filled, owned.
    array(dtype type, shape dims) : array(uninitialized(type, std::move(dims))) {
        if (bytes()) std::memset(storage_.get(), 0, bytes());
    }
    // Owned, elements not yet written: for kernels that write every element.
    static array uninitialized(dtype type, shape dims) {
        array a;
        a.type_ = type;
        a.dims_ = std::move(dims);
        a.allocate();
        return a;
    }
    // The same in whole 2 MiB pages, never from a pool: a copy of a weight that
    // decode streams (a small one would otherwise sit in 4 KiB pages).
    static array uninitialized_in_huge_pages(dtype type, shape dims) {
        array a;
        a.type_ = type;
        a.dims_ = std::move(dims);
        if (a.bytes()) a.storage_ = buffer_pool::allocate(a.bytes(), true);
        a.capacity_ = a.bytes();
        return a;
    }
    array(const array& o) : type_(o.type_), dims_(o.dims_), view_(o.view_) {
        if (o.storage_) {  // a default-constructed array has none
            allocate();
            if (bytes()) std::memcpy(storage_.get(), o.storage_.get(), bytes());
        }
    }
    array& operator=(const array& o) {
        if (this != &o) *this = array(o);
        return *this;
    }
    array(array&& o) noexcept
        : type_(o.type_), dims_(std::move(o.dims_)), storage_(std::move(o.storage_)), capacity_(o.capacity_),
          view_(o.view_) {
        o.capacity_ = 0;
        o.view_ = nullptr;
    }
    array& operator=(array&& o) noexcept {
        if (this != &o) {
            release();
            type_ = o.type_;
            dims_ = std::move(o.dims_);
            storage_ = std::move(o.storage_);
            capacity_ = o.capacity_;
            view_ = o.view_;
            o.capacity_ = 0;
            o.view_ = nullptr;
        }
        return *this;
    }
    // Owned storage goes back to the thread's current pool when there is one (a
    // kernel's temporary inside an executor run), else to the heap.
    ~array() { release(); }

    // A read-only view over `size` bytes at `data`, which must hold exactly the
    // array's elements; the caller keeps the memory alive.
    static array borrow(dtype type, shape dims, const void* data, std::size_t size) {
        array a;
        a.type_ = type;
        a.dims_ = std::move(dims);
        if (size != a.bytes())
            throw error("cpu::array: " + std::string(name(type)) + to_string(a.dims_) + " needs " +
                        std::to_string(a.bytes()) + " bytes, the buffer has " + std::to_string(size));
        a.view_ = static_cast<const unsigned char*>(data);
        return a;
    }

    dtype type() const { return type_; }
    const shape& dims() const { return dims_; }
    std::int64_t size() const { return element_count(dims_); }
    std::size_t bytes() const { return static_cast<std::size_t>(size() * info(type_).bytes); }
    bool borrowed() const { return view_ != nullptr; }
    bool owns() const { return storage_ != nullptr; }
    // Hands this array's storage to a pool for reuse; the array becomes empty.
    void recycle_into(buffer_pool& pool) {
        pool.give(std::move(storage_), capacity_);
        *this = array();
    }
    // Gives up the storage: to the thread's current pool, if any.
    void release() noexcept {
        if (!storage_) return;
        if (auto* pool = buffer_pool::current()) {
            try {
                pool->give(std::move(storage_), capacity_);
            } catch (...) {  // no room to remember the block: it is freed
            }
        }
        storage_.reset();
        capacity_ = 0;
    }

    // The same elements under another shape of the same size (a reshape).
    array relabel(shape dims) && {
        if (element_count(dims) != size())
            throw error("cpu::array: cannot relabel " + to_string(dims_) + " as " + to_string(dims));
        dims_ = std::move(dims);
        return std::move(*this);
    }

    const unsigned char* data() const { return view_ ? view_ : storage_.get(); }
    unsigned char* mutable_data() {
        if (view_) throw error("cpu::array: a borrowed array is read-only");
        return storage_.get();
    }
    // A borrowed view of the same elements (no copy; valid while this array lives).
    array view() const {
        if (!data()) return *this;
        array a;
        a.type_ = type_;
        a.dims_ = dims_;
        a.view_ = data();
        return a;
    }

    // The elements as their storage type (half and bfloat16 for the 16-bit floats).
    template <class T>
    std::span<const T> values() const {
        check_storage<T>();
        return {reinterpret_cast<const T*>(data()), static_cast<std::size_t>(size())};
    }

private:
    template <class T>
    void check_storage() const {
        if (sizeof(T) != static_cast<std::size_t>(info(type_).bytes))
            throw error("cpu::array: elements of " + std::string(name(type_)) + " are " +
                        std::to_string(info(type_).bytes) + " bytes, not " + std::to_string(sizeof(T)));
    }

    // Owned storage is aligned for the widest vector loads, and comes from the
    // active buffer pool when there is one.
    void allocate() {
        const auto n = bytes();
        if (!n) return storage_.reset();
        if (auto* pool = buffer_pool::current()) {
            storage_ = pool->take(n, capacity_);
        } else {
            storage_ = buffer_pool::allocate(n);
            capacity_ = n;
        }
    }

    dtype type_ = dtype::f32;
    shape dims_;
    buffer_pool::storage storage_;
    std::size_t capacity_ = 0;
    const unsigned char* view_ = nullptr;
};

namespace detail {
template <class T>
constexpr dtype dtype_of_value() {
    if constexpr (std::is_same_v<T, bool>) return dtype::pred;
    else if constexpr (std::is_same_v<T, std::int8_t>) return dtype::s8;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return dtype::u8;
    else if constexpr (std::is_same_v<T, std::int32_t>) return dtype::s32;
    else if constexpr (std::is_same_v<T, std::int64_t>) return dtype::s64;
    else if constexpr (std::is_same_v<T, std::uint32_t>) return dtype::u32;
    else if constexpr (std::is_same_v<T, half>) return dtype::f16;
    else if constexpr (std::is_same_v<T, bfloat16>) return dtype::bf16;
    else if constexpr (std::is_same_v<T, float>) return dtype::f32;
    else if constexpr (std::is_same_v<T, double>) return dtype::f64;
    else static_assert(diagnose::always_false<T>, "[scribe] cpu: no dtype stores this element type");
}
}  // namespace detail

// A read-only array over an xtensor container (or any contiguous row-major
// expression with data() and shape()); the dimension names come from the graph.
template <class E>
array borrow(const E& e) {
    using T = std::remove_cv_t<typename E::value_type>;
    shape dims;
    for (auto n : e.shape()) dims.push_back({"", static_cast<std::int64_t>(n)});
    return array::borrow(detail::dtype_of_value<T>(), std::move(dims), e.data(), e.size() * sizeof(T));
}

// Arrays by name: a graph's inputs (owned ones donated to run_donating), a
// model's weights. {{"ids", std::move(ids)}, {"cache", std::move(cache)}}.
using named_arrays = std::vector<std::pair<std::string, array>>;

// Weights copied out of their files' memory maps into 2 MiB pages, packed one
// after another (64-byte aligned) in blocks of at least 64 MiB, so that no weight
// pads a huge page of its own. Decode streams every weight once per token: read
// through the page cache's 4 KiB pages, a GPT-2 124M q8 step on this Zen 5 core
// ran about 8% slower than from 2 MiB pages (a read-only stream: 35 against 38.6
// GB/s, median of 30). Pages of a block that no weight reaches are never touched,
// so they cost no memory.
class resident_weights {
public:
    static constexpr std::size_t block = std::size_t{64} << 20;
    // a itself when it owns its storage (converted or quantized at load, so
    // already in memory of its own); a borrowed array copied here, as a view of
    // the copy (valid while this object lives).
    array keep(array a) {
        if (!a.borrowed() || a.bytes() == 0) return a;
        const auto n = a.bytes(), room = (n + 63) / 64 * 64;
        if (blocks_.empty() || used_ + room > size_) {
            size_ = std::max(block, room);
            blocks_.push_back(buffer_pool::allocate(size_, true));
            used_ = 0;
        }
        auto* at = blocks_.back().get() + used_;
        std::memcpy(at, a.data(), n);
        used_ += room;
        bytes_ += n;
        return array::borrow(a.type(), a.dims(), at, n);
    }
    // Bytes copied so far.
    std::size_t bytes() const { return bytes_; }

private:
    std::vector<buffer_pool::storage> blocks_;
    std::size_t size_ = 0, used_ = 0, bytes_ = 0;
};

// An xtensor view of an array's elements (no copy; valid while the array lives).
template <class T>
auto adapt(const array& a) {
    const auto v = a.values<T>();
    std::vector<std::size_t> sh;
    for (const auto& d : a.dims()) sh.push_back(static_cast<std::size_t>(d.extent));
    return xt::adapt(v.data(), v.size(), xt::no_ownership(), sh);
}

}  // namespace scribe::cpu
