// SPDX-License-Identifier: MIT
// Former name of the engine umbrella, kept so that existing code still builds: include
// "shiftnorm/engine.hpp" instead.
#pragma once

#include "shiftnorm/engine.hpp"
