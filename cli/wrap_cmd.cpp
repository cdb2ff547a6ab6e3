// The stdio wrap: `mcp-scrub [OPTIONS] -- COMMAND [ARGS...]`. (Built in the next step.)
#include <spdlog/spdlog.h>

#include "cli/commands.h"

namespace scrub {

CommandRunner register_wrap(CLI::App& app, std::vector<std::string>& command, char** envp) {
  return [&command]() -> int {
    spdlog::error("wrapping '{}': the stdio proxy is not built yet", command.front());
    return kExitUsage;
  };
}

}  // namespace scrub
