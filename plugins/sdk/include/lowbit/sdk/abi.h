#pragma once
// The plugin handshake. A plugin exports one C function, `lowbit_plugin_entry`, returning a
// PluginInfo whose first field is the API version. The host reads that field before anything else,
// then compares build ids (LibTorch version, compiler, C++11 string ABI): past the handshake the
// two sides exchange plain C++ objects (modules, std::function, tensors), which is only safe when
// both were built against the same LibTorch by a compatible toolchain.

#include <boost/config.hpp>
#include <torch/version.h>

#include <cstdint>

namespace lowbit {
class Registry;
}

/// Bump whenever a type that crosses the boundary changes layout or meaning.
/// 2: LayerFactory::residual_block, Quantizer::incompatibility/wrap_layers, LayerContext::kernel;
///    Strategy state save/load, cross_entropy_weight, TrainingState model and learning rate.
/// 3: Strategy::models_needed.
/// 4: BlockSpec::kind, ActivationSpec::part, LayerFactory::stem, Quantizer::model_incompatibility.
/// 5: TrainingState::quantizer.
/// 6: TrainingState::build_full_precision_network takes a NetworkStart.
/// 7: LayerContext::input_activation.
/// 8: Quantizer::supported_bits replaces incompatibility; tensor quantizers hold their widths,
///    initialize from data and state their weight grid; const TrainingState with services;
///    Stage::planned; OutsideActivations in LayerFactoryDecorator.
#define LOWBIT_PLUGIN_API_VERSION 8u

#define LOWBIT_STRINGIFY_IMPL(x) #x
#define LOWBIT_STRINGIFY(x) LOWBIT_STRINGIFY_IMPL(x)

#if defined(__clang__)
#define LOWBIT_COMPILER_ID "clang-" LOWBIT_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define LOWBIT_COMPILER_ID "gcc-" LOWBIT_STRINGIFY(__GNUC__)
#else
#define LOWBIT_COMPILER_ID "unknown-compiler"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define LOWBIT_CXX11_ABI LOWBIT_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#else
#define LOWBIT_CXX11_ABI "n/a"
#endif

/// Evaluated where it is expanded, so host and plugin each state how *they* were built.
#define LOWBIT_BUILD_ID \
  "torch=" TORCH_VERSION ";compiler=" LOWBIT_COMPILER_ID ";cxx11abi=" LOWBIT_CXX11_ABI

extern "C" {
struct lowbit_plugin_info {
  uint32_t api_version;  ///< must stay the first field: read before the rest is trusted
  const char* build_id;  ///< LOWBIT_BUILD_ID of the plugin's build
  const char* name;      ///< the plugin's own name, for messages
  /// Adds the plugin's components to the host's registry.
  void (*register_components)(lowbit::Registry& registry);
};
}

#define LOWBIT_PLUGIN_ENTRY_SYMBOL "lowbit_plugin_entry"

/// Defines the entry point of a plugin. Use once per shared library:
///   LOWBIT_PLUGIN("dorefa", register_dorefa)
/// where `void register_dorefa(lowbit::Registry&)` adds the components.
#define LOWBIT_PLUGIN(plugin_name, register_function)                                             \
  extern "C" BOOST_SYMBOL_EXPORT const lowbit_plugin_info* lowbit_plugin_entry();                 \
  extern "C" BOOST_SYMBOL_EXPORT const lowbit_plugin_info* lowbit_plugin_entry() {                \
    static const lowbit_plugin_info info{LOWBIT_PLUGIN_API_VERSION, LOWBIT_BUILD_ID, plugin_name, \
                                         &register_function};                                     \
    return &info;                                                                                 \
  }
