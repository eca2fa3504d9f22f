// SPDX-License-Identifier: MIT
// Umbrella of the training engine: layers, reference networks, data loaders, training loop.
#pragma once

#include "shiftnorm/nn/module.hpp"
#include "shiftnorm/nn/init.hpp"
#include "shiftnorm/nn/sequential.hpp"
#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/linear.hpp"
#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/pooling.hpp"
#include "shiftnorm/nn/dropout.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/residual.hpp"
#include "shiftnorm/nn/concat.hpp"
#include "shiftnorm/nn/loss.hpp"
