#pragma once
// Every file lowbit writes (weights, checkpoints, tables, pages, scripts) goes through a temporary
// file and a rename, so a reader never sees half of it; when the disk is full the temporary is
// removed and the error says so, instead of an abort from a writer throwing in its destructor.

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>

namespace lowbit {

/// The results' files could not be written (no space left, no permission). Not a trial's fault:
/// a sweep stops on it rather than recording every remaining trial as failed.
class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Appends bytes to the file being written; returns how many it took (always all of them).
using ByteSink = std::function<size_t(const void* data, size_t size)>;

/// The temporary file this process writes `path` through: `<path>.tmp-<pid>`, so processes that
/// write the same file at once (trials of one run in two sweeps) never move each other's.
std::string temporary_path(const std::string& path);

/// Creates the parent folder, lets `produce` write the content into temporary_path(path), flushes
/// it to the disk and renames it to `path`. On any failure the temporary is gone and `path`
/// untouched; an operating-system error is a StorageError naming the file ("No space left on device
/// while writing …"), an exception from `produce` passes through.
void write_file_atomically(const std::string& path,
                           const std::function<void(const ByteSink&)>& produce);

/// write_file_atomically for text.
void write_text_atomically(const std::string& path, const std::string& text);

/// Creates `folder` and its parents; a StorageError naming it when that fails.
void create_folder(const std::string& folder);

}  // namespace lowbit
