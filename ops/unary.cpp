// Elementwise unary ops: exp, log, elu, relu, gelu, tanh, sigmoid, softplus. Each is a value
// function f(x) and a derivative df(x, y) (y = f(x), which several derivatives reuse) plugged
// into one template that does the forward, the tape entry and the backward.
#include <algorithm>
#include <cmath>

#include "nanoattn/ops.h"
#include "nanoattn/vmath.h"
#include "op_util.h"

namespace na {

namespace {

// x: any shape -> same shape. out = f(x); backward dx += g * df(x, out).
template <class F, class DF>
Var unary(const char* op, const Var& x, F f, DF df) {
  NA_PROFILE_OP(op);
  detail::check_defined(op, x, "x");
  Var out = tape().output(x.shape(), {x});
  const float* xp = x.value().data();
  float* y = out.value().data();
  parallel_for(x.numel(), detail::kElemGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(xp[i]);
  });
  record_backward(out, [=] {
    if (!x.requires_grad()) return;
    const float* xp = x.value().data();
    const float* y = out.value().data();
    const float* g = out.grad().data();
    float beta;  // a fresh gradient is written, not zeroed and added to
    float* d = x.grad_sink(beta).data();
    parallel_for(x.numel(), detail::kElemGrain, [&](int64_t b, int64_t e) {
      if (beta != 0.0f)
        for (int64_t i = b; i < e; ++i) d[i] += g[i] * df(xp[i], y[i]);
      else
        for (int64_t i = b; i < e; ++i) d[i] = g[i] * df(xp[i], y[i]);
    });
  });
  return out;
}

// 1 / (1 + e^-x) without overflow: exp only ever sees -|x|, and the x < 0 branch avoids the
// cancellation in 1 - sigmoid(|x|) (sigmoid(-30) stays 9.4e-14 rather than 0).
inline float stable_sigmoid(float x) {
  float e = std::exp(-std::fabs(x));
  return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

}  // namespace

Var exp(const Var& x) {
  return unary(
      "exp", x, [](float v) { return std::exp(v); }, [](float, float y) { return y; });
}

// Non-positive inputs give -inf / NaN, as in PyTorch (no per-element check).
Var log(const Var& x) {
  return unary(
      "log", x, [](float v) { return std::log(v); }, [](float v, float) { return 1.0f / v; });
}

// x > 0 ? x : alpha (e^x - 1); the derivative at 0 is the left one (alpha), as in PyTorch.
Var elu(const Var& x, float alpha) {
  return unary(
      "elu", x, [alpha](float v) { return v > 0.0f ? v : alpha * std::expm1(v); },
      [alpha](float v, float) { return v > 0.0f ? 1.0f : alpha * std::exp(v); });
}

// std::max(v, 0) keeps NaN (it returns v unless v < 0), so a NaN is not silently zeroed.
// Derivative 0 at the kink, as in PyTorch.
Var relu(const Var& x) {
  return unary(
      "relu", x, [](float v) { return std::max(v, 0.0f); },
      [](float v, float) { return v > 0.0f ? 1.0f : 0.0f; });
}

// x Phi(x); d/dx = Phi(x) + x phi(x).
Var gelu(const Var& x) {
  return unary(
      "gelu", x, [](float v) { return gelu_value(v); }, [](float v, float) { return gelu_slope(v); });
}

Var tanh(const Var& x) {
  return unary(
      "tanh", x, [](float v) { return std::tanh(v); }, [](float, float y) { return 1.0f - y * y; });
}

Var sigmoid(const Var& x) {
  return unary(
      "sigmoid", x, [](float v) { return stable_sigmoid(v); },
      [](float, float y) { return y * (1.0f - y); });
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x, no log(1) = 0 rounding
// for very negative x. d/dx = sigmoid(x).
Var softplus(const Var& x) {
  return unary(
      "softplus", x,
      [](float v) { return std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v))); },
      [](float v, float) { return stable_sigmoid(v); });
}

}  // namespace na
