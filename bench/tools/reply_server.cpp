// Benchmark peer: an MCP-shaped stdio server that answers every request line at once with a
// tools/call result of a fixed size. `reply_server BYTES [secret]`: with `secret`, the text holds
// the value of $BENCH_SECRET three times (start, middle, end) and a pattern-shaped token.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static bool write_all(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(1, s.data() + off, s.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

int main(int argc, char** argv) {
  size_t bytes = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024;
  bool secret = argc > 2 && std::strcmp(argv[2], "secret") == 0;
  const char* s = std::getenv("BENCH_SECRET");
  std::string sec = s ? s : "Qm7Xv2Lp9Rt4Wk8Zn3Bc";
  // Realistic text: words, JSON-escaped newlines and quotes.
  static const char* kWords[] = {"request", "handled", "in", "12ms", "user", "id", "42", "status",
                                 "ok", "\\n", "config", "\\\"value\\\"", "path", "/var/lib/app"};
  std::string text;
  unsigned x = 1;
  while (text.size() < bytes) {
    x = x * 1103515245u + 12345u;
    text += kWords[(x >> 16) % 14];
    text += ' ';
  }
  text.resize(bytes);
  if (secret) {
    std::string token = "ghp_" + std::string("Fk7Qm2Xr9Lp4Ws8Tn3Vb6Yc1Hd5Jg0Ze2Ua4");
    std::string ins = " key=" + sec + " ";
    text.replace(0, ins.size(), ins);
    text.replace(bytes / 2, ins.size() + token.size() + 1, ins + token + " ");
    text.replace(bytes - ins.size() - 1, ins.size(), ins);
  }
  std::string line;
  char buf[65536];
  std::string pending;
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n <= 0) return 0;
    pending.append(buf, static_cast<size_t>(n));
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      std::string req = pending.substr(0, pos);
      pending.erase(0, pos + 1);
      size_t id_at = req.find("\"id\":");
      std::string id = "null";
      if (id_at != std::string::npos) {
        size_t e = req.find_first_of(",}", id_at + 5);
        id = req.substr(id_at + 5, e - id_at - 5);
      }
      line = "{\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" + text +
             "\"}]},\"jsonrpc\":\"2.0\",\"id\":" + id + "}\n";
      if (!write_all(line)) return 0;
    }
  }
}
