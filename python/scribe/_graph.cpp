// python/scribe/_graph.cpp — the untyped graph core bound for Python (the class
// _native.Graph): nodes appended by scribe::ir's builders, so graph::add checks
// every op with infer() and Scribe's messages; run by cpu::executor with NumPy
// inputs borrowed, not copied; lowered by hlo::lower to text and
// HloModuleProto; differentiated by graph/grad.hpp. Node ids go to Python; the
// Python half (scribe/graph.py) wraps them in tensors with named dimensions.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <scribe/cpu/executor.hpp>
#include <scribe/graph/grad.hpp>
#include <scribe/graph/graph.hpp>
#include <scribe/graph/ir.hpp>
#include <scribe/hlo/export.hpp>

#include "_graph.hpp"

namespace py = pybind11;
using namespace scribe;

namespace {

dtype dtype_named(const std::string& s) {
    for (int i = 0; i < dtype_count; ++i)
        if (dtype_table[i].name == s) return static_cast<dtype>(i);
    std::string all;
    for (int i = 0; i < dtype_count; ++i) all += (i ? ", " : "") + std::string(dtype_table[i].name);
    throw py::value_error("unknown dtype '" + s + "'; Scribe's are " + all);
}

// Calls f(T{}) with the C type whose NumPy arrays hold a dtype's elements: the
// 16-bit floats as their bits (uint16; the Python half views them as float16 or
// bfloat16). Typed arrays only: Debian's pybind11 2.10 reads NumPy 2's dtype
// descriptors' element size wrongly, so nothing here asks a dtype its size.
template <class F>
decltype(auto) with_storage(dtype t, F&& f) {
    switch (t) {
        case dtype::pred: return f(bool{});
        case dtype::s8: return f(std::int8_t{});
        case dtype::u8: return f(std::uint8_t{});
        case dtype::s32: return f(std::int32_t{});
        case dtype::s64: return f(std::int64_t{});
        case dtype::u32: return f(std::uint32_t{});
        case dtype::f16:
        case dtype::bf16: return f(std::uint16_t{});
        case dtype::f32: return f(float{});
        case dtype::f64: return f(double{});
    }
    throw error("dtype out of range");
}

op op_named(const std::string& s, op_category want, const char* what) {
    for (const auto& row : op_table)
        if (row.name == s && row.category == want) return row.kind;
    std::string all;
    for (const auto& row : op_table)
        if (row.category == want) all += (all.empty() ? "" : ", ") + std::string(row.name);
    throw py::value_error("'" + s + "' is not a " + what + " op; Scribe's are " + all);
}

template <class Enum, std::size_t N>
Enum enum_named(const std::string& s, const std::string_view (&names)[N], const char* what) {
    std::string all;
    for (std::size_t i = 0; i < N; ++i) {
        std::string n(names[i]);
        for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (n == s) return static_cast<Enum>(i);
        all += (i ? ", " : "") + n;
    }
    throw py::value_error("unknown " + std::string(what) + " '" + s + "'; it takes " + all);
}

shape shape_of(const std::vector<std::pair<std::string, std::int64_t>>& dims) {
    shape s;
    for (const auto& [name, extent] : dims) s.push_back({name, extent});
    return s;
}

class graph_handle {
public:
    explicit graph_handle(std::string name) : g_(std::move(name)) {}

    node_id parameter(const std::string& name, const std::string& type,
                      const std::vector<std::pair<std::string, std::int64_t>>& dims) {
        changed();
        return g_.add_parameter(dtype_named(type), shape_of(dims), name);
    }
    // A constant holding `values` (C order, already of the dtype's NumPy storage type).
    node_id constant(const std::string& type, const std::vector<std::pair<std::string, std::int64_t>>& dims,
                     const py::array& values) {
        changed();
        const auto t = dtype_named(type);
        node n;
        n.kind = op::constant;
        n.type = t;
        n.dims = shape_of(dims);
        const auto count = element_count(n.dims);
        const auto bytes = static_cast<std::size_t>(count) * static_cast<std::size_t>(info(t).bytes);
        const auto a = with_storage(t, [&]<class T>(T) -> py::array { return py::array_t<T, py::array::c_style>::ensure(values); });
        if (!a || a.size() != count)
            throw py::value_error("constant: " + std::string(scribe::name(t)) + to_string(n.dims) + " needs " + std::to_string(count) +
                                  " values of its dtype");
        n.literal.resize(bytes);
        if (bytes) std::memcpy(n.literal.data(), a.data(), bytes);
        return g_.add(std::move(n));
    }
    node_id full(const std::string& type, const std::vector<std::pair<std::string, std::int64_t>>& dims, double value) {
        changed();
        return ir::full(g_, dtype_named(type), shape_of(dims), value);
    }
    node_id unary(const std::string& k, node_id x) { return add([&] { return ir::unary(g_, op_named(k, op_category::unary, "unary"), x); }); }
    node_id binary(const std::string& k, node_id a, node_id b) {
        return add([&] { return ir::binary(g_, op_named(k, op_category::binary, "binary"), a, b); });
    }
    node_id binary_scalar(const std::string& k, node_id x, double value, bool scalar_first) {
        const auto kind = op_named(k, op_category::binary, "binary");
        return add([&] { return scalar_first ? ir::binary(g_, kind, value, x) : ir::binary(g_, kind, x, value); });
    }
    node_id compare(const std::string& direction, node_id a, node_id b) {
        const auto c = enum_named<comparison>(direction, comparison_names, "comparison");
        return add([&] { return ir::compare(g_, c, a, b); });
    }
    node_id select(node_id p, node_id a, node_id b) { return add([&] { return ir::select(g_, p, a, b); }); }
    node_id convert(node_id x, const std::string& type) { return add([&] { return ir::convert(g_, x, dtype_named(type)); }); }
    node_id transpose(node_id x, std::vector<std::int64_t> perm) { return add([&] { return ir::transpose(g_, x, std::move(perm)); }); }
    node_id reshape(node_id x, const std::vector<std::pair<std::string, std::int64_t>>& dims) {
        return add([&] { return ir::reshape(g_, x, shape_of(dims)); });
    }
    node_id broadcast(node_id x, const std::vector<std::pair<std::string, std::int64_t>>& dims, std::vector<std::int64_t> axes) {
        return add([&] { return ir::broadcast(g_, x, shape_of(dims), std::move(axes)); });
    }
    node_id reduce(node_id x, std::vector<std::int64_t> axes, const std::string& r) {
        const auto how = enum_named<reducer>(r, reducer_names, "reducer");
        return add([&] { return ir::reduce(g_, x, std::move(axes), how); });
    }
    node_id dot(node_id a, node_id b, std::vector<std::int64_t> lc, std::vector<std::int64_t> rc, std::vector<std::int64_t> lb,
                std::vector<std::int64_t> rb) {
        return add([&] { return ir::dot(g_, a, b, dot_dimensions{std::move(lc), std::move(rc), std::move(lb), std::move(rb)}); });
    }
    node_id slice(node_id x, std::vector<std::int64_t> starts, std::vector<std::int64_t> limits) {
        return add([&] { return ir::slice(g_, x, std::move(starts), std::move(limits)); });
    }
    node_id concatenate(std::vector<node_id> xs, std::int64_t axis) { return add([&] { return ir::concatenate(g_, std::move(xs), axis); }); }
    node_id gather(node_id table, node_id ids, std::int64_t axis) { return add([&] { return ir::gather(g_, table, ids, axis); }); }
    node_id pad(node_id x, node_id value, std::vector<std::int64_t> low, std::vector<std::int64_t> high) {
        return add([&] { return ir::pad(g_, x, value, std::move(low), std::move(high)); });
    }

    std::string type_of(node_id x) const { return std::string(scribe::name(g_[check(x)].type)); }
    std::vector<std::pair<std::string, std::int64_t>> dims_of(node_id x) const {
        std::vector<std::pair<std::string, std::int64_t>> out;
        for (const auto& d : g_[check(x)].dims) out.emplace_back(d.name, d.extent);
        return out;
    }
    std::string op_of(node_id x) const { return std::string(info(g_[check(x)].kind).name); }
    std::optional<std::string> label_of(node_id x) const {
        const auto& n = g_[check(x)];
        return n.kind == op::parameter ? std::optional(n.label) : std::nullopt;
    }
    std::optional<node_id> find_parameter(const std::string& label) const { return g_.find_parameter(label); }
    std::size_t size() const { return g_.nodes().size(); }
    std::string name() const { return g_.name(); }

    void set_outputs(const std::vector<node_id>& ids) {
        for (auto id : ids) (void)check(id);
        changed();
        g_.set_outputs(ids);
    }
    std::vector<node_id> outputs() const { return g_.outputs(); }
    std::vector<node_id> gradients(node_id loss, const std::vector<node_id>& wrt) {
        (void)check(loss);
        for (auto w : wrt) (void)check(w);
        changed();
        return scribe::gradients(g_, loss, wrt);
    }

    std::string hlo_text() const { return hlo::to_text(g_); }
    py::bytes hlo_proto() const { return py::bytes(hlo::to_proto(g_)); }
    std::pair<std::filesystem::path, std::filesystem::path> write(const std::filesystem::path& dir, const std::string& stem) const {
        try {
            const auto w = hlo::write(g_, dir, stem);
            return {w.text, w.proto};
        } catch (const std::filesystem::filesystem_error& e) {
            throw error("export: cannot write " + (dir / stem).string() + ".hlo and .pb: " + e.code().message());
        }
    }

    std::vector<std::string> input_names() { return run_on().input_names(); }

    // Runs the graph on `inputs` (name, array in the parameter's NumPy storage
    // type, any layout). A C-contiguous array is borrowed, never copied; the
    // outputs are the executor's buffers handed to NumPy (an output that is an
    // input's own elements is that input's memory, kept alive by the array).
    py::list run(const std::vector<std::pair<std::string, py::array>>& inputs, unsigned threads) {
        auto& ex = run_on(threads);
        std::vector<std::pair<py::array, std::size_t>> held;  // the inputs and their bytes, alive until the outputs are made
        cpu::named_arrays named;
        for (const auto& [label, given] : inputs) {
            const auto id = g_.find_parameter(label);
            if (!id) throw py::value_error("run: the graph has no parameter '" + label + "'");
            const auto& p = g_[*id];
            // Of the parameter's storage type and C-contiguous already: the array itself.
            auto a = with_storage(p.type, [&]<class T>(T) -> py::array { return py::array_t<T, py::array::c_style>::ensure(given); });
            if (!a)
                throw py::type_error("run: input '" + label + "' is not an array of the parameter's " + std::string(scribe::name(p.type)) +
                                     to_string(p.dims));
            if (a.ndim() != static_cast<py::ssize_t>(p.dims.size()))
                throw py::value_error("run: input '" + label + "' has " + std::to_string(a.ndim()) + " dimensions but the parameter is " +
                                      std::string(scribe::name(p.type)) + to_string(p.dims));
            for (std::size_t i = 0; i < p.dims.size(); ++i)
                if (a.shape(static_cast<py::ssize_t>(i)) != p.dims[i].extent)
                    throw py::value_error("run: input '" + label + "' has dimension " + std::to_string(i) + " of " +
                                          std::to_string(a.shape(static_cast<py::ssize_t>(i))) + " but the parameter is " +
                                          std::string(scribe::name(p.type)) + to_string(p.dims));
            const auto bytes = static_cast<std::size_t>(a.size()) * static_cast<std::size_t>(info(p.type).bytes);
            named.emplace_back(label, cpu::array::borrow(p.type, p.dims, a.data(), bytes));
            held.emplace_back(std::move(a), bytes);
        }
        std::vector<cpu::input> by_name;
        for (const auto& [label, a] : named) by_name.push_back({label, a});
        std::vector<cpu::array> outs;
        {
            py::gil_scoped_release nogil;
            outs = ex(std::span<const cpu::input>(by_name));
        }
        py::list result;
        for (auto& o : outs) {
            std::vector<py::ssize_t> shape;
            for (const auto& d : o.dims()) shape.push_back(d.extent);
            if (o.borrowed()) {
                // A view of an input's elements: that input's memory, kept alive.
                const py::array* owner = nullptr;
                for (const auto& [h, bytes] : held) {
                    const auto* base = static_cast<const unsigned char*>(h.data());
                    if (o.data() >= base && o.data() + o.bytes() <= base + bytes) owner = &h;
                }
                if (owner) {
                    py::array a = with_storage(o.type(), [&]<class T>(T) -> py::array {
                        return py::array_t<T>(shape, reinterpret_cast<const T*>(o.data()), *owner);
                    });
                    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
                    result.append(std::move(a));
                    continue;
                }
                o = cpu::array(o);  // a view of something else (a folded constant): its own copy
            }
            auto* kept = new cpu::array(std::move(o));
            py::capsule free_it(kept, [](void* p) { delete static_cast<cpu::array*>(p); });
            result.append(with_storage(kept->type(), [&]<class T>(T) -> py::array {
                return py::array_t<T>(shape, reinterpret_cast<T*>(kept->mutable_data()), free_it);
            }));
        }
        return result;
    }

private:
    node_id check(node_id x) const {
        if (x < 0 || static_cast<std::size_t>(x) >= g_.nodes().size())
            throw py::value_error("node " + std::to_string(x) + " is not in graph '" + g_.name() + "'");
        return x;
    }
    template <class F>
    node_id add(F&& f) {
        changed();
        return f();
    }
    // The graph changed: the executor made for it is no longer its.
    void changed() { executor_.reset(); }
    cpu::executor& run_on(unsigned threads = 0) {
        if (!executor_ || threads_ != threads) {
            executor_.reset();
            executor_ = std::make_unique<cpu::executor>(g_, cpu::options{.threads = threads});
            threads_ = threads;
        }
        return *executor_;
    }

    graph g_;
    std::unique_ptr<cpu::executor> executor_;
    unsigned threads_ = 0;
};

}  // namespace

void bind_graph(py::module_& m) {
    py::class_<graph_handle>(m, "Graph")
        .def(py::init<std::string>(), py::arg("name"))
        .def_property_readonly("name", &graph_handle::name)
        .def("__len__", &graph_handle::size)
        .def("parameter", &graph_handle::parameter, py::arg("name"), py::arg("dtype"), py::arg("dims"))
        .def("constant", &graph_handle::constant, py::arg("dtype"), py::arg("dims"), py::arg("values"))
        .def("full", &graph_handle::full, py::arg("dtype"), py::arg("dims"), py::arg("value"))
        .def("unary", &graph_handle::unary, py::arg("op"), py::arg("x"))
        .def("binary", &graph_handle::binary, py::arg("op"), py::arg("a"), py::arg("b"))
        .def("binary_scalar", &graph_handle::binary_scalar, py::arg("op"), py::arg("x"), py::arg("value"), py::arg("scalar_first"))
        .def("compare", &graph_handle::compare, py::arg("direction"), py::arg("a"), py::arg("b"))
        .def("select", &graph_handle::select, py::arg("pred"), py::arg("a"), py::arg("b"))
        .def("convert", &graph_handle::convert, py::arg("x"), py::arg("dtype"))
        .def("transpose", &graph_handle::transpose, py::arg("x"), py::arg("perm"))
        .def("reshape", &graph_handle::reshape, py::arg("x"), py::arg("dims"))
        .def("broadcast", &graph_handle::broadcast, py::arg("x"), py::arg("dims"), py::arg("axes"))
        .def("reduce", &graph_handle::reduce, py::arg("x"), py::arg("axes"), py::arg("reducer"))
        .def("dot", &graph_handle::dot, py::arg("a"), py::arg("b"), py::arg("lhs_contracting"), py::arg("rhs_contracting"),
             py::arg("lhs_batch"), py::arg("rhs_batch"))
        .def("slice", &graph_handle::slice, py::arg("x"), py::arg("starts"), py::arg("limits"))
        .def("concatenate", &graph_handle::concatenate, py::arg("xs"), py::arg("axis"))
        .def("gather", &graph_handle::gather, py::arg("table"), py::arg("ids"), py::arg("axis"))
        .def("pad", &graph_handle::pad, py::arg("x"), py::arg("value"), py::arg("low"), py::arg("high"))
        .def("dtype", &graph_handle::type_of, py::arg("x"))
        .def("dims", &graph_handle::dims_of, py::arg("x"))
        .def("op", &graph_handle::op_of, py::arg("x"))
        .def("label", &graph_handle::label_of, py::arg("x"))
        .def("find_parameter", &graph_handle::find_parameter, py::arg("label"))
        .def("set_outputs", &graph_handle::set_outputs, py::arg("ids"))
        .def_property_readonly("outputs", &graph_handle::outputs)
        .def("gradients", &graph_handle::gradients, py::arg("loss"), py::arg("wrt"))
        .def("hlo_text", &graph_handle::hlo_text)
        .def("hlo_proto", &graph_handle::hlo_proto)
        .def("write", &graph_handle::write, py::arg("dir"), py::arg("stem"))
        .def("input_names", &graph_handle::input_names)
        .def("run", &graph_handle::run, py::arg("inputs"), py::arg("threads"));

    // The ops by category, as the op table names them (scribe/graph.py makes a
    // method of each unary and binary one).
    m.def("op_names", [](const std::string& category) {
        std::vector<std::string> out;
        for (const auto& row : op_table) {
            const char* c = row.category == op_category::unary ? "unary" : row.category == op_category::binary ? "binary" : "";
            if (category == c) out.emplace_back(row.name);
        }
        return out;
    }, py::arg("category"));
}
