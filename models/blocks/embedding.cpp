// token_embedding: ids -> (B, T, C) rows of a (V, C) table; or, factorised (ALBERT, Lan et al.
// 2020), rows of a (V, E) table projected to C by a (C, E) matrix: V*E + C*E parameters
// instead of V*C.
#include "block.h"
#include "model.h"

namespace na {
namespace {

class TokenEmbedding : public Block {
 public:
  explicit TokenEmbedding(BlockContext& ctx) {
    const std::string path = ctx.path_for("tok");
    const int64_t V = ctx.dims().vocab, C = ctx.dims().d_model;
    const int64_t E = ctx.option<int64_t>("factor_dim", 0);
    NA_CHECK(E >= 0, ctx.at(), "token_embedding: factor_dim must be >= 0 (0 = a plain (V, C) table), got ", E);
    table_ = &ctx.store().create(path + ".weight", {V, E > 0 ? E : C}, Init::normal(0.02f));
    // lm_head's tied_to finds the projection by this name (head.cpp).
    if (E > 0) proj_ = &ctx.store().create(path + ".proj.weight", {C, E}, Init::normal(0.02f));
  }
  Var forward(const Var&, const BlockInput& in) const override {
    Var x = embedding(*table_, in.ids, {in.B, in.T});  // (B, T, E or C)
    return proj_ ? linear(x, *proj_) : x;             // (B, T, E) proj^T -> (B, T, C)
  }
  void describe(ModelAnatomy& a) const override {  // the table is a lookup, not a product
    if (proj_) a.matmul_weights.push_back(proj_);
  }

 private:
  Parameter* table_ = nullptr;
  Parameter* proj_ = nullptr;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(token_embedding,
                        "token embedding table (V, C), or with factor_dim E a (V, E) table and a (C, E) projection "
                        "(ALBERT); options: factor_dim (0), name",
                        [](BlockContext& c) { return std::make_unique<TokenEmbedding>(c); });
}  // namespace na
