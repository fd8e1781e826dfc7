#pragma once
// The CUDA side of fused_kernels.h, on raw device pointers so that this header and the .cu file
// need nothing of LibTorch. Each function launches one kernel on `stream` (a cudaStream_t: the
// caller's current LibTorch stream) and throws std::runtime_error if the launch fails. Scalars
// (max_abs, max_share) are 0-dim device tensors' pointers, read by the kernel.

#include <cstdint>

namespace lowbit::dorefa::fused::cuda {

void activation_forward(const float* x, float* y, int64_t n, float levels, void* stream);
void activation_backward(const float* x, const float* grad, float* out, int64_t n, void* stream);
/// bfloat16 activations as raw 16-bit words (see fused_kernels.h for the rounding points).
void activation_forward_bf16(const uint16_t* x, uint16_t* y, int64_t n, float levels, void* stream);
void activation_backward_bf16(const uint16_t* x, const uint16_t* grad, uint16_t* out, int64_t n,
                              void* stream);
void weight_forward(const float* t, float* y, int64_t n, const float* max_abs, float levels,
                    void* stream);
void weight_backward(const float* t, const float* grad, float* out, int64_t n, const float* max_abs,
                     const float* max_share, void* stream);

}  // namespace lowbit::dorefa::fused::cuda
