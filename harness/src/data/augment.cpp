#include <lowbit/data/augment.h>

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

namespace lowbit {
namespace {

void check_inputs(const torch::Tensor& images, const AugmentOptions& options) {
  if (!images.defined() || images.dim() != 4) {
    throw std::invalid_argument(
        fmt::format("augment_batch: images must be a 4-d NCHW tensor, got {} dimensions",
                    images.defined() ? images.dim() : 0));
  }
  if (options.crop_padding < 0) {
    throw std::invalid_argument(fmt::format(
        "augment option crop_padding = {}: must be >= 0 (0: no crop)", options.crop_padding));
  }
}

// Per-sample source rows [N, H] and columns [N, W] into the padded batch. Crop and flip are both
// just index arithmetic, so one pair of gathers applies them to the whole batch at once.
std::pair<torch::Tensor, torch::Tensor> source_indices(int64_t n, int64_t height, int64_t width,
                                                       const AugmentOptions& options,
                                                       torch::Device device) {
  const auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor rows = torch::arange(height, long_options).unsqueeze(0).expand({n, height});
  torch::Tensor cols = torch::arange(width, long_options).unsqueeze(0).expand({n, width});
  if (options.horizontal_flip) {
    const torch::Tensor flip = torch::randint(0, 2, {n, 1}, long_options).to(torch::kBool);
    cols = torch::where(flip, (width - 1) - cols, cols);
  }
  if (options.crop_padding > 0) {
    const int64_t span = 2 * options.crop_padding + 1;
    rows = rows + torch::randint(0, span, {n, 1}, long_options);
    cols = cols + torch::randint(0, span, {n, 1}, long_options);
  }
  return {rows, cols};
}

}  // namespace

torch::Tensor augment_batch(const torch::Tensor& images, const AugmentOptions& options) {
  check_inputs(images, options);
  if (options.crop_padding == 0 && !options.horizontal_flip) return images;

  const int64_t n = images.size(0), channels = images.size(1);
  const int64_t height = images.size(2), width = images.size(3);
  const int64_t pad = options.crop_padding;
  const torch::Tensor padded =
      pad > 0 ? torch::constant_pad_nd(images, {pad, pad, pad, pad}, 0) : images;

  auto [rows, cols] = source_indices(n, height, width, options, images.device());
  const int64_t padded_width = width + 2 * pad;
  const torch::Tensor row_index =
      rows.reshape({n, 1, height, 1}).expand({n, channels, height, padded_width});
  const torch::Tensor col_index =
      cols.reshape({n, 1, 1, width}).expand({n, channels, height, width});
  return padded.gather(2, row_index).gather(3, col_index);
}

}  // namespace lowbit
