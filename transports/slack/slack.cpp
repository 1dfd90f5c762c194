// The Slack transport: a Block Kit message, within Slack's limits, posted
// one of two ways. Built as a plugin against tocsin_plugin.h only.
//
// - An incoming webhook (the endpoint's URL is the webhook's): Slack's
//   plain-text answers ("ok", "invalid_payload", "channel_not_found", ...)
//   classified. The news of an answer replaces the clicked message through
//   the click's response_url, or is posted as a new message.
// - A Slack app (options.bot_token or bot_token_file, and channel; the URL
//   is Web API's chat.postMessage): posted with the bot token, Slack's
//   {"ok": ..., "error": ...} answers classified, and the message's channel
//   and ts kept with the delivery (its receipt), so that every later state
//   of the event edits that message in place (chat.update at the same URL
//   with chat.update for chat.postMessage).
//
// The message:
//   text    "[HIGH] policy.denied: <summary>"       (notification fallback)
//   blocks  header   ":red_circle: policy.denied"    (plain_text)
//           section  <summary>                       (mrkdwn; none if empty)
//           section  fields *Agent* *Severity* *Time* [*Rule* *Action*
//                    *Receipt* for policy.denied]
//           context  "Event evt_… (truncated) · acknowledged by alice ·
//                    with 5 events of this episode"
//           actions  Investigate (url = audit link, else the event on the
//                    dashboard; none without either), then by state:
//                    Acknowledge (tocsin.ack, primary) while open, Resolve
//                    (tocsin.resolve) once acknowledged, nothing once
//                    resolved; value = event id
//   channel, username, icon_emoji from the endpoint's options, if given.
//
// Every text is cut to Slack's limit counted in code points, on a code point
// boundary (never inside an &amp; entity either), with "…" counted in.
#include "tocsin_plugin.h"
#include "tocsin_plugin_util.h"

#include "common/json_parse.hpp" // header-only: the host's JSON rules

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using json = nlohmann::ordered_json;
using namespace tocsin::plugin_util;

// Slack's limits, in characters (code points).
constexpr std::size_t header_max = 150;
constexpr std::size_t section_text_max = 3000;
constexpr std::size_t fields_max = 10;
constexpr std::size_t field_text_max = 2000;
constexpr std::size_t context_text_max = 3000;
constexpr std::size_t button_text_max = 75;
constexpr std::size_t button_url_max = 3000;
constexpr std::size_t button_value_max = 2000;
constexpr std::size_t fallback_text_max = 3000;
constexpr std::size_t blocks_max = 50;
constexpr std::size_t username_max = 80;
constexpr std::size_t channel_name_max = 80;
constexpr std::size_t reason_max_bytes = 200;

// ---- UTF-8 -----------------------------------------------------------------

/// A text being built for Slack: valid UTF-8 (ill-formed input becomes
/// U+FFFD), made of units that are never split when it is cut: a code point,
/// or a whole mrkdwn entity such as "&amp;".
class slack_text {
public:
  /// Appends `s` as is (plain_text, or mrkdwn markup of our own).
  slack_text& plain(std::string_view s) { return add(s, false); }
  /// Appends `s` escaped for mrkdwn: & < > become entities, as Slack asks.
  slack_text& escaped(std::string_view s) { return add(s, true); }

  /// The text, or when it has more than `max` code points its longest
  /// prefix of whole units that fits with "…" after it.
  std::string cut(std::size_t max) const {
    if (total_ <= max)
      return bytes_;
    if (max == 0)
      return {};
    std::size_t used = 0, end = 0;
    for (auto& u : units_) {
      if (used + u.code_points > max - 1)
        break;
      used += u.code_points;
      end = u.end;
    }
    return bytes_.substr(0, end) + std::string{ellipsis};
  }

private:
  struct unit {
    std::size_t end; // byte offset in bytes_ just past the unit
    std::size_t code_points;
  };

  slack_text& add(std::string_view s, bool escape) {
    for (std::size_t i = 0; i < s.size();) {
      char32_t cp = next_code_point(s, i);
      std::string_view entity = !escape     ? std::string_view{}
                                : cp == '&' ? "&amp;"
                                : cp == '<' ? "&lt;"
                                : cp == '>' ? "&gt;"
                                            : std::string_view{};
      if (!entity.empty())
        bytes_ += entity;
      else
        append_utf8(bytes_, cp);
      auto n = entity.empty() ? 1 : entity.size();
      units_.push_back({bytes_.size(), n});
      total_ += n;
    }
    return *this;
  }

  std::string bytes_;
  std::vector<unit> units_;
  std::size_t total_ = 0;
};

// ---- Options ---------------------------------------------------------------

struct options {
  std::optional<std::string> channel;
  std::optional<std::string> username;
  std::optional<std::string> icon_emoji;
  std::optional<std::string> bot_token;
  std::optional<std::string> bot_token_file;
};

/// "xoxb-…" (a bot token; "xoxp-" a user's, "xoxe." a rotating one):
/// printable ASCII without spaces, as an Authorization header takes it.
bool is_token(std::string_view s) {
  if (s.size() < 10 || s.size() > 512 || s.substr(0, 3) != "xox")
    return false;
  for (char c : s)
    if (c <= 0x20 || c >= 0x7F)
      return false;
  return true;
}

/// The bot token in `path`: read once, when the endpoint is opened. Its
/// content is never put into a message: a wrong file is named, not shown.
std::optional<std::string> read_token_file(const std::string& path,
                                           std::string& token) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    return "options.bot_token_file: cannot read " + path;
  char buf[1024];
  auto n = std::fread(buf, 1, sizeof buf, f);
  bool more = std::fgetc(f) != EOF;
  std::fclose(f);
  if (more)
    return "options.bot_token_file: " + path + " is over 1 KiB";
  std::string_view t{buf, n};
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' ||
                        t.back() == ' ' || t.back() == '\t'))
    t.remove_suffix(1);
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
    t.remove_prefix(1);
  if (!is_token(t))
    return "options.bot_token_file: " + path +
           " does not hold a Slack token (xoxb-…)";
  token = t;
  return std::nullopt;
}

bool is_upper_alnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/// "C0123456789": a channel (C), private channel (G) or DM (D) id.
bool is_channel_id(std::string_view s) {
  if (s.size() < 9 || s.size() > 21)
    return false;
  if (s[0] != 'C' && s[0] != 'G' && s[0] != 'D')
    return false;
  for (char c : s)
    if (!is_upper_alnum(c))
      return false;
  return true;
}

/// Whether `s` is 1..max code points, none of them whitespace or control
/// characters when `no_space`, no control characters in any case.
bool is_clean(std::string_view s, std::size_t max, bool no_space) {
  if (s.empty() || code_points(s) > max)
    return false;
  for (std::size_t i = 0; i < s.size();) {
    char32_t cp = next_code_point(s, i);
    if (cp == replacement_character || cp < 0x20 || cp == 0x7F ||
        (cp >= 0x80 && cp < 0xA0) || (no_space && cp == ' '))
      return false;
  }
  return true;
}

/// ":name:" with a Slack emoji name: lowercase letters, digits, _ + - '.
bool is_emoji_code(std::string_view s) {
  if (s.size() < 3 || s.size() > 102 || s.front() != ':' || s.back() != ':')
    return false;
  for (char c : s.substr(1, s.size() - 2))
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '+' || c == '-' || c == '\''))
      return false;
  return true;
}

/// The endpoint's options, or a message saying what is wrong with them.
std::optional<std::string> parse_options(std::string_view text, options& out) {
  json j;
  if (!tocsin::parse_json(text, j) || !j.is_object())
    return "the slack transport's options must be a JSON object";
  for (auto& [key, value] : j.items()) {
    std::optional<std::string>* slot = key == "channel"      ? &out.channel
                                       : key == "username"   ? &out.username
                                       : key == "icon_emoji" ? &out.icon_emoji
                                       : key == "bot_token"  ? &out.bot_token
                                       : key == "bot_token_file"
                                           ? &out.bot_token_file
                                           : nullptr;
    if (!slot)
      return "unknown option '" + slack_text{}.plain(key).cut(64) +
             "': the slack transport takes channel, username, icon_emoji, "
             "bot_token and bot_token_file";
    if (!value.is_string())
      return "options." + key + " must be a string";
    const auto& s = value.get_ref<const std::string&>();
    if (key == "channel") {
      bool named =
          !s.empty() && (s[0] == '#' || s[0] == '@') &&
          is_clean(std::string_view{s}.substr(1), channel_name_max, true);
      if (!named && !is_channel_id(s))
        return "options.channel must be #channel-name or @user (1.." +
               std::to_string(channel_name_max) +
               " characters, no spaces) or a channel id such as C0123456789";
    } else if (key == "bot_token") {
      if (!is_token(s))
        return "options.bot_token must be a Slack token (xoxb-…)";
    } else if (key == "bot_token_file") {
      if (s.empty() || s.front() != '/' || s.size() > 4096)
        return "options.bot_token_file must be an absolute path";
    } else if (key == "username") {
      if (!is_clean(s, username_max, false))
        return "options.username must be 1.." + std::to_string(username_max) +
               " characters without control characters";
    } else if (!is_emoji_code(s)) {
      return "options.icon_emoji must be an emoji code such as :robot_face:";
    }
    *slot = s;
  }
  if (out.bot_token && out.bot_token_file)
    return "options.bot_token and options.bot_token_file: give one";
  if ((out.bot_token || out.bot_token_file) && !out.channel)
    return "a Slack app endpoint (options.bot_token) needs options.channel";
  return std::nullopt;
}

// ---- The message -----------------------------------------------------------

std::string_view severity_emoji(std::string_view severity) {
  if (severity == "critical")
    return ":rotating_light:";
  if (severity == "high")
    return ":red_circle:";
  if (severity == "medium")
    return ":large_orange_circle:";
  if (severity == "low")
    return ":large_yellow_circle:";
  if (severity == "info")
    return ":information_source:";
  return ":grey_question:";
}

std::string upper(std::string_view s) {
  std::string out{s};
  for (auto& c : out)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  return out;
}

bool is_http_url(std::string_view u) {
  auto starts = [&](std::string_view p) {
    if (u.size() <= p.size())
      return false;
    for (std::size_t i = 0; i < p.size(); ++i)
      if (static_cast<char>(u[i] | 0x20) != p[i])
        return false;
    return true;
  };
  if (!starts("http://") && !starts("https://"))
    return false;
  for (char c : u)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F)
      return false;
  return true;
}

json plain_text(std::string text) {
  return json{
      {"type", "plain_text"}, {"text", std::move(text)}, {"emoji", true}};
}

json mrkdwn(std::string text) {
  return json{{"type", "mrkdwn"}, {"text", std::move(text)}};
}

/// "*Label*\nvalue", the value escaped, within a field's limit.
json field(std::string_view label, std::string_view value) {
  return mrkdwn(
      slack_text{}.plain("*").plain(label).plain("*\n").escaped(value).cut(
          field_text_max));
}

/// details.<key> when it is a non-empty string.
std::string_view detail(const json& details, const char* key) {
  if (auto it = details.find(key); it != details.end() && it->is_string())
    return it->get_ref<const std::string&>();
  return {};
}

json message(const tocsin_event_view& ev, const options& opts) {
  auto id = view(ev.id), type = view(ev.type), severity = view(ev.severity),
       agent = view(ev.agent_id), summary = view(ev.summary),
       timestamp = view(ev.timestamp), audit = view(ev.audit_url),
       payload = view(ev.payload_json);
  auto state = ev.state;
  auto state_by = view(ev.state_by);
  std::uint32_t along = TOCSIN_HAS_FIELD(tocsin_event_view, &ev, answered_along)
                            ? ev.answered_along
                            : 0;
  // No audit record: the event on the dashboard, when it has a public URL.
  if (!is_http_url(audit) &&
      TOCSIN_HAS_FIELD(tocsin_event_view, &ev, event_url))
    audit = view(ev.event_url);

  // details and "truncated" come from the payload; an unreadable one (the
  // host validated it) only loses them.
  json details = json::object();
  bool truncated = false;
  if (json p;
      tocsin::parse_json(payload, p, nullptr, tocsin::stored_json_limits) &&
      p.is_object()) {
    if (auto it = p.find("details"); it != p.end() && it->is_object())
      details = *it;
    if (auto it = p.find("truncated"); it != p.end())
      truncated = *it == true;
  }

  json blocks = json::array();
  blocks.push_back({{"type", "header"},
                    {"text", plain_text(slack_text{}
                                            .plain(severity_emoji(severity))
                                            .plain(" ")
                                            .plain(type)
                                            .cut(header_max))}});

  if (!summary.empty())
    blocks.push_back({{"type", "section"},
                      {"text", mrkdwn(slack_text{}.escaped(summary).cut(
                                   section_text_max))}});

  json fields = json::array();
  auto add_field = [&](std::string_view label, std::string_view value) {
    if (!value.empty() && fields.size() < fields_max)
      fields.push_back(field(label, value));
  };
  add_field("Agent", agent);
  add_field("Severity", severity);
  add_field("Time", timestamp);
  if (type == "policy.denied") {
    add_field("Rule", detail(details, "rule"));
    add_field("Action", detail(details, "action"));
    add_field("Receipt", detail(details, "receipt_id"));
  }
  if (!fields.empty())
    blocks.push_back({{"type", "section"}, {"fields", std::move(fields)}});

  slack_text context;
  context.plain("Event ").escaped(id);
  if (truncated)
    context.plain(" (truncated)");
  if (state == TOCSIN_EVENT_ACKNOWLEDGED || state == TOCSIN_EVENT_RESOLVED) {
    context.plain(state == TOCSIN_EVENT_RESOLVED ? " · resolved"
                                                 : " · acknowledged");
    if (!state_by.empty())
      context.plain(" by ").escaped(state_by);
    if (along == 1)
      context.plain(" · with 1 event of this episode");
    else if (along > 1)
      context.plain(" · with " + std::to_string(along) +
                    " events of this episode");
  }
  blocks.push_back(
      {{"type", "context"},
       {"elements", json::array({mrkdwn(context.cut(context_text_max))})}});

  json buttons = json::array();
  if (is_http_url(audit) && code_points(audit) <= button_url_max)
    buttons.push_back(
        {{"type", "button"},
         {"text",
          plain_text(slack_text{}.plain("Investigate").cut(button_text_max))},
         {"action_id", "tocsin.investigate"},
         {"url", std::string{audit}}});
  // A cut id would answer nothing: no button rather than a wrong one.
  // Open: Acknowledge; acknowledged: Resolve; resolved: nothing to do.
  if (state != TOCSIN_EVENT_RESOLVED && !id.empty() &&
      code_points(id) <= button_value_max) {
    bool open = state == TOCSIN_EVENT_OPEN;
    json button{{"type", "button"},
                {"text", plain_text(slack_text{}
                                        .plain(open ? "Acknowledge" : "Resolve")
                                        .cut(button_text_max))},
                {"action_id", open ? "tocsin.ack" : "tocsin.resolve"},
                {"value", slack_text{}.plain(id).cut(button_value_max)}};
    if (open)
      button["style"] = "primary";
    buttons.push_back(std::move(button));
  }
  if (!buttons.empty())
    blocks.push_back({{"type", "actions"}, {"elements", std::move(buttons)}});

  while (blocks.size() > blocks_max) // cannot happen with the blocks above
    blocks.erase(blocks.size() - 1);

  slack_text fallback;
  if (!severity.empty())
    fallback.plain("[").escaped(upper(severity)).plain("] ");
  fallback.escaped(type);
  if (!summary.empty())
    fallback.plain(": ").escaped(summary);

  json msg;
  msg["text"] = fallback.cut(fallback_text_max);
  msg["blocks"] = std::move(blocks);
  // The legacy incoming-webhook overrides.
  if (opts.channel)
    msg["channel"] = *opts.channel;
  if (opts.username)
    msg["username"] = *opts.username;
  if (opts.icon_emoji)
    msg["icon_emoji"] = *opts.icon_emoji;
  return msg;
}

// ---- Responses
// ---------------------------------------------------------------

/// Slack's error string in a response body: an {"error": "..."} object's, or
/// the body's first line, trimmed, printable, valid UTF-8, short.
std::string error_string(std::string_view body) {
  json j;
  if (tocsin::parse_json(body, j) && j.is_object())
    if (auto it = j.find("error"); it != j.end() && it->is_string())
      body = it->get_ref<const std::string&>(); // j outlives body's use
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  };
  while (!body.empty() && is_space(body.front()))
    body.remove_prefix(1);
  body = body.substr(0, body.find_first_of("\r\n"));
  while (!body.empty() && is_space(body.back()))
    body.remove_suffix(1);
  std::string out;
  for (std::size_t i = 0; i < body.size();) {
    auto before = out.size();
    char32_t cp = next_code_point(body, i);
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
      cp = ' ';
    append_utf8(out, cp);
    if (out.size() > reason_max_bytes) {
      out.resize(before);
      out = std::string{cut_bytes(out, reason_max_bytes - ellipsis.size())} +
            std::string{ellipsis};
      break;
    }
  }
  return out;
}

// ---- The Web API's answers ---------------------------------------------

/// The top-level members of a Web API answer that matter here, read from
/// the first KiB of the body the host keeps: chat.postMessage echoes the
/// whole message after them, so the JSON is often cut short. A SAX reader
/// takes what came before the cut.
struct web_answer {
  std::optional<bool> ok;
  std::string error;
  std::string channel;
  std::string ts;
};

class web_answer_reader : public nlohmann::json_sax<json> {
public:
  explicit web_answer_reader(web_answer& out) : out_(out) {}
  bool null() override { return true; }
  bool boolean(bool v) override {
    if (depth_ == 1 && key_ == "ok")
      out_.ok = v;
    return true;
  }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t& v) override {
    if (depth_ == 1 && v.size() <= 128) {
      if (key_ == "error")
        out_.error = v;
      else if (key_ == "channel")
        out_.channel = v;
      else if (key_ == "ts")
        out_.ts = v;
    }
    return true;
  }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    ++depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1)
      key_ = k;
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception&) override {
    return false; // the cut: keep what was read
  }

private:
  web_answer& out_;
  int depth_ = 0;
  std::string key_;
};

web_answer read_web_answer(std::string_view body) {
  web_answer out;
  web_answer_reader reader{out};
  json::sax_parse(body, &reader, nlohmann::detail::input_format_t::json, false);
  return out;
}

/// Web API errors worth another try; any other is permanent (a wrong token,
/// channel or message does not mend itself: invalid_auth, not_authed,
/// account_inactive, token_revoked, channel_not_found, not_in_channel,
/// is_archived, msg_too_long, invalid_blocks, ...).
bool is_transient(std::string_view error) {
  return error == "ratelimited" || error == "internal_error" ||
         error == "fatal_error" || error == "service_unavailable" ||
         error == "request_timeout";
}

// ---- The C ABI -------------------------------------------------------------

} // namespace

/// An endpoint's options, read once when it is opened (a bot token file
/// too).
struct tocsin_instance {
  options opts;
  std::string token;      ///< a Slack app's bot token; empty: a webhook
  std::string update_url; ///< the endpoint's URL with chat.update
};

namespace {

/// The endpoint URL with chat.update for its last path segment, or nothing
/// when it does not end in chat.postMessage.
std::optional<std::string> update_url_of(std::string_view url) {
  constexpr std::string_view post = "/chat.postMessage";
  auto end = url.find_first_of("?#");
  auto path = url.substr(0, end);
  if (!path.ends_with(post))
    return std::nullopt;
  return std::string{path.substr(0, path.size() - post.size())} +
         "/chat.update" +
         std::string{end == std::string_view::npos ? "" : url.substr(end)};
}

int open_endpoint(const tocsin_host_api* host, tocsin_call* call,
                  const tocsin_endpoint_view* endpoint,
                  tocsin_instance** instance) {
  try {
    options opts;
    if (auto bad = parse_options(view(endpoint->options_json), opts))
      return fail(host, call, "invalid_options", *bad);
    auto made = std::make_unique<tocsin_instance>();
    if (opts.bot_token)
      made->token = *opts.bot_token;
    else if (opts.bot_token_file)
      if (auto bad = read_token_file(*opts.bot_token_file, made->token))
        return fail(host, call, "invalid_options", *bad);
    if (!made->token.empty()) {
      auto update = update_url_of(view(endpoint->url));
      if (!update)
        return fail(host, call, "invalid_options",
                    "a Slack app endpoint (options.bot_token) posts with the "
                    "Web API: its url must end in /api/chat.postMessage");
      made->update_url = std::move(*update);
    }
    made->opts = std::move(opts);
    *instance = made.release();
    return 0;
  } catch (...) {
    return fail(host, call, "plugin_failed",
                "the slack transport failed to read the options");
  }
}

void close_endpoint(tocsin_instance* instance) {
  delete instance;
}

/// A receipt's channel and ts (a message a Slack app posted), if both.
std::optional<std::pair<std::string, std::string>>
message_of(std::string_view receipt) {
  json r;
  if (receipt.empty() || !tocsin::parse_json(receipt, r) || !r.is_object())
    return std::nullopt;
  auto channel = r.value("channel", json{}), ts = r.value("ts", json{});
  if (!channel.is_string() || !ts.is_string())
    return std::nullopt;
  return std::make_pair(channel.get<std::string>(), ts.get<std::string>());
}

int build_request(const tocsin_host_api* host, tocsin_call* call,
                  tocsin_instance* instance, const tocsin_event_view* event,
                  const tocsin_endpoint_view*) {
  try {
    auto& self = *instance;
    auto msg = message(*event, self.opts);
    bool news = event->state != TOCSIN_EVENT_OPEN;
    std::string_view reply_url, receipt;
    if (news && TOCSIN_HAS_FIELD(tocsin_event_view, event, reply_url))
      reply_url = view(event->reply_url);
    if (news && TOCSIN_HAS_FIELD(tocsin_event_view, event, receipt))
      receipt = view(event->receipt);
    std::optional<std::pair<std::string, std::string>> posted;
    if (!self.token.empty())
      posted = message_of(receipt);
    if (posted) {
      // The app's own message, edited in place.
      for (auto* legacy : {"username", "icon_emoji"})
        msg.erase(legacy);
      msg["channel"] = posted->first;
      msg["ts"] = posted->second;
      if (host->set_url(call, str(self.update_url)))
        return 1;
    } else if (!reply_url.empty()) {
      // The clicked message, replaced through the click's response_url
      // (which needs no token, and is given none).
      for (auto* legacy : {"channel", "username", "icon_emoji"})
        msg.erase(legacy);
      msg["replace_original"] = true;
      if (host->set_url(call, str(reply_url)))
        return 1;
    }
    if (!self.token.empty() && reply_url.empty() &&
        host->add_header(call, str("Authorization"),
                         str("Bearer " + self.token)))
      return 1;
    auto body = msg.dump(-1, ' ', false, json::error_handler_t::replace);
    if (host->set_method(call, str("POST")) ||
        host->add_header(call, str("Content-Type"),
                         str("application/json; charset=utf-8")) ||
        host->append_body(call, str(body)))
      return 1; // the host has recorded why
    return 0;
  } catch (...) {
    return fail(host, call, "plugin_failed",
                "the slack transport failed to build the message");
  }
}

/// A Slack app's answer: {"ok": true, "channel", "ts"} delivered (the
/// message kept as the receipt); {"ok": false, "error"} retried when Slack
/// says it is passing (ratelimited, internal_error, fatal_error,
/// service_unavailable), else permanent with Slack's error as the reason;
/// 429 retried (the host honours Retry-After), 5xx retried, anything else
/// permanent.
int classify_web_api(const tocsin_host_api* host, tocsin_call* call,
                     const tocsin_response_view* r) {
  auto s = r->status;
  auto said = read_web_answer(view(r->body_prefix));
  auto reason = [&](std::string_view fallback) {
    host->set_reason(
        call, str(said.error.empty() ? fallback : error_string(said.error)));
  };
  if (s == 429) {
    reason("ratelimited");
    return TOCSIN_OUTCOME_RETRY;
  }
  if (s >= 500) {
    reason("HTTP " + std::to_string(s));
    return TOCSIN_OUTCOME_RETRY;
  }
  if (s == 200 && said.ok == true) {
    if (!said.channel.empty() && !said.ts.empty() &&
        TOCSIN_HAS_FIELD(tocsin_host_api, host, set_receipt)) {
      auto receipt = json{{"channel", said.channel}, {"ts", said.ts}}.dump(
          -1, ' ', false, json::error_handler_t::replace);
      host->set_receipt(call, str(receipt));
    }
    return TOCSIN_OUTCOME_SUCCESS;
  }
  if (s == 200 && said.ok == false) {
    reason("HTTP 200 with \"ok\": false");
    return is_transient(said.error) ? TOCSIN_OUTCOME_RETRY
                                    : TOCSIN_OUTCOME_PERMANENT;
  }
  if (s >= 300 && s < 400) {
    host->set_reason(call, str("HTTP " + std::to_string(s) +
                               ": redirects are not followed; check the URL"));
    return TOCSIN_OUTCOME_PERMANENT;
  }
  reason(s == 200 ? std::string{"HTTP 200 without \"ok\""}
                  : "HTTP " + std::to_string(s));
  return TOCSIN_OUTCOME_PERMANENT;
}

/// 200 "ok" delivered; 200 with anything else, 400, 403, 404 and any other
/// status permanent, with Slack's error string as the reason; 410
/// (channel_is_archived) disables the endpoint; 429 and 5xx retried (the
/// host honours Retry-After). A Slack app's answers: classify_web_api.
int classify(const tocsin_host_api* host, tocsin_call* call,
             tocsin_instance* instance, const tocsin_response_view* r) {
  try {
    if (instance && !instance->token.empty())
      return classify_web_api(host, call, r);
    auto s = r->status;
    auto error = error_string(view(r->body_prefix));
    auto reason = [&](std::string_view fallback) {
      host->set_reason(call, str(error.empty() ? fallback : error));
    };
    auto http = "HTTP " + std::to_string(s);
    if (s == 200) {
      // Incoming webhooks answer "ok"; a response_url answers {"ok":true}.
      if (error == "ok")
        return TOCSIN_OUTCOME_SUCCESS;
      if (json j; tocsin::parse_json(view(r->body_prefix), j) &&
                  j.is_object() && j.value("ok", json{}) == true)
        return TOCSIN_OUTCOME_SUCCESS;
      reason("HTTP 200 without \"ok\"");
      return TOCSIN_OUTCOME_PERMANENT;
    }
    if (s == 410) {
      reason(http + " Gone");
      return TOCSIN_OUTCOME_DISABLE_ENDPOINT;
    }
    if (s == 429) {
      reason("rate limited");
      return TOCSIN_OUTCOME_RETRY;
    }
    if (s >= 500) {
      reason(http);
      return TOCSIN_OUTCOME_RETRY;
    }
    if (s >= 300 && s < 400) {
      auto why = http + ": redirects are not followed; check the webhook URL";
      host->set_reason(call, str(why));
      return TOCSIN_OUTCOME_PERMANENT;
    }
    reason(http);
    return TOCSIN_OUTCOME_PERMANENT;
  } catch (...) {
    host->set_reason(call, str("the slack transport failed to classify"));
    return TOCSIN_OUTCOME_PERMANENT;
  }
}

// A bot token posts as the app anywhere it is: never shown whole.
const char* const secret_options[] = {"bot_token", nullptr};

const tocsin_transport table = {
    sizeof(tocsin_transport),
    TOCSIN_PLUGIN_ABI_VERSION,
    "slack",
    "1.0.0",
    open_endpoint,
    close_endpoint,
    build_request,
    classify,
    // Incoming webhooks are not signed; an acknowledged event's message is
    // replaced (or followed by one that says so), edited by a Slack app;
    // an answer to an episode is told in one message.
    TOCSIN_TRANSPORT_FOLLOWS_STATE | TOCSIN_TRANSPORT_MESSAGES,
    1.0, // Slack: about one message per second per webhook
    3,
    nullptr,
    secret_options,
};

} // namespace

extern "C" TOCSIN_PLUGIN_EXPORT const tocsin_transport*
tocsin_plugin_entry_v2(const tocsin_host*, const char**) {
  return &table;
}
