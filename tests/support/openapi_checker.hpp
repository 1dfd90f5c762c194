// Checks a server's answers against its OpenAPI 3.1 description (the JSON
// form), for the tests: the request's route and the answer's status must
// be documented, its Content-Type one of the documented media types, and
// its body valid against the documented schema (or empty where none is).
//
// The JSON Schema it knows (enough for docs/openapi.yaml, and strict about
// the rest): local $ref, boolean schemas, type (a name or a list, "null",
// "integer"), properties, required, additionalProperties, items, enum,
// const, oneOf, anyOf, allOf, not, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minLength, maxLength (in code points), minItems,
// maxItems, pattern (ECMAScript), format date-time and uri. A keyword it
// does not know is reported as a problem rather than skipped: a schema
// that says more than the checker reads would pass answers it should not.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tocsin::test {

class openapi_checker {
public:
  /// `description`: an OpenAPI 3.1 document (throws std::invalid_argument
  /// when it has no "paths" object).
  explicit openapi_checker(nlohmann::json description);

  /// The template in `paths` that `path` (no query) matches, e.g.
  /// "/v1/events/{id}" for "/v1/events/evt_1"; a literal template wins
  /// over one with a parameter in the same place.
  std::optional<std::string> path_of(std::string_view path) const;

  /// Problems with one answer (empty: none). `target` may carry a query;
  /// `content_type` is the answer's header. Records the operation and
  /// status as seen.
  std::vector<std::string> check_answer(std::string_view method,
                                        std::string_view target, int status,
                                        std::string_view content_type,
                                        std::string_view body);

  /// Problems of `instance` against `schema` (empty: valid); `where` is
  /// the instance's place in messages.
  std::vector<std::string> check(const nlohmann::json& instance,
                                 const nlohmann::json& schema,
                                 const std::string& where = "$") const;

  /// components.schemas[name] (throws std::out_of_range when absent).
  const nlohmann::json& schema(const std::string& name) const;

  /// Records an answer checked elsewhere (a websocket's 101).
  void record(std::string_view method, std::string_view path_template,
              int status);

  /// Every operation the description has, as "GET /v1/events/{id}".
  std::vector<std::string> operations() const;
  /// The operations answers were checked for, with the statuses seen.
  const std::map<std::string, std::set<int>>& seen() const { return seen_; }

private:
  const nlohmann::json& resolve(const nlohmann::json& node) const;
  void check_into(const nlohmann::json& instance, const nlohmann::json& schema,
                  const std::string& where, std::vector<std::string>& out,
                  int depth) const;

  nlohmann::json doc_;
  std::map<std::string, std::set<int>> seen_;
};

} // namespace tocsin::test
