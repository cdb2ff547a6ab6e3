// Catch2's runner, compiled once for both test executables (it is the slowest file to compile).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
