#pragma once

#include <lowbit/sdk/registry.h>

namespace lowbit::models {

/// Adds the built-in models to `registry`.
void register_builtin_models(Registry& registry);

}  // namespace lowbit::models
