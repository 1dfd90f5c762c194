// A light load generator: one thread, many keep-alive connections, each
// POSTing the same body back to back (like wrk) or on a schedule (like wrk2),
// recording every accepted id with the time its request was sent (or was
// due, on a schedule).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace tocsin::bench {

struct load_options {
  std::uint16_t port = 0;
  std::string token;
  std::string body;
  int connections = 32;
  int requests = 1000;
  /// Requests per second offered (open loop: request i is due at i / rate
  /// and its latency counts from then, even if every connection was busy);
  /// 0: each connection sends its next as soon as the last was answered.
  double rate = 0;
  /// Where the requests go; the Authorization header is sent only with a
  /// token.
  std::string target = "/v1/events";
  /// The status that means accepted (tocsin: 202; Alertmanager: 200).
  int expect_status = 202;
  /// When set, request i carries body_of(i) instead of `body` (alerts that
  /// must differ to be told apart).
  std::function<std::string(int)> body_of = {};
  /// When not empty, several daemons: connection i goes to
  /// ports[i % ports.size()] (`port` is then not used), so that each gets an
  /// equal share of the connections and, closed loop, of the requests as
  /// fast as it answers them.
  std::vector<std::uint16_t> ports = {};
};

struct load_result {
  /// The ids in tocsin's answers ({"ids":[...]}); for an answer without
  /// them, the index of the accepted request.
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>>
      accepted;
  /// How long each answer took, from when its request was sent (or, open
  /// loop, due), in milliseconds.
  std::vector<double> answer_ms;
  int failures = 0;
  std::string first_failure;
};

load_result run_load(const load_options& opts);

} // namespace tocsin::bench
