// Fingerprints: a truncated HMAC-SHA256 of a secret under a key generated once per installation.
// Lets users correlate findings ("the same key leaked twice") without storing any part of the
// secret; a plain hash of a short or guessable secret could be brute-forced, an HMAC cannot
// without the key.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace scrub {

// OpenSSL's library set-up, once per process, before this project's first call into it (the
// functions here call it; DbCache's cipher calls come after its key's hmac_fingerprint): the
// system's configuration (openssl.cnf, its providers and policy) loads as by default;
// libcrypto's error strings do not, as no message of ours carries one (0.27 ms of every start
// on the project's VM).
void init_crypto();

// Hex of HMAC-SHA256(key, data), truncated to `hex_digits`.
// Each thread keeps one context keyed with the last key it saw.
std::string hmac_fingerprint(std::string_view key, std::string_view data, size_t hex_digits);

struct FingerprintKey {
  std::string key;        // raw bytes
  std::string source;     // the file it came from, or "ephemeral"
  std::string warning;    // non-empty when the key could not be persisted
};

// Reads the key from `path` (or, when empty, $MCP_SCRUB_KEY_FILE, else
// $XDG_CONFIG_HOME/mcp-scrub/fingerprint.key, else ~/.config/mcp-scrub/fingerprint.key); creates
// it (32 random bytes, hex, mode 0600) when missing. If that fails, returns an ephemeral key with
// a warning. A given `path` that cannot be read throws ConfigError.
FingerprintKey load_or_create_fingerprint_key(const std::filesystem::path& path);

}  // namespace scrub
