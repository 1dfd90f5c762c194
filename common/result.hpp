// result<T>: a value or an error, returned by every fallible call (no
// exceptions cross module boundaries).
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace tocsin {

/// An error as a value: a stable machine-readable code and a message for
/// humans.
struct error {
  std::string code;
  std::string message;
  std::string field = {}; // the offending input field, when there is one
};

template <class T>
class [[nodiscard]] result {
public:
  result(T value) : v_(std::move(value)) {}
  result(tocsin::error e) : v_(std::move(e)) {}

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const tocsin::error& error() const { return std::get<1>(v_); }

private:
  std::variant<T, tocsin::error> v_;
};

/// A status: nothing on success, an error otherwise.
class [[nodiscard]] status {
public:
  status() = default;
  status(tocsin::error e) : err_(std::move(e)), failed_(true) {}
  static status success() { return {}; }

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  const tocsin::error& error() const { return err_; }

private:
  tocsin::error err_;
  bool failed_ = false;
};

} // namespace tocsin

/// Returns the error of a failed status or result from the enclosing
/// function (which returns a status or a result).
#define TOCSIN_TRY(expr)                                                       \
  do {                                                                         \
    if (auto st_ = (expr); !st_)                                               \
      return st_.error();                                                      \
  } while (false)

/// `auto var = *expr;` when `expr` (a result) holds a value; otherwise
/// returns its error from the enclosing function.
#define TOCSIN_TRY_ASSIGN(var, expr)                                           \
  auto var##_result_ = (expr);                                                 \
  if (!var##_result_)                                                          \
    return var##_result_.error();                                              \
  auto var = std::move(*var##_result_)
