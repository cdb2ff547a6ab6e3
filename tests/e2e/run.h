// Test double: runs a program with given stdin, environment and arguments and collects its
// stdout, stderr and shell-style exit status. Hermetic: no network, no process left behind.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "transports/child_process.h"
#include "transports/fd_io.h"

namespace scrub::test {

struct RunResult {
  std::string out, err;
  int status = -1;
};

struct RunOptions {
  std::string input;
  std::vector<std::string> extra_env;  // NAME=VALUE added to (or replacing in) our environment
  int kill_after_ms = -1;              // send a signal to the process after this long
  int kill_signal = 15;
  std::vector<std::pair<int, std::string>> timed_input;  // (delay ms, bytes) after `input`
};

inline std::vector<std::string> env_with(const std::vector<std::string>& extra) {
  std::vector<std::string> env = current_environment();
  for (const auto& kv : extra) {
    std::string prefix = kv.substr(0, kv.find('=') + 1);
    for (auto it = env.begin(); it != env.end();)
      it = it->rfind(prefix, 0) == 0 ? env.erase(it) : it + 1;
    env.push_back(kv);
  }
  return env;
}

inline RunResult run(const std::vector<std::string>& argv, const RunOptions& o = {}) {
  ignore_sigpipe();
  ChildOptions co;
  co.argv = argv;
  co.env = env_with(o.extra_env);
  co.own_process_group = false;
  ChildProcess child = ChildProcess::spawn(co);
  std::thread writer([&] {
    write_all(child.stdin_fd(), o.input);
    for (const auto& [delay, bytes] : o.timed_input) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay));
      write_all(child.stdin_fd(), bytes);
    }
    child.close_stdin();
  });
  std::thread killer;
  if (o.kill_after_ms >= 0)
    killer = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.kill_after_ms));
      child.send_signal(o.kill_signal);
    });
  RunResult r;
  pollfd fds[2] = {{child.stdout_fd(), POLLIN, 0}, {child.stderr_fd(), POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open = 2;
  char buf[65536];
  while (open > 0) {
    if (::poll(fds, 2, 30000) <= 0) break;  // 30 s: a hung test fails instead of hanging CI
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read_some(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
      } else {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  writer.join();
  if (killer.joinable()) killer.join();
  bool timed_out = false;
  r.status = child.wait_for(std::chrono::seconds(30), &timed_out);
  return r;
}

// MCP_SCRUB_TEST_BINARY runs the same tests against another build of mcp-scrub (the ThreadSanitizer
// stage of tests/sanitize.sh); the test tools still come from this build.
inline std::string bin() {
  const char* other = std::getenv("MCP_SCRUB_TEST_BINARY");
  return other != nullptr && *other != '\0' ? other : SCRUB_BINARY;
}
inline std::string src(const std::string& rel) {
  // Built in place: GCC 12 warns (-Warray-bounds, a false positive) on the `+` chain when the
  // source directory's name fits the small-string buffer.
  std::string path = SCRUB_SOURCE_DIR;
  path += '/';
  path += rel;
  return path;
}
inline std::string tool(const std::string& name) {
  std::string b = SCRUB_BINARY;
  return b.substr(0, b.rfind('/')) + "/tests/" + name;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// A private temporary directory, removed at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/scrub-e2e-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string& name, const std::string& content) const {
    std::string p = path + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
};

inline std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

}  // namespace scrub::test
