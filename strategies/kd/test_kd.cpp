// KD: the loss terms against the "kl" and "attention" vectors of golden_dorefa_kd.json, the
// quantized teacher map, and the strategy on a tiny network: student and teacher losses, joint vs
// fixed teacher, its metrics, its checkpoint state and loading weights from another layout.

#include "kd.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/error.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/testing/plugin_test.h>

#include <boost/filesystem.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

namespace {

using lowbit::testing::check_close;
using lowbit::testing::tensor_from_json;
using nlohmann::json;
using namespace lowbit::kd;

const json& golden() {
  static const json data =
      lowbit::testing::read_json_file(std::string(LOWBIT_TEST_DATA_DIR) + "/golden_dorefa_kd.json");
  return data;
}

double value(const torch::Tensor& t) { return t.item<double>(); }

/// Uniform k-bit activations of clip(x, 0, 1) with a straight-through gradient (DoReFa's form):
/// the run's quantizer in these tests, for Q(μ).
class UniformActivationImpl : public lowbit::ActivationQuantizerImpl {
 public:
  using ActivationQuantizerImpl::ActivationQuantizerImpl;

 protected:
  torch::Tensor quantize(const torch::Tensor& x) override {
    const double levels = std::pow(2.0, bits()) - 1;
    auto clipped = x.clamp(0, 1);
    return clipped + (torch::round(clipped * levels) / levels - clipped).detach();
  }
};

class UniformQuantizer : public lowbit::Quantizer {
 public:
  std::shared_ptr<lowbit::WeightQuantizerImpl> weight_quantizer(const lowbit::LayerContext&,
                                                                int) const override {
    return nullptr;  // KD asks for activation quantizers only
  }
  std::shared_ptr<lowbit::ActivationQuantizerImpl> activation_quantizer(
      const lowbit::LayerContext& layer, int bits) const override {
    return std::make_shared<UniformActivationImpl>(layer, bits);
  }
};

/// What UniformQuantizer's activation quantizer computes at 2 bits.
torch::Tensor quantize_2bit(const torch::Tensor& x) { return torch::round(x.clamp(0, 1) * 3) / 3; }

/// Two "stages" of a conv each; the stage outputs feed attention transfer.
class TinyNet : public lowbit::NetworkImpl {
 public:
  explicit TinyNet(int64_t width = 3) {
    conv1 = register_module("conv1",
                            torch::nn::Conv2d(torch::nn::Conv2dOptions(1, width, 3).padding(1)));
    conv2 = register_module(
        "conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, width, 3).padding(1)));
    fc = register_module("fc", torch::nn::Linear(width, 4));
  }
  lowbit::NetworkOutput forward(torch::Tensor images) override {
    lowbit::NetworkOutput out;
    auto x = torch::relu(conv1->forward(images));
    out.stage_features.push_back(x);
    x = torch::relu(conv2->forward(x));
    out.stage_features.push_back(x);
    out.logits = fc->forward(x.mean({2, 3}));
    return out;
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc{nullptr};
};

struct Fixture {
  std::shared_ptr<TinyNet> student = std::make_shared<TinyNet>();
  lowbit::Stage stage{"main", 1, 0.1, 2, 2};
  lowbit::TrainingState state;
  lowbit::Batch batch{torch::randn({4, 1, 5, 5}), torch::tensor({0, 1, 2, 3})};
  std::vector<std::string> built;
  std::vector<lowbit::NetworkStart> starts;
  UniformQuantizer quantizer;
  lowbit::FunctionTrainingServices services{
      [this](const std::string& model, lowbit::NetworkStart start) {
        built.push_back(model);
        starts.push_back(start);
        return std::make_shared<TinyNet>(model == "wide" ? 5 : 3);
      },
      [](lowbit::NetworkImpl&) { return std::make_pair(87.5, 99.0); }};

  explicit Fixture(int64_t image_size = 5) {
    torch::manual_seed(1);
    student = std::make_shared<TinyNet>();
    batch = {torch::randn({4, 1, image_size, image_size}), torch::tensor({0, 1, 2, 3})};
    state.network = student.get();
    state.quantizer = &quantizer;
    state.model = "tiny";
    state.stage = &stage;
    state.learning_rate = 0.1;
    state.services = &services;
  }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;
};

std::unique_ptr<KdStrategy> make(const json& options) {
  auto strategy = make_kd(lowbit::JsonReader(options, "test.json"));
  return std::unique_ptr<KdStrategy>(static_cast<KdStrategy*>(strategy.release()));
}

std::vector<torch::Tensor> snapshot(torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (auto& p : module.parameters()) out.push_back(p.detach().clone());
  return out;
}

bool changed(torch::nn::Module& module, const std::vector<torch::Tensor>& before) {
  auto now = module.parameters();
  for (size_t i = 0; i < now.size(); ++i) {
    if (!torch::equal(now[i], before[i])) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("kd registers with the label KD", "[kd]") {
  lowbit::Registry registry;
  lowbit_plugin_entry()->register_components(registry);
  CHECK(lowbit_plugin_entry()->api_version == LOWBIT_PLUGIN_API_VERSION);
  CHECK(registry.info(lowbit::ComponentKind::strategy, "kd").label == "KD");
}

TEST_CASE("KD posterior loss matches the golden KL values and gradients", "[kd][golden]") {
  const auto& kl = golden().at("kl");
  const auto student = tensor_from_json(kl.at("student_logits"));
  const auto teacher = tensor_from_json(kl.at("teacher_logits"));
  for (int t : {1, 2}) {
    DYNAMIC_SECTION("T=" << t) {
      const auto& expected = kl.at("T" + std::to_string(t));
      auto s = student.clone().requires_grad_(true);
      auto loss = posterior_loss(s, teacher, t);
      CHECK(value(loss) == Approx(expected.at("kl_for_student").get<double>()).epsilon(1e-6));
      loss.backward();
      check_close(s.grad(), tensor_from_json(expected.at("grad_student_logits")));

      auto te = teacher.clone().requires_grad_(true);
      auto teacher_loss = posterior_loss(te, student, t);
      CHECK(value(teacher_loss) ==
            Approx(expected.at("kl_for_teacher").get<double>()).epsilon(1e-6));
      teacher_loss.backward();
      check_close(te.grad(), tensor_from_json(expected.at("grad_teacher_logits")));
    }
  }
}

TEST_CASE("KD combined losses match the golden weighted sums", "[kd][golden]") {
  // The golden file weights the student's CE by 1 and the teacher's by 0.5 (β = 0.5, T = 1); the
  // paper's defaults are the other way round (α2 = 0.5 student, α1 = 1 teacher): the formula is the
  // same, so it is checked with the golden file's weights.
  namespace F = torch::nn::functional;
  const auto& kl = golden().at("kl");
  const auto student = tensor_from_json(kl.at("student_logits"));
  const auto teacher = tensor_from_json(kl.at("teacher_logits"));
  const auto labels = torch::tensor(kl.at("labels").get<std::vector<int64_t>>());
  const double ce_student = value(F::cross_entropy(student, labels));
  const double ce_teacher = value(F::cross_entropy(teacher, labels));
  CHECK(ce_student == Approx(kl.at("ce_student").get<double>()).epsilon(1e-6));
  CHECK(ce_teacher == Approx(kl.at("ce_teacher").get<double>()).epsilon(1e-6));
  const double l_student = 1.0 * ce_student + 0.5 * value(posterior_loss(student, teacher, 1));
  const double l_teacher = 0.5 * ce_teacher + 0.5 * value(posterior_loss(teacher, student, 1));
  CHECK(l_student == Approx(kl.at("L_student_a1_1_beta_0.5").get<double>()).epsilon(1e-6));
  CHECK(l_teacher == Approx(kl.at("L_teacher_a2_0.5_beta_0.5").get<double>()).epsilon(1e-6));
}

TEST_CASE("KD attention maps and loss match the golden vectors", "[kd][golden]") {
  const auto& at = golden().at("attention");
  auto fs = tensor_from_json(at.at("feat_student")).requires_grad_(true);
  auto ft = tensor_from_json(at.at("feat_teacher"));
  check_close(attention_map(fs).detach(), tensor_from_json(at.at("at_map_student")));
  check_close(attention_map(ft), tensor_from_json(at.at("at_map_teacher")));
  auto loss = attention_loss(attention_map(fs), attention_map(ft));
  CHECK(value(loss) == Approx(at.at("at_loss_zagoruyko").get<double>()).epsilon(1e-5));
  loss.backward();
  check_close(fs.grad(), tensor_from_json(at.at("grad_feat_student_zagoruyko")));
}

TEST_CASE(
    "KD's attention term pulls the student toward the teacher at realistic map sizes "
    "(Q(μ) on feature maps, 2 bits)",
    "[kd]") {
  for (int64_t size : {28, 14}) {
    for (std::string form : {"squared_mean", "paper"}) {
      DYNAMIC_SECTION(size << "x" << size << " " << form) {
        Fixture f(size);
        auto kd = make({{"loss", "attention"}, {"attention_form", form}});
        kd->on_trial_begin(f.state);
        auto attention_now = [&] {
          auto output = f.student->forward(f.batch.images);
          return kd->extra_loss(f.state, f.batch, output);
        };
        auto before = attention_now();
        before.backward();
        const auto gradient = f.student->conv1->weight.grad().clone();
        CHECK(gradient.abs().sum().item<double>() > 1e-6);
        // A small step along the gradient lowers the distance to the same teacher's map.
        {
          torch::NoGradGuard no_grad;
          for (auto& p : f.student->parameters()) {
            if (p.grad().defined()) p -= 1e-2 * p.grad();  // the FC gets no attention gradient
          }
        }
        CHECK(attention_now().item<double>() < before.item<double>());
      }
    }
  }
  // Why the normalised map itself is never quantized: a uniform 28x28 map has entries 1/28,
  // below half a 2-bit step, so a 2-bit map would be all zeros and carry no gradient.
  auto uniform = attention_map(torch::ones({1, 4, 28, 28}));
  CHECK(uniform.max().item<double>() == Approx(1.0 / 28));
  CHECK(torch::round(uniform * 3).abs().sum().item<double>() == 0);
}

TEST_CASE("KD student loss: beta*KL + gamma*sum of stage attention losses; CE weighted alpha2",
          "[kd]") {
  for (std::string teacher_map : {"quantized", "full_precision"}) {
    DYNAMIC_SECTION("teacher_map " << teacher_map) {
      Fixture f;
      auto kd = make({{"teacher_map", teacher_map}});
      CHECK(kd->cross_entropy_weight() == 0.5);
      kd->on_trial_begin(f.state);
      CHECK(f.built == std::vector<std::string>{"tiny"});
      auto output = f.student->forward(f.batch.images);
      auto loss = kd->extra_loss(f.state, f.batch, output);

      torch::NoGradGuard no_grad;
      auto taught = kd->teacher().forward(f.batch.images);
      double attention = 0;
      for (size_t j = 0; j < 2; ++j) {
        auto features = taught.stage_features[j];
        if (teacher_map == "quantized") features = quantize_2bit(features);  // 2-bit stage
        auto target = attention_map(features);
        attention += value((attention_map(output.stage_features[j]) - target).pow(2).mean());
      }
      const double kl = value(posterior_loss(output.logits, taught.logits, 1));
      CHECK(value(loss) == Approx(0.5 * kl + 50 * attention).epsilon(1e-5));
      CHECK(value(kd->last_losses().attention) == Approx(attention).epsilon(1e-5));
      const double ce = value(torch::nn::functional::cross_entropy(taught.logits, f.batch.labels));
      const double teacher_kl = value(posterior_loss(taught.logits, output.logits, 1));
      CHECK(value(kd->last_losses().teacher_total) ==
            Approx(ce + 0.5 * teacher_kl + 50 * attention).epsilon(1e-5));
      if (teacher_map == "quantized") CHECK(attention > 0);
    }
  }
}

TEST_CASE("KD loss variants: posterior only, attention only", "[kd]") {
  Fixture f;
  auto posterior = make({{"loss", "posterior"}, {"beta", 2.0}, {"temperature", 2.0}});
  posterior->on_trial_begin(f.state);
  auto output = f.student->forward(f.batch.images);
  auto loss = posterior->extra_loss(f.state, f.batch, output);
  CHECK(value(loss) == Approx(2.0 * value(posterior->last_losses().student_posterior)));
  CHECK_FALSE(posterior->last_losses().attention.defined());

  auto attention = make({{"loss", "attention"}, {"gamma", 10.0}});
  attention->on_trial_begin(f.state);
  loss = attention->extra_loss(f.state, f.batch, output);
  CHECK(value(loss) == Approx(10.0 * value(attention->last_losses().attention)));
  CHECK_FALSE(attention->last_losses().student_posterior.defined());
}

TEST_CASE("KD joint: the teacher learns by its own optimizer; the student's gradient stays its own",
          "[kd]") {
  Fixture f;
  auto kd = make({{"teacher", "wide"}, {"teacher_lr", 0.05}});
  kd->on_trial_begin(f.state);
  CHECK(f.built == std::vector<std::string>{"wide"});
  auto before = snapshot(kd->teacher());
  auto output = f.student->forward(f.batch.images);
  auto loss = kd->extra_loss(f.state, f.batch, output);
  loss.backward();
  for (auto& p : kd->teacher().parameters()) CHECK_FALSE(p.grad().defined());
  f.state.learning_rate_scale = 0.5;
  CHECK(kd->teacher_learning_rate(f.state) == Approx(0.025));
  kd->on_step_end(f.state);
  CHECK(changed(kd->teacher(), before));

  std::map<std::string, double> metrics;
  kd->on_epoch_end(f.state, metrics);
  CHECK(metrics.at("teacher_top1") == 87.5);
  CHECK(metrics.at("teacher_top5") == 99.0);
}

TEST_CASE("KD joint: the teacher's attention term pulls only the teacher, toward the student",
          "[kd]") {
  Fixture f;
  // The full-precision teacher map keeps the check exact (no rounding between the two steps).
  auto kd = make({{"loss", "attention"},
                  {"alpha_teacher", 0.0},
                  {"teacher_lr", 0.01},
                  {"teacher_map", "full_precision"}});
  kd->on_trial_begin(f.state);
  auto output = f.student->forward(f.batch.images);
  kd->extra_loss(f.state, f.batch, output);
  auto teacher_attention = [&] {
    torch::NoGradGuard no_grad;
    double total = 0;
    auto taught = kd->teacher().forward(f.batch.images);
    for (size_t j = 0; j < 2; ++j) {
      total +=
          value((attention_map(taught.stage_features[j]) - attention_map(output.stage_features[j]))
                    .pow(2)
                    .mean());
    }
    return total;
  };
  const double before = teacher_attention();
  CHECK(value(kd->last_losses().teacher_total) == Approx(50 * before).epsilon(1e-5));
  // The teacher's step (its loss is its attention term alone here) leaves the student's
  // parameters without gradient and moves the teacher's map toward the student's.
  kd->on_step_end(f.state);
  for (auto& p : f.student->parameters()) CHECK_FALSE(p.grad().defined());
  CHECK(teacher_attention() < before);
}

TEST_CASE("KD teacher lr: a ratio of the stage's lr unless given", "[kd]") {
  Fixture f;
  f.stage.learning_rate = 0.005;
  f.state.learning_rate_scale = 1;
  CHECK(make(json::object())->teacher_learning_rate(f.state) == Approx(0.001));
  CHECK(make({{"teacher_lr_ratio", 1.0}})->teacher_learning_rate(f.state) == Approx(0.005));
  CHECK(make({{"teacher_lr", 0.03}})->teacher_learning_rate(f.state) == Approx(0.03));
  f.state.learning_rate_scale = 0.1;
  CHECK(make(json::object())->teacher_learning_rate(f.state) == Approx(0.0001));
}

TEST_CASE("KD teachers start as the run does, unless they have a checkpoint", "[kd]") {
  using lowbit::NetworkStart;
  // Joint: like the run (its 32W32A trial, or the seed for a run from scratch); fixed: trained
  // weights are required, so the harness refuses a run from scratch.
  Fixture joint;
  make(json::object())->on_trial_begin(joint.state);
  Fixture fixed;
  make({{"mode", "fixed"}})->on_trial_begin(fixed.state);
  REQUIRE(joint.starts.size() == 1);
  REQUIRE(fixed.starts.size() == 1);
  CHECK(joint.starts[0] == NetworkStart::like_run);
  CHECK(fixed.starts[0] == NetworkStart::pretrained);
}

TEST_CASE("KD fixed teacher: loads its checkpoint, never changes", "[kd]") {
  CHECK_THROWS_WITH(make({{"mode", "frozen"}}), Catch::Contains("joint, fixed"));
  CHECK_THROWS_WITH(make({{"loss", "hint"}}), Catch::Contains("posterior, attention, both"));

  auto folder = boost::filesystem::temp_directory_path() /
                boost::filesystem::unique_path("lowbit-kd-%%%%-%%%%");
  boost::filesystem::create_directories(folder);
  const auto path = (folder / "teacher.pt").string();
  TinyNet trained;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : trained.parameters()) p.fill_(0.25);
  }
  torch::serialize::OutputArchive archive;
  trained.save(archive);
  archive.save_to(path);

  Fixture f;
  auto kd = make({{"mode", "fixed"}, {"teacher_checkpoint", path}});
  kd->on_trial_begin(f.state);
  REQUIRE(f.starts.size() == 1);
  CHECK(f.starts[0] == lowbit::NetworkStart::seed);
  for (auto& p : kd->teacher().parameters()) CHECK(torch::all(p == 0.25).item<bool>());
  CHECK(kd->teacher_learning_rate(f.state) == Approx(0.2 * 0.1));  // teacher_lr_ratio x stage lr
  auto before = snapshot(kd->teacher());
  auto output = f.student->forward(f.batch.images);
  kd->extra_loss(f.state, f.batch, output).backward();
  kd->on_step_end(f.state);
  CHECK_FALSE(changed(kd->teacher(), before));
  CHECK_FALSE(kd->last_losses().teacher_total.defined());

  // The student can start from the same file; a file of another architecture is refused.
  Fixture g;
  auto student_init = make({{"student_checkpoint", path}});
  student_init->on_trial_begin(g.state);
  for (auto& p : g.student->parameters()) CHECK(torch::all(p == 0.25).item<bool>());
  Fixture h;
  auto wrong = make({{"teacher", "wide"}, {"teacher_checkpoint", path}});
  CHECK_THROWS_WITH(wrong->on_trial_begin(h.state), Catch::Contains("another shape"));
  boost::filesystem::remove_all(folder);
}

TEST_CASE("KD state round-trips through a checkpoint archive", "[kd]") {
  Fixture f;
  auto kd = make(json::object());
  kd->on_trial_begin(f.state);
  auto output = f.student->forward(f.batch.images);
  kd->extra_loss(f.state, f.batch, output).backward();
  kd->on_step_end(f.state);
  torch::serialize::OutputArchive out;
  kd->save_state(out);
  std::stringstream stream;
  out.save_to(stream);

  Fixture g;
  auto restored = make(json::object());
  restored->on_trial_begin(g.state);
  torch::serialize::InputArchive in;
  in.load_from(stream);
  restored->load_state(in);
  auto a = kd->teacher().parameters();
  auto b = restored->teacher().parameters();
  for (size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i], b[i]));
}
