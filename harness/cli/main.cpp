// The `lowbit` command line: run experiment matrices, list components, render result tables.

#include <lowbit/experiment/experiment.h>
#include <lowbit/models/zoo.h>
#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/results/store.h>
#include <lowbit/results/table.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/sdk/error.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>

namespace {

struct Environment {
  lowbit::Registry registry;
  lowbit::PluginLoader plugins{registry};
  std::vector<lowbit::PluginFailure> failures;
};

/// Built-in models, then every plugin on the search path.
void load_components(Environment& env, const std::vector<std::string>& plugin_dirs) {
  lowbit::models::register_builtin_models(env.registry);
  for (const auto& folder : lowbit::PluginLoader::search_path(plugin_dirs)) {
    auto failures = env.plugins.load_directory(folder);
    env.failures.insert(env.failures.end(), failures.begin(), failures.end());
  }
}

void require_no_plugin_failures(const Environment& env) {
  if (env.failures.empty()) return;
  std::string message = "some plugins could not be loaded:";
  for (const auto& failure : env.failures) message += "\n  " + failure.reason;
  throw std::runtime_error(message);
}

/// Writes `text` to `path` through a temporary file, so a reader never sees half a table.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(fmt::format("{}: cannot write", temporary));
    out << text;
    if (!out.flush()) throw std::runtime_error(fmt::format("{}: write failed", temporary));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    throw std::runtime_error(fmt::format("{}: cannot move the finished file into place", path));
  }
}

int command_plugins(Environment& env) {
  for (const auto& component : env.registry.components()) {
    fmt::print("{:<10} {:<14} {}\n{:<25} from {}\n", lowbit::to_string(component.kind),
               component.name, component.summary, "", component.origin);
  }
  for (const auto& failure : env.failures) fmt::print("FAILED     {}\n", failure.reason);
  return env.failures.empty() ? 0 : 1;
}

void print_skipped(const lowbit::Experiment& experiment) {
  for (const auto& skipped : experiment.skipped) {
    fmt::print("  skipped {} {} {}: {}\n", skipped.model, skipped.method, skipped.precision,
               skipped.reason);
  }
}

void print_plan(const lowbit::Experiment& experiment) {
  fmt::print("{} ({}): {} runs x {} trials\n", experiment.name, experiment.file,
             experiment.runs.size(), experiment.trials);
  for (const auto& run : experiment.runs) {
    fmt::print("  {:<12} {:<20} {:<7} run {}\n", run.model, run.record.method,
               lowbit::precision_label(run.record.weight_bits, run.record.activation_bits),
               run.record.hash.substr(0, 12));
  }
  print_skipped(experiment);
}

int command_run(Environment& env, const std::vector<std::string>& files, const std::string& db,
                const lowbit::SweepOptions& options, bool dry_run) {
  require_no_plugin_failures(env);
  // Validate every file before training anything.
  std::vector<lowbit::Experiment> experiments;
  for (const auto& file : files) experiments.push_back(lowbit::load_experiment(file, env.registry));
  if (dry_run) {
    for (const auto& experiment : experiments) print_plan(experiment);
    return 0;
  }
  lowbit::ResultStore store(db);
  lowbit::SweepRunner runner(env.registry, env.plugins, store);
  int64_t failed = 0;
  for (const auto& experiment : experiments) {
    print_skipped(experiment);
    auto summary = runner.run(experiment, options);
    failed += summary.trials_failed;
    fmt::print("\n{}: {} trials run, {} already finished, {} failed; results in {}\n\n",
               experiment.name, summary.trials_run, summary.trials_skipped, summary.trials_failed,
               store.path());
    fmt::print("{}\n", lowbit::render_table(store.summaries(experiment.name),
                                            lowbit::TableFormat::markdown));
  }
  return failed == 0 ? 0 : 2;
}

int command_table(const std::string& db, const std::string& experiment, const std::string& format,
                  const std::string& output) {
  lowbit::ResultStore store(db);
  if (!experiment.empty()) {
    auto names = store.experiment_names();
    if (std::find(names.begin(), names.end(), experiment) == names.end()) {
      throw std::invalid_argument(fmt::format("{}: no experiment \"{}\" (stored: {})", db,
                                              experiment, names.empty() ? "none" : lowbit::join(names)));
    }
  }
  auto text = lowbit::render_table(store.summaries(experiment), lowbit::parse_table_format(format));
  if (output.empty()) {
    fmt::print("{}\n", text);
  } else {
    write_atomically(output, text + "\n");
    fmt::print("wrote {}\n", output);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lowbit: train and compare low-bitwidth CNNs (quantizers x training strategies)"};
  app.require_subcommand(1);
  std::vector<std::string> plugin_dirs;
  app.add_option("--plugin-dir", plugin_dirs,
                 "extra folder of plugins (repeatable; LOWBIT_PLUGIN_PATH adds more)");

  auto* run = app.add_subcommand("run", "run experiment matrices, skipping finished trials");
  std::vector<std::string> files;
  std::string db = "results/lowbit.db";
  lowbit::SweepOptions sweep;
  sweep.progress = &std::cout;
  run->add_option("experiments", files, "experiment JSON files")->required()->check(CLI::ExistingFile);
  run->add_option("--db", db, "results database")->capture_default_str();
  run->add_option("--device", sweep.device, "override the experiment's device")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  run->add_option("--threads", sweep.threads, "override the experiment's intra-op threads")
      ->check(CLI::NonNegativeNumber);
  bool dry_run = false;
  run->add_flag("--dry-run", dry_run, "validate and list the runs without training");

  app.add_subcommand("plugins", "list models, quantizers and strategies and where they come from");

  auto* table = app.add_subcommand("table", "render result tables from the database");
  std::string table_db = "results/lowbit.db";
  std::string experiment;
  std::string format = "markdown";
  std::string output;
  table->add_option("--db", table_db, "results database")->capture_default_str()->check(CLI::ExistingFile);
  table->add_option("--experiment", experiment, "only this experiment (default: all)");
  table->add_option("--format", format, "table format")
      ->check(CLI::IsMember({"markdown", "md", "latex", "tex", "csv"}))
      ->capture_default_str();
  table->add_option("-o,--output", output, "write to this file instead of standard output");

  CLI11_PARSE(app, argc, argv);

  try {
    if (table->parsed()) return command_table(table_db, experiment, format, output);
    Environment env;
    load_components(env, plugin_dirs);
    if (run->parsed()) return command_run(env, files, db, sweep, dry_run);
    return command_plugins(env);
  } catch (const std::exception& e) {
    std::cerr << "lowbit: error: " << e.what() << "\n";
    return 1;
  }
}
