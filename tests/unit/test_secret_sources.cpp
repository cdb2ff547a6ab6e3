#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/duration.h"
#include "cli/reloader.h"
#include "engine_fixture.h"
#include "patterns/secret_sources.h"

using namespace scrub;
using namespace scrub::test;
using Pairs = std::vector<std::pair<std::string, std::string>>;

namespace {
std::string fixture(const std::string& name) {
  std::ifstream in(std::string(SCRUB_SOURCE_DIR) + "/tests/fixtures/secrets/" + name, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}
}  // namespace

TEST_CASE("secret manager output shapes", "[secrets][sources]") {
  SECTION("Vault KV v2: data.data only, metadata left alone") {
    CHECK(parse_secret_output(fixture("vault-kv2.json")) ==
          Pairs{{"data.data.db_password", "vT8qLm2Rx9Kp4Wn7"}, {"data.data.api_key", "Hs3Jd8Kq2Lm9Np4Rt7Vx"}});
  }
  SECTION("AWS Secrets Manager: SecretString is JSON, unwrapped") {
    CHECK(parse_secret_output(fixture("aws-secretsmanager.json")) ==
          Pairs{{"SecretString.username", "app_user"}, {"SecretString.password", "Qw7Er2Ty9Ui4Op1As"}});
  }
  SECTION("gcloud secrets versions access / op read: the plain value") {
    CHECK(parse_secret_output(fixture("gcloud-access.txt")) == Pairs{{"line 1", "Zx9Cv2Bn7Mq4Lk8Jh3Gf"}});
    CHECK(parse_secret_output(fixture("op-read.txt")) == Pairs{{"line 1", "op-Wd4Fg7Hj2Kl9Zx3Cv8"}});
  }
  SECTION("Doppler JSON and dotenv") {
    auto json = parse_secret_output(fixture("doppler.json"));
    REQUIRE(json.size() == 5);
    CHECK(json[3] == std::pair<std::string, std::string>{"STRIPE_KEY", "Pq8Wr3Et6Yu1Io4Pa7Sd"});
    CHECK(parse_secret_output(fixture("doppler.env")) ==
          Pairs{{"STRIPE_KEY", "Pq8Wr3Et6Yu1Io4Pa7Sd"},
                {"DATABASE_URL", "postgres://app:Ng5Hm8Jk2Ll6Zx9Cv@db:5432/app"}});
  }
  SECTION("plain lines with an equals sign in a value are not dotenv") {
    CHECK(parse_secret_output("abc==\nxyz\n") == Pairs{{"line 1", "abc=="}, {"line 2", "xyz"}});
  }
}

TEST_CASE("secrets commands: output, failure by name and status, stderr kept apart", "[secrets][sources]") {
  auto ok = run_secrets_command("printf 'Zx9Cv2Bn7Mq4Lk8Jh3Gf\\n'; echo 'warning: token expires soon' >&2");
  REQUIRE(ok.ok);
  CHECK(ok.values == Pairs{{"line 1", "Zx9Cv2Bn7Mq4Lk8Jh3Gf"}});
  CHECK(ok.stderr_text == "warning: token expires soon\n");
  auto bad = run_secrets_command("vault_missing_binary_xyz kv get secret/app 2>/dev/null; exit 3");
  CHECK_FALSE(bad.ok);
  CHECK(bad.error == "vault_missing_binary_xyz exited with status 3");
  auto slow = run_secrets_command("sleep 5", std::chrono::milliseconds(200));
  CHECK_FALSE(slow.ok);
  CHECK(slow.error == "sleep: timed out after 0 s");
}

TEST_CASE("durations", "[secrets]") {
  CHECK(parse_duration("15m") == std::chrono::minutes(15));
  CHECK(parse_duration("1h30m") == std::chrono::minutes(90));
  CHECK(parse_duration("500ms") == std::chrono::milliseconds(500));
  CHECK(parse_duration("30") == std::chrono::seconds(30));
  CHECK(parse_duration("2d") == std::chrono::hours(48));
  CHECK_FALSE(parse_duration("5 minutes"));
  CHECK_FALSE(parse_duration(""));
}

TEST_CASE("Reloader: rotation, grace, failures keep the last good set, max age", "[secrets][reload]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("scrub-reload-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string file = (dir / "secret.txt").string();
  const std::string key = (dir / "fp.key").string();
  std::ofstream(key) << "0123456789abcdef0123456789abcdef\n";
  const std::string v1 = fake(20, 501), v2 = fake(20, 502);
  std::ofstream(file) << v1 << "\n";

  EngineConfig c;
  c.no_builtin_rules = true;
  c.no_env_secrets = true;
  c.no_cache = true;
  c.fingerprint_key_file = key;
  c.secrets_cmds = {"cat '" + file + "'"};
  c.rotation_grace = "1h";
  c.max_secret_age = "10m";
  Reloader r(c, nullptr);
  auto t0 = Reloader::Clock::now();
  auto now = t0;
  r.set_clock_for_test([&] { return now; });
  auto masked = [&](const std::string& v) {
    Redactor red(r.holder().get());
    return redact_text(red, "x " + v).out == "x [REDACTED:known-secret]";
  };
  CHECK(masked(v1));
  CHECK_FALSE(masked(v2));
  CHECK(r.reloads_configured());

  // Rotate: v2 is new, v1 stays masked within the grace.
  std::ofstream(file, std::ios::trunc) << v2 << "\n";
  uint64_t gen = r.holder().generation();
  REQUIRE(r.reload_now(nullptr));
  CHECK(r.holder().generation() == gen + 1);
  CHECK(masked(v2));
  CHECK(masked(v1));
  ReloadCounts k = r.last_counts();
  CHECK(k.values == 1);
  CHECK(k.added == 1);
  CHECK(k.removed == 1);
  CHECK(k.in_grace == 1);

  // A failing command keeps the last good set, and says so in an alert.
  std::ofstream(file, std::ios::trunc) << "";
  fs::remove(file);  // cat fails: exit status 1
  struct Recorder : AlertSink {
    std::vector<std::string> kinds, messages;
    void finding(const Finding&, const AlertContext&) override {}
    void incident(const std::string& k, const std::string& m, const AlertContext&) override {
      kinds.push_back(k);
      messages.push_back(m);
    }
  } rec;
  gen = r.holder().generation();
  CHECK_FALSE(r.reload_now(&rec));
  CHECK(r.holder().generation() == gen);
  CHECK(masked(v2));
  REQUIRE(rec.kinds == std::vector<std::string>{"reload-failed"});
  CHECK(rec.messages[0] == "cat exited with status 1");

  // Past --max-secret-age without a successful refresh: stale.
  CHECK_FALSE(r.stale());
  now = t0 + std::chrono::minutes(11);
  CHECK(r.stale());
  // The grace runs out; a successful refresh drops v1 and is fresh again.
  std::ofstream(file) << v2 << "\n";
  now = t0 + std::chrono::hours(2);
  REQUIRE(r.reload_now(&rec));
  CHECK_FALSE(r.stale());
  CHECK(masked(v2));
  CHECK_FALSE(masked(v1));
  CHECK(r.last_counts().expired == 1);
  CHECK(rec.kinds.back() == "reload");
  CHECK(rec.messages.back() == "secrets reloaded: 1 values (0 added, 0 removed), 0 in grace, 1 expired, 0 rules");
  for (const auto& m : rec.messages) {
    CHECK(m.find(v1) == std::string::npos);
    CHECK(m.find(v2) == std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("Reloader: the first build fails clearly when a command fails", "[secrets][reload]") {
  EngineConfig c;
  c.no_builtin_rules = true;
  c.no_env_secrets = true;
  c.no_cache = true;
  c.secrets_cmds = {"exit 4"};
  try {
    Reloader r(c, nullptr);
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) == "--secrets-cmd failed: exit exited with status 4");
  }
}
