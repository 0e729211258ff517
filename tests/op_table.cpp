// op_table.cpp: the harness behind every op table row.
#include "tests/op_table.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "core/rng.h"

namespace gt::test {

namespace {
uint64_t row_seed(const OpRow& row) {
  if (row.seed) return row.seed;
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name: stable across runs and platforms
  for (char c : row.name) h = (h ^ (uint8_t)c) * 1099511628211ull;
  return h;
}
}  // namespace

std::vector<Tensor> make_inputs(const OpRow& row, Device device) {
  Generator gen(row_seed(row));
  std::vector<Tensor> out;
  for (const InputSpec& s : row.inputs) {
    if (s.kind == InputSpec::Indices) {
      out.push_back(Tensor::from_indices(s.indices, s.shape, device));
      continue;
    }
    std::vector<float> v = gen.randn(s.shape).to_vector();
    std::vector<float> u = gen.rand(s.shape).to_vector();
    for (size_t i = 0; i < v.size(); ++i) {
      switch (s.kind) {
        case InputSpec::Normal: v[i] *= s.a; break;
        case InputSpec::Uniform: v[i] = s.a + (s.b - s.a) * u[i]; break;
        case InputSpec::AwayFromZero: v[i] = (v[i] < 0 ? -1.f : 1.f) * (s.a + (s.b - s.a) * u[i]); break;
        case InputSpec::Indices: break;
      }
    }
    out.push_back(Tensor::from_vector(v, s.shape, device));
  }
  return out;
}

std::vector<HostTensor> to_host(const std::vector<Tensor>& inputs) {
  std::vector<HostTensor> h;
  for (const Tensor& t : inputs) {
    HostTensor ht;
    ht.shape = t.shape();
    if (t.dtype() == DType::I32) {
      ht.idx = t.to_vector_i32();
    } else {
      for (float f : t.to_vector()) ht.v.push_back(f);
    }
    h.push_back(std::move(ht));
  }
  return h;
}

namespace {
template <class T>
void require_close_impl(const std::string& what, const std::vector<float>& got, const std::vector<T>& want,
                        double atol, double rtol) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t wi = 0;
  bool finite = true;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) && std::isfinite((double)want[i])) finite = false;
    double r = std::fabs((double)got[i] - (double)want[i]) / (atol + rtol * std::fabs((double)want[i]));
    if (!(r <= worst)) {  // also catches NaN
      worst = r;
      wi = i;
    }
  }
  std::ostringstream os;
  if (!got.empty())
    os << what << ": worst element " << wi << " got " << got[wi] << " want " << (double)want[wi]
       << " (error/tolerance " << worst << ")";
  INFO(os.str());
  REQUIRE(finite);
  REQUIRE(worst <= 1.0);
}
}  // namespace

void require_close(const std::string& what, const std::vector<float>& got, const std::vector<double>& want,
                   double atol, double rtol) {
  require_close_impl(what, got, want, atol, rtol);
}
void require_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want,
                   double atol, double rtol) {
  require_close_impl(what, got, want, atol, rtol);
}

void check_forward(const OpRow& row) {
  if (!row.ref) return;
  std::vector<Tensor> in = make_inputs(row, Device::CPU);
  Tensor y;
  {
    NoGradGuard ng;
    y = row.op(in);
  }
  RefResult want = row.ref(to_host(in));
  INFO(row.name << ": forward shape " << y.shape() << " vs reference " << want.shape);
  REQUIRE(y.shape() == want.shape);
  require_close(row.name + " forward vs double reference", y.to_vector(), want.v, row.tol.fwd_atol,
                row.tol.fwd_rtol);
}

void check_gradients(const OpRow& row) {
  std::vector<Tensor> in = make_inputs(row, Device::CPU);
  GradcheckOptions opt;
  opt.eps = row.tol.fd_eps;
  opt.atol = row.tol.fd_atol;
  opt.rtol = row.tol.fd_rtol;
  GradcheckResult r = gradcheck(row.op, in, opt);
  INFO(row.name << ": " << r.message);
  REQUIRE(r.checked > 0);
  REQUIRE(r.ok);
}

void check_cpu_vs_cuda(const OpRow& row) {
  std::vector<Tensor> results[2];
  for (int d = 0; d < 2; ++d) {
    Device dev = d == 0 ? Device::CPU : Device::CUDA;
    std::vector<Tensor> in = make_inputs(row, dev);
    for (Tensor& t : in)
      if (t.dtype() == DType::F32) t.set_requires_grad(true);
    reset_tape();
    Tensor y = row.op(in);
    REQUIRE(y.device() == dev);
    Generator gen(99);
    backward(y, gen.randn(y.shape(), dev));
    results[d].push_back(y);
    for (Tensor& t : in)
      if (t.dtype() == DType::F32) results[d].push_back(t.grad().defined() ? t.grad() : Tensor::zeros(t.shape(), dev));
  }
  for (size_t k = 0; k < results[0].size(); ++k) {
    std::string what = row.name + (k == 0 ? " forward" : " gradient of input " + std::to_string(k - 1)) + " CUDA vs CPU";
    require_close(what, results[1][k].to_vector(), results[0][k].to_vector(), row.tol.dev_atol, row.tol.dev_rtol);
  }
}

void run_op_table(const std::vector<OpRow>& rows) {
  for (const OpRow& row : rows) {
    DYNAMIC_SECTION(row.name << " forward") { check_forward(row); }
    DYNAMIC_SECTION(row.name << " gradcheck") { check_gradients(row); }
  }
}

bool cuda_or_skip() {
  if (cuda_available()) return true;
  WARN("SKIPPED [cuda] test: " << cuda_unavailable_reason());
  return false;
}

void run_op_table_cuda(const std::vector<OpRow>& rows) {
  if (!cuda_or_skip()) return;
  for (const OpRow& row : rows) {
    DYNAMIC_SECTION(row.name << " cpu vs cuda") { check_cpu_vs_cuda(row); }
  }
}

std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx((size_t)shape.size());
  for (int d = shape.size() - 1; d >= 0; --d) {
    idx[(size_t)d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}
int64_t ravel(const std::vector<int64_t>& idx, const Shape& shape) {
  int64_t f = 0;
  for (int d = 0; d < shape.size(); ++d) f = f * shape[d] + idx[(size_t)d];
  return f;
}

}  // namespace gt::test
