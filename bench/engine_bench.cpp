// Engine benchmarks over the corpora: bytes per second and match counts per task.
//
// Corpora: every file of each directory in $SCRUB_BENCH_CORPUS_DIR (':'-separated; default
// corpus/samples, checked in), except known_secrets.txt and manifest.json. Each directory's
// known_secrets.txt is loaded as `filter --secrets-file` would, beside the built-in rules. For the
// large corpora: python3 corpus/gen_corpus.py, then
//   SCRUB_BENCH_CORPUS_DIR=corpus/generated build-bench/bench/engine_bench
//
// Families (filter with --benchmark_filter):
//   BM_HsScan/<dir>/<file>       raw hs_scan per line, counting callback: the ceiling
//   BM_Find/<dir>/<file>         Scanner::find per line
//   BM_RedactText/<dir>/<file>   Redactor::redact_text per line
//   BM_RedactJson/<dir>/<file>   Redactor::redact_json per line (files whose first line is JSON)
//   BM_RedactJson2T/<dir>/<file> the same with Redactor::set_parallel (lines over 256 KiB on two
//                                threads; wall clock)
//   BM_Compile/<dir>             CompiledSet::compile of rules + known values (ms)
//   BM_RuleCost/all, BM_RuleCost/-<rule-id>
//                                hs_scan per line over the first mixed* corpus with the full
//                                database, and without one rule; the gap is that rule's cost.
//                                Compiles one database per rule, so registered only when
//                                --benchmark_filter names "Rule", e.g.
//                                --benchmark_filter='BM_RuleCost/(all|-generic)'.
//   BM_RuleAlone/<rule-id>       that rule alone (its own rate and match events).
// Counters (per pass over the file): lines, findings (spans or masked findings), match_events
// (raw Hyperscan callbacks before collapsing: a rule change that multiplies them shows here),
// masked_lines. Bytes/s in Google Benchmark's units (1024-based).
#include <benchmark/benchmark.h>
#include <hs/hs.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "filter/compiled_set.h"
#include "filter/redactor.h"
#include "filter/scanner.h"
#include "patterns/known_secrets.h"
#include "patterns/rule_loader.h"

namespace fs = std::filesystem;

namespace {

constexpr const char* kFingerprintKey = "engine-bench-fixed-key-not-a-secret";

fs::path source_dir() { return fs::path(__FILE__).parent_path().parent_path(); }

std::vector<fs::path> corpus_dirs() {
  std::vector<fs::path> dirs;
  const char* env = std::getenv("SCRUB_BENCH_CORPUS_DIR");
  std::string list = env && *env ? env : (source_dir() / "corpus" / "samples").string();
  std::stringstream ss(list);
  for (std::string d; std::getline(ss, d, ':');)
    if (!d.empty() && fs::is_directory(d)) dirs.emplace_back(d);
  return dirs;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// A corpus file in memory, cut into lines as the filter cuts them (no "\n", no trailing "\r").
struct Corpus {
  std::string data;
  std::vector<std::string_view> lines;
  bool json = false;
};

const Corpus& corpus(const fs::path& file) {
  static std::map<std::string, std::unique_ptr<Corpus>> cache;
  auto& slot = cache[file.string()];
  if (!slot) {
    slot = std::make_unique<Corpus>();
    slot->data = read_all(file);
    std::string_view d = slot->data;
    size_t pos = 0;
    while (pos < d.size()) {
      size_t nl = d.find('\n', pos);
      size_t end = nl == std::string_view::npos ? d.size() : nl;
      std::string_view line = d.substr(pos, end - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      slot->lines.push_back(line);
      pos = end + 1;
    }
  }
  return *slot;
}

bool first_line_is_json(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char c = 0;
  while (in.get(c))
    if (c != ' ' && c != '\t') return c == '{' || c == '[';
  return false;
}

std::vector<scrub::KnownSecret> known_values(const fs::path& dir) {
  scrub::SecretSourceOptions so;
  so.env_by_name = false;  // as `filter --no-env-secrets`
  fs::path f = dir / "known_secrets.txt";
  if (fs::exists(f)) so.secrets_files.push_back(f);
  return scrub::collect_known_secrets(so, nullptr).secrets;
}

scrub::EngineOptions engine_options() {
  scrub::EngineOptions eo;
  eo.fingerprint_key = kFingerprintKey;
  return eo;
}

// The filter's configuration for a corpus directory, compiled once.
std::shared_ptr<const scrub::CompiledSet> set_for(const fs::path& dir) {
  static std::map<std::string, std::shared_ptr<const scrub::CompiledSet>> cache;
  auto& slot = cache[dir.string()];
  if (!slot) slot = scrub::CompiledSet::compile(scrub::builtin_rules(), known_values(dir), engine_options());
  return slot;
}

struct ScratchDeleter {
  void operator()(hs_scratch_t* s) const { hs_free_scratch(s); }
};
using ScratchPtr = std::unique_ptr<hs_scratch_t, ScratchDeleter>;

int count_event(unsigned int, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  ++*static_cast<uint64_t*>(ctx);
  return 0;
}

void per_pass(benchmark::State& state, const Corpus& c, double lines, double findings,
              double events, double masked) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(c.data.size()));
  using benchmark::Counter;
  state.counters["lines"] = Counter(lines);
  state.counters["findings"] = Counter(findings);
  state.counters["match_events"] = Counter(events);
  if (masked >= 0) state.counters["masked_lines"] = Counter(masked);
}

// Raw hs_scan per line (CompiledSet::scan, the Scanner's pass): what the engine could do with no
// confirmation and no masking.
void hs_scan_lines(benchmark::State& state, const scrub::CompiledSet& set, const Corpus& c) {
  if (!set.database()) {
    state.SkipWithError("empty database");
    return;
  }
  ScratchPtr scratch(set.new_scratch());  // serves the gated rules' database too
  if (!scratch) {
    state.SkipWithError("hs_alloc_scratch failed");
    return;
  }
  uint64_t events = 0;
  for (auto _ : state) {
    events = 0;
    for (std::string_view line : c.lines) set.scan(line, scratch.get(), count_event, &events);
    benchmark::DoNotOptimize(events);
  }
  per_pass(state, c, static_cast<double>(c.lines.size()), 0, static_cast<double>(events), -1);
}

void BM_HsScan(benchmark::State& state, fs::path dir, fs::path file) {
  hs_scan_lines(state, *set_for(dir), corpus(file));
}

void BM_Find(benchmark::State& state, fs::path dir, fs::path file) {
  const Corpus& c = corpus(file);
  scrub::Scanner scanner(set_for(dir));
  std::vector<scrub::SecretSpan> spans;
  uint64_t found = 0, events = 0;
  for (auto _ : state) {
    found = events = 0;
    for (std::string_view line : c.lines) {
      spans.clear();
      if (scanner.find(line, spans) != scrub::ScanStatus::kOk) {
        state.SkipWithError("scan error");
        return;
      }
      found += spans.size();
      events += scanner.match_events();
    }
    benchmark::DoNotOptimize(found);
  }
  per_pass(state, c, static_cast<double>(c.lines.size()), static_cast<double>(found),
           static_cast<double>(events), -1);
}

void redact(benchmark::State& state, const fs::path& dir, const fs::path& file, bool json,
            bool parallel = false) {
  const Corpus& c = corpus(file);
  scrub::Redactor redactor(set_for(dir));
  redactor.set_parallel(parallel);
  std::string out;
  scrub::Findings findings;
  uint64_t found = 0, events = 0, masked = 0;
  for (auto _ : state) {
    found = events = masked = 0;
    for (std::string_view line : c.lines) {
      out.clear();
      findings.clear();
      scrub::RedactStatus st = json ? redactor.redact_json(line, out, findings)
                                    : redactor.redact_text(line, out, findings);
      if (st == scrub::RedactStatus::kError) {
        state.SkipWithError("redact error");
        return;
      }
      masked += st == scrub::RedactStatus::kMasked;
      found += findings.size();
      events += redactor.scanner().match_events();  // of the last find() (JSON: may rescan)
    }
    benchmark::DoNotOptimize(out.data());
  }
  per_pass(state, c, static_cast<double>(c.lines.size()), static_cast<double>(found),
           static_cast<double>(events), static_cast<double>(masked));
}

void BM_RedactText(benchmark::State& state, fs::path dir, fs::path file) {
  redact(state, dir, file, false);
}
void BM_RedactJson(benchmark::State& state, fs::path dir, fs::path file) {
  redact(state, dir, file, true);
}
void BM_RedactJson2T(benchmark::State& state, fs::path dir, fs::path file) {
  redact(state, dir, file, true, true);
}

void BM_Compile(benchmark::State& state, fs::path dir) {
  scrub::RuleSet rules = scrub::builtin_rules();
  auto secrets = known_values(dir);
  size_t patterns = 0;
  for (auto _ : state) {
    auto set = scrub::CompiledSet::compile(rules, secrets, engine_options());
    patterns = set->pattern_count();
  }
  state.counters["rules"] = static_cast<double>(rules.rules.size());
  state.counters["known_values"] = static_cast<double>(secrets.size());
  state.counters["patterns"] = static_cast<double>(patterns);
}

// Per-rule cost over a mixed corpus. `skip` < 0: the full database; else without rules[skip].
void BM_RuleCost(benchmark::State& state, fs::path dir, fs::path file, int skip) {
  scrub::RuleSet rules = scrub::builtin_rules();
  if (skip >= 0) rules.rules.erase(rules.rules.begin() + skip);
  auto set = scrub::CompiledSet::compile(rules, known_values(dir), engine_options());
  hs_scan_lines(state, *set, corpus(file));
}

void BM_RuleAlone(benchmark::State& state, fs::path file, int index) {
  scrub::RuleSet all = scrub::builtin_rules();
  scrub::RuleSet one;
  one.rules.push_back(all.rules[index]);
  auto set = scrub::CompiledSet::compile(one, {}, engine_options());
  hs_scan_lines(state, *set, corpus(file));
}

void register_all() {
  fs::path rule_cost_dir, rule_cost_file;
  for (const fs::path& dir : corpus_dirs()) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file() || name == "known_secrets.txt" || name == "manifest.json" ||
          name[0] == '.')
        continue;
      files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    const std::string tag = dir.filename().empty() ? dir.parent_path().filename().string()
                                                   : dir.filename().string();
    benchmark::RegisterBenchmark(("BM_Compile/" + tag).c_str(), BM_Compile, dir)
        ->Unit(benchmark::kMillisecond);
    for (const fs::path& f : files) {
      const std::string id = tag + "/" + f.filename().string();
      benchmark::RegisterBenchmark(("BM_HsScan/" + id).c_str(), BM_HsScan, dir, f)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("BM_Find/" + id).c_str(), BM_Find, dir, f)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("BM_RedactText/" + id).c_str(), BM_RedactText, dir, f)
          ->Unit(benchmark::kMillisecond);
      if (first_line_is_json(f)) {
        benchmark::RegisterBenchmark(("BM_RedactJson/" + id).c_str(), BM_RedactJson, dir, f)
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("BM_RedactJson2T/" + id).c_str(), BM_RedactJson2T, dir, f)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
      }
      if (rule_cost_file.empty() && f.filename().string().rfind("mixed", 0) == 0) {
        rule_cost_dir = dir;
        rule_cost_file = f;
      }
    }
  }
  // One database compile per rule: registered only when the filter asks for these families, so
  // an unfiltered run stays short.
  if (rule_cost_file.empty() || benchmark::GetBenchmarkFilter().find("Rule") == std::string::npos)
    return;
  const scrub::RuleSet rules = scrub::builtin_rules();
  benchmark::RegisterBenchmark("BM_RuleCost/all", BM_RuleCost, rule_cost_dir, rule_cost_file, -1)
      ->Unit(benchmark::kMillisecond);
  for (size_t i = 0; i < rules.rules.size(); ++i) {
    const std::string& id = rules.rules[i].id;
    benchmark::RegisterBenchmark(("BM_RuleCost/-" + id).c_str(), BM_RuleCost, rule_cost_dir,
                                 rule_cost_file, static_cast<int>(i))
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("BM_RuleAlone/" + id).c_str(), BM_RuleAlone, rule_cost_file,
                                 static_cast<int>(i))
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
