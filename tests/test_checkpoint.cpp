// TrialCheckpoint: what the trainer writes after an epoch is what a resumed trial reads back
// (weights, momentum, the strategies' state, the position, the epochs so far and the random
// generators), and a checkpoint that is not this trial's is refused, or dropped when unreadable.

#include <lowbit/training/checkpoint.h>
#include <lowbit/training/optimizer.h>

#include "test_support.h"

#include <boost/filesystem.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using Catch::Matchers::Contains;

class TinyNetwork : public lowbit::NetworkImpl {
 public:
  TinyNetwork() : linear_(register_module("linear", torch::nn::Linear(3, 2))) {}
  lowbit::NetworkOutput forward(torch::Tensor images) override { return {linear_(images), {}}; }

 private:
  torch::nn::Linear linear_;
};

/// A strategy with state of its own.
class CountingStrategy : public lowbit::Strategy {
 public:
  torch::Tensor count = torch::zeros({1});
  void save_state(torch::serialize::OutputArchive& archive) const override {
    archive.write("count", count);
  }
  void load_state(torch::serialize::InputArchive& archive) override {
    archive.read("count", count);
  }
};

/// One step, so that the optimizer has momentum to save.
void step(TinyNetwork& network, torch::optim::Optimizer& optimizer) {
  optimizer.zero_grad();
  network.forward(torch::ones({4, 3})).logits.sum().backward();
  optimizer.step();
}

lowbit::EpochRecord epoch_record(int64_t epoch) {
  lowbit::EpochRecord record;
  record.epoch = epoch;
  record.stage = "main";
  record.train_loss = 1.0 / static_cast<double>(epoch);
  record.extra = {{"teacher_top1", 50.0 + static_cast<double>(epoch)}};
  return record;
}

bool same_tensors(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i], b[i])) return false;
  }
  return true;
}

/// The momentum buffers of an SGD, in parameter order.
std::vector<torch::Tensor> momentum(const torch::optim::SGD& optimizer) {
  std::vector<torch::Tensor> buffers;
  for (const auto& parameter : optimizer.param_groups().at(0).params()) {
    const auto& state = optimizer.state().at(c10::guts::to_string(parameter.unsafeGetTensorImpl()));
    buffers.push_back(static_cast<const torch::optim::SGDParamState&>(*state).momentum_buffer());
  }
  return buffers;
}

/// An attempt interrupted after epoch 2: a checkpoint that continues at `next`, and the first
/// draw the random generator would have given next.
struct Interrupted {
  lowbit::testing::TemporaryFolder folder;
  std::string path = folder.file("a.db.d/checkpoints/h/trial-0.ckpt");
  TinyNetwork network;
  CountingStrategy strategy;
  torch::optim::SGD optimizer = lowbit::make_sgd({}, network.parameters(), 0.1);
  torch::Tensor next_draw;

  explicit Interrupted(const lowbit::TrainingPosition& next) {
    step(network, optimizer);
    strategy.count.fill_(7);
    lowbit::TrialCheckpoint checkpoint(path, "db-A", torch::kCPU);
    checkpoint.save(network, optimizer, {&strategy}, next, {epoch_record(1), epoch_record(2)});
    next_draw = torch::rand({4});
  }
};

}  // namespace

TEST_CASE("a trial without a checkpoint path writes nothing and starts at the beginning",
          "[checkpoint]") {
  TinyNetwork network;
  auto optimizer = lowbit::make_sgd({}, network.parameters(), 0.1);
  lowbit::TrialCheckpoint none("", "db-A", torch::kCPU);
  none.save(network, optimizer, {}, {0, 1, 1, 4}, {epoch_record(1)});
  const auto start = none.resume(network, {}, 2);
  CHECK_FALSE(none.resuming());
  CHECK_FALSE(none.unreadable_reason().has_value());
  CHECK(none.epochs_done().empty());
  CHECK(start.stage_index == 0);
  CHECK(start.epoch == 0);
  int begun = 0;
  CHECK(none.begin_stage(0, optimizer, [&] { ++begun; }) == 0);
  CHECK(begun == 1);
}

TEST_CASE("a checkpoint saved mid-stage resumes weights, momentum, state, epochs and generators",
          "[checkpoint]") {
  Interrupted interrupted({1, 2, 5, 17});
  REQUIRE(lowbit::checkpoint_exists(interrupted.path));

  torch::manual_seed(99);  // the new attempt draws differently until the checkpoint says otherwise
  TinyNetwork network;
  CountingStrategy strategy;
  auto optimizer = lowbit::make_sgd({}, network.parameters(), 0.1);
  REQUIRE_FALSE(same_tensors(network.parameters(), interrupted.network.parameters()));

  lowbit::TrialCheckpoint checkpoint(interrupted.path, "db-A", torch::kCPU);
  const auto position = checkpoint.resume(network, {&strategy}, 3);
  CHECK(checkpoint.resuming());
  CHECK(position.stage_index == 1);
  CHECK(position.epoch_in_stage == 2);
  CHECK(position.epoch == 5);
  CHECK(position.global_step == 17);
  CHECK(same_tensors(network.parameters(), interrupted.network.parameters()));
  CHECK(strategy.count.item<float>() == 7);
  REQUIRE(checkpoint.epochs_done().size() == 2);
  CHECK(checkpoint.epochs_done()[1].epoch == 2);
  CHECK(checkpoint.epochs_done()[1].train_loss == 0.5);
  CHECK(checkpoint.epochs_done()[1].extra.at("teacher_top1") == 52.0);

  // A stage before the one it stopped in is not touched; the stopped one gets its momentum and
  // generators back after on_stage_begin, and continues at its third epoch.
  std::vector<std::string> calls;
  CHECK(checkpoint.begin_stage(0, optimizer, [&] { calls.push_back("stage 0"); }) == 0);
  CHECK(optimizer.state().empty());
  CHECK(checkpoint.begin_stage(1, optimizer, [&] { calls.push_back("stage 1"); }) == 2);
  CHECK(calls == std::vector<std::string>{"stage 0", "stage 1"});
  CHECK(same_tensors(momentum(optimizer), momentum(interrupted.optimizer)));
  CHECK(torch::equal(torch::rand({4}), interrupted.next_draw));
}

TEST_CASE("a checkpoint saved at a stage's start restores the generators before on_stage_begin",
          "[checkpoint]") {
  Interrupted interrupted({1, 0, 4, 12});
  torch::manual_seed(99);
  TinyNetwork network;
  auto optimizer = lowbit::make_sgd({}, network.parameters(), 0.1);
  lowbit::TrialCheckpoint checkpoint(interrupted.path, "db-A", torch::kCPU);
  checkpoint.resume(network, {}, 2);
  torch::Tensor drawn_in_begin;
  CHECK(checkpoint.begin_stage(1, optimizer, [&] { drawn_in_begin = torch::rand({4}); }) == 0);
  CHECK(torch::equal(drawn_in_begin, interrupted.next_draw));
}

TEST_CASE("a checkpoint of another database or another plan is refused and kept", "[checkpoint]") {
  Interrupted interrupted({1, 2, 5, 17});
  TinyNetwork network;
  lowbit::TrialCheckpoint other_database(interrupted.path, "db-B", torch::kCPU);
  CHECK_THROWS_WITH(
      other_database.resume(network, {}, 3),
      Contains(interrupted.path) &&
          Contains("belongs to another results database (id \"db-A\", this one is \"db-B\")"));
  lowbit::TrialCheckpoint shorter_plan(interrupted.path, "db-A", torch::kCPU);
  CHECK_THROWS_WITH(shorter_plan.resume(network, {}, 1),
                    Contains("does not fit this trial's plan (stage 1 of 1)"));
  CHECK(lowbit::checkpoint_exists(interrupted.path));
}

TEST_CASE("an unreadable checkpoint is removed, said why, and the trial starts over",
          "[checkpoint]") {
  Interrupted interrupted({1, 2, 5, 17});
  boost::filesystem::resize_file(interrupted.path,
                                 boost::filesystem::file_size(interrupted.path) / 2);
  TinyNetwork network;
  lowbit::TrialCheckpoint checkpoint(interrupted.path, "db-A", torch::kCPU);
  const auto start = checkpoint.resume(network, {}, 3);
  CHECK_FALSE(checkpoint.resuming());
  REQUIRE(checkpoint.unreadable_reason().has_value());
  CHECK_FALSE(checkpoint.unreadable_reason()->empty());
  CHECK(start.stage_index == 0);
  CHECK(start.epoch == 0);
  CHECK_FALSE(lowbit::checkpoint_exists(interrupted.path));
}
