// SPDX-License-Identifier: MIT
// CUDA normalization benchmarks (cudaEvent timing) against a copy kernel measured in the same binary.
//
// Every benchmark reports bytes_per_second from the bytes its kernels actually move (reads +
// writes), and the counter `copy_fraction` = its bandwidth over the copy kernel's bandwidth on
// the same tensor, measured first in the same process. Shapes: CIFAR ResNet (N = 128) and the
// oneDNN benchdnn ResNet-50 bnorm set (mb 50).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <random>
#include <vector>

#include "shiftnorm/cuda.cuh"

namespace {

namespace sn = shiftnorm;
namespace cu = shiftnorm::backend::cuda;

const std::vector<sn::shape4>& shapes() {
    static const std::vector<sn::shape4> s = {
        {128, 16, 32, 32}, {128, 32, 16, 16}, {128, 64, 8, 8},                                          // CIFAR ResNet
        {50, 64, 112, 112}, {50, 256, 56, 56}, {50, 64, 56, 56}, {50, 512, 28, 28}, {50, 128, 28, 28},  // ResNet-50
        {50, 1024, 14, 14}, {50, 256, 14, 14}, {50, 2048, 7, 7}, {50, 512, 7, 7}};
    return s;
}

//! Copy bandwidth (bytes/s) per shape index, measured by BM_Copy_CUDA.
std::map<int, double>& copy_bandwidth() {
    static std::map<int, double> m;
    return m;
}

__global__ void copy_kernel(const float4* __restrict__ src, float4* __restrict__ dst, std::int64_t n) {
    for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::int64_t(gridDim.x) * blockDim.x)
        dst[i] = src[i];
}

struct fixture {
    sn::shape4 s;
    cu::device_tensor<float> x, y, dy, dx;
    explicit fixture(sn::shape4 shape) : s(shape), x(shape), y(shape), dy(shape), dx(shape) {
        sn::tensor<float> h(shape);
        std::mt19937 g(1);
        std::normal_distribution<float> d(0.5f, 2.0f);
        for (auto& v : h) v = d(g);
        x.copy_from_host(h.view());
        for (auto& v : h) v = d(g);
        dy.copy_from_host(h.view());
        SHIFTNORM_CUDA_CHECK(cudaDeviceSynchronize());
    }
    double tensor_bytes() const { return double(s.numel()) * sizeof(float); }
};

//! One fixture per shape for the whole run (filling the large tensors on the host dominates
//! the run time otherwise); benchmarks only read x and dy and overwrite y and dx.
fixture& cached_fixture(int k) {
    static std::map<int, std::unique_ptr<fixture>> cache;
    auto& f = cache[k];
    if (!f) f = std::make_unique<fixture>(shapes()[std::size_t(k)]);
    return *f;
}

//! Runs `op` once per iteration between two cudaEvents, reports the GPU time and bytes, and
//! returns the achieved bandwidth in bytes/s. copy_fraction is set when the copy kernel was
//! measured on this shape (BM_Copy_CUDA is registered first).
template <class Op>
double timed_loop(benchmark::State& state, double bytes_per_iteration, int shape_index, Op&& op) {
    cudaEvent_t start, stop;
    SHIFTNORM_CUDA_CHECK(cudaEventCreate(&start));
    SHIFTNORM_CUDA_CHECK(cudaEventCreate(&stop));
    op();  // warm-up: workspace allocation, first-launch costs
    SHIFTNORM_CUDA_CHECK(cudaDeviceSynchronize());
    double total = 0;
    for (auto _ : state) {
        SHIFTNORM_CUDA_CHECK(cudaEventRecord(start, nullptr));
        op();
        SHIFTNORM_CUDA_CHECK(cudaEventRecord(stop, nullptr));
        SHIFTNORM_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        SHIFTNORM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        state.SetIterationTime(double(ms) * 1e-3);
        total += double(ms) * 1e-3;
    }
    SHIFTNORM_CUDA_CHECK(cudaEventDestroy(start));
    SHIFTNORM_CUDA_CHECK(cudaEventDestroy(stop));
    state.SetBytesProcessed(std::int64_t(double(state.iterations()) * bytes_per_iteration));
    const sn::shape4& s = shapes()[std::size_t(shape_index)];
    state.SetLabel(std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w));
    const double bw = total > 0 ? bytes_per_iteration * double(state.iterations()) / total : 0.0;
    const auto it = copy_bandwidth().find(shape_index);
    if (it != copy_bandwidth().end() && it->second > 0) state.counters["copy_fraction"] = bw / it->second;
    return bw;
}

//! The copy kernel: the bandwidth reference (reads T, writes T).
void BM_Copy_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    const std::int64_t n4 = f.s.numel() / 4;  // every benchmark shape has numel % 4 == 0
    const unsigned blocks = unsigned(cu::detail::sm_count() * 8);
    copy_bandwidth()[k] = timed_loop(state, 2 * f.tensor_bytes(), k, [&] {
        copy_kernel<<<blocks, 256>>>(reinterpret_cast<const float4*>(f.x.data()), reinterpret_cast<float4*>(f.y.data()),
                                     n4);
    });
}

//! Per-channel moments alone: one read of T.
void BM_Moments_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::device_buffer<cu::channel_partial<double>> out(std::size_t(f.s.c));
    cu::reduce_workspace ws;
    const sn::tensor_view<const float> src = f.x.view();
    timed_loop(state, f.tensor_bytes(), k, [&] { cu::channel_moments<false, float>(src, out.data(), ws); });
}

//! Per-channel moments with the block schedule forced (the automatic choice takes the warp
//! schedule for many small channels): the same-binary A/B of the two schedules.
void BM_MomentsBlock_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::device_buffer<cu::channel_partial<double>> out(std::size_t(f.s.c));
    cu::reduce_workspace ws;
    using epi = cu::detail::store_partial_epilogue<double>;
    const cu::detail::moments_policy<float, double, false, epi> pol{f.x.data(), f.s.spatial(),
                                                                    epi{out.data(), f.s.c, f.s.spatial()}};
    timed_loop(state, f.tensor_bytes(), k, [&] {
        cu::detail::launch_channel_reduce<float>(f.x.data(), nullptr, f.s, pol, ws, nullptr, cu::detail::reduce_path::block);
    });
}

//! Moments with min/max and first argmin/argmax (RobustNorm statistics): one read of T.
void BM_RangeMoments_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::device_buffer<cu::channel_partial<double>> out(std::size_t(f.s.c));
    cu::reduce_workspace ws;
    const sn::tensor_view<const float> src = f.x.view();
    timed_loop(state, f.tensor_bytes(), k, [&] { cu::channel_moments<true, float>(src, out.data(), ws); });
}

//! BN training forward: statistics (read T) + normalize (read T, write T) + the host running
//! update (one C-record copy and a stream synchronization). 3 T moved; the minimum is 2 T.
void BM_BatchNormTraining_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::batch_norm<sn::population> bn(f.s.c);
    timed_loop(state, 3 * f.tensor_bytes(), k, [&] { bn.forward_training(f.x.view(), f.y.view()); });
}

//! BN inference forward with population statistics: coefficients + normalize (2 T).
void BM_BatchNormInference_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::batch_norm<sn::population> bn(f.s.c);
    timed_loop(state, 2 * f.tensor_bytes(), k, [&] { bn.forward_inference(f.x.view(), f.y.view()); });
}

//! BN training backward: sums (read 2 T) + apply (read 2 T, write T): 5 T; the minimum is 3 T.
void BM_BatchNormBackward_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::batch_norm<sn::population> bn(f.s.c);
    bn.forward_training(f.x.view(), f.y.view());
    timed_loop(state, 5 * f.tensor_bytes(), k, [&] { bn.backward(f.x.view(), f.dy.view(), f.dx.view()); });
}

//! RobustNorm training forward (3 T) and backward (5 T).
void BM_RobustNormTraining_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::robust_norm<> rn(f.s.c);
    timed_loop(state, 3 * f.tensor_bytes(), k, [&] { rn.forward_training(f.x.view(), f.y.view()); });
}
void BM_RobustNormBackward_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::robust_norm<> rn(f.s.c);
    rn.forward_training(f.x.view(), f.y.view());
    timed_loop(state, 5 * f.tensor_bytes(), k, [&] { rn.backward(f.x.view(), f.dy.view(), f.dx.view()); });
}

//! Group count of the GroupNorm rows: 32 (the paper default) or C when C < 32.
sn::index_t gn_groups(const sn::shape4& s) { return s.c < 32 ? s.c : 32; }

//! GroupNorm (G = 32) forward: statistics (read T) + normalize (read T, write T): 3 T.
void BM_GroupNormForward_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::group_norm<> gn(f.s.c, gn_groups(f.s));
    timed_loop(state, 3 * f.tensor_bytes(), k, [&] { gn.forward(f.x.view(), f.y.view()); });
}
//! GroupNorm (G = 32) backward: sums (read 2 T) + finalize + apply (read 2 T, write T): 5 T.
void BM_GroupNormBackward_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::group_norm<> gn(f.s.c, gn_groups(f.s));
    gn.forward(f.x.view(), f.y.view());
    timed_loop(state, 5 * f.tensor_bytes(), k, [&] { gn.backward(f.x.view(), f.dy.view(), f.dx.view()); });
}
//! Instance norm (G = C) forward: 3 T.
void BM_InstanceNormForward_CUDA(benchmark::State& state) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    cu::group_norm<> in(f.s.c, f.s.c);
    timed_loop(state, 3 * f.tensor_bytes(), k, [&] { in.forward(f.x.view(), f.y.view()); });
}

//! Per-plane moments over the N*C planes (instance norm's statistics pass) with a forced
//! schedule: the same-binary A/B of the warp and thread schedules on small planes.
void plane_moments(benchmark::State& state, cu::detail::reduce_path path) {
    const int k = int(state.range(0));
    fixture& f = cached_fixture(k);
    const sn::shape4 planes{1, f.s.n * f.s.c, 1, f.s.spatial()};
    cu::device_buffer<cu::channel_partial<double>> out(std::size_t(planes.c));
    cu::reduce_workspace ws;
    using epi = cu::detail::store_partial_epilogue<double>;
    const cu::detail::moments_policy<float, double, false, epi> pol{f.x.data(), planes.spatial(),
                                                                    epi{out.data(), planes.c, planes.spatial()}};
    timed_loop(state, f.tensor_bytes(), k,
               [&] { cu::detail::launch_channel_reduce<float>(f.x.data(), nullptr, planes, pol, ws, nullptr, path); });
}
void BM_PlaneMomentsWarp_CUDA(benchmark::State& state) { plane_moments(state, cu::detail::reduce_path::warp); }
void BM_PlaneMomentsThread_CUDA(benchmark::State& state) { plane_moments(state, cu::detail::reduce_path::thread); }
void BM_PlaneMomentsLanes2_CUDA(benchmark::State& state) { plane_moments(state, cu::detail::reduce_path::lanes2); }
void BM_PlaneMomentsLanes4_CUDA(benchmark::State& state) { plane_moments(state, cu::detail::reduce_path::lanes4); }
void BM_PlaneMomentsLanes8_CUDA(benchmark::State& state) { plane_moments(state, cu::detail::reduce_path::lanes8); }
void BM_PlaneMomentsLanes16_CUDA(benchmark::State& state) { plane_moments(state, cu::detail::reduce_path::lanes16); }
void BM_PlaneMomentsAuto_CUDA(benchmark::State& state) { plane_moments(state, cu::detail::reduce_path::automatic); }
//! The shapes with planes of at most 16x16 (CIFAR 16x16 and 8x8, ResNet-50 14x14 and 7x7).
void small_planes(benchmark::internal::Benchmark* b) {
    for (int k : {1, 2, 8, 9, 10, 11}) b->Arg(k);
    b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void all_shapes(benchmark::internal::Benchmark* b) {
    for (int k = 0; k < int(shapes().size()); ++k) b->Arg(k);
    b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

// Registered in this order so the copy bandwidth of every shape is known before the others run.
BENCHMARK(BM_Copy_CUDA)->Apply(all_shapes);
BENCHMARK(BM_Moments_CUDA)->Apply(all_shapes);
BENCHMARK(BM_MomentsBlock_CUDA)->Apply(all_shapes);
BENCHMARK(BM_RangeMoments_CUDA)->Apply(all_shapes);
BENCHMARK(BM_BatchNormTraining_CUDA)->Apply(all_shapes);
BENCHMARK(BM_BatchNormInference_CUDA)->Apply(all_shapes);
BENCHMARK(BM_BatchNormBackward_CUDA)->Apply(all_shapes);
BENCHMARK(BM_RobustNormTraining_CUDA)->Apply(all_shapes);
BENCHMARK(BM_RobustNormBackward_CUDA)->Apply(all_shapes);
BENCHMARK(BM_GroupNormForward_CUDA)->Apply(all_shapes);
BENCHMARK(BM_GroupNormBackward_CUDA)->Apply(all_shapes);
BENCHMARK(BM_InstanceNormForward_CUDA)->Apply(all_shapes);
BENCHMARK(BM_PlaneMomentsWarp_CUDA)->Apply(small_planes);
BENCHMARK(BM_PlaneMomentsThread_CUDA)->Apply(small_planes);
BENCHMARK(BM_PlaneMomentsLanes2_CUDA)->Apply(small_planes);
BENCHMARK(BM_PlaneMomentsLanes4_CUDA)->Apply(small_planes);
BENCHMARK(BM_PlaneMomentsLanes8_CUDA)->Apply(small_planes);
BENCHMARK(BM_PlaneMomentsLanes16_CUDA)->Apply(small_planes);
BENCHMARK(BM_PlaneMomentsAuto_CUDA)->Apply(small_planes);

int main(int argc, char** argv) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("no CUDA device present: CUDA benchmarks skipped\n");
        return 0;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
