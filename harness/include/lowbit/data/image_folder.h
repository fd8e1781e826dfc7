#pragma once
// An image folder (ImageNet's layout): root/train/<class>/*.jpg|*.jpeg|*.png and
// root/val/<class>/..., one folder per class; class indices follow the sorted names of the train
// folders. The images are never all held: each batch is decoded (stb_image) and transformed when
// the trainer asks for it, so a whole ImageNet works, and so does a folder of ten thumbnails.
//
// Transforms (the paper's, after the ResNet ImageNet recipe): the shorter side is resized to
// `resize` (bilinear, aspect kept); training images are cropped to `crop` x `crop` at a random
// position and flipped horizontally with probability 1/2, test images centre-cropped; then the
// per-channel `mean` is subtracted and the result divided by `std`. Random draws come from the
// global torch generator, so seeded runs repeat. Every file's header is checked when the folder
// is loaded, so a corrupt or unreadable image is reported (by name) before training starts.
// `limit`/`test_limit` keep the first images in class order, i.e. the first classes.

#include <lowbit/data/dataset.h>

#include <string>
#include <vector>

namespace lowbit {

struct ImageTransform {
  int64_t resize = 256;
  int64_t crop = 224;
  std::vector<double> mean{0.485, 0.456, 0.406};
  std::vector<double> std{1.0, 1.0, 1.0};
};

/// Decodes one image file as float 3xHxW in 0..1 (grey and alpha are converted to RGB). Throws
/// std::runtime_error naming the file when it is missing or cannot be decoded.
torch::Tensor decode_image(const std::string& path);

/// Resize, crop (random for training, centre otherwise), flip and normalise one decoded image.
/// `position_y`/`position_x` in [0, 1) place a random crop; `flip` mirrors it.
torch::Tensor transform_image(const torch::Tensor& image, const ImageTransform& transform,
                              bool random_crop, double position_y, double position_x, bool flip);

/// Loads the folder's file lists; the images stream from disk batch by batch.
DataSplits load_image_folder(const DataOptions& options);

}  // namespace lowbit
