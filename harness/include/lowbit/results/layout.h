#pragma once
// Where a database keeps its files. Everything belongs to one database file and lives in a folder
// named after it, `<database>.d/` (results/lowbit.db → results/lowbit.db.d/), so two databases in
// one folder never resume each other's checkpoints or overwrite each other's weights:
//   <database>.d/weights/<run hash>/trial-<i>.pt       a finished trial's parameters and buffers
//   <database>.d/weights/<run hash>/model_spec.json    the data dimensions its networks were built
//   for <database>.d/checkpoints/<run hash>/trial-<i>.ckpt a trial in flight, removed once recorded

#include <cstdint>
#include <string>

namespace lowbit {

/// The database `lowbit run`, `table`, `report`, `export` and `merge` use when --db is not given,
/// and the one a Slurm script's shards are merged into.
inline constexpr const char* kDefaultDatabasePath = "results/lowbit.db";

/// `<database>.d`, absolute.
std::string database_folder(const std::string& database);
std::string trial_weights_path(const std::string& database, const std::string& run_hash,
                               int64_t trial_index);
std::string model_spec_path(const std::string& database, const std::string& run_hash);
std::string trial_checkpoint_path(const std::string& database, const std::string& run_hash,
                                  int64_t trial_index);

}  // namespace lowbit
