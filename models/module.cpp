// module.cpp: parameter registration, hierarchical names, device moves and state dicts.
#include "models/module.h"

#include <set>
#include <sstream>

namespace gt::nn {

void Module::check_name(const std::string& name) const {
  GT_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "module: name '" << name << "' must be non-empty and contain no '.'");
  for (const auto& p : params_) GT_CHECK(p.first != name, "module: '" << name << "' is already registered");
  for (const auto& c : children_) GT_CHECK(c.first != name, "module: '" << name << "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_name(name);
  check_defined("register_parameter", t, name.c_str());
  t.set_requires_grad(true);
  params_.push_back({name, t});
  return t;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [n, t] : params_) out.push_back({prefix + n, t});
  for (const auto& [n, c] : children_) c->collect(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& p : named_parameters()) out.push_back(p.second);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& p : named_parameters()) n += p.second.numel();
  return n;
}

void Module::to(Device device) {
  for (auto& [name, t] : named_parameters()) {
    if (t.device() == device) continue;
    Tensor moved = t.to(device);
    TensorImpl* impl = t.impl();
    impl->storage = moved.impl()->storage;
    impl->offset = moved.impl()->offset;
    impl->device = device;
    impl->grad = Tensor();
  }
}

Device Module::device() const {
  auto p = named_parameters();
  return p.empty() ? Device::CPU : p.front().second.device();
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> m;
  for (auto& [n, t] : named_parameters()) m[n] = t;
  return m;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  auto params = named_parameters();
  std::set<std::string> seen;
  std::ostringstream missing;
  for (auto& [name, t] : params) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing << " " << name;
      continue;
    }
    seen.insert(name);
    GT_CHECK(it->second.shape() == t.shape(), "load_state_dict: '" << name << "' has shape " << it->second.shape()
                                                                   << " in the checkpoint but " << t.shape()
                                                                   << " in the model");
    GT_CHECK(it->second.dtype() == DType::F32, "load_state_dict: '" << name << "' is " << it->second.dtype());
  }
  std::ostringstream unexpected;
  for (auto& [name, t] : state)
    if (!seen.count(name)) unexpected << " " << name;
  if (strict) {
    GT_CHECK(missing.str().empty() && unexpected.str().empty(),
             "load_state_dict: missing keys:" << (missing.str().empty() ? " none" : missing.str())
                                              << "; unexpected keys:" << (unexpected.str().empty() ? " none" : unexpected.str()));
  }
  // Validated everything first: a failed load changes nothing.
  for (auto& [name, t] : params) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second.to(t.device()));
  }
}

void Module::zero_grad() {
  for (auto& p : named_parameters()) p.second.zero_grad();
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

}  // namespace gt::nn
