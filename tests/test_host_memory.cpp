#include <lowbit/util/host_memory.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <vector>

#include <sys/resource.h>

namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/// Page faults taken by what a training step does to host memory: allocate a dozen
/// activation-sized blocks (8 MB and a little, sizes varying as layers' do), use them, free them.
long faults_for_one_step() {
  const long before = minor_faults();
  std::vector<char*> blocks;
  for (size_t i = 0; i < 12; ++i) {
    const size_t bytes = (8u << 20) + i * 4096;
    auto* block = static_cast<char*>(std::malloc(bytes));
    REQUIRE(block != nullptr);
    std::memset(block, 1, bytes);
    blocks.push_back(block);
  }
  for (auto* block : blocks) std::free(block);
  return minor_faults() - before;
}

}  // namespace

TEST_CASE("host memory freed by one step is reused by the next without page faults",
          "[host_memory]") {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) return;  // the user's setting wins
  REQUIRE(lowbit::keep_freed_host_memory());
  const long first = faults_for_one_step();  // 24,000-odd pages faulted in
  faults_for_one_step();
  // glibc's defaults fault every page in again on every step (munmap, then heap trimming).
  CHECK(faults_for_one_step() < first / 100);
#endif
}
