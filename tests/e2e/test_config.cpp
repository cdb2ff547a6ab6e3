// End-to-end: --config files and `mcp-scrub config check`.
#include <catch2/catch.hpp>

#include "run.h"

using namespace scrub::test;

TEST_CASE("config file: --config holds the options and the command line overrides it", "[e2e][config]") {
  TempDir d;
  const std::string v = "Cf9Hj2Kl7Mn4Bv8Cx3Zq";  // fake
  std::string cfg = d.file("scrub.toml",
                           "# options as in the command line, without the dashes\n"
                           "no-builtin-rules = true\n"
                           "no-env-secrets = true\n"
                           "secret-env = [\"CFG_TEST_VALUE\"]\n"
                           "mask = \"fixed\"\n"
                           "mask-text = \"<hidden>\"\n"
                           "fingerprint-key = \"" + d.file("k", "0123456789abcdef0123456789abcdef\n") + "\"\n");
  RunOptions o;
  o.input = "x " + v + " y\n";
  o.extra_env = {"CFG_TEST_VALUE=" + v};
  RunResult r = run({bin(), "--config", cfg, "--", "cat"}, o);
  CHECK(r.status == 0);
  CHECK(r.out == "x <hidden> y\n");
  RunResult over = run({bin(), "--config", cfg, "--mask", "label", "--", "cat"}, o);
  CHECK(over.out == "x [REDACTED:known-secret] y\n");
}

TEST_CASE("config check validates and prints the effective configuration, masked", "[e2e][config]") {
  TempDir d;
  const std::string v = "Ck5Lp8Qw2Er7Ty4Ui9Op";  // fake
  std::string cfg = d.file("scrub.toml",
                           "no-builtin-rules = true\n"
                           "no-env-secrets = true\n"
                           "secrets-cmd = [\"echo " + v + "\"]\n"
                           "rotation-grace = \"2h\"\n"
                           "fingerprint-key = \"" + d.file("k", "0123456789abcdef0123456789abcdef\n") + "\"\n");
  RunResult r = run({bin(), "config", "check", cfg});
  CHECK(r.status == 0);
  CHECK(r.out.find("secrets-cmd=\"echo [REDACTED:known-secret]\"\n") != std::string::npos);
  CHECK(r.out.find("rotation-grace=\"2h\"\n") != std::string::npos);
  CHECK(r.out.find("# valid: 0 rules, 1 known secret values\n") != std::string::npos);
  CHECK(r.out.find(v) == std::string::npos);

  SECTION("the subcommands' sections are read, their keys checked") {
    std::string ok = d.file("sections.toml",
                            "no-builtin-rules = true\n"
                            "no-env-secrets = true\n"
                            "fingerprint-key = \"" + d.file("k2", "0123456789abcdef0123456789abcdef\n") +
                                "\"\n"
                            "[filter]\nformat = \"json\"\n"
                            "[tcp]\nbuffer-budget = 4194304\nmax-connections = 10\n");
    RunResult g = run({bin(), "config", "check", ok});
    INFO(g.err);
    CHECK(g.status == 0);
    CHECK(g.out.find("tcp.buffer-budget=4194304\n") != std::string::npos);
    CHECK(g.out.find("tcp.max-connections=10\n") != std::string::npos);
    CHECK(g.out.find("filter.format=\"json\"\n") != std::string::npos);
    std::string bad = d.file("bad_section.toml", "[tcp]\nno-such-option = 1\n");
    RunResult b = run({bin(), "config", "check", bad});
    CHECK(b.status == 2);
    CHECK(b.err.find("no-such-option") != std::string::npos);
  }
  SECTION("an unknown key is an error") {
    std::string bad = d.file("bad.toml", "no-such-option = 1\n");
    RunResult b = run({bin(), "config", "check", bad});
    CHECK(b.status == 2);
    CHECK(b.err.find("no-such-option") != std::string::npos);
  }
  SECTION("a failing secrets command is an error") {
    std::string bad = d.file("bad.toml", "no-builtin-rules = true\nsecrets-cmd = [\"exit 9\"]\n");
    RunResult b = run({bin(), "config", "check", bad});
    CHECK(b.status == 2);
    CHECK(b.err == "mcp-scrub: error: --secrets-cmd failed: exit exited with status 9\n");
  }
}
