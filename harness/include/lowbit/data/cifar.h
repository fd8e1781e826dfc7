#pragma once
// CIFAR-10 and CIFAR-100, binary versions (https://www.cs.toronto.edu/~kriz/cifar.html).
// CIFAR-10: data_batch_1.bin .. data_batch_5.bin and test_batch.bin, records of 1 label byte and
// 3072 pixel bytes (R, G, B planes of 32x32). CIFAR-100: train.bin and test.bin, records of a
// coarse and a fine label byte and the same 3072 pixel bytes. `root` is the folder holding the
// files or the folder the archive was unpacked in (cifar-10-batches-bin / cifar-100-binary are
// looked for inside it). Images become float 3x32x32 normalised per channel by the training
// set's mean and std.

#include <lowbit/data/dataset.h>

#include <string>

namespace lowbit {

DataSplits load_cifar10(const std::string& root);

/// `labels`: "fine" (100 classes) or "coarse" (20 superclasses).
DataSplits load_cifar100(const std::string& root, const std::string& labels = "fine");

/// Reads one binary CIFAR file of records with `label_bytes` leading label bytes; keeps label
/// byte `label_index` and checks it is below `classes`. Throws std::runtime_error naming the file
/// when it is missing, its size is not a whole number of records, or a label is out of range.
TensorDataset read_cifar_file(const std::string& path, int label_bytes, int label_index,
                              int64_t classes);

}  // namespace lowbit
