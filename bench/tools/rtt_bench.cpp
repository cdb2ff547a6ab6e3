// Round-trip latency and throughput through the stdio wrap, next to a direct pipe, in one run.
//
//   rtt_bench MCP_SCRUB REPLY_SERVER [--bytes N] [--requests M] [--rounds R] [--secret]
//             [--relay RELAY [--relay-responses-only]] [--scrub-arg ARG]...
//
// For each round it runs the same request sequence against `REPLY_SERVER N` directly, through
// `RELAY -- REPLY_SERVER N` when given (bench/tools/relay.cpp: the same extra process and pipes,
// no work; with --relay-responses-only also `RELAY --direct-requests`, whose server reads the
// client's requests itself), and through `MCP_SCRUB -- REPLY_SERVER N`, alternating, so machine noise hits all of
// them; one request in flight at a time. Prints one JSON line per contender with p50/p99/mean
// round trip (us), the added latency versus direct, MB/s of response bytes, and the CPU time
// (user + sys) per request of the contender's processes (getrusage RUSAGE_CHILDREN: the spawned
// process and the server it reaps, start-up included) and of this client (RUSAGE_SELF). With
// every CPU busy, a round trip cannot take less than all of that CPU time over the CPUs there
// are: `cpu_bound_MBps` is that ceiling (response bytes over CPU time per request / CPUs).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "transports/child_process.h"
#include "transports/fd_io.h"

using namespace scrub;
using Clock = std::chrono::steady_clock;

namespace {

struct Sample {
  std::vector<double> rtt_us;   // steady state: the first request of each run is left out
  std::vector<double> first_ms;  // spawn to first response (start-up included)
  double bytes = 0, seconds = 0;
  double tree_cpu_s = 0, client_cpu_s = 0;  // over every request of every run
  size_t requests = 0;
};

double cpu_seconds(int who) {
  rusage ru{};
  getrusage(who, &ru);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

bool run_once(const std::vector<std::string>& argv, int requests, Sample& s) {
  const double tree0 = cpu_seconds(RUSAGE_CHILDREN), self0 = cpu_seconds(RUSAGE_SELF);
  ChildOptions co;
  co.argv = argv;
  co.env = current_environment();
  co.env.push_back("BENCH_SECRET=Qm7Xv2Lp9Rt4Wk8Zn3Bc");
  co.pipe_stderr = false;
  ChildProcess child = ChildProcess::spawn(co);
  std::vector<char> buf(1 << 20);
  std::string pending;
  auto spawned = Clock::now();
  auto start = spawned;
  for (int i = 0; i < requests; ++i) {
    std::string req = "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(i + 1) +
                      ",\"method\":\"tools/call\",\"params\":{\"name\":\"big\",\"arguments\":{}}}\n";
    auto t0 = Clock::now();
    if (!write_all(child.stdin_fd(), req)) return false;
    for (;;) {
      size_t nl = pending.find('\n');
      if (nl != std::string::npos) {
        if (i > 0) s.bytes += static_cast<double>(nl + 1);
        pending.erase(0, nl + 1);
        break;
      }
      ssize_t n = read_some(child.stdout_fd(), buf.data(), buf.size());
      if (n <= 0) return false;
      pending.append(buf.data(), static_cast<size_t>(n));
    }
    auto now = Clock::now();
    if (i == 0) {
      s.first_ms.push_back(std::chrono::duration<double, std::milli>(now - spawned).count());
      start = now;
      continue;
    }
    s.rtt_us.push_back(std::chrono::duration<double, std::micro>(now - t0).count());
  }
  s.seconds += std::chrono::duration<double>(Clock::now() - start).count();
  child.close_stdin();
  child.wait();  // reaped: its CPU time (and its reaped server's) now counts in RUSAGE_CHILDREN
  s.tree_cpu_s += cpu_seconds(RUSAGE_CHILDREN) - tree0;
  s.client_cpu_s += cpu_seconds(RUSAGE_SELF) - self0;
  s.requests += static_cast<size_t>(requests);
  return true;
}

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: rtt_bench MCP_SCRUB REPLY_SERVER [--bytes N] [--requests M] [--rounds R]"
                 " [--secret] [--relay RELAY [--relay-responses-only]] [--scrub-arg ARG]... [--label TEXT]\n");
    return 2;
  }
  std::string scrub = argv[1], server = argv[2];
  size_t bytes = 1024;
  int requests = 2000, rounds = 5;
  bool secret = false;
  std::vector<std::string> scrub_args;  // extra mcp-scrub options
  std::string relay;
  bool half_relay = false;
  std::string label;  // appended to each contender's name
  for (int i = 3; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--bytes") && i + 1 < argc) bytes = std::stoul(argv[++i]);
    else if (!std::strcmp(argv[i], "--requests") && i + 1 < argc) requests = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::stoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--secret")) secret = true;
    else if (!std::strcmp(argv[i], "--scrub-arg") && i + 1 < argc) scrub_args.push_back(argv[++i]);
    else if (!std::strcmp(argv[i], "--relay") && i + 1 < argc) relay = argv[++i];
    else if (!std::strcmp(argv[i], "--relay-responses-only")) half_relay = true;
    else if (!std::strcmp(argv[i], "--label") && i + 1 < argc) label = argv[++i];
  }
  // The first request of each run times the start-up (first_response_ms); the round trips are
  // the ones after it, so a run needs two at least (with one, every percentile is of nothing).
  if (requests < 2 || rounds < 1) {
    std::fprintf(stderr, "rtt_bench: --requests must be at least 2 and --rounds at least 1\n");
    return 2;
  }
  std::vector<std::string> direct = {server, std::to_string(bytes)};
  if (secret) direct.push_back("secret");
  std::vector<std::string> proxied = {scrub, "--no-env-secrets", "--secret-env", "BENCH_SECRET"};
  proxied.insert(proxied.end(), scrub_args.begin(), scrub_args.end());
  proxied.push_back("--");
  proxied.insert(proxied.end(), direct.begin(), direct.end());
  std::vector<std::string> relayed = proxied;
  relayed[0] = relay;
  std::vector<std::string> half = relayed;
  half.insert(half.begin() + 1, "--direct-requests");
  half_relay = half_relay && !relay.empty();
  Sample d, p, rl, hr;
  for (int r = 0; r < rounds; ++r) {
    if (!run_once(direct, requests, d) || (!relay.empty() && !run_once(relayed, requests, rl)) ||
        (half_relay && !run_once(half, requests, hr)) || !run_once(proxied, requests, p)) {
      std::fprintf(stderr, "rtt_bench: a run failed\n");
      return 1;
    }
  }
  double d50 = pct(d.rtt_us, 0.5), d99 = pct(d.rtt_us, 0.99);
  double p50 = pct(p.rtt_us, 0.5), p99 = pct(p.rtt_us, 0.99);
  auto line = [&](const std::string& base, const Sample& s, double p50v, double p99v, double add50, double add99) {
    double mean = 0;
    for (double v : s.rtt_us) mean += v;
    mean /= static_cast<double>(s.rtt_us.size());
    const double tree_us = s.tree_cpu_s / static_cast<double>(s.requests) * 1e6;
    const double client_us = s.client_cpu_s / static_cast<double>(s.requests) * 1e6;
    const double cpus = static_cast<double>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
    const std::string name = base + label;
    std::printf("{\"contender\":\"%s\",\"bytes\":%zu,\"secret\":%s,\"requests\":%zu,\"p50_us\":%.1f,"
                "\"p99_us\":%.1f,\"mean_us\":%.1f,\"added_p50_us\":%.1f,\"added_p99_us\":%.1f,"
                "\"MBps\":%.1f,\"first_response_ms\":%.1f,\"cpu_us_per_request\":%.1f,"
                "\"client_cpu_us_per_request\":%.1f,\"cpus\":%.0f,\"cpu_bound_MBps\":%.1f}\n",
                name.c_str(), bytes, secret ? "true" : "false", s.rtt_us.size(), p50v, p99v, mean, add50,
                add99, s.bytes / s.seconds / 1e6, pct(s.first_ms, 0.5), tree_us, client_us, cpus,
                s.bytes / static_cast<double>(s.rtt_us.size()) * cpus / (tree_us + client_us));
  };
  line("direct", d, d50, d99, 0, 0);
  if (!relay.empty()) {
    const double r50 = pct(rl.rtt_us, 0.5), r99 = pct(rl.rtt_us, 0.99);
    line("relay", rl, r50, r99, r50 - d50, r99 - d99);
  }
  if (half_relay) {
    const double h50 = pct(hr.rtt_us, 0.5), h99 = pct(hr.rtt_us, 0.99);
    line("relay, responses only", hr, h50, h99, h50 - d50, h99 - d99);
  }
  line("mcp-scrub", p, p50, p99, p50 - d50, p99 - d99);
  return 0;
}
