// hs_baseline: the ceiling for `mcp-scrub filter`. Compiles exactly the configuration the filter
// would (built-in rules, --rules files, known values from --secrets-file, no environment secrets),
// reads a whole file into memory and runs raw single-threaded hs_scan over the compiled database
// (and over the database of the rules with a required run where a unit holds one, as the
// scanner does) with a callback that only counts, N times. No RE2 confirmation, no masking, no
// output: whatever the filter adds on top of this is its overhead.
//
//   hs_baseline [--secrets-file F]... [--rules F]... [--no-builtin-rules] [--runs N]
//               [--whole | --threads N] [--rule-cost [--rule-cost-top K] [--rule-cost-id ID]...] FILE
//
// Default mode: one hs_scan per line (the line without "\n" and a trailing "\r"), as the filter
// calls it. --whole: one hs_scan over the whole buffer (the per-call cost removed). Output: one
// JSON line with MB/s (10^6 bytes per second; wall clock, and per CPU second) and the
// match-event count of one run.
// --threads N: line mode on N threads (the calling thread one of them), each with a scratch of
// its own, taking pieces of about 128 KiB of whole lines in turn from a shared counter, as
// `filter --threads` hands out its batches: raw Hyperscan's own scaling on this machine, the
// ceiling for `filter --threads N` over one thread (wall clock from the first piece to the last
// thread's end; the CPU rate counts every thread).
// --rule-cost: instead, one JSON line per rule, costliest first: the scan time per 10^6 bytes that
// removing the rule saves (full database vs. the database without it, measured back to back), and
// the rule's own scan rate and match events when alone (which rule costs most), and `share`,
// the fraction of the full database's scan time that removing the rule saves (`--runs` pairs,
// each side of a pair the best of three alternated scans; the median over the pairs), costliest
// first.
// --rule-cost-top K: every rule is measured alone first (a one-rule database compiles in
// milliseconds), and only the K slowest alone get the full-minus-one comparison (each a full
// compile, ~1.5 s); the others come last with a null cost. Minutes instead of ten.
// --rule-cost-id ID (repeatable): compare that rule too (alone: only the rules named).
// --events-by-rule: one JSON line per rule or known value that fired, most events first: raw
// match events, lines hit, and the bytes of those lines (what a confirmation pass may re-read),
// with the rule's maximum match width from hs_expression_info (-1: unbounded).
#include <hs/hs.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "filter/compiled_set.h"
#include "filter/compiled_set_impl.h"  // --events-by-rule maps expression ids to rules
#include "patterns/known_secrets.h"
#include "patterns/rule_loader.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> secrets_files;
  std::vector<std::string> rule_files;
  bool builtin = true;
  bool whole = false;
  bool rule_cost = false;
  size_t rule_cost_top = 0;  // 0: every rule
  std::vector<std::string> rule_cost_ids;  // compare these rules (and the top K, if given)
  bool events_by_rule = false;
  int runs = 5;
  int threads = 1;  // line mode on this many threads
  std::string file;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "hs_baseline: %s\nusage: hs_baseline [--secrets-file F]... [--rules F]... "
               "[--no-builtin-rules] [--runs N] [--whole | --threads N] [--rule-cost [--rule-cost-top K] "
               "[--rule-cost-id ID]... | --events-by-rule] FILE\n",
               msg);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + a).c_str());
      return argv[++i];
    };
    if (a == "--secrets-file") o.secrets_files.push_back(value());
    else if (a == "--rules") o.rule_files.push_back(value());
    else if (a == "--no-builtin-rules") o.builtin = false;
    else if (a == "--whole") o.whole = true;
    else if (a == "--rule-cost") o.rule_cost = true;
    else if (a == "--rule-cost-top") o.rule_cost_top = static_cast<size_t>(std::max(1, std::atoi(value().c_str())));
    else if (a == "--rule-cost-id") o.rule_cost_ids.push_back(value());
    else if (a == "--events-by-rule") o.events_by_rule = true;
    else if (a == "--runs") o.runs = std::max(1, std::atoi(value().c_str()));
    else if (a == "--threads") {
      o.threads = std::atoi(value().c_str());
      if (o.threads < 1 || o.threads > 256) usage("--threads takes 1 to 256");
    }
    else if (a == "--no-env-secrets") {}  // accepted for symmetry with the filter: always so
    else if (!a.empty() && a[0] == '-') usage(("unknown option " + a).c_str());
    else if (o.file.empty()) o.file = a;
    else usage("one FILE only");
  }
  if (o.file.empty()) usage("no FILE");
  if (o.threads > 1 && (o.whole || o.rule_cost || o.events_by_rule))
    usage("--threads is for the line mode's throughput only");
  return o;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "hs_baseline: cannot read %s\n", path.c_str());
    std::exit(3);
  }
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

struct ScratchDeleter {
  void operator()(hs_scratch_t* s) const { hs_free_scratch(s); }
};

int count_event(unsigned int, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  ++*static_cast<unsigned long long*>(ctx);
  return 0;
}

// One pass over `data`; returns the match events. Line mode cuts at '\n' like the filter's
// LineReader and drops a trailing '\r' as process_stream does.
// Scratch for the set's databases (CompiledSet::scan); exits on failure.
hs_scratch_t* alloc_scratch(const scrub::CompiledSet& set) {
  hs_scratch_t* raw = set.new_scratch();
  if (!raw) {
    std::fprintf(stderr, "hs_baseline: cannot allocate Hyperscan scratch\n");
    std::exit(4);
  }
  return raw;
}

unsigned long long scan_once(const scrub::CompiledSet& set, hs_scratch_t* scratch,
                             std::string_view data, bool whole) {
  unsigned long long events = 0;
  if (whole) {
    if (set.scan(data, scratch, count_event, &events) != HS_SUCCESS) {
      std::fprintf(stderr, "hs_baseline: hs_scan failed\n");
      std::exit(4);
    }
    return events;
  }
  const char* p = data.data();
  const char* end = p + data.size();
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
    const char* e = nl ? nl : end;
    size_t len = e - p;
    if (len && p[len - 1] == '\r') --len;
    if (set.scan(std::string_view(p, len), scratch, count_event, &events) != HS_SUCCESS) {
      std::fprintf(stderr, "hs_baseline: hs_scan failed\n");
      std::exit(4);
    }
    p = nl ? nl + 1 : end;
  }
  return events;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// CPU time of this (single-threaded) process: on a shared machine, wall time also counts the
// time other processes held the core.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct RunResult {
  std::vector<double> mbps;      // one per run, wall clock
  std::vector<double> cpu_mbps;  // one per run, CPU time
  unsigned long long events = 0;
  double median() const { return median_of(mbps); }
  double cpu_median() const { return median_of(cpu_mbps); }
  double best() const { return *std::max_element(mbps.begin(), mbps.end()); }
  double worst() const { return *std::min_element(mbps.begin(), mbps.end()); }
};

// `data` cut into pieces of about `target` bytes, each ending after a '\n' (the last one at the
// end of the data): whole lines, as `filter --threads` batches them.
std::vector<std::string_view> line_pieces(std::string_view data, size_t target) {
  std::vector<std::string_view> pieces;
  size_t at = 0;
  while (at < data.size()) {
    size_t cut = at + target >= data.size() ? std::string_view::npos : data.find('\n', at + target);
    size_t end = cut == std::string_view::npos ? data.size() : cut + 1;
    pieces.push_back(data.substr(at, end - at));
    at = end;
  }
  return pieces;
}

// Line mode over `pieces` on one thread per scratch, the calling thread the first.
unsigned long long scan_threads(const scrub::CompiledSet& set,
                                const std::vector<std::unique_ptr<hs_scratch_t, ScratchDeleter>>& scratches,
                                const std::vector<std::string_view>& pieces) {
  std::atomic<size_t> next{0};
  std::atomic<unsigned long long> total{0};
  auto work = [&](hs_scratch_t* scratch) {
    unsigned long long events = 0;
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < pieces.size();)
      events += scan_once(set, scratch, pieces[i], false);
    total += events;
  };
  std::vector<std::thread> others;
  for (size_t t = 1; t < scratches.size(); ++t) others.emplace_back(work, scratches[t].get());
  work(scratches[0].get());
  for (std::thread& t : others) t.join();
  return total;
}

RunResult measure(const scrub::CompiledSet& set, std::string_view data, bool whole, int runs,
                  int threads = 1) {
  RunResult r;
  if (!set.database()) {  // nothing configured: an empty pass
    r.mbps.assign(runs, 0.0);
    r.cpu_mbps.assign(runs, 0.0);
    return r;
  }
  std::vector<std::unique_ptr<hs_scratch_t, ScratchDeleter>> scratches;
  for (int t = 0; t < threads; ++t) scratches.emplace_back(alloc_scratch(set));
  const std::vector<std::string_view> pieces =
      threads > 1 ? line_pieces(data, 128 * 1024) : std::vector<std::string_view>{};
  for (int i = 0; i < runs; ++i) {
    auto t0 = Clock::now();
    double c0 = cpu_seconds();
    r.events = threads > 1 ? scan_threads(set, scratches, pieces)
                           : scan_once(set, scratches[0].get(), data, whole);
    double c = cpu_seconds() - c0;
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    r.mbps.push_back(static_cast<double>(data.size()) / 1e6 / s);
    r.cpu_mbps.push_back(static_cast<double>(data.size()) / 1e6 / std::max(c, 1e-9));
  }
  return r;
}

std::string json_str(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    auto t_load = Clock::now();
    scrub::RuleSet rules;
    if (o.builtin) rules = scrub::builtin_rules();
    for (const auto& f : o.rule_files) scrub::merge_rules(rules, scrub::load_rules_file(f));
    scrub::SecretSourceOptions so;
    so.env_by_name = false;  // as `filter --no-env-secrets`
    for (const auto& f : o.secrets_files) so.secrets_files.push_back(f);
    scrub::SecretSourceResult secrets = scrub::collect_known_secrets(so, nullptr);
    scrub::EngineOptions eo;
    eo.fingerprint_key = "hs_baseline-fixed-key-not-a-secret";  // fingerprints are not used here
    std::string data = read_all(o.file);
    double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_load).count();

    auto t_compile = Clock::now();
    auto set = scrub::CompiledSet::compile(rules, secrets.secrets, eo);
    double compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_compile).count();
    // One untimed pass over the data before any scan is timed (it counts the lines). On the VMs
    // these benchmarks run on, the first read of the freshly filled 64 MB buffer, right after
    // the file's read or after the compile alike, ran at a third of the speed of the next (about
    // 10 µs a 4 KiB page, no page fault counted by the guest: the first timed scan
    // gave 260-280 MB/s, the next ones 580-850 on the same database), while the filter reads
    // into buffers it reuses, warm after their first fill: timed first, the ceiling was a third
    // too low (bench/run.sh runs one scan per process).
    auto t_warm = Clock::now();
    const size_t lines = static_cast<size_t>(std::count(data.begin(), data.end(), '\n')) +
                         (!data.empty() && data.back() != '\n' ? 1 : 0);
    double warm_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_warm).count();

    if (o.events_by_rule) {
      const auto& impl = set->impl();
      struct Count {
        unsigned long long events = 0, lines = 0, line_bytes = 0;
        unsigned long long last_line = ~0ull;
      };
      struct Ctx {
        std::vector<Count>* counts;
        const std::vector<scrub::PatternInfo>* patterns;
        size_t rules;
        unsigned long long line;
        size_t line_len;
      };
      std::vector<Count> counts(impl.rules.size() + 1);  // last slot: every known value
      Ctx ctx{&counts, &impl.patterns, impl.rules.size(), 0, 0};
      auto on_event = [](unsigned int id, unsigned long long, unsigned long long, unsigned int,
                         void* p) -> int {
        auto* c = static_cast<Ctx*>(p);
        const scrub::PatternInfo& pi = (*c->patterns)[id];
        Count& n = (*c->counts)[pi.literal ? c->rules : pi.index];
        ++n.events;
        if (n.last_line != c->line) {
          n.last_line = c->line;
          ++n.lines;
          n.line_bytes += c->line_len;
        }
        return 0;
      };
      if (!set->database()) return 4;
      std::unique_ptr<hs_scratch_t, ScratchDeleter> scratch(alloc_scratch(*set));
      const char* p = data.data();
      const char* end = p + data.size();
      while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
        const char* e = nl ? nl : end;
        size_t len = e - p;
        if (len && p[len - 1] == '\r') --len;
        ctx.line_len = len;
        set->scan(std::string_view(p, len), scratch.get(), on_event, &ctx);
        ++ctx.line;
        p = nl ? nl + 1 : end;
      }
      std::vector<size_t> order;
      for (size_t i = 0; i < counts.size(); ++i)
        if (counts[i].events) order.push_back(i);
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return counts[a].events > counts[b].events; });
      for (size_t i : order) {
        const bool lit = i == impl.rules.size();
        long long width = -1;
        if (!lit && impl.rules[i].max_width != UINT_MAX) width = impl.rules[i].max_width;
        std::printf("{\"rule\":%s,\"match_events\":%llu,\"lines\":%llu,\"line_bytes\":%llu,"
                    "\"max_width\":%lld,\"prefilter\":%s,\"keywords\":%zu}\n",
                    json_str(lit ? "known-secret (all values)" : impl.rules[i].rule.id).c_str(),
                    counts[i].events, counts[i].lines, counts[i].line_bytes, width,
                    !lit && impl.rules[i].prefilter ? "true" : "false",
                    lit ? 0 : impl.rules[i].rule.keywords.size());
      }
      return 0;
    }

    if (o.rule_cost) {
      // For each rule: the full database and the database without it, measured back to back so
      // drift and neighbours' load cancel out; then the rule alone (its own scan rate and match
      // events). Removing a rule can also make a database slower: Hyperscan picks its engines
      // for the set as a whole, so a negative cost is a real (if small) effect, or noise.
      struct Row {
        std::string id;
        double all = 0, without = 0, alone = 0;  // MB/s; all = without = 0: not compared
        double paired_share = 0;                   // the median of the pairs' shares
        unsigned long long alone_events = 0;
        bool compared() const { return all > 0 && without > 0; }
        double cost_ns_per_mb() const { return (1.0 / all - 1.0 / without) * 1e9; }
      };
      std::vector<Row> rows;
      RunResult full = measure(*set, data, o.whole, o.runs);
      // Only the rules named need their alone figures when no top K is asked.
      const bool only_named = o.rule_cost_top == 0 && !o.rule_cost_ids.empty();
      for (size_t i = 0; i < rules.rules.size(); ++i) {
        Row r;
        r.id = rules.rules[i].id;
        if (!only_named || std::find(o.rule_cost_ids.begin(), o.rule_cost_ids.end(), r.id) !=
                               o.rule_cost_ids.end()) {
          scrub::RuleSet one;
          one.rules.push_back(rules.rules[i]);
          auto one_set = scrub::CompiledSet::compile(one, {}, eo);
          RunResult a = measure(*one_set, data, o.whole, o.runs);
          r.alone = a.median();
          r.alone_events = a.events;
        }
        rows.push_back(r);
      }
      std::vector<size_t> order(rows.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = i;
      std::sort(order.begin(), order.end(),
                [&](size_t a, size_t b) { return rows[a].alone < rows[b].alone; });
      // The K slowest alone (all of them without --rule-cost-top or --rule-cost-id), and the ones
      // named.
      size_t top = o.rule_cost_top ? std::min(o.rule_cost_top, rows.size())
                                   : (o.rule_cost_ids.empty() ? rows.size() : 0);
      std::vector<size_t> chosen(order.begin(), order.begin() + static_cast<long>(top));
      for (const std::string& id : o.rule_cost_ids) {
        auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.id == id; });
        if (it == rows.end()) usage(("--rule-cost-id: no rule " + id).c_str());
        const size_t i = static_cast<size_t>(it - rows.begin());
        if (std::find(chosen.begin(), chosen.end(), i) == chosen.end()) chosen.push_back(i);
      }
      const size_t compare = chosen.size();
      for (const size_t i : chosen) {
        scrub::RuleSet less = rules;
        less.rules.erase(less.rules.begin() + static_cast<long>(i));
        auto less_set = scrub::CompiledSet::compile(less, secrets.secrets, eo);
        // One run of each in turn, `runs` times; the median of the pairs: this VM's speed
        // drifts by more than a rule costs between two blocks of runs. Each side of a pair is
        // the best of three alternated scans: a scan is only ever slowed by the machine, and
        // with one scan a side, a pause in either one moved a share by several points (one run
        // put a rule at 13.5% that measured 4.2% and 5.9% in the next two).
        std::vector<double> all, without, shares;
        for (int r = 0; r < o.runs; ++r) {
          double a = 0, w = 0;
          for (int k = 0; k < 3; ++k) {
            a = std::max(a, measure(*set, data, o.whole, 1).best());
            w = std::max(w, measure(*less_set, data, o.whole, 1).best());
          }
          all.push_back(a);
          without.push_back(w);
          shares.push_back(1.0 - a / w);
        }
        auto median = [](std::vector<double> v) {
          std::sort(v.begin(), v.end());
          return v[v.size() / 2];
        };
        rows[i].all = median(all);
        rows[i].without = median(without);
        rows[i].paired_share = median(shares);
      }
      std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        if (a.compared() != b.compared()) return a.compared();
        return a.compared() ? a.paired_share > b.paired_share : a.alone < b.alone;
      });
      std::printf("{\"mode\":\"rule-cost\",\"scan\":\"%s\",\"mb_per_s_all\":%.1f,"
                  "\"match_events_all\":%llu,\"rules\":%zu,\"compared\":%zu,\"runs\":%d}\n",
                  o.whole ? "whole" : "lines", full.median(), full.events, rules.rules.size(),
                  compare, o.runs);
      for (const Row& r : rows) {
        if (r.compared())
          std::printf("{\"rule\":%s,\"cost_ns_per_mb\":%.0f,\"share\":%.4f,\"mb_per_s_all\":%.1f,"
                      "\"mb_per_s_without\":%.1f,\"mb_per_s_alone\":%.1f,\"match_events_alone\":%llu}\n",
                      json_str(r.id).c_str(), r.cost_ns_per_mb(), r.paired_share, r.all, r.without,
                      r.alone, r.alone_events);
        else if (!only_named)
          std::printf("{\"rule\":%s,\"cost_ns_per_mb\":null,\"share\":null,"
                      "\"mb_per_s_alone\":%.1f,\"match_events_alone\":%llu}\n",
                      json_str(r.id).c_str(), r.alone, r.alone_events);
      }
      return 0;
    }

    RunResult r = measure(*set, data, o.whole, o.runs, o.threads);
    std::printf(
        "{\"tool\":\"hs_baseline\",\"mode\":\"%s\",\"threads\":%d,\"file\":%s,\"bytes\":%zu,\"lines\":%zu,"
        "\"runs\":%d,\"mb_per_s\":%.1f,\"mb_per_s_min\":%.1f,\"mb_per_s_max\":%.1f,"
        "\"cpu_mb_per_s\":%.1f,"
        "\"match_events\":%llu,\"rules\":%zu,\"known_values\":%zu,\"patterns\":%zu,"
        "\"compile_ms\":%.1f,\"load_ms\":%.1f,\"first_pass_ms\":%.1f}\n",
        o.whole ? "whole" : "lines", o.threads, json_str(o.file).c_str(), data.size(), lines, o.runs,
        r.median(), r.worst(), r.best(), r.cpu_median(), r.events, set->rule_count(), set->literal_count(),
        set->pattern_count(), compile_ms, load_ms, warm_ms);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hs_baseline: %s\n", e.what());
    return 2;
  }
}
