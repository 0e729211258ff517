// parallel.cpp: anchors the kernels library (parallel_for is header-only) and reports the thread
// count the CPU kernels will use.
#include "kernels/parallel.h"

namespace gt {
int kernel_threads() { return omp_get_max_threads(); }
}  // namespace gt
