#include <lowbit/sdk/layer_factory.h>
#include <lowbit/sdk/network.h>

#include <algorithm>

namespace lowbit {

std::string_view to_string(BlockKind kind) {
  switch (kind) {
    case BlockKind::basic:
      return "basic";
    case BlockKind::bottleneck:
      return "bottleneck";
    case BlockKind::preact_basic:
      return "pre-activation basic";
    case BlockKind::preact_bottleneck:
      return "pre-activation bottleneck";
  }
  return "unknown";
}

bool ModelStructure::has_only(BlockKind kind) const {
  return has_blocks() && std::all_of(blocks.begin(), blocks.end(),
                                     [kind](const BlockSpec& block) { return block.kind == kind; });
}

std::string refuse_blocks(const ModelStructure& model, const std::string& without_blocks,
                          const std::function<std::string(const BlockSpec&)>& unsupported) {
  if (!model.has_blocks()) return without_blocks;
  for (const auto& block : model.blocks) {
    auto reason = unsupported(block);
    if (!reason.empty()) return reason;
  }
  return "";
}

namespace {

/// Records what the model asks for; every layer is a placeholder without weights.
class StructureProbe : public LayerFactory {
 public:
  explicit StructureProbe(ModelStructure& structure) : structure_(structure) {}

  torch::nn::AnyModule conv2d(const ConvSpec&) override { return placeholder(); }
  torch::nn::AnyModule activation(const ActivationSpec&) override { return placeholder(); }
  torch::nn::AnyModule linear(const LinearSpec&) override { return placeholder(); }
  torch::nn::AnyModule residual_block(const BlockSpec& spec,
                                      const BlockBuilder& standard) override {
    structure_.blocks.push_back(spec);
    return standard(*this);
  }
  torch::nn::Sequential stem(const StemSpec& spec, const StemBuilder& standard) override {
    structure_.stems.push_back(spec);
    return standard(*this);
  }

 private:
  static torch::nn::AnyModule placeholder() { return torch::nn::AnyModule(torch::nn::Identity()); }
  ModelStructure& structure_;
};

}  // namespace

ModelStructure describe_model(const ModelFactory& model, const ModelSpec& spec) {
  ModelStructure structure;
  StructureProbe probe(structure);
  model(spec, probe);
  return structure;
}

}  // namespace lowbit
