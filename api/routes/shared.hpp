// What the API's route units (api/routes/*.cpp) share: JSON answers, the
// readers of a request's body and query, and the API's views of stored
// deliveries and answers. Defined in api/handler.cpp, next to the router.
#pragma once

#include "api/handler.hpp"
#include "common/result.hpp"
#include "delivery/answer.hpp"
#include "storage/records.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace tocsin::api::shared {

using json = nlohmann::ordered_json;

response json_response(int status, const json& body);

/// "a=1&b=2" -> value of `key` (decoded), or empty.
std::string query_param(std::string_view query, std::string_view key);

bool is_json_content_type(std::string_view ct);

json attempt_json(const storage::attempt& a);
json delivery_json(const storage::delivery& d);
json answer_json(const storage::event_answer& a);

/// "state" and, once answered, "acknowledged" and "resolved" (who, when,
/// from where) of an event.
void add_answers(json& j, storage::event_state state,
                 const std::vector<storage::event_answer>& answers);

extern const error store_failure;

int status_of(const error& e);

/// The JSON body of a POST or PATCH; an empty body is `{}` when allowed.
result<json> json_body(const request& req, bool empty_ok);

response body_error(const error& e);

/// The path's segments: "/v1/endpoints/ops" -> {"v1", "endpoints", "ops"}.
/// One trailing slash is ignored; an empty segment never matches a route.
std::vector<std::string_view> segments_of(std::string_view path);

/// What the engine answered, as the API shows it: the event, and the events
/// of its escalation episode that were answered with it.
json outcome_json(const delivery::answer_outcome& out);

int answer_status(const error& e);

} // namespace tocsin::api::shared
