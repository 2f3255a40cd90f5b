#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace shoal::door {

// What the verifiers read of one HTTP request: the server fills it from Beast's parser before
// reading the body. Plain data; the verifiers never keep a reference to it.
struct RequestView {
  std::string method;     // "GET", "PUT", ...
  std::string raw_path;   // the request target's path exactly as received (percent-encoded)
  std::string raw_query;  // after the '?', as received; empty when there is none
  // Every header as received, in order, names in any case; a name may repeat.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string client_ip;  // the peer's address ("10.0.0.7", "::1", "::ffff:10.0.0.7")
  bool is_tls = false;    // the connection is HTTPS

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
};

// One query parameter, percent-decoded ('+' is kept as '+': the SDKs encode spaces as %20).
struct QueryParam {
  std::string name;
  std::string value;
};
// "a=1&b=%2F&c" -> {a,1},{b,/},{c,""}; empty items are skipped.
std::vector<QueryParam> ParseQuery(std::string_view raw_query);
// The first value of `name` (exact, case-sensitive match), or nullopt.
std::optional<std::string> QueryValue(const std::vector<QueryParam>& params, std::string_view name);

// "%2Fa%20b" -> "/a b"; nullopt when a '%' is not followed by two hex digits.
std::optional<std::string> PercentDecode(std::string_view text);

// Equal lengths and bytes, in time that does not depend on where they differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// "<?xml ...?><Error><NAME>VALUE</NAME>...</Error>", the shape of both services' error bodies;
// `encoding` is written in the declaration as given ("UTF-8" for S3, "utf-8" for Azure).
std::string RenderErrorXml(std::string_view encoding,
                           const std::vector<std::pair<std::string, std::string>>& fields);

// A value or the error that says why there is none (E is S3Error or AzureError).
template <typename T, typename E>
class [[nodiscard]] Verdict {
 public:
  Verdict(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Verdict(E error) : v_(std::move(error)) {}  // NOLINT: implicit by design
  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T* operator->() const { return &value(); }
  const T& operator*() const& { return value(); }
  const E& error() const { return std::get<E>(v_); }

 private:
  std::variant<T, E> v_;
};

}  // namespace shoal::door
