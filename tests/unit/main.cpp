// The Catch2 (v2, Debian's) runner for the unit tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
