// SPDX-License-Identifier: MIT
// Umbrella of the training engine (component shiftnorm::engine): layers, reference networks,
// training loop, dependency-free loaders.
#pragma once

// Layers (Eigen only).
#include "shiftnorm/nn/module.hpp"
#include "shiftnorm/nn/init.hpp"
#include "shiftnorm/nn/gemm.hpp"
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
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/nn/infer.hpp"

// Reference networks, generic over their normalization layer.
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/models/resnet.hpp"
#include "shiftnorm/models/vgg.hpp"
#include "shiftnorm/models/densenet.hpp"
#include "shiftnorm/models/wide_resnet.hpp"
#include "shiftnorm/models/zoo.hpp"

// Training: optimizer, schedules, checkpoints, loop; loaders without external libraries.
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/data/safetensors.hpp"
#include "shiftnorm/data/cifar.hpp"
#include "shiftnorm/train/sgd.hpp"
#include "shiftnorm/train/schedule.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "shiftnorm/train/trainer.hpp"

// Not included here because they need external libraries at link time: data/idx.hpp (zlib) and
// data/image_folder.hpp (libjpeg, libpng via data/image_io.hpp). Include them explicitly.
