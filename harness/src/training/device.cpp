#include <lowbit/training/device.h>

#include <stdexcept>

namespace lowbit {

const NameTable<DeviceChoice>& device_choices() {
  static const NameTable<DeviceChoice> names{
      {"auto", DeviceChoice::automatic}, {"cpu", DeviceChoice::cpu}, {"cuda", DeviceChoice::cuda}};
  return names;
}

std::string to_string(DeviceChoice choice) { return name_of(device_choices(), choice); }

DeviceChoice parse_device_choice(const std::string& name) {
  return value_named(device_choices(), name, "device");
}

torch::Device resolve_device(DeviceChoice choice) {
  switch (choice) {
    case DeviceChoice::cpu:
      return torch::kCPU;
    case DeviceChoice::cuda:
      if (!torch::cuda::is_available()) {
        throw std::runtime_error(
            "device \"cuda\" was asked for, but this LibTorch sees no GPU (allowed here: auto, "
            "cpu)");
      }
      return torch::kCUDA;
    case DeviceChoice::automatic:
      return torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  }
  throw std::logic_error("unknown device choice");
}

torch::Device resolve_device(const std::string& requested) {
  return resolve_device(parse_device_choice(requested));
}

}  // namespace lowbit
