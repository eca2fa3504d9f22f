// SPDX-License-Identifier: MIT
// Registry of the 19 corruptions by name, seeded single-image and parallel batch entry points.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "shiftnorm/core/omp.hpp"
#include "shiftnorm/corrupt/blur.hpp"
#include "shiftnorm/corrupt/digital.hpp"
#include "shiftnorm/corrupt/frost.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/noise.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"
#include "shiftnorm/corrupt/weather.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

//! The 15 benchmark corruptions in ImageNet-C's order, then the 4 held-out ones.
enum class corruption : int {
    gaussian_noise,
    shot_noise,
    impulse_noise,
    defocus_blur,
    glass_blur,
    motion_blur,
    zoom_blur,
    snow,
    frost,
    fog,
    brightness,
    contrast,
    elastic_transform,
    pixelate,
    jpeg_compression,
    speckle_noise,
    gaussian_blur,
    spatter,
    saturate,
};

inline constexpr int corruption_count = 19;

//! Names as used in CIFAR-10-C file names (`<name>.npy`) and ImageNet-C folders.
inline constexpr std::array<const char*, corruption_count> corruption_names = {
    "gaussian_noise", "shot_noise",        "impulse_noise", "defocus_blur",     "glass_blur",
    "motion_blur",    "zoom_blur",         "snow",          "frost",            "fog",
    "brightness",     "contrast",          "elastic_transform", "pixelate",     "jpeg_compression",
    "speckle_noise",  "gaussian_blur",     "spatter",       "saturate"};

inline const char* name_of(corruption c) { return corruption_names[static_cast<int>(c)]; }

//! All 19 corruptions in order.
inline std::vector<corruption> all_corruptions() {
    std::vector<corruption> v;
    for (int i = 0; i < corruption_count; ++i) v.push_back(static_cast<corruption>(i));
    return v;
}

//! Parses a corruption name; throws value_error listing the valid names otherwise.
inline corruption parse_corruption(const std::string& name) {
    for (int i = 0; i < corruption_count; ++i)
        if (name == corruption_names[i]) return static_cast<corruption>(i);
    std::string all;
    for (const char* n : corruption_names) all += std::string(all.empty() ? "" : ", ") + n;
    detail::fail<value_error>("parse_corruption", "name", "one of " + all, "'" + name + "'");
}

//! True for the 8 corruptions that use no random numbers (their output ignores the seed).
inline bool is_deterministic(corruption c) {
    switch (c) {
        case corruption::defocus_blur:
        case corruption::zoom_blur:
        case corruption::brightness:
        case corruption::contrast:
        case corruption::pixelate:
        case corruption::jpeg_compression:
        case corruption::gaussian_blur:
        case corruption::saturate: return true;
        default: return false;
    }
}

//! Options shared by every corruption call.
struct corrupt_options {
    param_table table = param_table::cifar;
    //! Frost texture photographs; null or empty: procedural frost.
    const frost_textures* frost = nullptr;
    //! The procedural frost's parameters (used when `frost` is null or empty).
    procedural_frost_params frost_procedural = procedural_frost_params::calibrated();
    //! The noise corruptions' random stream: counter (default, vectorized) or v1 (shiftnorm 0.1's
    //! bytes); the other corruptions ignore it.
    noise_stream noise = noise_stream::counter;
    //! The arithmetic of gaussian, defocus and motion blur and of snow's motion blur: fast
    //! (default: float32 with a float64 pass for the values it cannot decide) or reference
    //! (float64 throughout); the same bytes (fast_filters.hpp).
    filter_arithmetic filters = filter_arithmetic::fast;
};

//! Corrupts one image with an explicit generator. src and dst must have the same shape
//! (1 or 3 channels, non-empty); they may alias only for the point-wise corruptions, so pass
//! distinct buffers. Throws value_error for severity outside [1, 5], shape_error for bad images.
SHIFTNORM_FP_EXACT inline void apply(corruption c, int severity, const_image_view src, image_view dst, generator& gen,
                  const corrupt_options& opt = {}) {
    const param_table t = opt.table;
    switch (c) {
        case corruption::gaussian_noise: return gaussian_noise(src, dst, severity, gen, t, opt.noise);
        case corruption::shot_noise: return shot_noise(src, dst, severity, gen, t, opt.noise);
        case corruption::impulse_noise: return impulse_noise(src, dst, severity, gen, t, opt.noise);
        case corruption::defocus_blur: return defocus_blur(src, dst, severity, t, opt.filters);
        case corruption::glass_blur: return glass_blur(src, dst, severity, gen, t);
        case corruption::motion_blur: return motion_blur(src, dst, severity, gen, t, opt.filters);
        case corruption::zoom_blur: return zoom_blur(src, dst, severity, t);
        case corruption::snow: return snow(src, dst, severity, gen, t, opt.filters);
        case corruption::frost: return frost(src, dst, severity, gen, t, opt.frost, opt.frost_procedural);
        case corruption::fog: return fog(src, dst, severity, gen, t);
        case corruption::brightness: return brightness(src, dst, severity, t);
        case corruption::contrast: return contrast(src, dst, severity, t);
        case corruption::elastic_transform: return elastic_transform(src, dst, severity, gen, t);
        case corruption::pixelate: return pixelate(src, dst, severity, t);
        case corruption::jpeg_compression: return jpeg_compression(src, dst, severity, t);
        case corruption::speckle_noise: return speckle_noise(src, dst, severity, gen, t, opt.noise);
        case corruption::gaussian_blur: return gaussian_blur(src, dst, severity, t, opt.filters);
        case corruption::spatter: return spatter(src, dst, severity, gen, t);
        case corruption::saturate: return saturate(src, dst, severity, t);
    }
    detail::fail<value_error>("apply", "corruption", "a value in [0, 19)", static_cast<int>(c));
}

//! The seed of image `index` under (seed, corruption, severity): a splitmix64 mix, so image i's
//! random stream is the same whatever the batch split or thread count.
inline std::uint64_t image_seed(std::uint64_t seed, corruption c, int severity, std::uint64_t index) {
    return mix_seed(seed, static_cast<std::uint64_t>(c) + 1, static_cast<std::uint64_t>(severity), index);
}

//! Corrupts one image, seeded: the result is image_seed(seed, c, severity, index)'s stream.
inline image corrupt(corruption c, int severity, const_image_view src, std::uint64_t seed,
                     const corrupt_options& opt = {}, std::uint64_t index = 0) {
    image out(src.height > 0 ? src.height : 0, src.width > 0 ? src.width : 0, src.channels > 0 ? src.channels : 0);
    generator gen(image_seed(seed, c, severity, index));
    apply(c, severity, src, out.view(), gen, opt);
    return out;
}

//! corrupt() by name: `corrupt("fog", 3, img, 42, {param_table::cifar})`. Throws value_error for
//! an unknown name.
inline image corrupt(const std::string& name, int severity, const_image_view src, std::uint64_t seed,
                     const corrupt_options& opt = {}, std::uint64_t index = 0) {
    return corrupt(parse_corruption(name), severity, src, seed, opt, index);
}

//! Number of worker threads to use for `requested` (0 = hardware concurrency) and `n` items.
inline int resolve_threads(int requested, std::size_t n) {
    // hardware_concurrency reads /sys on glibc (~7 us): once per process, not once per call
    static const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    int t = requested > 0 ? requested : cores;
    if (static_cast<std::size_t>(t) > n) t = static_cast<int>(std::max<std::size_t>(n, 1));
    return t;
}

namespace detail {
//! Starts share t of a batch on a new thread (the default of run_shares).
struct thread_starter {
    template <class Work>
    std::thread operator()(Work& work, int t) const {
        return std::thread(std::ref(work), t);
    }
};

//! Runs work(t) for every share t in [0, nt): share 0 on the calling thread, the others on
//! threads from start(work, t); the shares whose thread could not be started (start threw
//! std::system_error, e.g. a thread limit) run on the calling thread after share 0, so every
//! share runs exactly once either way. Joins every started thread before returning. `work`
//! must not throw (corrupt_batch's catches and keeps its exceptions).
template <class Work, class Start = thread_starter>
void run_shares(int nt, Work& work, Start start = {}) {
    std::vector<std::thread> pool;
    int started = 1;
    try {
        for (; started < nt; ++started) pool.push_back(start(work, started));
    } catch (const std::system_error&) {
    }
    work(0);
    for (int t = started; t < nt; ++t) work(t);
    for (auto& th : pool) th.join();
}

#if defined(_OPENMP)
//! one(i) for every image i < n on OpenMP's thread team: chunks of images taken in turn by
//! whichever member is free (about 16 per member, so the last ones even out the members' speeds;
//! the bytes of image i do not depend on who computes it). A member's first exception is kept in
//! errors[member] and ends its share of the work; the others finish theirs.
//! Why not threads started per call (run_shares): such a thread begins on the caller's CPU, and
//! on the 2-vCPU VM of 2026-12-05 it often stayed there for the whole batch (35-47% of image pairs
//! ran on one CPU; 1.27 CPUs busy in 6 of 8 runs of a CIFAR batch of gaussian blur at 2 threads,
//! 6.4-7.5 us per image), while the team's threads stay where they are between calls (1.76-1.91
//! CPUs busy, 4.3-5.2 us per image).
template <class One>
void run_images_team(int nt, std::size_t n, One& one, std::vector<std::exception_ptr>& errors) {
    const std::size_t chunk = std::max<std::size_t>(1, n / (static_cast<std::size_t>(nt) * 16));
    std::atomic<std::size_t> next{0};
#pragma omp parallel num_threads(nt)
    {
        const int me = omp_get_thread_num();
        try {
            for (std::size_t b; (b = next.fetch_add(chunk, std::memory_order_relaxed)) < n;)
                for (std::size_t i = b, e = std::min(n, b + chunk); i < e; ++i) one(i);
        } catch (...) {
            errors[static_cast<std::size_t>(me)] = std::current_exception();
        }
    }
}

//! Whether corrupt_batch's shares may run on OpenMP's team: not in a forked child
//! (shiftnorm::detail::forked_child, core/omp.hpp: GNU libgomp's team does not survive fork),
//! not inside the caller's own parallel region (a nested team would have one thread).
inline bool team_usable() {
#if defined(__unix__)
    if (::shiftnorm::detail::forked_child.load(std::memory_order_relaxed)) return false;
#endif
    return !omp_in_parallel();
}
#endif

//! corrupt_batch with the threads started by `start` (tests: a starter that fails).
template <class Start>
void corrupt_batch_with(corruption c, int severity, const_batch_view src, batch_view dst, std::uint64_t seed,
                        const corrupt_options& opt, int threads, std::uint64_t first_index, Start start) {
    sev_index(severity, name_of(c));
    if (src.count != dst.count || src.height != dst.height || src.width != dst.width || src.channels != dst.channels)
        fail<shape_error>("corrupt_batch", "dst", concat(src.count, "x", src.height, "x", src.width, "x", src.channels),
                          concat(dst.count, "x", dst.height, "x", dst.width, "x", dst.channels));
    if (src.count == 0) return;
    const int nt = resolve_threads(threads, src.count);
    std::vector<std::exception_ptr> errors(nt);
    auto one = [&](std::size_t i) {
        generator gen(image_seed(seed, c, severity, first_index + i));
        apply(c, severity, src[i], dst[i], gen, opt);
    };
    auto work = [&](int t) {
        try {
            for (std::size_t i = t; i < src.count; i += nt) one(i);
        } catch (...) {
            errors[t] = std::current_exception();
        }
    };
    // share t is images t, t + nt, ...: the same bytes whichever thread runs it. Before the
    // fallback, a std::system_error from a thread start ended the process through the vector's
    // joinable threads. Speed unchanged (bench_corrupt BM_CorruptBatch_CPU at 2 threads).
#if defined(_OPENMP)
    if (std::is_same_v<Start, thread_starter> && nt > 1 && team_usable())
        run_images_team(nt, src.count, one, errors);
    else
        run_shares(nt, work, start);
#else
    run_shares(nt, work, start);
#endif
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}
}  // namespace detail

//! Corrupts a batch in memory: image i uses image_seed(seed, c, severity, first_index + i), so
//! the output is bit-identical for any `threads` (0 = all cores) and any way the data set is cut
//! into batches (pass the global index of the first image as first_index). Shapes of src and
//! dst must match. Exceptions from workers are rethrown on the calling thread. Compiled with
//! OpenMP, the images run on OpenMP's thread team in chunks (detail::run_images_team; not in the
//! child of a fork, nor inside the caller's parallel region); otherwise share 0 runs on the calling thread
//! and the others on threads started for the call, a share whose thread cannot be started on
//! the calling thread too.
inline void corrupt_batch(corruption c, int severity, const_batch_view src, batch_view dst, std::uint64_t seed,
                          const corrupt_options& opt = {}, int threads = 0, std::uint64_t first_index = 0) {
    detail::corrupt_batch_with(c, severity, src, dst, seed, opt, threads, first_index, detail::thread_starter{});
}

}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
