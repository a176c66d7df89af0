// Core: dtypes and their 16-bit storage conversions, dimension slots.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include <scribe/scribe.hpp>

// The file's names, apart from other test files' (a unity build compiles them together).
namespace test_core {

SCRIBE_DIM(hidden);
SCRIBE_DIM(vocab);

using namespace scribe;

TEST_CASE("dtype table matches XLA's PrimitiveType numbers and names") {
    // Numbers from XLA's xla_data.proto.
    CHECK(info(dtype::pred).xla_type == 1);
    CHECK(info(dtype::s8).xla_type == 2);
    CHECK(info(dtype::s32).xla_type == 4);
    CHECK(info(dtype::s64).xla_type == 5);
    CHECK(info(dtype::u8).xla_type == 6);
    CHECK(info(dtype::u32).xla_type == 8);
    CHECK(info(dtype::f16).xla_type == 10);
    CHECK(info(dtype::f32).xla_type == 11);
    CHECK(info(dtype::f64).xla_type == 12);
    CHECK(info(dtype::bf16).xla_type == 16);
    CHECK(name(dtype::bf16) == "bf16");
    CHECK(dtype_of<f16>::id == dtype::f16);
    CHECK(FloatDtype<dtype_of<bf16>>);
    CHECK(IntegerDtype<dtype_of<u32>>);
    CHECK_FALSE(IntegerDtype<dtype_of<pred>>);
}

TEST_CASE("f16 conversion: every half value survives f16 -> f32 -> f16") {
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        const float f = f16_bits_to_f32(static_cast<std::uint16_t>(h));
        if (std::isnan(f)) {
            CHECK(std::isnan(f16_bits_to_f32(f32_to_f16_bits(f))));
            continue;
        }
        REQUIRE(f32_to_f16_bits(f) == h);
    }
}

TEST_CASE("f16 conversion rounds to nearest even, saturates to infinity, keeps subnormals") {
    // IEEE 754 binary16 facts: 1.0 = 0x3c00, max finite 65504 = 0x7bff, smallest
    // subnormal 2^-24 = 0x0001.
    CHECK(f32_to_f16_bits(1.0f) == 0x3c00);
    CHECK(f32_to_f16_bits(-2.0f) == 0xc000);
    CHECK(f32_to_f16_bits(65504.0f) == 0x7bff);
    CHECK(f32_to_f16_bits(65520.0f) == 0x7c00);  // halfway to the next binade: rounds up to inf
    CHECK(f32_to_f16_bits(std::ldexp(1.0f, -24)) == 0x0001);
    CHECK(f32_to_f16_bits(std::ldexp(1.0f, -26)) == 0x0000);
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to the even mantissa (1.0).
    CHECK(f32_to_f16_bits(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
    CHECK(f32_to_f16_bits(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
    // Every float between two neighbouring halves goes to the nearer one.
    for (std::uint16_t h = 0x3c00; h < 0x3c40; ++h) {
        const float lo = f16_bits_to_f32(h), hi = f16_bits_to_f32(static_cast<std::uint16_t>(h + 1));
        const float quarter = lo + (hi - lo) / 4, three_quarters = lo + 3 * (hi - lo) / 4;
        CHECK(f32_to_f16_bits(quarter) == h);
        CHECK(f32_to_f16_bits(three_quarters) == h + 1);
    }
}

TEST_CASE("bf16 conversion keeps the top half, rounding to nearest even") {
    for (std::uint32_t b = 0; b < 0x10000; b += 7) {
        const float f = bf16_bits_to_f32(static_cast<std::uint16_t>(b));
        if (!std::isnan(f)) REQUIRE(f32_to_bf16_bits(f) == b);
    }
    const float one = 1.0f;
    std::uint32_t bits;
    std::memcpy(&bits, &one, 4);
    auto from_bits = [](std::uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; };
    CHECK(f32_to_bf16_bits(from_bits(bits + 0x8000)) == 0x3f80);  // tie -> even (down)
    CHECK(f32_to_bf16_bits(from_bits(bits + 0x18000)) == 0x3f82); // tie -> even (up)
    CHECK(f32_to_bf16_bits(from_bits(bits + 0x8001)) == 0x3f81);  // above the tie
    CHECK(std::isnan(bf16_bits_to_f32(f32_to_bf16_bits(std::numeric_limits<float>::quiet_NaN()))));
}

TEST_CASE("store_as saturates integers and load_as_int reads them exactly") {
    unsigned char buf[8];
    store_as(dtype::s64, 1e30, buf);
    CHECK(load_as_int(dtype::s64, buf) == std::numeric_limits<std::int64_t>::max());
    store_as(dtype::u8, -5, buf);
    CHECK(load_as_int(dtype::u8, buf) == 0);
    store_as(dtype::s8, -1000, buf);
    CHECK(load_as_int(dtype::s8, buf) == -128);
    store_as(dtype::s32, -7.9, buf);
    CHECK(load_as_int(dtype::s32, buf) == -7);
    store_as(dtype::bf16, 3.0, buf);
    CHECK(load_as_double(dtype::bf16, buf) == 3.0);
    CHECK_THROWS_WITH(load_as_int(dtype::f32, buf), Catch::Contains("f32 is not an integer type"));
}

TEST_CASE("dimensions are same-named types; static and dynamic slots are one dimension") {
    CHECK(decltype(hidden)::name() == "hidden");
    CHECK(Dim<std::remove_cvref_t<decltype(hidden)>>);
    using S = std::remove_cvref_t<decltype(hidden.of<768>)>;
    CHECK(DimSlot<S>);
    CHECK(static_extent<S> == 768);
    CHECK(static_extent<std::remove_cvref_t<decltype(vocab)>> == dynamic_extent);
    CHECK(std::is_same_v<dim_of<S>, std::remove_cvref_t<decltype(hidden)>>);
    const auto b = vocab(50257);
    CHECK(b.name == "vocab");
    CHECK(b.extent == 50257);
}

}  // namespace test_core
