// Required runs (filter/char_run.h): the class parser, the run finder and the run lister against
// naive ones, and the engine with a gated rule: found where its run is, in find(), find_split()
// and the batch prefilter; the gated database over the windows around the runs reporting what it
// reports over the whole unit; and the built-in pack, whose airtable-pat is gated, finding
// exactly what the same pack without gates finds.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "engine_fixture.h"
#include "filter/char_run.h"
#include "filter/compiled_set_impl.h"
#include "filter/scanner.h"
#include "patterns/rule_check.h"
#include "property_cases.h"

using namespace scrub;
using namespace scrub::test;

namespace {

CharRun parse_run(const std::string& text) {
  std::string why;
  auto run = CharRun::parse(text, why);
  INFO(text << ": " << why);
  REQUIRE(run.has_value());
  return *run;
}

std::string run_error(const std::string& text) {
  std::string why;
  CHECK_FALSE(CharRun::parse(text, why).has_value());
  return why;
}

bool naive_run(const CharRun& r, const std::string& s) {
  size_t cur = 0;
  for (unsigned char c : s) {
    cur = r.in[c] ? cur + 1 : 0;
    if (cur >= r.length) return true;
  }
  return r.length == 0;
}

// Every maximal run of `length` or more bytes of the class at or after `from`, in order, as
// next_run() reports them (a run that `from` cuts begins at `from`).
std::vector<std::pair<size_t, size_t>> naive_runs(const CharRun& r, const std::string& s,
                                                  size_t from = 0) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = from;
  while (i < s.size()) {
    if (!r.in[static_cast<unsigned char>(s[i])]) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && r.in[static_cast<unsigned char>(s[j])]) ++j;
    if (j - i >= r.length) out.emplace_back(i, j);
    i = j;
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> all_runs(const CharRun& r, const std::string& s,
                                                size_t from = 0) {
  std::vector<std::pair<size_t, size_t>> out;
  for (auto run = r.next_run(s, from); run; run = r.next_run(s, run->second)) {
    out.push_back(*run);
    if (out.size() > s.size()) break;  // a run that does not move on: fail, do not hang
  }
  return out;
}

const char* kGatedRules = R"(
[[rules]]
id = "gated-token"
regex = '''\b(tok[A-Za-z0-9]{6}\.[0-9a-f]{16})\b'''
requiredRun = '''[0-9a-f]{16}'''
[[rules]]
id = "plain-token"
regex = '''\bplain_([A-Za-z0-9]{12})\b'''
)";

std::string gated_secret() { return "tokAb12Cd." + std::string("0123456789abcdef"); }

}  // namespace

TEST_CASE("requiredRun classes parse like regex brackets, and bad ones are refused", "[char_run]") {
  CharRun hex = parse_run("[0-9a-f]{64}");
  CHECK(hex.length == 64);
  CHECK(hex.size() == 16);
  CHECK(hex.in['0']);
  CHECK(hex.in['f']);
  CHECK_FALSE(hex.in['g']);
  CHECK_FALSE(hex.in['A']);
  CharRun neg = parse_run("[^a-z]{8}");
  CHECK(neg.size() == 256 - 26);
  CHECK_FALSE(neg.in['q']);
  CharRun esc = parse_run(R"([\]\-x-z\\]{10})");
  CHECK(esc.size() == 6);
  for (char c : std::string("]-xyz\\")) CHECK(esc.in[static_cast<unsigned char>(c)]);
  CharRun dash = parse_run("[a-]{8}");  // a trailing dash is itself
  CHECK(dash.size() == 2);

  CHECK(run_error("[a-z]") == "must be a bracketed class and a count, like [0-9a-f]{64}");
  CHECK(run_error("a-z{8}") == "must be a bracketed class and a count, like [0-9a-f]{64}");
  CHECK(run_error("[]{8}") == "must be a bracketed class and a count, like [0-9a-f]{64}");
  CHECK(run_error("[a-z]{7}") == "the count must be a number from 8 to 100000");
  CHECK(run_error("[a-z]{x}") == "the count must be a number from 8 to 100000");
  CHECK(run_error("[a-z]{1000000}") == "the count must be a number from 8 to 100000");
  CHECK(run_error("[z-a]{8}") == "the class has a range that runs backwards");
  CHECK(run_error("[a\\]{8}") == "the class ends in a lone backslash");
}

TEST_CASE("found_in agrees with a byte-by-byte count on every short string", "[char_run]") {
  for (size_t len = 0; len <= 7; ++len) {
    CharRun r;
    r.in['a'] = true;
    r.length = len;
    for (size_t n = 0; n <= 13; ++n) {
      for (unsigned bits = 0; bits < (1u << n); ++bits) {
        std::string s;
        for (size_t i = 0; i < n; ++i) s += (bits >> i) & 1 ? 'a' : 'x';
        INFO("length " << len << " in '" << s << "'");
        REQUIRE(r.found_in(s) == naive_run(r, s));
      }
    }
  }
}

TEST_CASE("found_in agrees with a byte-by-byte count on long runs and long windows", "[char_run]") {
  // Runs of the class up to 80 long, broken by one byte outside it, at every window length the
  // skips treat differently (shorter, equal to, longer than the runs around it).
  CharRun r = parse_run("[0-9a-f]{64}");
  std::mt19937 rng(20261127);
  const std::string inside = "0123456789abcdef", outside = "gz .:/Q\n\"";
  for (int i = 0; i < 4000; ++i) {
    std::string s;
    const size_t parts = 1 + rng() % 8;
    for (size_t p = 0; p < parts; ++p) {
      size_t run = rng() % 81;
      for (size_t k = 0; k < run; ++k) s += inside[rng() % inside.size()];
      s += outside[rng() % outside.size()];
    }
    for (size_t len : {8, 15, 16, 17, 31, 63, 64, 65, 80}) {
      r.length = len;
      INFO("window " << len << " over " << s.size() << " bytes, case " << i);
      REQUIRE(r.found_in(s) == naive_run(r, s));
    }
  }
}

TEST_CASE("next_run lists every run, whole, as a byte-by-byte walk does", "[char_run]") {
  // Classes for the vector path (hex, where the CPU has AVX2) and for the byte walk (a class too
  // spread for the nibble tables, and hex with its tables dropped), at lengths either side of
  // where the block stride changes; runs cut by `from` too.
  CharRun hex = parse_run("[0-9a-f]{64}");
  CharRun walked = hex;
  walked.tables = false;
  CHECK_FALSE(walked.vectorised());
  std::mt19937 rng(20261128);
  const std::string inside = "0123456789abcdef", outside = "gz .:/Q\n\"";
  size_t listed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    const size_t parts = 1 + rng() % 7;
    for (size_t p = 0; p < parts; ++p) {
      size_t run = rng() % 3 == 0 ? 40 + rng() % 200 : rng() % 40;
      for (size_t k = 0; k < run; ++k) s += inside[rng() % inside.size()];
      s += outside[rng() % outside.size()];
    }
    const size_t from = rng() % 4 == 0 ? rng() % (s.size() + 1) : 0;
    for (size_t len : {8, 16, 31, 63, 64, 65, 79, 80, 95, 96, 128, 200}) {
      for (CharRun* r : {&hex, &walked}) {
        r->length = len;
        INFO("window " << len << (r->vectorised() ? " by blocks" : " by bytes") << " over "
                       << s.size() << " bytes from " << from << ", case " << i);
        const auto want = naive_runs(*r, s, from);
        REQUIRE(all_runs(*r, s, from) == want);
        listed += want.size();
      }
    }
  }
  CHECK(listed > 10000);
  CHECK_FALSE(hex.next_run("", 0));
  hex.length = 8;
  CHECK_FALSE(hex.next_run("0123456789", 10));
  CHECK(hex.next_run("0123456789", 2) == std::make_pair(size_t{2}, size_t{10}));
}

TEST_CASE("found_in by 16-byte blocks agrees with a byte-by-byte count", "[char_run]") {
  // Runs of 63 and more take the vector path where the CPU has AVX2: classes that fit the nibble
  // tables (hex, a negated class, classes spread over many rows) and one that does not (nine
  // distinct sets of low nibbles), at the lengths where the block stride changes.
  CharRun hex = parse_run("[0-9a-f]{64}");
  CHECK(hex.tables);
  CHECK(hex.vectorised() == static_cast<bool>(__builtin_cpu_supports("avx2")));
  CharRun nine;
  std::string nine_bytes;
  for (int c : {0x01, 0x12, 0x23, 0x34, 0x45, 0x56, 0x67, 0x78, 0x89}) {
    nine_bytes += static_cast<char>(c);
    nine.in[c] = true;
  }
  nine.build_tables();
  CHECK_FALSE(nine.tables);
  const std::vector<std::pair<CharRun, std::string>> classes = {
      {hex, "0123456789abcdef"},
      {parse_run("[^ \n\"]{64}"), "aZ0/+=-_.~"},
      {parse_run("[A-Za-z0-9+/=]{64}"), "AZaz09+/="},
      {nine, nine_bytes},
  };
  for (size_t i = 0; i + 1 < classes.size(); ++i) CHECK(classes[i].first.tables);
  const std::string outside = "gz .:\n\"Q";
  std::mt19937 rng(20261128);
  for (const auto& [cls, inside] : classes) {
    CharRun r = cls;
    for (int i = 0; i < 1500; ++i) {
      std::string s;
      const size_t parts = 1 + rng() % 6;
      for (size_t p = 0; p < parts; ++p) {
        size_t run = rng() % 3 == 0 ? 50 + rng() % 220 : rng() % 40;
        for (size_t k = 0; k < run; ++k) s += inside[rng() % inside.size()];
        char out = outside[rng() % outside.size()];
        s += r.in[static_cast<unsigned char>(out)] ? ' ' : out;  // the negated class holds most
      }
      for (size_t len : {63, 64, 65, 78, 79, 80, 94, 95, 96, 127, 128, 160, 200, 257}) {
        r.length = len;
        INFO("class of '" << inside << "', window " << len << " over " << s.size()
                          << " bytes, case " << i);
        REQUIRE(r.found_in(s) == naive_run(r, s));
      }
    }
  }
}

TEST_CASE("a gated rule is found where its run is, by every scan path", "[char_run][engine]") {
  auto set = make_set(kGatedRules);
  REQUIRE(set->gated_database() != nullptr);
  const std::string secret = gated_secret();
  Scanner scanner(set);

  // Alone and in a line: found, with the plain rule beside it.
  const std::string plain = "plain_" + fake(12, 3);
  const std::string line = "x path pattern " + secret + " and " + plain + " end";
  CHECK(set->gate_open(line));
  std::vector<SecretSpan> spans;
  REQUIRE(scanner.find(line, spans) == ScanStatus::kOk);
  REQUIRE(spans.size() == 2);
  CHECK(line.substr(spans[0].begin, spans[0].end - spans[0].begin) == secret);
  CHECK(line.substr(spans[1].begin, spans[1].end - spans[1].begin) == plain.substr(6));

  // Its run one hex digit short: the gate stays shut and only the plain rule is looked for.
  const std::string short_run = "tokAb12Cd.0123456789abcde " + plain;
  CHECK_FALSE(set->gate_open(short_run));
  spans.clear();
  REQUIRE(scanner.find(short_run, spans) == ScanStatus::kOk);
  REQUIRE(spans.size() == 1);
  CHECK(spans[0].source == 1);

  // The batch prefilter marks the line that holds it (and the plain rule's), not the others.
  std::string block;
  std::vector<size_t> ends;
  for (const std::string& l : {std::string("path and pattern"), "a " + secret, std::string("nothing"),
                               plain}) {
    block += l;
    ends.push_back(block.size());
    block += "\n";
  }
  std::vector<uint8_t> hit;
  REQUIRE(scanner.lines_with_events(block, ends, hit) == ScanStatus::kOk);
  CHECK(hit == std::vector<uint8_t>{0, 1, 0, 1});

  // A unit large enough to be split across two threads, the secret at the split and away from it.
  Scanner helper(set);
  std::string big;
  while (big.size() < Scanner::kSplitBytes + 4096) big += "path /var/lib/app status ok 12ms\n";
  for (size_t at : {big.size() / 2 - 8, size_t{100}, big.size() - 200}) {
    std::string unit = big;
    unit.replace(at, secret.size() + 2, " " + secret + " ");
    std::vector<SecretSpan> whole, split;
    REQUIRE(scanner.find(unit, whole) == ScanStatus::kOk);
    REQUIRE(scanner.find_split(unit, helper, split) == ScanStatus::kOk);
    REQUIRE(whole.size() == 1);
    CHECK(unit.substr(whole[0].begin, whole[0].end - whole[0].begin) == secret);
    CHECK(split == whole);
  }
}

namespace {

using Events = std::vector<std::pair<unsigned long long, unsigned>>;  // (end, expression id)

int collect_event(unsigned int id, unsigned long long, unsigned long long to, unsigned int,
                  void* ctx) {
  static_cast<Events*>(ctx)->emplace_back(to, id);
  return 0;
}

}  // namespace

// The gated database scans only the windows around the runs (CompiledSet::Impl::gated_windows):
// it must report exactly the ends a scan of the whole unit reports. Tokens against word bytes
// (\b), at the unit's ends, runs of two gates close together and far apart, too short, too long,
// and a rule anchored at the start (^), against one Hyperscan pass over the whole unit.
TEST_CASE("the gated database over its windows reports what it reports over the whole unit",
          "[char_run][engine]") {
  // kGatedRules' gated and plain tokens, a second gate and an anchored rule.
  auto set = make_set(std::string(kGatedRules) + R"(
[[rules]]
id = "gated-upper"
regex = '''\b(UP[A-Z0-9]{20})'''
requiredRun = '''[A-Z0-9]{20}'''
[[rules]]
id = "gated-start"
regex = '''^key=([0-9a-f]{16})'''
requiredRun = '''[0-9a-f]{16}'''
)");
  const auto& impl = set->impl();
  REQUIRE(impl.gated_db != nullptr);
  REQUIRE(impl.gates.size() == 2);
  REQUIRE_FALSE(impl.gated_whole);
  CHECK(impl.gated_reach == 26);  // tok, 6, the dot, 16
  std::unique_ptr<hs_scratch_t, HsScratchDeleter> scratch(set->new_scratch());
  REQUIRE(scratch);

  const std::vector<std::string> pieces = {
      "tokAb12Cd.0123456789abcdef", "xtokAb12Cd.0123456789abcdef", "tokAb12Cd.0123456789abcdef0",
      "tokAb12Cd.0123456789abcde", "UPABCDEFGHIJ0123456789", "UPABCDEFGHIJ012345678",
      "xUPABCDEFGHIJ0123456789ZZ", "key=0123456789abcdef", "0123456789abcdef0123",
      "ABCDEFGHIJKLMNOPQRSTUVWX", "path", " ", "\n", ".", "a", "Z", "9", "f",
      "plain_ABCDEFabcdef"};
  std::mt19937 rng(20261128);
  size_t events = 0, narrowed = 0;
  for (int i = 0; i < 6000; ++i) {
    std::string unit;
    const size_t parts = 1 + rng() % 12;
    for (size_t p = 0; p < parts; ++p) {
      if (rng() % 5 == 0) unit += std::string(rng() % 300, rng() % 2 ? '-' : 'q');
      unit += pieces[rng() % pieces.size()];
    }
    Events whole, windowed;
    if (impl.gate_open(unit))
      REQUIRE(hs_scan(impl.gated_db.get(), unit.data(), static_cast<unsigned>(unit.size()), 0,
                      scratch.get(), collect_event, &whole) == HS_SUCCESS);
    REQUIRE(impl.scan_gated(unit, scratch.get(), collect_event, &windowed) == HS_SUCCESS);
    std::sort(windowed.begin(), windowed.end());
    std::sort(whole.begin(), whole.end());
    INFO("case " << i << ", " << unit.size() << " bytes");
    REQUIRE(windowed == whole);
    events += whole.size();
    std::vector<std::pair<size_t, size_t>> windows;
    impl.gated_windows(unit, windows);
    size_t covered = 0;
    for (const auto& [b, e] : windows) covered += e - b;
    if (covered < unit.size() / 2) ++narrowed;
  }
  CHECK(events > 1000);
  CHECK(narrowed > 500);

  // One token in 100 KB: the gated database reads its window, not the unit.
  std::string big(50000, '-');
  big += " tokAb12Cd.0123456789abcdef ";
  big += std::string(50000, '-');
  std::vector<std::pair<size_t, size_t>> windows;
  impl.gated_windows(big, windows);
  REQUIRE(windows.size() == 1);
  CHECK(windows[0] == std::make_pair(size_t{50011} - 26, size_t{50027} + 26));
  Events found;
  REQUIRE(impl.scan(big, scratch.get(), collect_event, &found) == HS_SUCCESS);
  REQUIRE(found.size() == 1);
  CHECK(found[0].first == 50027);
}

TEST_CASE("rules check and the loader hold a gated rule to its run", "[char_run][loader]") {
  RuleSet set = load_rules_string(R"(
[[rules]]
id = "gated-token"
regex = '''\b(tok[A-Za-z0-9]{6}\.[0-9a-f]{8,16})\b'''
requiredRun = '''[0-9a-f]{16}'''
examples = [{ text = "tokAb12Cd.0123456789abcdef", secret = "tokAb12Cd.0123456789abcdef" },
            { text = "tokAb12Cd.01234567", secret = "tokAb12Cd.01234567" }]
negatives = ["tokAb12Cd.xyz"]
)",
                                  "g.toml");
  RuleCheckReport report = check_rules(set);
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].rule_id == "gated-token");
  CHECK(report.failures[0].reason ==
        "example 2: its text holds no run of [0-9a-f]{16} (requiredRun)");
  CHECK(report.examples == 2);
  CHECK_THROWS_WITH(load_rules_string(R"(
[[rules]]
id = "bad-run"
regex = '''x[0-9]{8}'''
requiredRun = '''[0-9]{8'''
)",
                                      "b.toml"),
                    "b.toml: rule 'bad-run': 'requiredRun' must be a bracketed class and a count, "
                    "like [0-9a-f]{64}");
}

// The gate must change how much is scanned, never what is found: the pack as shipped (with its
// gated rules) against the same pack without any requiredRun, over every example and negative
// and the end-to-end corpus, by find() and by the batch prefilter.
TEST_CASE("the built-in pack finds the same with its gates as without them", "[char_run][builtin]") {
  RuleSet rules = builtin_rules();
  size_t gated = 0;
  for (Rule& r : rules.rules)
    if (!r.required_run.empty()) {
      ++gated;
      r.required_run.clear();
    }
  REQUIRE(gated >= 1);
  EngineOptions eo = test_options();
  eo.cache_dir = SCRUB_TEST_CACHE_DIR;
  auto ungated = CompiledSet::compile(rules, known_secrets(), eo);
  auto shipped = builtin_set();
  REQUIRE(shipped->gated_database() != nullptr);
  REQUIRE(ungated->gated_database() == nullptr);
  Scanner a(shipped), b(ungated);

  std::vector<std::string> units;
  for (const Rule& r : rules.rules) {
    for (const auto& ex : r.examples) units.push_back(ex.text);
    for (const auto& neg : r.negatives) units.push_back(neg);
  }
  for (const char* f : {"corpus/e2e/app.log", "corpus/e2e/clean.txt", "corpus/e2e/rpc.jsonl"}) {
    std::ifstream in(std::string(SCRUB_SOURCE_DIR) + "/" + f);
    REQUIRE(in);
    std::string line;
    while (std::getline(in, line)) units.push_back(line);
  }
  size_t found = 0;
  std::string block;
  std::vector<size_t> ends;
  for (const std::string& u : units) {
    std::vector<SecretSpan> sa, sb;
    REQUIRE(a.find(u, sa) == ScanStatus::kOk);
    REQUIRE(b.find(u, sb) == ScanStatus::kOk);
    INFO("unit of " << u.size() << " bytes");
    CHECK(sa == sb);
    found += sa.size();
    block += u;
    ends.push_back(block.size());
    block += "\n";
  }
  CHECK(found > 500);
  std::vector<uint8_t> ha, hb;
  REQUIRE(a.lines_with_events(block, ends, ha) == ScanStatus::kOk);
  REQUIRE(b.lines_with_events(block, ends, hb) == ScanStatus::kOk);
  CHECK(ha == hb);
}
