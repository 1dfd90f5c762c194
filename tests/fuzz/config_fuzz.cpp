// libFuzzer target for the config parser: any text as a tocsin.toml. Every
// input is either a config or a one-line refusal; nothing crashes.
#include "app/config.hpp"

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto cfg = tocsin::app::parse_config(text, "fuzz.toml");
  if (!cfg && cfg.error().message.empty())
    __builtin_trap();
  return 0;
}
