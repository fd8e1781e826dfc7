#pragma once
// A trial's per-epoch checkpoint: everything the trainer needs to continue a killed trial from its
// last completed epoch and end exactly as an uninterrupted run would (on the CPU): the network,
// the optimizer's momentum, each strategy's own state, the random generators and the epoch
// records so far. Written through a temporary file, so a kill mid-write leaves the previous one.

#include <lowbit/results/records.h>
#include <lowbit/sdk/network.h>
#include <lowbit/sdk/strategy.h>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lowbit {

/// Where training continues: the stage and the epoch inside it that come next.
struct TrainingPosition {
  int64_t stage_index = 0;
  int64_t epoch_in_stage = 0;
  int64_t epoch = 0;  ///< epochs completed over all stages
  int64_t global_step = 0;
};

/// One trial's checkpoint, as the trainer writes it after each epoch and reads it back when a
/// killed trial starts again.
class TrialCheckpoint {
 public:
  /// `path` "" keeps no checkpoint. `database_id` is written into each checkpoint; one carrying
  /// another id (another database's) is refused rather than resumed.
  TrialCheckpoint(std::string path, std::string database_id, torch::Device device);

  /// Continues from the checkpoint an interrupted attempt left, if there is one: loads the
  /// network's weights and the strategies' state from it and returns where training picks up
  /// (the trial's start when there is none). A checkpoint that cannot be read (cut short by a full
  /// disk or a copy) is removed and the trial starts over; unreadable_reason() says why. Throws
  /// when the checkpoint belongs to another database or does not fit a plan of `stage_count`
  /// stages. Call it after everything the checkpoint overwrites has been built.
  TrainingPosition resume(NetworkImpl& network, const std::vector<Strategy*>& strategies,
                          size_t stage_count);
  /// Whether resume() found a checkpoint to continue from.
  bool resuming() const { return archive_ != nullptr; }
  /// The epochs the interrupted attempt recorded (none when not resuming).
  const std::vector<EpochRecord>& epochs_done() const { return epochs_done_; }
  /// Why resume() could not read the checkpoint it found; none when it could, or found none.
  const std::optional<std::string>& unreadable_reason() const { return unreadable_reason_; }

  /// Begins stage `stage_index` of the plan: calls `begin` (the strategies' on_stage_begin) and,
  /// in the stage the interrupted attempt stopped in, puts the optimizer's momentum and the random
  /// generators back where they were. Returns the stage's first epoch to train.
  int64_t begin_stage(size_t stage_index, torch::optim::Optimizer& optimizer,
                      const std::function<void()>& begin);

  /// Writes what continuing at `next` needs, replacing the previous checkpoint atomically; does
  /// nothing for a trial without one.
  void save(const NetworkImpl& network, const torch::optim::Optimizer& optimizer,
            const std::vector<Strategy*>& strategies, const TrainingPosition& next,
            const std::vector<EpochRecord>& epochs) const;

 private:
  std::string path_;
  std::string database_id_;
  torch::Device device_;
  /// The checkpoint being resumed; its stage reads the optimizer state and generators from it.
  std::unique_ptr<torch::serialize::InputArchive> archive_;
  TrainingPosition position_;
  std::vector<EpochRecord> epochs_done_;
  std::optional<std::string> unreadable_reason_;
};

/// Saves `archive` to `path` atomically (temporary file, then rename); a full disk is a
/// StorageError naming the file, and no temporary file is left.
void save_archive_atomically(torch::serialize::OutputArchive& archive, const std::string& path);
/// Removes the checkpoint if there is one (after its trial was recorded).
void remove_checkpoint(const std::string& path);
bool checkpoint_exists(const std::string& path);

}  // namespace lowbit
