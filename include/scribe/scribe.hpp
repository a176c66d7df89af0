// scribe/scribe.hpp — the umbrella header.
//
// Scribe writes transformer models as typed graphs. A tensor's type carries its
// dtype and its named dimensions, so shapes are checked and inferred by the C++
// compiler:
//
//     SCRIBE_DIM(hidden); SCRIBE_DIM(vocab); SCRIBE_DIM(tokens); SCRIBE_DIM(batch);
//
//     scribe::graph g("lm_head");
//     g.bind(hidden(768), vocab(50257), tokens(128), batch(1));
//     auto h = g.parameter(f32[hidden, tokens, batch], "hidden");
//     auto w = g.parameter(f32[hidden, vocab], "weight");
//     auto logits = dot<hidden>(w, h);          // tensor_of<f32[vocab, tokens, batch]>
//     g.outputs(logits);
//     scribe::hlo::write(g, "out", "lm_head");  // out/lm_head.hlo and .pb
//
// Layers, each depending only on those above it:
//   core   dtypes, dimensions, dimension lists, diagnostics      (core/)
//   graph  the untyped IR, its shape rule, the typed handle      (graph/)
//   ops    the typed op set: compile-time shape rules            (ops/)
//   hlo    graph -> HLO text and HloModuleProto                   (hlo/)
#pragma once

#include "core/dim.hpp"
#include "core/dims.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/tensor_spec.hpp"
#include "graph/graph.hpp"
#include "graph/tensor.hpp"
#include "ops/bitwise.hpp"
#include "ops/collective.hpp"
#include "ops/dot.hpp"
#include "ops/elementwise.hpp"
#include "ops/grad.hpp"
#include "ops/layout.hpp"
#include "ops/random.hpp"
#include "ops/reduce.hpp"
#include "ops/slicing.hpp"
#include "hlo/export.hpp"
