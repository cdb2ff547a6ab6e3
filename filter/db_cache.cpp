#include "filter/db_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "filter/fingerprint.h"

namespace scrub {

namespace {

constexpr char kMagic[8] = {'S', 'C', 'R', 'U', 'B', 'D', 'B', '2'};
constexpr size_t kIv = 12, kTag = 16;
constexpr size_t kMaxEntries = 16;

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

std::string raw_hmac(const std::string& key, const std::string& data) {
  // 64 hex digits = the whole SHA-256 HMAC; used as AES key material (hex decoded below).
  std::string hex = hmac_fingerprint(key, data, 64);
  std::string raw;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return raw;
}

}  // namespace

std::filesystem::path DbCache::default_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return std::filesystem::path(x) / "mcp-scrub";
  if (const char* h = std::getenv("HOME"); h && *h)
    return std::filesystem::path(h) / ".cache" / "mcp-scrub";
  return {};
}

DbCache::DbCache(std::filesystem::path dir, std::string key)
    : dir_(std::move(dir)), key_(std::move(key)) {}

void DbCache::set_identity(const std::vector<std::string>& expressions,
                           const std::vector<unsigned>& flags, const std::vector<std::string>& also) {
  if (dir_.empty() || key_.empty()) return;
  std::string id = std::string("mcp-scrub db cache v4\n") + hs_version() + "\n";
  hs_platform_info_t plat{};
  if (hs_populate_platform(&plat) == HS_SUCCESS)
    id += std::to_string(plat.tune) + ":" + std::to_string(plat.cpu_features) + "\n";
  for (size_t i = 0; i < expressions.size(); ++i) {
    id += std::to_string(flags[i]) + ":" + std::to_string(expressions[i].size()) + ":";
    id += expressions[i];
  }
  id += "\nalso " + std::to_string(also.size()) + "\n";
  for (const auto& a : also) id += std::to_string(a.size()) + ":" + a;
  name_ = hmac_fingerprint(key_, id, 40) + ".hsdb";
}

HsDatabasePtr DbCache::load_or_compile(const std::vector<std::string>& expressions,
                                       const std::vector<unsigned>& flags,
                                       const std::vector<unsigned>& ids, const std::string& also) {
  set_identity(expressions, flags, {also});
  if (auto hit = load(); hit && hit->second.empty()) return std::move(hit->first);
  std::vector<const char*> ptrs;
  for (const auto& e : expressions) ptrs.push_back(e.c_str());
  hs_database_t* raw = nullptr;
  hs_compile_error_t* err = nullptr;
  if (hs_compile_multi(ptrs.data(), flags.data(), ids.data(), static_cast<unsigned>(ptrs.size()),
                       HS_MODE_BLOCK, nullptr, &raw, &err) != HS_SUCCESS) {
    hs_free_compile_error(err);
    return nullptr;
  }
  HsDatabasePtr db(raw);
  store(db.get(), {});
  return db;
}

std::optional<std::pair<HsDatabasePtr, std::vector<CachedWidths>>> DbCache::load() const {
  if (!enabled()) return std::nullopt;
  // One read into a buffer of the file's size, decrypted in place: the entry is about 1.5 MB for
  // the built-in pack. In 4 KiB pages it and the database it holds took about 770 page faults at
  // every start (filter/huge_pages.h). The database is a block of huge pages of its own, kept;
  // the entry, freed once read, comes from the heap, whose first megabytes are huge pages that
  // later buffers reuse: a block of its own was one more 2 MiB page zeroed at every start, and
  // on this VM a fresh one sometimes takes milliseconds to zero (`filter` on empty input: -1.15
  // ms, page faults 333 -> 315; 150 alternated runs). new[]: not zero-filled, the read fills it;
  // nothrow, so a buffer that cannot be had is a cache miss (compiled instead), as it was when
  // this was a HugeBuffer, not a bad_alloc out of the engine's build.
  const int fd = ::open((dir_ / name_).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::unique_ptr<char[]> file;
  size_t size = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1LL << 32)) {
    file.reset(new (std::nothrow) char[static_cast<size_t>(st.st_size)]);
    while (file && size < static_cast<size_t>(st.st_size)) {
      ssize_t n = ::read(fd, file.get() + size, static_cast<size_t>(st.st_size) - size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      size += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  const size_t header = sizeof kMagic + kIv + kTag;
  if (size < header || std::memcmp(file.get(), kMagic, sizeof kMagic)) return std::nullopt;
  unsigned char* iv = reinterpret_cast<unsigned char*>(file.get() + sizeof kMagic);
  unsigned char* tag = iv + kIv;
  unsigned char* ct = tag + kTag;
  const size_t ct_len = size - header;
  const std::string aes_key = raw_hmac(key_, "mcp-scrub db cache encryption v1");
  std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx(EVP_CIPHER_CTX_new());
  int len = 0, fin = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(aes_key.data()), iv) != 1 ||
      EVP_DecryptUpdate(ctx.get(), ct, &len, ct, static_cast<int>(ct_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), ct + len, &fin) != 1)
    return std::nullopt;  // corrupted, truncated or made under another key
  const std::string_view plain(reinterpret_cast<const char*>(ct), ct_len);
  // Plaintext: u32 count, count * (u32 min, u32 max, u32 hs max, u8 prefilter, u32 groups),
  // then the serialized database (v4 of the identity; v3 had no hs max).
  size_t off = 0;
  auto u32 = [&](uint32_t& v) {
    if (off + 4 > plain.size()) return false;
    std::memcpy(&v, plain.data() + off, 4);
    off += 4;
    return true;
  };
  uint32_t count = 0;
  if (!u32(count) || count > (1u << 20)) return std::nullopt;
  std::vector<CachedWidths> widths(count);
  for (auto& w : widths) {
    uint32_t mn = 0, mx = 0, hmx = 0, groups = 0;
    if (!u32(mn) || !u32(mx) || !u32(hmx) || off + 1 > plain.size()) return std::nullopt;
    w.min_width = mn;
    w.max_width = mx;
    w.hs_max_width = hmx;
    w.prefilter = plain[off++] != 0;
    if (!u32(groups)) return std::nullopt;
    w.groups = static_cast<int>(groups);
  }
  const char* bytes = plain.data() + off;
  const size_t length = plain.size() - off;
  size_t db_size = 0;
  if (hs_serialized_database_size(bytes, length, &db_size) != HS_SUCCESS) return std::nullopt;
  if (HugeBuffer mem(db_size); mem) {
    auto* db = reinterpret_cast<hs_database_t*>(mem.data());
    if (hs_deserialize_database_at(bytes, length, db) != HS_SUCCESS) return std::nullopt;
    const size_t mapped = mem.mapped();
    mem.release();
    return std::make_pair(HsDatabasePtr(db, HsDatabaseDeleter{mapped}), std::move(widths));
  }
  hs_database_t* db = nullptr;
  if (hs_deserialize_database(bytes, length, &db) != HS_SUCCESS) return std::nullopt;
  return std::make_pair(HsDatabasePtr(db), std::move(widths));
}

void DbCache::store(const hs_database_t* db, const std::vector<CachedWidths>& widths) const {
  if (!enabled()) return;
  char* bytes = nullptr;
  size_t length = 0;
  if (hs_serialize_database(db, &bytes, &length) != HS_SUCCESS) return;
  std::string plain;
  uint32_t count = static_cast<uint32_t>(widths.size());
  plain.append(reinterpret_cast<const char*>(&count), 4);
  for (const auto& w : widths) {
    uint32_t mn = w.min_width, mx = w.max_width, hmx = w.hs_max_width,
             groups = static_cast<uint32_t>(w.groups);
    plain.append(reinterpret_cast<const char*>(&mn), 4);
    plain.append(reinterpret_cast<const char*>(&mx), 4);
    plain.append(reinterpret_cast<const char*>(&hmx), 4);
    plain += static_cast<char>(w.prefilter ? 1 : 0);
    plain.append(reinterpret_cast<const char*>(&groups), 4);
  }
  plain.append(bytes, length);
  std::free(bytes);

  unsigned char iv[kIv], tag[kTag];
  if (RAND_bytes(iv, kIv) != 1) return;
  const std::string aes_key = raw_hmac(key_, "mcp-scrub db cache encryption v1");
  std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx(EVP_CIPHER_CTX_new());
  std::string ct(plain.size(), '\0');
  int len = 0, fin = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(aes_key.data()), iv) != 1 ||
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(ct.data()), &len,
                        reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(ct.data()) + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, tag) != 1)
    return;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  // Write a private temporary file, then rename: readers see a whole entry or none.
  std::string tmp = (dir_ / (name_ + ".tmp" + std::to_string(::getpid()))).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  std::string out(kMagic, sizeof kMagic);
  out.append(reinterpret_cast<const char*>(iv), kIv);
  out.append(reinterpret_cast<const char*>(tag), kTag);
  out += ct;
  bool ok = ::write(fd, out.data(), out.size()) == static_cast<ssize_t>(out.size());
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), (dir_ / name_).c_str()) != 0) ::unlink(tmp.c_str());
  // Keep the directory bounded: every distinct set of known values makes an entry.
  std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> entries;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec))
    if (e.path().extension() == ".hsdb") entries.emplace_back(e.last_write_time(ec), e.path());
  if (entries.size() > kMaxEntries) {
    std::sort(entries.begin(), entries.end());
    for (size_t i = 0; i + kMaxEntries < entries.size(); ++i) std::filesystem::remove(entries[i].second, ec);
  }
}

}  // namespace scrub
