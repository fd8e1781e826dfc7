// Every test binary's main. LOWBIT_TEST_THREADS sets LibTorch's intra-op threads, so the suite
// can be run at 1 and at 2 threads (float reductions split differently, and a test of learning
// must hold either way).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (const char* threads = std::getenv("LOWBIT_TEST_THREADS"); threads != nullptr && *threads) {
    try {
      torch::set_num_threads(std::stoi(threads));
    } catch (const std::exception&) {
      std::cerr << "LOWBIT_TEST_THREADS=" << threads << ": not a thread count\n";
      return 2;
    }
  }
  return Catch::Session().run(argc, argv);
}
