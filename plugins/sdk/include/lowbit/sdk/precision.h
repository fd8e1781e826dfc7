#pragma once
// Bit-widths: a run's precision ("2W2A"), and the widths a quantizer's layers can take. Shared by
// the harness (experiment files, tables, progress lines) and plugins (their supported widths).

#include <string>

namespace lowbit {

/// Bit-width meaning "not quantized".
constexpr int kFullPrecisionBits = 32;

/// Weight and activation bit-widths of a run or a training stage.
struct Precision {
  int weight_bits = kFullPrecisionBits;
  int activation_bits = kFullPrecisionBits;

  bool is_full_precision() const {
    return weight_bits >= kFullPrecisionBits && activation_bits >= kFullPrecisionBits;
  }
  /// "2W2A"; 32 reads as "32".
  std::string label() const;
  /// Wider precisions first, as the paper's tables list them: 32W32A, 4W4A, 2W2A.
  bool operator<(const Precision& other) const;
  bool operator==(const Precision& other) const {
    return weight_bits == other.weight_bits && activation_bits == other.activation_bits;
  }
  bool operator!=(const Precision& other) const { return !(*this == other); }
};

/// "2W2A" for 2-bit weights and activations.
std::string precision_label(int weight_bits, int activation_bits);

/// The bit-widths a quantizer's layers can take: a range low..high, and always full precision
/// (every layer can be held at 32 bits: TS's first stage keeps activations there).
class BitWidths {
 public:
  /// Any width, 1..32.
  static BitWidths all() { return BitWidths(1, kFullPrecisionBits); }
  /// 1..high, and 32.
  static BitWidths up_to(int high) { return BitWidths(1, high); }
  /// 1 and 32 (binary methods).
  static BitWidths binary() { return BitWidths(1, 1); }

  bool contains(int bits) const {
    return bits == kFullPrecisionBits || (bits >= low_ && bits <= high_);
  }
  bool contains(const Precision& precision) const {
    return contains(precision.weight_bits) && contains(precision.activation_bits);
  }
  /// "1 or 32", "1..4 or 32", "1..32": the allowed part of a message.
  std::string describe() const;

 private:
  BitWidths(int low, int high);
  int low_;
  int high_;
};

}  // namespace lowbit
