// split_server: writes lines it is told to write in two write(2) calls, for the split property
// tests (tests/e2e/test_split.cpp). Not an MCP server: it reads commands from stdin, one a line,
// and answers only by doing what they say.
//
//   SPLIT out <pos> <base64 of a line>   writes the line + "\n" to stdout
//   SPLIT err <pos> <base64 of a line>   writes the line + "\n" to stderr
//   RAW out <base64 of bytes>            writes the bytes to stdout in one write (no newline added)
//   SLEEP <ms>                           sleeps
//   CLOSE out                            closes stdout (and keeps running: reads on)
//   HANG                                 ignores stdin from now on and sleeps until killed
//
// SPLIT writes bytes [0, pos) (pos clamped to the length), sleeps SPLIT_SLEEP_MS (default 1) ms,
// then writes the rest: time for mcp-scrub, waiting in its read, to take the first part alone
// (the TCP variant in test_split.cpp pauses 0.5 ms). The split tests write thousands of lines;
// at 5 ms their pauses were 17 of the stdio test's 22 s. Unknown or malformed commands are ignored. Exits 0 at stdin EOF.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>

namespace {

bool b64(std::string_view in, std::string& out) {
  out.clear();
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') break;
    else return false;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

int main() {
  const char* s = std::getenv("SPLIT_SLEEP_MS");
  const int sleep_ms = s ? std::atoi(s) : 1;
  std::string line, cmd, stream, payload, bytes;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    in >> cmd;
    if (cmd == "SPLIT") {
      size_t pos = 0;
      if (!(in >> stream >> pos >> payload) || !b64(payload, bytes)) continue;
      bytes += '\n';
      pos = std::min(pos, bytes.size());
      int fd = stream == "err" ? 2 : 1;
      write_all(fd, std::string_view(bytes).substr(0, pos));
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
      write_all(fd, std::string_view(bytes).substr(pos));
    } else if (cmd == "RAW") {
      if ((in >> stream >> payload) && b64(payload, bytes)) write_all(stream == "err" ? 2 : 1, bytes);
    } else if (cmd == "SLEEP") {
      int ms = 0;
      in >> ms;
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    } else if (cmd == "CLOSE") {
      ::close(1);
    } else if (cmd == "HANG") {
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(60));
    }
  }
  return 0;
}
