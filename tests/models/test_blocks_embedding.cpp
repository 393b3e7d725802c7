// The factorised token embedding (token_embedding: {factor_dim: E}, ALBERT) and an lm_head
// tied to it: parameter names and count, logits against a naive double computation, every
// parameter's gradient against finite differences of the model itself, and errors.
//
// Tolerances: logits within 1e-5 of the naive value (float32 sums of <= 6 terms). Finite
// differences: 4-point central with h 1e-2, |num - ana| <= 2e-3 + 1e-2 |num| (gradcheck's
// defaults), with the parameters redrawn uniform in [-1, 1) so the gradients are of order 1
// and a dropped path (the head's or the embedding's share of the table gradient) is far
// outside the tolerance.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "gradcheck.h"
#include "model.h"
#include "plugin_loader.h"

using namespace na;
using na::testing::random_tensor;

namespace {

const PluginRegistry& plugins() {
  static PluginRegistry reg;
  return reg;
}

std::string error_of(const std::string& yaml) {
  try {
    Model m(YAML::Load(yaml), "exp.yaml", 5, plugins(), 1);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

constexpr int64_t kV = 5, kC = 6, kE = 3, kB = 2, kT = 4;
const std::vector<int32_t> kIds = {0, 3, 1, 4, 2, 2, 0, 1};

const char* kFactorised = R"(d_model: 6
max_len: 4
blocks:
  - token_embedding: {factor_dim: 3}
  - lm_head: {tied_to: tok.weight}
)";

const char* kTinyModel = R"(d_model: 6
max_len: 4
blocks:
  - token_embedding: {factor_dim: 3}
  - positional: {kind: learned}
  - residual: {body: [{feed_forward: {mult: 2}}]}
  - layernorm: {name: ln_f}
  - lm_head: {tied_to: tok.weight}
)";

// Order-1 values for every parameter (the N(0, 0.02) init would hide errors in round-off).
void randomise(Model& m) {
  uint64_t seed = 100;
  for (Parameter* p : m.params().all()) p->value().copy_from(random_tensor(p->value().shape(), seed++));
}

// L = sum(logits * R), in double, without recording.
double loss_of(const Model& m, const Tensor& r) {
  NoGrad ng;
  Var logits = m.forward(kIds, kB, kT);
  double l = 0;
  for (int64_t i = 0; i < r.numel(); ++i) l += static_cast<double>(logits.value()[i]) * r[i];
  tape().reset();
  return l;
}

// Every element of every parameter: the tape's dL/dp against a 4-point central difference.
void check_parameter_gradients(Model& m) {
  const Tensor r = random_tensor({kB, kT, kV}, 77);
  tape().reset();
  for (Parameter* p : m.params().all()) p->zero_grad();
  tape().backward(m.forward(kIds, kB, kT), r);
  tape().reset();
  const double h = 1e-2;
  for (Parameter* p : m.params().all()) {
    const Tensor& v = p->value();
    double worst = 0;
    bool ok = true;
    for (int64_t i = 0; i < v.numel(); ++i) {
      const float saved = v[i];
      auto at = [&](double d) {
        v[i] = static_cast<float>(saved + d);
        return loss_of(m, r);
      };
      const double num = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
      v[i] = saved;
      const double ana = p->grad()[i], err = std::fabs(num - ana);
      worst = std::max(worst, err);
      if (err > 2e-3 + 1e-2 * std::fabs(num)) {
        ok = false;
        INFO(p->name(), "[", i, "]: finite difference ", num, ", tape ", ana);
        CHECK(err <= 2e-3 + 1e-2 * std::fabs(num));
      }
    }
    INFO(p->name(), ": worst |num - ana| ", worst);
    CHECK(ok);
  }
}

}  // namespace

TEST_CASE("token_embedding factor_dim: a (V, E) table and a (C, E) projection; the tied head uses both") {
  Model m(YAML::Load(kFactorised), "exp.yaml", kV, plugins(), 3);
  REQUIRE(m.params().size() == 2);  // the tied head adds nothing
  CHECK(m.params().get("tok.weight").value().shape() == Shape{kV, kE});
  CHECK(m.params().get("tok.proj.weight").value().shape() == Shape{kC, kE});
  CHECK(m.params().count() == kV * kE + kC * kE);  // 33, against V * C = 30 unfactorised
  randomise(m);

  // logits[b, t, v] = sum_c (sum_e table[id, e] proj[c, e]) (sum_e proj[c, e] table[v, e])
  const Tensor& table = m.params().get("tok.weight").value();
  const Tensor& proj = m.params().get("tok.proj.weight").value();
  tape().reset();
  Var logits = m.forward(kIds, kB, kT);
  REQUIRE(logits.shape() == Shape{kB, kT, kV});
  for (int64_t n = 0; n < kB * kT; ++n)
    for (int64_t v = 0; v < kV; ++v) {
      double want = 0;
      for (int64_t c = 0; c < kC; ++c) {
        double x = 0, w = 0;
        for (int64_t e = 0; e < kE; ++e) {
          x += static_cast<double>(table[kIds[n] * kE + e]) * proj[c * kE + e];
          w += static_cast<double>(proj[c * kE + e]) * table[v * kE + e];
        }
        want += x * w;
      }
      CHECK(logits.value()[n * kV + v] == doctest::Approx(want).epsilon(1e-5));
    }
  tape().reset();
}

TEST_CASE("token_embedding factor_dim with a tied head: every parameter's gradient by finite differences") {
  Model bare(YAML::Load(kFactorised), "exp.yaml", kV, plugins(), 3);
  randomise(bare);
  check_parameter_gradients(bare);
  Model tiny(YAML::Load(kTinyModel), "exp.yaml", kV, plugins(), 3);
  randomise(tiny);
  check_parameter_gradients(tiny);
}

TEST_CASE("lm_head tied_to: a parameter or an embedding's path; an untied head has its own weight") {
  Model by_path(YAML::Load("d_model: 6\nmax_len: 4\nblocks:\n  - token_embedding: {factor_dim: 3}\n"
                           "  - lm_head: {tied_to: tok}\n"),
                "exp.yaml", kV, plugins(), 3);
  CHECK(by_path.params().size() == 2);
  Model untied(YAML::Load("d_model: 6\nmax_len: 4\nblocks:\n  - token_embedding: {factor_dim: 3}\n"
                          "  - lm_head: {}\n"),
               "exp.yaml", kV, plugins(), 3);
  CHECK(untied.params().get("head.weight").value().shape() == Shape{kV, kC});
  tape().reset();
  CHECK(untied.forward(kIds, kB, kT).shape() == Shape{kB, kT, kV});
  tape().reset();
}

TEST_CASE("token_embedding and lm_head errors name the position and what is valid") {
  const std::string e1 = error_of("d_model: 6\nmax_len: 4\nblocks:\n  - token_embedding: {factor_dim: -2}\n");
  CHECK(e1 == "exp.yaml:4:22: token_embedding: factor_dim must be >= 0 (0 = a plain (V, C) table), got -2");
  const std::string e2 = error_of("d_model: 6\nmax_len: 4\nblocks:\n  - token_embedding: {factor_dim: 3}\n"
                                  "  - lm_head: {tied_to: tok.wieght}\n");
  CHECK(e2 == "exp.yaml:5:14: lm_head: tied_to 'tok.wieght' names no parameter defined before the head (e.g. "
              "tok.weight)");
  const std::string e3 = error_of("d_model: 6\nmax_len: 4\nblocks:\n  - token_embedding: {}\n"
                                  "  - positional: {}\n  - lm_head: {tied_to: pos.weight}\n");
  CHECK(e3 == "exp.yaml:6:14: lm_head: tied_to 'pos.weight' has shape (4, 6), not (V, C) = (5, 6)");
  const std::string e4 = error_of("d_model: 6\nmax_len: 4\nblocks:\n  - token_embedding: {factor_dim: 3, "
                                  "factor: 2}\n");
  CHECK(e4 == "exp.yaml:4:38: block 'token_embedding' has no option 'factor'; valid options: factor_dim, name");
}
