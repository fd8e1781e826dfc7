// The `lowbit` command line: run experiment matrices, list components, render result tables,
// HTML reports and exported trial weights.

#include <lowbit/bench/step_bench.h>
#include <lowbit/experiment/experiment.h>
#include <lowbit/export/export.h>
#include <lowbit/models/zoo.h>
#include <lowbit/plugins/plugin_loader.h>
#include <lowbit/plugins/support_table.h>
#include <lowbit/report/report.h>
#include <lowbit/results/merge.h>
#include <lowbit/results/paired.h>
#include <lowbit/results/store.h>
#include <lowbit/results/table.h>
#include <lowbit/runner/jobs.h>
#include <lowbit/runner/slurm.h>
#include <lowbit/runner/sweep.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/util/atomic_file.h>
#include <lowbit/util/exception_message.h>
#include <lowbit/util/host_memory.h>

#include <CLI/CLI.hpp>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/filesystem.hpp>
#include <fmt/format.h>

#include <iostream>
#include <thread>
#include <tuple>

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

int command_plugins(Environment& env) {
  for (const auto& component : env.registry.components()) {
    fmt::print("{:<10} {:<14} {}\n{:<25} from {}\n", lowbit::to_string(component.kind),
               component.name, component.summary, "", component.origin);
  }
  fmt::print("\nWhich quantizer builds which model (default options; \"no N\": refused, note N):\n{}",
             lowbit::render_support_table(lowbit::quantizer_support(env.registry)));
  for (const auto& failure : env.failures) fmt::print("FAILED     {}\n", failure.reason);
  return env.failures.empty() ? 0 : 1;
}

void print_experiment_table(lowbit::ResultStore& store, const std::string& experiment) {
  fmt::print("{}\n", lowbit::render_table(store.summaries(experiment), lowbit::TableFormat::markdown));
}

std::string lowbit_executable() {
  return boost::filesystem::canonical(boost::dll::program_location()).string();
}

/// `run` split over `jobs` processes sharing the database; prints the tables once all are done.
int command_run_parallel(Environment& env, const std::vector<std::string>& files,
                         const std::string& db, const lowbit::SweepOptions& options,
                         const std::vector<std::string>& plugin_dirs, int jobs,
                         const std::vector<std::string>& gpus) {
  require_no_plugin_failures(env);
  std::vector<lowbit::Experiment> experiments;
  for (const auto& file : files) experiments.push_back(lowbit::load_experiment(file, env.registry));
  lowbit::ParallelRunOptions parallel;
  parallel.executable = lowbit_executable();
  parallel.jobs = jobs;
  parallel.gpus = gpus;
  for (const auto& folder : plugin_dirs) parallel.arguments.insert(parallel.arguments.end(), {"--plugin-dir", folder});
  parallel.arguments.push_back("run");
  parallel.arguments.insert(parallel.arguments.end(), files.begin(), files.end());
  parallel.arguments.insert(parallel.arguments.end(), {"--db", db});
  if (!options.device.empty()) parallel.arguments.insert(parallel.arguments.end(), {"--device", options.device});
  // Without a thread count each job would take every core; share them out instead.
  const int64_t threads = options.threads >= 0
                              ? options.threads
                              : std::max<int64_t>(1, std::thread::hardware_concurrency() / jobs);
  parallel.arguments.insert(parallel.arguments.end(), {"--threads", std::to_string(threads)});
  const int64_t cores = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t per_job = threads > 0 ? threads : cores;
  if (per_job * jobs > cores) {
    // Measured on 2 cores: 2 jobs x 2 threads ran 4.6x slower than 2 jobs x 1 thread.
    fmt::print(stderr,
               "lowbit: warning: {} jobs x {} threads > {} hardware threads; CPU trials will "
               "oversubscribe the cores and run several times slower (use --threads {})\n",
               jobs, per_job, cores, std::max<int64_t>(1, cores / jobs));
  }
  const int failed = lowbit::run_parallel_jobs(parallel);
  lowbit::ResultStore store(db);
  for (const auto& experiment : experiments) print_experiment_table(store, experiment.name);
  if (failed > 0) fmt::print(stderr, "lowbit: {} of {} jobs failed\n", failed, jobs);
  return failed == 0 ? 0 : 2;
}

int command_slurm(Environment& env, const std::string& file, lowbit::SlurmOptions options,
                  std::string output, const std::vector<std::string>& plugin_dirs) {
  require_no_plugin_failures(env);
  const auto experiment = lowbit::load_experiment(file, env.registry);
  options.executable = lowbit_executable();
  options.experiment = boost::filesystem::canonical(file).string();
  options.shard_folder = boost::filesystem::absolute(options.shard_folder).lexically_normal().string();
  options.name = experiment.name;
  for (const auto& folder : plugin_dirs) {
    options.plugin_dirs.push_back(boost::filesystem::canonical(folder).string());
  }
  if (output.empty()) output = options.shard_folder + "/" + experiment.name + ".sbatch";
  lowbit::write_text_atomically(output, lowbit::slurm_array_script(options));
  fmt::print("wrote {} ({} array tasks, {} trials in all)\nsubmit:  sbatch {}\nthen:    {} merge --db results/lowbit.db {}\n",
             output, options.shards, experiment.runs.size() * experiment.trials, output,
             options.executable, lowbit::shard_database(options, "*"));
  if (options.shards > experiment.trials) {
    fmt::print("note: task i trains trial indices i, i+{0}, ... of every run (a quantized trial "
               "stays with the 32W32A trial it starts from); with {1} trials, {2} of the {0} "
               "tasks have nothing to train\n",
               options.shards, experiment.trials, options.shards - experiment.trials);
  }
  return 0;
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
    std::string start;
    if (run.init == lowbit::InitKind::full_precision) {
      start = "  from run " + experiment.runs[run.full_precision_source].record.hash.substr(0, 12);
    } else if (run.init == lowbit::InitKind::checkpoint) {
      start = "  from the checkpoint";
    }
    fmt::print("  {:<12} {:<20} {:<7} run {}{}\n", run.model, run.record.method,
               lowbit::precision_label(run.record.weight_bits, run.record.activation_bits),
               run.record.hash.substr(0, 12), start);
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
    fmt::print("\n{}: {} trials run, {} already finished, {} failed{}{}; results in {}\n\n",
               experiment.name, summary.trials_run, summary.trials_skipped, summary.trials_failed,
               summary.trials_elsewhere > 0
                   ? fmt::format(", {} left to other shards", summary.trials_elsewhere)
                   : std::string(),
               summary.trials_claimed_elsewhere > 0
                   ? fmt::format(", {} being trained by other processes",
                                 summary.trials_claimed_elsewhere)
                   : std::string(),
               store.path());
    if (options.shard_count == 1) print_experiment_table(store, experiment.name);
  }
  return failed == 0 ? 0 : 2;
}

int command_table(const std::string& db, const std::string& experiment, const std::string& format,
                  const std::string& output, const lowbit::TableOptions& options) {
  lowbit::ResultStore store(db, lowbit::StoreAccess::read_only);
  if (!experiment.empty()) {
    auto names = store.experiment_names();
    if (std::find(names.begin(), names.end(), experiment) == names.end()) {
      throw std::invalid_argument(fmt::format("{}: no experiment {} (stored: {})", db,
                                              lowbit::excerpt(experiment),
                                              names.empty() ? "none" : lowbit::join(names)));
    }
  }
  auto summaries = store.summaries(experiment);
  if (options.vs_baseline) lowbit::add_baseline_differences(store, summaries);
  auto text = lowbit::render_table(summaries, lowbit::parse_table_format(format), options);
  if (output.empty()) {
    fmt::print("{}\n", text);
  } else {
    lowbit::write_text_atomically(output, text + "\n");
    fmt::print("wrote {}\n", output);
  }
  return 0;
}

/// A JSON object given on the command line, e.g. --quantizer-options '{"kernels": "composite"}'.
nlohmann::json json_object_argument(const std::string& text, const std::string& option) {
  const auto value = lowbit::parse_json(text, option);
  if (!value.is_object()) {
    throw std::invalid_argument(fmt::format("{}: must be a JSON object, e.g. '{{\"loss\": \"both\"}}'", option));
  }
  return value;
}

int command_bench(Environment& env, lowbit::StepBenchOptions options, const std::string& precision,
                  const std::string& device, int64_t threads, const std::string& quantizer_options,
                  const std::string& kd_options) {
  require_no_plugin_failures(env);
  options.quantizer_options = json_object_argument(quantizer_options, "--quantizer-options");
  if (!kd_options.empty()) options.kd_options = json_object_argument(kd_options, "--kd-options");
  nlohmann::json text = precision;
  auto experiment_precision = lowbit::parse_precision(text, "", "--precision");
  options.weight_bits = experiment_precision.first;
  options.activation_bits = experiment_precision.second;
  options.device = lowbit::resolve_device(device);
  lowbit::set_intra_op_threads(threads);
  auto result = lowbit::bench_training_steps(env.registry, options);
  fmt::print("{} {} batch {} input {}x{}x{} on {} ({} threads{}{}), median of {} steps\n",
             options.model, options.quantizer, options.batch_size, options.channels,
             options.image_size, options.image_size, options.device.str(),
             torch::get_num_threads(), options.performance.channels_last ? ", channels-last" : "",
             options.performance.autocast_bf16() ? ", bf16 autocast" : "", options.steps);
  fmt::print("{:<10} {:>10} {:>10} {:>12}\n", "setting", "ms/step", "img/s", "peak MB");
  for (const auto* timing : {&result.full_precision, &result.quantized, &result.distilled}) {
    if (timing->setting.empty()) continue;
    fmt::print("{:<10} {:>10.1f} {:>10.0f} {:>12.0f}\n", timing->setting, timing->median_ms,
               timing->images_per_second, timing->peak_memory_mb);
  }
  fmt::print("quantizer overhead (quantized / full-precision step time): {:.2f}\n",
             result.overhead());
  return 0;
}

int command_merge(const std::string& db, const std::vector<std::string>& sources) {
  lowbit::ResultStore target(db);
  lowbit::MergeSummary total;
  const auto target_file = boost::filesystem::canonical(target.path());
  for (const auto& source_path : sources) {
    if (boost::filesystem::canonical(source_path) == target_file) {
      throw std::invalid_argument(fmt::format("{}: cannot merge a database into itself", source_path));
    }
    lowbit::ResultStore source(source_path, lowbit::StoreAccess::read_only);
    const auto merged = lowbit::merge_results(target, source);
    fmt::print("{}: {} trials added, {} already there\n", source_path, merged.trials_added,
               merged.trials_present);
    total.trials_added += merged.trials_added;
    total.trials_present += merged.trials_present;
    total.failures_added += merged.failures_added;
  }
  fmt::print("{}: {} trials added, {} already there, {} failed trials recorded\n", db,
             total.trials_added, total.trials_present, total.failures_added);
  return 0;
}

int command_report(const std::string& db, const std::string& experiment, const std::string& output) {
  lowbit::ResultStore store(db, lowbit::StoreAccess::read_only);
  lowbit::ReportOptions options;
  options.experiment = experiment;
  if (!experiment.empty()) options.title = "lowbit results: " + experiment;
  lowbit::write_report(store, output, options);
  fmt::print("wrote {}\n", output);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  lowbit::keep_freed_host_memory();
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
  std::string shard = "0/1";
  run->add_option("--shard", shard, "train only shard i of N of the sweep's trials (\"i/N\")");
  std::string shard_by = "position";
  run->add_option("--shard-by", shard_by,
                  "how trials are dealt to shards: position (even shares, shards on one database) "
                  "or trial (trial index t of every run to shard t mod N: shards with databases "
                  "of their own, as Slurm's)")
      ->check(CLI::IsMember({"position", "trial"}))
      ->capture_default_str();
  int jobs = 1;
  run->add_option("--jobs", jobs, "run N trials at once, in N processes sharing the database")
      ->check(CLI::Range(1, 1024));
  std::vector<std::string> gpus;
  run->add_option("--gpus", gpus, "GPU ids the jobs are spread over (round robin)")->delimiter(',');

  auto* slurm = app.add_subcommand("slurm", "write a Slurm job-array script for an experiment");
  std::string slurm_file;
  std::string slurm_output;
  lowbit::SlurmOptions slurm_options;
  slurm_options.shard_folder = "results/shards";
  slurm->add_option("experiment", slurm_file, "experiment JSON file")->required()->check(CLI::ExistingFile);
  slurm->add_option("--shards", slurm_options.shards, "array tasks (each its own database)")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  slurm->add_option("--shard-folder", slurm_options.shard_folder, "where the shard databases go")->capture_default_str();
  slurm->add_option("--cpus-per-task", slurm_options.cpus_per_task, "CPUs (and threads) per task")
      ->capture_default_str()->check(CLI::PositiveNumber);
  slurm->add_option("--partition", slurm_options.partition, "partition (default: the cluster's)");
  slurm->add_option("--time", slurm_options.time_limit, "time limit per task, e.g. 04:00:00");
  slurm->add_option("--device", slurm_options.device, "auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str();
  slurm->add_option("-o,--output", slurm_output, "script file (default: <shard-folder>/<name>.sbatch)");

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
  lowbit::TableOptions table_options;
  table->add_flag("--strategy-columns", table_options.strategy_columns,
                  "paper-style columns: Baseline, +TS, +PP, +SP+KD, ... under each model and quantizer");
  table->add_flag("--vs-baseline", table_options.vs_baseline,
                  "runs with strategies: difference to their baseline, paired by trial, with a "
                  "95% t-interval (marked when it excludes 0)");
  table->add_flag("--show-cost", table_options.show_cost,
                  "a Cost row under each precision: mean epochs trained and training images seen "
                  "per trial");

  auto* bench = app.add_subcommand("bench", "time training steps at full precision and quantized");
  lowbit::StepBenchOptions bench_options;
  std::string bench_precision = "2W2A";
  std::string bench_device = "auto";
  int64_t bench_threads = 0;
  bench->add_option("--model", bench_options.model, "model of the zoo")->capture_default_str();
  bench->add_option("--quantizer", bench_options.quantizer, "quantizer")->capture_default_str();
  bench->add_option("--precision", bench_precision, "quantized setting, e.g. 2W2A")->capture_default_str();
  bench->add_option("--batch", bench_options.batch_size, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_option("--channels", bench_options.channels, "input channels")->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_option("--image-size", bench_options.image_size, "input height and width")->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_option("--classes", bench_options.classes, "classes")->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_option("--steps", bench_options.steps, "timed steps")->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_option("--warmup", bench_options.warmup_steps, "untimed steps first")->capture_default_str()->check(CLI::NonNegativeNumber);
  bench->add_option("--device", bench_device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str();
  bench->add_option("--threads", bench_threads, "intra-op threads (0: every hardware thread)")->check(CLI::NonNegativeNumber);
  std::string bench_quantizer_options = "{}";
  std::string bench_kd_options;
  bench->add_option("--quantizer-options", bench_quantizer_options, "the quantizer's options as a JSON object")->capture_default_str();
  bench->add_flag("--kd", bench_options.kd, "also time the quantized setting with joint knowledge distillation");
  bench->add_option("--kd-options", bench_kd_options, "the kd strategy's options as a JSON object (default {\"loss\": \"posterior\"}, as bench/reference.py)");
  bench->add_flag("--channels-last", bench_options.performance.channels_last, "NHWC layout for inputs and 4-d parameters");
  bench->add_option("--mixed-precision", bench_options.performance.mixed_precision, "off or bf16 (autocast)")->check(CLI::IsMember({"off", "bf16"}))->capture_default_str();
  bench->add_flag("--cudnn-benchmark", bench_options.performance.cudnn_benchmark, "let cuDNN time and pick convolution algorithms");

  auto* merge = app.add_subcommand("merge", "add shard databases' trials to a database, without duplicates");
  std::string merge_db = "results/lowbit.db";
  std::vector<std::string> merge_sources;
  merge->add_option("--db", merge_db, "database to merge into (created if absent)")->capture_default_str();
  merge->add_option("databases", merge_sources, "databases to take trials from")
      ->required()->check(CLI::ExistingFile);

  auto* report = app.add_subcommand("report", "write a self-contained HTML report (tables, curves)");
  std::string report_db = "results/lowbit.db";
  std::string report_experiment;
  std::string report_output = "results/report.html";
  report->add_option("--db", report_db, "results database")->capture_default_str()->check(CLI::ExistingFile);
  report->add_option("--experiment", report_experiment, "only this experiment (default: all)");
  report->add_option("-o,--output", report_output, "HTML file to write")->capture_default_str();

  auto* export_cmd = app.add_subcommand(
      "export", "write a trained trial's tensors (with quantized weights' integer codes) for torch.load");
  std::string export_db = "results/lowbit.db";
  lowbit::RunSelector selector;
  int64_t export_trial = 0;
  std::string export_output;
  export_cmd->add_option("--db", export_db, "results database")->capture_default_str()->check(CLI::ExistingFile);
  export_cmd->add_option("--run", selector.hash_prefix, "run hash (or a unique prefix)");
  export_cmd->add_option("--experiment", selector.experiment, "select the run by experiment name");
  export_cmd->add_option("--model", selector.model, "select the run by model");
  export_cmd->add_option("--method", selector.method, "select the run by method, e.g. dorefa");
  export_cmd->add_option("--precision", selector.precision, "select the run by precision, e.g. 2W2A");
  export_cmd->add_option("--trial", export_trial, "trial index")->capture_default_str()->check(CLI::NonNegativeNumber);
  export_cmd->add_option("-o,--output", export_output, "file to write (.pt)")->required();

  CLI11_PARSE(app, argc, argv);

  try {
    if (table->parsed()) return command_table(table_db, experiment, format, output, table_options);
    if (report->parsed()) return command_report(report_db, report_experiment, report_output);
    if (merge->parsed()) return command_merge(merge_db, merge_sources);
    Environment env;
    load_components(env, plugin_dirs);
    if (export_cmd->parsed()) {
      lowbit::ResultStore store(export_db, lowbit::StoreAccess::read_only);
      lowbit::export_trial(env.registry, store, selector, export_trial, export_output);
      fmt::print("wrote {}\n", export_output);
      return 0;
    }
    if (run->parsed()) {
      std::tie(sweep.shard_index, sweep.shard_count) = lowbit::parse_shard(shard);
      sweep.shard_by = shard_by == "trial" ? lowbit::ShardBy::trial_index : lowbit::ShardBy::position;
      if (jobs > 1 && !dry_run) {
        if (sweep.shard_count > 1) throw std::invalid_argument("--jobs and --shard do not combine");
        return command_run_parallel(env, files, db, sweep, plugin_dirs, jobs, gpus);
      }
      return command_run(env, files, db, sweep, dry_run);
    }
    if (slurm->parsed()) return command_slurm(env, slurm_file, slurm_options, slurm_output, plugin_dirs);
    if (bench->parsed()) {
      return command_bench(env, bench_options, bench_precision, bench_device, bench_threads,
                           bench_quantizer_options, bench_kd_options);
    }
    return command_plugins(env);
  } catch (const std::exception& e) {
    std::cerr << "lowbit: error: " << lowbit::exception_message(e) << "\n";
    return 1;
  }
}
