// SPDX-License-Identifier: MIT
// Builds a reference network by name ("resnet20", "resnet50", "vgg16", "densenet-bc-100-12", ...).
#pragma once

#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/models/densenet.hpp"
#include "shiftnorm/models/resnet.hpp"
#include "shiftnorm/models/vgg.hpp"
#include "shiftnorm/models/wide_resnet.hpp"

namespace shiftnorm::models {

//! Construction knobs common to every network of the zoo.
struct model_spec {
    std::string name;            //!< see model_names()
    index_t num_classes = 10;
    index_t in_channels = 3;
    index_t width = 0;           //!< 0: the architecture's default (CIFAR ResNets 16, small-resnet 16)
    nn::norm_config norm{};
};

//! Names make_model understands, with a one-line description each.
inline std::vector<std::pair<std::string, std::string>> model_names() {
    return {{"resnet20|32|44|56|110", "CIFAR ResNet-(6n+2), option A shortcuts, akamaster tensor names (32x32 input)"},
            {"small-resnet<d>", "3-stage CIFAR-layout ResNet of depth d (6n+2, default 8) with projection shortcuts, for 28x28"},
            {"resnet18|34|50", "torchvision ResNet (tensor names as torchvision, 224x224 input)"},
            {"vgg11|13|16|19", "VGG with batch normalization, CIFAR head (features.*, classifier)"},
            {"densenet-bc-<depth>-<k>", "DenseNet-BC for CIFAR (e.g. densenet-bc-100-12)"},
            {"wrn-<depth>-<k>", "Wide ResNet WRN-d-k (e.g. wrn-28-10)"}};
}

namespace detail {
inline bool parse_ints(const std::string& s, const std::string& prefix, std::vector<int>& out) {
    if (s.rfind(prefix, 0) != 0) return false;
    out.clear();
    std::string rest = s.substr(prefix.size());
    if (rest.empty()) return true;
    std::size_t pos = 0;
    while (pos <= rest.size()) {
        std::size_t dash = rest.find('-', pos);
        std::string tok = rest.substr(pos, dash == std::string::npos ? std::string::npos : dash - pos);
        if (tok.empty() || tok.find_first_not_of("0123456789") != std::string::npos || tok.size() > 6) return false;
        out.push_back(std::stoi(tok));
        if (dash == std::string::npos) break;
        pos = dash + 1;
    }
    return true;
}
}  // namespace detail

//! Builds the named network with normalization layer Norm (parameters zero: call
//! reset_parameters(g) or load weights). Throws value_error listing the known names.
template <class Norm>
nn::sequential make_model(const model_spec& s) {
    std::vector<int> v;
    const index_t k = s.num_classes;
    if (detail::parse_ints(s.name, "small-resnet", v) && v.size() <= 1)
        return small_resnet<Norm>(v.empty() ? 8 : v[0], s.width ? s.width : 16, k, s.in_channels, s.norm);
    if (s.name == "resnet18" || s.name == "resnet34" || s.name == "resnet50")
        return torchvision_resnet<Norm>(std::stoi(s.name.substr(6)), k, s.in_channels, s.norm, s.width ? s.width : 64);
    if (detail::parse_ints(s.name, "resnet", v) && v.size() == 1) {
        cifar_resnet_options o;
        o.depth = v[0];
        o.num_classes = k;
        o.in_channels = s.in_channels;
        o.width = s.width ? s.width : 16;
        o.norm = s.norm;
        return cifar_resnet<Norm>(o);
    }
    if (detail::parse_ints(s.name, "vgg", v) && v.size() == 1)
        return vgg_bn<Norm>(v[0], k, s.in_channels, s.norm, s.width ? s.width : 64);
    if (detail::parse_ints(s.name, "densenet-bc-", v) && v.size() == 2)
        return densenet_bc<Norm>(v[0], v[1], k, s.in_channels, s.norm);
    if (detail::parse_ints(s.name, "wrn-", v) && v.size() == 2)
        return wide_resnet<Norm>(v[0], v[1], k, s.in_channels, s.norm);
    std::string known;
    for (const auto& m : model_names()) known += (known.empty() ? "" : ", ") + m.first;
    throw value_error("make_model: argument 'name' expected one of " + known + ", got '" + s.name + "'");
}

}  // namespace shiftnorm::models
