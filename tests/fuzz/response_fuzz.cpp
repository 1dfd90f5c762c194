// libFuzzer target for the HTTPS client's response handling: arbitrary bytes
// as a receiver's answer, delivered in chunks of arbitrary sizes. Whatever
// comes, the reader keeps its memory bounded, never reports more of the body
// than it keeps, and ends in a consistent state.
#include "net/response_reader.hpp"

#include <cstdint>
#include <string_view>

using namespace tocsin::net;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size < 2)
    return 0;
  // First byte: small or default limits; second: the chunk size.
  response_limits limits;
  if (data[0] & 1)
    limits = response_limits{200, 16, 300};
  std::size_t chunk = 1 + data[1] % 64;
  std::string_view in{reinterpret_cast<const char*>(data + 2), size - 2};
  response_reader reader{limits};
  using state = response_reader::state;
  auto st = state::reading;
  while (!in.empty() && st == state::reading) {
    auto piece = in.substr(0, chunk);
    in.remove_prefix(piece.size());
    st = reader.feed(piece);
  }
  if (st == state::reading && (data[0] & 2))
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
  return 0;
}
