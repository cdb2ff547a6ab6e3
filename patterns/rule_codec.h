// A RuleSet as bytes and back. The built-in pack ships in the binary in this form: the build
// parses patterns/builtin.toml once (patterns/tools/pack_rules.cpp), so start-up skips the TOML
// parse, which was a quarter of it.
//
// Promises: decode_rule_set(encode_rule_set(s)) == s for every RuleSet. decode_rule_set throws
// ConfigError, naming `origin`, on anything that is not one whole encoding of this version
// (another magic, truncated, trailing bytes, an enum out of range); it never reads past the
// input and never allocates more than the input could describe.
#pragma once

#include <string>
#include <string_view>

#include "filter/rule.h"

namespace scrub {

std::string encode_rule_set(const RuleSet& set);
RuleSet decode_rule_set(std::string_view bytes, std::string_view origin);

}  // namespace scrub
