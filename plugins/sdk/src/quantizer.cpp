#include <lowbit/sdk/network.h>
#include <lowbit/sdk/quantizer.h>

namespace lowbit {

namespace {
int checked_bits(const LayerContext& context, int bits) {
  TORCH_CHECK(bits >= 1 && bits <= kFullPrecisionBits, "layer ", context.name,
              ": bit-width must be 1..", kFullPrecisionBits, ", got ", bits);
  return bits;
}
}  // namespace

// Not through set_bits: a subclass's override cannot run while the base is being constructed.
TensorQuantizerImpl::TensorQuantizerImpl(LayerContext context, int bits)
    : context_(std::move(context)), bits_(checked_bits(context_, bits)) {}

void TensorQuantizerImpl::set_bits(int bits) { bits_ = checked_bits(context_, bits); }

std::vector<std::shared_ptr<TensorQuantizerImpl>> tensor_quantizers(torch::nn::Module& module) {
  std::vector<std::shared_ptr<TensorQuantizerImpl>> found;
  for (const auto& child : module.modules(/*include_self=*/false)) {
    if (auto quantizer = std::dynamic_pointer_cast<TensorQuantizerImpl>(child)) {
      found.push_back(std::move(quantizer));
    }
  }
  return found;
}

}  // namespace lowbit
