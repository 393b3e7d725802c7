// token_embedding: ids -> (B, T, C) rows of a (V, C) table.
#include "block.h"
#include "model.h"

namespace na {
namespace {

class TokenEmbedding : public Block {
 public:
  explicit TokenEmbedding(BlockContext& ctx)
      : table_(ctx.store().create(ctx.path_for("tok") + ".weight", {ctx.dims().vocab, ctx.dims().d_model},
                                  Init::normal(0.02f))) {}
  Var forward(const Var&, const BlockInput& in) const override {
    return embedding(table_, in.ids, {in.B, in.T});
  }

 private:
  Parameter& table_;
};

}  // namespace
NANOATTN_REGISTER_BLOCK(token_embedding, "token embedding table (V, C); options: name",
                        [](BlockContext& c) { return std::make_unique<TokenEmbedding>(c); });
}  // namespace na
