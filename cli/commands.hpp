// The operator commands (DESIGN.md, "Operations" → CLI): `tocsin endpoints …`,
// `tocsin send`, `tocsin dead-letters …`, thin clients of the daemon's HTTP
// API (see api_client).
#pragma once

#include <memory>
#include <optional>

namespace CLI {
class App;
} // namespace CLI

namespace tocsin::cli {

class operator_cli {
public:
  /// Adds the commands to `app`. Parsing one only records what to do; usage
  /// errors surface from parsing as CLI::ParseError.
  explicit operator_cli(CLI::App& app);
  ~operator_cli();

  operator_cli(const operator_cli&) = delete;
  operator_cli& operator=(const operator_cli&) = delete;

  /// After parsing: runs the command that was given and returns its exit code
  /// (0; 1 for an error answer, a connection failure or an unreadable input),
  /// or nullopt when none of these commands was given.
  std::optional<int> run();

  struct state;

private:
  std::unique_ptr<state> state_;
};

} // namespace tocsin::cli
