// SPDX-License-Identifier: MIT
// Tiny CUDA consumer program: one BN training step on the GPU against the CPU layer (used by the
// consumer_install_cuda test). Without a GPU it only proves that the package builds and links.
#include <shiftnorm/cuda.cuh>

#include <cmath>
#include <cstdio>

int main() {
    namespace sn = shiftnorm;
    namespace cu = shiftnorm::backend::cuda;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("consumer_cuda built and linked; no GPU present, not run\n");
        return 0;
    }
    sn::tensor<float> x(sn::shape4{8, 3, 5, 5}), y(x.shape());
    for (sn::index_t i = 0; i < x.numel(); ++i) x[i] = float((i * 7) % 11) - 3.f;
    sn::batch_norm<sn::population> cpu(3);
    cu::batch_norm<sn::population> gpu(3);
    cpu.forward_training(x, y.view());
    auto xd = cu::device_tensor<float>::from_host(x);
    cu::device_tensor<float> yd(x.shape());
    gpu.forward_training(sn::tensor_view<const float>(xd.view()), yd.view());
    const auto yg = yd.to_host();
    gpu.sync_statistics();
    double worst = 0;
    for (sn::index_t i = 0; i < y.numel(); ++i) worst = std::fmax(worst, std::abs(double(yg[i]) - double(y[i])));
    const double run = std::abs(double(gpu.source.running.stats.mean[0]) - double(cpu.source.running.stats.mean[0]));
    std::printf("consumer_cuda ok: worst output difference %.2e, running mean difference %.2e\n", worst, run);
    return worst < 1e-5 && run < 1e-6 ? 0 : 1;
}
