// libFuzzer target for the request path a client controls: the checks of a
// raw request head (the whole input), then the API router (auth, routing,
// query parsing), event validation and endpoint definitions, and the stream's
// websocket upgrade (token, subprotocols, filters), with an engine and a
// store that accept everything; that event validation's two readers agree;
// and the decision made from the head before any body is read
// (check_head): a refusal is one of 401, 403, 404, 405, 413 and, but for
// 413, the status the whole request gets; what it lets through fits the
// route's limit. Input: "METHOD\nTARGET\n
// CONTENT-TYPE\nAUTHORIZATION\nIDEMPOTENCY-KEY\nBODY"; the content-type
// line doubles as the integrations' signature headers, the idempotency-key
// line as Slack's timestamp, the body's size as the Content-Length (none:
// chunked, when the body starts with '~').
#include "api/event_validation.hpp"
#include "api/handler.hpp"
#include "api/http_head.hpp"

#include "common/encoding.hpp"
#include "tests/support/fakes.hpp"
#include "tests/support/same_events.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

using namespace tocsin;

std::string_view next_line(std::string_view& in) {
  auto nl = in.find('\n');
  auto line = in.substr(0, nl);
  in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  return line;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  static test::fake_engine engine;
  static test::empty_log log = [] {
    // One stored endpoint, "ops", so that PATCH and rotate-secret get past
    // the lookup into validation.
    test::empty_log l;
    auto def = endpoints::create_endpoint(
        {{"id", "ops"}, {"url", "https://hooks.example/in"}}, {}, 1);
    l.endpoint_id = "ops";
    l.endpoint_definition = endpoints::to_stored_json(*def);
    return l;
  }();
  // The stream's hub over an empty store: what open_stream checks against.
  static api::stream_hub hub{log};
  static api::request_handler handler{
      engine, log,
      api::authenticator{{{"admin", hex_encode(sha256("token")), "admin"}}},
      [] {
        api::handler_options o;
        o.audit_url_template = "https://audit.example/receipts/{receipt_id}";
        o.stream = &hub;
        o.slack_signing_secret = "slack-secret";
        o.pagerduty_webhook_secret = "pagerduty-secret";
        o.clock = [] { return unix_ms{1795756200123}; };
        o.max_body_bytes = 300; // some bodies are over the limit
        return o;
      }()};
  std::string_view in{reinterpret_cast<const char*>(data), size};
  if (auto end = api::find_head_end(in); end && *end > in.size())
    __builtin_trap();
  (void)api::check_request_head(in);
  api::request req;
  req.method = next_line(in);
  req.target = next_line(in);
  req.content_type = next_line(in);
  req.authorization = next_line(in);
  req.idempotency_key = next_line(in);
  req.body = in;
  // Event validation reads the shape producers send without a JSON document
  // and every other body through one: where the first gives an answer, the
  // second must give the same.
  if (is_valid_utf8(in)) {
    api::validation_options o;
    o.audit_url_template = "https://audit.example/receipts/{receipt_id}";
    o.now = 1795756200123;
    o.max_payload_bytes = 300;              // some bodies are cut
    o.allow_producer_links = size % 2 == 1; // links.audit taken or refused
    if (auto plain = api::detail::read_plain_events(in, o)) {
      auto doc = api::detail::validate_events_with_document(in, o);
      if (!doc || !test::same_events(*plain, *doc))
        __builtin_trap();
    }
  }
  // The same request as a websocket upgrade of GET /v1/stream: the token
  // (header, query, subprotocols: the idempotency-key line stands for the
  // offered protocols) and the filters, checked before any upgrade.
  auto grant = handler.open_stream(req, req.idempotency_key);
  if (auto* refused = std::get_if<api::response>(&grant);
      refused && (refused->status < 400 || refused->status > 499))
    __builtin_trap();
  // The head alone, before the body: what the server decides with it.
  req.slack_signature = req.content_type;
  req.pagerduty_signature = req.content_type;
  req.slack_timestamp = req.idempotency_key;
  std::optional<std::uint64_t> length;
  if (in.empty() || in.front() != '~')
    length = in.size();
  auto head = req;
  head.body.clear();
  auto verdict = handler.check_head(head, length);
  int early = 0;
  if (verdict.refusal) {
    early = verdict.refusal->status;
    if (early != 401 && early != 403 && early != 404 && early != 405 &&
        early != 413)
      __builtin_trap();
  } else if (verdict.body_limit == 0 || verdict.body_limit > 300 ||
             (length && *length > verdict.body_limit)) {
    __builtin_trap();
  }
  bool answered = false;
  handler.handle(std::move(req), [&](api::response resp) {
    answered = true;
    if (resp.status < 200 || resp.status > 599)
      __builtin_trap();
    // Refused from the head: the whole request is refused alike.
    if (early && early != 413 && resp.status != early)
      __builtin_trap();
  });
  if (!answered) // every request is answered exactly once (synchronously here)
    __builtin_trap();
  return 0;
}
