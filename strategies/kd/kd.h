#pragma once
// KD, joint knowledge distillation (paper, Strategies). A full-precision teacher (any model of the
// zoo; by default the student's own architecture) starts as the run does: from the experiment's
// finished 32W32A trial of its model when the run starts from full precision (lowbit's "init"),
// or from "teacher_checkpoint" when given. It trains beside the low-precision student on the same
// batches, by its own SGD optimizer:
//   L_student = α2·CE + β·KL(p_teacher ‖ p_student) + γ·L_att   (α2 via cross_entropy_weight)
//   L_teacher = α1·CE + β·KL(p_student ‖ p_teacher) + γ·L_att
// each network's terms use the other's outputs detached (kd_losses.h has the exact forms).
// L_att sums the stages' terms (end of each group of residual blocks). Q(μ): at each transfer
// point the teacher's feature map is quantized by an activation quantizer of the run's own
// quantizer at the stage's activation bits (one quantizer instance per transfer point, in the
// student's training mode, so e.g. LQ-Net's basis fits the teacher's features), and its attention
// map is taken from that; at 32 bits, or with "teacher_map": "full_precision", the map is the
// teacher's own. The gradient reaches the teacher through the quantizer's straight-through
// estimator, in the teacher's own attention term only.
// Modes: "joint" (both updated) or "fixed" (the teacher, which then needs trained weights, from
// the run's init or "teacher_checkpoint", stays frozen in eval mode). Guidance: "posterior",
// "attention" or "both". Attention form: "attention_form": "squared_mean" (default) or "paper" (Eq.
// 6 as written). Teacher lr: "teacher_lr" if given, else "teacher_lr_ratio" (default 0.2) times the
// stage's lr: the paper's 0.001 for a student fine-tuning at 0.005. It follows the student's
// schedule (TrainingState::learning_rate_scale). The student may start from a full-precision
// weights file ("student_checkpoint", e.g. a finished 32W32A trial's weights; quantizer modules
// the file lacks are fine). The teacher's test top-1/top-5 are recorded each epoch as
// "teacher_top1"/"teacher_top5" and so end up in the trial's row too.

#include "kd_losses.h"

#include <lowbit/sdk/json_reader.h>
#include <lowbit/sdk/strategy.h>

#include <memory>
#include <string>

namespace lowbit::kd {

struct KdOptions {
  std::string teacher;             ///< zoo model; "" = the student's
  std::string teacher_checkpoint;  ///< "" = teacher from scratch
  std::string student_checkpoint;  ///< "" = student from scratch
  bool joint = true;
  bool posterior = true;
  bool attention = true;
  double alpha_teacher = 1.0;  ///< α1
  double alpha_student = 0.5;  ///< α2
  double beta = 0.5;
  double gamma = 50.0;
  double temperature = 1.0;
  double teacher_lr = 0;  ///< 0: teacher_lr_ratio times the stage's lr
  double teacher_lr_ratio = 0.2;
  double teacher_momentum = 0.9;
  double teacher_weight_decay = 1e-4;
  bool quantize_teacher_features = true;  ///< Q(μ)
  AttentionForm attention_form = AttentionForm::squared_mean;
};

KdOptions read_options(const JsonReader& options);

/// The KD terms of the last step, detached (tests and diagnostics; kept as tensors so a GPU step
/// does not wait for them). Undefined when the term is off.
struct KdLosses {
  torch::Tensor student_posterior;  ///< KL(p_t ‖ p_s)·T², before β
  torch::Tensor teacher_posterior;  ///< KL(p_s ‖ p_t)·T², before β
  torch::Tensor attention;          ///< Σ stages L_att, before γ
  torch::Tensor teacher_total;      ///< L_teacher (joint mode)
};

class KdStrategy : public Strategy {
 public:
  explicit KdStrategy(KdOptions options) : options_(std::move(options)) {}

  void on_trial_begin(const TrainingState& state) override;
  torch::Tensor extra_loss(const TrainingState& state, const Batch& batch,
                           const NetworkOutput& output) override;
  void on_step_end(const TrainingState& state) override;
  void on_epoch_end(const TrainingState& state, std::map<std::string, double>& metrics) override;
  double cross_entropy_weight() const override { return options_.alpha_student; }
  void save_state(torch::serialize::OutputArchive& archive) const override;
  void load_state(torch::serialize::InputArchive& archive) override;
  std::vector<std::string> models_needed() const override;

  NetworkImpl& teacher() { return *teacher_; }
  const KdLosses& last_losses() const { return last_; }
  /// The teacher's learning rate at the current step.
  double teacher_learning_rate(const TrainingState& state) const;

 private:
  /// Q(μ): the teacher's feature map at transfer point `point`, quantized as the student's
  /// activations are at the stage's bits (unchanged at 32 bits or without a quantizer).
  torch::Tensor quantized_teacher_features(const TrainingState& state, size_t point,
                                           const torch::Tensor& features);

  KdOptions options_;
  std::vector<std::shared_ptr<ActivationQuantizerImpl>> feature_quantizers_;
  std::shared_ptr<NetworkImpl> teacher_;
  std::unique_ptr<torch::optim::SGD> optimizer_;
  torch::Tensor teacher_loss_;
  KdLosses last_;
};

std::unique_ptr<Strategy> make_kd(const JsonReader& options);

}  // namespace lowbit::kd
