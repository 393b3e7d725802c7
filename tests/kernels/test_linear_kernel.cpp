// Linear attention kernels (plugins/linear/causal_linear.h) and feature maps
// (plugins/linear/feature_maps.h). The plugin around them is tested through the loader by the
// conformance suite.
//
// Tolerances:
// - fused causal vs the naive O(T^2) reference, and bidirectional composite vs reference:
//   outputs within 1e-5 and gradients within 1e-5 of the largest |value| of the reference's
//   output / gradients (float32 sums of up to T F terms taken in a different order; measured
//   differences are ~1e-7 relative). T = 512: 1e-4 of the largest value (longer sums).
// - finite differences: gradcheck defaults (h 1e-2, atol 2e-3, rtol 1e-2); inputs of the
//   kernels are positive features in [0.05, 1) (so den >= ~0.0025), inputs of maps with a kink
//   at 0 (relu, dpfp) are at least 0.1 away from it (> 2h).
// - causality and thread invariance: exact (bitwise).
// - favor: the hand-computed value within 1e-5 relative; the Monte-Carlo estimate of the
//   softmax kernel exp(q.k / sqrt(d)) with m = 16384 features within 5% (its standard error
//   here is < 1%).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "gradcheck.h"
#include "linear/causal_linear.h"
#include "linear/feature_maps.h"
#include "nanoattn/ops.h"

using namespace na;
using namespace na::testing;

namespace {

constexpr float kEps = 1e-6f;

// phi_q, phi_k: positive features (B, H, T, F); v: (B, H, S, Dv) in [-1, 1).
std::vector<Tensor> kernel_inputs(int64_t B, int64_t H, int64_t T, int64_t F, int64_t Dv,
                                  uint64_t seed, int64_t S = -1) {
  if (S < 0) S = T;
  return {random_tensor({B, H, T, F}, seed, 0.05f, 1.0f),
          random_tensor({B, H, S, F}, seed + 1, 0.05f, 1.0f),
          random_tensor({B, H, S, Dv}, seed + 2, -1.0f, 1.0f)};
}

Fn fused(bool normalize) {
  return [=](const std::vector<Var>& x) {
    return causal_linear_attention(x[0], x[1], x[2], kEps, normalize);
  };
}
Fn bidirectional(bool normalize) {
  return [=](const std::vector<Var>& x) {
    return bidirectional_linear_attention(x[0], x[1], x[2], kEps, normalize);
  };
}
Fn reference(bool normalize, bool causal) {
  return [=](const std::vector<Var>& x) {
    return linear_attention_reference(x[0], x[1], x[2], kEps, normalize, causal);
  };
}

// f agrees with g (the oracle) within rel times the oracle's largest |output| and |gradient|.
void check_agree(const Fn& f, const Fn& g, const std::vector<Tensor>& inputs, double rel) {
  Agreement a = compare(f, g, inputs);
  CAPTURE(a.max_out_diff);
  CAPTURE(a.max_grad_diff);
  CHECK(a.out_rel <= rel);
  CHECK(a.grad_rel <= rel);
}

// The message of the na::Error f throws ("" if none).
std::string error_of(const std::function<void()>& f) {
  std::string msg;
  try {
    f();
  } catch (const Error& e) {
    msg = e.what();
  }
  tape().reset();
  return msg;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct Dims {
  int64_t B, H, T, F, Dv;
};

}  // namespace

// ---- the fused causal kernel --------------------------------------------------------------

TEST_CASE("causal_linear_attention: fused == naive reference, forward and gradients") {
  // F != Dv both ways; Dv = 7 / 9 / 16 hit the dot product's tail, main + tail and main paths.
  // T = 150, F = 37, Dv = 70: several token blocks (64 + 64 + 22), strips of rows with a
  // shorter last one, and blocks of 16 or 32 columns plus a remainder, in both scan directions;
  // T = 70, F = 64, Dv = 32: whole strips and whole column blocks only.
  for (Dims d : {Dims{2, 3, 17, 5, 7}, Dims{1, 2, 33, 24, 9}, Dims{2, 2, 40, 16, 16},
                 Dims{1, 1, 1, 3, 2}, Dims{1, 2, 150, 37, 70}, Dims{1, 1, 70, 64, 32}}) {
    for (bool normalize : {true, false}) {
      CAPTURE(d.T);
      CAPTURE(d.F);
      CAPTURE(d.Dv);
      CAPTURE(normalize);
      check_agree(fused(normalize), reference(normalize, true),
                  kernel_inputs(d.B, d.H, d.T, d.F, d.Dv, 10 + d.T), 1e-5);
    }
  }
}

TEST_CASE("causal_linear_attention: a long sequence (T = 512) agrees with the reference") {
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    check_agree(fused(normalize), reference(normalize, true), kernel_inputs(1, 2, 512, 8, 12, 5),
                1e-4);
  }
}

TEST_CASE("causal_linear_attention: finite-difference gradients") {
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    CHECK_GRADIENTS(fused(normalize), kernel_inputs(1, 2, 5, 3, 4, 1));
    CHECK_GRADIENTS(fused(normalize), kernel_inputs(2, 1, 4, 4, 3, 2));
    // Only some inputs want a gradient: the kernel skips the others' sweeps.
    CHECK_GRADIENTS(fused(normalize), kernel_inputs(1, 2, 5, 3, 4, 3), GradCheck{},
                    std::vector<bool>{true, false, false});
    CHECK_GRADIENTS(fused(normalize), kernel_inputs(1, 2, 5, 3, 4, 4), GradCheck{},
                    std::vector<bool>{false, true, false});
    CHECK_GRADIENTS(fused(normalize), kernel_inputs(1, 2, 5, 3, 4, 5), GradCheck{},
                    std::vector<bool>{false, false, true});
  }
  // phi_q and phi_k the same Var (shared features): both sweeps accumulate into one gradient.
  Fn shared = [](const std::vector<Var>& x) {
    return causal_linear_attention(x[0], x[0], x[1], kEps, true);
  };
  CHECK_GRADIENTS(shared,
                  {random_tensor({1, 2, 5, 3}, 6, 0.05f, 1.0f), random_tensor({1, 2, 5, 4}, 7)});
}

TEST_CASE("causal_linear_attention: exactly causal in the output and in the gradients") {
  const int64_t B = 2, H = 2, T = 12, F = 5, Dv = 6, t0 = 5;
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    std::vector<Tensor> a = kernel_inputs(B, H, T, F, Dv, 20);
    std::vector<Tensor> b = {a[0].clone(), a[1].clone(), a[2].clone()};
    for (Tensor& t : b) {  // change every input at t >= t0
      const int64_t row = t.dim(3);
      for (int64_t n = 0; n < B * H; ++n)
        for (int64_t t1 = t0; t1 < T; ++t1)
          for (int64_t j = 0; j < row; ++j) t[(n * T + t1) * row + j] += 0.37f + 0.01f * j;
    }
    // Outputs before t0: bitwise the same.
    auto run = [&](const std::vector<Tensor>& in) {
      Var o = causal_linear_attention(tape().leaf(in[0]), tape().leaf(in[1]), tape().leaf(in[2]),
                                      kEps, normalize);
      Tensor v = o.value().clone();
      tape().reset();
      return v;
    };
    Tensor oa = run(a), ob = run(b);
    bool past_same = true, future_differs = false;
    for (int64_t n = 0; n < B * H; ++n)
      for (int64_t t1 = 0; t1 < T; ++t1)
        for (int64_t j = 0; j < Dv; ++j) {
          int64_t i = (n * T + t1) * Dv + j;
          bool same = std::memcmp(&oa[i], &ob[i], sizeof(float)) == 0;
          if (t1 < t0)
            past_same = past_same && same;
          else
            future_differs = future_differs || !same;
        }
    CHECK(past_same);
    CHECK(future_differs);

    // A loss on outputs before t0 only: every input gradient at t >= t0 is exactly zero.
    std::vector<Var> x;
    for (const Tensor& t : a) x.push_back(tape().leaf(t.clone(), true));
    Var o = causal_linear_attention(x[0], x[1], x[2], kEps, normalize);
    Tensor seed = random_tensor(o.shape(), 3);
    for (int64_t n = 0; n < B * H; ++n)
      for (int64_t t1 = t0; t1 < T; ++t1)
        for (int64_t j = 0; j < Dv; ++j) seed[(n * T + t1) * Dv + j] = 0.0f;
    tape().backward(o, seed);
    for (const Var& v : x) {
      const Tensor& g = v.grad();
      const int64_t row = g.dim(3);
      bool future_zero = true, past_nonzero = false;
      for (int64_t n = 0; n < B * H; ++n)
        for (int64_t t1 = 0; t1 < T; ++t1)
          for (int64_t j = 0; j < row; ++j) {
            float gv = g[(n * T + t1) * row + j];
            if (t1 >= t0)
              future_zero = future_zero && gv == 0.0f;
            else
              past_nonzero = past_nonzero || gv != 0.0f;
          }
      CHECK(future_zero);
      CHECK(past_nonzero);
    }
    tape().reset();
  }
}

TEST_CASE("causal_linear_attention: bitwise identical for 1 and 2 threads") {
  // B H = 16 tasks of T = 96 tokens: several run at once on different workers, so per-thread
  // scratch that tasks wrongly shared would show up here (also with vector blocks: F, Dv = 40).
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    CHECK_THREAD_INVARIANT(fused(normalize), kernel_inputs(4, 4, 96, 8, 12, 30));
    CHECK_THREAD_INVARIANT(fused(normalize), kernel_inputs(4, 4, 96, 40, 40, 31));
  }
}

TEST_CASE("causal_linear_attention with the fused elu + 1 map == the kernel on elu features") {
  // The plugin's elu path: the kernel maps the raw q and k itself. Same operations in the same
  // order as feature_maps::elu followed by the kernel, so outputs and gradients agree bitwise.
  auto fused_elu = [](bool normalize) -> Fn {
    return [=](const std::vector<Var>& x) {
      return causal_linear_attention(x[0], x[1], x[2], kEps, normalize, KernelMap::EluPlusOne);
    };
  };
  auto composite = [](bool normalize) -> Fn {
    return [=](const std::vector<Var>& x) {
      return causal_linear_attention(feature_maps::elu(x[0]), feature_maps::elu(x[1]), x[2], kEps,
                                     normalize);
    };
  };
  auto raw_inputs = [](int64_t B, int64_t H, int64_t T, int64_t F, int64_t Dv, uint64_t seed) {
    return std::vector<Tensor>{random_tensor({B, H, T, F}, seed, -2.0f, 2.0f),
                               random_tensor({B, H, T, F}, seed + 1, -2.0f, 2.0f),
                               random_tensor({B, H, T, Dv}, seed + 2, -1.0f, 1.0f)};
  };
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    for (Dims d : {Dims{2, 3, 17, 8, 12}, Dims{1, 2, 40, 36, 7}}) {
      Agreement a = compare(fused_elu(normalize), composite(normalize),
                            raw_inputs(d.B, d.H, d.T, d.F, d.Dv, 60 + d.F));
      CHECK(a.max_out_diff == 0.0);
      CHECK(a.max_grad_diff == 0.0);
    }
    CHECK_GRADIENTS(fused_elu(normalize), raw_inputs(1, 2, 5, 3, 4, 70));
    CHECK_GRADIENTS(fused_elu(normalize), raw_inputs(1, 2, 5, 3, 4, 71), GradCheck{},
                    std::vector<bool>{true, false, false});
    CHECK_GRADIENTS(fused_elu(normalize), raw_inputs(1, 2, 5, 3, 4, 72), GradCheck{},
                    std::vector<bool>{false, true, false});
    CHECK_THREAD_INVARIANT(fused_elu(normalize), raw_inputs(4, 4, 96, 8, 12, 73));
  }
}

TEST_CASE("causal_linear_attention_packed == the kernel on split heads, bitwise") {
  // qkv (B, T, W): 2 spare columns, q, k (H F each), v (H Dv), 3 spare columns. The packed
  // kernel must read and write exactly the columns split_heads would copy.
  struct Case {
    int64_t B, H, T, F, Dv;
  };
  for (Case c : {Case{2, 3, 17, 8, 12}, Case{1, 2, 33, 5, 4}}) {
    const int64_t qc = 2, kc = qc + c.H * c.F, vc = kc + c.H * c.F, W = vc + c.H * c.Dv + 3;
    CAPTURE(c.F);
    const std::vector<Tensor> in = {random_tensor({c.B, c.T, W}, 80 + c.F, -2.0f, 2.0f)};
    for (KernelMap map : {KernelMap::None, KernelMap::EluPlusOne})
      for (bool normalize : {true, false}) {
        CAPTURE(normalize);
        CAPTURE(map == KernelMap::None);
        // With no map, q and k are the features: the inputs must keep den away from 0.
        const std::vector<Tensor> args =
            map == KernelMap::None ? std::vector<Tensor>{random_tensor({c.B, c.T, W}, 90, 0.05f, 1.0f)} : in;
        Fn packed = [=](const std::vector<Var>& x) {
          return causal_linear_attention_packed(x[0], c.H, c.F, c.Dv, qc, kc, vc, kEps, normalize, map);
        };
        Fn split = [=](const std::vector<Var>& x) {
          Var o = causal_linear_attention(split_heads(x[0], qc, c.H, c.F), split_heads(x[0], kc, c.H, c.F),
                                          split_heads(x[0], vc, c.H, c.Dv), kEps, normalize, map);
          return reshape(permute(o, {0, 2, 1, 3}), {c.B, c.T, c.H * c.Dv});
        };
        Agreement a = compare(packed, split, args);
        CHECK(a.max_out_diff == 0.0);
        CHECK(a.max_grad_diff == 0.0);
      }
  }
  // Finite differences and thread invariance of the packed form itself (elu map, normalised).
  Fn small = [](const std::vector<Var>& x) {
    return causal_linear_attention_packed(x[0], 2, 3, 4, 1, 7, 13, kEps, true, KernelMap::EluPlusOne);
  };
  CHECK_GRADIENTS(small, {random_tensor({1, 5, 22}, 95, -2.0f, 2.0f)});
  Fn wide = [](const std::vector<Var>& x) {
    return causal_linear_attention_packed(x[0], 4, 8, 12, 0, 32, 64, kEps, true, KernelMap::EluPlusOne);
  };
  CHECK_THREAD_INVARIANT(wide, {random_tensor({4, 96, 112}, 96, -2.0f, 2.0f)});
}

TEST_CASE("causal_linear_attention_packed: errors name the columns and the shape") {
  // A fresh leaf per call: error_of resets the tape.
  auto error = [](Shape s, int64_t heads, int64_t q_col) {
    return error_of([&] {
      causal_linear_attention_packed(tape().leaf(Tensor::zeros(s)), heads, 3, 4, q_col, 6, 12, kEps, true);
    });
  };
  CHECK(contains(error({1, 4, 19}, 2, 0), "v at columns [12, 20) does not fit in qkv (1, 4, 19)"));
  CHECK(contains(error({1, 4, 20}, 2, -1), "q at columns [-1, 5)"));
  CHECK(contains(error({4, 20}, 2, 0), "qkv must be (B, T, columns), got (4, 20)"));
  CHECK(contains(error({1, 4, 20}, 0, 0), "heads 0, F 3 and Dv 4 must be >= 1"));
  CHECK(error({1, 4, 20}, 2, 0).empty());
}

TEST_CASE("causal_linear_attention: one tape entry, none without gradients") {
  std::vector<Tensor> in = kernel_inputs(1, 2, 8, 4, 4, 40);
  tape().reset();
  Var q = tape().leaf(in[0], true), k = tape().leaf(in[1], true), v = tape().leaf(in[2], true);
  size_t before = tape().entry_count();
  Var o = causal_linear_attention(q, k, v, kEps, true);
  CHECK(tape().entry_count() == before + 1);
  CHECK(o.requires_grad());
  tape().reset();
  {
    NoGrad no_grad;
    Var o2 = causal_linear_attention(tape().leaf(in[0], true), tape().leaf(in[1], true),
                                     tape().leaf(in[2], true), kEps, true);
    CHECK(tape().entry_count() == 0);
    CHECK_FALSE(o2.requires_grad());
  }
  tape().reset();
}

TEST_CASE("linear_attention_step: stepping through a sequence == the fused kernel, bitwise") {
  // The recurrent form (state S, z updated in place, one token at a time) runs the kernel's own
  // per-token code: the same bits as the parallel form, for any T.
  const int64_t B = 2, H = 3, T = 19, F = 6, Dv = 5;
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    std::vector<Tensor> in = kernel_inputs(B, H, T, F, Dv, 45);
    Var o = causal_linear_attention(tape().leaf(in[0]), tape().leaf(in[1]), tape().leaf(in[2]),
                                    kEps, normalize);
    Tensor S = Tensor::zeros({B * H, F, Dv}), z = Tensor::zeros({B * H, F});
    Tensor qt = Tensor::empty({B * H, F}), kt = Tensor::empty({B * H, F}),
           vt = Tensor::empty({B * H, Dv});
    Tensor ot = Tensor::empty({B * H, Dv});
    bool same = true;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t n = 0; n < B * H; ++n) {
        std::memcpy(qt.data() + n * F, in[0].data() + (n * T + t) * F, F * sizeof(float));
        std::memcpy(kt.data() + n * F, in[1].data() + (n * T + t) * F, F * sizeof(float));
        std::memcpy(vt.data() + n * Dv, in[2].data() + (n * T + t) * Dv, Dv * sizeof(float));
      }
      linear_attention_step(B * H, F, Dv, qt.data(), kt.data(), vt.data(), S.data(), z.data(),
                            ot.data(), kEps, normalize);
      for (int64_t n = 0; n < B * H; ++n)
        same = same && std::memcmp(ot.data() + n * Dv, o.value().data() + (n * T + t) * Dv,
                                   Dv * sizeof(float)) == 0;
    }
    CHECK(same);
    // The state is the sums themselves: S = sum_s k_s v_s^T, z = sum_s k_s (z only when
    // normalising: the unnormalised form never needs it).
    // Each is a float32 sum of T products: off by at most T u sum |products| (u = 2^-24).
    double s_err = 0;
    for (int64_t n = 0; n < B * H; ++n)
      for (int64_t f = 0; f < F; ++f)
        for (int64_t j = 0; j < Dv; ++j) {
          double want = 0, want_abs = 0;
          for (int64_t t = 0; t < T; ++t) {
            const double term = static_cast<double>(in[1][(n * T + t) * F + f]) * in[2][(n * T + t) * Dv + j];
            want += term;
            want_abs += std::fabs(term);
          }
          s_err = std::max(s_err, std::fabs(S[(n * F + f) * Dv + j] - want) / (T * 0x1p-24 * want_abs));
        }
    CHECK(s_err <= 1.0);  // the error as a fraction of the bound
    tape().reset();
  }
}

TEST_CASE("causal_linear_attention: hand-computed values") {
  // B = H = 1, T = 2, F = 1, Dv = 1: out_0 = q0 k0 v0 / (q0 k0 + eps),
  // out_1 = q1 (k0 v0 + k1 v1) / (q1 (k0 + k1) + eps).
  Var q = tape().leaf(Tensor::from({1, 1, 2, 1}, {2.0f, 0.5f}));
  Var k = tape().leaf(Tensor::from({1, 1, 2, 1}, {1.0f, 3.0f}));
  Var v = tape().leaf(Tensor::from({1, 1, 2, 1}, {4.0f, -2.0f}));
  Var o = causal_linear_attention(q, k, v, 0.0f, true);
  CHECK(o.value()[0] == doctest::Approx(4.0));
  CHECK(o.value()[1] == doctest::Approx((4.0 - 6.0) / 4.0));
  Var u = causal_linear_attention(q, k, v, 0.0f, false);
  CHECK(u.value()[0] == doctest::Approx(8.0));
  CHECK(u.value()[1] == doctest::Approx(0.5 * (4.0 - 6.0)));
  tape().reset();
}

TEST_CASE("causal_linear_attention: degenerate sizes (T = 0, F = 0, Dv = 0)") {
  for (Dims d : {Dims{1, 2, 0, 3, 4}, Dims{1, 2, 5, 0, 4}, Dims{1, 2, 5, 3, 0}}) {
    CAPTURE(d.T);
    CAPTURE(d.F);
    CAPTURE(d.Dv);
    std::vector<Tensor> in = kernel_inputs(d.B, d.H, d.T, d.F, d.Dv, 47);
    std::vector<Var> x;
    for (const Tensor& t : in) x.push_back(tape().leaf(t, true));
    Var o = causal_linear_attention(x[0], x[1], x[2], kEps, true);
    CHECK(o.shape() == Shape{d.B, d.H, d.T, d.Dv});
    for (int64_t i = 0; i < o.numel(); ++i) CHECK(o.value()[i] == 0.0f);  // F = 0: 0 / eps
    tape().backward(o, Tensor::full(o.shape(), 1.0f));
    tape().reset();
  }
}

TEST_CASE("causal_linear_attention: errors name the op and the shapes") {
  auto t = [](Shape s) { return tape().leaf(Tensor::zeros(s)); };
  std::string m = error_of([&] {
    causal_linear_attention(t({1, 2, 5, 3}), t({1, 2, 6, 3}), t({1, 2, 6, 4}), kEps, true);
  });
  CHECK(contains(m, "causal_linear_attention"));
  CHECK(contains(m, "(1, 2, 5, 3)"));
  CHECK(contains(m, "(1, 2, 6, 3)"));
  CHECK(contains(m, "same length T"));
  m = error_of([&] {
    causal_linear_attention(t({1, 2, 5, 3}), t({1, 2, 5, 4}), t({1, 2, 5, 4}), kEps, true);
  });
  CHECK(contains(m, "causal_linear_attention"));
  CHECK(contains(m, "feature dim F"));
  m = error_of([&] {
    causal_linear_attention(t({1, 2, 5, 3}), t({1, 2, 5, 3}), t({1, 2, 4, 4}), kEps, true);
  });
  CHECK(contains(m, "v (1, 2, 4, 4)"));
  m = error_of([&] {
    causal_linear_attention(t({1, 2, 5, 3}), t({2, 2, 5, 3}), t({2, 2, 5, 4}), kEps, true);
  });
  CHECK(contains(m, "(B, H)"));
  m = error_of([&] {
    causal_linear_attention(t({2, 5, 3}), t({2, 5, 3}), t({2, 5, 4}), kEps, true);
  });
  CHECK(contains(m, "4-D"));
  CHECK(contains(m, "phi_q (2, 5, 3)"));
  m = error_of([&] {
    causal_linear_attention(t({1, 1, 2, 3}), t({1, 1, 2, 3}), t({1, 1, 2, 4}), -1.0f, true);
  });
  CHECK(contains(m, "eps"));
  m = error_of([&] {
    causal_linear_attention(t({1, 1, 2, 3}), Var(), t({1, 1, 2, 4}), kEps, true);
  });
  CHECK(contains(m, "defined"));
  m = error_of([&] {
    bidirectional_linear_attention(t({1, 2, 5, 3}), t({1, 2, 6, 3}), t({1, 2, 7, 4}), kEps, true);
  });
  CHECK(contains(m, "bidirectional_linear_attention"));
  CHECK(contains(m, "v (1, 2, 7, 4)"));
  m = error_of([&] {
    linear_attention_reference(t({1, 2, 5, 3}), t({1, 2, 5, 2}), t({1, 2, 5, 4}), kEps, true, true);
  });
  CHECK(contains(m, "linear_attention_reference"));
  CHECK(contains(m, "phi_k (1, 2, 5, 2)"));
}

// ---- bidirectional composite and the reference --------------------------------------------

TEST_CASE("bidirectional_linear_attention == non-causal reference; gradients") {
  for (bool normalize : {true, false}) {
    CAPTURE(normalize);
    check_agree(bidirectional(normalize), reference(normalize, false),
                kernel_inputs(2, 3, 11, 5, 7, 50), 1e-5);
    check_agree(bidirectional(normalize), reference(normalize, false),
                kernel_inputs(1, 2, 6, 4, 3, 51, /*S=*/9), 1e-5);  // T != S
    CHECK_GRADIENTS(bidirectional(normalize), kernel_inputs(1, 2, 4, 3, 5, 52, /*S=*/6));
  }
}

TEST_CASE("linear_attention_reference: finite-difference gradients, causal and not") {
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    CHECK_GRADIENTS(reference(true, causal), kernel_inputs(1, 2, 5, 3, 4, 60));
  }
}

// ---- feature maps -------------------------------------------------------------------------

TEST_CASE("feature maps: output shapes") {
  namespace fm = feature_maps;
  for (Shape s : {Shape{2, 3, 5, 4}, Shape{2, 3, 4}, Shape{4}}) {
    CAPTURE(s);
    Var x = tape().leaf(random_tensor(s, 1));
    auto with_last = [&](int64_t f) {
      Shape o = s;
      o[-1] = f;
      return o;
    };
    CHECK(fm::elu(x).shape() == s);
    CHECK(fm::relu(x).shape() == s);
    CHECK(fm::dpfp(x, 1).shape() == with_last(8));
    CHECK(fm::dpfp(x, 3).shape() == with_last(24));
    CHECK(fm::favor(x, fm::favor_draw(7, 4, 9)).shape() == with_last(7));
    CHECK(fm::feature_dim(fm::Kind::Dpfp, 4, 3, 0) == 24);
    CHECK(fm::feature_dim(fm::Kind::Favor, 4, 1, 7) == 7);
    CHECK(fm::feature_dim(fm::Kind::Elu, 4, 1, 7) == 4);
    tape().reset();
  }
  CHECK(fm::parse("dpfp") == fm::Kind::Dpfp);
  CHECK(std::string(fm::name(fm::Kind::Favor)) == "favor");
}

TEST_CASE("feature maps: hand-computed values") {
  namespace fm = feature_maps;
  auto vals = [](const Var& v) { return v.value().to_vector(); };
  Var x = tape().leaf(Tensor::from({3}, {-1.0f, 0.0f, 2.0f}));
  std::vector<float> e = vals(fm::elu(x));
  CHECK(e[0] == doctest::Approx(std::exp(-1.0)));
  CHECK(e[1] == 1.0f);
  CHECK(e[2] == 3.0f);
  CHECK(vals(fm::relu(x)) == std::vector<float>{0, 0, 2});

  Var r = tape().leaf(Tensor::from({2, 4}, {1, 2, 3, 4, 5, 6, 7, 8}));
  CHECK(vals(fm::roll_last(r, 1)) == std::vector<float>{4, 1, 2, 3, 8, 5, 6, 7});
  CHECK(vals(fm::roll_last(r, -1)) == std::vector<float>{2, 3, 4, 1, 6, 7, 8, 5});
  CHECK(vals(fm::roll_last(r, 6)) == std::vector<float>{3, 4, 1, 2, 7, 8, 5, 6});
  CHECK(vals(fm::roll_last(r, 4)) == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});

  // x = [1, 2, -3]: x' = [1, 2, 0, 0, 0, 3];
  // roll 1 = [3, 1, 2, 0, 0, 0]; roll 2 = [0, 3, 1, 2, 0, 0].
  Var y = tape().leaf(Tensor::from({3}, {1, 2, -3}));
  CHECK(vals(fm::dpfp(y, 1)) == std::vector<float>{3, 2, 0, 0, 0, 0});
  CHECK(vals(fm::dpfp(y, 2)) == std::vector<float>{3, 2, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0});

  // favor: phi_i = exp(w_i . x' - |x'|^2 / 2) / sqrt(m), x' = x d^(-1/4), in double.
  const int64_t d = 3, m = 5;
  Tensor w = fm::favor_draw(m, d, 77);
  Var z = tape().leaf(Tensor::from({1, d}, {0.3f, -0.7f, 0.5f}));
  std::vector<float> phi = vals(fm::favor(z, w));
  REQUIRE(phi.size() == static_cast<size_t>(m));
  double c = std::pow(3.0, -0.25), sq = 0;
  for (int64_t j = 0; j < d; ++j) sq += (z.value()[j] * c) * (z.value()[j] * c);
  for (int64_t i = 0; i < m; ++i) {
    double wx = 0;
    for (int64_t j = 0; j < d; ++j) wx += w[i * d + j] * z.value()[j] * c;
    CHECK(phi[i] == doctest::Approx(std::exp(wx - sq / 2) / std::sqrt(5.0)).epsilon(1e-5));
  }
  tape().reset();
}

TEST_CASE("feature maps: favor draws are reproducible and estimate the softmax kernel") {
  namespace fm = feature_maps;
  Tensor a = fm::favor_draw(64, 64, 5), b = fm::favor_draw(64, 64, 5),
         c = fm::favor_draw(64, 64, 6);
  CHECK(std::memcmp(a.data(), b.data(), a.numel() * sizeof(float)) == 0);
  CHECK(std::memcmp(a.data(), c.data(), a.numel() * sizeof(float)) != 0);
  double mean = 0, var = 0;
  for (int64_t i = 0; i < a.numel(); ++i) mean += a[i];
  mean /= a.numel();
  for (int64_t i = 0; i < a.numel(); ++i) var += (a[i] - mean) * (a[i] - mean);
  var /= a.numel();
  CHECK(std::fabs(mean) < 0.05);
  CHECK(std::fabs(var - 1.0) < 0.1);

  // E[phi(q) . phi(k)] = exp(q . k / sqrt(d)): the softmax attention kernel.
  const int64_t d = 4, m = 16384;
  Tensor w = fm::favor_draw(m, d, 11);
  Var q = tape().leaf(Tensor::from({1, d}, {0.4f, -0.3f, 0.2f, 0.5f}));
  Var k = tape().leaf(Tensor::from({1, d}, {0.1f, -0.6f, 0.3f, 0.2f}));
  Tensor pq = fm::favor(q, w).value(), pk = fm::favor(k, w).value();
  double est = 0, qk = 0;
  for (int64_t i = 0; i < m; ++i) est += static_cast<double>(pq[i]) * pk[i];
  for (int64_t j = 0; j < d; ++j) qk += q.value()[j] * k.value()[j];
  CHECK(est == doctest::Approx(std::exp(qk / 2.0)).epsilon(0.05));  // sqrt(d) = 2
  tape().reset();
}

TEST_CASE("feature maps: finite-difference gradients") {
  namespace fm = feature_maps;
  const Shape s{2, 3, 4};
  CHECK_GRADIENTS([](const std::vector<Var>& x) { return fm::elu(x[0]); },
                  {random_away_from_zero(s, 1)});
  CHECK_GRADIENTS([](const std::vector<Var>& x) { return fm::relu(x[0]); },
                  {random_away_from_zero(s, 2)});
  CHECK_GRADIENTS([](const std::vector<Var>& x) { return fm::roll_last(x[0], 3); },
                  {random_tensor(s, 3)});
  for (int64_t nu : {1, 2, 3}) {
    CAPTURE(nu);
    CHECK_GRADIENTS([nu](const std::vector<Var>& x) { return fm::dpfp(x[0], nu); },
                    {random_away_from_zero(s, 4 + nu)});
  }
  Tensor w = fm::favor_draw(6, 4, 8);
  CHECK_GRADIENTS([w](const std::vector<Var>& x) { return fm::favor(x[0], w); },
                  {random_tensor(s, 9)});
}

TEST_CASE("feature maps + fused kernel: gradients end to end") {
  // q, k raw (B, H, T, d) through a feature map into the kernel, as the plugin does.
  namespace fm = feature_maps;
  Tensor w = fm::favor_draw(5, 3, 12);
  for (int map = 0; map < 4; ++map) {
    CAPTURE(map);
    auto phi = [map, w](const Var& x) {
      switch (map) {
        case 0: return fm::elu(x);
        case 1: return fm::relu(x);
        case 2: return fm::dpfp(x, 2);
        default: return fm::favor(x, w);
      }
    };
    Fn f = [phi](const std::vector<Var>& x) {
      return causal_linear_attention(phi(x[0]), phi(x[1]), x[2], kEps, true);
    };
    Fn g = [phi](const std::vector<Var>& x) {
      return linear_attention_reference(phi(x[0]), phi(x[1]), x[2], kEps, true, true);
    };
    // relu / dpfp features can be exactly 0 for a whole row: keep a positive entry in every
    // row (the last coordinate) so no denominator is eps alone.
    Tensor q = random_away_from_zero({1, 2, 5, 3}, 70 + map),
           k = random_away_from_zero({1, 2, 5, 3}, 80 + map);
    for (int64_t i = 2; i < q.numel(); i += 3) q[i] = std::fabs(q[i]), k[i] = std::fabs(k[i]);
    std::vector<Tensor> in = {q, k, random_tensor({1, 2, 5, 4}, 90 + map)};
    check_agree(f, g, in, 1e-5);
    CHECK_GRADIENTS(f, in);
  }
}

TEST_CASE("feature maps: errors name the map, the option and the shapes") {
  namespace fm = feature_maps;
  Var x = tape().leaf(Tensor::zeros({2, 3, 4}));
  std::string m = error_of([&] { fm::dpfp(x, 0); });
  CHECK(contains(m, "dpfp"));
  CHECK(contains(m, "nu = 0"));
  CHECK(contains(m, "(2, 3, 4)"));
  x = tape().leaf(Tensor::zeros({2, 3, 4}));
  m = error_of([&] { fm::dpfp(x, 9); });
  CHECK(contains(m, "[1, 8]"));
  x = tape().leaf(Tensor::zeros({2, 3, 4}));
  m = error_of([&] { fm::favor(x, Tensor::zeros({7, 5})); });
  CHECK(contains(m, "favor"));
  CHECK(contains(m, "(7, 5)"));
  CHECK(contains(m, "(2, 3, 4)"));
  m = error_of([&] { fm::parse("cosine"); });
  CHECK(contains(m, "cosine"));
  CHECK(contains(m, "elu, relu, dpfp, favor"));
  m = error_of([&] { fm::favor_draw(0, 4, 1); });
  CHECK(contains(m, "favor"));
}
