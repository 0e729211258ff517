// main.cpp: Catch2's main, plus a banner naming the build (CUDA or not, device, threads) so a test
// log says what it tested.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "core/device.h"

int main(int argc, char* argv[]) {
  Catch::Session session;
  if (int rc = session.applyCommandLine(argc, argv)) return rc;
  if (!session.configData().listTests && !session.configData().listTestNamesOnly) {
    std::fprintf(stderr, "gentape tests: CUDA %s; %s; %d CPU threads\n",
                 gt::built_with_cuda() ? "built" : "not built",
                 gt::cuda_available() ? ("device " + gt::cuda_device_name()).c_str()
                                      : ("no GPU: " + gt::cuda_unavailable_reason()).c_str(),
                 gt::num_threads());
  }
  return session.run();
}
