// `lowbit plugins`: every model, quantizer and strategy with where it came from, which quantizer
// builds which model, and the plugins that failed to load.

#include "commands.h"

#include <lowbit/plugins/support_table.h>

#include <fmt/format.h>

namespace lowbit::cli {
namespace {

int command_plugins(Environment& env) {
  // Failures are listed, not thrown: this is the command that says what is wrong with a plugin.
  auto& components = env.components();
  for (const auto& component : components.registry.components()) {
    fmt::print("{:<10} {:<14} {}\n{:<25} from {}\n", to_string(component.kind), component.name,
               component.summary, "", component.origin);
  }
  fmt::print(
      "\nWhich quantizer builds which model (default options; \"no N\": refused, note N):\n{}",
      render_support_table(quantizer_support(components.registry)));
  for (const auto& failure : components.failures) fmt::print("FAILED     {}\n", failure.reason);
  return components.failures.empty() ? 0 : 1;
}

}  // namespace

void add_plugins(CLI::App& app, Handler& handler) {
  auto* command = app.add_subcommand(
      "plugins", "list models, quantizers and strategies and where they come from");
  command->callback([&handler] { handler = command_plugins; });
}

}  // namespace lowbit::cli
