// Where events go: one entry per endpoint, in the intake's routing table.
#pragma once

#include "delivery/endpoint_config.hpp"
#include "delivery/job.hpp"

#include <cstdint>
#include <string>

namespace tocsin::delivery {

struct route {
  std::string endpoint_id;
  endpoint_filter filter;
  bool enabled = true;
  std::int64_t revision = 1;
  std::string transport = "webhook";
  /// Told when an event it was sent is acknowledged or resolved.
  bool follows_state = false;
  /// Posts messages people read: an answer to several events is told in
  /// one message, not one per event (TOCSIN_TRANSPORT_MESSAGES).
  bool posts_messages = false;
  /// Delivers in acceptance order (FIFO): its deliveries' places in the
  /// store are when they joined the line, not by severity.
  bool ordered = false;

  static route of(const endpoint_config& c) {
    return route{c.id,
                 c.filter,
                 c.enabled,
                 c.revision,
                 c.transport,
                 c.plugin && c.plugin->follows_state(),
                 c.plugin && c.plugin->plugin().posts_messages(),
                 c.ordered};
  }

  /// The place in this endpoint's line of a delivery of an event
  /// of `severity_rank` due at `due` (see place_in_line).
  unix_ms place(int severity_rank, unix_ms due) const {
    return place_in_line(ordered, severity_rank, due);
  }
};

} // namespace tocsin::delivery
