// What the must-not-compile programs include, precompiled once for the suite
// (tests/meson.build): the programs then take a second to compile instead of four.
#include <scribe/scribe.hpp>
