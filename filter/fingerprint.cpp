#include "filter/fingerprint.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "filter/rule.h"

namespace scrub {

namespace {

// One HMAC context per thread, keyed once: OpenSSL 3's one-shot HMAC() looks the algorithm up in
// its provider store on every call (2.6 us a call on the project's VM; 0.4 us re-using a keyed
// context), and the engine computes one per known value at start-up and one per finding.
class HmacContext {
 public:
  ~HmacContext() {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
  }
  // False when OpenSSL cannot provide HMAC-SHA256 (then the caller uses the one-shot call).
  bool digest(std::string_view key, std::string_view data, unsigned char* out, size_t* len) {
    if (!ctx_ || key != key_) {
      if (!mac_ && !(mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr))) return false;
      EVP_MAC_CTX_free(ctx_);
      ctx_ = EVP_MAC_CTX_new(mac_);
      char digest[] = "SHA256";
      const OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
          OSSL_PARAM_construct_end()};
      if (!ctx_ || EVP_MAC_init(ctx_, reinterpret_cast<const unsigned char*>(key.data()),
                                key.size(), params) != 1) {
        EVP_MAC_CTX_free(ctx_);
        ctx_ = nullptr;
        return false;
      }
      key_.assign(key);
    } else if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) {  // the same key, a new message
      return false;
    }
    return EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(data.data()), data.size()) ==
               1 &&
           EVP_MAC_final(ctx_, out, len, EVP_MAX_MD_SIZE) == 1;
  }

 private:
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;
  std::string key_;
};

}  // namespace

void init_crypto() {
  static const bool done = [] {
    // Without the legacy name tables of every cipher and digest (EVP_add_cipher, OBJ_NAME): this
    // file and db_cache.cpp fetch HMAC, SHA-256 and AES-256-GCM by object or from the provider,
    // never by name. The system's openssl.cnf is still read (a FIPS policy applies).
    (void)OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS | OPENSSL_INIT_NO_ADD_ALL_CIPHERS |
                                  OPENSSL_INIT_NO_ADD_ALL_DIGESTS | OPENSSL_INIT_LOAD_CONFIG,
                              nullptr);
    return true;
  }();
  (void)done;
}

std::string hmac_fingerprint(std::string_view key, std::string_view data, size_t hex_digits) {
  init_crypto();
  thread_local HmacContext context;
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (!context.digest(key, data, mac, &len)) {
    unsigned int one_shot = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &one_shot);
    len = one_shot;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < len && out.size() < hex_digits; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  out.resize(std::min(out.size(), hex_digits));
  return out;
}

namespace {

std::filesystem::path default_key_path() {
  if (const char* p = std::getenv("MCP_SCRUB_KEY_FILE"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x)
    return std::filesystem::path(x) / "mcp-scrub" / "fingerprint.key";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::filesystem::path(h) / ".config" / "mcp-scrub" / "fingerprint.key";
  return {};
}

std::optional<std::string> read_key(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream os;
  os << in.rdbuf();
  std::string key = os.str();
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < 16) return std::nullopt;
  return key;
}

std::string random_hex_key() {
  init_crypto();
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) {
    std::ifstream ur("/dev/urandom", std::ios::binary);
    ur.read(reinterpret_cast<char*>(raw), sizeof raw);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace

FingerprintKey load_or_create_fingerprint_key(const std::filesystem::path& given) {
  if (!given.empty()) {
    auto key = read_key(given);
    if (!key) {
      std::error_code ec;
      const std::string name = given.string();
      if (std::filesystem::is_regular_file(given, ec))
        throw ConfigError(name + ": the fingerprint key is too short (needs 16+ bytes)");
      // A key pasted in place of its file's name must not be echoed to the terminal or a log.
      if (!std::filesystem::exists(given, ec) && name.find('/') == std::string::npos && name.size() >= 16)
        throw ConfigError(
            "--fingerprint-key: no such file (it takes a file holding the key; the argument is not "
            "shown, as it may be the key itself)");
      throw ConfigError(name + ": cannot read the fingerprint key file");
    }
    return {*key, given.string(), ""};
  }
  std::filesystem::path path = default_key_path();
  if (!path.empty()) {
    if (auto key = read_key(path)) return {*key, path.string(), ""};
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    std::string key = random_hex_key();
    // O_EXCL: if another process created it first, use theirs.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      std::string line = key + "\n";
      bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
      ::close(fd);
      if (ok) return {key, path.string(), ""};
    }
    if (auto existing = read_key(path)) return {*existing, path.string(), ""};
  }
  return {random_hex_key(), "ephemeral",
          "cannot store a fingerprint key (" + path.string() +
              "); fingerprints will differ between runs (use --fingerprint-key FILE)"};
}

}  // namespace scrub
