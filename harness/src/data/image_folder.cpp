#include <lowbit/data/image_folder.h>

#include <fmt/format.h>

#include <stb_image.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>

namespace lowbit {
namespace {

namespace fs = std::filesystem;

bool is_image(const fs::path& path) {
  auto extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return extension == ".jpg" || extension == ".jpeg" || extension == ".png";
}

std::vector<std::string> sorted_entries(const fs::path& folder, bool folders) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (folders ? entry.is_directory() : (entry.is_regular_file() && is_image(entry.path()))) {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

struct FileList {
  std::vector<std::string> files;
  std::vector<int64_t> labels;
};

FileList list_split(const fs::path& folder, const std::map<std::string, int64_t>& classes) {
  if (!fs::is_directory(folder)) {
    throw std::runtime_error(fmt::format("image folder: missing folder {}", folder.string()));
  }
  FileList list;
  for (const auto& name : sorted_entries(folder, /*folders=*/true)) {
    auto found = classes.find(name);
    if (found == classes.end()) {
      throw std::runtime_error(
          fmt::format("image folder: class folder {} has no counterpart among the training classes",
                      (folder / name).string()));
    }
    for (const auto& file : sorted_entries(folder / name, /*folders=*/false)) {
      list.files.push_back((folder / name / file).string());
      list.labels.push_back(found->second);
    }
  }
  if (list.files.empty()) {
    throw std::runtime_error(fmt::format(
        "image folder: no .jpg/.jpeg/.png images in the class folders of {}", folder.string()));
  }
  return list;
}

void check_headers(const std::vector<std::string>& files) {
  std::vector<std::string> errors(files.size());
  at::parallel_for(0, static_cast<int64_t>(files.size()), 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int width = 0, height = 0, channels = 0;
      if (stbi_info(files[i].c_str(), &width, &height, &channels) == 0) {
        errors[i] = fmt::format("image folder: cannot read {}: {}", files[i],
                                stbi_failure_reason() ? stbi_failure_reason() : "unknown error");
      }
    }
  });
  for (const auto& error : errors) {
    if (!error.empty()) throw std::runtime_error(error);
  }
}

class ImageFolderSource : public ImageSource {
 public:
  ImageFolderSource(std::vector<std::string> files, ImageTransform transform, bool train)
      : files_(std::move(files)), transform_(std::move(transform)), train_(train) {}

  torch::Tensor images(const torch::Tensor& indices) override {
    const int64_t count = indices.numel();
    auto index = indices.to(torch::kLong).contiguous();
    // Drawn up front, in order, so the result does not depend on how decoding is threaded.
    auto positions = torch::rand({count, 2}, torch::kDouble);
    auto flips = torch::rand({count}, torch::kDouble).lt(0.5);
    auto output = torch::empty({count, 3, transform_.crop, transform_.crop});
    const auto* ids = index.data_ptr<int64_t>();
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        if (ids[i] < 0 || ids[i] >= static_cast<int64_t>(files_.size())) {
          throw std::out_of_range(fmt::format("image folder: index {} out of range", ids[i]));
        }
        auto image = decode_image(files_[ids[i]]);
        output[i].copy_(transform_image(image, transform_, train_, positions[i][0].item<double>(),
                                        positions[i][1].item<double>(),
                                        train_ && flips[i].item<bool>()));
      }
    });
    return output;
  }

 private:
  std::vector<std::string> files_;
  ImageTransform transform_;
  bool train_;
};

TensorDataset make_split(const FileList& list, const ImageTransform& transform, bool train) {
  TensorDataset split;
  split.labels = torch::tensor(list.labels, torch::kLong);
  split.source = std::make_shared<ImageFolderSource>(list.files, transform, train);
  return split;
}

void check_transform(const ImageTransform& transform) {
  if (transform.crop < 1 || transform.resize < transform.crop) {
    throw std::invalid_argument(
        fmt::format("image folder: crop = {} and resize = {}: need 1 <= crop <= resize",
                    transform.crop, transform.resize));
  }
  if (transform.mean.size() != 3 || transform.std.size() != 3) {
    throw std::invalid_argument("image folder: mean and std need 3 values (R, G, B)");
  }
  for (double value : transform.std) {
    if (value <= 0) throw std::invalid_argument("image folder: std values must be > 0");
  }
}

}  // namespace

torch::Tensor decode_image(const std::string& path) {
  int width = 0, height = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> pixels(
      stbi_load(path.c_str(), &width, &height, &channels, /*desired_channels=*/3), stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw std::runtime_error(fmt::format("image folder: cannot decode {}: {}", path,
                                         reason != nullptr ? reason : "unknown error"));
  }
  return torch::from_blob(pixels.get(), {height, width, 3}, torch::kUInt8)
      .permute({2, 0, 1})
      .to(torch::kFloat32)
      .div_(255.0);
}

torch::Tensor transform_image(const torch::Tensor& image, const ImageTransform& transform,
                              bool random_crop, double position_y, double position_x, bool flip) {
  const int64_t height = image.size(1);
  const int64_t width = image.size(2);
  const double scale = static_cast<double>(transform.resize) / std::min(height, width);
  const int64_t new_height = std::max<int64_t>(transform.resize, std::llround(height * scale));
  const int64_t new_width = std::max<int64_t>(transform.resize, std::llround(width * scale));
  auto resized = torch::nn::functional::interpolate(
                     image.unsqueeze(0), torch::nn::functional::InterpolateFuncOptions()
                                             .size(std::vector<int64_t>{new_height, new_width})
                                             .mode(torch::kBilinear)
                                             .align_corners(false))
                     .squeeze(0);
  const int64_t spare_y = new_height - transform.crop;
  const int64_t spare_x = new_width - transform.crop;
  const int64_t top =
      random_crop ? std::min<int64_t>(spare_y, position_y * (spare_y + 1)) : spare_y / 2;
  const int64_t left =
      random_crop ? std::min<int64_t>(spare_x, position_x * (spare_x + 1)) : spare_x / 2;
  auto cropped = resized.narrow(1, top, transform.crop).narrow(2, left, transform.crop);
  if (flip) cropped = cropped.flip({2});
  auto mean = torch::tensor(transform.mean, torch::kFloat32).view({3, 1, 1});
  auto std = torch::tensor(transform.std, torch::kFloat32).view({3, 1, 1});
  return (cropped - mean) / std;
}

DataSplits load_image_folder(const DataOptions& options) {
  ImageTransform transform{options.resize, options.crop, options.mean, options.std};
  check_transform(transform);
  const fs::path root(options.root);
  const fs::path train_folder = root / "train";
  if (!fs::is_directory(train_folder)) {
    throw std::runtime_error(fmt::format("image folder: missing folder {}", train_folder.string()));
  }
  std::map<std::string, int64_t> classes;
  for (const auto& name : sorted_entries(train_folder, /*folders=*/true)) {
    classes.emplace(name, static_cast<int64_t>(classes.size()));
  }
  if (classes.empty()) {
    throw std::runtime_error(
        fmt::format("image folder: no class folders in {}", train_folder.string()));
  }
  auto train = list_split(train_folder, classes);
  auto test = list_split(root / "val", classes);
  check_headers(train.files);
  check_headers(test.files);

  DataSplits splits;
  splits.name = "imagefolder";
  splits.train = make_split(train, transform, /*train=*/true);
  splits.test = make_split(test, transform, /*train=*/false);
  splits.num_classes = static_cast<int64_t>(classes.size());
  splits.channels = 3;
  splits.image_size = transform.crop;
  return splits;
}

}  // namespace lowbit
