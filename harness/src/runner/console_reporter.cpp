#include <lowbit/runner/claims.h>
#include <lowbit/runner/console_reporter.h>
#include <lowbit/sdk/precision.h>

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <cmath>
#include <map>

namespace lowbit {
namespace {

/// Strategy metrics for the progress line, e.g. " teacher_top1 91.2".
std::string format_extra(const std::map<std::string, double>& extra) {
  std::string text;
  for (const auto& [key, value] : extra) text += fmt::format(" {} {:.4g}", key, value);
  return text;
}

/// "45s", "3m07s", "2h05m".
std::string format_duration(double seconds) {
  auto total = static_cast<int64_t>(std::llround(seconds));
  if (total >= 3600) return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

}  // namespace

void ConsoleReporter::on_checkpoint_unreadable(const TrialContext& trial,
                                               const std::string& checkpoint,
                                               const std::string& reason) {
  fmt::print(out_, "{} cannot read the checkpoint {} ({}); the trial starts over\n", trial.label,
             checkpoint, reason);
}

void ConsoleReporter::on_trial_resumed(const TrialContext& trial, int64_t epochs_done,
                                       int64_t total_epochs, const std::string& checkpoint) {
  fmt::print(out_, "{} resumed after epoch {}/{} from {}\n", trial.label, epochs_done, total_epochs,
             checkpoint);
}

void ConsoleReporter::on_epoch(const TrialContext& trial, const EpochRecord& epoch,
                               const EpochProgress& progress) {
  fmt::print(out_,
             "{} epoch {}/{} [{} {}] loss {:.4f} train {:.2f}% test {:.2f}% top5 {:.2f}% "
             "lr {:.4g} {:.0f} img/s ETA {}{}\n",
             trial.label, epoch.epoch, progress.total_epochs, epoch.stage,
             precision_label(epoch.weight_bits, epoch.activation_bits), epoch.train_loss,
             epoch.train_top1, epoch.test_top1, epoch.test_top5, epoch.learning_rate,
             epoch.images_per_second, format_duration(progress.eta_seconds),
             format_extra(epoch.extra));
  out_.flush();
}

void ConsoleReporter::on_sweep_begin(const SweepContext& sweep) {
  fmt::print(out_, "{}: {} runs x {} trials on {} ({} threads), data {} ({} train / {} test)\n",
             sweep.experiment, sweep.runs, sweep.trials, sweep.device.str(), sweep.threads,
             sweep.data, sweep.train_images, sweep.test_images);
}

void ConsoleReporter::on_trial_skipped(const TrialContext& trial, const TrialClaim& claim) {
  if (claim.outcome == TrialClaim::Outcome::finished) {
    fmt::print(out_, "{} already finished, skipped\n", trial.label);
  } else if (claim.outcome == TrialClaim::Outcome::owned_elsewhere) {
    fmt::print(out_, "{} being trained by {}, skipped\n", trial.label, describe(claim.holder));
  }
}

void ConsoleReporter::on_trial_taken_over(const TrialContext& trial, const ClaimOwner& stopped) {
  fmt::print(out_, "{} taking over from {}, which stopped\n", trial.label, describe(stopped));
}

void ConsoleReporter::on_trial_needed_first(const TrialContext& trial) {
  fmt::print(out_, "{} is what the next trial starts from; training it first\n", trial.label);
}

void ConsoleReporter::on_trial_waiting(const TrialContext& trial, const ClaimOwner& holder) {
  fmt::print(out_, "{} waiting for {}, which trains it\n", trial.label, describe(holder));
  out_.flush();
}

void ConsoleReporter::on_trial_failed(const TrialContext& trial, const std::string& error) {
  fmt::print(out_, "{} FAILED: {}\n", trial.label, error);
}

void ConsoleReporter::on_trial_reused(const TrialContext& trial, const std::string& experiment) {
  fmt::print(out_, "{} reused: experiment {} finished it under the same run hash\n", trial.label,
             experiment);
}

void ConsoleReporter::on_source_trained_again(const TrialContext& trial, const std::string& path,
                                              const TrialRecord& recorded,
                                              const TrialRecord& again) {
  const bool same = recorded.top1 == again.top1 && recorded.final_loss == again.final_loss;
  fmt::print(out_, "{} trained again, as {} was missing: top-1 {} (recorded {}){}\n", trial.label,
             path, again.top1, recorded.top1,
             same ? ", the same to the last bit"
                  : "; it differs: the trials that started from the recorded weights started "
                    "from other ones");
}

void ConsoleReporter::on_trial_end(const TrialContext& trial, const TrialRecord& record) {
  if (record.status != TrialStatus::finished) return;
  fmt::print(out_, "{} finished: top-1 {:.2f}% top-5 {:.2f}% in {:.1f}s ({:.0f} img/s)\n",
             trial.label, record.top1, record.top5, record.wall_seconds, record.images_per_second);
}

void ConsoleReporter::on_trial_not_recorded(const TrialContext& trial, const std::string& reason) {
  fmt::print(out_, "{} not recorded: {}\n", trial.label, reason);
}

}  // namespace lowbit
