// Feature maps phi for linear attention, as composites of nanoattn ops (autograd for free).
// Each maps x: (..., d) -> (..., F) along the last axis only, token by token: no statistic is
// shared across positions (no data-dependent stabiliser over keys), so every map is safe for
// causal attention and gives the same features in the parallel and the recurrent form.
#pragma once
#include <cstdint>
#include <string>

#include "nanoattn/ops.h"
#include "nanoattn/vmath.h"

namespace na::feature_maps {

enum class Kind { Elu, Relu, Dpfp, Favor };

// elu(x) + 1 of one float: x + 1 for x > 0, else e^x (= expm1(x) + 1), whose derivative is
// itself. The elu feature map and the causal kernel's fused map both use this definition.
inline float elu_plus_one(float x) { return x > 0.0f ? x + 1.0f : exp_approx(x); }

// "elu" | "relu" | "dpfp" | "favor"; anything else throws, listing the known names.
Kind parse(const std::string& name);
const char* name(Kind kind);
// F for input width d. nu: dpfp's expansion; m: favor's number of random features.
int64_t feature_dim(Kind kind, int64_t d, int64_t nu, int64_t m);

// elu(x) + 1 (Katharopoulos et al. 2020): positive, F = d.
Var elu(const Var& x);
// relu(x): non-negative, F = d.
Var relu(const Var& x);
// torch.roll along the last axis: out[..., j] = x[..., (j - shift) mod d]. slice + concat.
Var roll_last(const Var& x, int64_t shift);
// DPFP (Schlag et al. 2021, deterministic parameter-free projection), expansion nu in [1, 2d]:
// x' = [relu(x), relu(-x)] (2d), phi = concat_{i=1..nu} x' * roll(x', i)  -> F = 2 d nu.
Var dpfp(const Var& x, int64_t nu);
// FAVOR+ positive random features (Choromanski et al. 2021, Performer):
// x' = x d^(-1/4), phi(x) = exp(W x' - |x'|^2 / 2) / sqrt(m), with w: (m, d) a fixed
// (non-trainable) Gaussian matrix from favor_draw. F = m. No max-subtraction stabiliser (it would
// couple positions); with the d^(-1/4) scaling the exponent stays moderate for unit-scale x.
Var favor(const Var& x, const Tensor& w);
// Fills w (m, d) with i.i.d. N(0, 1) entries from `key` (na's counter-based RNG: the same key
// gives the same bits on every machine and thread count). w may live in the tape's arena.
void favor_fill(const Tensor& w, uint64_t key);
// The same into a new owned (m, d) tensor.
Tensor favor_draw(int64_t m, int64_t d, uint64_t key);

}  // namespace na::feature_maps
