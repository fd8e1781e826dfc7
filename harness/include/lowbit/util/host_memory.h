#pragma once
// Host memory for CPU training. Every training step allocates and frees the same activation
// buffers (several MB each, hundreds of MB per step). glibc by default hands blocks above a
// dynamic threshold back to the kernel with munmap, and trims the heap's free top, so the next
// step page-faults the same memory in again: on a 2-core VM that was 10-25% of a ResNet-20 step.
// Keeping freed memory in the process (what LibTorch's CUDA caching allocator does on the GPU)
// removes those faults; the price is that the process keeps its peak footprint until it exits.

namespace lowbit {

/// Asks glibc to serve blocks up to 32 MB (its maximum mmap threshold) from the heap and to
/// trim the heap only above 2 GB free. Leaves both alone when the user set them through
/// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_. No-op where the C library is not glibc.
/// Returns whether it changed anything.
bool keep_freed_host_memory();

}  // namespace lowbit
