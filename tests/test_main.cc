// The one test binary: unit tests (beside the code they test) and black-box
// scenario tests (tests/scenario/) that run the real daemon against the
// simulated kernel (tests/sim/).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
