// scribe/cpu.hpp — the CPU backend: run any Scribe graph directly (cpu/executor.hpp).
// Separate from scribe.hpp, which holds the layers that model code uses.
#pragma once

#include "cpu/array.hpp"
#include "cpu/executor.hpp"
#include "scribe.hpp"
