#include "api/stream.hpp"

#include "common/encoding.hpp"
#include "common/event_types.hpp"
#include "common/json_parse.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

namespace tocsin::api {

using nlohmann::json;

namespace {

constexpr std::string_view stream_types[] = {
    "event.accepted",         "delivery.attempted", "delivery.delivered",
    "delivery.dead_lettered", "event.acknowledged", "event.resolved",
    "endpoint.health"};

/// Reads records in chunks of this many.
constexpr std::size_t chunk = 512;

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>()
                                          : std::string{};
}

} // namespace

bool is_stream_type(std::string_view type) {
  return std::find(std::begin(stream_types), std::end(stream_types), type) !=
         std::end(stream_types);
}

result<stream_filter> parse_stream_query(std::string_view query) {
  stream_filter f;
  auto bad = [](const char* field, std::string message) {
    return error{"invalid_field", std::move(message), field};
  };
  if (auto types = form_value(query, "types"); types && !types->empty()) {
    std::string_view rest = *types;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      auto t = rest.substr(0, comma);
      if (!is_stream_type(t))
        return bad("types", "unknown stream type '" + std::string{t} +
                                "' (event.accepted, delivery.attempted, "
                                "delivery.delivered, delivery.dead_lettered, "
                                "event.acknowledged, event.resolved, "
                                "endpoint.health)");
      f.types.emplace_back(t);
      if (comma == std::string_view::npos)
        break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (auto sev = form_value(query, "min_severity"); sev && !sev->empty()) {
    auto rank = severity_rank(*sev);
    if (!rank)
      return bad("min_severity",
                 "min_severity must be one of info, low, medium, high, "
                 "critical");
    f.min_severity = *rank;
  }
  if (auto ep = form_value(query, "endpoint"); ep && !ep->empty()) {
    if (ep->size() > 128)
      return bad("endpoint", "endpoint is an endpoint id (at most 128 bytes)");
    f.endpoint = *ep;
  }
  if (auto since = form_value(query, "since"); since && !since->empty()) {
    std::uint64_t v = 0;
    auto [end, ec] =
        std::from_chars(since->data(), since->data() + since->size(), v);
    if (ec != std::errc{} || end != since->data() + since->size())
      return bad("since", "since must be a sequence number (the seq of the "
                          "last frame received)");
    f.since = v;
  }
  return f;
}

bool stream_frame::matches(const stream_filter& f) const {
  if (!f.types.empty() &&
      std::find(f.types.begin(), f.types.end(), type) == f.types.end())
    return false;
  if (severity >= 0 && severity < f.min_severity)
    return false;
  if (!f.endpoint.empty() && !endpoint_id.empty() && endpoint_id != f.endpoint)
    return false;
  return true;
}

std::optional<stream_frame> frame_of(std::uint64_t seq, std::string_view record,
                                     storage::store& log) {
  json r;
  if (!parse_json(record, r, nullptr, stored_json_limits) || !r.is_object())
    return std::nullopt;
  auto kind = str(r, "kind");
  stream_frame f;
  f.seq = seq;
  json out;
  out["seq"] = seq;
  auto at = r.value("at", std::int64_t{0});
  auto add_delivery = [&] {
    out["delivery_id"] = str(r, "delivery_id");
    out["event_id"] = str(r, "event_id");
    out["endpoint_id"] = f.endpoint_id = str(r, "endpoint_id");
  };
  if (kind == "event.accepted") {
    f.type = "event.accepted";
    auto id = str(r, "event_id");
    json ev{{"id", id}};
    if (auto e = log.get_event(id); e && *e) {
      auto& rec = **e;
      std::string type, severity, agent, summary, timestamp;
      if (rec.fields) {
        type = rec.fields->type;
        severity = rec.fields->severity;
        agent = rec.fields->agent_id;
        summary = rec.fields->summary;
        timestamp = rec.fields->timestamp;
      } else if (json body;
                 parse_json(rec.body, body, nullptr, stored_json_limits) &&
                 body.is_object()) {
        type = str(body, "type");
        severity = str(body, "severity");
        agent = str(body, "agent_id");
        summary = str(body, "summary");
        timestamp = str(body, "timestamp");
      }
      ev["type"] = type;
      ev["severity"] = severity;
      if (!agent.empty())
        ev["agent_id"] = agent;
      ev["summary"] = summary;
      ev["timestamp"] = timestamp;
      f.severity = severity_rank(severity).value_or(-1);
    }
    out["event"] = std::move(ev);
    if (auto d = r.find("deliveries"); d != r.end() && d->is_array())
      out["deliveries"] = d->size();
  } else if (kind == "attempt.finished") {
    f.type = "delivery.attempted";
    add_delivery();
    if (auto a = r.find("attempt"); a != r.end() && a->is_object()) {
      out["attempt"] = a->value("number", 0);
      out["status"] = a->value("status", 0);
      out["latency_ms"] = a->value("latency_ms", 0.0);
      if (auto e = str(*a, "error"); !e.empty())
        out["error"] = e;
    }
    out["state"] = str(r, "state");
    if (auto n = str(r, "notice"); !n.empty())
      out["notice"] = n;
  } else if (kind == "delivery.delivered" || kind == "delivery.dead_lettered") {
    f.type = kind;
    add_delivery();
    if (auto reason = str(r, "reason"); !reason.empty())
      out["reason"] = reason;
  } else if (kind == "event.acknowledged" || kind == "event.resolved") {
    if (r.contains("notice"))
      return std::nullopt; // a notice sent late, not a new answer
    f.type = kind;
    out["event_id"] = str(r, "event_id");
    out["by"] = str(r, "by");
    out["source"] = str(r, "source");
    if (auto note = str(r, "note"); !note.empty())
      out["note"] = note;
  } else if (kind == "endpoint.circuit_opened" ||
             kind == "endpoint.circuit_closed" || kind == "endpoint.flagged") {
    f.type = "endpoint.health";
    out["endpoint_id"] = f.endpoint_id = str(r, "endpoint_id");
    if (kind == "endpoint.flagged") {
      out["flagged"] = true;
      out["reason"] = str(r, "reason");
    } else {
      out["circuit"] = kind == "endpoint.circuit_opened" ? "open" : "closed";
      if (r.contains("failures"))
        out["failures"] = r["failures"];
    }
  } else {
    return std::nullopt;
  }
  out["type"] = f.type;
  out["at"] = format_rfc3339(at);
  f.json = out.dump(-1, ' ', false, json::error_handler_t::replace);
  return f;
}

// -- subscriptions ------------------------------------------------------------

std::vector<std::shared_ptr<const std::string>>
stream_subscription::take(std::size_t max) {
  std::lock_guard lock{mtx_};
  std::vector<std::shared_ptr<const std::string>> out;
  while (!queue_.empty() && out.size() < max) {
    out.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  // The frames dropped came after those that were queued: said after them.
  if (queue_.empty() && dropped_ > 0) {
    out.push_back(std::make_shared<const std::string>(
        R"({"type":"stream.lagged","dropped":)" + std::to_string(dropped_) +
        "}"));
    dropped_ = 0;
  }
  waiting_ = out.empty();
  return out;
}

std::uint64_t stream_subscription::dropped_total() const {
  std::lock_guard lock{mtx_};
  return dropped_total_;
}

void stream_subscription::push(std::shared_ptr<const std::string> frame) {
  bool notify = false;
  {
    std::lock_guard lock{mtx_};
    if (queue_.size() >= capacity_) {
      ++dropped_;
      ++dropped_total_;
    } else {
      queue_.push_back(std::move(frame));
    }
    notify = waiting_;
    waiting_ = false;
  }
  if (notify && notify_)
    notify_();
}

std::size_t stream_subscription::room() const {
  std::lock_guard lock{mtx_};
  return queue_.size() >= capacity_ ? 0 : capacity_ - queue_.size();
}

// -- the hub ------------------------------------------------------------------

stream_hub::stream_hub(storage::store& log, stream_options opts)
    : log_(log), opts_(opts), next_(log.last_sequence() + 1),
      thread_([this] { run(); }) {}

stream_hub::~stream_hub() {
  {
    std::lock_guard lock{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

result<std::shared_ptr<stream_subscription>>
stream_hub::subscribe(stream_filter filter, std::function<void()> notify) {
  auto s = std::make_shared<stream_subscription>(
      std::move(filter), opts_.queue_capacity, std::move(notify));
  if (s->filter().since)
    s->cursor_ = *s->filter().since + 1;
  {
    std::lock_guard lock{mtx_};
    std::erase_if(subs_, [](auto& x) { return x->closed(); });
    if (subs_.size() >= opts_.max_clients)
      return error{"too_many_clients", "the stream has " +
                                           std::to_string(subs_.size()) +
                                           " clients already; try again later"};
    subs_.push_back(s);
  }
  cv_.notify_all();
  return s;
}

std::size_t stream_hub::clients() const {
  std::lock_guard lock{mtx_};
  return static_cast<std::size_t>(std::count_if(
      subs_.begin(), subs_.end(), [](auto& s) { return !s->closed(); }));
}

void stream_hub::run() {
  for (;;) {
    {
      std::unique_lock lock{mtx_};
      cv_.wait_for(lock, opts_.poll, [&] { return stopping_; });
      if (stopping_)
        return;
    }
    try {
      step();
    } catch (const std::exception& e) {
      log::error("stream: a step failed", {{"error", e.what()}});
    }
  }
}

void stream_hub::step() {
  std::vector<std::shared_ptr<stream_subscription>> subs;
  {
    std::lock_guard lock{mtx_};
    std::erase_if(subs_, [](auto& x) { return x->closed(); });
    subs = subs_;
  }
  auto last = log_.last_sequence();
  bool live = std::any_of(subs.begin(), subs.end(),
                          [](auto& s) { return !s->cursor_; });
  if (!live)
    next_ = last + 1; // nobody to tell: nothing to read
  // Clients resuming from the log: a chunk each while they have room, up to
  // where the live feed is; the one that gets there joins it.
  for (auto& s : subs)
    if (s->cursor_)
      catch_up(*s);
  if (!live)
    return;
  while (next_ <= last) {
    std::vector<std::pair<std::uint64_t, std::string>> records;
    auto st =
        log_.read_log(next_, [&](std::uint64_t seq, std::string_view rec) {
          if (seq > last)
            return false;
          records.emplace_back(seq, rec);
          return records.size() < chunk;
        });
    if (!st || records.empty()) {
      next_ = last + 1; // retention removed them, or the read failed
      return;
    }
    for (auto& [seq, rec] : records) {
      next_ = seq + 1;
      auto f = frame_of(seq, rec, log_);
      if (!f)
        continue;
      auto text = std::make_shared<const std::string>(std::move(f->json));
      f->json.clear();
      for (auto& s : subs)
        if (!s->cursor_ && f->matches(s->filter()))
          s->push(text);
    }
  }
}

void stream_hub::catch_up(stream_subscription& s) {
  auto room = s.room();
  if (room == 0)
    return; // it will have room once its client reads
  auto from = *s.cursor_;
  std::size_t pushed = 0;
  auto st = log_.read_log(from, [&](std::uint64_t seq, std::string_view rec) {
    if (seq >= next_)
      return false; // live from here on
    s.cursor_ = seq + 1;
    if (auto f = frame_of(seq, rec, log_); f && f->matches(s.filter())) {
      s.push(std::make_shared<const std::string>(std::move(f->json)));
      ++pushed;
    }
    return pushed < room && pushed < chunk;
  });
  if (!st) {
    log::warn("stream: a client's catch-up read failed",
              {{"error", st.error().message}});
    s.cursor_.reset();
    return;
  }
  if (*s.cursor_ >= next_ || from == *s.cursor_)
    s.cursor_.reset(); // caught up (or nothing left to read): live
}

} // namespace tocsin::api
