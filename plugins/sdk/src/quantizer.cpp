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

void TensorQuantizerImpl::set_bits(int bits) {
  checked_bits(context_, bits);
  TORCH_CHECK(supported_.contains(bits), "layer ", context_.name, ": this quantizer takes ",
              supported_.describe(), " bits, not ", bits);
  bits_ = bits;
}

void TensorQuantizerImpl::restrict_bits(const BitWidths& supported) {
  TORCH_CHECK(supported.contains(bits_), "layer ", context_.name, ": this quantizer takes ",
              supported.describe(), " bits, not ", bits_);
  supported_ = supported;
}

void TensorQuantizerImpl::enable_data_initialization() {
  data_initialized_ = register_buffer("data_initialized", torch::zeros({}, torch::kBool));
}

void TensorQuantizerImpl::initialize_once(const torch::Tensor& input) {
  if (!data_initialized_.defined() || known_initialized_ || !is_training()) return;
  if (data_initialized_.item<bool>()) {
    known_initialized_ = true;
    return;
  }
  torch::NoGradGuard no_grad;
  initialize_from_data(input.detach());
  data_initialized_.fill_(true);
  known_initialized_ = true;
}

WeightGrid scaled_sign_grid(const torch::Tensor& alpha, bool zero_is_a_level) {
  const auto scale = alpha.detach().to(torch::kDouble);
  if (zero_is_a_level) return WeightGrid{scale, -scale, 3};
  return WeightGrid{2 * scale, -scale, 2};
}

ElementwiseWeightQuantizerImpl::ElementwiseWeightQuantizerImpl(LayerContext layer, int bits,
                                                               ElementwiseQuantization quantize,
                                                               ElementwiseGrid grid)
    : WeightQuantizerImpl(std::move(layer), bits),
      quantize_(std::move(quantize)),
      grid_(std::move(grid)) {}

std::optional<WeightGrid> ElementwiseWeightQuantizerImpl::grid(const torch::Tensor& weight) const {
  if (!grid_) return std::nullopt;
  return grid_(weight, bits());
}

ElementwiseActivationQuantizerImpl::ElementwiseActivationQuantizerImpl(
    LayerContext layer, int bits, ElementwiseQuantization quantize,
    std::function<torch::Tensor(const torch::Tensor&)> full_precision)
    : ActivationQuantizerImpl(std::move(layer), bits),
      quantize_(std::move(quantize)),
      full_precision_(std::move(full_precision)) {}

torch::Tensor ElementwiseActivationQuantizerImpl::full_precision(const torch::Tensor& input) {
  return full_precision_ ? full_precision_(input) : torch::relu(input);
}

std::shared_ptr<WeightQuantizerImpl> Quantizer::make_weight_quantizer(const LayerContext& layer,
                                                                      int bits) const {
  auto made = weight_quantizer(layer, bits);
  made->restrict_bits(supported_bits());
  return made;
}

std::shared_ptr<ActivationQuantizerImpl> Quantizer::make_activation_quantizer(
    const LayerContext& layer, int bits) const {
  auto made = activation_quantizer(layer, bits);
  made->restrict_bits(supported_bits());
  return made;
}

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
