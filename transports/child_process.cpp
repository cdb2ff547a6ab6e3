#include "transports/child_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "filter/sanitized.h"
#include "transports/fd_io.h"

extern char** environ;

namespace scrub {

namespace {

// What the child reports on the error pipe before it _exit()s.
enum class FailStage : int {
  kSetup = 1,  // setpgid/dup2/... failed: the proxy's fault -> 125
  kExec = 2,   // execve failed: the program's fault -> 127 / 126
};

struct ChildReport {
  int stage;
  int error;
};

constexpr int kExitCannotSetup = 125;
constexpr int kExitNotExecutable = 126;
constexpr int kExitNotFound = 127;

std::string describe(int err) { return std::system_category().message(err); }

int exit_code_for_exec_errno(int err) {
  return (err == ENOENT || err == ENOTDIR) ? kExitNotFound : kExitNotExecutable;
}

SpawnError cannot_run(const std::string& name, int exit_code, int err, const char* what = nullptr) {
  std::string message = "mcp-scrub: cannot run '" + name + "': ";
  if (what != nullptr) message += std::string(what) + ": ";
  message += describe(err);
  return SpawnError(exit_code, err, message);
}

// Shell convention: exit code, or 128 + the signal that killed it.
int shell_status(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return -1;
}

// An owned fd that closes itself, so every early throw in spawn() leaks nothing.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.release();
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct Pipe {
  Fd read;
  Fd write;
};

// pipe2(O_CLOEXEC): no other thread's concurrent fork+exec can inherit our ends.
bool make_pipe(Pipe& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  p.read = Fd(fds[0]);
  p.write = Fd(fds[1]);
  return true;
}

// Checks that `path` names something execve() can run; returns 0 or the errno execve would give
// (EISDIR for a directory, for a clearer message; it maps to 126 like EACCES).
int check_executable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  // AT_EACCESS: judge with the effective ids, as execve() does. Also catches noexec mounts.
  if (::faccessat(AT_FDCWD, path.c_str(), X_OK, AT_EACCESS) != 0) return errno;
  return 0;
}

struct Resolved {
  std::string path;
  int error = 0;
};

std::string search_path_of(const std::vector<std::string>& env) {
  for (const auto& entry : env) {
    if (entry.rfind("PATH=", 0) == 0) return entry.substr(5);
  }
  if (const char* own = std::getenv("PATH")) return own;
  std::string fallback(256, '\0');
  size_t n = ::confstr(_CS_PATH, fallback.data(), fallback.size());
  if (n == 0 || n > fallback.size()) return "/bin:/usr/bin";
  fallback.resize(n - 1);
  return fallback;
}

// execvp()'s lookup, done in the proxy so that "not found" needs no fork and uses the PATH of the
// child's environment (glibc's execvpe would use the proxy's). Like execvp: an empty component is
// the current directory; a candidate that exists but cannot be executed is skipped but remembered,
// so the final error is EACCES rather than ENOENT.
Resolved resolve_program(const std::string& name, const std::vector<std::string>& env) {
  if (name.empty()) return {"", ENOENT};
  if (name.find('/') != std::string::npos) {
    int err = check_executable(name);
    return {err == 0 ? name : "", err};
  }
  std::string search = search_path_of(env);
  bool saw_unrunnable = false;
  size_t start = 0;
  for (;;) {
    size_t end = search.find(':', start);
    std::string_view dir(search.data() + start,
                         (end == std::string::npos ? search.size() : end) - start);
    std::string candidate = dir.empty() ? "./" + name : std::string(dir) + "/" + name;
    int err = check_executable(candidate);
    if (err == 0) return {candidate, 0};
    if (err != ENOENT && err != ENOTDIR && err != ENAMETOOLONG && err != ELOOP) {
      saw_unrunnable = true;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return {"", saw_unrunnable ? EACCES : ENOENT};
}

// Everything the child needs, prepared before fork so the child allocates nothing.
struct ChildSetup {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int stdin_read = -1;    // becomes fd 0 (if >= 0)
  int stdout_write = -1;  // becomes fd 1
  int stderr_write = -1;  // becomes fd 2
  int report = -1;        // error pipe, close-on-exec
  bool own_process_group = true;
  pid_t parent = -1;
};

// --- Child side: from clone() or fork() to execve() only async-signal-safe calls. ---

[[noreturn]] void child_fail(int report_fd, FailStage stage) {
  ChildReport r{static_cast<int>(stage), errno};
  // One write of 8 bytes to a pipe is atomic; nothing useful to do if it fails.
  ssize_t ignored = ::write(report_fd, &r, sizeof r);
  (void)ignored;
  ::_exit(stage == FailStage::kExec ? kExitNotFound : kExitCannotSetup);
}

// Moves `fd` to a number >= 3 so the dup2()s onto 0-2 cannot clobber it (possible when the proxy
// runs with some of its own stdio closed and pipe2() handed out 0, 1 or 2).
int lift_above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  return ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

int parse_fd_name(const char* name) {
  if (*name == '\0') return -1;
  int fd = 0;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return -1;
    fd = fd * 10 + (*name - '0');
  }
  return fd;
}

// Closes every fd >= 3 except `keep`. close_range() where the kernel has it (>= 5.9); else
// /proc/self/fd read with raw getdents64 (opendir() allocates); else every number up to the limit.
void close_other_fds(int keep) {
  bool ok = true;
  if (keep > 3) ok = ::close_range(3, static_cast<unsigned>(keep) - 1, 0) == 0;
  if (ok) ok = ::close_range(static_cast<unsigned>(std::max(keep, 2)) + 1, ~0U, 0) == 0;
  if (ok) return;

  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    alignas(8) char buf[4096];
    for (;;) {
      long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        auto* entry = reinterpret_cast<struct dirent64*>(buf + off);
        int fd = parse_fd_name(entry->d_name);
        if (fd > 2 && fd != keep && fd != dir) ::close(fd);
        off += entry->d_reclen;
      }
    }
    ::close(dir);
    return;
  }
  struct rlimit lim {};
  rlim_t max = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) max = lim.rlim_cur;
  for (rlim_t fd = 3; fd < max; ++fd) {
    if (static_cast<int>(fd) != keep) ::close(static_cast<int>(fd));
  }
}

[[noreturn]] void run_child(ChildSetup s) {
  // All signals are blocked here (the parent blocked them around fork), so no handler inherited
  // from the proxy can run in the child while we reset them. Dispositions set to SIG_IGN (SIGPIPE
  // in the proxy) would survive execve, so reset every one.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }

  // Die with the proxy. If the proxy already died between fork and prctl, the death signal will
  // never come: we have been re-parented, so leave now.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(s.report, FailStage::kSetup);
  if (::getppid() != s.parent) ::_exit(kExitCannotSetup);

  if (s.own_process_group && ::setpgid(0, 0) != 0) child_fail(s.report, FailStage::kSetup);

  // Lift every fd we keep out of 0-2 before any dup2() onto 0-2 could clobber it. A failed lift
  // is reported on the fd as it was, which is still intact at that point.
  int report = lift_above_stdio(s.report);
  if (report < 0) child_fail(s.report, FailStage::kSetup);
  s.report = report;
  struct Target {
    int from;
    int to;
  };
  Target targets[] = {{s.stdin_read, 0}, {s.stdout_write, 1}, {s.stderr_write, 2}};
  for (Target& t : targets) {
    if (t.from < 0) continue;  // not piped: the child shares the proxy's fd
    t.from = lift_above_stdio(t.from);
    if (t.from < 0) child_fail(s.report, FailStage::kSetup);
  }
  // dup2() onto a different number clears close-on-exec on the new fd, as the child needs.
  for (const Target& t : targets) {
    if (t.from >= 0 && ::dup2(t.from, t.to) < 0) child_fail(s.report, FailStage::kSetup);
  }
  close_other_fds(s.report);

  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  ::execve(s.path, s.argv, s.envp);
  child_fail(s.report, FailStage::kExec);
}

#ifndef SCRUB_SANITIZED
int child_entry(void* arg) { run_child(*static_cast<ChildSetup*>(arg)); }
#endif

// Starts the child as posix_spawn does: in the proxy's memory (CLONE_VM), on a stack of its own,
// the proxy's thread suspended until the child has called execve or exited (CLONE_VFORK). A fork
// copied the proxy's page tables and made its every written page copy-on-write, so the proxy
// took a page fault at its next write to each (7-14 us apiece on the VMs the benchmarks ran on):
// through `mcp-scrub -- reply_server 1024` the first answer came 2-3 ms later. The child runs
// only run_child's async-signal-safe calls and writes nothing of the proxy's but errno. Returns -1
// when it cannot; the caller then forks. Not in a sanitizer build: its runtime would see the
// child's calls as the suspended thread's.
pid_t spawn_sharing_memory(ChildSetup& setup) {
#ifdef SCRUB_SANITIZED
  (void)setup;
  return -1;
#else
  constexpr size_t kChildStack = 64 * 1024;  // run_child's deepest frame holds a 4 KiB buffer
  void* stack = ::mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return -1;
  const pid_t pid = ::clone(child_entry, static_cast<char*>(stack) + kChildStack,
                            CLONE_VM | CLONE_VFORK | SIGCHLD, &setup);
  const int saved_errno = errno;
  ::munmap(stack, kChildStack);  // the child has exec'd or exited: it no longer runs on it
  errno = saved_errno;
  return pid;
#endif
}

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::vector<std::string> current_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

ChildProcess ChildProcess::spawn(const ChildOptions& options) {
  if (options.argv.empty()) throw SpawnError(kExitCannotSetup, 0, "mcp-scrub: no command given");
  const std::string& name = options.argv[0];

  Resolved program = resolve_program(name, options.env);
  if (program.error != 0) {
    throw cannot_run(name, exit_code_for_exec_errno(program.error), program.error);
  }

  std::vector<char*> argv = c_strings(options.argv);
  std::vector<char*> envp = c_strings(options.env);

  Pipe in, out, err, report;
  if ((options.pipe_stdin && !make_pipe(in)) || (options.pipe_stdout && !make_pipe(out)) ||
      (options.pipe_stderr && !make_pipe(err)) || !make_pipe(report)) {
    throw cannot_run(name, kExitCannotSetup, errno, "pipe");
  }
  // The child's answers are where large messages come from (tool results).
  if (options.pipe_stdout) widen_pipe(out.write.get());

  ChildSetup setup;
  setup.path = program.path.c_str();
  setup.argv = argv.data();
  setup.envp = envp.data();
  setup.stdin_read = in.read.get();
  setup.stdout_write = out.write.get();
  setup.stderr_write = err.write.get();
  setup.report = report.write.get();
  setup.own_process_group = options.own_process_group;
  setup.parent = ::getpid();

  // Block everything across fork so no proxy signal handler can run in the child before it has
  // reset the dispositions; the child clears the mask just before execve.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  pid_t pid = spawn_sharing_memory(setup);
  if (pid < 0) {  // no stack to be had, or clone refused (a sanitizer build, a seccomp filter)
    pid = ::fork();
    if (pid == 0) run_child(setup);
  }
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) throw cannot_run(name, kExitCannotSetup, fork_errno, "fork");

  // Our copies of the child's ends must go, or we would never see EOF on its stdout, and the
  // report pipe would never reach EOF on a successful exec.
  in.read.reset();
  out.write.reset();
  err.write.reset();
  report.write.reset();

  ChildReport r{};
  size_t got = 0;
  while (got < sizeof r) {
    ssize_t n = ::read(report.read.get(), reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  if (got != 0) {
    // The child reported a failure (or died mid-report) and is exiting: reap it before throwing.
    int wstatus = 0;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (got == sizeof r && r.stage == static_cast<int>(FailStage::kExec)) {
      throw cannot_run(name, exit_code_for_exec_errno(r.error), r.error);
    }
    throw cannot_run(name, kExitCannotSetup, got == sizeof r ? r.error : EIO, "child setup");
  }
  // EOF without a report: execve succeeded, or the child died before it (only possible if the
  // proxy itself died meanwhile). Either way the pid is ours to reap.

  ChildProcess child;
  child.pid_ = pid;
  // A pidfd cannot refer to a recycled pid here: the child is unreaped and only we reap it.
  // pidfd_open() always sets close-on-exec; -1 (ENOSYS) on kernels before 5.3.
  child.pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  child.stdin_fd_ = in.write.release();
  child.stdout_fd_ = out.read.release();
  child.stderr_fd_ = err.read.release();
  child.own_process_group_ = options.own_process_group;
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept { take(other); }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    terminate_and_reap();
    take(other);
  }
  return *this;
}

ChildProcess::~ChildProcess() { terminate_and_reap(); }

void ChildProcess::take(ChildProcess& other) {
  std::lock_guard lock(other.mutex_);
  pid_ = std::exchange(other.pid_, -1);
  pidfd_ = std::exchange(other.pidfd_, -1);
  stdin_fd_ = std::exchange(other.stdin_fd_, -1);
  stdout_fd_ = std::exchange(other.stdout_fd_, -1);
  stderr_fd_ = std::exchange(other.stderr_fd_, -1);
  own_process_group_ = other.own_process_group_;
  reaped_ = std::exchange(other.reaped_, false);
  status_ = std::exchange(other.status_, -1);
}

void ChildProcess::close_all_fds() {
  close_stdin();
  close_stdout();
  close_stderr();
}

void ChildProcess::terminate_and_reap() {
  // Close our ends first: a child blocked writing to a full stdout pipe gets EPIPE at once.
  close_all_fds();
  if (pid_ > 0 && !try_wait().has_value()) {
    send_signal(SIGTERM);
    send_signal(SIGCONT);  // a stopped child would otherwise sit on the SIGTERM
    bool timed_out = false;
    wait_for(kTerminateGrace, &timed_out);
    if (timed_out) {
      send_signal(SIGKILL);
      wait();
    }
  }
  if (pidfd_ >= 0) ::close(pidfd_);
  pidfd_ = -1;
  pid_ = -1;
  reaped_ = false;
  status_ = -1;
}

void ChildProcess::close_stdin() {
  if (stdin_fd_ >= 0) ::close(stdin_fd_);
  stdin_fd_ = -1;
}

void ChildProcess::close_stdout() {
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
}

void ChildProcess::close_stderr() {
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
  stderr_fd_ = -1;
}

bool ChildProcess::send_signal(int sig) {
  if (pid_ <= 0) return false;
  // Held across kill(): reaping also takes the lock, so the pid cannot be recycled under us.
  std::lock_guard lock(mutex_);
  if (reaped_) return false;
  if (own_process_group_) {
    if (::kill(-pid_, sig) == 0) return true;
    if (errno != ESRCH) return false;
    // The group is gone (the child moved itself elsewhere): still reach the child.
  }
  return ::kill(pid_, sig) == 0;
}

bool ChildProcess::reap_locked(bool block) {
  if (reaped_) return true;
  int wstatus = 0;
  for (;;) {
    pid_t r = ::waitpid(pid_, &wstatus, block ? 0 : WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = shell_status(wstatus);
      return true;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    // ECHILD: someone else reaped it (or SIGCHLD is SIG_IGN). The status is lost, the child gone.
    reaped_ = true;
    status_ = -1;
    return true;
  }
}

std::optional<int> ChildProcess::try_wait() {
  if (pid_ <= 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (reap_locked(false)) return status_;
  return std::nullopt;
}

int ChildProcess::wait() {
  if (pid_ <= 0) return -1;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (reap_locked(false)) return status_;
    }
    // Wait for the exit without reaping (WNOWAIT), so that a concurrent send_signal() never races
    // with the pid being freed; the reap happens above, under the lock.
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) != 0 && errno != EINTR) {
      std::lock_guard lock(mutex_);
      if (!reap_locked(false)) {
        // waitid failed for a reason other than ECHILD (which reap_locked records): block in
        // waitpid() rather than spin.
        reap_locked(true);
      }
      return status_;
    }
  }
}

int ChildProcess::wait_for(std::chrono::milliseconds timeout, bool* timed_out) {
  if (timed_out != nullptr) *timed_out = false;
  if (pid_ <= 0) return -1;
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (reap_locked(false)) return status_;
    }
    auto remaining = deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) {
      if (timed_out != nullptr) *timed_out = true;
      return -1;
    }
    // Round up so a sub-millisecond remainder does not turn into a busy poll(0).
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining);
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(std::min<long long>(ms.count(), 1 << 30))) >= 0 ||
          errno == EINTR) {
        continue;
      }
      // poll() on the pidfd failed outright: fall through to sleeping.
    }
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(backoff, ms));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(10));
  }
}

}  // namespace scrub
