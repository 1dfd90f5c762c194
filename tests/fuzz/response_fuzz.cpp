// libFuzzer target for the HTTPS client's response handling: arbitrary bytes
// as a receiver's answer, delivered in chunks of arbitrary sizes. Whatever
// comes, the reader keeps its memory bounded, never reports more of the body
// than it keeps, and ends in a consistent state.
//
// HTTP/1.1 (response_reader) or, when the first byte says so, HTTP/2: the
// bytes are a server's frames (after its SETTINGS, unless the input opts
// out) to an h2_session with a few streams open; streams are cancelled and
// opened along the way. Each stream must end exactly once (by the end,
// with the connection lost), answered ones with a status and at most the
// kept bytes of body, and what the session writes stays bounded.
#include "net/h2_session.hpp"
#include "net/response_reader.hpp"

#include <cstdint>
#include <map>
#include <string_view>

using namespace tocsin::net;

namespace {

response_limits limits_for(std::uint8_t flags) {
  if (flags & 1)
    return response_limits{200, 16, 300};
  return {};
}

void fuzz_http1(std::uint8_t flags, std::size_t chunk, std::string_view in) {
  auto limits = limits_for(flags);
  response_reader reader{limits};
  using state = response_reader::state;
  auto st = state::reading;
  while (!in.empty() && st == state::reading) {
    auto piece = in.substr(0, chunk);
    in.remove_prefix(piece.size());
    st = reader.feed(piece);
  }
  if (st == state::reading && (flags & 2))
    st = reader.finish();
  if (reader.body_prefix().size() > limits.keep_body_bytes)
    __builtin_trap();
  if ((st == state::complete || st == state::stopped) &&
      (reader.status() < 100 || reader.status() > 999))
    __builtin_trap();
  if (reader.reusable() && st != state::complete)
    __builtin_trap();
  if (st == state::failed && reader.error().empty())
    __builtin_trap();
}

/// The streams of one h2_session and how each ended.
struct h2_check {
  explicit h2_check(const response_limits& l) : limits(l), session(l) {}

  void open(std::string body) {
    outbound_request req;
    req.target = *tocsin::parse_url("https://receiver.example/in");
    req.body = std::move(body);
    req.headers = {{"Content-Type", "application/json"}};
    if (auto id = session.submit(req, "tocsin/fuzz"))
      ended[id] = 0;
  }

  void drain_output() {
    std::string out;
    session.output(out, 16 * 1024);
    // output() stops about its bound (one frame may pass it).
    if (out.size() > 16 * 1024 + 64 * 1024)
      __builtin_trap();
  }

  void collect() {
    for (auto& [id, r] : session.take_results()) {
      auto it = ended.find(id);
      if (it == ended.end() || ++it->second > 1)
        __builtin_trap(); // unknown stream, or ended twice
      if (r.kind == h2_result::outcome::answered &&
          (r.status < 200 || r.status > 999))
        __builtin_trap();
      if (r.kind != h2_result::outcome::answered &&
          (r.status != 0 || !r.body_prefix.empty()))
        __builtin_trap();
      if (r.body_prefix.size() > limits.keep_body_bytes)
        __builtin_trap();
      if (r.kind == h2_result::outcome::failed && r.error.empty())
        __builtin_trap();
    }
    if (session.open_streams() > ended.size())
      __builtin_trap();
  }

  response_limits limits;
  h2_session session;
  std::map<std::int32_t, int> ended; ///< stream id: times reported
};

void fuzz_h2(std::uint8_t flags, std::size_t chunk, std::string_view in) {
  h2_check c{limits_for(flags)};
  c.open("{}");
  c.open(std::string(40000, 'b')); // a body past the first flow window
  c.open("");
  c.drain_output(); // the preface, SETTINGS, the requests
  if (!(flags & 8)) {
    // The server's (empty) SETTINGS: what every real server sends first.
    static constexpr char settings[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    c.session.receive({settings, sizeof(settings)});
    c.collect();
  }
  bool alive = true;
  for (int round = 0; alive && !in.empty(); ++round) {
    auto piece = in.substr(0, chunk);
    in.remove_prefix(piece.size());
    alive = c.session.receive(piece);
    c.collect();
    c.drain_output();
    c.collect();
    if ((flags & 16) && round == 2)
      c.session.cancel(3, "read: timed out");
    if ((flags & 32) && round == 3)
      c.open("{\"late\":true}");
    c.collect();
  }
  c.session.lost("read: end of stream");
  c.collect();
  for (auto& [id, times] : c.ended)
    if (times != 1)
      __builtin_trap(); // a stream that never ended
  if (c.session.accepting() || c.session.alive() || c.session.error().empty())
    __builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size < 2)
    return 0;
  // First byte: small or default limits, EOF at the end (HTTP/1.1), HTTP/2
  // and its options; second: the chunk size.
  std::size_t chunk = 1 + data[1] % 64;
  std::string_view in{reinterpret_cast<const char*>(data + 2), size - 2};
  if (data[0] & 4)
    fuzz_h2(data[0], chunk, in);
  else
    fuzz_http1(data[0], chunk, in);
  return 0;
}
