#include <lowbit/sdk/precision.h>

#include <fmt/format.h>

#include <stdexcept>
#include <tuple>

namespace lowbit {

std::string Precision::label() const { return precision_label(weight_bits, activation_bits); }

bool Precision::operator<(const Precision& other) const {
  return std::tie(other.weight_bits, other.activation_bits) <
         std::tie(weight_bits, activation_bits);
}

std::string precision_label(int weight_bits, int activation_bits) {
  return fmt::format("{}W{}A", weight_bits, activation_bits);
}

BitWidths::BitWidths(int low, int high) : low_(low), high_(high) {
  if (low < 1 || high < low || high > kFullPrecisionBits) {
    throw std::invalid_argument(
        fmt::format("bit-widths {}..{}: not within 1..{}", low, high, kFullPrecisionBits));
  }
}

std::string BitWidths::describe() const {
  if (high_ >= kFullPrecisionBits - 1) return fmt::format("{}..{}", low_, kFullPrecisionBits);
  const auto range = low_ == high_ ? fmt::format("{}", low_) : fmt::format("{}..{}", low_, high_);
  return fmt::format("{} or {}", range, kFullPrecisionBits);
}

}  // namespace lowbit
