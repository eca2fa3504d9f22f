// SPDX-License-Identifier: MIT
// Example: shiftnorm rectifies the BN statistics of a libtorch model in place (no copies), checked against torch.
//
//   libtorch_rectify            (exit code 0 when shiftnorm's result matches torch's own pass)
//
// A torch::nn model's BN layers are rectified from k = 32 target samples (seed 000): shiftnorm
// reads each BN layer's input through a non-owning activation_view (NCHW or channels_last, as
// the tensor lies), writes the statistics into the layer's own running_mean / running_var
// through external_stats, and normalizes with the layer's own weight / bias (external_affine).
// The reference is torch's procedure: BN layers in train mode with momentum = None after
// reset_running_stats(), one forward pass.
#include <torch/torch.h>

#include <cstdio>

#include "shiftnorm/stats/external.hpp"

namespace {

struct NetImpl : torch::nn::Module {
    torch::nn::Conv2d c1{torch::nn::Conv2dOptions(3, 16, 3).padding(1)};
    torch::nn::BatchNorm2d b1{16};
    torch::nn::Conv2d c2{torch::nn::Conv2dOptions(16, 32, 3).padding(1).stride(2)};
    torch::nn::BatchNorm2d b2{32};
    torch::nn::Conv2d c3{torch::nn::Conv2dOptions(32, 32, 3).padding(1)};
    torch::nn::BatchNorm2d b3{32};
    torch::nn::Linear fc{32, 10};

    NetImpl() {
        register_module("c1", c1), register_module("b1", b1), register_module("c2", c2);
        register_module("b2", b2), register_module("c3", c3), register_module("b3", b3);
        register_module("fc", fc);
    }
    std::vector<torch::nn::BatchNorm2d> bns() { return {b1, b2, b3}; }

    //! The network; `bn` applies a BN layer (torch's own by default, shiftnorm's rectification).
    template <class BN>
    torch::Tensor forward_with(torch::Tensor x, BN&& bn) {
        x = torch::relu(bn(b1, c1(x)));
        x = torch::relu(bn(b2, c2(x)));
        x = torch::relu(bn(b3, c3(x)));
        return fc(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
    }
    torch::Tensor forward(torch::Tensor x) {
        return forward_with(x, [](torch::nn::BatchNorm2d& b, const torch::Tensor& t) { return b(t); });
    }
};
TORCH_MODULE(Net);

//! shiftnorm's rectification step for one torch BN layer: statistics into the layer's own
//! buffers, output normalized with the pass statistics and the layer's own affine parameters.
int nhwc_inputs = 0;  //!< BN inputs seen in channels_last (the example checks the NHWC path ran)

torch::Tensor rectify_bn(torch::nn::BatchNorm2d& bn, const torch::Tensor& x) {
    const bool nhwc = !x.is_contiguous() && x.is_contiguous(torch::MemoryFormat::ChannelsLast);
    nhwc_inputs += nhwc;
    if (!x.is_contiguous() && !nhwc) throw std::runtime_error("rectify_bn: x is neither NCHW nor channels_last");
    const shiftnorm::activation_view in{x.data_ptr<float>(),
                                        {x.size(0), x.size(1), x.size(2), x.size(3)},
                                        nhwc ? shiftnorm::memory_layout::nhwc : shiftnorm::memory_layout::nchw};
    const shiftnorm::external_stats running{bn->running_mean.data_ptr<float>(), bn->running_var.data_ptr<float>(),
                                            x.size(1)};
    const auto r = shiftnorm::rectify_external(in, running, shiftnorm::rectify_options{});  // what = both, prior 0
    torch::Tensor y = torch::empty_like(x);  // same memory format as x
    shiftnorm::normalize_external(in, y.data_ptr<float>(), r.pass,
                                  {bn->weight.data_ptr<float>(), bn->bias.data_ptr<float>()}, bn->options.eps());
    return y;
}

//! A deep copy of a network: its parameters and buffers copied into a fresh one.
Net copy_of(const Net& src) {
    Net n;
    torch::NoGradGuard ng;
    auto dst_p = n->named_parameters(), dst_b = n->named_buffers();
    for (const auto& kv : src->named_parameters()) dst_p[kv.key()].copy_(kv.value());
    for (const auto& kv : src->named_buffers()) dst_b[kv.key()].copy_(kv.value());
    return n;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

int main() try {
    torch::manual_seed(0);
    Net src;
    for (auto& b : src->bns()) {  // source statistics unlike the target's
        b->running_mean.uniform_(-0.5, 0.5);
        b->running_var.uniform_(0.5, 2.0);
        b->weight.data().uniform_(0.5, 1.5);
        b->bias.data().uniform_(-0.2, 0.2);
    }
    src->eval();
    const torch::Tensor target = torch::randn({32, 3, 16, 16}) * 1.5 + 0.7;  // k = 32 shifted samples
    const torch::Tensor test = torch::randn({8, 3, 16, 16}) * 1.5 + 0.7;

    // torch's own procedure on a copy
    Net ref = copy_of(src);
    ref->eval();
    for (auto& b : ref->bns()) {
        b->options.momentum(c10::nullopt);
        b->reset_running_stats();
        b->train();
    }
    {
        torch::NoGradGuard ng;
        ref->forward(target);
    }
    ref->eval();

    int failures = 0;
    for (const bool channels_last : {false, true}) {
        Net net = copy_of(src);
        net->eval();
        if (channels_last)  // conv weights in channels_last too, as torch's model.to(memory_format=...) does
            for (auto& p : net->parameters())
                if (p.dim() == 4) p.set_data(p.data().contiguous(torch::MemoryFormat::ChannelsLast));
        nhwc_inputs = 0;
        std::vector<const void*> ptrs;
        for (auto& b : net->bns()) ptrs.push_back(b->running_mean.data_ptr()), ptrs.push_back(b->running_var.data_ptr());
        torch::NoGradGuard ng;
        net->forward_with(channels_last ? target.contiguous(torch::MemoryFormat::ChannelsLast) : target, rectify_bn);
        double worst_stats = 0;
        bool same_buffers = true;
        for (std::size_t i = 0; i < 3; ++i) {
            auto a = net->bns()[i], b = ref->bns()[i];
            worst_stats = std::max({worst_stats, max_abs_diff(a->running_mean, b->running_mean),
                                    max_abs_diff(a->running_var, b->running_var)});
            same_buffers = same_buffers && a->running_mean.data_ptr() == ptrs[2 * i] &&
                           a->running_var.data_ptr() == ptrs[2 * i + 1];
        }
        const double worst_out = max_abs_diff(net->forward(test), ref->forward(test));
        const bool ok = worst_stats < 1e-5 && worst_out < 1e-4 && same_buffers && nhwc_inputs == (channels_last ? 3 : 0);
        failures += !ok;
        std::printf("%-14s max |stats - torch| = %.2e, max |logits - torch| = %.2e, buffers in place: %s, "
                    "NHWC BN inputs: %d/3  %s\n",
                    channels_last ? "channels_last" : "NCHW", worst_stats, worst_out, same_buffers ? "yes" : "NO",
                    nhwc_inputs, ok ? "OK" : "MISMATCH");
    }
    return failures ? 1 : 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "libtorch_rectify: %s\n", e.what());
    return 1;
}
