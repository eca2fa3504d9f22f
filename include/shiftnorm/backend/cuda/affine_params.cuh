// SPDX-License-Identifier: MIT
// The per-channel scale / shift parameters of a CUDA normalization layer, on device.
#pragma once

#include <vector>

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/core/checks.hpp"
#include "shiftnorm/norm/affine_params.hpp"

namespace shiftnorm::backend::cuda {

//! gamma (`scale`), beta (`shift`) and their accumulated gradients as device arrays of C
//! values: the device twin of shiftnorm::affine_params, with the copies between the two.
template <class Stat>
struct device_affine_params {
    device_buffer<Stat> scale, shift;            //!< gamma, beta on device (size C)
    device_buffer<Stat> diff_scale, diff_shift;  //!< accumulated gradients on device (size C)

    //! gamma = 1, beta = 0, zero gradients; waits for the uploads (legacy default stream).
    void init_affine(index_t channels) {
        const auto C = std::size_t(channels);
        scale.assign_sync(std::vector<Stat>(C, Stat(1)));
        shift.assign_sync(std::vector<Stat>(C, Stat(0)));
        diff_scale.resize_discard(C);
        diff_shift.resize_discard(C);
        zero_affine_grad(nullptr);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(nullptr));
    }
    //! Clears the gradients, enqueued on `stream`.
    void zero_affine_grad(cudaStream_t stream) {
        diff_scale.zero(stream);
        diff_shift.zero(stream);
    }
    //! Enqueues the upload of a CPU layer's parameters and gradients on `stream` (the caller
    //! synchronizes); shape_error naming `where` and the array when a size differs.
    void upload_affine(const affine_params<Stat>& cpu, const char* where, cudaStream_t stream) {
        upload_exact(scale, cpu.scale, where, "scale", stream);
        upload_exact(shift, cpu.shift, where, "shift", stream);
        upload_exact(diff_scale, cpu.diff_scale, where, "diff_scale", stream);
        upload_exact(diff_shift, cpu.diff_shift, where, "diff_shift", stream);
    }
    //! Copies the parameters and gradients to a CPU layer (waits for `stream`).
    void download_affine(affine_params<Stat>& cpu, cudaStream_t stream) const {
        cpu.scale = scale.to_vector_sync(stream);
        cpu.shift = shift.to_vector_sync(stream);
        cpu.diff_scale = diff_scale.to_vector_sync(stream);
        cpu.diff_shift = diff_shift.to_vector_sync(stream);
    }

private:
    static void upload_exact(device_buffer<Stat>& d, const std::vector<Stat>& h, const char* where, const char* arg,
                             cudaStream_t stream) {
        if (h.size() != d.size()) shiftnorm::detail::fail<shape_error>(where, arg, d.size(), h.size());
        d.upload(h.data(), h.size(), stream);
    }
};

}  // namespace shiftnorm::backend::cuda
