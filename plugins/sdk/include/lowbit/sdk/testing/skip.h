#pragma once
// Skipping a test whose tool is missing (no CUDA device, no Chromium, no Slurm) so that CTest
// shows it as skipped, not passed: the test prints this marker and returns, and every lowbit test
// binary is registered with SKIP_REGULAR_EXPRESSION on it (lowbit_add_plugin_test and the core
// tests do this).

#include <iostream>

#define LOWBIT_SKIP_MARKER "LOWBIT-SKIPPED:"

/// Ends the current test case as skipped, saying why (and how to get what it needs).
#define LOWBIT_SKIP(reason)                                     \
  do {                                                          \
    std::cout << LOWBIT_SKIP_MARKER " " << reason << std::endl; \
    return;                                                     \
  } while (false)
