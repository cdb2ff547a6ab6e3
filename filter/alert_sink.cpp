#include "filter/alert_sink.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <mutex>

#include "filter/engine_holder.h"

namespace scrub {

std::string utc_timestamp() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

namespace {

void add_context(nlohmann::ordered_json& j, const AlertContext& ctx) {
  if (!ctx.source.empty()) j["source"] = ctx.source;
  if (ctx.line) j["line"] = ctx.line;
  if (!ctx.direction.empty()) j["direction"] = ctx.direction;
  if (!ctx.method.empty()) j["method"] = ctx.method;
  if (!ctx.id.empty()) j["id"] = ctx.id;
  if (!ctx.tool.empty()) j["tool"] = ctx.tool;
}

class JsonAlertSink : public AlertSink {
 public:
  explicit JsonAlertSink(std::shared_ptr<spdlog::logger> logger) : logger_(std::move(logger)) {
    logger_->set_pattern("%v");
    logger_->set_level(spdlog::level::info);
    logger_->flush_on(spdlog::level::info);
  }
  void set_context_masker(ContextMasker masker) override {
    std::lock_guard<std::mutex> l(mask_mu_);
    masker_ = std::move(masker);
  }
  void finding(const Finding& f, const AlertContext& ctx) override {
    logger_->info(alert_json(f, masked(ctx)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  void incident(const std::string& kind, const std::string& message,
                const AlertContext& ctx) override {
    nlohmann::ordered_json j;
    j["time"] = utc_timestamp();
    j["event"] = kind;
    j["message"] = message;
    add_context(j, masked(ctx));
    logger_->info(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  void flush() override { logger_->flush(); }

 private:
  AlertContext masked(const AlertContext& ctx) {
    AlertContext out = ctx;
    if (ctx.method.empty() && ctx.id.empty() && ctx.tool.empty()) return out;
    std::lock_guard<std::mutex> l(mask_mu_);
    // No masker yet (the engine is still loading): the fields are left out, not printed unscanned.
    for (std::string* field : {&out.method, &out.id, &out.tool})
      if (!field->empty()) *field = masker_ ? masker_(*field) : std::string();
    return out;
  }

  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mask_mu_;
  ContextMasker masker_;  // guarded by mask_mu_
};

class NullAlertSink : public AlertSink {
 public:
  void finding(const Finding&, const AlertContext&) override {}
  void incident(const std::string&, const std::string&, const AlertContext&) override {}
};

}  // namespace

ContextMasker make_context_masker(const EngineHolder& holder) {
  // The sink calls it under its own lock: one redactor, never two threads at once.
  auto redactor = std::make_shared<FollowingRedactor>(holder);
  return [redactor](std::string_view field) { return redactor->current().printable_text(field); };
}

nlohmann::ordered_json alert_json(const Finding& f, const AlertContext& ctx) {
  nlohmann::ordered_json j;
  j["time"] = utc_timestamp();
  j["event"] = "finding";
  j["rule"] = f.rule_id;
  if (!f.secret_name.empty()) j["secret"] = f.secret_name;
  add_context(j, ctx);
  if (!f.json_path.empty()) j["path"] = f.json_path;
  j["offset"] = f.offset;
  j["length"] = f.length;
  j["fingerprint"] = f.fingerprint;
  j["severity"] = to_string(f.severity);
  j["action"] = to_string(f.action);
  if (f.encoded) j["encoded"] = true;
  return j;
}

std::unique_ptr<AlertSink> make_json_alert_sink(const std::string& path) {
  static int counter = 0;
  std::string name = "alerts-" + std::to_string(++counter);
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (path == "-") {
      logger = std::make_shared<spdlog::logger>(
          name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
    } else {
      logger = std::make_shared<spdlog::logger>(
          name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false));
    }
  } catch (const spdlog::spdlog_ex& e) {
    throw ConfigError("--alerts " + path + ": cannot open: " + e.what());
  }
  return std::make_unique<JsonAlertSink>(std::move(logger));
}

std::unique_ptr<AlertSink> make_null_alert_sink() { return std::make_unique<NullAlertSink>(); }

}  // namespace scrub
