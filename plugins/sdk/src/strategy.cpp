#include <lowbit/sdk/strategy.h>

#include <stdexcept>

namespace lowbit {

void name_planned_stage(Stage& stage, const std::string& label, LabelPosition position) {
  if (!stage.planned) {
    stage.name = label;
  } else if (position == LabelPosition::first) {
    stage.name = label + "/" + stage.name;
  } else {
    stage.name = stage.name + "/" + label;
  }
  stage.planned = true;
}

std::shared_ptr<NetworkImpl> FunctionTrainingServices::build_full_precision_network(
    const std::string& model, NetworkStart start) const {
  if (!build_) throw std::logic_error("this trainer builds no other networks");
  return build_(model, start);
}

std::pair<double, double> FunctionTrainingServices::evaluate(NetworkImpl& network) const {
  if (!evaluate_) throw std::logic_error("this trainer evaluates no other networks");
  return evaluate_(network);
}

std::mt19937_64 own_random_stream(uint64_t seed, uint64_t tag, int64_t index) {
  const auto step = static_cast<uint64_t>(index);
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32),
                         static_cast<uint32_t>(tag),  static_cast<uint32_t>(tag >> 32)};
  return std::mt19937_64(sequence);
}

double unit_interval(std::mt19937_64& stream) {
  return static_cast<double>(stream() >> 11) * 0x1.0p-53;
}

}  // namespace lowbit
