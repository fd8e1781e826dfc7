#include <lowbit/training/options.h>

namespace lowbit {

const NameTable<ScheduleKind>& schedule_kinds() {
  static const NameTable<ScheduleKind> names{{"cosine", ScheduleKind::cosine},
                                             {"multistep", ScheduleKind::multistep}};
  return names;
}

std::string to_string(ScheduleKind kind) { return name_of(schedule_kinds(), kind); }

ScheduleKind parse_schedule_kind(const std::string& name) {
  return value_named(schedule_kinds(), name, "schedule");
}

}  // namespace lowbit
