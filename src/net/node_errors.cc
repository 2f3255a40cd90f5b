#include "net/node_errors.h"

#include <nlohmann/json.hpp>

#include "net/node_protocol.h"

namespace shoal::http {

const ErrorFormat& NodeErrors() {
  static const ErrorFormat kFormat{
      .describe =
          [](const Response& resp) {
            std::string message = resp.Header(proto::kMessageHeader);
            if (!resp.body.empty() && resp.body.front() == '{') {
              auto j = nlohmann::json::parse(resp.body, nullptr, false);
              const std::string field(proto::kMessageField);
              if (j.is_object() && j.contains(field) && j[field].is_string()) {
                message = j[field].get<std::string>();
              }
            }
            return ErrorDetail(resp.Header(proto::kErrorHeader), message);
          },
      .code = proto::CodeOfAnswer,
      .failed_2xx = nullptr};
  return kFormat;
}

}  // namespace shoal::http
