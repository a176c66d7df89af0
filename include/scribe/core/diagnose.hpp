// scribe/core/diagnose.hpp — compile-time diagnostics.
//
// Each struct here exists only to fail. Instantiating one makes the compiler print
// its template arguments (the dimensions and dtypes involved, by their own names) in
// an "In instantiation of ..." line, followed by the static_assert's message. Ops
// instantiate one when their shape rule rejects their operands.
#pragma once

namespace scribe::diagnose {

template <class...>
inline constexpr bool always_false = false;

// If you end up here, a shape names one dimension twice. A square weight needs two
// dimensions: declare a second one (SCRIBE_DIM) or use rename<from, to>.
template <class Dim, class Shape>
struct duplicate_dimension_in_shape {
    static_assert(always_false<Dim>, "[scribe] a shape names the same dimension twice");
};

// If you end up here, you asked dot to contract a dimension that one operand lacks.
// Contraction is by name: rename<from, to> one side so the names agree.
template <class Dim, class LhsDims, class RhsDims>
struct dot_cannot_contract {
    static_assert(always_false<Dim>,
                  "[scribe] dot: cannot contract a dimension that is not in both operands");
};

// If you end up here, both operands of dot have a dimension that the dot neither
// contracts nor lists as a batch dimension. Usually a name that should differ:
// attention's keys are rename<tokens, keys>(k). A dimension meant to be shared is
// listed: dot<head_dim, batched<batch, heads>>(q, k).
template <class Dim, class LhsDims, class RhsDims>
struct dot_shared_dimension_not_batched {
    static_assert(always_false<Dim>,
                  "[scribe] dot: a dimension in both operands is neither contracted nor batched; list it in "
                  "batched<...> or rename it on one side (rename<from, to>)");
};

// If you end up here, dot's batched<...> names a dimension one operand lacks.
template <class Dim, class LhsDims, class RhsDims>
struct dot_batch_dimension_missing {
    static_assert(always_false<Dim>, "[scribe] dot: a batched dimension is not in both operands");
};

// If you end up here, the operands of concatenate have different dimensions: they
// must have the same ones, and may differ only in the extent of the dimension
// they are joined along.
template <class Op, class FirstDims, class... OtherDims>
struct concatenate_dims_differ {
    static_assert(always_false<Op>,
                  "[scribe] concatenate: the operands' dimensions differ; they must have the same dimensions");
};

// If you end up here, dynamic_update_slice's update does not have the dimensions of
// the tensor it is written into.
template <class TensorDims, class UpdateDims>
struct update_dims_differ {
    static_assert(always_false<TensorDims>,
                  "[scribe] dynamic_update_slice: the update's dimensions differ from the tensor's");
};

// If you end up here, scatter_add's updates do not have the dimensions of
// gather<D>(table, ids)'s result: the table's dimensions without D, then the ids'
// dimensions (in any order; they are aligned by name). ExpectedDims lists them.
template <class ExpectedDims, class UpdateDims>
struct scatter_updates_dims_differ {
    static_assert(always_false<ExpectedDims>,
                  "[scribe] scatter_add: the updates' dimensions differ from gather's result (the table's "
                  "dimensions without the indexed one, then the indices' dimensions)");
};

// If you end up here, bitcast_convert was asked to reinterpret elements as a dtype
// of another width (f32 as f16, say). It reinterprets bits of one width only;
// convert<dtype>(x) changes a value's dtype.
template <class FromDtype, class ToDtype>
struct bitcast_widths_differ {
    static_assert(always_false<FromDtype>,
                  "[scribe] bitcast_convert: the dtypes have different element widths; it reinterprets "
                  "the bits of elements of one width (convert<dtype> converts values)");
};

// If you end up here, an element-wise op got operands whose dimensions differ.
// Operands align by name; add the missing dimensions with broadcast<...> first.
template <class Op, class LhsDims, class RhsDims>
struct elementwise_dims_differ {
    static_assert(always_false<Op>,
                  "[scribe] element-wise op: the operands' dimensions differ and no broadcast was asked");
};

// If you end up here, two operands have different dtypes. Scribe never promotes:
// spell the conversion with convert<dtype>(x).
template <class Op, class LhsDtype, class RhsDtype>
struct dtype_mismatch {
    static_assert(always_false<Op>, "[scribe] dtype mismatch: convert<dtype>(x) one operand first");
};

// If you end up here, transpose's target order is not a permutation of the
// tensor's dimensions (one missing, one extra, or one twice).
template <class TargetDims, class TensorDims>
struct transpose_not_a_permutation {
    static_assert(always_false<TargetDims>,
                  "[scribe] transpose: the target order is not a permutation of the tensor's dimensions");
};

// If you end up here, split or merge was given static extents that do not multiply out.
template <class From, class To, class Extents>
struct extents_do_not_multiply_out {
    static_assert(always_false<From>,
                  "[scribe] split/merge: the static extents do not multiply out");
};

// If you end up here, an op names a dimension the tensor does not have.
template <class Op, class Dim, class TensorDims>
struct dimension_not_in_tensor {
    static_assert(always_false<Dim>, "[scribe] the op names a dimension the tensor does not have");
};

// If you end up here, an op would create a dimension the tensor already has.
template <class Op, class Dim, class TensorDims>
struct dimension_already_in_tensor {
    static_assert(always_false<Dim>, "[scribe] the op adds a dimension the tensor already has");
};

// If you end up here, one dimension is bound to two different static extents.
template <class LhsSlots, class RhsSlots>
struct static_extent_conflict {
    static_assert(always_false<LhsSlots>,
                  "[scribe] one dimension has two different static extents");
};

// If you end up here, the op needs a dtype of another kind (e.g. a float for exp,
// an integer for indices, pred for select's condition).
template <class Op, class Dtype>
struct unsupported_dtype {
    static_assert(always_false<Op>, "[scribe] the op does not take this dtype");
};

// If you end up here, an op that needs one or more dimension names got none.
template <class Op, class... TensorDims>
struct no_dimension_named {
    static_assert(always_false<Op, TensorDims...>, "[scribe] name at least one dimension, e.g. reduce_sum<tokens>(x)");
};

// Names a composite op (one without an IR node of its own) in diagnostics:
// scribe::diagnose::composite_op<scribe::diagnose::op_name::softmax>.
template <class Name>
struct composite_op {};
namespace op_name {
struct mean;
struct softmax;
struct log_softmax;
struct extent;
struct cross_entropy;
struct mean_squared_error;
}  // namespace op_name

// If you end up here, the shard count does not divide the dimension's static extent.
template <class Dim, class Extent, class Shards>
struct shards_do_not_divide {
    static_assert(always_false<Dim>, "[scribe] the shard count does not divide the dimension");
};

// If you end up here, grad got a loss that is not a scalar: the loss must be one
// number, its dimensions reduced (reduce_sum<...>, mean<...>). The dimensions it
// still has are LossDims.
template <class LossDims>
struct loss_not_scalar {
    static_assert(always_false<LossDims>,
                  "[scribe] grad: the loss must be a scalar; it has the dimensions named in loss_not_scalar<dims<...>> (reduce them first)");
};

// If you end up here, grad was asked for a gradient of or with respect to a value
// that is not a float (an integer or pred tensor has no gradient).
template <class Role, class Dtype>
struct gradient_needs_float {
    static_assert(always_false<Role>, "[scribe] grad: gradients are taken of and with respect to float tensors only");
};
namespace grad_role {
struct loss;
struct with_respect_to;
}  // namespace grad_role

}  // namespace scribe::diagnose
