// HLO export: the wire format and the loader's structural rules, checked by
// decoding the proto with a minimal reader written here (XLA itself runs every
// module in the XLA suite).
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

#include <scribe/scribe.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_hlo {

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);
SCRIBE_DIM(batch);

using namespace scribe;

namespace {

// One decoded field: its number, and either a varint or the bytes of a
// length-delimited value (a string, a nested message or a packed array).
struct field {
    int number = 0;
    std::uint64_t value = 0;
    std::string bytes;
    bool delimited = false;
};

std::uint64_t read_varint(const std::string& s, std::size_t& i) {
    std::uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        REQUIRE(i < s.size());
        const auto b = static_cast<unsigned char>(s[i++]);
        v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
}

std::vector<field> decode(const std::string& s) {
    std::vector<field> out;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto key = read_varint(s, i);
        field f;
        f.number = static_cast<int>(key >> 3);
        switch (key & 7) {
            case 0: f.value = read_varint(s, i); break;
            case 2: {
                const auto n = read_varint(s, i);
                REQUIRE(i + n <= s.size());
                f.bytes = s.substr(i, n);
                f.delimited = true;
                i += n;
                break;
            }
            case 5: i += 4; break;
            case 1: i += 8; break;
            default: FAIL("unexpected wire type " << (key & 7));
        }
        out.push_back(f);
    }
    return out;
}

std::vector<const field*> all(const std::vector<field>& fs, int n) {
    std::vector<const field*> out;
    for (const auto& f : fs)
        if (f.number == n) out.push_back(&f);
    return out;
}

const field& one(const std::vector<field>& fs, int n) {
    auto v = all(fs, n);
    REQUIRE(v.size() == 1);
    return *v[0];
}

std::vector<std::int64_t> packed(const field* f) {
    std::vector<std::int64_t> out;
    if (!f) return out;
    std::size_t i = 0;
    while (i < f->bytes.size()) out.push_back(static_cast<std::int64_t>(read_varint(f->bytes, i)));
    return out;
}

// Every array shape carries a layout {rank-1, ..., 0}; tuples recurse.
void check_shape(const std::string& bytes) {
    const auto s = decode(bytes);
    if (one(s, 2).value == 13) {
        for (auto* e : all(s, 4)) check_shape(e->bytes);
        return;
    }
    const auto dims = all(s, 3);
    const auto rank = dims.empty() ? 0 : packed(dims[0]).size();
    const auto layout = decode(one(s, 5).bytes);
    const auto m2m = all(layout, 1);
    const auto order = m2m.empty() ? std::vector<std::int64_t>{} : packed(m2m[0]);
    REQUIRE(order.size() == rank);
    for (std::size_t k = 0; k < rank; ++k) CHECK(order[k] == static_cast<std::int64_t>(rank - 1 - k));
}

// XLA's loader rules for an HloModuleProto.
void check_module(const std::string& proto) {
    const auto m = decode(proto);
    REQUIRE(!one(m, 1).bytes.empty());
    check_shape(decode(one(m, 4).bytes).at(0).bytes);  // host_program_shape present
    std::set<std::int64_t> instruction_ids, computation_ids;
    std::set<std::string> names;
    std::map<std::int64_t, std::string> computation_names;
    for (auto* c : all(m, 3)) {
        const auto cf = decode(c->bytes);
        const auto cid = static_cast<std::int64_t>(one(cf, 5).value);
        std::set<std::int64_t> defined;
        std::vector<std::int64_t> params;
        for (auto* i : all(cf, 2)) {
            const auto inst = decode(i->bytes);
            const auto id = static_cast<std::int64_t>(one(inst, 35).value);
            CHECK(id < (std::int64_t{1} << 31));
            CHECK(instruction_ids.insert(id).second);
            const auto name = one(inst, 1).bytes;
            CHECK(!name.empty());
            CHECK(names.insert(name).second);
            for (auto op : packed(all(inst, 36).empty() ? nullptr : all(inst, 36)[0])) CHECK(defined.count(op) == 1);
            for (auto called : packed(all(inst, 38).empty() ? nullptr : all(inst, 38)[0]))
                CHECK(computation_ids.count(called) == 1);  // callees come first
            check_shape(one(inst, 3).bytes);
            const auto opcode = one(inst, 2).bytes;
            if (opcode == "parameter") params.push_back(all(inst, 9).empty() ? 0 : static_cast<std::int64_t>(one(inst, 9).value));
            if (opcode == "dot") CHECK(all(inst, 30).size() == 1);  // required even when empty
            if (opcode == "slice")
                for (auto* sd : all(inst, 17)) CHECK(one(decode(sd->bytes), 3).value == 1);  // stride 1
            defined.insert(id);
        }
        std::sort(params.begin(), params.end());
        for (std::size_t k = 0; k < params.size(); ++k) CHECK(params[k] == static_cast<std::int64_t>(k));
        CHECK(defined.count(static_cast<std::int64_t>(one(cf, 6).value)) == 1);  // root is an instruction
        CHECK(computation_ids.insert(cid).second);
        computation_names[cid] = one(cf, 1).bytes;
    }
    const auto entry_id = static_cast<std::int64_t>(one(m, 6).value);
    REQUIRE(computation_names.count(entry_id) == 1);
    CHECK(computation_names[entry_id] == one(m, 2).bytes);
}

graph sample_graph() {
    graph g("sample");
    g.bind(hidden(8), vocab(11), tokens(3), batch(2));
    auto cache = g.parameter(f32[hidden, tokens, batch], "cache");
    auto w = g.parameter(f32[hidden, vocab], "w");
    auto pos = g.parameter(s32[], "pos");
    auto logits = dot<hidden>(w, cache);
    auto probs = softmax<vocab>(logits);
    auto best = argmax<vocab>(logits);
    auto updated = dynamic_update_slice<tokens>(cache, slice<tokens>(cache, 0, 1), pos);
    g.outputs(updated, probs, best, reduce_max<tokens, batch>(slice<hidden>(cache, 1, 5)));
    g.alias(0, cache);
    return g;
}

}  // namespace

TEST_CASE("proto writer: varints and packed fields in protobuf's encoding") {
    hlo::proto_writer w;
    w.int_field(1, 150);  // the protobuf documentation's example: 08 96 01
    CHECK(w.bytes() == std::string("\x08\x96\x01", 3));
    hlo::proto_writer n;
    n.int_field(2, -1);  // negative int64: ten bytes of varint
    CHECK(n.bytes().size() == 11);
    hlo::proto_writer p;
    p.packed_ints(4, std::vector<std::int64_t>{3, 270});
    CHECK(p.bytes() == std::string("\x22\x03\x03\x8e\x02", 5));
    hlo::proto_writer e;
    e.packed_ints(4, std::vector<std::int64_t>{});
    CHECK(e.bytes().empty());
}

TEST_CASE("HloModuleProto follows the loader's structural rules") {
    const auto g = sample_graph();
    check_module(hlo::to_proto(g));
}

TEST_CASE("HLO text: entry, root tuple, reducers before their users, aliasing") {
    const auto text = hlo::to_text(sample_graph());
    CHECK(text.rfind("HloModule sample, input_output_alias={ {0}: (0, {}, may-alias) }", 0) == 0);
    CHECK(text.find("ENTRY main {") != std::string::npos);
    CHECK(text.find("ROOT tuple") != std::string::npos);
    CHECK(text.find("to_apply=argmax_f32") != std::string::npos);
    CHECK(text.find("argmax_f32 {") < text.find("ENTRY"));
    CHECK(text.find("cache = f32[8,3,2]{2,1,0} parameter(0)") != std::string::npos);
    CHECK(text.find("lhs_contracting_dims={0}, rhs_contracting_dims={0}") != std::string::npos);
    CHECK(text.find("slice={[0:8:1], [0:1:1], [0:2:1]}") != std::string::npos);
}

TEST_CASE("a single output is the root itself; its alias has the empty index") {
    graph g("single");
    g.bind(hidden(4));
    auto x = g.parameter(f32[hidden], "x");
    g.outputs(x * 2.0);
    g.alias(0, x);
    const auto m = hlo::lower(g);
    CHECK_FALSE(m.entry().result.is_tuple);
    REQUIRE(m.aliases.size() == 1);
    CHECK(m.aliases[0].output_index.empty());
    CHECK(hlo::to_text(m).find("input_output_alias={ {}: (0, {}, may-alias) }") != std::string::npos);
}

SCRIBE_DIM(cols);

TEST_CASE("constants print exactly in HLO text") {
    graph g("constants");
    const double vals[] = {-1.5, 0.1, 3};
    g.outputs(g.constant(f32[cols.of<3>], vals), g.constant(s64, 9223372036854775807.0), g.constant(f16, 65504.0),
              g.constant(pred, 1.0));
    const auto text = hlo::to_text(g);
    CHECK(text.find("constant({-1.5, 0.100000001, 3})") != std::string::npos);
    CHECK(text.find("s64[] constant(9223372036854775807)") != std::string::npos);
    CHECK(text.find("f16[] constant(65504)") != std::string::npos);
    CHECK(text.find("pred[] constant(true)") != std::string::npos);
}

TEST_CASE("parameter names are made valid and unique HLO names") {
    graph g("names");
    g.bind(hidden(2));
    auto a = g.parameter(f32[hidden], "layers/0 weight");
    auto b = g.parameter(f32[hidden], "2nd");
    g.outputs(a + b);
    const auto text = hlo::to_text(g);
    // Numbered by name: "2nd" sorts before "layers/0 weight".
    CHECK(text.find("layers_0_weight = f32[2]{0} parameter(1)") != std::string::npos);
    CHECK(text.find("_2nd = f32[2]{0} parameter(0)") != std::string::npos);
    check_module(hlo::to_proto(g));
}

TEST_CASE("lowering a graph without outputs is an error that says what to do") {
    graph g("empty");
    g.bind(hidden(2));
    (void)g.parameter(f32[hidden], "x");
    CHECK_THROWS_WITH(hlo::lower(g), Catch::Contains("has no outputs") && Catch::Contains("g.outputs"));
}

}  // namespace test_hlo
