// The built-in pack, from the bytes the build packed (patterns/tools/pack_rules.cpp).
#include <cstddef>

#include "patterns/rule_codec.h"
#include "patterns/rule_loader.h"

namespace scrub {
namespace detail {
extern const unsigned char kBuiltinPack[];
extern const std::size_t kBuiltinPackSize;
}  // namespace detail

RuleSet builtin_rules() {
  return decode_rule_set({reinterpret_cast<const char*>(detail::kBuiltinPack), detail::kBuiltinPackSize},
                         "builtin.toml (packed)");
}

}  // namespace scrub
