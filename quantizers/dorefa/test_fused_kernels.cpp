// The fused kernels against the composite LibTorch ops they replace: outputs bit for bit, the
// activation gradient bit for bit, the weight gradient to float rounding (it holds a sum). Sizes
// above ATen's grain so that the CPU loops run split over threads.

#include "dorefa.h"
#include "fused_kernels.h"

#include <lowbit/sdk/testing/skip.h>

#include <catch2/catch.hpp>

#include <limits>

namespace {

using namespace lowbit::dorefa;

const auto kComposite = Kernels::composite;

/// Equal element for element, NaN equal to NaN.
bool same_values(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  return a.eq(b).logical_or(a.isnan().logical_and(b.isnan())).all().item<bool>();
}

/// Activations with every special case: both interval ends, just outside them, the rounding
/// boundaries (j + 1/2) / n of every bit-width tested, infinities, NaN, -0; then random values
/// around [0, 1], 300,000 in all.
torch::Tensor activation_inputs() {
  std::vector<float> special = {0.f,
                                -0.f,
                                1.f,
                                -1e-7f,
                                1.0000001f,
                                0.5f,
                                -3.f,
                                7.f,
                                std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN()};
  for (int bits : {1, 2, 3, 4, 8}) {
    const float n = static_cast<float>((1 << bits) - 1);
    for (int j = 0; j < (1 << bits) - 1; ++j) special.push_back((static_cast<float>(j) + 0.5f) / n);
  }
  torch::manual_seed(7);
  auto random = torch::randn({300000}) * 0.8 + 0.5;
  return torch::cat({torch::tensor(special), random});
}

struct Pass {
  torch::Tensor out;
  torch::Tensor grad;
};

template <typename F>
Pass forward_backward(const torch::Tensor& input, const torch::Tensor& upstream, F f) {
  auto leaf = input.detach().clone().requires_grad_(true);
  auto out = f(leaf);
  out.backward(upstream);
  return {out.detach(), leaf.grad()};
}

void check_activation_matches(const torch::Tensor& x, const torch::Tensor& upstream) {
  for (int bits : {1, 2, 3, 4, 8}) {
    INFO("bits " << bits << " on " << x.device() << ", sizes " << x.sizes());
    auto fused = forward_backward(
        x, upstream, [&](const torch::Tensor& t) { return quantize_activation(t, bits); });
    auto composite = forward_backward(x, upstream, [&](const torch::Tensor& t) {
      return quantize_activation(t, bits, ActivationOptions().kernels(kComposite));
    });
    CHECK(same_values(fused.out, composite.out));
    CHECK(same_values(fused.grad, composite.grad));
    CHECK(fused.out.strides() == x.strides());
  }
}

void check_weight_matches(const torch::Tensor& w, const torch::Tensor& upstream) {
  for (int bits : {1, 2, 3, 4, 8}) {
    for (bool detach : {false, true}) {
      INFO("bits " << bits << ", detach_max " << detach << ", sizes " << w.sizes());
      const auto options = WeightOptions().k1_weights(K1Weights::authors).detach_max(detach);
      auto fused = forward_backward(
          w, upstream, [&](const torch::Tensor& t) { return quantize_weight(t, bits, options); });
      auto composite = forward_backward(w, upstream, [&](const torch::Tensor& t) {
        return quantize_weight(t, bits, WeightOptions(options).kernels(kComposite));
      });
      CHECK(same_values(fused.out, composite.out));
      const double scale = composite.grad.abs().max().item<double>();
      CHECK((fused.grad - composite.grad).abs().max().item<double>() <= 1e-6 * scale);
    }
  }
}

}  // namespace

TEST_CASE("fused activation kernels give the composite's values and gradients", "[dorefa][fused]") {
  const auto x = activation_inputs();
  REQUIRE(fused::supports_activation(x));
  auto upstream = torch::randn_like(x);
  check_activation_matches(x, upstream);
  check_activation_matches(x.narrow(0, 0, 40), upstream.narrow(0, 0, 40));  // one thread
}

TEST_CASE("fused activation kernels on bfloat16 round where the composite's bfloat16 ops do",
          "[dorefa][fused]") {
  // What autocast hands a quantizer: bfloat16 activations and gradients.
  const auto x = activation_inputs().to(torch::kBFloat16);
  REQUIRE(fused::supports_activation(x));
  CHECK_FALSE(fused::supports_weight(x));
  check_activation_matches(x, torch::randn_like(x));
  // The bfloat16 values at the rounding boundaries of 8 bits sit a hair off the float ones: the
  // multiply's rounding to bfloat16 decides their level, as it does in the composite.
  const auto boundary =
      torch::arange(0, 255).to(torch::kFloat).add(0.5).div(255).to(torch::kBFloat16);
  check_activation_matches(boundary, torch::ones_like(boundary));
}

TEST_CASE("fused activation kernels keep a channels-last layout", "[dorefa][fused]") {
  torch::manual_seed(3);
  auto x = (torch::randn({8, 16, 12, 12}) * 0.7 + 0.4).contiguous(at::MemoryFormat::ChannelsLast);
  REQUIRE(fused::supports_activation(x));
  check_activation_matches(x, torch::randn({8, 16, 12, 12}));  // upstream in the other layout
}

TEST_CASE("tensors the kernels do not handle take the composite path", "[dorefa][fused]") {
  auto strided = torch::randn({64, 48}).t();
  CHECK_FALSE(fused::supports_activation(strided));
  CHECK_FALSE(fused::supports_activation(torch::randn({16}, torch::kDouble)));
  CHECK_FALSE(fused::supports_weight(torch::randn({16}, torch::kHalf)));
  check_activation_matches(strided, torch::randn({48, 64}));
  auto as_double =
      forward_backward(torch::randn({50}, torch::kDouble), torch::ones({50}, torch::kDouble),
                       [](const torch::Tensor& t) { return quantize_activation(t, 2); });
  CHECK(as_double.out.scalar_type() == torch::kDouble);
}

TEST_CASE("fused weight kernels give the composite's values and gradients", "[dorefa][fused]") {
  torch::manual_seed(11);
  auto conv = torch::randn({64, 32, 3, 3}) * 0.1;
  check_weight_matches(conv, torch::randn_like(conv));
  auto large = torch::randn({256, 128, 3, 3}) * 0.05;  // 294,912 elements: several threads
  check_weight_matches(large, torch::randn_like(large));
}

TEST_CASE("fused weight gradient spreads the max's share over tied elements", "[dorefa][fused]") {
  // |w| is largest at two elements of opposite sign: autograd's max() gives each half.
  auto w = torch::tensor({0.3f, -0.9f, 0.1f, 0.9f, -0.2f, 0.f});
  check_weight_matches(w, torch::tensor({1.f, 2.f, -3.f, 4.f, 5.f, 6.f}));
  check_weight_matches(torch::zeros({5}), torch::ones({5}));  // the floor under max|tanh(w)|
}

TEST_CASE("fused kernels on CUDA match the composite and the CPU", "[dorefa][fused][cuda]") {
  if (!torch::cuda::is_available()) {
    LOWBIT_SKIP("no CUDA device: the CUDA kernels were not run");
  }
  const torch::Device cuda(torch::kCUDA);
  CHECK(fused::supports_activation(torch::ones({2}, cuda)) == fused::has_cuda_kernels());
  const auto x = activation_inputs();
  const auto upstream = torch::randn_like(x);
  check_activation_matches(x.to(cuda), upstream.to(cuda));
  check_activation_matches(x.to(cuda).to(torch::kBFloat16), upstream.to(cuda).to(torch::kBFloat16));
  CHECK(same_values(quantize_activation(x.to(torch::kBFloat16).to(cuda), 4).cpu(),
                    quantize_activation(x.to(torch::kBFloat16), 4)));
  auto on_gpu = quantize_activation(x.to(cuda), 2).cpu();
  CHECK(same_values(on_gpu, quantize_activation(x, 2)));
  torch::manual_seed(5);
  auto w = torch::randn({64, 32, 3, 3}) * 0.1;
  check_weight_matches(w.to(cuda), torch::randn_like(w).to(cuda));
  CHECK(same_values(quantize_weight(w.to(cuda), 2).cpu(), quantize_weight(w, 2)));
}
