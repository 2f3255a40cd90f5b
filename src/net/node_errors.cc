#include "net/node_errors.h"

#include <nlohmann/json.hpp>

namespace shoal::http {

const ErrorFormat& NodeErrors() {
  static const ErrorFormat kFormat{
      .describe =
          [](const Response& resp) {
            std::string message = resp.Header("x-shoal-message");
            if (!resp.body.empty() && resp.body.front() == '{') {
              auto j = nlohmann::json::parse(resp.body, nullptr, false);
              if (j.is_object() && j.contains("message") && j["message"].is_string()) {
                message = j["message"].get<std::string>();
              }
            }
            return ErrorDetail(resp.Header("x-shoal-error"), message);
          },
      .failed_2xx = nullptr};
  return kFormat;
}

}  // namespace shoal::http
