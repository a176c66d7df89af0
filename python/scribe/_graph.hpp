// python/scribe/_graph.hpp — the graph binding's entry (python/scribe/_graph.cpp),
// called by the module's definition in _native.cpp.
#pragma once

#include <pybind11/pybind11.h>

void bind_graph(pybind11::module_& m);
