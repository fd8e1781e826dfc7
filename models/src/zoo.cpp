#include <lowbit/models/resnet_cifar.h>
#include <lowbit/models/zoo.h>

#include <fmt/format.h>

namespace lowbit::models {
namespace {

ModelFactory cifar_resnet(int64_t depth, bool preactivation) {
  return [depth, preactivation](const ModelSpec& spec, LayerFactory& layers) {
    auto options = CifarResNetOptions(depth).preactivation(preactivation).data(spec);
    return std::static_pointer_cast<NetworkImpl>(std::make_shared<CifarResNetImpl>(options, layers));
  };
}

}  // namespace

void register_builtin_models(Registry& registry) {
  for (int64_t depth : {20, 32, 56}) {
    registry.add_model(fmt::format("resnet{}", depth),
                       fmt::format("CIFAR-style ResNet-{} (16/32/64 channels, projection shortcuts)", depth),
                       cifar_resnet(depth, false));
    registry.add_model(fmt::format("preresnet{}", depth),
                       fmt::format("CIFAR-style pre-activation ResNet-{}", depth),
                       cifar_resnet(depth, true));
  }
}

}  // namespace lowbit::models
