// bench_sgemm.cpp: single-precision GEMM, C (M, N) = alpha op(A) op(B) + beta C (kernels/matmul.h).
//
// Cases: the VAE's first encoder layer, x (128, 784) -> Linear(784, 400), as the Linear op runs it:
//   forward   Y  (128, 400) = X (128, 784) W^T        W stored (400, 784)   gemm(ta=0, tb=1)
//   backward  dX (128, 784) = dY (128, 400) W          gemm(0, 0)
//   backward  dW (400, 784) += dY^T (400, 128) X       gemm(1, 0), beta = 1 (accumulates)
// the latent layers' small products (K or N = 20), two im2col convolution products (32 channels,
// 28 x 28), plus square 256, 512 and 1024 (no transposes). FLOPs = 2 M N K (the beta*C term is ignored).
//
// CPU lines: gemm_cpu (one independent single-threaded product per thread, each on its own block
// of C, through gentape's kernel (kernels/gemm_simd.h) where gemm_simd_preferred says so:
// kernels/matmul.cpp), "(eigen)": the same split with Eigen's kernel in every block
// (gemm_eigen_cpu), and "(eigen-threads)": the product as one Eigen call that threads itself with
// OpenMP (what gemm_cpu did before 2026-12-02). Both are checked against gemm_cpu.
//
// Check first: the CPU result of each VAE shape and the 256 square against a naive double loop;
// on CUDA (cuBLAS, FP32, no TF32) every case against the CPU result. Then time: median of `reps`.
//
//   bench_sgemm [reps=20] [warmup=3]
#include <cstdio>
#include <string>
#include <vector>

#include "benchmarks/harness.h"
#include "core/device.h"
#include "core/tensor.h"
#include "kernels/matmul.h"

#include <Eigen/Core>

namespace {

using gt::Device;
using gt::Tensor;

struct Case {
  std::string name;
  bool ta, tb;
  int64_t M, N, K;
  float beta;
  bool check_naive;  // compare the CPU result with the double loop (cheap for these sizes)
};

// Inputs uniform in [-1, 1): every partial sum of a K-term dot product stays ~sqrt(K)/3 <= 11, so
// float32 accumulation errs by ~sqrt(K) * 6e-8 * 11 ~ 2e-5 (K <= 1024). 2e-4 leaves a 10x margin; a
// wrong index or transpose errs by O(1).
constexpr double kAtol = 2e-4;
constexpr double kRtol = 1e-5;

// C (M, N) = op(A) op(B) + beta C0, in double; A stored (M, K) or (K, M) when ta, B (K, N) or (N, K).
std::vector<double> naive_gemm(const Case& c, const std::vector<float>& A, const std::vector<float>& B,
                               const std::vector<float>& C0) {
  std::vector<double> C(c.M * c.N);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        double a = c.ta ? A[k * c.M + i] : A[i * c.K + k];
        double b = c.tb ? B[j * c.K + k] : B[k * c.N + j];
        s += a * b;
      }
      C[i * c.N + j] = s + (double)c.beta * C0[i * c.N + j];
    }
  return C;
}

// The same product through one Eigen call on the whole matrices: Eigen's own OpenMP threading.
void eigen_gemm(const Case& c, const float* A, const float* B, float* C) {
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMat> a(A, c.ta ? c.K : c.M, c.ta ? c.M : c.K), b(B, c.tb ? c.N : c.K, c.tb ? c.K : c.N);
  Eigen::Map<RowMat> out(C, c.M, c.N);
  if (c.beta == 0.f) out.setZero();
  if (!c.ta && !c.tb) out.noalias() += a * b;
  else if (!c.ta && c.tb) out.noalias() += a * b.transpose();
  else if (c.ta && !c.tb) out.noalias() += a.transpose() * b;
  else out.noalias() += a.transpose() * b.transpose();
}

}  // namespace

int main(int argc, char** argv) {
  gt::bench::Options opt = gt::bench::parse_options(argc, argv, 20);
  const std::vector<Case> cases = {
      {"sgemm vae fwd  Y=X W^T   128x400x784", false, true, 128, 400, 784, 0.f, true},
      {"sgemm vae bwd  dX=dY W   128x784x400", false, false, 128, 784, 400, 0.f, true},
      {"sgemm vae bwd  dW+=dY^T X 400x784x128", true, false, 400, 784, 128, 1.f, true},
      {"sgemm vae fc3 Y=Z W^T    128x400x20", false, true, 128, 400, 20, 0.f, true},
      {"sgemm vae fc21 dX=dY W   128x400x20", false, false, 128, 400, 20, 1.f, true},
      {"sgemm vae fc21 dW=dY^T X 20x400x128", true, false, 20, 400, 128, 0.f, true},
      {"sgemm vae fc3 dW=dY^T Z  400x20x128", true, false, 400, 20, 128, 0.f, true},
      {"sgemm conv im2col fwd    32x784x288", false, false, 32, 784, 288, 0.f, true},
      {"sgemm conv im2col dW+=   32x288x784", false, true, 32, 288, 784, 1.f, true},
      {"sgemm square 256", false, false, 256, 256, 256, 0.f, true},
      {"sgemm square 512", false, false, 512, 512, 512, 0.f, false},
      {"sgemm square 1024", false, false, 1024, 1024, 1024, 0.f, false},
  };
  const bool cuda = gt::cuda_available();

  gt::bench::print_machine(Device::CPU);
  if (cuda) gt::bench::print_machine(Device::CUDA);
  std::printf("timing: median (and min) of %d repetitions after %d warm-up runs\n", opt.reps, opt.warmup);

  uint64_t seed = 1;
  for (const Case& c : cases) {
    std::vector<float> A = gt::bench::random_uniform(c.M * c.K, -1.f, 1.f, seed++);
    std::vector<float> B = gt::bench::random_uniform(c.K * c.N, -1.f, 1.f, seed++);
    std::vector<float> C0 = gt::bench::random_uniform(c.M * c.N, -1.f, 1.f, seed++);
    const double flops = 2.0 * (double)c.M * (double)c.N * (double)c.K;

    // ---- CPU: check once (from C0), then time ----
    std::vector<float> C = C0;
    gt::gemm_cpu(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), B.data(), c.beta, C.data());
    const std::vector<float> c_cpu = C;
    if (c.check_naive) gt::bench::check_close(c.name + " cpu vs double loop", C, naive_gemm(c, A, B, C0), kAtol, kRtol);
    gt::bench::Timing t = gt::bench::time_fn(Device::CPU, [&] {
      gt::gemm_cpu(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), B.data(), c.beta, C.data());
    }, opt);
    gt::bench::report_gflops(c.name, Device::CPU, t, flops);
    {
      std::vector<float> E = C0;
      gt::gemm_eigen_cpu(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), B.data(), c.beta, E.data());
      gt::bench::check_close(c.name + " eigen vs gemm_cpu", E, c_cpu, kAtol, kRtol);
      gt::bench::Timing te = gt::bench::time_fn(Device::CPU, [&] {
        gt::gemm_eigen_cpu(c.ta, c.tb, c.M, c.N, c.K, 1.f, A.data(), B.data(), c.beta, E.data());
      }, opt);
      gt::bench::report_gflops(c.name + " (eigen)", Device::CPU, te, flops);
    }
    {
      std::vector<float> E = C0;
      eigen_gemm(c, A.data(), B.data(), E.data());
      gt::bench::check_close(c.name + " eigen-threads vs gemm_cpu", E, c_cpu, kAtol, kRtol);
      gt::bench::Timing te = gt::bench::time_fn(Device::CPU, [&] { eigen_gemm(c, A.data(), B.data(), E.data()); }, opt);
      gt::bench::report_gflops(c.name + " (eigen-threads)", Device::CPU, te, flops);
    }

    // ---- CUDA (cuBLAS): check against the CPU result, then time ----
#if GENTAPE_HAS_CUDA
    if (cuda) {
      Tensor dA = Tensor::from_vector(A, {(int64_t)A.size()}, Device::CUDA);
      Tensor dB = Tensor::from_vector(B, {(int64_t)B.size()}, Device::CUDA);
      Tensor dC = Tensor::from_vector(C0, {(int64_t)C0.size()}, Device::CUDA);
      gt::gemm_cuda(c.ta, c.tb, c.M, c.N, c.K, 1.f, dA.data(), dB.data(), c.beta, dC.data());
      gt::bench::check_close(c.name + " cuda vs cpu", dC.to_vector(), c_cpu, kAtol, kRtol);
      gt::bench::Timing tc = gt::bench::time_fn(Device::CUDA, [&] {
        gt::gemm_cuda(c.ta, c.tb, c.M, c.N, c.K, 1.f, dA.data(), dB.data(), c.beta, dC.data());
      }, opt);
      gt::bench::report_gflops(c.name, Device::CUDA, tc, flops);
    }
#endif
  }
  if (!cuda) std::printf("cuda: skipped (%s)\n", gt::cuda_unavailable_reason().c_str());
  return 0;
}
