#include <lowbit/results/records.h>

namespace lowbit {

const NameTable<TrialStatus>& trial_statuses() {
  static const NameTable<TrialStatus> names{{"finished", TrialStatus::finished},
                                            {"failed", TrialStatus::failed}};
  return names;
}

std::string to_string(TrialStatus status) { return name_of(trial_statuses(), status); }

TrialStatus parse_trial_status(const std::string& name) {
  return value_named(trial_statuses(), name, "trial status");
}

}  // namespace lowbit
