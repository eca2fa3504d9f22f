// SPDX-License-Identifier: MIT
// The corruption code's names for the project's random family (core/random.hpp).
#pragma once

#include "shiftnorm/core/random.hpp"

namespace shiftnorm::corrupt {
using generator = shiftnorm::random_engine;
using shiftnorm::mix_seed;
using shiftnorm::splitmix64;
}  // namespace shiftnorm::corrupt
