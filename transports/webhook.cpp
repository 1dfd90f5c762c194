#include "transports/webhook.hpp"

#include "transports/signing.hpp"

namespace tocsin::transports {

outbound_request make_webhook_request(const tocsin::url& target,
                                      const webhook_message& msg,
                                      const std::vector<std::string>& keys) {
  outbound_request req;
  req.target = target;
  req.method = "POST";
  std::string signatures;
  for (auto& key : keys) {
    if (!signatures.empty())
      signatures += ' ';
    signatures += sign_webhook(key, msg.msg_id, msg.timestamp, msg.payload);
  }
  req.headers = {
      {"content-type", "application/json"},
      {"webhook-id", std::string{msg.msg_id}},
      {"webhook-timestamp", std::to_string(msg.timestamp)},
      {"webhook-signature", std::move(signatures)},
  };
  req.body.assign(msg.payload);
  return req;
}

} // namespace tocsin::transports
