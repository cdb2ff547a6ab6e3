#include <catch2/catch.hpp>

#include <algorithm>
#include <malloc.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "engine_fixture.h"
#include "tests/sanitizer_stride.h"
#include "filter/huge_pages.h"
#include "filter/literal_variants.h"
#include "filter/mcp_filter.h"
#include "filter/redactor.h"

extern char** environ;

using namespace scrub;
using namespace scrub::test;
namespace fs = std::filesystem;

namespace {
// Runs one hidden test case of this binary (by name) in a child process, with `extra_env` added
// to the environment, and checks it passed (Catch2's exit code counts its failed assertions).
// For what only a fresh process shows: glibc hands a new thread the arena of a thread that
// ended, and earlier tests ended threads; a database cache first filled in this process.
void run_child_case(const char* name, std::vector<std::string> extra_env = {}) {
  char self[] = "/proc/self/exe";
  std::string case_name = name;
  char* argv[] = {self, case_name.data(), nullptr};
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, self, nullptr, nullptr, argv, envp.data()) == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

const char* kCacheRules = R"(
[[rules]]
id = "github-pat"
regex = '''\b(ghp_[0-9A-Za-z]{36})\b'''
keywords = ["ghp_"]
)";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}
}  // namespace

TEST_CASE("the compiled-database cache is reused, encrypted, and survives corruption", "[cache]") {
  fs::path dir = fs::temp_directory_path() / ("scrub-cache-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  EngineOptions eo = test_options();
  eo.cache_dir = dir.string();
  const std::string secret = fake(24, 77);
  const std::string token = "ghp_" + fake(36, 78);
  const std::string line = "k=" + secret + " t=" + token;
  const std::string want = "k=[REDACTED:known-secret] t=[REDACTED:github-pat]";

  {
    Redactor r(make_set(kCacheRules, {{"env:K_SECRET", secret}}, eo));
    CHECK(redact_text(r, line).out == want);
  }
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir)) entries.push_back(e.path());
  REQUIRE(entries.size() == 1);
  const std::string file = slurp(entries[0]);
  CHECK(file.rfind("SCRUBDB2", 0) == 0);
  // No encoded form of the known value is stored in clear.
  for (const auto& v : literal_variants(secret, 6)) CHECK(file.find(v.bytes) == std::string::npos);

  SECTION("a second compile loads it and scans the same") {
    auto t = fs::last_write_time(entries[0]);
    Redactor r(make_set(kCacheRules, {{"env:K_SECRET", secret}}, eo));
    CHECK(redact_text(r, line).out == want);
    CHECK(fs::last_write_time(entries[0]) == t);  // not rewritten
  }
  SECTION("a corrupted entry is ignored and replaced") {
    std::string bad = file;
    bad[bad.size() / 2] ^= 0x55;
    std::ofstream(entries[0], std::ios::binary | std::ios::trunc) << bad;
    Redactor r(make_set(kCacheRules, {{"env:K_SECRET", secret}}, eo));
    CHECK(redact_text(r, line).out == want);
    CHECK(slurp(entries[0]) != bad);
  }
  SECTION("another key does not read it") {
    EngineOptions other = eo;
    other.fingerprint_key = "a-different-installation-key";
    Redactor r(make_set(kCacheRules, {{"env:K_SECRET", secret}}, other));
    CHECK(redact_text(r, line).out == want);
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".hsdb";
    CHECK(n == 2);
  }
  fs::remove_all(dir);
}

TEST_CASE("a cache entry vouches only for the allowlist regexes it was made with", "[cache][errors]") {
  // Allowlist regexes are built on first use when the database comes from the cache, so an entry
  // must never be found for a rule set whose allowlists differ: an invalid one would go unreported.
  fs::path dir = fs::temp_directory_path() / ("scrub-cache-allow-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  EngineOptions eo = test_options();
  eo.cache_dir = dir.string();
  auto rules_with = [](const std::string& allow) {
    return "[[rules]]\nid='one'\nregex='''one=([a-z0-9]{12})'''\n[[rules.allowlists]]\nregexes=['''" +
           allow + "''']\n";
  };
  const std::string real = "one=" + std::string("q7k2m9x4p8r3");
  const std::string sample = "one=sample7k2m9x";
  for (int round = 0; round < 2; ++round) {  // the second round loads the entry the first wrote
    Redactor r(make_set(rules_with("^sample"), {}, eo));
    CHECK(redact_text(r, real + " " + sample).out == "one=[REDACTED:one] " + sample);
    // The mask-token program (also built on first use) keeps masked output as it is.
    CHECK(redact_text(r, "one=[REDACTED:one] " + sample).status == RedactStatus::kClean);
  }
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().extension() == ".hsdb";
  CHECK(entries == 1);
  try {
    make_set(rules_with("(open"), {}, eo);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          "test.toml: rule 'one' allowlist #1: allowlist regex is invalid: missing ): (open");
  }
  fs::remove_all(dir);
}

// The cache's blocks (filter/huge_pages.h): zeroed, writable to the end, a large one aligned and
// rounded to huge pages, a small one to 4 KiB pages; moves and release() hand the mapping over.
TEST_CASE("HugeBuffer: large blocks in 2 MiB pages, small ones in 4 KiB pages", "[cache]") {
  for (size_t bytes : {size_t{1}, size_t{21000}, HugeBuffer::kSmall - 1, HugeBuffer::kSmall,
                       size_t{1578532}, HugeBuffer::kHugePage + 1}) {
    INFO("bytes " << bytes);
    HugeBuffer b(bytes);
    REQUIRE(b);
    CHECK(b.size() == bytes);
    const size_t unit = bytes < HugeBuffer::kSmall ? 4096 : HugeBuffer::kHugePage;
    CHECK(b.mapped() % unit == 0);
    CHECK(b.mapped() >= bytes);
    CHECK(b.mapped() < bytes + unit);
    CHECK(reinterpret_cast<uintptr_t>(b.data()) % unit == 0);
    CHECK(std::all_of(b.data(), b.data() + bytes, [](char c) { return c == 0; }));
    std::fill(b.data(), b.data() + b.mapped(), '\x5a');
    CHECK(b.data()[b.mapped() - 1] == '\x5a');
    HugeBuffer moved(std::move(b));
    CHECK_FALSE(b);
    CHECK(moved.size() == bytes);
    CHECK(moved.data()[0] == '\x5a');
    const size_t mapped = moved.mapped();
    char* p = moved.release();
    CHECK_FALSE(moved);
    CHECK(moved.mapped() == 0);
    CHECK(p[bytes - 1] == '\x5a');
    HugeBuffer::free_mapping(p, mapped);
  }
  CHECK_FALSE(HugeBuffer(0));
}

// The heap's growth in huge pages (main() asks for it): the call grows glibc's main heap and
// advises a 2 MiB-aligned part of it, which /proc/self/smaps then shows with the "hg" flag, and
// malloc's free top then begins there.
TEST_CASE("grow_heap_in_huge_pages: the heap grows and its aligned part is advised", "[cache]") {
#ifdef SCRUB_TEST_SANITIZED
  SUCCEED("a sanitizer's allocator does not use glibc's heap: not tested here");
  return;
#endif
  CHECK(grow_heap_in_huge_pages(HugeBuffer::kHugePage - 1) == 0);  // smaller than one huge page
  mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);  // as main() has it: the growing block is the heap's
  const size_t advised = grow_heap_in_huge_pages(size_t{8} << 20);
  REQUIRE(advised >= HugeBuffer::kHugePage);
  CHECK(advised % HugeBuffer::kHugePage == 0);
  CHECK(advised <= (size_t{8} << 20) + mallinfo2().arena);
  // Some mapping of the heap's range carries the advice.
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_heap = false, advised_heap = false;
  const uintptr_t brk = reinterpret_cast<uintptr_t>(sbrk(0));
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2) in_heap = lo < brk && hi <= brk && hi > brk - mallinfo2().arena;
    if (in_heap && line.rfind("VmFlags:", 0) == 0 && line.find(" hg") != std::string::npos)
      advised_heap = true;
  }
  CHECK(advised_heap);
  // The free top begins in the advised part (the unaligned head before it is taken, unless it is
  // under 64 KiB), so the next blocks carved from it are in huge pages.
  const uintptr_t heap_start = brk - mallinfo2().arena;
  const uintptr_t first_aligned =
      (heap_start + HugeBuffer::kHugePage - 1) & ~(uintptr_t{HugeBuffer::kHugePage} - 1);
  CHECK(brk - mallinfo2().keepcost + (64 << 10) > first_aligned);
  // glibc's own heap still serves: a block from it is writable.
  std::vector<char> v(size_t{1} << 20, 'x');
  CHECK(v.back() == 'x');
}

// Whether the 4 KiB page at `a` is in memory (/proc/self/pagemap, bit 63; readable unprivileged).
static bool page_present(uintptr_t a) {
  std::ifstream pm("/proc/self/pagemap", std::ios::binary);
  pm.seekg(static_cast<std::streamoff>(a / 4096 * 8));
  uint64_t e = 0;
  pm.read(reinterpret_cast<char*>(&e), sizeof e);
  return pm && (e >> 63) != 0;
}

// A thread that holds megabytes of its own (a `filter --threads` pool thread) has its
// malloc arena's reservation advised, and its next blocks come from past the arena's first
// 2 MiB page (its header and first blocks, 4 KiB pages): a block of a megabyte then starts in
// the second 2 MiB page of the reservation, in an advised mapping. The second call on the
// thread does nothing; on the main thread (the main heap) nothing is done. Run in a process of
// its own (the test binary again, this case only): glibc hands a new thread the arena of a
// thread that ended, and earlier tests ended threads.
TEST_CASE("advise_thread_arena_in_huge_pages child", "[.arena-child]") {
  mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);  // as main() has it: a megabyte is not mapped
  CHECK(advise_thread_arena_in_huge_pages() == 0);  // the main thread: its heap is the main one
  size_t first = 0, second = 0;
  uintptr_t block = 0, reservation = 0;
  bool advised = false;
  std::thread t([&] {
    first = advise_thread_arena_in_huge_pages();
    second = advise_thread_arena_in_huge_pages();
    void* p = std::malloc(size_t{1} << 20);
    block = reinterpret_cast<uintptr_t>(p);
    reservation = block & ~((uintptr_t{64} << 20) - 1);
    std::ifstream smaps("/proc/self/smaps");  // the mapping that holds it: advised?
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
      uintptr_t lo = 0, hi = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2)
        inside = lo <= block && block < hi;
      else if (inside && line.rfind("VmFlags:", 0) == 0)
        advised = line.find(" hg") != std::string::npos;
    }
    std::free(p);
  });
  t.join();
  CHECK(first == (size_t{64} << 20));
  CHECK(second == 0);
  CHECK(advised);
  CHECK(block >= reservation + HugeBuffer::kHugePage);
  CHECK(block < reservation + 2 * HugeBuffer::kHugePage);
}

TEST_CASE("advise_thread_arena_in_huge_pages: a new thread's next blocks in advised 2 MiB pages",
          "[cache]") {
#ifdef SCRUB_TEST_SANITIZED
  SUCCEED("a sanitizer's allocator has no glibc arenas: not tested here");
  return;
#endif
  run_child_case("advise_thread_arena_in_huge_pages child");
}

// The wrap's preparation for large messages (McpFilter::prepare_for_large_messages, with
// `parallel`) puts the helper thread's malloc arena in huge pages before the thread allocates:
// afterwards one whole 64 MiB arena reservation is advised (VmFlags "hg" over all of it), and a
// filter without `parallel` (no helper thread) advises none. Both mask the large message alike.
// In a process of its own, as the case above: a reused arena is left alone.
TEST_CASE("prepared helper arena child", "[.prepared-arena-child]") {
  mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);  // as main() has it
  constexpr uintptr_t kArena = uintptr_t{64} << 20;
  auto advised_arenas = [] {
    std::vector<std::pair<uintptr_t, uintptr_t>> advised;  // [lo, hi) of "hg" mappings
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    uintptr_t lo = 0, hi = 0;
    while (std::getline(smaps, line)) {
      uintptr_t a = 0, b = 0;  // (a field such as "FilePmdMapped:" reads as one number)
      if (std::sscanf(line.c_str(), "%lx-%lx ", &a, &b) == 2) {
        lo = a;
        hi = b;
        continue;
      }
      if (line.rfind("VmFlags:", 0) == 0 && line.find(" hg") != std::string::npos)
        advised.emplace_back(lo, hi);
    }
    size_t whole = 0;
    for (const auto& [from, to] : advised) {
      if (from % kArena != 0) continue;
      uintptr_t covered = 0;
      for (const auto& [a, b] : advised)
        if (a >= from && b <= from + kArena) covered += b - a;
      whole += covered == kArena ? 1 : 0;
    }
    return whole;
  };
  const std::string secret = fake(24, 92);
  EngineHolder holder(make_set(kCacheRules, {{"env:K_SECRET", secret}}, test_options()));
  RequestTracker tracker;
  std::string filler;
  while (filler.size() < Redactor::kParallelBytes + 1000) filler += "log line\\n";
  const std::string msg = R"({"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":")" +
                          filler + " " + secret + R"("}]}})";
  std::string want = msg;
  want.replace(want.find(secret), secret.size(), "[REDACTED:known-secret]");
  CHECK(advised_arenas() == 0);
  for (bool parallel : {false, true}) {
    INFO("parallel " << parallel);
    McpFilter filter(holder, tracker, {Action::kMask, parallel});
    filter.prepare_for_large_messages();
    MessageResult r;
    REQUIRE(filter.process(Direction::kServerToClient, msg, r) == ScanStatus::kOk);  // waits for it
    REQUIRE(r.kind == MessageResult::Kind::kReplace);
    CHECK(r.out == want);
    CHECK(advised_arenas() == (parallel ? 1u : 0u));
  }
}

TEST_CASE("McpFilter::prepare_for_large_messages: the helper thread's arena in huge pages",
          "[cache][mcp]") {
#ifdef SCRUB_TEST_SANITIZED
  SUCCEED("a sanitizer's allocator has no glibc arenas: not tested here");
  return;
#endif
  run_child_case("prepared helper arena child");
}

// `filter --threads` asks for more of the heap in huge pages once it knows it will hold more:
// afterwards the free top holds that many bytes of whole 2 MiB pages, advised, and none of their
// 4 KiB pages is in memory yet. (One written there before the advice, as glibc writes the header
// of the block that grows the heap, kept its 2 MiB page in 4 KiB pages for good.)
TEST_CASE("reserve_heap_in_huge_pages: whole untouched 2 MiB pages at the top", "[cache]") {
#ifdef SCRUB_TEST_SANITIZED
  SUCCEED("a sanitizer's allocator does not use glibc's heap: not tested here");
  return;
#endif
  constexpr uintptr_t kHuge = HugeBuffer::kHugePage;
  CHECK(reserve_heap_in_huge_pages(kHuge - 1) == 0);
  // Twice: the first may find room enough already (an earlier test grew the heap); the second
  // asks for more than the free top holds, so the heap grows.
  for (size_t bytes : {size_t{4} << 20, mallinfo2().keepcost + (size_t{6} << 20)}) {
    REQUIRE(reserve_heap_in_huge_pages(bytes) >= bytes);
    const uintptr_t end = reinterpret_cast<uintptr_t>(sbrk(0));
    const uintptr_t from = (end - mallinfo2().keepcost + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t to = from + ((bytes + kHuge - 1) & ~(kHuge - 1));
    REQUIRE(to <= end);
    size_t present = 0;
    for (uintptr_t a = from; a < to; a += 4096) present += page_present(a) ? 1 : 0;
    CHECK(present == 0);
    // Every mapping of [from, to) carries the advice.
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    size_t overlap = 0, advised = 0;
    while (std::getline(smaps, line)) {
      uintptr_t lo = 0, hi = 0;
      if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2)
        overlap = lo < to && hi > from ? std::min(hi, to) - std::max(lo, from) : 0;
      else if (line.rfind("VmFlags:", 0) == 0 && line.find(" hg") != std::string::npos)
        advised += overlap;
    }
    CHECK(advised == to - from);
  }
}

// McpFilter finds the keys of a large message with a small Hyperscan database of its own, made
// once a process: read from the database cache when it is there, compiled and stored there when
// not (a process's first compile cost the wrap more than half of its first 1 MB result's time).
// The child builds an engine with the cache in SCRUB_TEST_KEY_DB_DIR and masks a textual blob in
// a message large enough for that database; the parent counts and inspects the entries.
TEST_CASE("McpFilter's key database child", "[.key-db-child]") {
  const char* dir = std::getenv("SCRUB_TEST_KEY_DB_DIR");
  REQUIRE(dir != nullptr);
  EngineOptions eo = test_options();
  eo.cache_dir = dir;
  const std::string secret = fake(24, 91);
  EngineHolder holder(make_set(kCacheRules, {{"env:K_SECRET", secret}}, eo));
  RequestTracker tracker;
  McpFilter filter(holder, tracker, {});
  const std::string filler(100 * 1024, 'x');
  const std::string msg =
      R"({"jsonrpc":"2.0","id":3,"result":{"contents":[{"uri":"file:///a","text":")" + filler +
      R"("},{"uri":"file:///b","mimeType":"text/plain","blob":")" +
      base64_encode("token: " + secret + "\n") + R"("}]}})";
  MessageResult r;
  REQUIRE(filter.process(Direction::kServerToClient, msg, r) == ScanStatus::kOk);
  REQUIRE(r.kind == MessageResult::Kind::kReplace);
  REQUIRE(r.findings.size() == 1);
  CHECK(r.findings[0].json_path == "result.contents[1].blob");
  CHECK(r.out.find(filler) != std::string::npos);
  CHECK(r.out.find(base64_encode("token: [REDACTED:known-secret]\n")) != std::string::npos);
}

TEST_CASE("McpFilter's key database comes from the database cache once stored there", "[cache]") {
  const fs::path dir =
      fs::temp_directory_path() / ("scrub-key-db-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto entries = [&] {
    std::map<std::string, ino_t> out;  // name -> inode: a rewritten entry is a new file
    for (const auto& e : fs::directory_iterator(dir)) {
      struct stat st {};
      REQUIRE(::stat(e.path().c_str(), &st) == 0);
      out[e.path().filename().string()] = st.st_ino;
    }
    return out;
  };
  auto child = [&] {
    run_child_case("McpFilter's key database child", {"SCRUB_TEST_KEY_DB_DIR=" + dir.string()});
  };
  // What the engine alone stores, here in this process.
  {
    EngineOptions eo = test_options();
    eo.cache_dir = dir.string();
    Redactor r(make_set(kCacheRules, {{"env:K_SECRET", fake(24, 91)}}, eo));
  }
  const auto engine_only = entries();
  REQUIRE_FALSE(engine_only.empty());
  child();  // compiles the key database and stores it
  const auto first = entries();
  CHECK(first.size() == engine_only.size() + 1);
  for (const auto& [name, ino] : engine_only) CHECK(first.count(name) == 1);
  child();  // reads it: no entry written again
  CHECK(entries() == first);
  fs::remove_all(dir);
}
