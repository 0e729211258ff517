// module.h: composing layers with hierarchical parameter names, as PyTorch's nn.Module does.
//
// A Module owns parameters (leaf tensors with requires_grad) and child modules, each registered
// under a name; named_parameters() walks them depth-first and joins names with dots, so a VAE's
// first layer's weight is "fc1.weight" — the same key PyTorch uses, which is what lets a gentape
// checkpoint load into the equivalent PyTorch model.
//
//   struct Mlp : gt::nn::Module {
//     std::shared_ptr<gt::nn::Linear> fc1, fc2;
//     Mlp(gt::Generator& g) {
//       fc1 = register_module("fc1", std::make_shared<gt::nn::Linear>(784, 400, g));
//       fc2 = register_module("fc2", std::make_shared<gt::nn::Linear>(400, 10, g));
//     }
//     gt::Tensor forward(const gt::Tensor& x) { return fc2->forward(gt::relu(fc1->forward(x))); }
//   };
//   // mlp.named_parameters(): fc1.weight (400, 784), fc1.bias (400), fc2.weight, fc2.bias
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace gt::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Depth-first, registration order: own parameters first, then each child's under "child.".
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;  // total element count

  // Moves every parameter to `device` in place (tensor handles held elsewhere stay valid).
  void to(Device device);
  Device device() const;

  // name -> parameter (shares storage; copy before mutating if you need a snapshot).
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in. Errors name the missing, unexpected, or mis-shaped keys.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  void zero_grad();

  // Training / evaluation mode (dropout-like behaviour, if a module has any).
  void train(bool on = true);
  bool is_training() const { return training_; }

 protected:
  Tensor register_parameter(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    check_name(name);
    children_.push_back({name, m});
    return m;
  }

 private:
  void check_name(const std::string& name) const;
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace gt::nn
