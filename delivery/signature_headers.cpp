#include "delivery/signature_headers.hpp"

namespace tocsin::delivery {

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

} // namespace tocsin::delivery
