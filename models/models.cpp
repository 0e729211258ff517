// models.cpp: placeholder translation unit of the models layer (layers, optimisers, AE/VAE/DDPM
// arrive with issues 3-5). It exists so gentape::models is a real library target from the start.
#include "autograd/ops.h"

namespace gt::models {
// Version string of the models layer, reported by `gentape info`.
const char* version() { return "0.1.0"; }
}  // namespace gt::models
