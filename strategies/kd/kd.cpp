#include "kd.h"

#include <lowbit/sdk/abi.h>
#include <lowbit/sdk/registry.h>
#include <lowbit/sdk/weights.h>

#include <fstream>
#include <stdexcept>

namespace lowbit::kd {

/// A weights file named in the options must be there when the experiment is read, not only when
/// its first trial starts.
std::string existing_weights_file(const JsonReader& options, const std::string& key) {
  auto path = options.string(key, "");
  if (!path.empty() && !std::ifstream(path).good()) {
    options.fail(
        key, "no readable file " + excerpt(path),
        "a weights file written by lowbit, e.g. <database>.d/weights/<run hash>/trial-0.pt");
  }
  return path;
}

KdOptions read_options(const JsonReader& options) {
  KdOptions out;
  out.teacher = options.string("teacher", "");
  out.teacher_checkpoint = existing_weights_file(options, "teacher_checkpoint");
  out.student_checkpoint = existing_weights_file(options, "student_checkpoint");
  out.joint = options.choice("mode", "joint", {"joint", "fixed"}) == "joint";
  const auto loss = options.choice("loss", "both", {"posterior", "attention", "both"});
  out.posterior = loss != "attention";
  out.attention = loss != "posterior";
  out.alpha_teacher = options.number("alpha_teacher", out.alpha_teacher, 0.0, 1e6);
  out.alpha_student = options.number("alpha_student", out.alpha_student, 0.0, 1e6);
  out.beta = options.number("beta", out.beta, 0.0, 1e6);
  out.gamma = options.number("gamma", out.gamma, 0.0, 1e6);
  out.temperature = options.number("temperature", out.temperature, 1e-3, 1e3);
  out.teacher_lr = options.number("teacher_lr", 0.0, 0.0, 100.0);
  out.teacher_lr_ratio = options.number("teacher_lr_ratio", out.teacher_lr_ratio, 0.0, 1000.0);
  out.teacher_momentum = options.number("teacher_momentum", out.teacher_momentum, 0.0, 1.0);
  out.teacher_weight_decay =
      options.number("teacher_weight_decay", out.teacher_weight_decay, 0.0, 1.0);
  out.quantize_teacher_features =
      options.choice("teacher_map", "quantized", {"quantized", "full_precision"}) == "quantized";
  out.attention_form = options.mapped_choice(
      "attention_form", AttentionForm::squared_mean,
      {{"squared_mean", AttentionForm::squared_mean}, {"paper", AttentionForm::paper}});
  return out;
}

std::vector<std::string> KdStrategy::models_needed() const {
  if (options_.teacher.empty()) return {};  // the student's own architecture
  return {options_.teacher};
}

double KdStrategy::teacher_learning_rate(const TrainingState& state) const {
  double base = options_.teacher_lr;
  if (base <= 0) {
    const double stage_lr =
        state.stage != nullptr ? state.stage->learning_rate : state.learning_rate;
    base = options_.teacher_lr_ratio * stage_lr;
  }
  return base * state.learning_rate_scale;
}

torch::Tensor KdStrategy::quantized_teacher_features(const TrainingState& state, size_t point,
                                                     const torch::Tensor& features) {
  const int bits = state.stage != nullptr ? state.stage->activation_bits : kFullPrecisionBits;
  if (!options_.quantize_teacher_features || state.quantizer == nullptr ||
      bits >= kFullPrecisionBits) {
    return features;
  }
  while (feature_quantizers_.size() <= point) {
    const auto channels = features.size(1);
    LayerContext context{"kd.teacher_stage" + std::to_string(feature_quantizers_.size() + 1),
                         "",
                         channels,
                         channels,
                         1,
                         ""};
    auto quantizer = state.quantizer->make_activation_quantizer(context, bits);
    quantizer->to(state.device);
    feature_quantizers_.push_back(std::move(quantizer));
  }
  auto& quantizer = *feature_quantizers_[point];
  if (quantizer.bits() != bits) quantizer.set_bits(bits);
  quantizer.train(state.network->is_training());
  return quantizer.forward(features);
}

void KdStrategy::on_trial_begin(const TrainingState& state) {
  const std::string model = options_.teacher.empty() ? state.model : options_.teacher;
  if (model.empty())
    throw std::runtime_error("kd: no teacher model given and no student model known");
  // A teacher_checkpoint replaces whatever the teacher would start from, so it starts from the
  // seed then; otherwise it starts as the run does (the finished 32W32A trial of its model), and
  // a fixed teacher must start from trained weights.
  const auto start = !options_.teacher_checkpoint.empty() ? NetworkStart::seed
                     : options_.joint                     ? NetworkStart::like_run
                                                          : NetworkStart::pretrained;
  teacher_ = state.services->build_full_precision_network(model, start);
  teacher_->to(state.device);
  // A lowbit weights file, perhaps a quantized run's: its quantizer state has no place in the
  // full-precision teacher, but the student takes all of it.
  if (!options_.teacher_checkpoint.empty()) {
    load_named_tensors(*teacher_, read_weights_file(options_.teacher_checkpoint),
                       options_.teacher_checkpoint, LoadOptions{false, true});
  }
  if (!options_.student_checkpoint.empty()) {
    load_named_tensors(*state.network, read_weights_file(options_.student_checkpoint),
                       options_.student_checkpoint, LoadOptions{true, true});
  }
  if (options_.joint) {
    optimizer_ = std::make_unique<torch::optim::SGD>(
        teacher_->parameters(), torch::optim::SGDOptions(1.0)
                                    .momentum(options_.teacher_momentum)
                                    .weight_decay(options_.teacher_weight_decay));
  } else {
    for (auto& parameter : teacher_->parameters()) parameter.requires_grad_(false);
  }
}

torch::Tensor KdStrategy::extra_loss(const TrainingState& state, const Batch& batch,
                                     const NetworkOutput& output) {
  NetworkOutput taught;
  if (options_.joint) {
    teacher_->train();
    taught = teacher_->forward(batch.images);
  } else {
    teacher_->eval();
    torch::NoGradGuard no_grad;
    taught = teacher_->forward(batch.images);
  }

  torch::Tensor student = torch::zeros({}, output.logits.options());
  torch::Tensor teacher =
      options_.alpha_teacher * torch::nn::functional::cross_entropy(taught.logits, batch.labels);
  last_ = KdLosses{};
  if (options_.posterior) {
    auto for_student = posterior_loss(output.logits, taught.logits, options_.temperature);
    auto for_teacher = posterior_loss(taught.logits, output.logits, options_.temperature);
    student = student + options_.beta * for_student;
    teacher = teacher + options_.beta * for_teacher;
    last_.student_posterior = for_student.detach();
    last_.teacher_posterior = for_teacher.detach();
  }
  if (options_.attention) {
    if (output.stage_features.size() != taught.stage_features.size() ||
        output.stage_features.empty()) {
      throw std::runtime_error(
          "kd: attention transfer needs student and teacher with the same "
          "number of stages (student " +
          std::to_string(output.stage_features.size()) + ", teacher " +
          std::to_string(taught.stage_features.size()) + ")");
    }
    const auto form = options_.attention_form;
    torch::Tensor attention = torch::zeros({}, output.logits.options());
    for (size_t j = 0; j < output.stage_features.size(); ++j) {
      auto student_map = attention_map(output.stage_features[j], form);
      auto target =
          attention_map(quantized_teacher_features(state, j, taught.stage_features[j]), form);
      if (student_map.sizes() != target.sizes()) {
        throw std::runtime_error("kd: stage " + std::to_string(j + 1) +
                                 " of student and teacher differ in spatial size");
      }
      // Same value for both networks; each one's gradient reaches only itself.
      attention = attention + attention_loss(student_map, target, form);
      teacher = teacher + options_.gamma * attention_loss(target, student_map, form);
    }
    student = student + options_.gamma * attention;
    last_.attention = attention.detach();
  }
  if (options_.joint) {
    teacher_loss_ = teacher;
    last_.teacher_total = teacher.detach();
  }
  return student;
}

void KdStrategy::on_step_end(const TrainingState& state) {
  if (!options_.joint || !teacher_loss_.defined()) return;
  for (auto& group : optimizer_->param_groups()) {
    static_cast<torch::optim::SGDOptions&>(group.options()).lr(teacher_learning_rate(state));
  }
  optimizer_->zero_grad();
  teacher_loss_.backward();
  optimizer_->step();
  teacher_loss_ = torch::Tensor();
}

void KdStrategy::on_epoch_end(const TrainingState& state, std::map<std::string, double>& metrics) {
  auto [top1, top5] = state.services->evaluate(*teacher_);
  metrics["teacher_top1"] = top1;
  metrics["teacher_top5"] = top5;
}

void KdStrategy::save_state(torch::serialize::OutputArchive& archive) const {
  torch::serialize::OutputArchive teacher;
  teacher_->save(teacher);
  archive.write("teacher", teacher);
  if (optimizer_) {
    torch::serialize::OutputArchive optimizer;
    optimizer_->save(optimizer);
    archive.write("teacher_optimizer", optimizer);
  }
}

void KdStrategy::load_state(torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive teacher;
  archive.read("teacher", teacher);
  teacher_->load(teacher);
  if (optimizer_) {
    torch::serialize::InputArchive optimizer;
    archive.read("teacher_optimizer", optimizer);
    optimizer_->load(optimizer);
  }
}

std::unique_ptr<Strategy> make_kd(const JsonReader& options) {
  return std::make_unique<KdStrategy>(read_options(options));
}

void register_kd(Registry& registry) {
  registry.add_strategy("kd",
                        "KD: joint knowledge distillation from a full-precision teacher (options: "
                        "teacher, teacher_checkpoint, student_checkpoint, mode joint|fixed, loss "
                        "posterior|attention|both, alpha_teacher, alpha_student, beta, gamma, "
                        "temperature, teacher_lr, teacher_lr_ratio, teacher_map, attention_form)",
                        make_kd, "KD");
}

}  // namespace lowbit::kd

LOWBIT_PLUGIN("kd", lowbit::kd::register_kd)
