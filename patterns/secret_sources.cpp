#include "patterns/secret_sources.h"

#include <poll.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "patterns/known_secrets.h"
#include "transports/child_process.h"
#include "transports/fd_io.h"

namespace scrub {

namespace {

void json_leaves(const nlohmann::ordered_json& j, const std::string& path,
                 std::vector<std::pair<std::string, std::string>>& out, int depth) {
  if (depth > 64) return;
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    // AWS SecretString (and similar) holds JSON as a string: unwrap it.
    if (!s.empty() && (s.front() == '{' || s.front() == '[')) {
      nlohmann::ordered_json inner = nlohmann::ordered_json::parse(s, nullptr, false);
      if (!inner.is_discarded() && inner.is_structured()) {
        json_leaves(inner, path, out, depth + 1);
        return;
      }
    }
    out.emplace_back(path.empty() ? "$" : path, s);
  } else if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      json_leaves(it.value(), path.empty() ? it.key() : path + "." + it.key(), out, depth + 1);
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) json_leaves(j[i], path + "[" + std::to_string(i) + "]", out, depth + 1);
  }
}

bool looks_like_dotenv(std::string_view text) {
  size_t lines = 0, assignments = 0, pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    ++lines;
    if (line.substr(0, 7) == "export ") line.remove_prefix(7);
    size_t eq = line.find('=');
    if (eq == 0 || eq == std::string_view::npos) continue;
    bool name_ok = true;
    for (char c : line.substr(0, eq))
      name_ok &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    assignments += name_ok;
  }
  return lines > 0 && assignments == lines;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> parse_secret_output(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return out;
  if (text[first] == '{' || text[first] == '[') {
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, false);
    if (!j.is_discarded()) {
      // Vault KV v2 wraps the secret in data.data (and adds metadata we must not mask).
      if (j.is_object() && j.contains("data") && j["data"].is_object() && j["data"].contains("data") &&
          j["data"]["data"].is_object())
        json_leaves(j["data"]["data"], "data.data", out, 0);
      else if (j.is_object() && j.contains("SecretString") && j["SecretString"].is_string())
        json_leaves(j["SecretString"], "SecretString", out, 0);
      else
        json_leaves(j, "", out, 0);
      return out;
    }
  }
  if (looks_like_dotenv(text)) return parse_dotenv(text);
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    ++line_no;
    std::string line(text.substr(pos, eol - pos));
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.emplace_back("line " + std::to_string(line_no), std::move(line));
  }
  return out;
}

std::string command_name(const std::string& command) {
  size_t b = command.find_first_not_of(" \t");
  if (b == std::string::npos) return "(empty command)";
  size_t e = command.find_first_of(" \t", b);
  std::string word = command.substr(b, e == std::string::npos ? std::string::npos : e - b);
  size_t slash = word.rfind('/');
  return slash == std::string::npos ? word : word.substr(slash + 1);
}

SecretsCommandResult run_secrets_command(const std::string& command, std::chrono::milliseconds timeout) {
  SecretsCommandResult r;
  const std::string name = command_name(command);
  ChildOptions co;
  co.argv = {"/bin/sh", "-c", command};
  co.env = current_environment();
  std::optional<ChildProcess> child;
  try {
    child.emplace(ChildProcess::spawn(co));
  } catch (const SpawnError& e) {
    r.error = name + ": cannot start (" + std::to_string(e.exit_code) + ")";
    return r;
  }
  child->close_stdin();
  std::string out, err;
  pollfd fds[2] = {{child->stdout_fd(), POLLIN, 0}, {child->stderr_fd(), POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open = 2;
  char buf[65536];
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read_some(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
      } else if (sinks[i]->size() < (64u << 20)) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  if (timed_out) {
    child->send_signal(SIGKILL);
    child->wait();
    r.error = name + ": timed out after " + std::to_string(timeout.count() / 1000) + " s";
    r.stderr_text = std::move(err);
    return r;
  }
  int status = child->wait();
  r.stderr_text = std::move(err);
  if (status != 0) {
    r.error = name + " exited with status " + std::to_string(status);
    return r;
  }
  r.values = parse_secret_output(out);
  r.ok = true;
  return r;
}

}  // namespace scrub
