// SPDX-License-Identifier: MIT
// Umbrella header of the corruption suite (needs libjpeg at link time; libpng for the PNG helpers).
#pragma once

#include "shiftnorm/corrupt/blur.hpp"
#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/corrupt/digital.hpp"
#include "shiftnorm/corrupt/filters.hpp"
#include "shiftnorm/corrupt/frost.hpp"
#include "shiftnorm/corrupt/geometry.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/noise.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"
#include "shiftnorm/corrupt/weather.hpp"
#include "shiftnorm/corrupt/writer.hpp"
