// A minimal streaming JSON writer for the hot path (log records, delivery
// states): appends to one string, no intermediate DOM, no allocation per field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tocsin {

class json_writer {
public:
  json_writer& begin_object() { return open('{'); }
  json_writer& end_object() { return close('}'); }
  json_writer& begin_array() { return open('['); }
  json_writer& end_array() { return close(']'); }

  /// The key of the next value inside an object.
  json_writer& key(std::string_view k) {
    separate();
    append_string(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }

  json_writer& value(std::string_view s) {
    separate();
    append_string(s);
    return *this;
  }
  json_writer& value(const char* s) { return value(std::string_view{s}); }
  json_writer& value(const std::string& s) {
    return value(std::string_view{s});
  }
  json_writer& value(std::int64_t v);
  json_writer& value(int v) { return value(static_cast<std::int64_t>(v)); }
  json_writer& value(double v);
  json_writer& value(bool v) {
    separate();
    out_ += v ? "true" : "false";
    return *this;
  }
  json_writer& null() {
    separate();
    out_ += "null";
    return *this;
  }
  /// Inserts text that is already valid JSON.
  json_writer& raw(std::string_view json) {
    separate();
    out_ += json;
    return *this;
  }

  template <class T>
  json_writer& field(std::string_view k, const T& v) {
    return key(k).value(v);
  }

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

private:
  json_writer& open(char c) {
    separate();
    out_ += c;
    first_ = true;
    return *this;
  }
  json_writer& close(char c) {
    out_ += c;
    first_ = false;
    return *this;
  }
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_)
      out_ += ',';
    first_ = false;
  }
  void append_string(std::string_view s);

  std::string out_;
  bool first_ = true;
  bool after_key_ = false;
};

} // namespace tocsin
