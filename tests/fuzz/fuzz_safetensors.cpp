// libFuzzer target: the safetensors header parser (io::safetensors from bytes in
// memory). Any input either parses or is refused with scribe::error; when it
// parses, every tensor's byte range must lie in the data and match its dtype and
// shape (each byte is read, so AddressSanitizer sees a range that does not).
// A refusal's message carries none of the input's control characters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include <scribe/io/safetensors.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const scribe::io::safetensors f(std::span<const unsigned char>(data, size), "fuzz.safetensors");
        std::uint64_t covered = 0;
        for (const auto& e : f.tensors()) {
            const auto bytes = f.bytes(e.name);
            if (bytes.size() != e.end - e.begin) std::abort();
            if (bytes.size() != static_cast<std::uint64_t>(e.elements()) * scribe::info(e.type).bytes) std::abort();
            if (!f.contains(e.name) || &f.entry(e.name) != &e) std::abort();
            unsigned char sum = 0;
            for (const auto b : bytes) sum ^= b;
            static volatile unsigned char sink;
            sink = sum;
            covered += bytes.size();
        }
        // The data section (after the 8-byte length and the header) is covered exactly.
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
        if (covered != size - 8 - n) std::abort();
    } catch (const scribe::error& e) {
        // A refused input: the expected outcome for most of them.
        fuzz::check_message(e);
    }
    return 0;
}
