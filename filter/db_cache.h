// On-disk cache of compiled Hyperscan databases, so start-up does not pay the compile (about a
// second for the built-in pack).
//
// Promises: an entry is found only for exactly the same expressions and flags, Hyperscan version
// and CPU platform (the file name is an HMAC over all of them under the installation key, so it
// reveals nothing about the known values). The entry is AES-256-GCM encrypted under a key derived
// from the installation key: no literal is ever stored in clear, and a corrupted or foreign file
// fails authentication and is ignored (then recompiled and rewritten). Failures never stop a run.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "filter/compiled_set_impl.h"

namespace scrub {

struct CachedWidths {
  unsigned min_width = 0, max_width = 0;
  unsigned hs_max_width = 0;  // CompiledRule::hs_max_width
  bool prefilter = false;
  int groups = 0;  // the rule's capture groups, so secretGroup is checked without building RE2
};

class DbCache {
 public:
  // `dir` empty: caching is off.
  DbCache(std::filesystem::path dir, std::string key);
  static std::filesystem::path default_dir();  // $XDG_CACHE_HOME/mcp-scrub or ~/.cache/mcp-scrub

  // Derives the entry name from everything that determines the database, and from `also`: other
  // regexes a hit vouches for (an entry is written only after they compiled).
  void set_identity(const std::vector<std::string>& expressions, const std::vector<unsigned>& flags,
                    const std::vector<std::string>& also = {});
  bool enabled() const { return !dir_.empty() && !name_.empty(); }

  // A database and the per-rule facts stored with it, or nothing.
  std::optional<std::pair<HsDatabasePtr, std::vector<CachedWidths>>> load() const;
  void store(const hs_database_t* db, const std::vector<CachedWidths>& widths) const;

  // A database without per-rule facts (a side database: the split scan's, the message keys'):
  // set_identity(expressions, flags, also), then the entry when there is one, else the
  // expressions compiled (block mode, `ids` as their ids) and stored. Null when Hyperscan
  // cannot compile them.
  HsDatabasePtr load_or_compile(const std::vector<std::string>& expressions,
                                const std::vector<unsigned>& flags,
                                const std::vector<unsigned>& ids, const std::string& also);

 private:
  std::filesystem::path dir_;
  std::string key_;
  std::string name_;
};

}  // namespace scrub
