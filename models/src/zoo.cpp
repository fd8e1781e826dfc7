#include <lowbit/models/alexnet.h>
#include <lowbit/models/resnet.h>
#include <lowbit/models/resnet_cifar.h>
#include <lowbit/models/zoo.h>

#include <fmt/format.h>

namespace lowbit::models {
namespace {

ModelFactory cifar_resnet(int64_t depth, bool preactivation) {
  return [depth, preactivation](const ModelSpec& spec, LayerFactory& layers) {
    auto options = CifarResNetOptions(depth).preactivation(preactivation).data(spec);
    return std::static_pointer_cast<NetworkImpl>(
        std::make_shared<CifarResNetImpl>(options, layers));
  };
}

ModelFactory resnet(int64_t depth, bool preactivation, ResNetStem stem) {
  return [depth, preactivation, stem](const ModelSpec& spec, LayerFactory& layers) {
    auto options = ResNetOptions(depth).preactivation(preactivation).stem(stem).data(spec);
    return std::static_pointer_cast<NetworkImpl>(std::make_shared<ResNetImpl>(options, layers));
  };
}

/// One AlexNet* builder for every width: `options` without the data, which each build fills in.
ModelFactory alexnet(const AlexNetBNOptions& options) {
  return [options](const ModelSpec& spec, LayerFactory& layers) {
    auto built = options;
    built.data(spec);
    return std::static_pointer_cast<NetworkImpl>(std::make_shared<AlexNetBNImpl>(built, layers));
  };
}

}  // namespace

void register_builtin_models(Registry& registry) {
  for (int64_t depth : {20, 32, 44, 56}) {
    registry.add_model(
        fmt::format("resnet{}", depth),
        fmt::format("CIFAR-style ResNet-{} (16/32/64 channels, projection shortcuts)", depth),
        cifar_resnet(depth, false));
    registry.add_model(fmt::format("preresnet{}", depth),
                       fmt::format("CIFAR-style pre-activation ResNet-{}", depth),
                       cifar_resnet(depth, true));
  }
  for (int64_t depth : {18, 34, 50}) {
    const char* block = depth == 50 ? "bottleneck" : "basic";
    registry.add_model(
        fmt::format("resnet{}", depth),
        fmt::format("ResNet-{} ({} blocks, ImageNet stem: 7x7/2 conv, max-pool)", depth, block),
        resnet(depth, false, ResNetStem::imagenet));
    registry.add_model(
        fmt::format("resnet{}_cifar", depth),
        fmt::format("ResNet-{} ({} blocks, CIFAR stem: 3x3/1 conv, no pool)", depth, block),
        resnet(depth, false, ResNetStem::cifar));
    registry.add_model(
        fmt::format("preresnet{}", depth),
        fmt::format("pre-activation ResNet-{} ({} blocks, ImageNet stem)", depth, block),
        resnet(depth, true, ResNetStem::imagenet));
    registry.add_model(
        fmt::format("preresnet{}_cifar", depth),
        fmt::format("pre-activation ResNet-{} ({} blocks, CIFAR stem)", depth, block),
        resnet(depth, true, ResNetStem::cifar));
  }
  registry.add_model("alexnet_bn",
                     "AlexNet with BN and no dropout (the paper's AlexNet*), 96-256-384-384-256 "
                     "convs, 4096-4096 FCs; ImageNet layout (11x11/4 conv1), images >= 63x63",
                     alexnet(AlexNetBNOptions().input(AlexNetInput::imagenet)));
  registry.add_model("alexnet_bn_cifar",
                     "AlexNet* for 32x32 images: the same widths and FCs, 5x5/1 conv1 and padded "
                     "max-pools (32 -> 16 -> 8 -> 4)",
                     alexnet(AlexNetBNOptions().input(AlexNetInput::cifar)));
  // At full width one training step of alexnet_bn_cifar (batch 128, 1x32x32) took 19 s on 2 CPU
  // cores. A quarter of the conv widths and 512-wide FCs cut the parameters 36-fold and the
  // multiply-adds 16.6-fold, and keep what the paper's rules act on: the same layers, kinds and
  // order (full-precision conv1, fc8 and act7 unless quantize_all), BN everywhere, no dropout.
  registry.add_model(
      "alexnet_bn_cifar_small",
      "alexnet_bn_cifar at CPU scale: the same layers in the same order with a quarter of the "
      "widths (24-64-96-96-64 convs) and 512-512 FCs; 1,027,858 parameters and 23.6M "
      "multiply-adds per 1x32x32 image at 10 classes (alexnet_bn_cifar: 37.3M and 392M)",
      alexnet(
          AlexNetBNOptions().input(AlexNetInput::cifar).widths({24, 64, 96, 96, 64}).hidden(512)));
}

}  // namespace lowbit::models
