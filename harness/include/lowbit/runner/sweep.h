#pragma once
// Runs an experiment's matrix: every run, every trial not yet in the database, one after another.
// A trial is stored only when it ends, so a killed sweep resumes where it stopped.

#include <lowbit/experiment/experiment.h>
#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/results/store.h>
#include <lowbit/sdk/registry.h>

#include <torch/torch.h>

#include <ostream>
#include <string>

namespace lowbit {

struct SweepOptions {
  std::string device;   ///< overrides the experiment's "device" when not empty
  int64_t threads = -1; ///< overrides the experiment's "threads" when >= 0
  std::ostream* progress = nullptr;
};

struct SweepSummary {
  int64_t trials_run = 0;
  int64_t trials_skipped = 0;  ///< already finished in the database
  int64_t trials_failed = 0;
};

/// "auto" picks CUDA when LibTorch sees a GPU; "cuda" without one is an error.
torch::Device resolve_device(const std::string& requested);

class SweepRunner {
 public:
  SweepRunner(const Registry& registry, const PluginLoader& plugins, ResultStore& store)
      : registry_(registry), plugins_(plugins), store_(store) {}

  SweepSummary run(const Experiment& experiment, const SweepOptions& options);

 private:
  const Registry& registry_;
  const PluginLoader& plugins_;
  ResultStore& store_;
};

}  // namespace lowbit
