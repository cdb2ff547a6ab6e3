// A rule's required run (TOML `requiredRun`, this tool's extension): a byte class and a length,
// written `[class]{N}`, such that every match of the rule's regex holds N consecutive bytes of
// the class; `[0-9a-f]{64}` for a token that ends in 64 hex digits.
//
// Why: Hyperscan starts work at every occurrence of a rule's literal, and some token formats have
// only a short, common one (an Airtable token is `pat`, 14 letters and digits, a dot and 64 hex
// digits: `pat` is in every `path`). A rule with a required run is kept out of the main database
// and scanned by a small database of its own only over a unit that holds such a run, which
// found_in() tells at a fraction of a scan's cost. The run is a promise of the rule's author:
// a regex that can match without it would miss what it matches then (`rules check` verifies
// that every example holds the run).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace scrub {

struct CharRun {
  std::array<bool, 256> in{};  // the class, by byte value
  size_t length = 0;
  size_t size() const;  // bytes in the class

  // `[class]{N}`: the class as in a regex bracket (single bytes, ranges `a-z`, `\` escaping the
  // next character, a leading `^` negating), N from 8 to 100,000. nullopt with `error` set
  // otherwise.
  static std::optional<CharRun> parse(std::string_view text, std::string& error);

  // True when `s` holds `length` consecutive bytes of the class. Reads the last byte of each
  // window where a run could end and, while they are in the class, the bytes before it not yet
  // read: a byte outside the class moves the window past it. Ordinary text costs one or two
  // reads per `length` bytes, and no byte is read twice.
  bool found_in(std::string_view s) const;

  bool operator==(const CharRun&) const = default;
};

}  // namespace scrub
