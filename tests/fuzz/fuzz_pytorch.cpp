// libFuzzer target: pytorch_model.bin, torch.save's zip archive of a state dict
// (io::pytorch_file from bytes in memory: the zip reader and the pickle machine
// that never runs code). Any input either reads or is refused with scribe::error
// whose message carries none of the input's control characters; when it reads,
// every tensor's bytes are its elements times its dtype's size and are all read
// (so AddressSanitizer sees a view that leaves the file or a copy), and the
// tensors found by name are the ones listed. An input that does not begin with
// "PK" (a zip archive's first bytes) is given to the pickle machine alone
// (detail::torch_pickle), as data.pkl: inside an archive, a mutated data.pkl
// would almost always fail its CRC first.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include <string_view>

#include <scribe/io/pytorch.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        if (size < 2 || data[0] != 'P' || data[1] != 'K') {
            const scribe::io::detail::torch_pickle p(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz: data.pkl");
            for (const auto& t : p.tensors()) {
                fuzz::require(t.size.size() == t.stride.size() && t.size.size() <= 16, "a tensor has a stride per dim, at most 16");
                fuzz::require(t.offset >= 0, "a tensor's offset is not negative");
            }
            return 0;
        }
        const scribe::io::pytorch_file f(std::span<const unsigned char>(data, size), "fuzz.bin");
        for (const auto& e : f.tensors()) {
            const auto bytes = f.bytes(e.name);
            fuzz::require(e.elements() >= 0, "a tensor's element count is not negative");
            fuzz::require(bytes.size() == static_cast<std::uint64_t>(e.elements()) * scribe::info(e.type).bytes,
                          "a tensor's bytes are its elements times its dtype's size");
            fuzz::require(e.end - e.begin == bytes.size(), "a tensor's range spans its bytes");
            fuzz::require(f.contains(e.name) && &f.entry(e.name) == &e, "a tensor is found by its name");
            unsigned char sum = 0;
            for (const auto b : bytes) sum ^= b;
            static volatile unsigned char sink;
            sink = sum;
        }
    } catch (const scribe::error& e) {
        // A refused input: the expected outcome for most of them.
        fuzz::check_message(e);
    }
    return 0;
}
