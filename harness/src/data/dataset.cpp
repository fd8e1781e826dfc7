#include <lowbit/data/dataset.h>

#include <lowbit/data/fashion_mnist.h>
#include <lowbit/data/synthetic.h>

#include <fmt/format.h>

#include <stdexcept>

namespace lowbit {
namespace {

torch::Tensor to_device(const torch::Tensor& tensor, torch::Device device) {
  return tensor.defined() ? tensor.to(device) : tensor;
}

void check_limit(int64_t value, const char* field) {
  if (value < 0) {
    throw std::invalid_argument(
        fmt::format("data option {} = {}: must be >= 0 (0: use all examples)", field, value));
  }
}

DataSplits load_by_name(const DataOptions& options) {
  if (options.name == "fashion-mnist") return load_fashion_mnist(options.root);
  if (options.name == "synthetic") return make_synthetic(options);
  throw std::invalid_argument(fmt::format(
      "data option name = \"{}\": unknown data set (allowed: \"fashion-mnist\", \"synthetic\")",
      options.name));
}

}  // namespace

TensorDataset TensorDataset::to(torch::Device device) const {
  return {to_device(images, device), to_device(labels, device)};
}

TensorDataset TensorDataset::head(int64_t count) const {
  if (count <= 0 || count >= size()) return *this;
  // Copy rather than view: a view would keep the whole data set's storage alive, and the point
  // of a limit is usually to run small.
  return {images.narrow(0, 0, count).clone(), labels.narrow(0, 0, count).clone()};
}

DataSplits load_dataset(const DataOptions& options) {
  check_limit(options.limit, "limit");
  check_limit(options.test_limit, "test_limit");
  DataSplits splits = load_by_name(options);
  splits.train = splits.train.head(options.limit);
  splits.test = splits.test.head(options.test_limit);
  return splits;
}

}  // namespace lowbit
