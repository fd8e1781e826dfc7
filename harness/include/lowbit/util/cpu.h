#pragma once
// The CPU a process runs on, as trials record it. LibTorch's float kernels take different paths
// on different CPU models (AVX2, AVX-512: other blockings, other summation orders), so a CPU
// trial repeats bit for bit only on the same model, with the same thread count and LibTorch.

#include <string>

namespace lowbit {

/// What a trial records when the CPU's model cannot be read (or was not recorded: databases
/// before schema version 4).
inline constexpr const char* kUnknownCpu = "unknown";

/// The value of the first "model name" line of `cpuinfo` (Linux's /proc/cpuinfo), e.g. "AMD EPYC
/// 7B13", spaces trimmed; kUnknownCpu when the file or the line is missing or the value empty.
std::string cpu_model_name(const std::string& cpuinfo = "/proc/cpuinfo");

}  // namespace lowbit
