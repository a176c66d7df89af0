// The compile-time shape rules: each op's inferred result type, checked with
// static_assert. Nothing here runs; if a rule changes, this file stops compiling.
// (Rejected programs are in tests/compile_fail: their errors are static_asserts in
// function bodies, which no requires-expression can observe.)
#include <type_traits>

#include <scribe/scribe.hpp>
#include <scribe/parallel/mesh.hpp>

SCRIBE_DIM(hidden);
SCRIBE_DIM(embed);
SCRIBE_DIM(vocab);
SCRIBE_DIM(tokens);
SCRIBE_DIM(keys);
SCRIBE_DIM(batch);
SCRIBE_DIM(heads);
SCRIBE_DIM(head_dim);

using namespace scribe;

namespace {

// An operand of a spec's type, for decltype only (never defined, never called).
template <auto Spec>
const tensor_of<Spec>& val();

// The type of a dimension or dtype object: `hidden` names the object, not the type.
template <auto X>
using type_of = std::remove_cvref_t<decltype(X)>;

template <class A, class B>
inline constexpr bool same = std::is_same_v<A, B>;

// tensor_of spells a handle type from a spec; the rest of the file relies on it.
static_assert(same<tensor_of<f32[hidden, vocab]>, tensor<type_of<f32>, type_of<hidden>, type_of<vocab>>>);
static_assert(same<tensor_of<f16[hidden.of<768>]>, tensor<type_of<f16>, static_dim<type_of<hidden>, 768>>>);
static_assert(same<tensor_of<s32[]>, tensor<type_of<s32>>>);
static_assert(same<tensor_of<f32[hidden, vocab]>::dims_type, dims<type_of<hidden>, type_of<vocab>>>);
static_assert(tensor_of<f32[hidden, vocab, tokens]>::rank == 3);
static_assert(same<tensor_of<bf16[hidden]>::dtype_type, type_of<bf16>>);

// dot: contract by name; result is [batch..., lhs free..., rhs free...].
static_assert(same<decltype(dot<hidden>(val<f32[hidden, vocab]>(), val<f32[hidden, tokens, batch]>())),
                   tensor_of<f32[vocab, tokens, batch]>>);
// The contracted dimension's position does not matter.
static_assert(same<decltype(dot<hidden>(val<f32[vocab, hidden]>(), val<f32[tokens, hidden]>())),
                   tensor_of<f32[vocab, tokens]>>);
// Batch dimensions are listed (batched<...>, in any order) and come first, in the
// lhs's order.
static_assert(same<decltype(dot<head_dim, batched<heads, batch>>(val<f32[tokens, batch, heads, head_dim]>(),
                                                              val<f32[heads, head_dim, keys, batch]>())),
                   tensor_of<f32[batch, heads, tokens, keys]>>);
// Several contracting dimensions at once.
static_assert(same<decltype(dot<heads, head_dim>(val<f32[heads, head_dim, hidden]>(),
                                                 val<f32[tokens, head_dim, heads]>())),
                   tensor_of<f32[hidden, tokens]>>);
// A batch dimension static on either side is static in the result; free
// dimensions keep their own slots.
static_assert(same<decltype(dot<hidden, batched<batch>>(val<f32[batch, hidden, tokens.of<4>]>(),
                                                        val<f32[batch.of<2>, hidden, keys]>())),
                   tensor_of<f32[batch.of<2>, tokens.of<4>, keys]>>);
static_assert(same<decltype(dot<hidden>(val<bf16[hidden.of<8>, vocab]>(), val<bf16[hidden, tokens]>())),
                   tensor_of<bf16[vocab, tokens]>>);

// Element-wise ops align by name: the result is in the lhs's order.
static_assert(same<decltype(val<f32[hidden, tokens]>() + val<f32[hidden, tokens]>()),
                   tensor_of<f32[hidden, tokens]>>);
static_assert(same<decltype(val<f32[hidden, tokens]>() * val<f32[tokens, hidden]>()),
                   tensor_of<f32[hidden, tokens]>>);
static_assert(same<decltype(maximum(val<s32[tokens, batch]>(), val<s32[batch, tokens]>())),
                   tensor_of<s32[tokens, batch]>>);
// A static extent on either side wins over a dynamic one.
static_assert(same<decltype(val<f32[hidden.of<4>]>() + val<f32[hidden]>()), tensor_of<f32[hidden.of<4>]>>);
static_assert(same<decltype(val<f32[hidden]>() + val<f32[hidden.of<4>]>()), tensor_of<f32[hidden.of<4>]>>);
static_assert(same<decltype(val<f32[hidden.of<4>, tokens]>() - val<f32[tokens.of<3>, hidden]>()),
                   tensor_of<f32[hidden.of<4>, tokens.of<3>]>>);
// A rank-0 operand, or a C++ number, broadcasts.
static_assert(same<decltype(val<f32[hidden, tokens]>() * val<f32[]>()), tensor_of<f32[hidden, tokens]>>);
static_assert(same<decltype(val<f32[]>() / val<f32[hidden, tokens]>()), tensor_of<f32[hidden, tokens]>>);
static_assert(same<decltype(val<f16[hidden]>() * 0.5), tensor_of<f16[hidden]>>);
static_assert(same<decltype(1 - val<f16[hidden]>()), tensor_of<f16[hidden]>>);
// Unary ops keep the type.
static_assert(same<decltype(exp(val<bf16[hidden, tokens]>())), tensor_of<bf16[hidden, tokens]>>);
static_assert(same<decltype(-val<s32[tokens.of<5>]>()), tensor_of<s32[tokens.of<5>]>>);
static_assert(same<decltype(abs(val<s32[tokens]>())), tensor_of<s32[tokens]>>);

// compare gives pred; select follows on_true's order.
static_assert(same<decltype(lt(val<f32[hidden, tokens]>(), val<f32[tokens, hidden]>())),
                   tensor_of<pred[hidden, tokens]>>);
static_assert(same<decltype(compare<comparison::ge>(val<s32[tokens]>(), val<s32[tokens]>())),
                   tensor_of<pred[tokens]>>);
static_assert(same<decltype(select(val<pred[tokens, keys]>(), val<f32[keys, tokens]>(), val<f32[tokens, keys]>())),
                   tensor_of<f32[keys, tokens]>>);

// convert changes the dtype only.
static_assert(same<decltype(convert<f16>(val<f32[hidden.of<4>, tokens]>())), tensor_of<f16[hidden.of<4>, tokens]>>);
static_assert(same<decltype(convert<s32>(val<pred[tokens]>())), tensor_of<s32[tokens]>>);

// broadcast appends the new dimensions, with their static extents.
static_assert(same<decltype(broadcast<tokens, batch>(val<f32[hidden]>())), tensor_of<f32[hidden, tokens, batch]>>);
static_assert(same<decltype(broadcast<tokens.of<4>>(val<f32[hidden]>())), tensor_of<f32[hidden, tokens.of<4>]>>);
static_assert(same<decltype(broadcast<hidden>(val<f32[]>())), tensor_of<f32[hidden]>>);
// broadcast_to takes the target's dimensions and order; static extents merge.
static_assert(same<decltype(broadcast_to(val<f32[hidden]>(), val<f16[tokens, hidden, batch]>())),
                   tensor_of<f32[tokens, hidden, batch]>>);
static_assert(same<decltype(broadcast_to(val<f32[hidden.of<4>, tokens]>(), val<f32[tokens, batch, hidden]>())),
                   tensor_of<f32[tokens, batch, hidden.of<4>]>>);

// transpose reorders and keeps static extents, whichever slot spells them.
static_assert(same<decltype(transpose<tokens, hidden>(val<f32[hidden, tokens]>())), tensor_of<f32[tokens, hidden]>>);
static_assert(same<decltype(transpose<tokens, hidden>(val<f32[hidden.of<4>, tokens]>())),
                   tensor_of<f32[tokens, hidden.of<4>]>>);
static_assert(same<decltype(transpose<batch, hidden, tokens>(val<f32[hidden, tokens, batch]>())),
                   tensor_of<f32[batch, hidden, tokens]>>);

// rename replaces one dimension in place; a static extent carries over.
static_assert(same<decltype(rename<hidden, embed>(val<f32[hidden, tokens]>())), tensor_of<f32[embed, tokens]>>);
static_assert(same<decltype(rename<hidden, embed>(val<f32[tokens, hidden.of<4>]>())),
                   tensor_of<f32[tokens, embed.of<4>]>>);
static_assert(same<decltype(rename<hidden, embed.of<4>>(val<f32[hidden]>())), tensor_of<f32[embed.of<4>]>>);

// split replaces one dimension by two in place; merge the reverse, at the first's place.
static_assert(same<decltype(split<hidden, heads, head_dim>(val<f32[tokens, hidden, batch]>())),
                   tensor_of<f32[tokens, heads, head_dim, batch]>>);
static_assert(same<decltype(split<hidden, heads.of<12>, head_dim.of<64>>(val<f32[hidden.of<768>]>())),
                   tensor_of<f32[heads.of<12>, head_dim.of<64>]>>);
// An extent derived at run time is not in the type: head_dim stays dynamic.
static_assert(same<decltype(split<hidden, heads.of<12>, head_dim>(val<f32[hidden.of<768>]>())),
                   tensor_of<f32[heads.of<12>, head_dim]>>);
static_assert(same<decltype(merge<heads, head_dim, hidden>(val<f32[heads, head_dim, tokens]>())),
                   tensor_of<f32[hidden, tokens]>>);
// head_dim elsewhere is moved next to heads first.
static_assert(same<decltype(merge<heads, head_dim, hidden>(val<f32[heads, tokens, head_dim]>())),
                   tensor_of<f32[hidden, tokens]>>);
static_assert(same<decltype(merge<heads, head_dim, hidden.of<768>>(val<f32[tokens, heads.of<12>, head_dim.of<64>]>())),
                   tensor_of<f32[tokens, hidden.of<768>]>>);

// Reductions drop the named dimensions; argmax gives s32.
static_assert(same<decltype(reduce_sum<tokens>(val<f32[hidden, tokens, batch]>())), tensor_of<f32[hidden, batch]>>);
static_assert(same<decltype(reduce_max<batch, hidden>(val<f32[hidden, tokens.of<3>, batch]>())),
                   tensor_of<f32[tokens.of<3>]>>);
static_assert(same<decltype(reduce_min<hidden>(val<s32[hidden]>())), tensor_of<s32[]>>);
static_assert(same<decltype(mean<hidden>(val<f16[hidden, tokens]>())), tensor_of<f16[tokens]>>);
static_assert(same<decltype(argmax<vocab>(val<f32[vocab, tokens, batch]>())), tensor_of<s32[tokens, batch]>>);
static_assert(same<decltype(argmax<vocab>(val<bf16[tokens, vocab.of<7>]>())), tensor_of<s32[tokens]>>);
// softmax and log_softmax keep the type.
static_assert(same<decltype(softmax<vocab>(val<f32[vocab.of<7>, tokens]>())), tensor_of<f32[vocab.of<7>, tokens]>>);
static_assert(same<decltype(log_softmax<vocab>(val<f32[tokens, vocab]>())), tensor_of<f32[tokens, vocab]>>);

// Ops that change one dimension's extent make that slot dynamic, and only that one.
static_assert(same<decltype(slice<tokens>(val<f32[hidden.of<4>, tokens.of<8>]>(), 0, 4)),
                   tensor_of<f32[hidden.of<4>, tokens]>>);
static_assert(same<decltype(dynamic_slice<tokens>(val<f32[tokens.of<8>, batch]>(), val<s32[]>(), 2)),
                   tensor_of<f32[tokens, batch]>>);
static_assert(same<decltype(pad<tokens>(val<f32[hidden.of<4>, tokens.of<8>]>(), 0.0, 1, 1)),
                   tensor_of<f32[hidden.of<4>, tokens]>>);
static_assert(same<decltype(concatenate<tokens>(val<f32[hidden, tokens.of<2>]>(), val<f32[tokens.of<3>, hidden]>())),
                   tensor_of<f32[hidden, tokens]>>);
static_assert(same<decltype(all_gather<vocab>(val<f32[hidden, vocab.of<8>]>(), replica_groups::all(2))),
                   tensor_of<f32[hidden, vocab]>>);
// dynamic_update_slice keeps the operand's type, static extents included.
static_assert(same<decltype(dynamic_update_slice<tokens>(val<f16[hidden.of<4>, tokens.of<16>]>(),
                                                         val<f16[tokens, hidden]>(), val<s32[]>())),
                   tensor_of<f16[hidden.of<4>, tokens.of<16>]>>);
// all_reduce keeps the type.
static_assert(same<decltype(all_reduce_sum(val<f32[hidden.of<4>, tokens]>(), replica_groups::all(2))),
                   tensor_of<f32[hidden.of<4>, tokens]>>);

// gather: the table's other dimensions, then the indices' dimensions.
static_assert(same<decltype(gather<vocab>(val<f32[vocab, hidden]>(), val<s32[tokens, batch]>())),
                   tensor_of<f32[hidden, tokens, batch]>>);
static_assert(same<decltype(gather<vocab>(val<bf16[hidden.of<4>, vocab]>(), val<s64[tokens]>())),
                   tensor_of<bf16[hidden.of<4>, tokens]>>);
static_assert(same<decltype(gather<vocab>(val<f32[vocab]>(), val<u32[]>())), tensor_of<f32[]>>);

// Sharding a static extent over a TP degree: the rank's static extent; a dynamic one stays dynamic.
static_assert(same<parallel::sharded<hidden.of<12>, 4>, static_dim<std::remove_cvref_t<decltype(hidden)>, 3>>);
static_assert(same<parallel::sharded<hidden, 4>, std::remove_cvref_t<decltype(hidden)>>);
static_assert(same<decltype(replica_id(std::declval<graph&>())), tensor_of<u32[]>>);

// A generic helper deduces its dimensions like any op.
template <class T, class... S>
auto rms(const tensor<T, S...>& x) {
    return sqrt(mean<hidden>(x * x));
}
static_assert(same<decltype(rms(val<f32[tokens, hidden, batch]>())), tensor_of<f32[tokens, batch]>>);

}  // namespace

int main() { return 0; }
