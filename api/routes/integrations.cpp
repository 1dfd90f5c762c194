// The inbound integrations: POST /v1/integrations/slack/interactions and
// /v1/integrations/pagerduty/webhook, authenticated by the sender's
// signature (api/integrations.hpp checks and reads them).
#include "api/handler.hpp"

#include "api/integrations.hpp"
#include "api/routes/shared.hpp"
#include "common/log.hpp"
#include "common/metric_families.hpp"

namespace tocsin::api {

using namespace shared;

void request_handler::slack_interaction(call& c) {
  auto live = settings();
  auto& secret = live->slack_signing_secret;
  if (secret.empty())
    return c.respond(error_response(
        404, {"not_found", "Slack interactions are not enabled (set "
                           "slack.signing_secret)"}));
  auto& req = c.req;
  if (auto ok =
          verify_slack_request(secret, req.slack_timestamp, req.slack_signature,
                               req.body, opts_.clock());
      !ok) {
    log::warn("Slack interaction refused", {{"reason", ok.error().message}});
    return c.respond(error_response(401, ok.error()));
  }
  auto clicks =
      parse_slack_interaction(req.body, live->slack_response_url_hosts);
  if (!clicks)
    return c.respond(error_response(400, clicks.error()));
  // Slack wants its answer within 3 s: it gets it now, and the
  // acknowledgement is recorded (and the message replaced) after.
  c.respond(response{200, "", {}});
  for (auto& click : *clicks) {
    // Whole at once: member by member, gcc -O1 takes a field for unset
    // (-Wmaybe-uninitialized) in this unit.
    delivery::answer_request a{.event_id = click.event_id,
                               .state = click.state,
                               .by = click.user,
                               .source = "slack",
                               .note = {},
                               .reply_url = click.response_url,
                               .reply_transport = "slack",
                               .clicked_channel = click.channel,
                               .clicked_ts = click.message_ts,
                               .only_if_sent_by = "slack"};
    engine_.answer(std::move(a), [event = click.event_id](
                                     result<delivery::answer_outcome> out) {
      if (!out && out.error().code == "not_sent_there") {
        metrics::families::answers_ignored().with({"slack"}).add();
        return log::warn("Slack click about an event never sent to Slack "
                         "ignored",
                         {{"event", event}});
      }
      if (!out)
        return log::warn("Slack answer not recorded",
                         {{"event", event}, {"error", out.error().message}});
      if (!out->events.at(0).changed)
        log::info("Slack answer to an event already in that state",
                  {{"event", event},
                   {"state",
                    std::string{storage::to_string(out->events.at(0).state)}}});
    });
  }
}

void request_handler::pagerduty_webhook(call& c) {
  auto live = settings();
  auto& secret = live->pagerduty_webhook_secret;
  if (secret.empty())
    return c.respond(error_response(
        404, {"not_found", "PagerDuty webhooks are not enabled (set "
                           "pagerduty.webhook_secret)"}));
  auto& req = c.req;
  if (auto ok =
          verify_pagerduty_request(secret, req.pagerduty_signature, req.body);
      !ok) {
    log::warn("PagerDuty webhook refused", {{"reason", ok.error().message}});
    return c.respond(error_response(401, ok.error()));
  }
  auto changes = parse_pagerduty_webhook(req.body);
  if (!changes)
    return c.respond(error_response(400, changes.error()));
  if (changes->empty())
    return c.respond(json_response(200, json{{"recorded", 0}}));
  // Answered once recorded: PagerDuty retries a webhook that failed.
  auto change = std::move(changes->front());
  delivery::answer_request a;
  a.event_id = change.event_id;
  a.state = change.state;
  a.by = change.by;
  a.source = "pagerduty";
  a.only_if_sent_by = "pagerduty";
  engine_.answer(
      std::move(a), [respond = std::move(c.respond), event = change.event_id](
                        result<delivery::answer_outcome> out) {
        if (!out && out.error().code == "not_sent_there") {
          // Signed by PagerDuty, about an incident tocsin never opened: nothing
          // to retry, nothing changed.
          metrics::families::answers_ignored().with({"pagerduty"}).add();
          log::warn("PagerDuty webhook about an event never sent to PagerDuty "
                    "ignored",
                    {{"event", event}});
          return respond(json_response(200, json{{"recorded", 0}}));
        }
        if (!out) {
          // An incident of an event tocsin no longer has: nothing to retry.
          if (answer_status(out.error()) == 404)
            return respond(json_response(200, json{{"recorded", 0}}));
          return respond(error_response(503, out.error()));
        }
        respond(json_response(
            200, json{{"recorded", 1}, {"event", outcome_json(*out)}}));
      });
}

} // namespace tocsin::api
