#pragma once
// A trial's per-epoch checkpoint: everything the trainer needs to continue a killed trial from its
// last completed epoch and end exactly as an uninterrupted run would (on the CPU): the network,
// the optimizer's momentum, each strategy's own state, the random generators and the epoch
// records so far. Written through a temporary file, so a kill mid-write leaves the previous one.

#include <lowbit/results/records.h>

#include <torch/torch.h>

#include <string>
#include <vector>

namespace lowbit {

/// Where training continues: the stage and the epoch inside it that come next.
struct TrainingPosition {
  int64_t stage_index = 0;
  int64_t epoch_in_stage = 0;
  int64_t epoch = 0;        ///< epochs completed over all stages
  int64_t global_step = 0;
};

/// Random generator state of the CPU and, when `device` is a GPU, of that device.
struct GeneratorState {
  torch::Tensor cpu;
  torch::Tensor device;
};
GeneratorState capture_generators(torch::Device device);
void restore_generators(const GeneratorState& state, torch::Device device);

void write_position(torch::serialize::OutputArchive& archive, const TrainingPosition& position);
TrainingPosition read_position(torch::serialize::InputArchive& archive);
void write_generators(torch::serialize::OutputArchive& archive, const GeneratorState& state);
GeneratorState read_generators(torch::serialize::InputArchive& archive);
void write_epoch_records(torch::serialize::OutputArchive& archive,
                         const std::vector<EpochRecord>& epochs);
std::vector<EpochRecord> read_epoch_records(torch::serialize::InputArchive& archive);

/// Saves `archive` to `path` atomically (temporary file, then rename); a full disk is a
/// StorageError naming the file, and no temporary file is left.
void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::string& path);
/// Removes the checkpoint if there is one (after its trial was recorded).
void remove_checkpoint(const std::string& path);
bool checkpoint_exists(const std::string& path);

}  // namespace lowbit
