#pragma once
// Which quantizer builds which model: every registered quantizer, with its default options,
// asked about every registered model (Quantizer::model_incompatibility). `lowbit plugins` prints
// it, so a researcher sees before running that, e.g., Bi-Real refuses ResNet-50 and why.

#include <lowbit/sdk/registry.h>

#include <string>
#include <vector>

namespace lowbit {

struct SupportCell {
  std::string model;
  std::string quantizer;
  std::string refusal;  ///< "" when the quantizer builds the model
};

/// Models in name order, each against every quantizer in name order.
std::vector<SupportCell> quantizer_support(const Registry& registry);

/// One row per model, one column per quantizer ("yes", or "no N" for note N); the notes, one
/// per distinct refusal, follow the grid.
std::string render_support_table(const std::vector<SupportCell>& cells);

}  // namespace lowbit
