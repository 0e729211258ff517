// tape.cpp: the per-thread tape, grad mode, and the reverse sweep.
#include "autograd/tape.h"

#include <atomic>
#include <sstream>

namespace gt {

namespace {
struct Entry {
  const char* name;
  std::vector<Tensor> inputs;
  Tensor output;
  BackwardFn backward;
};

std::atomic<uint64_t> g_next_generation{1};

struct Tape {
  std::vector<Entry> entries;
  uint64_t generation = g_next_generation++;
  // Drops every entry (freeing what the closures saved) and starts a new generation, so tensors
  // recorded on the old one are recognised as released.
  void release() {
    entries.clear();
    generation = g_next_generation++;
  }
};

thread_local Tape t_tape;
thread_local bool t_grad_enabled = true;
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = prev_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->requires_grad()) return true;
  return false;
}
bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

void record(const char* name, std::vector<Tensor> inputs, const Tensor& out, BackwardFn backward) {
  TensorImpl* o = out.impl();
  GT_CHECK(o, name << ": recording an undefined output");
  o->requires_grad = true;
  o->tape_generation = t_tape.generation;
  o->tape_index = (int64_t)t_tape.entries.size();
  t_tape.entries.push_back(Entry{name, std::move(inputs), out, std::move(backward)});
}

Tensor grad_buffer(const Tensor& x) {
  TensorImpl* impl = x.impl();
  if (!impl->grad.defined()) impl->grad = Tensor::zeros(x.shape(), x.device());
  return impl->grad;
}

Tensor grad_target(const Tensor& x, float* beta) {
  TensorImpl* impl = x.impl();
  if (impl->grad.defined()) {
    *beta = 1.0f;
  } else {
    impl->grad = Tensor::empty(x.shape(), x.device());
    *beta = 0.0f;
  }
  return impl->grad;
}

float* grad_dest(const Tensor& x, bool* overwrite) {
  if (x.device() != Device::CPU) {
    *overwrite = false;
    return grad_buffer(x).data();
  }
  float beta;
  float* p = grad_target(x, &beta).data();
  *overwrite = beta == 0.0f;
  return p;
}

void backward(const Tensor& loss) {
  check_defined("backward", loss, "the loss");
  GT_CHECK(loss.numel() == 1, "backward: the loss must have one element, got shape "
                                  << loss.shape() << " (reduce it with gt::sum or gt::mean, or pass a seed "
                                  << "gradient: backward(output, dout))");
  backward(loss, Tensor::ones(loss.shape(), loss.device()));
}

void backward(const Tensor& output, const Tensor& dout) {
  check_defined("backward", output, "the output");
  check_defined("backward", dout, "the seed gradient");
  check_same_shape("backward (output vs seed gradient)", output, dout);
  check_same_device("backward (output vs seed gradient)", output, dout);
  TensorImpl* o = output.impl();
  GT_CHECK(o->requires_grad,
           "backward: the tensor does not require grad (no input of it requires a gradient, or it was "
           "computed under NoGradGuard)");
  if (o->tape_generation == 0) {  // a leaf: its gradient is the seed
    GT_CHECK(!o->grad.defined(), "backward on a leaf that already has a gradient: call zero_grad() first");
    o->grad = dout.clone();
    return;
  }
  GT_CHECK(o->tape_generation == t_tape.generation && o->tape_index < (int64_t)t_tape.entries.size(),
           "backward: the tape that recorded this tensor was already released (backward() frees the "
           "tape after use, and reset_tape() drops it); run the forward pass again before calling "
           "backward() a second time");
  o->grad = dout.clone();
  NoGradGuard no_grad;  // backward closures run kernels; nothing they do is recorded
  try {
    for (int64_t i = o->tape_index; i >= 0; --i) {
      Entry& e = t_tape.entries[(size_t)i];
      Tensor g = e.output.impl()->grad;
      if (!g.defined()) continue;  // no gradient flows through this entry
      e.backward(g);
      e.output.impl()->grad = Tensor();  // intermediate gradients are freed as soon as used
    }
  } catch (...) {
    t_tape.release();
    throw;
  }
  t_tape.release();
}

Tensor detach(const Tensor& x) {
  check_defined("detach", x, "the input");
  Tensor d = x.view(x.shape());
  return d;  // a fresh impl: requires_grad false, no tape entry
}

size_t tape_size() { return t_tape.entries.size(); }

std::string tape_dump() {
  std::ostringstream os;
  for (size_t i = 0; i < t_tape.entries.size(); ++i) {
    const Entry& e = t_tape.entries[i];
    os << i << ": " << e.name;
    for (const Tensor& t : e.inputs) os << " " << t.shape();
    os << " -> " << e.output.shape() << "\n";
  }
  return os.str();
}

void reset_tape() { t_tape.release(); }

}  // namespace gt
