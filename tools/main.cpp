// The `scribe` program (tools/scribe.cpp has its commands; the Python package
// runs the same ones).
#include "cli.hpp"

int main(int argc, char** argv) { return scribe::cli::main(argc, argv); }
