// optim.h: SGD and Adam/AdamW with PyTorch 1.13's semantics, each step one fused kernel per
// parameter tensor (kernels/optim.h holds the equations). Optimiser state is part of checkpoints:
// state_dict() names every buffer after its parameter, so a resumed run continues exactly.
//
//   gt::optim::Adam opt(model.named_parameters(), {.lr = 1e-3f});
//   for (...) { loss = ...; gt::backward(loss); opt.step(); opt.zero_grad(); }
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "kernels/optim.h"

namespace gt::optim {

using NamedParams = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  explicit Optimizer(NamedParams params);
  virtual ~Optimizer() = default;
  // Updates every parameter that has a gradient (parameters without one are skipped, as in PyTorch).
  virtual void step() = 0;
  void zero_grad();
  int64_t steps() const { return steps_; }
  // Buffers keyed "<kind>.<param name>" plus "step"; load validates names and shapes first.
  virtual std::map<std::string, Tensor> state_dict() const = 0;
  virtual void load_state_dict(const std::map<std::string, Tensor>& state) = 0;
  float lr() const { return lr_; }
  void set_lr(float lr) { lr_ = lr; }

 protected:
  NamedParams params_;
  int64_t steps_ = 0;
  float lr_ = 0;
  std::map<std::string, Tensor> buffers_state(
      const std::vector<std::pair<std::string, const std::vector<Tensor>*>>& kinds) const;
  void load_buffers(const std::map<std::string, Tensor>& state,
                    const std::vector<std::pair<std::string, std::vector<Tensor>*>>& kinds);
};

struct SgdOptions {
  float lr = 1e-2f, momentum = 0.f, dampening = 0.f, weight_decay = 0.f;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(NamedParams params, SgdOptions o);
  void step() override;
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

 private:
  SgdOptions o_;
  std::vector<Tensor> momentum_;  // per parameter, created on its first update
};

struct AdamOptions {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool decoupled = false;  // true: AdamW
};

class Adam : public Optimizer {
 public:
  Adam(NamedParams params, AdamOptions o);
  void step() override;
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;

 private:
  AdamOptions o_;
  std::vector<Tensor> m_, v_;
  std::vector<AdamTensor> cpu_batch_;  // step()'s list for adam_step_multi_cpu, reused (no allocation)
};

// An exponential moving average of parameters (Polyak averaging; diffusion models sample with it):
// after each optimiser step, ema <- decay ema + (1 - decay) p, one fused kernel per tensor
// (kernels/optim.h). The averages start as copies of the parameters. state_dict() keys are the
// parameter names, so the averages load straight into a second copy of the model for sampling.
//
//   gt::optim::Ema ema(unet.named_parameters(), 0.999f);
//   ... opt.step(); ema.update();
//   sampler_unet.load_state_dict(ema.state_dict());
class Ema {
 public:
  Ema(NamedParams params, float decay);
  void update();
  float decay() const { return decay_; }
  std::map<std::string, Tensor> state_dict() const;  // the averages (not copies: do not modify)
  // Validates names and shapes first (errors name them); copies the values.
  void load_state_dict(const std::map<std::string, Tensor>& state);

 private:
  NamedParams params_;
  std::vector<Tensor> avg_;
  float decay_;
};

}  // namespace gt::optim
