// Tests for transports/: ChildProcess, fd_io and SignalForwarder. Hermetic: children are /bin/sh
// and coreutils, files live in a private temp dir, nothing touches the network. Anything that has
// to change process-wide state (signal mask, signals sent to ourselves, the subreaper flag) runs
// in a forked subprocess or is restored at the end, so the test runner is left as it was.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transports/child_process.h"
#include "transports/fd_io.h"
#include "transports/signals.h"

namespace {

using namespace std::chrono_literals;
using scrub::ChildOptions;
using scrub::ChildProcess;
using scrub::SpawnError;
using Clock = std::chrono::steady_clock;

const std::string kSystemPath = "PATH=/usr/bin:/bin";

ChildOptions sh(const std::string& script, std::vector<std::string> env = {kSystemPath}) {
  ChildOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.env = std::move(env);
  return o;
}

ChildOptions command(std::vector<std::string> argv, std::vector<std::string> env = {kSystemPath}) {
  ChildOptions o;
  o.argv = std::move(argv);
  o.env = std::move(env);
  return o;
}

// Reads until EOF or until `timeout` passes (then returns what it has, plus a marker, so a hung
// child fails the comparison instead of hanging the test).
std::string read_all(int fd, std::chrono::milliseconds timeout = 2000ms) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) return out + "<timeout>";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = scrub::read_some(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Reads one line (without the newline), byte by byte so nothing after it is consumed.
std::string read_line(int fd, std::chrono::milliseconds timeout = 2000ms) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left <= 0ms) return out + "<timeout>";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char c;
    if (scrub::read_some(fd, &c, 1) != 1) return out + "<eof>";
    if (c == '\n') return out;
    out.push_back(c);
  }
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "scrub-child-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

  std::string write(const std::string& name, const std::string& content, mode_t mode) const {
    auto file = path_ / name;
    std::ofstream(file) << content;
    ::chmod(file.c_str(), mode);
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

SpawnError spawn_error(const ChildOptions& options) {
  try {
    ChildProcess::spawn(options);
  } catch (const SpawnError& e) {
    return e;
  }
  FAIL("spawn did not throw");
  return SpawnError(0, 0, "");
}

// wait() with a bound, so a broken implementation fails the test instead of hanging the runner.
int wait_bounded(ChildProcess& child) {
  bool timed_out = false;
  int status = child.wait_for(2000ms, &timed_out);
  return timed_out ? -999 : status;
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

// Runs `body` in a forked copy of this (single-threaded) test process and returns what it
// reported: "" for success, else a description. For tests that block signals, signal their own
// process or must start with no children. The subprocess is killed if it takes over 5 s.
std::string in_subprocess(const std::function<std::string()>& body) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  std::fflush(nullptr);  // or the subprocess would repeat the reporter's buffered output
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string result;
    try {
      result = body();
    } catch (const std::exception& e) {
      result = std::string("exception: ") + e.what();
    } catch (...) {
      result = "unknown exception";
    }
    scrub::write_all(fds[1], result);
    ::_exit(result.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string result = read_all(fds[0], 5000ms);
  ::close(fds[0]);
  if (result.size() >= 9 && result.compare(result.size() - 9, 9, "<timeout>") == 0) {
    ::kill(pid, SIGKILL);
  }
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (result.empty() && !(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)) {
    result = "subprocess died, wait status " + std::to_string(wstatus);
  }
  return result;
}

// Makes this process the reaper of its orphaned descendants for the scope, so a test can reap
// (and so observe) a grandchild whose parent died, whatever PID 1 does with zombies.
class SubreaperScope {
 public:
  SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

}  // namespace

TEST_CASE("spawn: stdout, stderr and exit code of the child", "[child]") {
  auto child = ChildProcess::spawn(sh("echo hi; echo err >&2; exit 3"));
  CHECK(child.pid() > 0);
  CHECK(read_all(child.stdout_fd()) == "hi\n");
  CHECK(read_all(child.stderr_fd()) == "err\n");
  CHECK(child.wait() == 3);
  CHECK(child.try_wait() == std::optional<int>(3));  // cached after the reap
}

TEST_CASE("spawn: argv is passed verbatim", "[child]") {
  ChildOptions o = sh("printf '[%s]' \"$0\" \"$@\"");
  o.argv.insert(o.argv.end(), {"zero", "a", "", "b c", "$HOME"});
  auto child = ChildProcess::spawn(o);
  CHECK(read_all(child.stdout_fd()) == "[zero][a][][b c][$HOME]");
  CHECK(wait_bounded(child) == 0);
}

TEST_CASE("spawn: the child gets exactly the given environment", "[child]") {
  SECTION("env prints every entry and nothing else") {
    auto child = ChildProcess::spawn(command({"/usr/bin/env"}, {"A=1", "B=two words", "EMPTY="}));
    CHECK(read_all(child.stdout_fd()) == "A=1\nB=two words\nEMPTY=\n");
    CHECK(wait_bounded(child) == 0);
  }
  SECTION("an empty vector is an empty environment") {
    auto child = ChildProcess::spawn(command({"/usr/bin/env"}, {}));
    CHECK(read_all(child.stdout_fd()) == "");
    CHECK(wait_bounded(child) == 0);
  }
  SECTION("printenv X, found through the given PATH") {
    auto child = ChildProcess::spawn(command({"printenv", "X"}, {kSystemPath, "X=hello"}));
    CHECK(read_all(child.stdout_fd()) == "hello\n");
    CHECK(wait_bounded(child) == 0);
  }
}

TEST_CASE("spawn: argv[0] is looked up in the PATH of the child's environment", "[child]") {
  TempDir dir;
  dir.write("scrub-test-tool", "#!/bin/sh\necho found \"$X\"\n", 0755);

  SECTION("found in the env's PATH, which the proxy's PATH does not have") {
    auto child = ChildProcess::spawn(
        command({"scrub-test-tool"}, {"PATH=/nonexistent:" + dir.path().string(), "X=1"}));
    CHECK(read_all(child.stdout_fd()) == "found 1\n");
    CHECK(wait_bounded(child) == 0);
  }
  SECTION("the env's PATH wins over the proxy's even when that would find it") {
    auto e = spawn_error(command({"sh", "-c", "true"}, {"PATH=" + dir.path().string()}));
    CHECK(e.exit_code == 127);
  }
  SECTION("without PATH in env the proxy's PATH is used") {
    auto child = ChildProcess::spawn(command({"sh", "-c", "echo ok"}, {}));
    CHECK(read_all(child.stdout_fd()) == "ok\n");
    CHECK(wait_bounded(child) == 0);
  }
  SECTION("a non-executable file earlier in PATH is skipped") {
    TempDir first;
    first.write("scrub-test-tool", "#!/bin/sh\necho wrong\n", 0644);
    auto child = ChildProcess::spawn(command(
        {"scrub-test-tool"}, {"PATH=" + first.path().string() + ":" + dir.path().string()}));
    CHECK(read_all(child.stdout_fd()) == "found \n");
    CHECK(wait_bounded(child) == 0);
  }
}

TEST_CASE("spawn: command not found is SpawnError 127 naming the command", "[child]") {
  SECTION("bare name, searched in PATH") {
    auto e = spawn_error(command({"mcp-scrub-no-such-command"}));
    CHECK(e.exit_code == 127);
    CHECK(e.error_number == ENOENT);
    CHECK(std::string(e.what()) ==
          "mcp-scrub: cannot run 'mcp-scrub-no-such-command': No such file or directory");
  }
  SECTION("explicit path") {
    auto e = spawn_error(command({"/nonexistent/dir/tool"}));
    CHECK(e.exit_code == 127);
    CHECK(std::string(e.what()) ==
          "mcp-scrub: cannot run '/nonexistent/dir/tool': No such file or directory");
  }
  SECTION("a path through a regular file (ENOTDIR)") {
    auto e = spawn_error(command({"/bin/sh/x"}));
    CHECK(e.exit_code == 127);
    CHECK(e.error_number == ENOTDIR);
  }
  SECTION("no command at all is the proxy's failure: 125") {
    auto e = spawn_error(command({}));
    CHECK(e.exit_code == 125);
    CHECK(std::string(e.what()) == "mcp-scrub: no command given");
  }
}

TEST_CASE("spawn: found but not runnable is SpawnError 126", "[child]") {
  TempDir dir;
  SECTION("a file with mode 0644") {
    std::string path = dir.write("plain", "#!/bin/sh\necho no\n", 0644);
    auto e = spawn_error(command({path}));
    CHECK(e.exit_code == 126);
    CHECK(std::string(e.what()) == "mcp-scrub: cannot run '" + path + "': Permission denied");
  }
  SECTION("a 0644 file found through PATH") {
    dir.write("plain-tool", "#!/bin/sh\necho no\n", 0644);
    auto e = spawn_error(command({"plain-tool"}, {"PATH=" + dir.path().string()}));
    CHECK(e.exit_code == 126);
    CHECK(std::string(e.what()) == "mcp-scrub: cannot run 'plain-tool': Permission denied");
  }
  SECTION("a directory") {
    auto e = spawn_error(command({dir.path().string()}));
    CHECK(e.exit_code == 126);
    CHECK(std::string(e.what()) ==
          "mcp-scrub: cannot run '" + dir.path().string() + "': Is a directory");
  }
}

TEST_CASE("spawn: execve failures in the child come back through the error pipe", "[child]") {
  TempDir dir;
  SECTION("executable text without #! is ENOEXEC: 126") {
    std::string path = dir.write("noshebang", "echo hi\n", 0755);
    auto e = spawn_error(command({path}));
    CHECK(e.exit_code == 126);
    CHECK(e.error_number == ENOEXEC);
    CHECK(std::string(e.what()) == "mcp-scrub: cannot run '" + path + "': Exec format error");
  }
  SECTION("a missing #! interpreter is ENOENT: 127") {
    std::string path = dir.write("badinterp", "#!/nonexistent/interpreter\n", 0755);
    auto e = spawn_error(command({path}));
    CHECK(e.exit_code == 127);
    CHECK(std::string(e.what()) ==
          "mcp-scrub: cannot run '" + path + "': No such file or directory");
  }
  SECTION("the failed child is reaped and no fd is leaked") {
    std::string path = dir.write("noshebang", "echo hi\n", 0755);
    CHECK(in_subprocess([&]() -> std::string {
            int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // lowest free fd
            ::close(probe);
            try {
              ChildProcess::spawn(command({path}));
              return "spawn did not throw";
            } catch (const SpawnError&) {
            }
            if (::waitpid(-1, nullptr, WNOHANG) != -1 || errno != ECHILD) return "child left";
            int after = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (after != probe) return "fd leaked: next fd " + std::to_string(after);
            return "";
          }) == "");
  }
}

TEST_CASE("wait: a child killed by a signal has status 128 + signal", "[child]") {
  SECTION("SIGTERM: 143") {
    auto child = ChildProcess::spawn(sh("kill -TERM $$"));
    CHECK(wait_bounded(child) == 143);
  }
  SECTION("SIGKILL: 137") {
    auto child = ChildProcess::spawn(sh("kill -KILL $$"));
    CHECK(wait_bounded(child) == 137);
  }
}

TEST_CASE("close_stdin: cat sees end of file and exits 0", "[child]") {
  scrub::ignore_sigpipe();
  auto child = ChildProcess::spawn(command({"cat"}));
  REQUIRE(scrub::write_all(child.stdin_fd(), "abc\ndef"));
  child.close_stdin();
  CHECK(child.stdin_fd() == -1);
  CHECK(read_all(child.stdout_fd()) == "abc\ndef");
  CHECK(wait_bounded(child) == 0);
}

TEST_CASE("send_signal: reaches a child that traps it", "[child]") {
  auto child = ChildProcess::spawn(
      sh("trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done"));
  REQUIRE(read_line(child.stdout_fd()) == "ready");  // the trap is installed
  CHECK(child.send_signal(SIGTERM));
  bool timed_out = true;
  CHECK(child.wait_for(2000ms, &timed_out) == 7);
  CHECK_FALSE(timed_out);
  CHECK_FALSE(child.send_signal(SIGTERM));  // reaped: never signal a possibly recycled pid
}

TEST_CASE("send_signal: reaches grandchildren in the child's process group", "[child]") {
  // The shell execs, so nothing reaps the grandchild but the kernel's reparenting: when the child
  // dies the grandchild (dead or alive) becomes ours as the subreaper, and we see how it died.
  SubreaperScope reaper;
  auto child = ChildProcess::spawn(sh("sleep 30 & echo $!; exec sleep 30"));
  std::string line = read_line(child.stdout_fd());
  pid_t grandchild = std::stoi(line);
  CHECK(::getpgid(grandchild) == child.pid());
  CHECK(child.send_signal(SIGTERM));
  // The grandchild holds the stdout pipe too: EOF means it is dead as well as the child.
  CHECK(read_all(child.stdout_fd()) == "");
  CHECK(wait_bounded(child) == 143);
  // Reparenting happened before the child could be reaped, so the grandchild is ours by now.
  int wstatus = 0;
  bool reaped = false;
  for (auto deadline = Clock::now() + 2s; !reaped && Clock::now() < deadline;) {
    reaped = ::waitpid(grandchild, &wstatus, WNOHANG) == grandchild;
    if (!reaped) std::this_thread::sleep_for(5ms);
  }
  if (!reaped) {
    ::kill(grandchild, SIGKILL);
    ::waitpid(grandchild, nullptr, 0);
  }
  REQUIRE(reaped);
  CHECK(WIFSIGNALED(wstatus));
  CHECK(WTERMSIG(wstatus) == SIGTERM);
}

TEST_CASE("process group: own by default, the proxy's on request", "[child]") {
  SECTION("own") {
    auto child = ChildProcess::spawn(command({"sleep", "30"}));
    CHECK(::getpgid(child.pid()) == child.pid());
  }
  SECTION("shared") {
    ChildOptions o = command({"sleep", "30"});
    o.own_process_group = false;
    auto child = ChildProcess::spawn(o);
    CHECK(::getpgid(child.pid()) == ::getpgrp());
    CHECK(child.send_signal(SIGTERM));  // to the pid only: the test runner survives it
    CHECK(wait_bounded(child) == 143);
  }
}

TEST_CASE("try_wait and wait_for on a running child", "[child]") {
  auto child = ChildProcess::spawn(command({"sleep", "30"}));
  CHECK(child.try_wait() == std::nullopt);
  bool timed_out = false;
  auto start = Clock::now();
  CHECK(child.wait_for(50ms, &timed_out) == -1);
  CHECK(timed_out);
  CHECK(Clock::now() - start >= 50ms);
  CHECK(child.send_signal(SIGKILL));
  CHECK(wait_bounded(child) == 137);
  CHECK(child.try_wait() == std::optional<int>(137));
  CHECK(child.wait_for(0ms, &timed_out) == 137);
  CHECK_FALSE(timed_out);
}

TEST_CASE("destructor: terminates and reaps a running child", "[child]") {
  pid_t pid = -1;
  auto start = Clock::now();
  {
    auto child = ChildProcess::spawn(command({"sleep", "30"}));
    pid = child.pid();
    REQUIRE(::kill(pid, 0) == 0);
  }
  CHECK(process_gone(pid));  // killed *and* reaped: not even a zombie
  CHECK(Clock::now() - start < 1s);  // SIGTERM did it; no grace period spent
}

TEST_CASE("destructor: a stopped child that traps SIGTERM is continued, not left waiting", "[child]") {
  pid_t pid = -1;
  auto start = Clock::now();
  {
    auto child = ChildProcess::spawn(
        sh("trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done"));
    pid = child.pid();
    REQUIRE(read_line(child.stdout_fd()) == "ready");
    REQUIRE(child.send_signal(SIGSTOP));
  }
  CHECK(process_gone(pid));
  CHECK(Clock::now() - start < 1s);  // the trap ran: no SIGKILL after the grace period
}

TEST_CASE("move: ownership of the child moves with the object", "[child]") {
  auto first = ChildProcess::spawn(sh("echo moved; exit 4"));
  pid_t pid = first.pid();
  int out = first.stdout_fd();
  ChildProcess second(std::move(first));
  CHECK(first.pid() == -1);
  CHECK(first.stdout_fd() == -1);
  CHECK(first.wait() == -1);
  CHECK(second.pid() == pid);
  CHECK(second.stdout_fd() == out);
  CHECK(read_all(second.stdout_fd()) == "moved\n");

  auto third = ChildProcess::spawn(command({"sleep", "30"}));
  pid_t sleeper = third.pid();
  third = std::move(second);  // the sleeper is terminated and reaped first
  CHECK(process_gone(sleeper));
  CHECK(third.pid() == pid);
  CHECK(wait_bounded(third) == 4);
}

TEST_CASE("pipes: not piped means fd -1 and the proxy's fd is shared", "[child]") {
  ChildOptions o = command({"true"});
  o.pipe_stdin = o.pipe_stdout = o.pipe_stderr = false;
  auto child = ChildProcess::spawn(o);
  CHECK(child.stdin_fd() == -1);
  CHECK(child.stdout_fd() == -1);
  CHECK(child.stderr_fd() == -1);
  CHECK(wait_bounded(child) == 0);
}

TEST_CASE("spawn: the child inherits only its three pipes", "[child]") {
  // A descriptor the proxy forgot to mark close-on-exec must not reach the child.
  int leaky = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaky >= 0);
  auto child = ChildProcess::spawn(command({"cat"}));  // blocks reading stdin: fds stay put
  ::close(leaky);

  auto pipe_inode = [](int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    return "pipe:[" + std::to_string(st.st_ino) + "]";
  };
  const std::vector<std::string> want = {"0 -> " + pipe_inode(child.stdin_fd()),
                                         "1 -> " + pipe_inode(child.stdout_fd()),
                                         "2 -> " + pipe_inode(child.stderr_fd())};
  // cat opens and closes files of its own while it starts (the locale archive): its table is
  // read until it holds only the three pipes, for up to 5 s. A leaked descriptor stays for good.
  const std::string dir = "/proc/" + std::to_string(child.pid()) + "/fd";
  std::vector<std::string> fds;
  for (int attempt = 0; attempt < 500 && fds != want; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    fds.clear();
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      std::error_code link_ec;
      auto target = std::filesystem::read_symlink(entry.path(), link_ec);  // gone meanwhile
      fds.push_back(entry.path().filename().string() + " -> " +
                    (link_ec ? std::string("?") : target.string()));
    }
    std::sort(fds.begin(), fds.end());
  }
  CHECK(fds == want);
  // The proxy's ends are close-on-exec, so a second child does not hold the first one's pipes.
  CHECK((::fcntl(child.stdin_fd(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((::fcntl(child.stdout_fd(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((::fcntl(child.stderr_fd(), F_GETFD) & FD_CLOEXEC) != 0);
  if (child.pidfd() >= 0) CHECK((::fcntl(child.pidfd(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("spawn: works when the proxy runs with its own stdio closed", "[child]") {
  // Then pipe2() hands out fds 0-2 for the pipes themselves; the child's dup2()s must not clobber
  // one pipe with another.
  CHECK(in_subprocess([]() -> std::string {
          ::close(0);
          ::close(1);
          ::close(2);
          auto child = ChildProcess::spawn(sh("echo out; echo err >&2; cat"));
          if (!scrub::write_all(child.stdin_fd(), "in\n")) return "write failed";
          child.close_stdin();
          std::string out = read_all(child.stdout_fd());
          std::string err = read_all(child.stderr_fd());
          if (out != "out\nin\n") return "stdout: " + out;
          if (err != "err\n") return "stderr: " + err;
          if (wait_bounded(child) != 0) return "status not 0";
          return "";
        }) == "");
}

TEST_CASE("spawn: the child starts with default signal dispositions and an empty mask", "[child]") {
  CHECK(in_subprocess([]() -> std::string {
          scrub::ignore_sigpipe();                 // as the proxy does
          ::signal(SIGINT, SIG_IGN);               // as a background job of a script would
          scrub::SignalForwarder::block_signals();  // as the proxy does
          auto child = ChildProcess::spawn(command({"cat", "/proc/self/status"}));
          std::string status = read_all(child.stdout_fd());
          if (wait_bounded(child) != 0) return "cat failed";
          std::string want_blocked = "\nSigBlk:\t0000000000000000\n";
          std::string want_ignored = "\nSigIgn:\t0000000000000000\n";
          if (status.find(want_blocked) == std::string::npos) return "mask leaked:\n" + status;
          if (status.find(want_ignored) == std::string::npos) return "SIG_IGN leaked:\n" + status;
          return "";
        }) == "");
}

TEST_CASE("parent death: the child is killed when the proxy dies", "[child]") {
  SubreaperScope reaper;  // the orphaned grandchild comes to us, so we can reap and observe it
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  std::fflush(nullptr);
  pid_t middle = ::fork();
  REQUIRE(middle >= 0);
  if (middle == 0) {
    ::close(fds[0]);
    pid_t pid = -1;
    try {
      auto child = ChildProcess::spawn(command({"sleep", "30"}));
      pid = child.pid();
      scrub::write_all(fds[1], std::to_string(pid) + "\n");
      ::_exit(0);  // dies with `child` alive: its destructor never runs
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(fds[1]);
  std::string line = read_line(fds[0]);
  ::close(fds[0]);
  int wstatus = 0;
  REQUIRE(::waitpid(middle, &wstatus, 0) == middle);
  REQUIRE(WIFEXITED(wstatus));
  REQUIRE(WEXITSTATUS(wstatus) == 0);
  pid_t grandchild = std::stoi(line);

  // Gone within 2 s: it was reparented to us, so gone means "died and reaped by us" (kill(pid, 0)
  // alone would also see a zombie as alive).
  bool reaped = false;
  for (auto deadline = Clock::now() + 2s; Clock::now() < deadline;) {
    if (::waitpid(grandchild, &wstatus, WNOHANG) == grandchild) {
      reaped = true;
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  if (!reaped) {
    ::kill(grandchild, SIGKILL);
    ::waitpid(grandchild, nullptr, 0);
  }
  REQUIRE(reaped);
  CHECK(WIFSIGNALED(wstatus));
  CHECK(WTERMSIG(wstatus) == SIGKILL);
  CHECK(process_gone(grandchild));
}

TEST_CASE("write_all: a pipe whose reader closed returns false, no SIGPIPE", "[child]") {
  scrub::ignore_sigpipe();
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  ::close(fds[0]);
  errno = 0;
  CHECK_FALSE(scrub::write_all(fds[1], "lost"));
  CHECK(errno == EPIPE);
  ::close(fds[1]);
}

TEST_CASE("write_all: large writes arrive whole, blocking or not", "[child]") {
  scrub::ignore_sigpipe();
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  for (bool nonblocking : {false, true}) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    REQUIRE(scrub::set_nonblocking(fds[1], nonblocking));
    CHECK(((::fcntl(fds[1], F_GETFL) & O_NONBLOCK) != 0) == nonblocking);
    std::string received;
    std::thread reader([&] {
      received = read_all(fds[0]);
      ::close(fds[0]);
    });
    CHECK(scrub::write_all(fds[1], data));
    ::close(fds[1]);
    reader.join();
    CHECK(received.size() == data.size());
    CHECK(received == data);
  }
  // In two parts (writev): the pipe takes 64 KiB at a time, so writes end inside the first part,
  // at its end, and inside the second.
  const std::string tail(100000, 'Z');
  for (bool nonblocking : {false, true}) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    REQUIRE(scrub::set_nonblocking(fds[1], nonblocking));
    std::string received;
    std::thread reader([&] {
      received = read_all(fds[0]);
      ::close(fds[0]);
    });
    CHECK(scrub::write_all(fds[1], data, tail));
    ::close(fds[1]);
    reader.join();
    CHECK(received.size() == data.size() + tail.size());
    CHECK(received == data + tail);
  }
}

TEST_CASE("write_all: head and tail, either one empty, arrive in order, and a closed reader is EPIPE",
          "[child]") {
  scrub::ignore_sigpipe();
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  REQUIRE(scrub::write_all(fds[1], R"({"jsonrpc":"2.0","id":1})", "\n"));
  REQUIRE(scrub::write_all(fds[1], "", "\n"));
  REQUIRE(scrub::write_all(fds[1], "x", ""));
  char buf[256];
  CHECK(scrub::read_some(fds[0], buf, sizeof buf) == 27);
  CHECK(std::string(buf, 27) == "{\"jsonrpc\":\"2.0\",\"id\":1}\n\nx");
  ::close(fds[0]);
  errno = 0;
  CHECK_FALSE(scrub::write_all(fds[1], "lost", "\n"));
  CHECK(errno == EPIPE);
  ::close(fds[1]);
}

TEST_CASE("read_some: data, end of file, and EAGAIN on an empty non-blocking pipe", "[child]") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  char buf[16];
  REQUIRE(scrub::set_nonblocking(fds[0], true));
  errno = 0;
  CHECK(scrub::read_some(fds[0], buf, sizeof buf) == -1);
  CHECK(errno == EAGAIN);
  REQUIRE(scrub::write_all(fds[1], "xyz"));
  CHECK(scrub::read_some(fds[0], buf, sizeof buf) == 3);
  CHECK(std::string(buf, 3) == "xyz");
  ::close(fds[1]);
  CHECK(scrub::read_some(fds[0], buf, sizeof buf) == 0);
  ::close(fds[0]);
}

namespace {

// Collects the forwarder's callbacks for a subprocess test.
struct Recorder {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<int> signals;

  void operator()(int sig) {
    std::lock_guard lock(mutex);
    signals.push_back(sig);
    cv.notify_all();
  }
  bool wait_for_signal(int sig, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, timeout, [&] {
      return std::find(signals.begin(), signals.end(), sig) != signals.end();
    });
  }
  std::string seen() {
    std::lock_guard lock(mutex);
    std::string out;
    for (int s : signals) out += std::to_string(s) + " ";
    return out;
  }
};

}  // namespace

TEST_CASE("SignalForwarder: forwards SIGTERM to the child and reports the child's exit", "[child]") {
  CHECK(in_subprocess([]() -> std::string {
          scrub::SignalForwarder::block_signals();
          auto child = ChildProcess::spawn(
              sh("trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done"));
          if (read_line(child.stdout_fd()) != "ready") return "child not ready";
          Recorder rec;
          scrub::SignalForwarder forwarder(child, std::ref(rec));
          forwarder.start();
          ::kill(::getpid(), SIGTERM);  // to the proxy, as a supervisor would
          if (!rec.wait_for_signal(SIGCHLD, 2000ms)) return "no exit report; saw: " + rec.seen();
          forwarder.stop();
          if (rec.seen() != std::to_string(SIGTERM) + " " + std::to_string(SIGCHLD) + " ") {
            return "callbacks: " + rec.seen();
          }
          if (auto status = child.try_wait(); status != 7) return "status not 7";
          return "";
        }) == "");
}

TEST_CASE("SignalForwarder: every forwarded signal reaches the child's group", "[child]") {
  CHECK(in_subprocess([]() -> std::string {
          scrub::SignalForwarder::block_signals();
          // SIGQUIT also reaches the shell's `sleep`, whose default action dumps core: not here.
          struct rlimit no_core {0, 0};
          ::setrlimit(RLIMIT_CORE, &no_core);
          // The shell echoes each signal it gets and exits on the last one, SIGTERM, after reaping
          // its `sleep` (which the group signals kill): no orphan is left behind.
          std::string traps;
          for (const char* name : {"INT", "HUP", "QUIT", "USR1", "USR2"}) {
            traps += std::string("trap 'echo ") + name + "' " + name + "; ";
          }
          traps += "trap 'echo TERM; exit 0' TERM; ";
          auto child = ChildProcess::spawn(
              sh(traps + "echo ready; while :; do sleep 0.05; done"));
          if (read_line(child.stdout_fd()) != "ready") return "child not ready";
          Recorder rec;
          scrub::SignalForwarder forwarder(child, std::ref(rec));
          forwarder.start();
          std::string got;
          for (auto [sig, name] : std::vector<std::pair<int, std::string>>{
                   {SIGINT, "INT"}, {SIGHUP, "HUP"}, {SIGQUIT, "QUIT"},
                   {SIGUSR1, "USR1"}, {SIGUSR2, "USR2"}, {SIGTERM, "TERM"}}) {
            ::kill(::getpid(), sig);
            std::string line = read_line(child.stdout_fd());
            if (line != name) return "sent " + name + ", child saw " + line;
          }
          if (!rec.wait_for_signal(SIGCHLD, 2000ms)) return "no exit report";
          forwarder.stop();
          std::string want;
          for (int sig : {SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM, SIGCHLD}) {
            want += std::to_string(sig) + " ";
          }
          if (rec.seen() != want) return "callbacks: " + rec.seen();
          if (wait_bounded(child) != 0) return "status not 0";
          return "";
        }) == "");
}

TEST_CASE("SignalForwarder: a child that exited before start() is reported once", "[child]") {
  CHECK(in_subprocess([]() -> std::string {
          auto child = ChildProcess::spawn(sh("exit 5"));
          // Signals not blocked yet: this SIGCHLD is discarded, the forwarder must look itself.
          siginfo_t info{};
          ::waitid(P_PID, static_cast<id_t>(child.pid()), &info, WEXITED | WNOWAIT);
          Recorder rec;
          scrub::SignalForwarder forwarder(child, std::ref(rec));
          forwarder.start();
          if (!rec.wait_for_signal(SIGCHLD, 2000ms)) return "no exit report";
          forwarder.stop();
          if (rec.seen() != std::to_string(SIGCHLD) + " ") return "callbacks: " + rec.seen();
          if (wait_bounded(child) != 5) return "status not 5";
          return "";
        }) == "");
}

TEST_CASE("SignalForwarder: stop() is prompt and start/stop are idempotent", "[child]") {
  CHECK(in_subprocess([]() -> std::string {
          auto child = ChildProcess::spawn(command({"sleep", "30"}));
          Recorder rec;
          scrub::SignalForwarder forwarder(child, std::ref(rec));
          forwarder.start();
          forwarder.start();
          auto begin = Clock::now();
          forwarder.stop();
          forwarder.stop();
          if (Clock::now() - begin > 200ms) return "stop was slow";
          if (!rec.seen().empty()) return "unexpected callbacks: " + rec.seen();
          return "";
        }) == "");
}

TEST_CASE("widen_pipe: a pipe gets a 256 KiB buffer, anything else is left alone", "[child]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  CHECK(::fcntl(fds[0], F_GETPIPE_SZ) == 64 * 1024);  // the kernel's default
  CHECK(scrub::widen_pipe(fds[1]));
  CHECK(::fcntl(fds[0], F_GETPIPE_SZ) == scrub::kWidePipeBytes);
  // Never shrinks: a pipe already larger keeps its size.
  REQUIRE(::fcntl(fds[1], F_SETPIPE_SZ, 512 * 1024) == 512 * 1024);
  CHECK(scrub::widen_pipe(fds[1]));
  CHECK(::fcntl(fds[0], F_GETPIPE_SZ) == 512 * 1024);
  ::close(fds[0]);
  ::close(fds[1]);
  // Not a pipe: nothing to do, and it says so.
  int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  REQUIRE(null_fd >= 0);
  CHECK_FALSE(scrub::widen_pipe(null_fd));
  ::close(null_fd);
  CHECK_FALSE(scrub::widen_pipe(-1));
}

TEST_CASE("spawn: the child's stdout pipe is widened, its stdin pipe is not", "[child]") {
  // Large messages come from the child: a 1 MB answer crosses in four hand-offs, not sixteen.
  auto child = ChildProcess::spawn(sh("cat"));
  CHECK(::fcntl(child.stdout_fd(), F_GETPIPE_SZ) == scrub::kWidePipeBytes);
  CHECK(::fcntl(child.stdin_fd(), F_GETPIPE_SZ) == 64 * 1024);
  child.close_stdin();
  CHECK(child.wait() == 0);
}
