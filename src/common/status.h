#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace shoal {

// Codes say what the caller does next. kUnavailable is transient (429, 5xx, connection reset,
// timeout): back off and retry. Everything else is final for this request.
enum class Code : uint8_t {
  kOk,
  kNotFound,            // the object (or bucket) does not exist
  kInvalidArgument,     // the request can never succeed as written (bad key, bad URL, bad flag)
  kPermissionDenied,    // credentials missing, wrong or insufficient: fix the credentials
  kPreconditionFailed,  // If-Match failed: the object changed; start again from Head
  kUnavailable,         // transient: retry with back-off
  kCorruption,          // data failed a check (checksum, size)
  kIOError,             // local disk or an unexpected remote answer
  kResourceExhausted,   // out of space (a full disk): free some, then retry
  kAlreadyExists,       // the name is taken (a node id another live node holds): pick another
};

const char* CodeName(Code code);

// Refines a code where a caller acts on the difference; most statuses have none. Callers test
// it instead of matching message text.
enum class Detail : uint8_t {
  kNone,
  // With kUnavailable: no connection could be made (refused, no such Unix socket), so nothing
  // reached the server, which most likely is not running there.
  kConnectFailed,
  // With kUnavailable: every connection the client may hold to the server (a bound of its
  // own) stayed busy for the request's whole timeout, so nothing was sent. Says nothing of
  // the server's health.
  kConnectionsBusy,
};

// The result of an operation: a code and, unless kOk, a message that says what failed, on
// which object or node, and what to do. Cheap to copy when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status PermissionDenied(std::string m) { return {Code::kPermissionDenied, std::move(m)}; }
  static Status PreconditionFailed(std::string m) {
    return {Code::kPreconditionFailed, std::move(m)};
  }
  static Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status ResourceExhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsTransient() const { return code_ == Code::kUnavailable; }
  Detail detail() const { return detail_; }
  bool IsConnectFailed() const { return detail_ == Detail::kConnectFailed; }

  // This status with `detail` (kept through WithContext).
  Status WithDetail(Detail detail) const {
    Status st = *this;
    st.detail_ = detail;
    return st;
  }

  // "NotFound: az://c/k does not exist" (or "OK").
  std::string ToString() const;

  // Prepends context: Status::IOError("disk full").WithContext("writing x") -> "writing x: disk full".
  Status WithContext(const std::string& context) const;

  // For the rare caller that has nothing to do with a failure (cleanup on an error path).
  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  Detail detail_ = Detail::kNone;
  std::string message_;
};

// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design; must not be ok

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  // The value, or `fallback` when there is none (the Status dropped: for values whose absence
  // is an answer too).
  T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace shoal

// Returns from the enclosing function if `expr` (a Status) is not ok.
#define SHOAL_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::shoal::Status _shoal_st = (expr);          \
    if (!_shoal_st.ok()) return _shoal_st;       \
  } while (0)

#define SHOAL_CONCAT_INNER(a, b) a##b
#define SHOAL_CONCAT(a, b) SHOAL_CONCAT_INNER(a, b)
// `lhs = value of rexpr` (a Result<T>), or returns its Status from the enclosing function.
#define SHOAL_ASSIGN_OR_RETURN(lhs, rexpr)                                   \
  auto SHOAL_CONCAT(_shoal_res_, __LINE__) = (rexpr);                        \
  if (!SHOAL_CONCAT(_shoal_res_, __LINE__).ok())                             \
    return SHOAL_CONCAT(_shoal_res_, __LINE__).status();                     \
  lhs = std::move(SHOAL_CONCAT(_shoal_res_, __LINE__)).value()
