// LQ-Net against the vectors of the quantizer spec (§7, shared/spec/vectors_quantizers.txt, from a
// mirror of the reference's learned_quantization.py), and the plugin's modules as the harness
// builds them: through the registry, from the plugin's entry point.

#include "lqnet.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/plugin_test.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace lowbit::lqnet;

using lowbit::testing::check_close;
using lowbit::testing::kTolerance;
using lowbit::testing::values;

std::shared_ptr<lowbit::Quantizer> make_quantizer(const nlohmann::json& options = {}) {
  return lowbit::testing::make_plugin_quantizer("lqnet", options);
}

/// The module's buffer itself (a handle sharing its storage).
torch::Tensor buffer(torch::nn::Module& module, const std::string& name) {
  return *module.named_buffers(/*recurse=*/false).find(name);
}

lowbit::LayerContext layer(int64_t out_channels, int64_t kernel = 1) {
  return lowbit::LayerContext{"layer1.0.conv1", "layer1.0", 1, out_channels, kernel, ""};
}

}  // namespace

TEST_CASE("lqnet initial bases match the spec", "[lqnet]") {
  check_close(initial_activation_basis(1), values({1.349}).unsqueeze(1));
  check_close(initial_activation_basis(2), values({0.4496667, 0.8993334}).unsqueeze(1));
  check_close(initial_activation_basis(3), values({0.1927143, 0.3854286, 0.7708572}).unsqueeze(1));
  check_close(initial_activation_basis(4),
              values({0.0899333, 0.1798667, 0.3597333, 0.7194667}).unsqueeze(1));
  // 3x3 conv with 64 output channels: n = 576; every channel starts with the same basis.
  auto k1 = initial_weight_basis(1, 3, 64);
  REQUIRE(k1.sizes() == torch::IntArrayRef({1, 64}));
  check_close(k1.select(1, 17), values({0.0397453}));
  check_close(initial_weight_basis(2, 3, 64).select(1, 0), values({0.0198726, 0.0397453}));
  check_close(initial_weight_basis(3, 3, 64).select(1, 63),
              values({0.0099363, 0.0198726, 0.0397453}));
}

TEST_CASE("lqnet code matrices enumerate bit j of integer i", "[lqnet]") {
  check_close(code_matrix(2, false), values({0, 0, 1, 0, 0, 1, 1, 1}).reshape({4, 2}));
  check_close(code_matrix(2, true), values({-1, -1, 1, -1, -1, 1, 1, 1}).reshape({4, 2}));
}

TEST_CASE("lqnet activation encoding: sorted levels, strict midpoints", "[lqnet]") {
  const auto x = values({0, 0.2, 0.3, 0.6, 0.8, 1.2, 1.3, 1.5, 2.0}).unsqueeze(0);
  auto encoding = encode(x, values({0.5, 1.0}).unsqueeze(1), false);
  check_close(encoding.values[0], values({0, 0, 0.5, 0.5, 1, 1, 1.5, 1.5, 1.5}));
  check_close(encoding.codes[0],
              values({0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1}).reshape({9, 2}));

  // With the initial basis: 1.2 lies above the threshold 1.1241667 and gets the top level.
  auto initial = encode(x, initial_activation_basis(2), false);
  check_close(initial.values[0],
              values({0, 0, 0.4496667, 0.4496667, 0.8993334, 1.349, 1.349, 1.349, 1.349}));
  check_close(initial.codes[0].select(1, 0), values({0, 0, 1, 1, 0, 1, 1, 1, 1}));
}

TEST_CASE("lqnet weight encoding keeps each level's own code", "[lqnet]") {
  const auto x = values({-0.5, -0.31, -0.25, -0.05, 0, 0.05, 0.25, 0.31, 0.5}).unsqueeze(0);
  const auto y = values({-0.4, -0.4, -0.2, -0.2, -0.2, 0.2, 0.2, 0.4, 0.4});
  auto ordered = encode(x, values({0.1, 0.3}).unsqueeze(1), true);
  check_close(ordered.values[0], y);
  // x = 0 sits on the threshold 0 and goes to the lower level -0.2, code (+1, -1).
  check_close(ordered.codes[0].select(1, 0), values({-1, -1, 1, 1, 1, -1, -1, 1, 1}));
  check_close(ordered.codes[0].select(1, 1), values({-1, -1, -1, -1, -1, 1, 1, 1, 1}));

  // v = [0.3, 0.1]: the same levels, but sorted order [0, 2, 1, 3] of the codes.
  auto swapped = encode(x, values({0.3, 0.1}).unsqueeze(1), true);
  check_close(swapped.values[0], y);
  check_close(swapped.codes[0].select(1, 0), values({-1, -1, -1, -1, -1, 1, 1, 1, 1}));
  check_close(swapped.codes[0].select(1, 1), values({-1, -1, 1, 1, 1, -1, -1, 1, 1}));

  auto k3 = encode(values({-0.8, -0.45, -0.2, 0.05, 0.15, 0.42, 0.65}).unsqueeze(0),
                   values({0.1, 0.2, 0.4}).unsqueeze(1), true);
  check_close(k3.values[0], values({-0.7, -0.5, -0.3, 0.1, 0.1, 0.5, 0.7}));
  check_close(k3.codes[0].select(1, 0), values({-1, 1, -1, -1, -1, -1, 1}));
  check_close(k3.codes[0].select(1, 2), values({-1, -1, -1, 1, 1, 1, 1}));
}

TEST_CASE("lqnet weight QEM: per-channel ridge least squares", "[lqnet]") {
  const auto x = torch::stack({values({0.3, -0.12, 0.07, -0.41, 0.18, -0.05}),
                               values({-0.02, 0.05, 0.11, -0.09, 0.01, 0.26})});
  const auto old_basis = torch::stack({values({0.1, 0.2}), values({0.05, 0.1})}, 1);  // [K, C]
  auto encoding = encode(x, old_basis, true);
  check_close(encoding.values[0], values({0.3, -0.1, 0.1, -0.3, 0.1, -0.1}));
  check_close(encoding.values[1], values({-0.05, 0.05, 0.15, -0.05, 0.05, 0.15}));
  auto fitted = fit_weight_basis(x, encoding.codes, old_basis, 1e-4);
  check_close(fitted.select(1, 0), values({0.1249993, 0.2299993}));
  check_close(fitted.select(1, 1), values({0.0712495, 0.1137496}));

  // K = 1: v* is mean|w| up to the ridge.
  auto w = values({0.3, -0.12, 0.07, -0.41, 0.18, -0.05}).unsqueeze(0);
  auto one = encode(w, values({0.1}).unsqueeze(1), true);
  auto scale = fit_weight_basis(w, one.codes, values({0.1}).unsqueeze(1), 1e-4);
  CHECK(scale.item<float>() == Approx(w.abs().mean().item<float>()).epsilon(1e-4));
}

TEST_CASE("lqnet activation QEM: least squares and both moving averages", "[lqnet]") {
  const auto x = values({0, 0, 0.1, 0.4, 0.55, 0.9, 1.1, 1.4, 1.7, 2.3}).unsqueeze(0);
  auto basis = values({0.5, 1.0}).unsqueeze(1);
  auto encoding = encode(x, basis, false);
  check_close(encoding.values[0], values({0, 0, 0, 0.5, 0.5, 1, 1, 1.5, 1.5, 1.5}));
  auto fitted = fit_activation_basis(x, encoding.codes, SingularFit::skip);
  check_close(fitted, values({0.596875, 1.121875}).unsqueeze(1));

  auto plain = basis.clone(), biased = torch::zeros_like(basis);
  auto steps = torch::zeros({}, torch::kLong);
  moving_average(plain, biased, steps, fitted, QemOptions().ema(Ema::plain));
  check_close(plain, values({0.5096875, 1.0121875}).unsqueeze(1));

  auto debiased = basis.clone();
  biased.zero_();
  steps.zero_();
  moving_average(debiased, biased, steps, fitted, QemOptions());
  check_close(debiased, fitted);  // the first zero-debiased update lands exactly on v*
}

TEST_CASE("lqnet zero-debiased EMA sequence", "[lqnet]") {
  auto debiased = torch::zeros({1}), biased = torch::zeros({1}),
       steps = torch::zeros({}, torch::kLong);
  auto plain = torch::full({1}, 0.5f), unused = torch::zeros({1}), plain_steps = steps.clone();
  const std::vector<float> expected_debiased{1.0f, 1.5263158f, 2.0701107f};
  const std::vector<float> expected_plain{0.55f, 0.695f, 0.9255f};
  for (int t = 0; t < 3; ++t) {
    auto target = torch::full({1}, static_cast<float>(t + 1));
    moving_average(debiased, biased, steps, target, QemOptions());
    moving_average(plain, unused, plain_steps, target, QemOptions().ema(Ema::plain));
    CHECK(debiased.item<float>() == Approx(expected_debiased[t]).margin(1e-6));
    CHECK(plain.item<float>() == Approx(expected_plain[t]).margin(1e-6));
  }
  CHECK(steps.item<int64_t>() == 3);
}

TEST_CASE("lqnet singular activation fits: skip or pseudo-inverse", "[lqnet]") {
  // Every input below t_0: bit 1 is never set, B^T B is singular.
  const auto x = values({0.0, 0.1, 0.05, 0.2}).unsqueeze(0);
  auto encoding = encode(x, values({0.5, 1.0}).unsqueeze(1), false);
  CHECK_FALSE(fit_activation_basis(x, encoding.codes, SingularFit::skip).defined());
  auto pinv = fit_activation_basis(x, encoding.codes, SingularFit::pseudo_inverse);
  REQUIRE(pinv.defined());
  CHECK(torch::isfinite(pinv).all().item<bool>());
}

TEST_CASE("lqnet activation module: quantized forward, STE mask, QEM in training only", "[lqnet]") {
  auto quantizer = make_quantizer();
  auto module = quantizer->activation_quantizer(layer(1), 2);
  auto basis = buffer(*module, "basis");
  basis.copy_(values({0.5, 1.0}).unsqueeze(1));
  module->eval();
  auto x = values({-0.3, 0, 0.2, 0.3, 0.6, 0.8, 1.2, 1.3, 1.5, 2.0}).requires_grad_();
  auto y = module->forward(x);
  check_close(y, values({0, 0, 0, 0.5, 0.5, 1, 1, 1.5, 1.5, 1.5}));
  y.sum().backward();
  // ReLU's mask below, 1[x <= q_max] above; x = 1.5 equals q_max and keeps its gradient.
  check_close(x.grad(), values({0, 0, 1, 1, 1, 1, 1, 1, 1, 0}));
  check_close(basis, values({0.5, 1.0}).unsqueeze(1));  // eval: no update

  module->train();
  auto batch = values({0, 0, 0.1, 0.4, 0.55, 0.9, 1.1, 1.4, 1.7, 2.3});
  auto out = module->forward(batch);
  check_close(out, values({0, 0, 0, 0.5, 0.5, 1, 1, 1.5, 1.5, 1.5}));  // the old basis
  check_close(basis, values({0.596875, 1.121875}).unsqueeze(1));       // then the update
  CHECK(buffer(*module, "steps").item<int64_t>() == 1);

  // Held at full precision (SP): ReLU, no update.
  module->set_full_precision(true);
  check_close(module->forward(values({-1, 0.7})), values({0, 0.7}));
  CHECK(buffer(*module, "steps").item<int64_t>() == 1);
}

TEST_CASE("lqnet weight module: per-channel bases as checkpointed buffers", "[lqnet]") {
  auto module = make_quantizer({{"ema", "plain"}})->weight_quantizer(layer(2, 1), 2);
  auto basis = buffer(*module, "basis");
  REQUIRE(basis.sizes() == torch::IntArrayRef({2, 2}));
  // 1x1 conv, 2 output channels: n = 2, base = 0.6745 / 2.
  check_close(basis.select(1, 0), values({0.33725, 0.6745}));
  basis.copy_(torch::stack({values({0.1, 0.2}), values({0.05, 0.1})}, 1));

  auto w = torch::stack({values({0.3, -0.12, 0.07, -0.41, 0.18, -0.05}),
                         values({-0.02, 0.05, 0.11, -0.09, 0.01, 0.26})})
               .reshape({2, 6, 1, 1})
               .requires_grad_();
  module->train();
  auto q = module->forward(w);
  check_close(q.reshape({2, 6})[0], values({0.3, -0.1, 0.1, -0.3, 0.1, -0.1}));
  (q * 3).sum().backward();
  check_close(w.grad(), torch::full({2, 6, 1, 1}, 3.0f));  // identity STE
  // Plain EMA: 0.9 v_old + 0.1 v*.
  check_close(basis.select(1, 0), values({0.1024999, 0.2029999}));
  check_close(basis.select(1, 1), values({0.0521249, 0.101375}));

  // The bases travel in checkpoints.
  std::stringstream stream;
  torch::save(module, stream);
  auto restored = make_quantizer()->weight_quantizer(layer(2, 1), 2);
  torch::load(restored, stream);
  check_close(buffer(*restored, "basis"), basis);

  // PP changing K restarts the basis at the initial values for the new K.
  module->set_bits(3);
  REQUIRE(basis.sizes() == torch::IntArrayRef({3, 2}));
  check_close(basis.select(1, 1), initial_weight_basis(3, 1, 2).select(1, 1));
  CHECK(buffer(*module, "steps").item<int64_t>() == 0);
  module->set_full_precision(true);
  check_close(module->forward(w.detach()), w.detach());
}

TEST_CASE("lqnet options and matrix points", "[lqnet]") {
  CHECK_THROWS_AS(make_quantizer({{"ema", "debias"}}), lowbit::ConfigError);
  CHECK_THROWS_AS(make_quantizer({{"momentum", 1.5}}), lowbit::ConfigError);
  auto quantizer = make_quantizer({{"singular", "pinv"}, {"ridge", 0.0}});
  CHECK(quantizer->supported_bits().describe() == "1..8 or 32");
  CHECK(quantizer->supported_bits().contains(lowbit::Precision{2, 32}));
  CHECK_FALSE(quantizer->supported_bits().contains(lowbit::Precision{16, 16}));
  // Made directly, not through make_weight_quantizer: the module holds itself to 1..8 too.
  CHECK_THROWS_WITH(quantizer->weight_quantizer(layer(4, 3), 12), Catch::Contains("1..8 or 32"));
}
