// optim.cpp: the optimisers' bookkeeping; the arithmetic is the fused kernels of kernels/optim.h.
#include "models/optim.h"

#include "core/dispatch.h"
#include "kernels/optim.h"

namespace gt::optim {

Optimizer::Optimizer(NamedParams params) : params_(std::move(params)) {
  for (auto& [name, p] : params_) {
    check_defined("optimizer", p, name.c_str());
    GT_CHECK(p.requires_grad(), "optimizer: parameter '" << name << "' does not require grad");
  }
}

void Optimizer::zero_grad() {
  for (auto& np : params_) np.second.zero_grad();
}

std::map<std::string, Tensor> Optimizer::buffers_state(
    const std::vector<std::pair<std::string, const std::vector<Tensor>*>>& kinds) const {
  std::map<std::string, Tensor> s;
  s["step"] = Tensor::from_indices({(int32_t)steps_}, {1});
  for (auto& [kind, bufs] : kinds)
    for (size_t i = 0; i < params_.size(); ++i)
      if ((*bufs)[i].defined()) s[kind + "." + params_[i].first] = (*bufs)[i];
  return s;
}

void Optimizer::load_buffers(const std::map<std::string, Tensor>& state,
                             const std::vector<std::pair<std::string, std::vector<Tensor>*>>& kinds) {
  auto it = state.find("step");
  GT_CHECK(it != state.end() && it->second.dtype() == DType::I32 && it->second.numel() == 1,
           "optimizer state: missing or malformed 'step'");
  // Validate everything before changing anything.
  for (auto& [kind, bufs] : kinds)
    for (size_t i = 0; i < params_.size(); ++i) {
      auto b = state.find(kind + "." + params_[i].first);
      if (b != state.end())
        GT_CHECK(b->second.shape() == params_[i].second.shape(),
                 "optimizer state: '" << b->first << "' has shape " << b->second.shape() << " but the parameter is "
                                      << params_[i].second.shape());
    }
  steps_ = it->second.to_vector_i32()[0];
  for (auto& [kind, bufs] : kinds)
    for (size_t i = 0; i < params_.size(); ++i) {
      auto b = state.find(kind + "." + params_[i].first);
      (*bufs)[i] = b == state.end() ? Tensor() : b->second.to(params_[i].second.device()).clone();
    }
}

// ---------------------------------------------------------------- SGD
SGD::SGD(NamedParams params, SgdOptions o) : Optimizer(std::move(params)), o_(o), momentum_(params_.size()) {
  GT_CHECK(o.lr > 0, "SGD: learning rate must be > 0, got " << o.lr);
  GT_CHECK(o.momentum >= 0, "SGD: momentum must be >= 0, got " << o.momentum);
  lr_ = o.lr;
}

void SGD::step() {
  steps_++;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    bool first = false;
    if (o_.momentum != 0.f && !momentum_[i].defined()) {
      momentum_[i] = Tensor::empty(p.shape(), p.device());
      first = true;
    }
    SgdHyper h{lr_, o_.momentum, o_.dampening, o_.weight_decay, o_.nesterov, first};
    float* buf = momentum_[i].defined() ? momentum_[i].data() : nullptr;
    GT_DISPATCH(p.device(), sgd_step_cpu(p.data(), g.data(), buf, p.numel(), h),
                sgd_step_cuda(p.data(), g.data(), buf, p.numel(), h));
  }
}

std::map<std::string, Tensor> SGD::state_dict() const {
  return buffers_state({{"momentum", &momentum_}});
}
void SGD::load_state_dict(const std::map<std::string, Tensor>& state) { load_buffers(state, {{"momentum", &momentum_}}); }

// ---------------------------------------------------------------- Adam
Adam::Adam(NamedParams params, AdamOptions o) : Optimizer(std::move(params)), o_(o), m_(params_.size()), v_(params_.size()) {
  GT_CHECK(o.lr > 0, "Adam: learning rate must be > 0, got " << o.lr);
  GT_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1,
           "Adam: betas must be in [0, 1), got " << o.beta1 << ", " << o.beta2);
  GT_CHECK(o.eps >= 0, "Adam: eps must be >= 0, got " << o.eps);
  lr_ = o.lr;
}

void Adam::step() {
  steps_++;
  // One step counter for all parameters: PyTorch keeps one per parameter, which only differs for
  // parameters that sometimes have no gradient (none in gentape's models).
  const AdamHyper h = adam_hyper(lr_, o_.beta1, o_.beta2, o_.eps, o_.weight_decay, o_.decoupled, steps_);
  // CPU tensors are updated together in one pass (adam_step_multi_cpu), CUDA ones one kernel each.
  cpu_batch_.clear();
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].second;
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!m_[i].defined()) {
      m_[i] = Tensor::zeros(p.shape(), p.device());
      v_[i] = Tensor::zeros(p.shape(), p.device());
    }
    if (p.device() == Device::CPU) {
      cpu_batch_.push_back({p.data(), g.data(), m_[i].data(), v_[i].data(), p.numel()});
      continue;
    }
    // Not a CPU tensor: CUDA (a build without CUDA names the problem here).
    GT_DISPATCH(p.device(), (void)0, adam_step_cuda(p.data(), g.data(), m_[i].data(), v_[i].data(), p.numel(), h));
  }
  if (!cpu_batch_.empty()) adam_step_multi_cpu(cpu_batch_.data(), (int64_t)cpu_batch_.size(), h);
}

std::map<std::string, Tensor> Adam::state_dict() const {
  return buffers_state({{"exp_avg", &m_}, {"exp_avg_sq", &v_}});
}
void Adam::load_state_dict(const std::map<std::string, Tensor>& state) {
  load_buffers(state, {{"exp_avg", &m_}, {"exp_avg_sq", &v_}});
}

}  // namespace gt::optim

namespace gt::optim {

// ---------------------------------------------------------------- EMA
Ema::Ema(NamedParams params, float decay) : params_(std::move(params)), decay_(decay) {
  GT_CHECK(decay >= 0.f && decay < 1.f, "EMA: decay must be in [0, 1), got " << decay);
  avg_.reserve(params_.size());
  for (auto& [name, p] : params_) {
    check_defined("EMA", p, name.c_str());
    avg_.push_back(p.clone());  // a plain tensor: no grad, not on the tape
  }
}

void Ema::update() {
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    Tensor& e = avg_[i];
    GT_DISPATCH(p.device(), ema_update_cpu(e.data(), p.data(), p.numel(), decay_),
                ema_update_cuda(e.data(), p.data(), p.numel(), decay_));
  }
}

std::map<std::string, Tensor> Ema::state_dict() const {
  std::map<std::string, Tensor> s;
  for (size_t i = 0; i < params_.size(); ++i) s[params_[i].first] = avg_[i];
  return s;
}

void Ema::load_state_dict(const std::map<std::string, Tensor>& state) {
  for (auto& [name, p] : params_) {
    auto it = state.find(name);
    GT_CHECK(it != state.end(), "EMA state: missing '" << name << "'");
    GT_CHECK(it->second.shape() == p.shape(),
             "EMA state: '" << name << "' has shape " << it->second.shape() << " but the parameter is " << p.shape());
  }
  for (size_t i = 0; i < params_.size(); ++i)
    avg_[i] = state.at(params_[i].first).to(params_[i].second.device()).clone();
}

}  // namespace gt::optim
