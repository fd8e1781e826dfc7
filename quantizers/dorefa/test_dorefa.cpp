// DoReFa against the golden vectors of tests/data/golden_dorefa_kd.json (computed with the authors'
// own quantization.py), the hand-checked vectors of the quantizer spec (§7.5), and the plugin's
// modules as the harness builds them: through the registry, from the plugin's entry point.

#include "dorefa.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/quantizer.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/plugin_test.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace {

using lowbit::testing::check_close;
using lowbit::testing::tensor_from_json;
using lowbit::testing::values;
using nlohmann::json;
using namespace lowbit::dorefa;

using lowbit::testing::kTolerance;

const json& golden() {
  static const json data =
      lowbit::testing::read_json_file(std::string(LOWBIT_TEST_DATA_DIR) + "/golden_dorefa_kd.json");
  return data;
}

struct Result {
  torch::Tensor out;
  torch::Tensor grad;
};

/// out = f(input) and d/d(input) of sum(out * upstream).
template <typename F>
Result run(const torch::Tensor& input, const torch::Tensor& upstream, F f) {
  auto leaf = input.clone().requires_grad_(true);
  auto out = f(leaf);
  (out * upstream).sum().backward();
  return {out.detach(), leaf.grad()};
}

const json& weight_inputs() { return golden().at("inputs"); }

lowbit::Registry& registry() {
  static lowbit::Registry registry = [] {
    lowbit::Registry r;
    r.set_origin("test");
    lowbit_plugin_entry()->register_components(r);
    return r;
  }();
  return registry;
}

std::unique_ptr<lowbit::Quantizer> make_quantizer(const json& options) {
  lowbit::JsonReader reader(options, "run.json", "/quantizer/options");
  auto quantizer = registry().quantizer("dorefa")(reader);
  reader.reject_unknown_keys();
  return quantizer;
}

const std::vector<int> kBits = {1, 2, 3, 4, 8};

}  // namespace

TEST_CASE("quantize_unit rounds half to even (spec 7.5)", "[dorefa]") {
  const auto r = values({0.f, 0.1f, 1.f / 6, 0.2f, 0.3f, 0.5f, 0.7f, 5.f / 6, 0.9f, 1.f});
  check_close(quantize_unit(r, 1), values({0, 0, 0, 0, 0, 0, 1, 1, 1, 1}));
  check_close(quantize_unit(r, 2),
              values({0, 0, 0, 1.f / 3, 1.f / 3, 2.f / 3, 2.f / 3, 2.f / 3, 1, 1}));
  check_close(quantize_unit(r, 3), values({0, 1.f / 7, 1.f / 7, 1.f / 7, 2.f / 7, 4.f / 7, 5.f / 7,
                                           6.f / 7, 6.f / 7, 1}));
  auto grad =
      run(r, torch::ones_like(r), [](const torch::Tensor& t) { return quantize_unit(t, 2); });
  check_close(grad.grad, torch::ones_like(r));
}

TEST_CASE("weights k>=2 match the authors' code, gradient through the max", "[dorefa][golden]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto g = tensor_from_json(weight_inputs().at("g_w"));
  for (int k : {2, 3, 4, 8}) {
    DYNAMIC_SECTION("k=" << k) {
      const auto& expected = golden().at("weight").at("k" + std::to_string(k));
      auto got = run(w, g, [k](const torch::Tensor& t) { return quantize_weight(t, k); });
      check_close(got.out, tensor_from_json(expected.at("out_authors")));
      check_close(got.grad, tensor_from_json(expected.at("grad_authors")));
    }
  }
}

TEST_CASE("weights with detach_max match grad_max_detached", "[dorefa][golden]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto g = tensor_from_json(weight_inputs().at("g_w"));
  for (int k : kBits) {
    DYNAMIC_SECTION("k=" << k) {
      const auto& expected = golden().at("weight").at("k" + std::to_string(k));
      const auto options = WeightOptions().detach_max(true).k1_weights(K1Weights::authors);
      auto got = run(w, g, [&](const torch::Tensor& t) { return quantize_weight(t, k, options); });
      check_close(got.out, tensor_from_json(expected.at("out_authors")));
      check_close(got.grad, tensor_from_json(expected.at("grad_max_detached")));
      // Only the argmax element may differ, and here it does.
      const auto through_max = tensor_from_json(expected.at("grad_authors"));
      CHECK((got.grad - through_max).abs().gt(kTolerance).sum().item<int64_t>() == 1);
    }
  }
}

TEST_CASE("weights k=1, authors' form: the generic formula, unscaled +-1", "[dorefa][golden]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto g = tensor_from_json(weight_inputs().at("g_w"));
  const auto& expected = golden().at("weight").at("k1");
  const auto options = WeightOptions().k1_weights(K1Weights::authors);
  auto got = run(w, g, [&](const torch::Tensor& t) { return quantize_weight(t, 1, options); });
  check_close(got.out, tensor_from_json(expected.at("out_authors")));
  check_close(got.grad, tensor_from_json(expected.at("grad_authors")));
  CHECK(got.out.abs().eq(1).all().item<bool>());
}

TEST_CASE("weights k=1, default: sign(w) * mean|w|, identity gradient", "[dorefa][golden]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto g = tensor_from_json(weight_inputs().at("g_w"));
  const auto& expected = golden().at("weight").at("k1_special");
  auto got = run(w, g, [](const torch::Tensor& t) { return quantize_weight(t, 1); });
  check_close(got.out, tensor_from_json(expected.at("out_bwn_tensorpack")));
  check_close(got.grad, tensor_from_json(expected.at("grad_bwn_tensorpack")));
  // The corrected golden gradient is the upstream gradient itself (spec 1.2).
  check_close(got.grad, g);
  CHECK(got.out.abs().max().item<double>() ==
        Approx(expected.at("E_mean_abs_w").get<double>()).margin(kTolerance));
}

TEST_CASE("weights k=1, option \"scaled\" gradient: E * dL/dw_q", "[dorefa]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto g = tensor_from_json(weight_inputs().at("g_w"));
  const auto& expected = golden().at("weight").at("k1_special");
  auto got = run(w, g, [](const torch::Tensor& t) {
    return quantize_weight(t, 1, WeightOptions().k1_gradient(K1Gradient::scaled));
  });
  check_close(got.out, tensor_from_json(expected.at("out_bwn_tensorpack")));
  check_close(got.grad, g * expected.at("E_mean_abs_w").get<double>());
}

TEST_CASE("weights k=1: sign(0) is +1, so 0 maps to +E", "[dorefa]") {
  const auto w = values({-1.f, -0.5f, -0.1f, 0.f, 0.2f, 0.6f, 1.5f});
  const float e = 0.5571429f;
  check_close(quantize_weight(w, 1), values({-e, -e, -e, e, e, e, e}));
  check_close(quantize_weight(-torch::zeros({2}), 1), torch::zeros({2}));  // E = 0: all zero
  CHECK(quantize_weight(values({-0.f, 2.f}), 1)[0].item<float>() == Approx(1.f));
}

TEST_CASE("weights k=2 on the spec's vector (spec 7.5)", "[dorefa]") {
  const auto w = values({-1.f, -0.5f, -0.1f, 0.f, 0.2f, 0.6f, 1.5f});
  const auto c = values({1, 2, 3, 4, 5, 6, 7});
  const float third = 1.f / 3;
  auto through = run(w, c, [](const torch::Tensor& t) { return quantize_weight(t, 2); });
  check_close(through.out, values({-1, -third, -third, third, third, third, 1}));
  check_close(through.grad, values({0.463984f, 1.7377213f, 3.2814503f, 4.4191656f, 5.30876f,
                                    4.71687f, -0.4906099f}));
  auto detached = run(w, c, [](const torch::Tensor& t) {
    return quantize_weight(t, 2, WeightOptions().detach_max(true));
  });
  check_close(detached.grad, values({0.463984f, 1.7377213f, 3.2814503f, 4.4191656f, 5.30876f,
                                     4.71687f, 1.3975018f}));
}

TEST_CASE("k=32 is identity for weights and ReLU for activations", "[dorefa]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto g = tensor_from_json(weight_inputs().at("g_w"));
  auto got = run(w, g, [](const torch::Tensor& t) { return quantize_weight(t, 32); });
  check_close(got.out, w);
  check_close(got.grad, g);
  CHECK(quantize_unit(w, 32).equal(w));
  const auto x = tensor_from_json(weight_inputs().at("x"));
  check_close(quantize_activation(x, 32), torch::relu(x));
}

TEST_CASE("bit-widths outside 1..32 are refused", "[dorefa]") {
  const auto w = torch::ones({3});
  CHECK_THROWS_WITH(quantize_weight(w, 0), Catch::Contains("1..32") && Catch::Contains("got 0"));
  CHECK_THROWS(quantize_activation(w, 33));
  CHECK_THROWS(quantize_unit(w, -1));
}

TEST_CASE("activations match the authors' code", "[dorefa][golden]") {
  const auto x = tensor_from_json(weight_inputs().at("x"));
  const auto g = tensor_from_json(weight_inputs().at("g_x"));
  for (int k : kBits) {
    DYNAMIC_SECTION("k=" << k) {
      const auto& expected = golden().at("activation").at("k" + std::to_string(k));
      auto got = run(x, g, [k](const torch::Tensor& t) { return quantize_activation(t, k); });
      check_close(got.out, tensor_from_json(expected.at("out_authors")));
      check_close(got.grad, tensor_from_json(expected.at("grad_authors")));
    }
  }
}

TEST_CASE("activations at the edges: gradient 1 on the closed interval [0,1]", "[dorefa][golden]") {
  const auto& edge = golden().at("activation_edge");
  const auto x = tensor_from_json(edge.at("x"));
  for (int k : {1, 2, 3}) {
    DYNAMIC_SECTION("k=" << k) {
      const auto& expected = edge.at("k" + std::to_string(k));
      auto got = run(x, torch::ones_like(x),
                     [k](const torch::Tensor& t) { return quantize_activation(t, k); });
      check_close(got.out, tensor_from_json(expected.at("out")));
      check_close(got.grad, tensor_from_json(expected.at("grad_with_g_ones")));
    }
  }
  auto bounds = run(values({0.f, 1.f, -1e-7f, 1.0000001f}), torch::ones({4}),
                    [](const torch::Tensor& t) { return quantize_activation(t, 2); });
  check_close(bounds.grad, values({1, 1, 0, 0}));
}

TEST_CASE("the plugin registers \"dorefa\" with a summary", "[dorefa][plugin]") {
  const auto* info = lowbit_plugin_entry();
  CHECK(info->api_version == LOWBIT_PLUGIN_API_VERSION);
  CHECK(std::string(info->name) == "dorefa");
  CHECK(std::string(info->build_id) == LOWBIT_BUILD_ID);
  const auto& component = registry().info(lowbit::ComponentKind::quantizer, "dorefa");
  CHECK(component.origin == "test");
  CHECK_FALSE(component.summary.empty());
}

TEST_CASE("modules from the factory quantize, and follow set_bits and full precision",
          "[dorefa][plugin]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto x = tensor_from_json(weight_inputs().at("x"));
  const auto quantizer = make_quantizer(json::object());
  lowbit::LayerContext layer{"layer1.0.conv1", "layer1.0", 3, 4, 1, ""};

  auto weights = quantizer->weight_quantizer(layer, 2);
  CHECK(weights->context().name == "layer1.0.conv1");
  check_close(weights->forward(w),
              tensor_from_json(golden().at("weight").at("k2").at("out_authors")));
  weights->set_bits(1);
  check_close(weights->forward(w),
              tensor_from_json(golden().at("weight").at("k1_special").at("out_bwn_tensorpack")));
  weights->set_full_precision(true);
  CHECK(weights->forward(w).equal(w));
  weights->set_full_precision(false);
  weights->set_bits(32);
  CHECK(weights->forward(w).equal(w));
  CHECK_THROWS(weights->set_bits(33));

  auto activations = quantizer->activation_quantizer(layer, 4);
  check_close(activations->forward(x),
              tensor_from_json(golden().at("activation").at("k4").at("out_authors")));
  activations->set_full_precision(true);
  CHECK(activations->forward(x).equal(torch::relu(x)));
  CHECK(activations->bits() == 4);
  activations->set_full_precision(false);
  activations->set_bits(8);
  check_close(activations->forward(x),
              tensor_from_json(golden().at("activation").at("k8").at("out_authors")));
  activations->set_bits(32);
  CHECK(activations->forward(x).equal(torch::relu(x)));
}

TEST_CASE("factory options select the k=1 form and the max gradient", "[dorefa][plugin]") {
  const auto w = tensor_from_json(weight_inputs().at("w"));
  const auto g = tensor_from_json(weight_inputs().at("g_w"));
  lowbit::LayerContext layer{"conv", "", 3, 4, 1, ""};
  const auto& k1 = golden().at("weight").at("k1");

  auto authors = make_quantizer({{"k1_weights", "authors"}})->weight_quantizer(layer, 1);
  auto got = run(w, g, [&](const torch::Tensor& t) { return authors->forward(t); });
  check_close(got.out, tensor_from_json(k1.at("out_authors")));
  check_close(got.grad, tensor_from_json(k1.at("grad_authors")));

  auto detached =
      make_quantizer({{"k1_weights", "scaled"}, {"detach_max", true}})->weight_quantizer(layer, 3);
  got = run(w, g, [&](const torch::Tensor& t) { return detached->forward(t); });
  check_close(got.grad, tensor_from_json(golden().at("weight").at("k3").at("grad_max_detached")));
}

TEST_CASE("a held (full-precision) activation is ReLU, or clip(x, 0, 1) as an option",
          "[dorefa][plugin]") {
  lowbit::LayerContext layer{"layer1.0.act1", "layer1.0", 4, 4, 1, ""};
  const auto x = values({-0.5f, 0.25f, 0.6f, 1.7f});
  auto relu = make_quantizer(json::object())->activation_quantizer(layer, 2);
  relu->set_full_precision(true);
  check_close(relu->forward(x), values({0.f, 0.25f, 0.6f, 1.7f}));
  auto clip =
      make_quantizer({{"full_precision_activation", "clip"}})->activation_quantizer(layer, 2);
  clip->set_full_precision(true);
  check_close(clip->forward(x), values({0.f, 0.25f, 0.6f, 1.f}));
  clip->set_full_precision(false);
  check_close(clip->forward(x), values({0.f, 1.f / 3, 2.f / 3, 1.f}));
  clip->set_bits(32);
  check_close(clip->forward(x), values({0.f, 0.25f, 0.6f, 1.f}));
}

TEST_CASE("factory errors name the field and the allowed values", "[dorefa][plugin]") {
  CHECK_THROWS_MATCHES(make_quantizer({{"k1_weights", "ternary"}}), lowbit::ConfigError,
                       Catch::Matchers::Predicate<lowbit::ConfigError>(
                           [](const lowbit::ConfigError& e) {
                             return e.pointer() == "/quantizer/options/k1_weights" &&
                                    e.allowed() == "scaled, authors";
                           },
                           "pointer /quantizer/options/k1_weights, allowed \"scaled, authors\""));
  CHECK_THROWS_WITH(make_quantizer({{"k1_weights", "ternary"}}),
                    Catch::Contains("run.json") && Catch::Contains("ternary") &&
                        Catch::Contains("scaled, authors"));
  CHECK_THROWS_WITH(make_quantizer({{"detach_max", "yes"}}),
                    Catch::Contains("detach_max") && Catch::Contains("true or false"));
  CHECK_THROWS_WITH(make_quantizer({{"detachmax", true}}), Catch::Contains("unknown field") &&
                                                               Catch::Contains("detach_max") &&
                                                               Catch::Contains("k1_weights"));
}
