#include <lowbit/util/host_memory.h>

#include <climits>
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace lowbit {

bool keep_freed_host_memory() {
#if defined(__GLIBC__)
  constexpr int kLargestHeapBlock = 32 * 1024 * 1024;  // glibc's ceiling for M_MMAP_THRESHOLD
  bool changed = false;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) {
    changed |= mallopt(M_MMAP_THRESHOLD, kLargestHeapBlock) == 1;
  }
  if (std::getenv("MALLOC_TRIM_THRESHOLD_") == nullptr) {
    changed |= mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
  }
  return changed;
#else
  return false;
#endif
}

}  // namespace lowbit
