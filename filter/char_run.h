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
#include <utility>

namespace scrub {

struct CharRun {
  std::array<bool, 256> in{};  // the class, by byte value
  size_t length = 0;
  size_t size() const;  // bytes in the class

  // `[class]{N}`: the class as in a regex bracket (single bytes, ranges `a-z`, `\` escaping the
  // next character, a leading `^` negating), N from 8 to 100,000. nullopt with `error` set
  // otherwise.
  static std::optional<CharRun> parse(std::string_view text, std::string& error);

  // True when `s` holds `length` consecutive bytes of the class.
  //
  // With AVX2, a run of 63 or more and a class made by parse() whose bytes fit the nibble
  // tables below (most do: [0-9a-f] takes two of their eight bits): such a run holds a whole
  // 16-byte block at a multiple of `length - 15` rounded down to 16, so only those blocks are
  // classified, two in each 256-bit register, and a full one is grown, 32 bytes a step, to the
  // run around it. For [0-9a-f]{64}: 0.035 ms per MB of the wrap benchmark's tool result, where
  // 32-byte blocks at every multiple of 32 took 0.051-0.057 (the gate cost the set 6-12% of its
  // scan there); over 16 MB of the mixed log, memory-bound, both 0.11 ms per MB.
  //
  // Otherwise reads the last byte of each window where a run could end and, while they are in
  // the class, the bytes before it not yet read: a byte outside the class moves the window past
  // it. Ordinary text costs one or two reads per `length` bytes, and no byte is read twice.
  bool found_in(std::string_view s) const;

  // The first run of `length` or more bytes of the class that begins at or after `from`, whole:
  // [begin, end) with the bytes at begin - 1 and at end outside the class (or past s, or
  // begin == from); nullopt when there is none. Found as found_in() finds one (the same AVX2
  // blocks), then grown to its ends. Runs, in order: next_run(s, 0), next_run(s, end), ...
  std::optional<std::pair<size_t, size_t>> next_run(std::string_view s, size_t from) const;

  // Whether found_in() classifies blocks with AVX2 (the CPU has it and parse() built tables).
  bool vectorised() const;

  // A byte b is in the class iff lo[b & 15] & hi[b >> 4] != 0 (each of up to eight distinct
  // sets of low nibbles, among the rows of one high nibble, gets a bit); filled by parse() when
  // the class has at most eight such sets, twice over for the two lanes of a 256-bit shuffle.
  std::array<unsigned char, 32> lo{}, hi{};
  bool tables = false;
  void build_tables();  // from `in`; parse() calls it

  bool operator==(const CharRun&) const = default;
};

}  // namespace scrub
