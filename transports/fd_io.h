// Small POSIX fd helpers for the data path.
//
// Promises: no exceptions, no signals raised, no allocation. EINTR is retried everywhere, so
// callers never see it. write_all() reports a closed reader (EPIPE) as `false`, like any other
// error; it relies on SIGPIPE being ignored process-wide (call ignore_sigpipe() once, early in
// main()), because for a pipe the kernel raises SIGPIPE before write() can return EPIPE and there
// is no per-call MSG_NOSIGNAL for pipes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string_view>

namespace scrub {

// Writes every byte of `data`, retrying partial writes and EINTR. On a non-blocking fd it waits
// with poll() instead of failing on EAGAIN, so it works for either mode. Returns false on EPIPE or
// any other error (errno is left as the failing call set it); what was written before stays
// written. Requires SIGPIPE to be ignored (see ignore_sigpipe()).
bool write_all(int fd, std::string_view data);

// write_all of `head` then `tail`, gathered by writev(2): a message and its "\n" go in one
// system call (written apart, the server read its request and then, alone, the newline), and a
// large message is not copied just to have a newline appended.
bool write_all(int fd, std::string_view head, std::string_view tail);

// One read(), retried on EINTR. Same result as read(2): bytes read, 0 on end of file, -1 with errno
// set on error (EAGAIN/EWOULDBLOCK for an empty non-blocking fd).
ssize_t read_some(int fd, char* buf, size_t n);

// Whether a read(2) of `fd` now would not wait: bytes, the end of input or an error are there
// (poll(2) with a zero timeout; a regular file always answers yes).
bool poll_readable(int fd);

// Busy polling: asks poll_readable(fd) until it answers yes or `window` has passed, yielding the
// CPU (sched_yield) between asks; returns the last answer. For a caller about to make a read that
// would sleep when its next bytes are expected within microseconds and waking a sleeping thread
// costs more (the stdio wrap's pumps, LineReader::set_spin).
bool poll_readable_for(int fd, std::chrono::microseconds window);

// Sets or clears O_NONBLOCK. Returns false if fcntl fails.
bool set_nonblocking(int fd, bool nonblocking);

// If `fd` is a pipe, asks for a buffer of at least `bytes` (F_SETPIPE_SZ; never shrinks one).
// With the default 64 KiB, a 1 MB message crosses in sixteen hand-offs, each a wake-up of the
// other side; through the stdio wrap that was a quarter of a 1 MB round trip. Best effort: the
// kernel may refuse (an unprivileged user past fs.pipe-user-pages-soft), and the pipe keeps
// working as it was. The capacity is accounted to the user whether used or not, so it is asked
// only for the channels that carry large messages. Returns whether the buffer now holds `bytes`.
constexpr int kWidePipeBytes = 256 * 1024;
bool widen_pipe(int fd, int bytes = kWidePipeBytes);

// Sets SIGPIPE to SIG_IGN for the whole process, so a write to a pipe whose reader went away fails
// with EPIPE instead of killing the proxy. Idempotent. Children started by ChildProcess get the
// default disposition back (transports/child_process.h), so this does not leak into them.
void ignore_sigpipe();

}  // namespace scrub
