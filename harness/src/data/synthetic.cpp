#include <lowbit/data/synthetic.h>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include <stdexcept>
#include <vector>

namespace lowbit {
namespace {

// Noise relative to the unit-variance templates: enough that examples differ, little enough that
// a tiny CNN separates the classes within a few steps.
constexpr double kNoiseStd = 0.5;

void check_at_least(int64_t value, const char* field, int64_t minimum) {
  if (value < minimum) {
    throw std::invalid_argument(
        fmt::format("data option {} = {}: must be >= {}", field, value, minimum));
  }
}

void check_options(const DataOptions& options) {
  check_at_least(options.synthetic_train, "synthetic_train", 0);
  check_at_least(options.synthetic_test, "synthetic_test", 0);
  check_at_least(options.synthetic_classes, "synthetic_classes", 2);
  check_at_least(options.synthetic_channels, "synthetic_channels", 1);
  check_at_least(options.synthetic_image_size, "synthetic_image_size", 1);
}

// Labels cycle through the classes (so they are balanced to within one) in shuffled order.
TensorDataset make_split(const torch::Tensor& templates, int64_t count, at::Generator& generator) {
  const int64_t classes = templates.size(0);
  torch::Tensor labels = torch::arange(count, torch::kInt64).remainder(classes);
  labels = labels.index_select(0, torch::randperm(count, generator, torch::kInt64));
  std::vector<int64_t> shape = templates.sizes().vec();
  shape[0] = count;
  const torch::Tensor noise = torch::randn(shape, generator, torch::kFloat32);
  return {templates.index_select(0, labels) + kNoiseStd * noise, labels};
}

}  // namespace

DataSplits make_synthetic(const DataOptions& options) {
  check_options(options);
  // A private generator keeps the data independent of whatever the global RNG has been through
  // (and leaves the global stream untouched for the training run).
  at::Generator generator = at::detail::createCPUGenerator(options.synthetic_seed);
  const torch::Tensor templates =
      torch::randn({options.synthetic_classes, options.synthetic_channels,
                    options.synthetic_image_size, options.synthetic_image_size},
                   generator, torch::kFloat32);

  DataSplits splits;
  splits.name = "synthetic";
  splits.train = make_split(templates, options.synthetic_train, generator);
  splits.test = make_split(templates, options.synthetic_test, generator);
  splits.num_classes = options.synthetic_classes;
  splits.channels = options.synthetic_channels;
  splits.image_size = options.synthetic_image_size;
  return splits;
}

}  // namespace lowbit
