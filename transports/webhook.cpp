#include "transports/webhook.hpp"

namespace tocsin::transports {

std::vector<std::pair<std::string, std::string>>
signature_headers(const webhook_message& msg,
                  const std::vector<signing_key>& keys) {
  std::string signatures;
  for (auto& key : keys) {
    if (!signatures.empty())
      signatures += ' ';
    signatures += sign_webhook(key, msg.msg_id, msg.timestamp, msg.payload);
  }
  return {
      {"webhook-id", std::string{msg.msg_id}},
      {"webhook-timestamp", std::to_string(msg.timestamp)},
      {"webhook-signature", std::move(signatures)},
  };
}

outbound_request make_webhook_request(const tocsin::url& target,
                                      const webhook_message& msg,
                                      const std::vector<signing_key>& keys) {
  outbound_request req;
  req.target = target;
  req.method = "POST";
  req.headers = signature_headers(msg, keys);
  req.headers.insert(req.headers.begin(), {"content-type", "application/json"});
  req.body.assign(msg.payload);
  return req;
}

outbound_request make_webhook_request(const tocsin::url& target,
                                      const webhook_message& msg,
                                      const std::vector<std::string>& keys) {
  std::vector<signing_key> typed;
  typed.reserve(keys.size());
  for (auto& key : keys)
    typed.push_back({signing_key::scheme::hmac_sha256, key});
  return make_webhook_request(target, msg, typed);
}

} // namespace tocsin::transports
