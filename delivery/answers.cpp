#include "delivery/answers.hpp"

#include "common/ids.hpp"
#include "common/json_parse.hpp"
#include "common/json_writer.hpp"
#include "common/metric_families.hpp"
#include "delivery/own_records.hpp"

#include <nlohmann/json.hpp>

#include <unordered_set>

namespace tocsin::delivery {

namespace {

/// The events an escalation was derived from as its body lists them
/// (details.escalation.event_ids: all of them in escalations recorded before
/// storage::store::members_of, the newest 100 since); none for any
/// other event.
std::vector<std::string> episode_of(const storage::event_record& rec) {
  std::vector<std::string> ids;
  nlohmann::json body;
  if (!parse_json(rec.body, body, nullptr, stored_json_limits) ||
      !body.is_object())
    return ids;
  auto details = body.find("details");
  if (details == body.end() || !details->is_object())
    return ids;
  auto esc = details->find("escalation");
  if (esc == details->end() || !esc->is_object())
    return ids;
  auto listed = esc->find("event_ids");
  if (listed == esc->end() || !listed->is_array())
    return ids;
  for (auto& id : *listed)
    if (id.is_string() && is_valid_id(id.get_ref<const std::string&>(), "evt"))
      ids.push_back(id.get<std::string>());
  return ids;
}

/// Whether a receipt names the message at (channel, ts).
bool names_message(const std::string& receipt, const std::string& channel,
                   const std::string& ts) {
  if (receipt.empty() || channel.empty() || ts.empty())
    return false;
  nlohmann::json j;
  if (!parse_json(receipt, j) || !j.is_object())
    return false;
  return j.value("channel", "") == channel && j.value("ts", "") == ts;
}

/// A trigger (not a notice) that reached its endpoint.
bool delivered_trigger(const storage::delivery& d) {
  return d.news.state == storage::event_state::open &&
         d.state == storage::delivery_state::delivered;
}

storage::record_kind kind_of(storage::event_state s) {
  return s == storage::event_state::resolved
             ? storage::record_kind::event_resolved
             : storage::record_kind::event_acknowledged;
}

} // namespace

answers::answers(storage::store& log, const std::vector<route>& routes,
                 std::size_t max_payload_bytes, pending_commit& pending)
    : log_(log), routes_(routes), max_payload_bytes_(max_payload_bytes),
      pending_(pending) {}

result<std::optional<storage::event_record>>
answers::read_event(const std::string& id) {
  if (auto it = pending_.answered.find(id); it != pending_.answered.end())
    return std::optional<storage::event_record>{it->second};
  auto ev = log_.get_event(id);
  if (!ev)
    return error{"store_unavailable", ev.error().message};
  return std::move(*ev);
}

result<bool> answers::was_sent(const storage::event_record& rec,
                               const answer_request& req) {
  for (auto& id : rec.delivery_ids) {
    auto d = log_.get_delivery(id);
    if (!d)
      return error{"store_unavailable", d.error().message};
    if (!*d || !delivered_trigger(**d))
      continue;
    auto* r = route_to((*d)->endpoint_id);
    if (r && r->transport == req.only_if_sent_by)
      return true;
  }
  return false;
}

const route* answers::route_to(const std::string& endpoint_id) const {
  for (auto& r : routes_)
    if (r.endpoint_id == endpoint_id)
      return &r;
  return nullptr;
}

void answers::add_notice(storage::event_record& rec, const route& r,
                         storage::notice news, unix_ms now) {
  auto n = new_delivery(rec.id, r.endpoint_id, now);
  n.news = std::move(news);
  rec.delivery_ids.push_back(n.id);
  auto content = make_event_content(rec, max_payload_bytes_);
  auto place = r.place(severity_rank_of(content.get()), now);
  pending_.batch.delivery_created(n, place);
  pending_.hand_over(r.endpoint_id,
                     job_of(std::move(n), std::move(content), place));
}

result<answer_outcome> answers::answer(const answer_request& req, unix_ms now) {
  auto first = read_event(req.event_id);
  if (!first)
    return first.error();
  if (!*first)
    return error{"not_found", "no event " + req.event_id};
  // A receiver answers only for what it was sent: a signed webhook or click
  // naming another event changes nothing.
  if (!req.only_if_sent_by.empty()) {
    auto sent = was_sent(**first, req);
    if (!sent)
      return sent.error();
    if (!*sent)
      return error{"not_sent_there", "event " + req.event_id +
                                         " was never delivered to a " +
                                         req.only_if_sent_by + " endpoint"};
  }
  // Answering an escalation answers its episode: the events it was derived
  // from (those retention has not removed yet). Answering one of those
  // answers the escalations derived from it (not their other events).
  // The store keeps every member; an escalation recorded before it did
  // lists them all in its body.
  auto members = log_.members_of(req.event_id);
  if (!members)
    return error{"store_unavailable", members.error().message};
  auto episode = members->empty() ? episode_of(**first) : std::move(*members);
  auto containing = log_.escalations_of(req.event_id);
  if (!containing)
    return error{"store_unavailable", containing.error().message};
  episode.insert(episode.begin(), containing->begin(), containing->end());

  // The answer on each event it changes: open -> acknowledged -> resolved,
  // never back (a second click, or an acknowledgement of a resolved event,
  // changes nothing).
  answer_outcome out;
  std::vector<storage::event_record> changed;
  std::unordered_set<std::string> seen;
  auto take = [&](storage::event_record rec) {
    answered_event e;
    e.event_id = rec.id;
    auto was = rec.state();
    if (was >= req.state) {
      e.state = was;
      e.answers = rec.answers;
    } else {
      storage::event_answer a{req.state, req.by, req.source, req.note, now, {}};
      if (rec.id != req.event_id)
        a.via = req.event_id;
      rec.answers.push_back(std::move(a));
      e.state = req.state;
      e.changed = true;
      e.answers = rec.answers;
      changed.push_back(std::move(rec));
    }
    out.events.push_back(std::move(e));
  };
  seen.insert(req.event_id);
  take(std::move(**first));
  for (auto& id : episode) {
    if (!seen.insert(id).second)
      continue;
    auto ev = read_event(id);
    if (!ev)
      return ev.error();
    if (*ev)
      take(std::move(**ev));
  }
  if (changed.empty())
    return out;

  // The notices. Endpoints that post messages and cannot edit them get one
  // per answer: about the event answered when they were sent it, else the
  // first of the episode they were sent.
  auto along = static_cast<std::uint32_t>(changed.size() - 1);
  std::unordered_set<std::string> told; // message endpoints with their one
  bool replied = false;
  std::vector<std::size_t> notices(changed.size(), 0);
  for (std::size_t i = 0; i < changed.size(); ++i) {
    auto& rec = changed[i];
    bool lead = i == 0;
    auto sent = rec.delivery_ids; // rec gains the notices' ids
    for (auto& dlv_id : sent) {
      auto d = log_.get_delivery(dlv_id);
      if (!d)
        return error{"store_unavailable", d.error().message};
      // Only an endpoint that got the event itself hears of the answer: an
      // acknowledgement of an incident that does not exist yet would be
      // lost (follow_up tells those whose trigger is still on its way).
      if (!*d || !delivered_trigger(**d))
        continue;
      auto* r = route_to((*d)->endpoint_id);
      if (!r || !r->follows_state)
        continue;
      storage::notice news{req.state, req.by, now, {}, (*d)->receipt, 0};
      if (r->posts_messages && (*d)->receipt.empty()) {
        if (!told.insert(r->endpoint_id).second)
          continue;
        news.along = along;
        bool clicked_here = !req.reply_url.empty() && rec.id == req.event_id &&
                            r->transport == req.reply_transport && !replied;
        if (clicked_here) {
          news.reply_url = req.reply_url;
          replied = true;
        }
      } else if (r->posts_messages) {
        // A message it can edit: each answered event's own, in place.
        if (lead)
          news.along = along;
        // The clicked message is this one: edited, so the click's
        // response_url has nothing left to replace.
        if (rec.id == req.event_id &&
            names_message((*d)->receipt, req.clicked_channel, req.clicked_ts))
          replied = true;
      }
      add_notice(rec, *r, std::move(news), now);
      ++notices[i];
    }
  }

  for (std::size_t i = 0; i < changed.size(); ++i) {
    auto& rec = changed[i];
    json_writer fields;
    fields.begin_object()
        .field("event_id", rec.id)
        .field("by", req.by)
        .field("source", req.source);
    if (rec.id != req.event_id)
      fields.field("via", req.event_id);
    if (!req.note.empty())
      fields.field("note", req.note);
    fields.field("notices", static_cast<std::int64_t>(notices[i])).end_object();
    pending_.batch.event_changed(rec, kind_of(req.state), fields.take());
    for (auto& e : out.events)
      if (e.event_id == rec.id)
        e.notices = notices[i];
    pending_.on_commit.push_back(&metrics::families::acknowledgements().with(
        {req.source, std::string{storage::to_string(req.state)}}));
    pending_.answered.insert_or_assign(rec.id, std::move(rec));
  }
  return out;
}

result<bool> answers::follow_up(const std::string& event_id,
                                const std::string& endpoint_id, unix_ms now) {
  auto ev = read_event(event_id);
  if (!ev)
    return ev.error();
  if (!*ev || (*ev)->state() == storage::event_state::open)
    return false;
  auto& rec = **ev;
  auto* r = route_to(endpoint_id);
  if (!r || !r->follows_state)
    return false;
  auto state = rec.state();
  std::string receipt;
  for (auto& id : rec.delivery_ids) {
    auto d = log_.get_delivery(id);
    if (!d)
      return error{"store_unavailable", d.error().message};
    if (!*d || (*d)->endpoint_id != endpoint_id)
      continue;
    if ((*d)->news.state == state)
      return false; // told already
    if (delivered_trigger(**d))
      receipt = (*d)->receipt;
  }
  auto& last = rec.answers.back();
  // An event answered along with another was told in that one's message.
  if (r->posts_messages && receipt.empty() && !last.via.empty())
    return false;
  add_notice(rec, *r, {state, last.by, last.at, {}, receipt, 0}, now);
  json_writer fields;
  fields.begin_object()
      .field("event_id", rec.id)
      .field("endpoint_id", endpoint_id)
      .field("notice", storage::to_string(state))
      .end_object();
  // The event again (its new delivery listed), logged as the answer it
  // carries the news of.
  pending_.batch.event_changed(rec, kind_of(state), fields.take());
  pending_.answered.insert_or_assign(rec.id, std::move(rec));
  return true;
}

} // namespace tocsin::delivery
