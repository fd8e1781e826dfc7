#include <lowbit/util/atomic_file.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace lowbit {
namespace {

[[noreturn]] void fail(int error, const std::string& what) {
  throw StorageError(fmt::format("{} while {}", std::strerror(error), what));
}

/// An open temporary file that remembers the first write error instead of throwing it: the
/// producer (LibTorch's archive writer) must never see an exception from its sink, since it
/// would throw again from a destructor and abort the process.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail(errno, "creating " + path_);
  }
  ~TemporaryFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!kept_) ::unlink(path_.c_str());
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  size_t write(const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    size_t left = error_ == 0 ? size : 0;
    while (left > 0) {
      const ssize_t written = ::write(fd_, bytes, left);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) {
        error_ = written < 0 ? errno : ENOSPC;
        break;
      }
      bytes += written;
      left -= static_cast<size_t>(written);
    }
    return size;
  }

  /// Flushes and closes; throws the first error met on the way.
  void finish(const std::string& target) {
    // Some file systems report a full disk only when the data is flushed.
    if (error_ == 0 && ::fsync(fd_) != 0 && errno != EINVAL) error_ = errno;
    const int closed = ::close(fd_);
    fd_ = -1;
    if (error_ == 0 && closed != 0) error_ = errno;
    if (error_ != 0) fail(error_, "writing " + target);
    if (::rename(path_.c_str(), target.c_str()) != 0)
      fail(errno, "moving the finished file to " + target);
    kept_ = true;
  }

 private:
  std::string path_;
  int fd_ = -1;
  int error_ = 0;
  bool kept_ = false;
};

}  // namespace

std::string temporary_path(const std::string& path) {
  return fmt::format("{}.tmp-{}", path, ::getpid());
}

void create_folder(const std::string& folder) {
  if (folder.empty()) return;
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error) fail(error.value(), "creating the folder " + folder);
}

void write_file_atomically(const std::string& path,
                           const std::function<void(const ByteSink&)>& produce) {
  create_folder(std::filesystem::path(path).parent_path().string());
  TemporaryFile file(temporary_path(path));
  produce([&file](const void* data, size_t size) { return file.write(data, size); });
  file.finish(path);
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&text](const ByteSink& sink) { sink(text.data(), text.size()); });
}

}  // namespace lowbit
