// SPDX-License-Identifier: MIT
// CPU umbrella header of shiftnorm: everything that needs no CUDA compiler.
#pragma once

#include "shiftnorm/config.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/policy.hpp"
#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/core/moments.hpp"
#include "shiftnorm/stats/channel_stats.hpp"
#include "shiftnorm/stats/sources.hpp"
#include "shiftnorm/stats/rectified.hpp"
#include "shiftnorm/stats/table.hpp"
#include "shiftnorm/norm/adversarial.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/dual_batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/norm/identity_norm.hpp"
#include "shiftnorm/norm/robust_norm.hpp"
