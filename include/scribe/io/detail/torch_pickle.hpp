// scribe/io/detail/torch_pickle.hpp — the pickle of a torch.save state dict
// (data.pkl), read by a small machine that knows only what such a pickle holds.
//
// A pickle is a program for Python's unpickler, which imports and calls whatever
// it names. This machine calls nothing: it interprets the opcodes of protocols
// 2 to 5 that build plain data (None, booleans, integers, floats, strings,
// tuples, lists, dicts, the memo, marks, frames) and recognises five names only:
//   collections.OrderedDict          called with no arguments: an empty dict
//   torch._utils._rebuild_tensor_v2  (storage, offset, size, stride, requires_grad,
//                                     hooks[, metadata]): a tensor description
//   torch._utils._rebuild_tensor     (storage, offset, size, stride): the same
//   torch._utils._rebuild_parameter  (tensor, requires_grad, hooks): the tensor
//   torch.<Type>Storage              a storage's dtype, in a persistent id
//                                     ('storage', type, key, location, numel)
// BUILD is accepted on a dict only (an OrderedDict's attributes, such as a state
// dict's _metadata, which is dropped). Any other name or opcode (INST, OBJ,
// NEWOBJ, EXT, LONG4, ...) is refused with a message that names it; nothing a
// file says is ever imported or run. The result must be a dict of string keys to
// tensors. Objects live in one arena indexed by number, so shared or cyclic
// references cost nothing to free and nothing is walked recursively; the arena,
// the stack and the memo grow at most one entry per opcode read.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../../core/dtype.hpp"
#include "../../core/error.hpp"
#include "../file.hpp"

namespace scribe::io::detail {

// A tensor as the pickle describes it: a view of a storage.
struct torch_tensor {
    std::string name;
    std::string storage;  // the storage's key: its bytes are the archive's entry data/<key>
    dtype type;
    std::uint64_t storage_elements;
    std::int64_t offset;  // in elements
    std::vector<std::int64_t> size, stride;
};

// torch.<name> storage classes and the dtype of their elements.
inline const std::map<std::string, dtype, std::less<>>& torch_storage_types() {
    static const std::map<std::string, dtype, std::less<>> known = {
        {"FloatStorage", dtype::f32}, {"HalfStorage", dtype::f16}, {"BFloat16Storage", dtype::bf16},
        {"DoubleStorage", dtype::f64}, {"LongStorage", dtype::s64}, {"IntStorage", dtype::s32},
        {"CharStorage", dtype::s8},    {"ByteStorage", dtype::u8},  {"BoolStorage", dtype::pred}};
    return known;
}

class torch_pickle {
public:
    // Runs the pickle `bytes`; `where` names it in errors ("f.bin: data.pkl").
    torch_pickle(std::string_view bytes, std::string where) : in_(bytes), where_(std::move(where)) { run(); }

    // The state dict's tensors, in the pickle's order.
    const std::vector<torch_tensor>& tensors() const { return tensors_; }

private:
    enum class kind : std::uint8_t { none, boolean, integer, floating, string, tuple, list, dict, global, storage, tensor };
    enum class callable : std::uint8_t { ordered_dict, rebuild_tensor_v2, rebuild_tensor, rebuild_parameter, storage_type };
    struct object {
        kind k = kind::none;
        std::int64_t i = 0;        // integer, boolean; a storage's element count; a tensor's index
        std::string s;             // string; a storage's key
        std::vector<std::uint32_t> items;  // tuple, list; dict: key, value, key, value, ...
        callable g{};              // global
        dtype type = dtype::f32;   // a storage type global's, a storage's
    };

    static const char* kind_name(kind k) {
        switch (k) {
            case kind::none: return "None";
            case kind::boolean: return "a boolean";
            case kind::integer: return "an integer";
            case kind::floating: return "a float";
            case kind::string: return "a string";
            case kind::tuple: return "a tuple";
            case kind::list: return "a list";
            case kind::dict: return "a dict";
            case kind::global: return "a function";
            case kind::storage: return "a storage";
            case kind::tensor: return "a tensor";
        }
        return "?";
    }

    [[noreturn]] void fail(const std::string& why) const {
        throw error(where_ + ": " + why + " (at byte " + std::to_string(op_at_) + ")");
    }

    // ---- reading the bytes
    std::string_view take(std::uint64_t n) {
        if (n > in_.size() - at_) fail("the pickle ends inside an opcode's argument");
        const auto s = in_.substr(at_, static_cast<std::size_t>(n));
        at_ += static_cast<std::size_t>(n);
        return s;
    }
    std::uint64_t le(int n) {
        const auto s = take(static_cast<std::uint64_t>(n));
        std::uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<std::size_t>(i)]);
        return v;
    }
    std::string_view line() {
        const auto end = in_.find('\n', at_);
        if (end == std::string_view::npos || end - at_ > 256) fail("a GLOBAL name that does not end in a newline within 256 bytes");
        const auto s = in_.substr(at_, end - at_);
        at_ = end + 1;
        return s;
    }

    // ---- objects and the stack
    std::uint32_t make(object o) {
        objects_.push_back(std::move(o));
        return static_cast<std::uint32_t>(objects_.size() - 1);
    }
    void push(std::uint32_t id) { stack_.push_back(id); }
    std::uint32_t pop() {
        if (stack_.size() <= fence()) fail("an opcode takes more items than the stack holds above its mark");
        const auto id = stack_.back();
        stack_.pop_back();
        return id;
    }
    std::uint32_t top() {
        if (stack_.size() <= fence()) fail("an opcode needs an item on the stack and there is none above its mark");
        return stack_.back();
    }
    std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
    // The items above the last mark, which is dropped.
    std::vector<std::uint32_t> since_mark() {
        if (marks_.empty()) fail("an opcode needs a MARK and there is none");
        const auto m = marks_.back();
        marks_.pop_back();
        std::vector<std::uint32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        return items;
    }
    object& at(std::uint32_t id) { return objects_[id]; }
    std::int64_t integer(std::uint32_t id, const char* what) {
        if (at(id).k != kind::integer) fail(std::string(what) + " is " + kind_name(at(id).k) + ", not an integer");
        return at(id).i;
    }
    const object& tuple(std::uint32_t id, const char* what) {
        if (at(id).k != kind::tuple) fail(std::string(what) + " is " + kind_name(at(id).k) + ", not a tuple");
        return at(id);
    }
    std::uint32_t tuple_of(std::vector<std::uint32_t> items) {
        object o;
        o.k = kind::tuple;
        o.items = std::move(items);
        return make(std::move(o));
    }
    std::uint32_t integer_object(std::int64_t v) {
        object o;
        o.k = kind::integer;
        o.i = v;
        return make(std::move(o));
    }
    std::uint32_t string_object(std::string_view s) {
        object o;
        o.k = kind::string;
        o.s = std::string(s);
        return make(std::move(o));
    }
    void memo_put(std::uint64_t key) { memo_[key] = top(); }

    // ---- the five names
    std::uint32_t global(std::string_view module, std::string_view name) {
        object o;
        o.k = kind::global;
        const auto& storages = torch_storage_types();
        if (module == "collections" && name == "OrderedDict") o.g = callable::ordered_dict;
        else if (module == "torch._utils" && name == "_rebuild_tensor_v2") o.g = callable::rebuild_tensor_v2;
        else if (module == "torch._utils" && name == "_rebuild_tensor") o.g = callable::rebuild_tensor;
        else if (module == "torch._utils" && name == "_rebuild_parameter") o.g = callable::rebuild_parameter;
        else if (module == "torch" && storages.count(name)) {
            o.g = callable::storage_type;
            o.type = storages.find(name)->second;
        } else if (module == "torch" && name.ends_with("Storage")) {
            fail("a storage of type torch." + printable(name) + ", whose dtype Scribe does not read (it reads float32, float16, " +
                 "bfloat16, float64, int64, int32, int8, uint8 and bool tensors)");
        } else {
            fail("the pickle names `" + printable(module) + "." + printable(name) +
                 "`, which is not one of the tensor-rebuilding functions a state dict needs (collections.OrderedDict, " +
                 "torch._utils._rebuild_tensor_v2, _rebuild_parameter, torch.*Storage); Scribe never runs code from a checkpoint, " +
                 "so it reads only those");
        }
        return make(std::move(o));
    }

    std::uint32_t persistent(std::uint32_t pid) {
        const auto& t = tuple(pid, "a persistent id");
        if (t.items.size() != 5 || at(t.items[0]).k != kind::string || at(t.items[0]).s != "storage")
            fail("a persistent id that is not ('storage', type, key, location, size)");
        const auto& type_object = at(t.items[1]);
        if (type_object.k != kind::global || type_object.g != callable::storage_type) fail("a storage whose type is not a torch storage class");
        const auto type = type_object.type;
        if (at(t.items[2]).k != kind::string) fail("a storage whose key is not a string");
        if (at(t.items[3]).k != kind::string) fail("a storage whose location is not a string");
        const auto key = at(t.items[2]).s;
        const auto n = integer(t.items[4], "a storage's size");
        if (n < 0) fail("storage `" + printable(key) + "` has a negative size");
        if (key.empty() || key.size() > 64 || key.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-.") != std::string::npos || key == "." || key == "..")
            fail("a storage key `" + printable(key) + "` that is not a plain record name");
        const auto [seen, fresh] = storages_.try_emplace(key, type, n);
        if (!fresh && (seen->second.first != type || seen->second.second != n))
            fail("storage `" + printable(key) + "` is given twice with different types or sizes");
        object o;
        o.k = kind::storage;
        o.s = key;
        o.i = n;
        o.type = type;
        return make(std::move(o));
    }

    std::vector<std::int64_t> extents(std::uint32_t id, const char* what) {
        const auto& t = tuple(id, what);
        if (t.items.size() > 16) fail(std::string(what) + " has " + std::to_string(t.items.size()) + " dimensions, more than 16");
        std::vector<std::int64_t> out;
        for (const auto i : t.items) {
            const auto v = integer(i, what);
            if (v < 0 || v > (std::int64_t{1} << 48)) fail(std::string(what) + " holds " + std::to_string(v) + ", outside 0 .. 2^48");
            out.push_back(v);
        }
        return out;
    }

    std::uint32_t reduce(std::uint32_t f, std::uint32_t args_id) {
        if (at(f).k != kind::global) fail("REDUCE calls " + std::string(kind_name(at(f).k)) + ", not a function");
        const auto fn = at(f).g;
        if (tuple(args_id, "REDUCE's arguments").items.size() > 7) fail("REDUCE with more than 7 arguments");
        const auto args = at(args_id).items;  // at most 7: copied, as make() below may move the objects
        switch (fn) {
            case callable::ordered_dict: {
                if (!args.empty()) fail("collections.OrderedDict called with arguments");
                object o;
                o.k = kind::dict;
                return make(std::move(o));
            }
            case callable::rebuild_parameter: {
                if (args.size() != 3 || at(args[0]).k != kind::tensor) fail("torch._utils._rebuild_parameter called without (tensor, requires_grad, hooks)");
                return args[0];
            }
            case callable::rebuild_tensor_v2:
            case callable::rebuild_tensor: {
                const bool v2 = fn == callable::rebuild_tensor_v2;
                if (v2 ? (args.size() != 6 && args.size() != 7) : args.size() != 4)
                    fail(std::string(v2 ? "torch._utils._rebuild_tensor_v2" : "torch._utils._rebuild_tensor") + " called with " +
                         std::to_string(args.size()) + " arguments");
                const auto& storage = at(args[0]);
                if (storage.k != kind::storage) fail("a tensor rebuilt from " + std::string(kind_name(storage.k)) + ", not a storage");
                torch_tensor t;
                t.storage = storage.s;
                t.type = storage.type;
                t.storage_elements = static_cast<std::uint64_t>(storage.i);
                t.offset = integer(args[1], "a tensor's storage offset");
                if (t.offset < 0) fail("a tensor with a negative storage offset");
                t.size = extents(args[2], "a tensor's size");
                t.stride = extents(args[3], "a tensor's stride");
                if (t.size.size() != t.stride.size()) fail("a tensor whose size and stride have different lengths");
                if (v2 && at(args[5]).k != kind::dict) fail("a tensor's backward hooks are not a dict");
                if (v2 && !at(args[5]).items.empty()) fail("a tensor with backward hooks (code), which a state dict does not have");
                object o;
                o.k = kind::tensor;
                o.i = static_cast<std::int64_t>(pending_.size());
                pending_.push_back(std::move(t));
                return make(std::move(o));
            }
            case callable::storage_type: fail("the pickle calls a storage class");
        }
        fail("REDUCE of an unknown function");
    }

    void set_items(std::uint32_t dict, const std::vector<std::uint32_t>& items) {
        if (at(dict).k != kind::dict) fail("SETITEM(S) on " + std::string(kind_name(at(dict).k)) + ", not a dict");
        if (items.size() % 2) fail("SETITEMS with an odd number of items");
        auto& d = at(dict).items;
        d.insert(d.end(), items.begin(), items.end());
    }

    void run() {
        const auto end_marker = std::numeric_limits<std::size_t>::max();
        std::size_t stopped = end_marker;
        while (stopped == end_marker) {
            if (at_ >= in_.size()) fail("the pickle ends without STOP");
            op_at_ = at_;
            const auto op = static_cast<unsigned char>(in_[at_++]);
            switch (op) {
                case 0x80: {  // PROTO
                    const auto v = le(1);
                    if (v < 2 || v > 5) fail("pickle protocol " + std::to_string(v) + " (torch.save writes 2; Scribe reads 2 to 5)");
                    break;
                }
                case 0x95: take(8); break;  // FRAME: a length hint, the opcodes follow
                case '(': marks_.push_back(stack_.size()); break;
                case '.': {  // STOP
                    if (!marks_.empty() || stack_.size() != 1) fail("STOP with " + std::to_string(stack_.size()) + " items on the stack");
                    stopped = stack_.back();
                    break;
                }
                case 'N': push(make({})); break;
                case 0x88:
                case 0x89: {  // NEWTRUE, NEWFALSE
                    object o;
                    o.k = kind::boolean;
                    o.i = op == 0x88;
                    push(make(std::move(o)));
                    break;
                }
                case 'K': push(integer_object(static_cast<std::int64_t>(le(1)))); break;
                case 'M': push(integer_object(static_cast<std::int64_t>(le(2)))); break;
                case 'J': push(integer_object(static_cast<std::int32_t>(static_cast<std::uint32_t>(le(4))))); break;
                case 0x8a: {  // LONG1
                    const auto n = le(1);
                    if (n > 8) fail("an integer of " + std::to_string(n) + " bytes, wider than 64 bits");
                    const auto bits = n ? le(static_cast<int>(n)) : 0;
                    std::int64_t v = static_cast<std::int64_t>(bits);
                    if (n > 0 && n < 8 && (bits >> (8 * n - 1)) & 1) v = static_cast<std::int64_t>(bits | (~std::uint64_t{0} << (8 * n)));
                    push(integer_object(v));
                    break;
                }
                case 'G': {  // BINFLOAT, big-endian
                    const auto s = take(8);
                    std::uint64_t bits = 0;
                    for (const char c : s) bits = (bits << 8) | static_cast<unsigned char>(c);
                    object o;
                    o.k = kind::floating;
                    o.i = static_cast<std::int64_t>(bits);
                    push(make(std::move(o)));
                    break;
                }
                case 'X': push(string_object(take(le(4)))); break;            // BINUNICODE
                case 0x8c: push(string_object(take(le(1)))); break;           // SHORT_BINUNICODE
                case 0x8d: push(string_object(take(le(8)))); break;           // BINUNICODE8
                case ')': push(tuple_of({})); break;                          // EMPTY_TUPLE
                case 0x85: push(tuple_of({pop()})); break;                    // TUPLE1
                case 0x86: {                                                  // TUPLE2
                    const auto b = pop(), a = pop();
                    push(tuple_of({a, b}));
                    break;
                }
                case 0x87: {  // TUPLE3
                    const auto c = pop(), b = pop(), a = pop();
                    push(tuple_of({a, b, c}));
                    break;
                }
                case 't': push(tuple_of(since_mark())); break;  // TUPLE
                case ']': {                                     // EMPTY_LIST
                    object o;
                    o.k = kind::list;
                    push(make(std::move(o)));
                    break;
                }
                case 'a': {  // APPEND
                    const auto v = pop();
                    if (at(top()).k != kind::list) fail("APPEND to " + std::string(kind_name(at(top()).k)) + ", not a list");
                    at(top()).items.push_back(v);
                    break;
                }
                case 'e': {  // APPENDS
                    const auto items = since_mark();
                    if (at(top()).k != kind::list) fail("APPENDS to " + std::string(kind_name(at(top()).k)) + ", not a list");
                    auto& l = at(top()).items;
                    l.insert(l.end(), items.begin(), items.end());
                    break;
                }
                case '}': {  // EMPTY_DICT
                    object o;
                    o.k = kind::dict;
                    push(make(std::move(o)));
                    break;
                }
                case 's': {  // SETITEM
                    const auto v = pop(), k = pop();
                    set_items(top(), {k, v});
                    break;
                }
                case 'u': {  // SETITEMS
                    const auto items = since_mark();
                    set_items(top(), items);
                    break;
                }
                case 'q': memo_put(le(1)); break;                 // BINPUT
                case 'r': memo_put(le(4)); break;                 // LONG_BINPUT
                case 0x94: memo_put(memo_.size()); break;         // MEMOIZE
                case 'h':                                         // BINGET
                case 'j': {                                       // LONG_BINGET
                    const auto key = le(op == 'h' ? 1 : 4);
                    const auto it = memo_.find(key);
                    if (it == memo_.end()) fail("BINGET of memo entry " + std::to_string(key) + ", which was never put");
                    push(it->second);
                    break;
                }
                case 'c': {  // GLOBAL module\nname\n
                    const auto module = line();
                    const auto name = line();
                    push(global(module, name));
                    break;
                }
                case 0x93: {  // STACK_GLOBAL
                    const auto n = pop(), m = pop();
                    if (at(n).k != kind::string || at(m).k != kind::string) fail("STACK_GLOBAL of names that are not strings");
                    const auto module = at(m).s, name = at(n).s;
                    push(global(module, name));
                    break;
                }
                case 'Q': push(persistent(pop())); break;  // BINPERSID
                case 'R': {                                // REDUCE
                    const auto args = pop(), f = pop();
                    push(reduce(f, args));
                    break;
                }
                case 'b': {  // BUILD: an OrderedDict's attributes (a state dict's _metadata), dropped
                    const auto state = pop();
                    if (at(top()).k != kind::dict || at(state).k != kind::dict)
                        fail("BUILD of " + std::string(kind_name(at(top()).k)) + " from " + kind_name(at(state).k) +
                             " (only a dict's attributes, given as a dict, are accepted)");
                    break;
                }
                default: {
                    static const std::map<unsigned char, const char*> names = {
                        {'i', "INST"},  {'o', "OBJ"},       {0x81, "NEWOBJ"},   {0x92, "NEWOBJ_EX"}, {0x82, "EXT1"},
                        {0x83, "EXT2"}, {0x84, "EXT4"},     {'P', "PERSID"},    {'I', "INT"},        {'L', "LONG"},
                        {0x8b, "LONG4"}, {'S', "STRING"},   {'V', "UNICODE"},   {'F', "FLOAT"},      {'T', "BINSTRING"},
                        {'U', "SHORT_BINSTRING"}, {'B', "BINBYTES"}, {'C', "SHORT_BINBYTES"}, {0x8e, "BINBYTES8"},
                        {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"}, {'d', "DICT"},
                        {'l', "LIST"},  {'p', "PUT"},       {'g', "GET"},       {'0', "POP"},        {'1', "POP_MARK"},
                        {'2', "DUP"},   {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"}};
                    const auto it = names.find(op);
                    static const char* hex = "0123456789abcdef";
                    fail(std::string("opcode 0x") + hex[op >> 4] + hex[op & 15] + (it != names.end() ? std::string(" (") + it->second + ")" : std::string()) +
                         ", which a torch.save state dict does not use; Scribe reads only the opcodes that rebuild tensors");
                }
            }
        }
        collect(static_cast<std::uint32_t>(stopped));
    }

    // The result: a dict of names to tensors.
    void collect(std::uint32_t result) {
        const auto& d = at(result);
        if (d.k != kind::dict)
            fail("the pickle holds " + std::string(kind_name(d.k)) + ", not a state dict (a dict of names to tensors)");
        std::set<std::string> names;
        for (std::size_t i = 0; i + 1 < d.items.size(); i += 2) {
            const auto& key = at(d.items[i]);
            const auto& value = at(d.items[i + 1]);
            if (key.k != kind::string) fail("the state dict has a key that is " + std::string(kind_name(key.k)) + ", not a name");
            if (value.k != kind::tensor)
                fail("the state dict's `" + printable(key.s) + "` is " + kind_name(value.k) +
                     ", not a tensor (a checkpoint that wraps its state dict in another object is not a Hugging Face weights file)");
            if (!names.insert(key.s).second) fail("the state dict holds `" + printable(key.s) + "` twice");
            auto t = pending_[static_cast<std::size_t>(value.i)];
            t.name = key.s;
            tensors_.push_back(std::move(t));
        }
    }

    std::string_view in_;
    std::string where_;
    std::size_t at_ = 0, op_at_ = 0;
    std::vector<object> objects_;
    std::vector<std::uint32_t> stack_;
    std::vector<std::size_t> marks_;
    std::unordered_map<std::uint64_t, std::uint32_t> memo_;
    std::map<std::string, std::pair<dtype, std::int64_t>> storages_;
    std::vector<torch_tensor> pending_;  // every tensor rebuilt, by its object's index
    std::vector<torch_tensor> tensors_;
};

}  // namespace scribe::io::detail
